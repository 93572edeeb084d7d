"""Hostile input, property-based: every value round-trips exactly or is refused, typed.

Each property runs on the memory and the real Neo4j backend (``store``). An independent
oracle in this file decides, for every generated input, whether the store must accept it
(then what is read back must equal what was sent, exactly: types, float signs, timezones) or
refuse it (then with ``session_graph.errors.ValidationError`` or a subclass, and the database
must be unchanged: listing, histories, change-log seq and, on Neo4j, the tenant's node and
relationship counts).

The hypothesis examples are run by an inner ``@given`` function so that the memory backend can
run many more of them than the server; ``EXAMPLES`` counts them and the last test of the module
prints the totals.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_graph import (
    ConflictError,
    Message,
    MessageNotFoundError,
    SessionExistsError,
    SessionStore,
    ValidationError,
)
from session_graph._async.neo4j import AsyncNeo4jBackend
from session_graph._sync.memory import MemoryBackend
from tests.stores import fingerprint

EXAMPLES: Counter[str] = Counter()

MAX_INT = 2**63 - 1
MAX_NAME = 256
MAX_FIELD = 256
MAX_TITLE = 1000
MAX_TAGS = 64
MAX_STATUS = 64
MAX_DEPTH = 32
ROLES = ("system", "user", "assistant", "tool")
_SURROGATE = re.compile("[\ud800-\udfff]")

# -- helpers ---------------------------------------------------------------------------------


def on_neo4j(store: SessionStore) -> bool:
    return not isinstance(store.backend, MemoryBackend)


def assert_refused(
    store: SessionStore,
    sids: Sequence[str],
    action: Callable[[], object],
    error: type[Exception] = ValidationError,
) -> None:
    before = fingerprint(store, sids)
    with pytest.raises(error):
        action()
    assert fingerprint(store, sids) == before


def same(a: Any, b: Any) -> bool:
    """Exact equality: same types all the way down, floats bit for bit (-0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


NAME_REFUSED = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def valid_name(value: str) -> bool:
    """Ids, user ids, tags, statuses entering the store: 1-256 characters, not blank, none of
    the invisible or ambiguous categories, no whitespace at either end, already NFC."""
    return (
        1 <= len(value) <= MAX_NAME
        and value.strip() == value != ""
        and not any(unicodedata.category(ch) in NAME_REFUSED for ch in value)
        and unicodedata.normalize("NFC", value) == value
    )


def metadata_problem(value: dict[str, Any], limit: int = 64_000) -> str | None:
    """Why metadata must be refused (None: it must be stored); iterative, any depth."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            if level > MAX_DEPTH:
                return "depth"
            for key, child in item.items():
                if has_surrogate(key):
                    return "surrogate key"
                stack.append((child, level + 1))
        elif isinstance(item, list):
            if level > MAX_DEPTH:
                return "depth"
            stack.extend((child, level + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "not finite"
        elif isinstance(item, str) and has_surrogate(item):
            return "surrogate"
    encoded = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(encoded.encode("utf-8")) > limit:
        return "size"
    return None


def to_ms(value: datetime) -> datetime:
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def check(
    store: SessionStore,
    name: str,
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    *,
    memory: int,
    neo4j: int,
) -> None:
    """Run ``body`` on ``strategy``'s examples, as many as the backend's budget says."""
    backend = "neo4j" if on_neo4j(store) else "memory"
    key = f"{name}[{backend}]"

    def prop(value: Any) -> None:
        body(value)
        EXAMPLES[key] += 1  # examples that ran to the end

    # Every property shares this inner function's source: give each its own key in the
    # example database, so a saved failure replays in the test that found it.
    prop._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
    budget = neo4j if backend == "neo4j" else memory
    if isinstance(store.backend, AsyncNeo4jBackend):
        # The async store runs the same statements as the sync one (generated from one
        # source): half the examples test its driver path, and keep the suite in budget.
        budget = max(1, budget // 2)
    run = settings(
        max_examples=budget,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )(given(strategy)(prop))
    run()


class Rotation:
    """Sessions that take turns holding appended messages, so no history grows long."""

    def __init__(self, store: SessionStore, per_session: int = 25) -> None:
        self.store = store
        self.per_session = per_session
        self.count = 0

    def next(self) -> str:
        sid = f"rot-{self.count // self.per_session}"
        if self.count % self.per_session == 0:
            self.store.create_session(sid, get_or_create=True)
        self.count += 1
        return sid


# -- strategies ------------------------------------------------------------------------------

SPECIALS = [
    "\x00",
    "\x7f",
    "\x85",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2066",
    "\u200d",
    "\ufeff",
    "\u0301",
    "e\u0301",
    "\u0338",
    "\u2028",
    "\u2029",
    "\U0001f600",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1fa\U0001f1f3",
    "\U0010ffff",
    "\ufffd",
    "'",
    '"',
    "`",
    "\\",
    "\\u0027",
    "$",
    "$tenant",
    "{",
    "}",
    "{0}",
    "%s",
    "//",
    "/*",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\u3000",
    "\u03a3",
    "\u03c2",
    "\u0130",
    "\u0131",
    "\u00df",
    "\ufb00",
    "\u01c5",
    "' }) MATCH (n) DETACH DELETE n //",
]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]

_CHARS = st.characters(exclude_categories=("Cs",))


def _sprinkle(base: str, extras: list[tuple[str, int]]) -> str:
    for extra, at in extras:
        i = at % (len(base) + 1)
        base = base[:i] + extra + base[i:]
    return base


def texts(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text of any Unicode (no lone surrogates) with a few of the awkward pieces above mixed in.

    ``min_size``/``max_size`` bound the random part; the pieces add up to three more.
    """
    extras = st.lists(st.tuples(st.sampled_from(SPECIALS), st.integers(0, 2**16)), max_size=3)
    return st.builds(_sprinkle, st.text(_CHARS, min_size=min_size, max_size=max_size), extras)


def long_texts(min_repeat: int, max_repeat: int) -> st.SearchStrategy[str]:
    return st.builds(lambda s, n: s * n, texts(1, 3), st.integers(min_repeat, max_repeat))


def _poison(text: str, surrogate: str, at: int) -> str:
    i = at % (len(text) + 1)
    return text[:i] + surrogate + text[i:]


def hostile(base: st.SearchStrategy[str], one_in: int = 8) -> st.SearchStrategy[str]:
    """``base``, or about one time in ``one_in`` the same with a lone surrogate inserted."""
    poisoned = st.builds(_poison, base, st.sampled_from(SURROGATES), st.integers(0, 2**16))
    return st.integers(0, one_in - 1).flatmap(lambda n: poisoned if n == 0 else base)


NAMES = hostile(
    st.one_of(
        texts(0, 12),
        texts(250, 262),
        st.sampled_from(["", " ", "\t", "\u3000", "a\x00b", "\x1f", "\u200f", "x" * 257]),
    )
)
INTS = st.one_of(
    st.integers(),
    st.integers(MAX_INT - 3, MAX_INT + 3),
    st.sampled_from(
        [0, -1, 2**31, 2**53 + 1, MAX_INT, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**1000]
    ),
)
FINITE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [1e308, -1e308, 1.7976931348623157e308, -0.0, 0.0, 5e-324, -5e-324, 2.2250738585072014e-308]
    ),
)
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
FLOATS = st.integers(0, 15).flatmap(lambda n: NOT_FINITE if n == 0 else FINITE)
KEYS = hostile(texts(0, 16), one_in=30)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, hostile(texts(0, 30), one_in=30))
JSON = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=4),
    max_leaves=16,
)


def nest(depth: int, kinds: list[bool], leaf: Any) -> dict[str, Any]:
    """Metadata nesting exactly ``depth`` levels (the top-level dict is level 1)."""
    value = leaf
    for i in range(depth - 1):
        value = [value] if kinds[i % len(kinds)] else {"k": value}
    return {"deep": value}


DEEP = st.builds(
    nest,
    st.one_of(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), st.just(100)),
    st.lists(st.booleans(), min_size=1, max_size=4),
    SCALARS,
)
BIG = st.builds(lambda k, s: {k: s}, KEYS, long_texts(2_000, 20_000))
METADATA = st.one_of(st.dictionaries(KEYS, JSON, max_size=6), DEEP, BIG)

FIXED_OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
ZONES = st.one_of(st.timezones(), FIXED_OFFSETS, st.just(timezone.utc))


# -- messages --------------------------------------------------------------------------------

MESSAGE_TEXT = st.fixed_dictionaries(
    {
        "role": st.sampled_from(ROLES),
        "content": hostile(st.one_of(texts(0, 60), texts(0, 600), long_texts(1000, 15_000))),
    },
    optional={
        name: hostile(st.one_of(texts(0, 30), texts(250, 262)))
        for name in ("provider", "model", "tool_name", "tool_call_id")
    },
)


def test_message_text_round_trips_or_is_refused(store: SessionStore) -> None:
    rotation = Rotation(store)

    def body(item: dict[str, Any]) -> None:
        sid = rotation.next()
        content = item["content"]
        fields = {k: v for k, v in item.items() if k not in ("role", "content")}
        valid = not has_surrogate(content) and len(content.encode("utf-8")) <= 1_000_000
        valid = valid and all(not has_surrogate(v) and len(v) <= MAX_FIELD for v in fields.values())
        if not valid:
            assert_refused(store, [sid], lambda: store.append(sid, item))
            return
        count = store.message_count(sid)
        [sent] = store.append(sid, item)
        [read] = store.messages(sid, -1)
        assert read == sent == store.get_message(sent.id)
        assert (read.role, read.content) == (item["role"], content)
        for name in ("provider", "model", "tool_name", "tool_call_id"):
            assert getattr(read, name) == fields.get(name)
        assert store.message_count(sid) == count + 1

    check(store, "message_text", MESSAGE_TEXT, body, memory=500, neo4j=100)


def _uuid_or_none(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


MESSAGE_IDS = st.one_of(
    hostile(texts(0, 40)),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: "{" + u.hex + "}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: f"{u}' }}) MATCH (n) DETACH DELETE n //"),
    st.uuids().map(lambda u: f" {u}\n"),
)


def test_message_ids_are_uuids_or_refused(store: SessionStore) -> None:
    """A message id is a UUID in any spelling ``uuid.UUID`` reads, stored canonical."""
    rotation = Rotation(store)
    stored: dict[str, tuple[str, Message]] = {}

    def body(mid: str) -> None:
        sid = rotation.next()
        canonical = _uuid_or_none(mid) if not has_surrogate(mid) else None
        if canonical is None:
            assert_refused(store, [sid], lambda: store.get_message(mid))
            assert_refused(store, [sid], lambda: store.append(sid, {"role": "user", "id": mid}))
            return
        again = {"role": "user", "content": "again", "id": mid}
        if canonical in stored:  # an id an earlier example stored
            owner, msg = stored[canonical]
            assert store.get_message(mid) == msg
            if owner == sid:  # a retried append: the stored message, nothing new
                assert store.append(sid, again) == [msg]
            else:
                assert_refused(store, [sid, owner], lambda: store.append(sid, again), ConflictError)
            return
        with pytest.raises(MessageNotFoundError):
            store.get_message(mid)
        [sent] = store.append(sid, {"role": "user", "content": mid, "id": mid})
        assert sent.id == canonical
        assert store.get_message(mid) == store.get_message(canonical) == sent
        assert store.append(sid, again) == [sent]
        stored[canonical] = (sid, sent)

    check(store, "message_ids", MESSAGE_IDS, body, memory=300, neo4j=60)


TOKENS = st.one_of(st.none(), INTS)
COSTS = st.one_of(st.none(), FLOATS)


def test_message_numbers_round_trip_or_are_refused(store: SessionStore) -> None:
    rotation = Rotation(store)

    def body(numbers: tuple[int | None, int | None, float | None]) -> None:
        sid = rotation.next()
        tin, tout, cost = numbers
        item = {
            "role": "assistant",
            "content": "n",
            "input_tokens": tin,
            "output_tokens": tout,
            "cost": cost,
        }
        valid = all(t is None or 0 <= t <= MAX_INT for t in (tin, tout)) and (
            cost is None or (math.isfinite(cost) and cost >= 0)
        )
        if not valid:
            assert_refused(store, [sid], lambda: store.append(sid, item))
            return
        [sent] = store.append(sid, item)
        for msg in (sent, store.get_message(sent.id), store.messages(sid, -1)[0]):
            assert same(msg.input_tokens, tin) and same(msg.output_tokens, tout)
            assert same(msg.cost, cost)

    check(store, "message_numbers", st.tuples(TOKENS, TOKENS, COSTS), body, memory=500, neo4j=100)


def test_metadata_round_trips_or_is_refused(store: SessionStore) -> None:
    rotation = Rotation(store)
    store.create_session("meta-parent")
    store.add_message("meta-parent", "user", "fork me")
    created: list[int] = [0]

    def body(case: tuple[dict[str, Any], str]) -> None:
        meta, where = case
        problem = metadata_problem(meta)
        if where == "message":
            sid = rotation.next()
            if problem:
                assert_refused(
                    store, [sid], lambda: store.append(sid, {"role": "user", "metadata": meta})
                )
                return
            [sent] = store.append(sid, {"role": "user", "metadata": meta})
            for msg in (sent, store.get_message(sent.id), store.messages(sid, -1)[0]):
                assert same(msg.metadata, meta)
            return
        created[0] += 1
        new_id = f"meta-{created[0]}"
        actions: dict[str, Callable[[], Any]] = {
            "session": lambda: store.create_session(new_id, metadata=meta),
            "update": lambda: store.update_session("meta-parent", metadata=meta),
            "fork": lambda: store.fork("meta-parent", id=new_id, metadata=meta),
            "fork_metadata": lambda: store.fork("meta-parent", id=new_id, fork_metadata=meta),
        }
        if problem:
            assert_refused(store, ["meta-parent"], actions[where])
            return
        returned = actions[where]()
        sid = "meta-parent" if where == "update" else new_id
        for session in (returned, store.get_session(sid)):
            if where == "fork_metadata":
                assert session.fork is not None and same(session.fork.metadata, meta)
                assert session.metadata == {}
            else:
                assert same(session.metadata, meta)

    where = st.sampled_from(["message", "message", "session", "update", "fork", "fork_metadata"])
    check(store, "metadata", st.tuples(METADATA, where), body, memory=600, neo4j=120)


DEEP_ENTRY_POINTS: dict[str, Callable[[SessionStore, dict[str, Any]], object]] = {
    "append": lambda s, m: s.append("s", {"role": "user", "metadata": m}),
    "create_session": lambda s, m: s.create_session(metadata=m),
    "update_session": lambda s, m: s.update_session("s", metadata=m),
    "fork(metadata)": lambda s, m: s.fork("s", metadata=m),
    "fork(fork_metadata)": lambda s, m: s.fork("s", fork_metadata=m),
    "explore(metadata)": lambda s, m: s.explore("s", None, [{"name": "n", "metadata": m}]),
    "edit": lambda s, m: s.edit("s", 0, {"role": "user", "metadata": m}),
}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_metadata_nested_past_the_limit_is_refused_typed_everywhere(
    store: SessionStore, depth: int
) -> None:
    """Past 32 levels metadata is bad input at every entry point, however deep it goes."""
    store.create_session("s")
    store.add_message("s", "user", "x")
    before = fingerprint(store, ["s"])
    wrong: list[str] = []
    for kinds in ([True], [False], [True, False]):
        meta = nest(depth, kinds, 1)
        for name, call in DEEP_ENTRY_POINTS.items():
            try:
                call(store, meta)
            except ValidationError:
                continue
            except BaseException as exc:  # RecursionError included
                wrong.append(f"{name}, depth {depth}, lists={kinds}: {type(exc).__name__}")
            else:
                wrong.append(f"{name}, depth {depth}, lists={kinds}: accepted")
    assert fingerprint(store, ["s"]) == before
    assert wrong == [], "\n".join(wrong)


AWARE = st.datetimes(
    min_value=datetime(2, 1, 1),  # the calendar's ends: test_created_at_at_the_ends_...
    max_value=datetime(9998, 12, 31),
    timezones=ZONES,
)


def test_created_at_keeps_the_instant_in_utc_or_is_refused(store: SessionStore) -> None:
    rotation = Rotation(store)

    def body(when: datetime) -> None:
        sid = rotation.next()
        item = {"role": "user", "content": "t", "created_at": when}
        if when.tzinfo is None or when.utcoffset() is None:
            assert_refused(store, [sid], lambda: store.append(sid, item))
            return
        expected = to_ms(when)
        [sent] = store.append(sid, item)
        for msg in (sent, store.get_message(sent.id), store.messages(sid, -1)[0]):
            assert msg.created_at == expected
            assert msg.created_at.utcoffset() == timedelta(0)
            assert msg.created_at.replace(tzinfo=None) == expected.replace(tzinfo=None)

    strategy = st.one_of(AWARE, AWARE, st.datetimes())
    check(store, "created_at", strategy, body, memory=400, neo4j=80)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(1, 1, 1, 0, 59, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(minutes=-1))),
    ],
    ids=["year1+01:00", "year1-00:59+01:00", "year9999-01:00", "max-00:01"],
)
def test_created_at_at_the_ends_of_the_calendar_is_refused_typed(
    store: SessionStore, when: datetime
) -> None:
    """An instant outside Python's calendar once in UTC is bad input, not an OverflowError."""
    store.create_session("s")
    assert_refused(store, ["s"], lambda: store.append("s", {"role": "user", "created_at": when}))


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone.utc),
        datetime(1, 1, 1, 2, tzinfo=timezone(timedelta(hours=1))),
        datetime(1970, 1, 1, tzinfo=timezone.utc),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    ],
)
def test_created_at_round_trips_at_the_ends_of_the_calendar(
    store: SessionStore, when: datetime
) -> None:
    store.create_session("s")
    [sent] = store.append("s", {"role": "user", "created_at": when})
    assert sent.created_at == store.get_message(sent.id).created_at == to_ms(when)


# -- sessions --------------------------------------------------------------------------------

SESSION_FIELDS = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), NAMES),
        "title": st.one_of(st.none(), hostile(st.one_of(texts(0, 40), long_texts(330, 340)))),
        "user_id": st.one_of(st.none(), st.sampled_from(["alice", "bob"]), NAMES),
        "tags": st.one_of(
            st.lists(st.one_of(st.sampled_from(["red", "blue", "red"]), NAMES), max_size=5),
            st.integers(30, 36).map(lambda n: ["x", "y"] * n),  # 64 at most, counted raw
            st.integers(60, 70).map(lambda n: [f"t{i}\u00e9\U0001f600" for i in range(n)]),
        ),
        "status": st.one_of(
            st.just("active"), st.sampled_from(["archived", "deleted", "Deleted", "x" * 65]), NAMES
        ),
    }
)


def session_fields_valid(f: dict[str, Any]) -> bool:
    return (
        (f["id"] is None or valid_name(f["id"]))
        and (f["title"] is None or (not has_surrogate(f["title"]) and len(f["title"]) <= MAX_TITLE))
        and (f["user_id"] is None or valid_name(f["user_id"]))
        and len(f["tags"]) <= MAX_TAGS
        and all(valid_name(t) for t in f["tags"])
        and valid_name(f["status"])
        and f["status"] != "deleted"
        and len(f["status"]) <= MAX_STATUS
    )


def test_session_fields_round_trip_or_are_refused(store: SessionStore) -> None:
    model: dict[str, tuple[str | None, tuple[str, ...]]] = {}

    def body(f: dict[str, Any]) -> None:
        def create() -> Any:
            return store.create_session(
                f["id"], title=f["title"], user_id=f["user_id"], tags=f["tags"], status=f["status"]
            )

        if not session_fields_valid(f):
            assert_refused(store, [], create)
            return
        if f["id"] in model:
            assert_refused(store, [], create, SessionExistsError)
            return
        made = create()
        if f["id"] is not None:
            assert made.id == f["id"]
        tags = tuple(dict.fromkeys(f["tags"]))
        read = store.get_session(made.id)
        assert read == made
        assert (read.title, read.user_id, read.tags, read.status) == (
            f["title"],
            f["user_id"],
            tags,
            f["status"],
        )
        assert read.metadata == {} and read.message_count == 0 and read.fork is None
        model[made.id] = (f["user_id"], tags)
        # Filters take the hostile values as data: exact matches, nothing more.
        if f["user_id"] is not None:
            page = store.list_sessions(user_id=f["user_id"], include_deleted=True, limit=10_000)
            assert {s.id for s in page.items} == {
                sid for sid, (uid, _) in model.items() if uid == f["user_id"]
            }
        if tags:
            want = tags[:2]
            page = store.list_sessions(tags=want, include_deleted=True, limit=10_000)
            assert {s.id for s in page.items} == {
                sid for sid, (_, have) in model.items() if set(want) <= set(have)
            }

    check(store, "session_fields", SESSION_FIELDS, body, memory=500, neo4j=120)


def test_session_updates_round_trip_or_are_refused(store: SessionStore) -> None:
    store.create_session("u", title="before", tags=["keep"], metadata={"a": 1})

    def body(f: dict[str, Any]) -> None:
        def update() -> Any:
            return store.update_session(
                "u", title=f["title"], user_id=f["user_id"], tags=f["tags"], status=f["status"]
            )

        if not session_fields_valid({**f, "id": None}):
            assert_refused(store, ["u"], update)
            return
        made = update()
        read = store.get_session("u")
        assert read == made
        assert (read.title, read.user_id, read.tags, read.status) == (
            f["title"],
            f["user_id"],
            tuple(dict.fromkeys(f["tags"])),
            f["status"],
        )
        assert read.metadata == {"a": 1}

    check(store, "session_updates", SESSION_FIELDS, body, memory=400, neo4j=80)


FORK_FIELDS = st.fixed_dictionaries(
    {
        "reason": st.one_of(st.none(), hostile(st.one_of(texts(0, 40), long_texts(330, 340)))),
        "title": st.one_of(st.none(), hostile(texts(0, 40))),
        "tags": st.lists(NAMES, max_size=3),
    }
)


def test_fork_fields_round_trip_or_are_refused(store: SessionStore) -> None:
    store.create_session("p")
    store.append("p", [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    count = [0]

    def body(f: dict[str, Any]) -> None:
        count[0] += 1
        fid = f"fork-{count[0]}"
        reason = f["reason"]
        valid = (
            (reason is None or (not has_surrogate(reason) and len(reason) <= 1000))
            and (f["title"] is None or not has_surrogate(f["title"]))
            and all(valid_name(t) for t in f["tags"])
        )

        def fork() -> Any:
            return store.fork("p", 0, id=fid, reason=reason, title=f["title"], tags=f["tags"])

        if not valid:
            assert_refused(store, ["p"], fork)
            return
        made = fork()
        read = store.get_session(fid)
        assert read == made
        assert read.fork is not None
        assert (read.fork.parent_id, read.fork.position, read.fork.reason) == ("p", 0, reason)
        assert (read.title, read.tags) == (f["title"], tuple(dict.fromkeys(f["tags"])))
        assert [m.content for m in store.messages(fid)] == ["a"]
        assert store.parent(fid) == "p"

    check(store, "fork_fields", FORK_FIELDS, body, memory=300, neo4j=70)


# -- lone surrogates, wherever they are --------------------------------------------------------

SURROGATE_TARGETS: dict[str, Callable[[SessionStore, str], object]] = {
    "content": lambda s, t: s.append("s", {"role": "user", "content": t}),
    "add_message": lambda s, t: s.add_message("s", "user", t),
    "provider": lambda s, t: s.append("s", {"role": "user", "provider": t}),
    "model": lambda s, t: s.append("s", {"role": "user", "model": t}),
    "tool_name": lambda s, t: s.append("s", {"role": "tool", "tool_name": t}),
    "tool_call_id": lambda s, t: s.append("s", {"role": "tool", "tool_call_id": t}),
    "message metadata key": lambda s, t: s.append("s", {"role": "user", "metadata": {t: 1}}),
    "message metadata value": lambda s, t: s.append(
        "s", {"role": "user", "metadata": {"k": [1, {"v": t}]}}
    ),
    "batch, second message": lambda s, t: s.append(
        "s", [{"role": "user", "content": "ok"}, {"role": "user", "content": t}]
    ),
    "session id": lambda s, t: s.create_session(t),
    "title": lambda s, t: s.create_session(title=t),
    "user_id": lambda s, t: s.create_session(user_id=t),
    "tag": lambda s, t: s.create_session(tags=["ok", t]),
    "status": lambda s, t: s.create_session(status=t),
    "session metadata": lambda s, t: s.create_session(metadata={"k": {t: t}}),
    "update title": lambda s, t: s.update_session("s", title=t),
    "update user_id": lambda s, t: s.update_session("s", user_id=t),
    "update tags": lambda s, t: s.update_session("s", tags=[t]),
    "update status": lambda s, t: s.update_session("s", status=t),
    "update metadata": lambda s, t: s.update_session("s", metadata={"k": t}),
    "fork id": lambda s, t: s.fork("s", id=t),
    "fork reason": lambda s, t: s.fork("s", reason=t),
    "fork title": lambda s, t: s.fork("s", title=t),
    "fork tag": lambda s, t: s.fork("s", tags=[t]),
    "fork metadata": lambda s, t: s.fork("s", metadata={t: 0}),
    "fork_metadata": lambda s, t: s.fork("s", fork_metadata={"k": [t]}),
    "explore name": lambda s, t: s.explore("s", None, ["ok", t]),
    "explore id": lambda s, t: s.explore("s", None, [{"name": "n", "id": t}]),
    "explore title": lambda s, t: s.explore("s", None, [{"name": "n", "title": t}]),
    "explore metadata": lambda s, t: s.explore("s", None, [{"name": "n", "metadata": {t: 1}}]),
    "edit content": lambda s, t: s.edit("s", 0, {"role": "user", "content": t}),
    "edit metadata": lambda s, t: s.edit("s", 0, {"role": "user", "metadata": {"k": t}}),
}
CLEAN = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


def test_lone_surrogates_are_refused_everywhere(store: SessionStore) -> None:
    store.create_session("s")
    store.add_message("s", "user", "first")
    poisoned = st.builds(_poison, CLEAN, st.sampled_from(SURROGATES), st.integers(0, 64))

    def body(case: tuple[str, str]) -> None:
        target, text = case
        assert_refused(store, ["s"], lambda: SURROGATE_TARGETS[target](store, text))

    strategy = st.tuples(st.sampled_from(sorted(SURROGATE_TARGETS)), poisoned)
    check(store, "lone_surrogates", strategy, body, memory=500, neo4j=100)


# -- bad session ids at every entry point ------------------------------------------------------

BAD_IDS = ["", "   ", "a\x00b", "tab\there", "\x1b[31mred", "lone\ud800", "x" * 257]

SESSION_ID_ENTRY_POINTS: dict[str, Callable[[SessionStore, str], object]] = {
    "get_session": lambda s, b: s.get_session(b),
    "messages": lambda s, b: s.messages(b),
    "message_count": lambda s, b: s.message_count(b),
    "history_ids": lambda s, b: s.history_ids(b),
    "append": lambda s, b: s.append(b, {"role": "user", "content": "x"}),
    "add_message": lambda s, b: s.add_message(b, "user", "x"),
    "update_session": lambda s, b: s.update_session(b, title="x"),
    "delete_session": lambda s, b: s.delete_session(b),
    "pop_last": lambda s, b: s.pop_last(b),
    "clear_history": lambda s, b: s.clear_history(b),
    "fork": lambda s, b: s.fork(b),
    "explore": lambda s, b: s.explore(b, None, ["a"]),
    "edit": lambda s, b: s.edit(b, 0, {"role": "user", "content": "x"}),
    "merge(fork_id)": lambda s, b: s.merge(b),
    "merge(into)": lambda s, b: s.merge("s", into=b),
    "parent": lambda s, b: s.parent(b),
    "children": lambda s, b: s.children(b),
    "siblings": lambda s, b: s.siblings(b),
    "ancestors": lambda s, b: s.ancestors(b),
    "descendants": lambda s, b: s.descendants(b),
    "root": lambda s, b: s.root(b),
    "depth": lambda s, b: s.depth(b),
    "common_ancestor": lambda s, b: s.common_ancestor("s", b),
    "list_sessions(tags)": lambda s, b: s.list_sessions(tags=[b]),
    "create_session": lambda s, b: s.create_session(b),
    "fork(id)": lambda s, b: s.fork("s", id=b),
}


def test_bad_session_ids_are_refused_typed_at_every_entry_point(store: SessionStore) -> None:
    """A malformed id is bad input: ValidationError (a ValueError too), never a bare one."""
    store.create_session("s")
    store.add_message("s", "user", "x")
    before = fingerprint(store, ["s"])
    wrong: list[str] = []
    for name, call in SESSION_ID_ENTRY_POINTS.items():
        outcomes: dict[str, list[str]] = {}
        for bad in BAD_IDS:
            try:
                call(store, bad)
            except ValidationError:
                continue
            except Exception as exc:
                outcome = f"raised {type(exc).__name__}"
            else:
                outcome = "accepted"
            shown = repr(bad) if len(bad) < 20 else f"{bad[:1]!r}*{len(bad)}"
            outcomes.setdefault(outcome, []).append(shown)
        wrong.extend(f"{name} {what} for {', '.join(ids)}" for what, ids in outcomes.items())
    assert fingerprint(store, ["s"]) == before
    assert wrong == [], "not ValidationError:\n" + "\n".join(wrong)


def test_tags_given_as_one_string_are_not_split_into_characters(store: SessionStore) -> None:
    """``tags="urgent"`` must mean the tag 'urgent' or be refused, never u, r, g, e, n, t."""
    store.create_session("s")
    store.add_message("s", "user", "x")
    calls: dict[str, Callable[[], Any]] = {
        "create_session": lambda: store.create_session("t1", tags="urgent"),
        "update_session": lambda: store.update_session("s", tags="urgent"),
        "fork": lambda: store.fork("s", id="t2", tags="urgent"),
    }
    wrong: list[str] = []
    for name, call in calls.items():
        try:
            made = call()
        except ValidationError:
            continue
        if made.tags != ("urgent",):
            wrong.append(f"{name}(tags='urgent') stored tags {made.tags}")
    store.create_session("tagged", tags=["u", "r", "g", "e", "n", "t"])
    try:
        found = [s.id for s in store.list_sessions(tags="urgent").items]  # type: ignore[arg-type]
    except ValidationError:
        found = []
    if "tagged" in found:
        wrong.append(f"list_sessions(tags='urgent') matched tags u, r, g, e, n, t: {found}")
    assert wrong == [], "\n".join(wrong)


# -- search ----------------------------------------------------------------------------------


@st.composite
def search_cases(draw: st.DrawFn) -> tuple[str, str]:
    content = draw(texts(1, 40))
    mode = draw(st.sampled_from(["same", "upper", "lower", "swapcase", "other"]))
    if mode == "other":
        return content, draw(texts(1, 4))
    i = draw(st.integers(0, len(content) - 1))
    j = draw(st.integers(i + 1, len(content)))
    part = content[i:j]
    needle = {
        "same": part,
        "upper": part.upper(),
        "lower": part.lower(),
        "swapcase": part.swapcase(),
    }[mode]
    return content, needle


def test_search_is_case_insensitive_contains_and_nothing_else(store: SessionStore) -> None:
    """Hits are exactly the messages whose lower-cased content holds the lower-cased text."""
    rotation = Rotation(store, per_session=50)
    stored: list[tuple[str, str]] = []

    def body(case: tuple[str, str]) -> None:
        content, needle = case
        sid = rotation.next()
        [msg] = store.append(sid, {"role": "user", "content": content})
        stored.append((msg.id, content))
        hits = store.search(needle, limit=10_000)
        expected = {mid for mid, text in stored if needle in text or needle.lower() in text.lower()}
        assert {m.id for m in hits} == expected, (needle, [m.content for m in hits])
        assert len(hits) == len(expected)
        stamps = [m.created_at for m in hits]
        assert stamps == sorted(stamps, reverse=True)

    check(store, "search", search_cases(), body, memory=400, neo4j=100)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("\u0391\u03a3\u0391", "\u0391\u03a3"),  # ΑΣΑ holds ΑΣ (final-sigma casing)
        ("\u039f\u0394\u039f\u03a3", "\u03a3"),  # ΟΔΟΣ holds Σ
        ("x\u03a3 y", "x\u03a3"),
    ],
    ids=["ΑΣΑ∋ΑΣ", "ΟΔΟΣ∋Σ", "xΣ y∋xΣ"],
)
def test_search_finds_a_message_holding_the_exact_text(
    store: SessionStore, content: str, needle: str
) -> None:
    """Case-insensitive search must still find content that holds the text as it was typed."""
    assert needle in content
    store.create_session("s")
    [msg] = store.append("s", {"role": "user", "content": content})
    assert [m.id for m in store.search(needle)] == [msg.id]


# -- listing: hostile ids that tie on created_at page exactly ----------------------------------

PAGE_IDS = st.lists(
    NAMES.filter(lambda x: valid_name(x) and len(x) <= MAX_NAME - 8),
    min_size=1,
    max_size=6,
    unique=True,
)


def test_listing_pages_through_hostile_ids_exactly(store: SessionStore) -> None:
    """Forks made together share created_at, so the id decides order and the cursor."""
    store.create_session("root")
    store.add_message("root", "user", "x")
    batches = [0]

    def body(case: tuple[list[str], int]) -> None:
        batches[0] += 1
        tag = f"batch-{batches[0]}"
        # A prefix of this example's own keeps ids unique across examples (and replays) and
        # leaves their order to the hostile part: both orders respect a common prefix.
        ids, per_page = [f"{batches[0]}|{x}" for x in case[0]], case[1]
        strategies = [{"name": f"b{i}", "id": sid, "tags": [tag]} for i, sid in enumerate(ids)]
        made = store.explore("root", None, strategies)
        assert [s.id for s in made] == ids
        assert len({s.created_at for s in made}) == 1
        whole = [s.id for s in store.list_sessions(tags=[tag], limit=10_000).items]
        assert sorted(whole) == sorted(ids)
        paged: list[str] = []
        cursor: str | None = None
        while True:
            page = store.list_sessions(tags=[tag], limit=per_page, cursor=cursor)
            paged.extend(s.id for s in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
            assert len(paged) <= len(ids)
        assert paged == whole

    strategy = st.tuples(PAGE_IDS, st.integers(1, 3))
    check(store, "listing_pages", strategy, body, memory=200, neo4j=50)


def test_sessions_created_together_page_in_code_point_order(store: SessionStore) -> None:
    """Ties on created_at are ordered by id in code point order, listed and paged alike.

    Neo4j orders stored strings by code point (UTF-8 bytes) but compares a stored string with
    a parameter by UTF-16 code units, where an astral character (emoji) sorts before
    U+E000..U+FFFF. The cursor's ``s.id > $after_id`` must agree with ``ORDER BY s.id``.
    """
    store.create_session("root")
    ids = ["\uff01", "\U0001f600", "\ufffd", "a", "\u00e9", "\U00010000", "\ud7a3"]
    strategies = [{"name": f"n{i}", "id": x, "tags": ["t"]} for i, x in enumerate(ids)]
    made = store.explore("root", None, strategies)
    assert len({s.created_at for s in made}) == 1
    listed = [s.id for s in store.list_sessions(tags=["t"]).items]
    assert listed == sorted(ids)
    for per_page in (1, 2, 3):
        paged: list[str] = []
        cursor: str | None = None
        while True:
            page = store.list_sessions(tags=["t"], limit=per_page, cursor=cursor)
            paged.extend(s.id for s in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            assert len(paged) <= len(ids), paged
        assert paged == listed, f"{per_page} per page"


# -- cursor ------------------------------------------------------------------------------------


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")


def test_foreign_cursors_are_refused_typed(store: SessionStore) -> None:
    store.create_session("s")
    bad = [
        "not base64 !!",
        "\u00e9\u00e9",
        base64.urlsafe_b64encode(b"\xff\xfe").decode("ascii"),
        _cursor({"a": 1}),
        _cursor([1, 2]),
        _cursor(["2025-01-01T00:00:00+00:00"]),
        _cursor(["yesterday", "s"]),
        _cursor(["2025-01-01T00:00:00", "s"]),  # no timezone: not one list_sessions makes
    ]
    wrong: list[str] = []
    for cursor in bad:
        try:
            store.list_sessions(cursor=cursor)
        except ValidationError:
            continue
        except Exception as exc:
            wrong.append(f"{cursor!r}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{cursor!r}: accepted")
    assert wrong == [], "\n".join(wrong)


# -- the count -------------------------------------------------------------------------------


def test_zz_hypothesis_example_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints how many hypothesis examples the properties above ran (runs last in the module)."""
    total = sum(EXAMPLES.values())
    with capsys.disabled():
        print(f"\nhypothesis examples run in {__name__}: {total}")
        for key, n in sorted(EXAMPLES.items()):
            print(f"  {key}: {n}")
    assert all(n > 0 for n in EXAMPLES.values())
