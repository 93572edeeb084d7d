"""The ``session-graph`` command line, run in-process (typer's CliRunner) against real Neo4j.

Every test gets a tenant of its own (``SESSION_GRAPH_TENANT``) on the session's server, so
tests never see each other's sessions. Data is set up through the library (``neo4j_store``,
the same tenant) where a test needs known ids. The ``cli`` fixture is in tests/cli_support.py.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
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
from session_graph.runtime import LocalNeo4j
from tests.cli_support import Run, build_tree, ids_in, plain_terminal
from tests.neo4j_server import INSTANCE_PREFIX

README = Path(__file__).resolve().parent.parent / "README.md"


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
    found = cli(
        "query", "search_messages", "-p", "text=italy", "-p", "limit:=5",
        "-p", "include_deleted:=false",
    ).stdout  # fmt: skip
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
    assert result.stderr.startswith("error: no session matches 'no-such-session'")
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
    # A user of its own: repeated failed logins lock a Neo4j user out for a while.
    monkeypatch.setenv("SESSION_GRAPH_NEO4J_USER", "sg-no-such-user")
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


def test_neo4j_start_status_stop(local_instance: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from session_graph.cli.common import Waiting

    monkeypatch.setattr(Waiting, "EVERY", 0.5)  # stderr is no terminal: a line every 0.5 s
    runner = CliRunner()
    started = time.monotonic()

    start = runner.invoke(app, ["neo4j", "start", "--instance", local_instance])
    assert start.exit_code == 0, start.output
    assert "local Neo4j started at bolt://127.0.0.1:" in start.stdout
    progress = re.findall(r"waiting for Neo4j to accept Bolt connections \((\d+) s\)", start.stderr)
    assert progress and progress == sorted(progress, key=int)
    password_file = LocalNeo4j(Settings(), local_instance).password_file
    password = password_file.read_text(encoding="utf-8").strip()

    again = runner.invoke(app, ["neo4j", "start", "--instance", local_instance])
    assert "already running" in again.stdout

    status = runner.invoke(app, ["neo4j", "status", "--instance", local_instance])
    assert status.exit_code == 0, status.output
    for field in ("running", "pid", "port", "uri", "version", "home"):
        assert field in status.stdout
    assert "yes" in status.stdout and f"stored in {password_file}" in status.stdout
    as_json = runner.invoke(app, ["neo4j", "status", "--instance", local_instance, "--json"])
    assert as_json.exit_code == 0, as_json.output
    described = json.loads(as_json.stdout)
    assert described["running"] is True and described["instance"] == local_instance
    assert start.stdout.count(described["uri"]) == 1 and isinstance(described["pid"], int)
    for result in (start, again, status, as_json):
        assert password not in result.output

    stop = runner.invoke(app, ["neo4j", "stop", "--instance", local_instance])
    assert stop.exit_code == 0, stop.output
    assert "stopped" in stop.stdout
    after = runner.invoke(app, ["neo4j", "status", "--instance", local_instance])
    assert re.search(r"running\s+no", after.stdout)
    assert after.exit_code == 3  # not running, as `systemctl status` says it
    after_json = runner.invoke(app, ["neo4j", "status", "--instance", local_instance, "--json"])
    assert after_json.exit_code == 3 and json.loads(after_json.stdout)["running"] is False
    stop_again = runner.invoke(app, ["neo4j", "stop", "--instance", local_instance])
    assert "not running" in stop_again.stdout
    assert time.monotonic() - started < 60


def test_neo4j_status_exits_3_for_an_instance_that_does_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_GRAPH_HOME", str(tmp_path))
    monkeypatch.delenv("SESSION_GRAPH_NEO4J_URI", raising=False)
    plain_terminal(monkeypatch)
    runner = CliRunner()

    shown = runner.invoke(app, ["neo4j", "status", "--instance", "never-started"])
    described = runner.invoke(app, ["neo4j", "status", "--instance", "never-started", "--json"])

    assert shown.exit_code == 3 and re.search(r"running\s+no", shown.stdout)
    assert described.exit_code == 3
    assert json.loads(described.stdout) == {
        "instance": "never-started", "running": False, "pid": None, "port": None, "uri": None,
        "version": Settings().neo4j_version, "started_at": None,
        "home": str(tmp_path / "instances" / "never-started"), "user": "neo4j",
        "password_file": str(tmp_path / "instances" / "never-started" / "password"),
    }  # fmt: skip
    assert not (tmp_path / "instances").exists()  # asking starts or creates nothing
    bad = runner.invoke(app, ["neo4j", "status", "--instance", "../x"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: instance name")


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
        "delete", "purge", "search", "new", "append", "pop", "clear", "edit", "export", "query",
        "checkpoints", "neo4j start", "neo4j stop", "neo4j status",
    ]  # fmt: skip
