"""No ``session-graph`` command ends in a traceback: bad arguments and bad environments.

Every case runs a command against the real Neo4j server of the test session (tests/cli_support
.py) and checks the contract: a non-zero exit code, and on stderr exactly one line starting
with ``error:`` (exit code 1) or click's usage error (exit code 2); never a traceback, and
never ``internal error``, which would mean a bug reached the user as an unexplained exception.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from session_graph import SessionStore
from session_graph.runtime import ConnectionInfo
from tests.cli_support import Result, Run, build_tree

ROOT_DIR = Path(__file__).resolve().parent.parent
DEEP = "[" * 40 + "]" * 40
DEEP_OBJECT = '{"a": ' * 40 + "1" + "}" * 40
HUGE = "99999999999999999999999"
SEARCH = ("query", "search_messages", "-p", "text=x", "-p", "include_deleted:=false")


@dataclass
class Ids:
    root: str
    a: str
    b: str
    empty: str
    other: str
    deleted: str


@pytest.fixture
def ids(cli: Run, neo4j_store: SessionStore) -> Ids:
    """A tree (root, forks a and b), an empty session, another tree, a deleted session."""
    root, a, b = build_tree(neo4j_store)
    empty = neo4j_store.create_session(title="empty").id
    other = neo4j_store.create_session(title="other").id
    neo4j_store.append(other, {"role": "user", "content": "hi"})
    deleted = neo4j_store.create_session(title="gone").id
    neo4j_store.append(deleted, {"role": "user", "content": "bye"})
    neo4j_store.delete_session(deleted)
    return Ids(root, a, b, empty, other, deleted)


def fill(args: tuple[str, ...], ids: Ids) -> list[str]:
    """``args`` with ``{root}``, ``{a}``, ... replaced by those sessions' ids."""
    filled = []
    for arg in args:
        for name, sid in ids.__dict__.items():
            arg = arg.replace("{" + name + "}", sid)
        filled.append(arg)
    return filled


def check_error(result: Result, code: int) -> None:
    """The one contract of a failed command."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code
    if code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), result.stderr
        assert "internal error" not in lines[0], result.stderr
        assert result.stdout == ""
    else:
        assert "Usage:" in result.output, result.output  # (a group without a command: its help)


# (arguments, expected exit code, stdin); {root}, {a}, ... are the sessions of ``ids``.
ARGUMENTS: list[tuple[tuple[str, ...], int, str | None]] = [
    # demo, init
    (("demo", "--bogus"), 2, None),
    (("init", "extra"), 2, None),
    # sessions
    (("sessions", "--limit", "0"), 2, None),
    (("sessions", "--limit", "lots"), 2, None),
    (("sessions", "--tag", ""), 1, None),
    (("sessions", "--user", ""), 1, None),
    (("sessions", "--user", "a\x01b"), 1, None),
    (("sessions", "--status", ""), 1, None),
    (("sessions", "--tag", "\udcff"), 1, None),
    # show, tree
    (("show",), 2, None),
    (("show", "no-such-session"), 1, None),
    (("show", "abc"), 1, None),
    (("show", ""), 1, None),
    (("show", "\udcff\udcfe\udcfd\udcfc\udcfb\udcfa"), 1, None),
    (("show", "x" * 300), 1, None),
    (("tree", "no-such-session"), 1, None),
    (("tree", "…"), 1, None),
    (("tree", "{root}", "--json", "extra"), 2, None),
    # fork, explore
    (("fork", "{root}", "--at", "99"), 1, None),
    (("fork", "{root}", "--at", HUGE), 1, None),
    (("fork", "{root}", "--at", "-99"), 1, None),
    (("fork", "{root}", "--at", "not-a-message"), 1, None),
    (("fork", "{root}", "--id", ""), 1, None),
    (("fork", "{root}", "--id", "{a}"), 1, None),
    (("fork", "{root}", "--title", "t" * 1001), 1, None),
    (("fork", "{deleted}"), 1, None),
    (("fork", "{empty}", "--at", "0"), 1, None),
    (("explore", "{root}"), 2, None),
    (("explore", "{root}", "-s", "x", "-s", "x"), 1, None),
    (("explore", "{root}", "-s", ""), 1, None),
    (("explore", "{root}", "-s", "x", "--at", "99"), 1, None),
    # compare, merge
    (("compare", "{a}"), 1, None),
    (("compare", "{a}", "{a}"), 1, None),
    (("compare", "{a}", "{other}"), 1, None),
    (("compare", "{a}", "{b}", "--best-by", "nothing-like-it"), 1, None),
    (("compare", "{a}", "no-such-session"), 1, None),
    (("merge", "{root}"), 1, None),
    (("merge", "{a}", "--into", "no-such-session"), 1, None),
    (("merge", "{a}", "--into", "{other}"), 1, None),
    (("merge", "{a}", "--into", "ab"), 1, None),
    # delete, purge
    (("delete", "no-such-session"), 1, None),
    (("delete",), 2, None),
    (("purge", "everything"), 2, None),
    # search
    (("search", ""), 1, None),
    (("search", "\udcff"), 1, None),
    (("search", "x", "--limit", "0"), 2, None),
    (("search", "x", "--limit", "100000"), 2, None),
    # new
    (("new", "--metadata", "[1]"), 1, None),
    (("new", "--metadata", "{"), 1, None),
    (("new", "--metadata", DEEP_OBJECT), 1, None),
    (("new", "--metadata", "[" * 100_000), 1, None),
    (("new", "--user", ""), 1, None),
    (("new", "--tag", ""), 1, None),
    (("new", "--id", ""), 1, None),
    (("new", "--id", "{root}"), 1, None),
    (("new", "--id", "{deleted}"), 1, None),
    (("new", "t" * 1001), 1, None),
    (("new", "\udcff"), 1, None),
    # append
    (("append", "{root}"), 1, None),
    (("append", "{root}", "--role", "user"), 1, None),
    (("append", "{root}", "--content", "x"), 1, None),
    (("append", "{root}", "-r", "user", "-r", "tool", "-c", "x"), 1, None),
    (("append", "{root}", "--role", "robot", "--content", "x"), 2, None),
    (("append", "{root}", "-r", "user", "-c", "x", "--file", "-"), 1, "{}"),
    (("append", "{root}", "--role", "user", "--content", "\udcff"), 1, None),
    (("append", "{deleted}", "--role", "user", "--content", "x"), 1, None),
    (("append", "{root}", "--file", "/nonexistent/messages.jsonl"), 1, None),
    (("append", "{root}", "--file", "/"), 1, None),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "content": "a"}\nnot json\n'),
    (("append", "{root}", "--file", "-"), 1, '{"role": "robot", "content": "a"}\n'),
    (("append", "{root}", "--file", "-"), 1, '{"content": "no role"}\n'),
    (("append", "{root}", "--file", "-"), 1, '[{"role": "user"}, 7]'),
    (("append", "{root}", "--file", "-"), 1, '"just a string"'),
    (("append", "{root}", "--file", "-"), 1, "[1, 2\n"),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "input_tokens": ' + HUGE + "}"),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "created_at": "yesterday"}'),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "id": "not-a-uuid"}'),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "bogus": 1}'),
    (("append", "{root}", "--file", "-"), 1, '{"role": "user", "metadata": ' + DEEP_OBJECT + "}"),
    (("append", "{root}", "--file", "-"), 1, DEEP),
    # pop, clear, edit
    (("pop", "{empty}"), 1, None),
    (("pop", "{deleted}"), 1, None),
    (("clear", "{root}"), 1, None),
    (("clear", "{deleted}", "--yes"), 1, None),
    (("edit", "{root}", "--content", "x"), 2, None),
    (("edit", "{root}", "--at", "1"), 2, None),
    (("edit", "{root}", "--at", "one", "--content", "x"), 2, None),
    (("edit", "{root}", "--at", HUGE, "--content", "x"), 2, None),
    (("edit", "{root}", "--at", "99", "--content", "x"), 1, None),
    (("edit", "{root}", "--at", "99", "--content", "x", "--role", "user"), 1, None),
    (("edit", "{root}", "--at", "1", "--content", "x", "--role", "robot"), 2, None),
    (("edit", "{root}", "--at", "1", "--content", "x", "--id", "{a}"), 1, None),
    (("edit", "{deleted}", "--at", "0", "--content", "x"), 1, None),
    # export
    (("export", "{root}", "--format", "pdf"), 2, None),
    (("export", "{root}", "--out", "/proc/no-such-dir"), 1, None),
    (("export", "{root}", "--out", "/dev/null"), 1, None),
    (("export", "no-such-session", "--format", "json"), 1, None),
    # query
    (("query",), 2, None),
    (("query", "no_such_query"), 1, None),
    (("query", "create_session"), 1, None),
    (("query", "session_subtree"), 1, None),
    (("query", "session_subtree", "-p", "id"), 1, None),
    (("query", "session_subtree", "-p", "id=abc"), 1, None),
    (("query", "session_subtree", "-p", "id=no-such-session"), 1, None),
    (("query", "session_subtree", "-p", "id={root}", "-p", "tenant=x"), 1, None),
    (("query", "session_subtree", "-p", "id={root}", "-p", "1x=2"), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", f"limit:={HUGE}"), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", f"limit:=-{HUGE}"), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", "limit:=[1, " + HUGE + "]"), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", "limit:={"), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", "limit:=" + DEEP), 1, None),
    (("query", "search_messages", "-p", "text=x", "-p", "limit:=" + "[" * 100_000), 1, None),
    (("query", "search_messages", "-p", "text=\udcff", "-p", "limit:=1"), 1, None),
    ((*SEARCH, "-p", "limit=ten"), 1, None),
    ((*SEARCH, "-p", "limit:=-1"), 1, None),
    # the local server
    (("neo4j",), 2, None),
    (("neo4j", "start", "--instance", "../up"), 1, None),
    (("neo4j", "stop", "--instance", ""), 1, None),
    (("neo4j", "status", "--instance", "a/b"), 1, None),
    (("neo4j", "reboot"), 2, None),
    (("no-such-command",), 2, None),
]


@pytest.mark.parametrize(
    ("args", "code", "stdin"),
    ARGUMENTS,
    ids=[" ".join(a)[:60].encode("ascii", "replace").decode() for a, _, _ in ARGUMENTS],
)
def test_bad_arguments(
    cli: Run, ids: Ids, args: tuple[str, ...], code: int, stdin: str | None
) -> None:
    result = cli(*fill(args, ids), code=code, input=stdin)

    check_error(result, code)


def test_bad_arguments_change_nothing(cli: Run, ids: Ids, neo4j_store: SessionStore) -> None:
    before = {sid: neo4j_store.history_ids(sid) for sid in (ids.root, ids.a, ids.b, ids.empty)}
    count = len(neo4j_store.list_sessions(include_deleted=True).items)

    for args, code, stdin in ARGUMENTS:
        if args[0] in {"append", "pop", "clear", "edit", "new", "fork", "explore", "merge"}:
            cli(*fill(args, ids), code=code, input=stdin)

    neo4j_store.refresh()
    assert {sid: neo4j_store.history_ids(sid) for sid in before} == before
    assert len(neo4j_store.list_sessions(include_deleted=True).items) == count


# -- the messages of a few, where the root cause is ours -----------------------------------------


def test_an_integer_parameter_outside_64_bits_is_named(cli: Run) -> None:
    result = cli("query", "search_messages", "-p", "text=x", "-p", f"limit:={HUGE}", code=1)

    assert result.stderr.startswith(f"error: --param limit: {HUGE} is outside the signed 64-bit")


def test_file_errors_name_the_path_and_the_reason(cli: Run, ids: Ids, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")

    below = cli("export", ids.root, "--out", str(a_file / "below"), code=1)
    missing = cli("append", ids.root, "--file", str(tmp_path / "missing.jsonl"), code=1)

    assert below.stderr.strip() == f"error: {a_file / 'below'}: Not a directory"
    assert (
        missing.stderr.strip() == f"error: {tmp_path / 'missing.jsonl'}: No such file or directory"
    )


# -- bad environments ----------------------------------------------------------------------------

# (variable without the prefix, value, command): each run with the test server configured,
# then the variable set. None as the command means `sessions`.
ENVIRONMENTS: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("NEO4J_URI", "bolt://[::1", None),
    ("NEO4J_URI", "http://example.com", None),
    ("NEO4J_URI", "bolt://", None),
    ("NEO4J_URI", "bolt://localhost:99999", None),
    ("NEO4J_URI", "bolt://localhost:port", None),
    ("NEO4J_URI", "neo4j://localhost/a/path", None),
    ("NEO4J_URI", "localhost:7687", None),
    ("NEO4J_URI", "bolt://127.0.0.1:1", None),  # nothing listens (CONNECT_TIMEOUT=1 below)
    ("NEO4J_URI", "bolt://no-such-host.invalid:7687", None),
    ("NEO4J_USER", "nobody-by-that-name", None),
    ("NEO4J_DATABASE", "nosuchdatabase", None),
    ("TENANT", "", None),
    ("TENANT", "a\x01b", None),
    ("TENANT", "t" * 300, None),
    ("CONNECT_TIMEOUT", "soon", None),
    ("CONNECT_TIMEOUT", "-1", None),
    ("CONNECT_TIMEOUT", "0", None),
    ("CONNECT_TIMEOUT", "nan", None),
    ("RETRY_ATTEMPTS", "0", None),
    ("RETRY_ATTEMPTS", "many", None),
    ("MAX_MESSAGE_BYTES", "-1", None),
    ("MAX_MESSAGE_BYTES", "1e3", None),
    ("MAX_METADATA_BYTES", "0", None),
    ("APPEND_CHUNK", "0", None),
    ("APPEND_CHUNK", "-10", None),
    ("APPEND_CHUNK", "2000000", None),
    ("MIRROR_MAX_LAG", "-1", None),
    ("MIRROR_MAX_LAG", "later", None),
    ("MIRROR_MAX_SESSIONS", "0", None),
    ("ENCRYPTION_KEYS", "not-a-key", None),
    ("ENCRYPTION_KEYS", "c2hvcnQ=", None),  # base64, but not 32 bytes
    ("DOCKER", "sometimes", None),
    ("LOCAL_PORT", "http", None),
    ("LOCAL_PORT", "-1", None),
    ("LOCAL_PORT", "0", None),
    ("LOCAL_PORT", "70000", None),
    ("LOCAL_HEAP", "lots", None),
    ("LOCAL_HEAP", "-512m", None),
    ("LOCAL_PAGECACHE", "0", None),
    ("NEO4J_VERSION", "../../elsewhere", None),
    ("DEBUG", "maybe", None),
    ("HOME", "{file}/below", None),  # no URI for these: the local server's files
    ("HOME", "{file}", None),
    ("HOME", "/proc/no-such-dir", None),
    ("HOME", "/proc", None),
    ("HOME", "{file}/below", ("neo4j", "start", "--instance", "h")),
    ("HOME", "/proc/no-such-dir", ("neo4j", "start", "--instance", "h")),
    ("HOME", "{file}/below", ("export", "{root}")),  # with the URI: the default export dir
    ("HOME", "/proc", ("export", "{root}")),
]


@pytest.mark.parametrize(
    ("name", "value", "command"),
    ENVIRONMENTS,
    ids=[f"{n}={v[:30]!r}" + (f" {' '.join(c)}" if c else "") for n, v, c in ENVIRONMENTS],
)
def test_bad_environment(
    cli: Run,
    ids: Ids,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    command: tuple[str, ...] | None,
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("SESSION_GRAPH_CONNECT_TIMEOUT", "1")
    if (name == "HOME" and command is None) or (command and command[0] == "neo4j"):
        monkeypatch.delenv("SESSION_GRAPH_NEO4J_URI")  # the local server, under HOME
    monkeypatch.setenv(f"SESSION_GRAPH_{name}", value.format(file=a_file))
    args = fill(command or ("sessions",), ids)

    result = cli(*args, code=1)

    check_error(result, 1)
    if name == "HOME":
        assert "SESSION_GRAPH_HOME is" in result.stderr  # which setting the path came from


def test_a_bad_home_fails_before_any_download(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    monkeypatch.delenv("SESSION_GRAPH_NEO4J_URI")
    monkeypatch.setenv("SESSION_GRAPH_HOME", str(tmp_path / "a-file" / "home"))
    monkeypatch.setenv("PATH", "")  # no java, no mvn: reaching for them would say so

    result = cli("sessions", code=1)

    assert "Not a directory" in result.stderr and "mvn" not in result.stderr


# -- unexpected errors ---------------------------------------------------------------------------


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom\nsecond line")


def test_an_unexpected_error_is_one_line_that_names_its_type(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SessionStore, "list_sessions", _boom)  # a bug, wherever it may be

    result = cli("sessions", code=1)

    assert result.stderr == (
        "error: internal error (RuntimeError): boom second line; run with SESSION_GRAPH_DEBUG=1 "
        "for the traceback\n"
    )
    assert result.stdout == "" and "Traceback" not in result.output


def test_debug_prints_the_traceback_too(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SessionStore, "list_sessions", _boom)
    monkeypatch.setenv("SESSION_GRAPH_DEBUG", "1")

    crashed = cli("sessions", code=1)
    failed = cli("show", "no-such-session", code=1)

    assert crashed.stderr.startswith("Traceback (most recent call last):")
    assert "in _boom" in crashed.stderr
    assert crashed.stderr.splitlines()[-1].startswith("error: internal error (RuntimeError)")
    assert failed.stderr.startswith("Traceback") and "SessionNotFoundError" in failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("error: no session matches")


# -- the installed entry point, in a process of its own ------------------------------------------

CRASH = """
import sys
from session_graph.store import SessionStore
from session_graph.cli import main

def boom(*args, **kwargs):
    raise OverflowError("int too large to convert")

if sys.argv[1:2] == ["crash"]:
    SessionStore.list_sessions = boom
    sys.argv[1:2] = []
main()
"""


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"SESSION_GRAPH_NEO4J_URI": "bolt://[::1"}, ["sessions"]),
        ({"SESSION_GRAPH_HOME": "/proc/no-such-dir", "SESSION_GRAPH_NEO4J_URI": ""}, ["tree", "x"]),
        ({}, ["query", "search_messages", "-p", "text=x", "-p", f"limit:={HUGE}"]),
        ({}, ["crash", "sessions"]),
        ({}, ["show", "no-such-session"]),
    ],
    ids=["uri", "home", "param", "unexpected", "not-found"],
)
def test_the_console_script_never_prints_a_traceback(
    neo4j_info: ConnectionInfo, tenant: str, env: dict[str, str], args: list[str]
) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT_DIR),
        "NO_COLOR": "1",
        "SESSION_GRAPH_NEO4J_URI": neo4j_info.uri,
        "SESSION_GRAPH_NEO4J_USER": neo4j_info.user,
        "SESSION_GRAPH_NEO4J_PASSWORD": neo4j_info.password or "",
        "SESSION_GRAPH_TENANT": tenant,
        **env,
    }
    environment.pop("SESSION_GRAPH_DEBUG", None)

    done = subprocess.run(
        [sys.executable, "-c", CRASH, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT_DIR,
    )

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "╭" not in done.stderr  # nor typer's framed one
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert ("internal error (OverflowError)" in lines[0]) == (args[0] == "crash")
