"""pytest plugin for the command line tests: the ``cli`` fixture and shared helpers.

``cli`` runs ``session-graph`` in-process (typer's CliRunner) against the session's real
Neo4j server, in the test's own tenant (``SESSION_GRAPH_TENANT``), so tests never see each
other's sessions; data is set up through the library (``neo4j_store``, the same tenant)
where a test needs known ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from session_graph import SessionStore
from session_graph.cli import app
from session_graph.runtime import ConnectionInfo

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

Run = Callable[..., "Result"]


class Result:
    """What a command printed and returned."""

    def __init__(self, exit_code: int, stdout: str, stderr: str, exception: object) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.exception = exception

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as a pipe gets it: no colours, no spinners, wide enough to keep ids whole."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def cli(
    neo4j_info: ConnectionInfo, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    """Runs the CLI against the session's server in this test's tenant; init done.

    ``cli(*args, code=0, input=None)``: asserts the exit code; ``input`` is stdin.
    """
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", neo4j_info.uri)
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_USER", neo4j_info.user)
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_DATABASE", neo4j_info.database)
    if neo4j_info.password is None:
        monkeypatch.delenv("SESSION_GRAPH_NEO4J_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("SESSION_GRAPH_NEO4J_PASSWORD", neo4j_info.password)
    monkeypatch.setenv("SESSION_GRAPH_TENANT", tenant)
    monkeypatch.setenv("SESSION_GRAPH_HOME", str(tmp_path / "home"))  # default export dir
    monkeypatch.delenv("SESSION_GRAPH_DEBUG", raising=False)
    plain_terminal(monkeypatch)
    runner = CliRunner()

    def run(*args: str, code: int = 0, input: str | bytes | None = None) -> Result:
        raw = runner.invoke(app, list(args), input=input)
        result = Result(raw.exit_code, raw.stdout, raw.stderr, raw.exception)
        assert result.exit_code == code, (
            f"session-graph {' '.join(args)} exited {result.exit_code}, not {code}:\n"
            f"{result.output}\n{raw.exception!r}"
        )
        return result

    run("init")
    yield run


def ids_in(text: str) -> list[str]:
    return re.findall(UUID, text)


def build_tree(store: SessionStore) -> tuple[str, str, str]:
    """root (4 messages) with forks a (at 1, +2) and b (at 1, +1); returns their ids."""
    root = store.create_session(title="root", tags=["cli", "x"], user_id="ann").id
    store.append(root, [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris.", "model": "m1", "input_tokens": 10,
         "output_tokens": 2, "cost": 0.001},
        {"role": "user", "content": "And of Italy?"},
    ])  # fmt: skip
    a = store.fork(root, 1, title="branch a", reason="try a").id
    store.append(a, [
        {"role": "assistant", "content": "The capital of France is Paris.", "model": "m2",
         "input_tokens": 12, "output_tokens": 8, "cost": 0.004},
        {"role": "tool", "content": "lookup: Paris", "tool_name": "geo", "tool_call_id": "c1"},
    ])  # fmt: skip
    b = store.fork(root, 1, title="branch b").id
    store.append(b, {"role": "assistant", "content": "Paris", "model": "m3", "input_tokens": 12,
                     "output_tokens": 1, "cost": 0.0005})  # fmt: skip
    return root, a, b
