"""Every code block in README.md runs here, so the README cannot drift from the code.

Python blocks run as written (top-level ``await`` included) against the test server in a
tenant of their own; in shell blocks every ``session-graph`` command runs through the CLI.
The other shell lines are the setup commands ``.ci/run`` itself runs (installing, linting,
testing); a line of any other kind fails the test until it is given a way to run here.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
import shlex
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from session_graph.cli import app
from session_graph.runtime import ConnectionInfo

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Lines .ci/run runs itself (a clean install, lint, types, this very suite) or that need a
# Docker engine or root; each is named so a new kind of line cannot slip through.
RUN_BY_CI = (
    "pip install",
    "python3 -m pytest",
    "ruff check",
    "mypy",
    "python3 scripts/unasync.py",
    "docker compose",
    "apt-get",
)
# Commands that manage the developer's own local server, not the one the tests use.
LOCAL_SERVER = ("session-graph neo4j start", "session-graph neo4j stop")


def blocks(language: str) -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == language
    ]


@pytest.fixture
def readme_env(monkeypatch: pytest.MonkeyPatch, neo4j_info: ConnectionInfo, tmp_path: Path) -> str:
    import os

    for name in list(os.environ):
        if name.startswith("SESSION_GRAPH_"):
            monkeypatch.delenv(name)
    tenant = f"readme-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", neo4j_info.uri)
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_USER", neo4j_info.user)
    if neo4j_info.password is not None:
        monkeypatch.setenv("SESSION_GRAPH_NEO4J_PASSWORD", neo4j_info.password)
    monkeypatch.setenv("SESSION_GRAPH_TENANT", tenant)
    monkeypatch.setenv("SESSION_GRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tenant


def test_the_readme_has_python_and_shell_blocks() -> None:
    assert len(blocks("python")) >= 2 and len(blocks("bash")) >= 1


@pytest.mark.parametrize(("line", "code"), blocks("python"), ids=lambda v: str(v)[:12])
def test_python_block_runs(line: int, code: str, readme_env: str) -> None:
    tree = compile(code, f"README.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = eval(tree, {"__name__": "readme"})  # the README's own code
        if asyncio.iscoroutine(result):
            asyncio.run(result)


def shell_lines() -> list[tuple[int, str]]:
    found = []
    for start, code in blocks("bash"):
        for offset, raw in enumerate(code.splitlines(), start=1):
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append((start + offset, line))
    return found


@pytest.mark.parametrize(("number", "line"), shell_lines(), ids=lambda v: str(v)[:40])
def test_shell_line_runs(number: int, line: str, readme_env: str) -> None:
    if line.startswith(RUN_BY_CI) or line.startswith(LOCAL_SERVER):
        return  # see RUN_BY_CI / LOCAL_SERVER: the suite cannot run itself or stop a server
    for part in re.split(r"\s*(?:&&|;)\s*", line):
        argv = shlex.split(part)
        assert argv[0] == "session-graph", f"README.md:{number}: no way to run {part!r} here"
        result = CliRunner().invoke(app, argv[1:])
        assert result.exit_code == 0, (number, part, result.stdout, result.stderr)
