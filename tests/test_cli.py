"""The ``session-graph`` command line, run in-process (typer's CliRunner) against real Neo4j.

Every test gets a tenant of its own (``SESSION_GRAPH_TENANT``) on the session's server, so
tests never see each other's sessions. Data is set up through the library (``neo4j_store``,
the same tenant) where a test needs known ids.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import networkx as nx
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from session_graph import SessionStore
from session_graph.cli import app
from session_graph.config import Settings
from session_graph.demo import DEMO_TAG
from session_graph.export import short_id
from session_graph.runtime import ConnectionInfo, LocalNeo4j
from tests.neo4j_server import INSTANCE_PREFIX

README = Path(__file__).resolve().parent.parent / "README.md"
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
    """Runs the CLI against the session's server in this test's tenant; init done."""
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", neo4j_info.uri)
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_USER", neo4j_info.user)
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_DATABASE", neo4j_info.database)
    if neo4j_info.password is None:
        monkeypatch.delenv("SESSION_GRAPH_NEO4J_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("SESSION_GRAPH_NEO4J_PASSWORD", neo4j_info.password)
    monkeypatch.setenv("SESSION_GRAPH_TENANT", tenant)
    monkeypatch.setenv("SESSION_GRAPH_HOME", str(tmp_path / "home"))  # default export dir
    plain_terminal(monkeypatch)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        raw = runner.invoke(app, list(args))
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


# -- demo and init ------------------------------------------------------------------------------


def test_demo_prints_a_tree_and_a_summary(cli: Run, neo4j_store: SessionStore) -> None:
    result = cli("demo")

    out = result.stdout
    assert "Checkout 502s after the 09:35 deploy" in out  # the root's node of the tree
    assert "├──" in out and "└──" in out
    for label in ("Summary", "sessions", "messages", "tokens", "cost", "time"):
        assert label in out
    assert "6 (1 root, 5 forks" in out
    assert "session-graph tree " in out
    assert "neo4j stop" not in out  # a configured server is not ours to stop
    assert "Traceback" not in result.output
    neo4j_store.refresh()
    demo = neo4j_store.list_sessions(tags=[DEMO_TAG]).items
    assert len(demo) == 6
    tool = [m for m in neo4j_store.messages(demo[0].id) if m.role == "tool"]
    assert tool and tool[0].tool_name and tool[0].tool_call_id
    assert sum(1 for s in demo if s.fork is not None) == 5


def test_demo_makes_a_fresh_tree_each_run_and_clean_removes_old_ones(
    cli: Run, neo4j_store: SessionStore
) -> None:
    cli("demo")
    cli("demo")
    assert len(neo4j_store.list_sessions(tags=[DEMO_TAG]).items) == 12

    result = cli("demo", "--clean")

    assert "12 session(s) of earlier demo runs" in result.stdout
    assert len(neo4j_store.list_sessions(tags=[DEMO_TAG]).items) == 6


def test_init_is_repeatable(cli: Run) -> None:
    first = cli("init")
    second = cli("init")

    assert "nothing to apply" in second.stdout
    for result in (first, second):
        assert "0001_constraints" in result.stdout and "0002_indexes" in result.stdout


# -- reading ------------------------------------------------------------------------------------


def test_sessions_lists_and_filters(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, b = build_tree(neo4j_store)
    neo4j_store.create_session(title="other", tags=["y"], user_id="bob", status="archived")

    everything = cli("sessions").stdout
    assert all(sid in everything for sid in (root, a, b))
    assert "4 sessions" in everything

    tagged = cli("sessions", "--tag", "cli").stdout
    assert root in tagged and a not in tagged and "1 session" in tagged
    by_bob = cli("sessions", "--user", "bob").stdout
    assert "other" in by_bob and root not in by_bob
    archived = cli("sessions", "--status", "archived").stdout
    assert "other" in archived and root not in archived and "1 session" in archived
    limited = cli("sessions", "--limit", "2").stdout
    assert "2 sessions (more exist" in limited


def test_show_and_tree(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, b = build_tree(neo4j_store)

    shown = cli("show", a).stdout
    assert "be brief" in shown and "The capital of France is Paris." in shown
    assert "And of Italy?" not in shown  # after the fork point: not in a's history
    assert f"forked from {root} at #1 (try a)" in shown
    assert "geo" in shown  # the tool message's tool name

    tree = cli("tree", b).stdout
    for sid in (root, a, b):
        assert short_id(sid) in tree
    assert "branch a" in tree and "branch b" in tree and "@1" in tree


def test_short_ids_resolve(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, _ = build_tree(neo4j_store)

    assert "branch a" in cli("show", short_id(a)).stdout  # "…" + last 8 characters
    assert "branch a" in cli("show", a[-8:]).stdout
    assert "root" in cli("tree", root[:-4]).stdout


def test_search(cli: Run, neo4j_store: SessionStore) -> None:
    _, a, _ = build_tree(neo4j_store)

    result = cli("search", "CAPITAL of france")

    assert "2 messages" in result.stdout
    assert short_id(a) in result.stdout


# -- writing ------------------------------------------------------------------------------------


def test_fork_at_a_position_and_at_a_message_id(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, _ = build_tree(neo4j_store)

    by_position = ids_in(cli("fork", root, "--at", "2", "--reason", "why not").stdout)[-1]
    message_id = neo4j_store.history_ids(a)[2]
    by_message = ids_in(cli("fork", a, "--at", message_id, "--title", "t").stdout)[-1]
    newest = ids_in(cli("fork", root, "--at", "-1").stdout)[-1]

    neo4j_store.refresh()
    first = neo4j_store.get_session(by_position)
    assert first.fork is not None and first.fork.position == 2
    assert first.fork.parent_id == root and first.fork.reason == "why not"
    second = neo4j_store.get_session(by_message)
    assert second.fork is not None and second.fork.message_id == message_id
    assert second.title == "t" and second.message_count == 3
    assert neo4j_store.message_count(newest) == 4


def test_explore_makes_one_fork_per_strategy(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)

    result = cli("explore", root, "--at", "1", "--strategy", "terse", "-s", "verbose")

    created = ids_in(result.stdout)
    assert len(created) == 2
    assert "terse" in result.stdout and "verbose" in result.stdout
    neo4j_store.refresh()
    assert sorted(neo4j_store.children(root))[-2:] == sorted(created)
    for sid in created:
        fork = neo4j_store.get_session(sid).fork
        assert fork is not None and fork.position == 1


def test_compare_prints_table_diff_and_best(cli: Run, neo4j_store: SessionStore) -> None:
    _, a, b = build_tree(neo4j_store)

    result = cli("compare", a, b, "--best-by", "cost")

    out = result.stdout
    assert "Comparison" in out and "cost" in out and "tokens" in out
    assert "diff against" in out and "+assistant: Paris" in out
    assert f"best by cost: {b}" in out


def test_compare_needs_one_tree(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)
    other = neo4j_store.create_session(title="alone").id

    result = cli("compare", root, other, code=1)

    assert result.stderr.startswith("error:")


def test_merge_into_parent_and_into_a_target(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, b = build_tree(neo4j_store)

    assert "copied 2 message(s)" in cli("merge", a).stdout
    assert "nothing to merge" in cli("merge", a).stdout
    into = cli("merge", b, "--into", a).stdout
    assert f"into {short_id(a)}" in into

    neo4j_store.refresh()
    assert neo4j_store.get_session(a).status == "merged"
    assert neo4j_store.message_count(root) == 6
    assert neo4j_store.messages(a)[-1].content == "Paris"


def test_delete_then_purge(cli: Run, neo4j_store: SessionStore) -> None:
    _, a, b = build_tree(neo4j_store)

    cli("delete", a)
    listed = cli("sessions").stdout
    assert a not in listed and b in listed
    assert a in cli("sessions", "--status", "deleted").stdout
    assert "purged 2 message(s), 1 session node(s)" in cli("purge").stdout
    assert "purged 0 message(s)" in cli("purge").stdout

    deleted = cli("delete", b, "--purge").stdout
    assert f"deleted {b}" in deleted and "purged 1 message(s), 1 session node(s)" in deleted


def test_writes_to_a_deleted_session_are_one_line_errors(
    cli: Run, neo4j_store: SessionStore
) -> None:
    _, a, _ = build_tree(neo4j_store)
    cli("delete", a)

    result = cli("fork", a, code=1)

    assert result.stderr.startswith("error: session") and "deleted" in result.stderr


# -- exports and queries ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mermaid", "graphml", "html", "json"])
def test_export_writes_a_file_that_parses(
    cli: Run, neo4j_store: SessionStore, tmp_path: Path, fmt: str
) -> None:
    root, a, b = build_tree(neo4j_store)
    out_dir = tmp_path / "exports"

    result = cli("export", a, "--format", fmt, "--out", str(out_dir))

    files = list(out_dir.iterdir())
    assert len(files) == 1 and str(files[0]) in result.stdout.replace("\n", "")
    path = files[0]
    text = path.read_text(encoding="utf-8")
    if fmt == "mermaid":
        assert path.suffix == ".mmd" and text.startswith("flowchart")
        assert "branch a" in text
    elif fmt == "graphml":
        graph = nx.read_graphml(path)
        assert set(graph.nodes) == {root, a, b}
        assert set(graph.edges) == {(root, a), (root, b)}
    elif fmt == "html":
        assert path.suffix == ".html" and "<html" in text.lower()
        assert "branch a" in text
    else:
        messages = json.loads(text)
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
        assert messages[-1]["tool_name"] == "geo" and messages[-1]["tool_call_id"] == "c1"
        assert messages[2]["session_id"] == a and messages[0]["session_id"] == root


def test_export_defaults_to_home_and_dash_means_stdout(
    cli: Run, neo4j_store: SessionStore, tmp_path: Path
) -> None:
    root, _, _ = build_tree(neo4j_store)

    cli("export", root, "--format", "json")
    files = list((tmp_path / "home" / "exports").glob("*.json"))
    assert len(files) == 1

    printed = cli("export", root, "--format", "json", "--out", "-").stdout
    assert json.loads(printed) == json.loads(files[0].read_text(encoding="utf-8"))
    graphml = cli("export", root, "--format", "graphml", "--out", "-").stdout
    assert graphml.lstrip().startswith("<?xml") and root in graphml


def test_export_names_hostile_ids_safely(
    cli: Run, neo4j_store: SessionStore, tmp_path: Path
) -> None:
    sid = neo4j_store.create_session("../../[bold]x[/] y", title="[red]t[/]").id
    neo4j_store.append(sid, {"role": "user", "content": "hi"})

    shown = cli("show", sid).stdout
    assert "[red]t[/]" in shown and "../../[bold]x[/] y" in shown  # printed, not markup
    cli("export", sid, "--format", "json", "--out", str(tmp_path / "out"))
    assert [p.parent for p in (tmp_path / "out").iterdir()] == [tmp_path / "out"]


def test_query_list_and_a_saved_query(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, b = build_tree(neo4j_store)

    listed = cli("query", "--list").stdout
    assert "session_ancestors" in listed and "A session's ancestors" in listed
    assert "create_session" not in listed
    assert "create_session" in cli("query", "--list", "--all").stdout

    subtree = cli("query", "session_subtree", "--param", f"id={root}").stdout
    assert a in subtree and b in subtree and "2 rows" in subtree
    found = cli("query", "search_messages", "-p", "text=italy", "-p", "limit:=5").stdout
    assert "And of Italy?" in found and "1 row" in found


def test_query_errors(cli: Run) -> None:
    for args, needle in [
        (("query", "session_subtree"), "needs --param id="),
        (("query", "create_session"), "writes"),
        (("query", "session_subtre"), "did you mean session_subtree"),
        (("query", "fork_fanout", "-p", "tenant=other"), "SESSION_GRAPH_TENANT"),
        (("query", "fork_fanout", "-p", "novalue"), "name=value"),
    ]:
        result = cli(*args, code=1)
        assert result.stderr.startswith("error:") and needle in result.stderr
    assert cli("query", code=2).exit_code == 2


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("show", "no-such-session"),
        ("tree", "no-such-session"),
        ("fork", "no-such-session"),
        ("merge", "no-such-session"),
        ("delete", "no-such-session"),
        ("export", "no-such-session", "--format", "json"),
        ("compare", "no-such-session", "other"),
    ],
)
def test_unknown_session_is_one_red_line(cli: Run, args: tuple[str, ...]) -> None:
    result = cli(*args, code=1)

    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: no session 'no-such-session'")
    assert "Traceback" not in result.output


def test_fork_point_outside_the_history(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)

    result = cli("fork", root, "--at", "99", code=1)

    assert result.stderr.startswith("error: fork point 99 is outside")


def test_usage_errors_exit_2(cli: Run) -> None:
    assert cli("fork", code=2).exit_code == 2
    assert cli("export", "x", "--format", "pdf", code=2).exit_code == 2
    assert cli("no-such-command", code=2).exit_code == 2


def test_bad_configuration_is_one_line(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", "http://example.com")

    result = cli("sessions", code=1)

    assert result.stderr.startswith("error: bad configuration: SESSION_GRAPH_NEO4J_URI")
    assert len(result.stderr.strip().splitlines()) == 1


def test_wrong_password_is_one_line(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_PASSWORD", "not-the-password")

    result = cli("sessions", code=1)

    assert result.stderr.startswith("error: Neo4j refused the login")


# -- the local server ---------------------------------------------------------------------------


@pytest.fixture
def local_instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local server instance of this test's own, in the default home (its jar cache)."""
    for name in ("NEO4J_URI", "NEO4J_PASSWORD", "LOCAL_PORT"):
        monkeypatch.delenv(f"SESSION_GRAPH_{name}", raising=False)
    plain_terminal(monkeypatch)
    name = f"{INSTANCE_PREFIX}cli-{os.getpid()}"  # reaped by the plugin if this run dies
    yield name
    LocalNeo4j(Settings(local_port=None), name).destroy()


def test_neo4j_start_status_stop(local_instance: str) -> None:
    runner = CliRunner()
    started = time.monotonic()

    start = runner.invoke(app, ["neo4j", "start", "--instance", local_instance])
    assert start.exit_code == 0, start.output
    assert "local Neo4j started at bolt://127.0.0.1:" in start.stdout
    password_file = LocalNeo4j(Settings(), local_instance).password_file
    password = password_file.read_text(encoding="utf-8").strip()

    again = runner.invoke(app, ["neo4j", "start", "--instance", local_instance])
    assert "already running" in again.stdout

    status = runner.invoke(app, ["neo4j", "status", "--instance", local_instance])
    assert status.exit_code == 0, status.output
    for field in ("running", "pid", "port", "uri", "version", "home"):
        assert field in status.stdout
    assert "yes" in status.stdout and f"stored in {password_file}" in status.stdout
    for result in (start, again, status):
        assert password not in result.output

    stop = runner.invoke(app, ["neo4j", "stop", "--instance", local_instance])
    assert stop.exit_code == 0, stop.output
    assert "stopped" in stop.stdout
    after = runner.invoke(app, ["neo4j", "status", "--instance", local_instance])
    assert re.search(r"running\s+no", after.stdout)
    stop_again = runner.invoke(app, ["neo4j", "stop", "--instance", local_instance])
    assert "not running" in stop_again.stdout
    assert time.monotonic() - started < 60


# -- documentation ------------------------------------------------------------------------------


def command_paths() -> list[str]:
    """Every command of the app, sub-commands as ``neo4j start``."""
    paths: list[str] = []

    def walk(command: object, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "hidden", False):
                continue
            if getattr(sub, "commands", None):
                walk(sub, f"{prefix}{name} ")
            else:
                paths.append(prefix + name)

    walk(get_command(app), "")
    return paths


def readme_cli_section() -> str:
    """The README section whose heading mentions the CLI / command line, with its subsections."""
    lines = README.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading and re.search(r"\bCLI\b|command line", heading.group(2), re.IGNORECASE):
            level = len(heading.group(1))
            end = next(
                (j for j in range(i + 1, len(lines))
                 if (h := re.match(r"^(#+)\s", lines[j])) and len(h.group(1)) <= level),
                len(lines),
            )  # fmt: skip
            return "\n".join(lines[i:end])
    return ""


def test_every_command_is_in_the_readme_cli_section() -> None:
    section = readme_cli_section()
    assert section, "README.md has no section whose heading mentions the CLI"
    missing = [p for p in command_paths() if f"session-graph {p}" not in section]
    assert not missing, f"README.md's CLI section does not mention: {missing}"


def test_the_command_list_is_what_the_readme_documents() -> None:
    assert command_paths() == [
        "demo", "init", "sessions", "show", "tree", "fork", "explore", "compare", "merge",
        "delete", "purge", "search", "export", "query", "neo4j start", "neo4j stop",
        "neo4j status",
    ]  # fmt: skip
