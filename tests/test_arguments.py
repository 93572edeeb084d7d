"""Every public method checks its arguments: bad ones raise the project's typed errors.

One table (``ROWS``) holds, for every public method of ``SessionStore`` (and
``session_graph.compare.compare``), at least one bad value for each of its arguments. Each row
runs on every target (memory, Neo4j sync, Neo4j async) against a tenant holding a session,
its messages and a fork, and must raise ``ValidationError`` (or, for input that is valid but
names nothing stored, the ``NotFoundError`` it names) and leave the tenant exactly as it was:
no bare TypeError, AttributeError, OverflowError or pydantic error, nothing written. Every
bad value is one a careless call could make work (a truthy string for a flag, the bytes of
an existing id), so a missing check shows as a write or an answer, not as an error.

``test_every_public_method_and_argument_has_rows`` walks ``dir(SessionStore)``: a new public
method, or a new argument of one, fails it until the table has rows for it.

The second half checks the rule for names entering the store (``validate_name``): a table of
characters (each refused Unicode category, NFD against NFC, spaces) through every entry
point, while lookups keep the lenient check so ids an older release stored stay reachable.
"""

from __future__ import annotations

import inspect
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timezone
from typing import Any

import pytest

from session_graph import (
    AsyncSessionStore,
    ForkPointError,
    MessageNotFoundError,
    NewMessage,
    SessionNotFoundError,
    SessionStore,
    Settings,
    ValidationError,
)
from session_graph._async.memory import AsyncMemoryBackend
from session_graph.compare import compare
from session_graph.core import new_op
from session_graph.ids import new_id, validate_name
from session_graph.runtime import ConnectionInfo
from tests.stores import fingerprint, graph_state

STORE = "<the store under test>"  # placeholders, replaced when a row runs
ASYNC_STORE = "<an AsyncSessionStore>"
ABSENT = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"  # a message id nothing has
MESSAGE = {"role": "user", "content": "x"}
NAIVE = datetime(2025, 1, 1)
INFO = ConnectionInfo(uri="bolt://127.0.0.1:1")

ROWS: list[Any] = []


class Unordered(AbstractSet[Any]):
    """A set of messages (messages are dicts, so a built-in set cannot hold them)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __contains__(self, item: object) -> bool:
        return item in self.items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


MESSAGE_SET = Unordered([MESSAGE, {"role": "assistant", "content": "y"}])


def _shown(value: Any) -> str:
    text = ascii(value)
    return text if len(text) <= 30 else text[:27] + "..."


def row(
    method: str, arg: str, *args: Any, error: type[Exception] = ValidationError, **kwargs: Any
) -> None:
    """One call: ``method(*args, **kwargs)``, whose argument ``arg`` holds the bad value."""
    shown = ", ".join([*map(_shown, args), *(f"{k}={_shown(v)}" for k, v in kwargs.items())])
    ROWS.append(pytest.param(method, arg, args, kwargs, error, id=f"{method}.{arg}({shown})"))


# -- session ids, wherever a method looks one up -------------------------------------------------

BAD_LOOKUP_IDS = [None, b"s"]  # b"s" would name the stored session if decoded

LOOKUPS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    # method: (argument, the other arguments, keyword arguments)
    "get_session": ("session_id", (), {}),
    "update_session": ("session_id", (), {"title": "x"}),
    "delete_session": ("session_id", (), {}),
    "append": ("session_id", (MESSAGE,), {}),
    "extend": ("session_id", ([MESSAGE],), {}),
    "add_message": ("session_id", ("user", "x"), {}),
    "messages": ("session_id", (), {}),
    "message_count": ("session_id", (), {}),
    "history_ids": ("session_id", (), {}),
    "pop_last": ("session_id", (), {}),
    "clear_history": ("session_id", (), {}),
    "fork": ("session_id", (), {"id": "new"}),
    "explore": ("session_id", (None, ["a"]), {}),
    "edit": ("session_id", (0, MESSAGE), {}),
    "merge": ("fork_id", (), {}),
    "parent": ("session_id", (), {}),
    "children": ("session_id", (), {}),
    "siblings": ("session_id", (), {}),
    "ancestors": ("session_id", (), {}),
    "descendants": ("session_id", (), {}),
    "root": ("session_id", (), {}),
    "depth": ("session_id", (), {}),
    "tree": ("session_id", (), {}),
    "common_ancestor": ("a", ("f",), {}),
}
for _method, (_arg, _rest, _kw) in LOOKUPS.items():
    for _bad in BAD_LOOKUP_IDS:
        row(_method, _arg, _bad, *_rest, **_kw)
    row(_method, _arg, "nope", *_rest, error=SessionNotFoundError, **_kw)
for _bad in BAD_LOOKUP_IDS:
    row("common_ancestor", "b", "s", _bad)
for _bad in [5, b"s"]:  # None: the parent
    row("merge", "into", "f", into=_bad)
row("common_ancestor", "b", "s", "nope", error=SessionNotFoundError)
for _bad in [5, ["s"], "", " ", "s\x00", "x" * 257]:  # the shared check, once
    row("get_session", "session_id", _bad)
row("merge", "into", "f", into="nope", error=SessionNotFoundError)

# -- sessions ------------------------------------------------------------------------------------

for _bad in [5, b"new", "", " new", "new\u202e", ["new"]]:
    row("create_session", "id", _bad)
for _bad in [5, b"t", "x" * 1001]:
    row("create_session", "title", "new", title=_bad)
for _bad in [5, b"u", ["u"], "u\u200b"]:
    row("create_session", "user_id", "new", user_id=_bad)
for _bad in ["a", {"a": 1}, {"a"}, None, [b"a"], [f"t{i}" for i in range(65)]]:
    row("create_session", "tags", "new", tags=_bad)
for _bad in [None, b"active", "deleted", "act\u00adive"]:
    row("create_session", "status", "new", status=_bad)
for _bad in ["ab", [("a", 1)], {"k": b"v"}, {"k": float("nan")}]:
    row("create_session", "metadata", "new", metadata=_bad)
for _bad in ["yes", 1, None]:
    row("create_session", "get_or_create", "new", get_or_create=_bad)

for _bad in ["a", {"a": 1}, {"a"}, None, [b"a"], ("a\x00",)]:
    row("list_sessions", "tags", tags=_bad)
for _bad in [5, b"u", ["u"]]:
    row("list_sessions", "user_id", user_id=_bad)
for _bad in [["x"], 5, b"active"]:
    row("list_sessions", "status", status=_bad)
for _bad in ["2024-01-01T00:00:00+00:00", NAIVE, date(2024, 1, 1)]:
    row("list_sessions", "created_after", created_after=_bad)
for _bad in [5, NAIVE]:
    row("list_sessions", "created_before", created_before=_bad)
for _bad in ["yes", 1, None]:
    row("list_sessions", "include_deleted", include_deleted=_bad)
for _bad in [0, 10_001, True, 1.5, "10", 2**64]:
    row("list_sessions", "limit", limit=_bad)
for _bad in [5, b"abc", "garbage!!"]:
    row("list_sessions", "cursor", cursor=_bad)

for _bad in [5, b"t", ["t"]]:
    row("update_session", "title", "s", title=_bad)
for _bad in [5, b"u", "u\u202e", " u"]:
    row("update_session", "user_id", "s", user_id=_bad)
for _bad in ["a", {"a"}, None, [b"a"], ["e\u0301"]]:
    row("update_session", "tags", "s", tags=_bad)
for _bad in [None, 5, b"x", "deleted"]:
    row("update_session", "status", "s", status=_bad)
for _bad in [None, "ab", [("a", 1)]]:
    row("update_session", "metadata", "s", metadata=_bad)

for _bad in ["yes", 1, None]:
    row("delete_session", "purge", "s", purge=_bad)

# -- messages ------------------------------------------------------------------------------------

_BAD_MESSAGES: list[Any] = [
    None,
    5,
    "hi",
    b"hi",
    [],
    MESSAGE_SET,
    [MESSAGE, 5],
    {"role": "user", "content": b"hi"},
    {"role": "user", "content": bytearray(b"hi")},
    {"role": "user", "content": memoryview(b"hi")},
    {"role": b"user"},
    {"role": None},
    {"role": "user", "id": ABSENT.encode()},
    {"role": "user", "id": "not-a-uuid"},
    {"role": "user", "id": uuid.UUID(ABSENT)},
    {"role": "user", "provider": b"p"},
    {"role": "user", "model": b"m"},
    {"role": "tool", "tool_name": b"t"},
    {"role": "tool", "tool_call_id": b"c"},
    {"role": "user", "input_tokens": True},
    {"role": "user", "input_tokens": 1.0},
    {"role": "user", "input_tokens": "5"},
    {"role": "user", "input_tokens": 2**63},
    {"role": "user", "output_tokens": -1},
    {"role": "user", "cost": True},
    {"role": "user", "cost": "0.1"},
    {"role": "user", "cost": float("inf")},
    {"role": "user", "created_at": "2025-01-01T00:00:00"},  # text without a timezone
    {"role": "user", "created_at": "yesterday"},
    {"role": "user", "created_at": 0},
    {"role": "user", "created_at": NAIVE},
    {"role": "user", "metadata": "ab"},
    {"role": "user", "metadata": {"k": b"v"}},
    {"role": "user", "unknown": 1},
]
for _bad in _BAD_MESSAGES:
    row("append", "messages", "s", _bad)
for _bad in [
    None,
    5,
    "ab",
    b"ab",
    MESSAGE,
    NewMessage(role="user"),
    MESSAGE_SET,
    [{"role": "user", "content": b"x"}],
    [5],
]:
    row("extend", "messages", "s", _bad)

for _bad in [5, b"user", None, "robot"]:
    row("add_message", "role", "s", _bad, "x")
for _bad in [b"hi", bytearray(b"hi"), 5, None]:
    row("add_message", "content", "s", "user", _bad)
for _fields in [
    {"provider": b"p"},
    {"input_tokens": True},
    {"cost": "1"},
    {"unknown": 1},
    {"created_at": "2025-01-01 00:00"},
]:
    row("add_message", "fields", "s", "user", "x", **_fields)

for _bad in ["a", True, 1.5, b"1", [0]]:  # any int is a slice bound (test_limits)
    row("messages", "start", "s", _bad)
for _bad in ["1", False, 2.0]:
    row("messages", "stop", "s", 0, _bad)

for _bad in [None, 5, ABSENT.encode(), "not-a-uuid", uuid.UUID(ABSENT), ""]:
    row("get_message", "message_id", _bad)
row("get_message", "message_id", ABSENT, error=MessageNotFoundError)

for _bad in [5, b"x", None, "", "\ud800"]:
    row("search", "text", _bad)
for _bad in [True, "5", 0, 10_001]:
    row("search", "limit", "x", limit=_bad)
row("search", "include_deleted", "x", include_deleted="yes")

# -- branching -----------------------------------------------------------------------------------

for _bad in [True, 1.5, 2**70, ["0"], ABSENT.encode()]:
    row("fork", "at", "s", _bad, id="new")
row("fork", "at", "s", "not-a-uuid", id="new", error=ForkPointError)
for _bad in [b"x", 5, " x", "x\u200b", "e\u0301"]:
    row("fork", "id", "s", id=_bad)
for _bad in [5, b"r", "r" * 1001, ["r"]]:
    row("fork", "reason", "s", id="new", reason=_bad)
for _bad in [5, b"t"]:
    row("fork", "title", "s", id="new", title=_bad)
for _bad in ["a", {"a": 1}, None, [b"a"], ["\u2066a"]]:
    row("fork", "tags", "s", id="new", tags=_bad)
for _bad in ["ab", 5, [("a", 1)]]:
    row("fork", "metadata", "s", id="new", metadata=_bad)
    row("fork", "fork_metadata", "s", id="new", fork_metadata=_bad)
row("fork", "fork_metadata", "s", id="new", fork_metadata={"k": b"v"})
for _bad in ["yes", 1, None]:
    row("fork", "before", "s", id="new", before=_bad)

for _bad in [True, 1.5, b"x", 2**70]:
    row("explore", "at", "s", _bad, ["a"])
for _bad in [
    None,
    5,
    "ab",
    b"ab",
    [],
    {"a", "b"},
    {"a": 1},
    [5],
    [b"a"],
    ["a", "a"],
    ["a\u202e"],
    [" a"],
    [{"name": b"a"}],
    [{"name": "a", "tags": {"x"}}],
    [{"name": "a", "tags": [b"x"]}],
    [{"name": "a", "title": b"t"}],
    [{"name": "a", "id": " x"}],
    [{"name": "a", "id": b"x"}],
    [{"name": "a", "metadata": "ab"}],
]:
    row("explore", "strategies", "s", None, _bad)

for _bad in [True, 1.5, "0", None, 2**70]:
    row("edit", "index", "s", _bad, MESSAGE)
for _bad in [None, "hi", [MESSAGE], 5, {"role": "user", "content": b"hi"}]:
    row("edit", "message", "s", 0, _bad)
for _bad in [b"x", 5, "x\u2028"]:
    row("edit", "id", "s", 0, MESSAGE, id=_bad)
for _bad in [5, b"r", None]:
    row("edit", "reason", "s", 0, MESSAGE, reason=_bad)

# -- store lifecycle and maintenance -------------------------------------------------------------

for _bad in [5, b"session_history", None, "no_such_query"]:
    row("run_saved", "name", _bad)
for _params in [
    {},  # id missing
    {"id": "s", "tenant": "other"},
    {"id": "s", "idd": "s"},
    {"id": 2**70},
    {"id": b"s"},
    {"id": object()},
    {"id": "\ud800"},
    {"id": ["s", {1: "x"}]},
]:
    row("run_saved", "params", "session_history", **_params)

for _bad in ["yes", None]:
    row("connect", "setup", setup=_bad)
for _bad in [5, "x", {"tenant": "t"}]:
    row("in_memory", "settings", _bad)
for _bad in [5, "db"]:
    row("in_memory", "database", database=_bad)
row("open", "settings", 5)
row("open", "settings", {"tenant": "t"})
# With these settings a missing check fails fast (nothing answers on port 1) and never starts
# a local server.
NOWHERE = Settings(neo4j_uri="bolt://127.0.0.1:1", connect_timeout=0.2, retry_attempts=1)
for _bad in ["yes", None]:
    row("open", "setup", NOWHERE, setup=_bad)
for _bad in [5, b"x", "", " x"]:
    row("open", "instance", NOWHERE, instance=_bad)
for _bad in [None, "bolt://127.0.0.1:1"]:
    row("connect_to", "info", _bad, NOWHERE)
for _bad in [None, 5]:
    row("connect_to", "settings", INFO, _bad)  # INFO: port 1, where nothing answers

# -- compare -------------------------------------------------------------------------------------

for _bad in [5, None, ASYNC_STORE]:
    row("compare", "store", _bad, ["s", "f"])
for _bad in [
    "sf",
    b"sf",
    None,
    5,
    ["s"],
    ["s", "s"],
    {"s", "f"},
    {"s": 1, "f": 2},
    ["s", 5],
    ["s", b"f"],
]:
    row("compare", "session_ids", STORE, _bad)
row("compare", "session_ids", STORE, ["s", "nope"], error=SessionNotFoundError)
for _bad in ["k", 5, [5], {"a"}, [b"k"], [""]]:
    row("compare", "score_keys", STORE, ["s", "f"], score_keys=_bad)

NO_ARGUMENTS = {"close", "purge", "refresh", "setup"}  # nothing to check: no arguments


# -- running a row -------------------------------------------------------------------------------


def populate(store: SessionStore) -> None:
    """A session ``s`` with two messages and a fork ``f`` at the first."""
    store.create_session("s", title="t", user_id="u", tags=["a"])
    store.append("s", [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}])
    store.fork("s", 0, id="f")


def snapshot(store: SessionStore) -> Any:
    """What a refused call must leave as it was: on Neo4j every node and relationship of the
    tenant with all their properties (``graph_state``), in memory ``fingerprint``."""
    state = graph_state(store)
    return fingerprint(store) if state is None else state


def invoke(store: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    def real(value: Any) -> Any:
        if value is STORE:
            return store
        if value is ASYNC_STORE:
            return AsyncSessionStore(AsyncMemoryBackend(store.tenant))
        return value

    args = tuple(real(a) for a in args)
    if method == "compare":
        return compare(*args, **kwargs)
    result = getattr(store, method)(*args, **kwargs)
    if method == "open":  # a context manager: its body runs when entered
        if hasattr(result, "__aenter__"):
            store.run(result.__aenter__())
            store.run(result.__aexit__(None, None, None))
        else:
            with result:
                pass
    return result


# The checks run before any I/O in the one (async) implementation; the sync store is
# generated from it, so the table runs on the reference and on the sync store over Neo4j (the
# async store over Neo4j passes the rest of this file and the conformance suite).
@pytest.mark.parametrize(("method", "arg", "args", "kwargs", "error"), ROWS)
@pytest.mark.parametrize("open_store", ["memory", "neo4j"], indirect=True)
def test_bad_arguments_are_refused_typed_and_change_nothing(
    store: SessionStore,
    method: str,
    arg: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    populate(store)
    before = snapshot(store)
    with pytest.raises(error):
        invoke(store, method, args, kwargs)
    assert snapshot(store) == before


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: getattr(cls, name)
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


def _arguments(fn: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]


def test_every_public_method_and_argument_has_rows() -> None:
    """A public method (or an argument of one) without a row in ``ROWS`` fails here."""
    methods = _public(SessionStore)
    assert set(methods) == set(_public(AsyncSessionStore))
    methods["compare"] = compare
    covered: dict[str, set[str]] = {}
    for param in ROWS:
        method, arg = param.values[:2]
        covered.setdefault(method, set()).add(arg)
    missing = []
    for name, fn in sorted(methods.items()):
        arguments = _arguments(fn)
        if name in NO_ARGUMENTS:
            assert arguments == [], f"{name} takes arguments now: give each rows in ROWS"
            continue
        missing.extend(f"{name}({a})" for a in arguments if a not in covered.get(name, set()))
    assert missing == [], "no bad value in ROWS for: " + ", ".join(missing)
    assert set(covered) <= set(methods), "rows for methods that do not exist"


# -- names entering the store: the strict rule ---------------------------------------------------

REFUSED_CHARACTERS = {
    "Cc BEL": "\x07",
    "Cc NEL": "\x85",
    "Cf RLO": "\u202e",
    "Cf LRI": "\u2066",
    "Cf LRM": "\u200e",
    "Cf ZWSP": "\u200b",
    "Cf ZWJ": "\u200d",
    "Cf BOM": "\ufeff",
    "Cf SHY": "\u00ad",
    "Cf tag": "\U000e0041",
    "Cs": "\ud800",
    "Co BMP": "\ue000",
    "Co plane 15": "\U000f0000",
    "Cn unassigned": "\u0378",
    "Cn noncharacter": "\uffff",
    "Zl": "\u2028",
    "Zp": "\u2029",
}
NAME_CASES: list[Any] = [
    pytest.param(f"ab{ch}cd", f"U+{ord(ch):04X}", "at index 2", id=label)
    for label, ch in REFUSED_CHARACTERS.items()
]
NAME_CASES += [
    pytest.param(" abc", "U+0020", "at index 0", id="leading space"),
    pytest.param("abc ", "U+0020", "at index 3", id="trailing space"),
    pytest.param("\u00a0abc", "U+00A0", "at index 0", id="leading NBSP"),
    pytest.param("abc\u3000", "U+3000", "at index 3", id="trailing ideographic space"),
    pytest.param("cafe\u0301", "U+0301", "NFC", id="NFD e+acute"),
    pytest.param("\u212b", "U+212B", "NFC", id="angstrom sign"),
    pytest.param("\u1100\u1161", "U+1161", "NFC", id="hangul jamo"),
]
ACCEPTED_NAMES = [
    "caf\u00e9",  # NFC
    "a b",  # inner space
    "x\u3000y",  # inner ideographic space
    "\U0001f600",  # emoji
    "\u03a3\u03c2",
    "\ufb00",  # a compatibility ligature is NFC
    "\u65e5\u672c",
    "' }) MATCH (n) DETACH DELETE n //",
]

# Every way a caller-given name enters the store (``t`` is the name).
ENTRY_POINTS: dict[str, Callable[[Any, str], object]] = {
    "create_session(id)": lambda s, t: s.create_session(t),
    "create_session(user_id)": lambda s, t: s.create_session("new", user_id=t),
    "create_session(tags)": lambda s, t: s.create_session("new", tags=["ok", t]),
    "create_session(status)": lambda s, t: s.create_session("new", status=t),
    "update_session(user_id)": lambda s, t: s.update_session("s", user_id=t),
    "update_session(tags)": lambda s, t: s.update_session("s", tags=[t]),
    "update_session(status)": lambda s, t: s.update_session("s", status=t),
    "fork(id)": lambda s, t: s.fork("s", id=t),
    "fork(tags)": lambda s, t: s.fork("s", id="new", tags=[t]),
    "explore(name)": lambda s, t: s.explore("s", None, ["ok", t]),
    "explore(id)": lambda s, t: s.explore("s", None, [{"name": "n", "id": t}]),
    "explore(tags)": lambda s, t: s.explore("s", None, [{"name": "n", "tags": [t]}]),
    "edit(id)": lambda s, t: s.edit("s", 0, MESSAGE, id=t),
}
# Lookups take the lenient check: a name the strict rule refuses simply finds nothing.
LOOKUP_POINTS: dict[str, Callable[[Any, str], object]] = {
    "get_session": lambda s, t: s.get_session(t),
    "messages": lambda s, t: s.messages(t),
    "append": lambda s, t: s.append(t, MESSAGE),
    "delete_session": lambda s, t: s.delete_session(t),
    "fork(parent)": lambda s, t: s.fork(t, id="new"),
    "ancestors": lambda s, t: s.ancestors(t),
    "merge(into)": lambda s, t: s.merge("f", into=t),
}


@pytest.mark.parametrize(("name", "char", "where"), NAME_CASES)
def test_names_entering_the_store_refuse_invisible_and_ambiguous_text(
    store: SessionStore, name: str, char: str, where: str
) -> None:
    """Every entry point refuses the name, saying which character and where; nothing written."""
    populate(store)
    before = fingerprint(store)
    wrong: list[str] = []
    for point, call in ENTRY_POINTS.items():
        try:
            call(store, name)
        except ValidationError as exc:
            if char not in str(exc) or where not in str(exc):
                wrong.append(f"{point}: message does not name {char} {where}: {exc}")
        except Exception as exc:
            wrong.append(f"{point}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{point}: accepted")
    assert wrong == [], "\n".join(wrong)
    assert fingerprint(store) == before
    with pytest.raises(ValueError, match=re.escape(char)):  # ConfigError, a ValidationError
        Settings(tenant=name)


@pytest.mark.parametrize(("name", "char", "where"), NAME_CASES)
def test_lookups_of_names_that_cannot_be_created_find_nothing(
    store: SessionStore, name: str, char: str, where: str
) -> None:
    """The lenient lookup check: a name outside the strict rule is simply not found."""
    populate(store)
    before = fingerprint(store)
    # Only control characters and lone surrogates are refused on lookup, as before the rule.
    lenient = not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name)
    expected = SessionNotFoundError if lenient else ValidationError
    wrong: list[str] = []
    for point, call in LOOKUP_POINTS.items():
        try:
            call(store, name)
        except expected:
            continue
        except Exception as exc:
            wrong.append(f"{point}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{point}: answered")
    assert wrong == [], "\n".join(wrong)
    if lenient:
        assert store.list_sessions(user_id=name, tags=[name], status=name).items == ()
    assert fingerprint(store) == before


@pytest.mark.parametrize("name", ACCEPTED_NAMES, ids=ascii)
def test_visible_nfc_names_are_accepted_at_every_entry_point(
    store: SessionStore, name: str
) -> None:
    populate(store)
    made = store.create_session(name, user_id=name, tags=[name], status=name)
    assert (made.id, made.user_id, made.tags, made.status) == (name, name, (name,), name)
    assert store.get_session(name) == made
    fork = store.fork(name, id=f"{name}/fork", tags=[name])
    [explored] = store.explore("s", None, [{"name": name, "id": f"{name}/x", "tags": [name]}])
    assert store.parent(fork.id) == name and store.parent(explored.id) == "s"
    assert explored.fork is not None and explored.fork.reason == name
    assert {s.id for s in store.list_sessions(tags=[name]).items} == {name, fork.id, explored.id}
    assert Settings(tenant=name).tenant == name


def test_ids_an_older_release_stored_stay_reachable(store: SessionStore) -> None:
    """A session whose id the strict rule refuses (written before it, here straight through
    the backend) is still found, read, appended to, forked and listed by lookups."""
    populate(store)
    old = "old\u200bid "  # a zero-width space and a trailing space: refused on entry now
    with pytest.raises(ValidationError):
        validate_name(old, what="session id")
    assert validate_name(old, lookup=True) == old
    props = {"id": old, "title": None, "user_id": "u\u202e", "tags": ["t\u200d"],
             "status": "active", "metadata": "{}"}  # fmt: skip
    op = new_op()
    rec, mine = _backend_write(store, lambda ops: ops.create_session(props, op))
    assert mine and rec.id == old
    assert store.get_session(old).id == old
    [msg] = store.append(old, {"role": "user", "content": "still here"})
    assert store.messages(old) == [msg] and store.history_ids(old) == [msg.id]
    fork = store.fork(old, id="new-fork")
    assert store.parent(fork.id) == old and store.ancestors(fork.id) == [old]
    assert {s.id for s in store.list_sessions(user_id="u\u202e").items} == {old, fork.id}
    assert [s.id for s in store.list_sessions(tags=["t\u200d"]).items] == [old]
    assert store.update_session(old, title="renamed").title == "renamed"
    with pytest.raises(ValidationError):  # entering again: refused, named
        store.create_session(old, get_or_create=True)
    with pytest.raises(ValidationError):
        store.update_session(old, user_id="u\u202e")


def _backend_write(store: Any, fn: Callable[[Any], Any]) -> Any:
    """``store.backend.auto(fn)`` for any target (the async one runs on the test loop)."""
    result = store.backend.auto(fn)
    return store.run(result) if inspect.iscoroutine(result) else result


def test_validate_name_messages_name_the_character_and_how_to_fix() -> None:
    with pytest.raises(ValidationError, match=r"U\+202E \(RIGHT-TO-LEFT OVERRIDE\) at index 3"):
        validate_name("abc\u202e", what="tag")
    with pytest.raises(ValidationError, match=r"unicodedata\.normalize\('NFC'"):
        validate_name("cafe\u0301")
    with pytest.raises(ValidationError, match=r"decode it first, e\.g\. data\.decode\('utf-8'\)"):
        validate_name(b"abc")  # type: ignore[arg-type]
    assert validate_name(unicodedata.normalize("NFC", "cafe\u0301")) == "caf\u00e9"
    fresh = new_id()
    assert validate_name(fresh) == fresh


def test_bytes_content_is_refused_with_a_hint(store: SessionStore) -> None:
    store.create_session("s")
    before = fingerprint(store)
    for data in (b"hi", bytearray(b"hi"), memoryview(b"hi")):
        with pytest.raises(ValidationError, match=r"content must be str, not \w+; decode it first"):
            store.append("s", {"role": "user", "content": data})
    assert fingerprint(store) == before


def test_created_at_takes_iso_text_with_a_timezone(store: Any) -> None:
    """JSON input carries times as text: ISO-8601 with a timezone is the same instant."""
    store.create_session("iso")
    [msg] = store.append("iso", {"role": "user", "created_at": "2025-01-31T10:30:00+01:00"})
    assert msg.created_at == datetime(2025, 1, 31, 9, 30, tzinfo=timezone.utc)
    assert store.get_message(msg.id).created_at == msg.created_at
