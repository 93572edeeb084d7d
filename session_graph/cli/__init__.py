"""The ``session-graph`` command line (typer); ``main`` is the console script's entry point."""

from __future__ import annotations

# Imported for their side effect: each module registers its commands on ``app``, in the
# order ``--help`` lists them.
from session_graph.cli import demo, server, sessions, io  # noqa: F401  # isort: skip
from session_graph.cli.common import app


def main() -> None:
    """Run the command line."""
    app(prog_name="session-graph")


__all__ = ["app", "main"]
