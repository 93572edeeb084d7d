"""The ``session-graph`` command line (typer); ``main`` is the console script's entry point."""

from __future__ import annotations

import sys

import typer

# Imported for their side effect: each module registers its commands on ``app``, in the
# order ``--help`` lists them.
from session_graph.cli import demo, server, sessions, build, io  # noqa: F401  # isort: skip
from session_graph.cli import checkpoints  # noqa: F401  # isort: skip
from session_graph.cli.common import app, report


def main() -> None:
    """Run the command line."""
    try:
        app(prog_name="session-graph")
    except Exception as exc:  # raised outside every command (ErrorHandlingGroup): still one line
        try:
            report(exc)
        except typer.Exit as done:
            sys.exit(done.exit_code)


__all__ = ["app", "main"]
