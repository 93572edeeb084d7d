"""Limits: sizes in UTF-8 bytes, counts and lengths, exactly at the boundary, on every backend.

``SESSION_GRAPH_MAX_MESSAGE_BYTES`` bounds message content and ``SESSION_GRAPH_MAX_METADATA_BYTES``
the JSON form of any metadata (a session's, a message's, a fork point's). At the limit a value is
stored; one byte more is refused with ``LimitExceededError`` (a ``ValidationError``) whose message
names the variable, and nothing is written. Bytes are UTF-8 bytes, so a character counts with all
of its bytes, and in metadata JSON escapes count as written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from session_graph import (
    LimitExceededError,
    SessionStore,
    ValidationError,
)
from tests.stores import StoreFactory, fingerprint

MESSAGE_VAR = "SESSION_GRAPH_MAX_MESSAGE_BYTES"
METADATA_VAR = "SESSION_GRAPH_MAX_METADATA_BYTES"
LAST = {1: "a", 2: "\u00e9", 3: "\u20ac", 4: "\U0001f600"}  # a, é, €, 😀
MAX_INT = 2**63 - 1


def text_of(nbytes: int, width: int) -> str:
    """Exactly ``nbytes`` UTF-8 bytes: ASCII, then one character of ``width`` bytes."""
    text = "a" * (nbytes - width) + LAST[width]
    assert len(text.encode("utf-8")) == nbytes
    return text


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def metadata_of(nbytes: int, width: int) -> dict[str, Any]:
    """Metadata whose JSON form is exactly ``nbytes`` bytes, ending in a ``width``-byte char."""
    meta = {"k": text_of(nbytes - len('{"k": ""}'), width)}
    assert json_size(meta) == nbytes
    return meta


def refused(store: SessionStore, action: Callable[[], object], *words: str) -> str:
    """Run ``action``; it must raise LimitExceededError naming ``words`` and write nothing."""
    before = fingerprint(store)
    with pytest.raises(LimitExceededError) as caught:
        action()
    assert fingerprint(store) == before
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} is not in {message!r}"
    return message


def seeded(store: SessionStore) -> SessionStore:
    store.create_session("s")
    store.add_message("s", "user", "hello")
    return store


# -- message content ---------------------------------------------------------------------------

CONTENT_CALLS: dict[str, Callable[[SessionStore, str], Any]] = {
    "append": lambda s, c: s.append("s", {"role": "user", "content": c}),
    "add_message": lambda s, c: s.add_message("s", "assistant", c),
    "append batch": lambda s, c: s.append(
        "s", [{"role": "user", "content": "small"}, {"role": "assistant", "content": c}]
    ),
    "edit": lambda s, c: s.edit("s", 0, {"role": "user", "content": c}),
}


@pytest.mark.parametrize("width", sorted(LAST))
@pytest.mark.parametrize("call", sorted(CONTENT_CALLS))
def test_message_size_limit_is_exact_in_utf8_bytes(
    open_store: StoreFactory, call: str, width: int
) -> None:
    limit = 64
    store = seeded(open_store(max_message_bytes=limit))
    do = CONTENT_CALLS[call]

    over = text_of(limit + 1, width)
    assert len(over) <= limit + 1
    message = refused(store, lambda: do(store, over), MESSAGE_VAR, str(limit + 1), str(limit))

    at = text_of(limit, width)
    do(store, at)
    sid = store.children("s")[-1] if call == "edit" else "s"
    assert store.messages(sid)[-1].content == at
    assert message  # the refusal said what and why


def test_a_multibyte_character_counts_with_all_its_bytes(open_store: StoreFactory) -> None:
    """64 characters, 67 bytes: over a 64-byte limit though the character count is not."""
    store = seeded(open_store(max_message_bytes=64))
    text = "a" * 63 + "\U0001f600"
    assert len(text) == 64
    refused(store, lambda: store.add_message("s", "user", text), MESSAGE_VAR, "67")
    emoji = "\U0001f600" * 16  # 16 characters, exactly 64 bytes
    assert store.add_message("s", "user", emoji).content == emoji


def test_an_oversized_message_in_a_batch_writes_none_of_the_batch(open_store: StoreFactory) -> None:
    store = seeded(open_store(max_message_bytes=10))
    batch = [{"role": "user", "content": "ok"} for _ in range(5)]
    batch.insert(3, {"role": "user", "content": "x" * 11})
    refused(store, lambda: store.append("s", batch), MESSAGE_VAR)
    assert [m.content for m in store.messages("s")] == ["hello"]


def test_default_message_limit_is_one_million_bytes(store: SessionStore) -> None:
    seeded(store)
    big = text_of(1_000_000, 4)
    [msg] = store.append("s", {"role": "user", "content": big})
    assert store.get_message(msg.id).content == big
    refused(
        store, lambda: store.add_message("s", "user", text_of(1_000_001, 3)), MESSAGE_VAR, "1000000"
    )


def test_message_limit_is_read_from_its_environment_variable(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MESSAGE_VAR, "12")
    store = seeded(open_store())
    assert store.settings.max_message_bytes == 12
    refused(store, lambda: store.add_message("s", "user", text_of(13, 2)), MESSAGE_VAR)
    assert store.add_message("s", "user", text_of(12, 2)).content == text_of(12, 2)


# -- metadata ------------------------------------------------------------------------------------

METADATA_CALLS: dict[str, Callable[[SessionStore, dict[str, Any]], Any]] = {
    "append": lambda s, m: s.append("s", {"role": "user", "metadata": m}),
    "create_session": lambda s, m: s.create_session("new", metadata=m),
    "update_session": lambda s, m: s.update_session("s", metadata=m),
    "fork(metadata)": lambda s, m: s.fork("s", id="new", metadata=m),
    "fork(fork_metadata)": lambda s, m: s.fork("s", id="new", fork_metadata=m),
    "explore(metadata)": lambda s, m: s.explore("s", None, [{"name": "n", "metadata": m}]),
    "edit": lambda s, m: s.edit("s", 0, {"role": "user", "metadata": m}),
}


def stored_metadata(store: SessionStore, call: str) -> dict[str, Any]:
    if call in ("append",):
        return store.messages("s")[-1].metadata
    if call == "edit":
        fork = store.children("s")[-1]
        return store.messages(fork)[-1].metadata
    if call == "update_session":
        return store.get_session("s").metadata
    if call == "explore(metadata)":
        return store.get_session(store.children("s")[-1]).metadata
    session = store.get_session("new")
    if call == "fork(fork_metadata)":
        assert session.fork is not None
        return session.fork.metadata
    return session.metadata


@pytest.mark.parametrize("width", sorted(LAST))
@pytest.mark.parametrize("call", sorted(METADATA_CALLS))
def test_metadata_size_limit_is_exact_in_json_utf8_bytes(
    open_store: StoreFactory, call: str, width: int
) -> None:
    limit = 200
    store = seeded(open_store(max_metadata_bytes=limit))
    do = METADATA_CALLS[call]

    refused(store, lambda: do(store, metadata_of(limit + 1, width)), METADATA_VAR, str(limit + 1))
    at = metadata_of(limit, width)
    do(store, at)
    assert stored_metadata(store, call) == at


def test_json_escapes_count_as_written(open_store: StoreFactory) -> None:
    """A NUL is stored as the six characters \\u0000 and a quote as \\", so they count so."""
    nul = {"k": "\x00" * 10}
    assert json_size(nul) == 9 + 6 * 10
    store = seeded(open_store(max_metadata_bytes=json_size(nul)))
    refused(store, lambda: store.update_session("s", metadata={"k": "\x00" * 10 + "a"}))
    refused(store, lambda: store.update_session("s", metadata={"k": '"' * 35}))  # 9 + 70 bytes
    assert store.update_session("s", metadata=nul).metadata == nul
    quotes = {"k": '"' * 34 + "\\"}  # 9 + 68 + 2 = 79 bytes
    assert json_size(quotes) == 79
    refused(store, lambda: store.update_session("s", metadata=quotes), METADATA_VAR)


def test_default_metadata_limit_is_64000_bytes(store: SessionStore) -> None:
    seeded(store)
    at = metadata_of(64_000, 4)
    assert store.update_session("s", metadata=at).metadata == at
    assert store.get_session("s").metadata == at
    refused(store, lambda: store.create_session("x", metadata=metadata_of(64_001, 2)), METADATA_VAR)


def test_metadata_limit_is_read_from_its_environment_variable(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(METADATA_VAR, "40")
    store = seeded(open_store())
    assert store.settings.max_metadata_bytes == 40
    refused(store, lambda: store.create_session("x", metadata=metadata_of(41, 3)), METADATA_VAR)
    assert store.create_session("x", metadata=metadata_of(40, 3)).metadata == metadata_of(40, 3)


def test_the_limits_are_separate(open_store: StoreFactory) -> None:
    """Content does not count against the metadata limit, nor metadata against content's."""
    store = seeded(open_store(max_message_bytes=20, max_metadata_bytes=30))
    meta = metadata_of(30, 1)
    msg = store.add_message("s", "user", text_of(20, 1), metadata=meta)
    assert (msg.content, msg.metadata) == (text_of(20, 1), meta)


# -- counts, lengths, depths, numbers: the first value over each limit is refused ----------------


def nest(depth: int) -> dict[str, Any]:
    value: Any = 1
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k": value}
    return {"deep": value}


def tags(n: int) -> list[str]:
    return [f"t{i}\U0001f600" for i in range(n)]


# name: (accepted at the limit, refused one past it)
BOUNDARIES: dict[str, tuple[Callable[[SessionStore], Any], Callable[[SessionStore], Any]]] = {
    "session id 256 chars": (
        lambda s: s.create_session("\U0001f600" * 256),
        lambda s: s.create_session("\U0001f600" * 257),
    ),
    "fork id 256 chars": (
        lambda s: s.fork("s", id="f" * 256),
        lambda s: s.fork("s", id="f" * 257),
    ),
    "explore id 256 chars": (
        lambda s: s.explore("s", None, [{"name": "n", "id": "e" * 256}]),
        lambda s: s.explore("s", None, [{"name": "n", "id": "e" * 257}]),
    ),
    "strategy name 256 chars": (
        lambda s: s.explore("s", None, ["n" * 256]),
        lambda s: s.explore("s", None, ["n" * 257]),
    ),
    "user_id 256 chars": (
        lambda s: s.update_session("s", user_id="\u00e9" * 256),
        lambda s: s.update_session("s", user_id="\u00e9" * 257),
    ),
    "title 1000 chars": (
        lambda s: s.update_session("s", title="\U0001f600" * 1000),
        lambda s: s.update_session("s", title="\U0001f600" * 1001),
    ),
    "64 tags": (
        lambda s: s.update_session("s", tags=tags(64)),
        lambda s: s.update_session("s", tags=tags(65)),
    ),
    "tag 256 chars": (
        lambda s: s.update_session("s", tags=["t" * 256]),
        lambda s: s.update_session("s", tags=["t" * 257]),
    ),
    "status 64 chars": (
        lambda s: s.update_session("s", status="s" * 64),
        lambda s: s.update_session("s", status="s" * 65),
    ),
    "fork reason 1000 chars": (
        lambda s: s.fork("s", reason="\u20ac" * 1000),
        lambda s: s.fork("s", reason="\u20ac" * 1001),
    ),
    "metadata 32 levels": (
        lambda s: s.update_session("s", metadata=nest(32)),
        lambda s: s.update_session("s", metadata=nest(33)),
    ),
    "message metadata 32 levels": (
        lambda s: s.append("s", {"role": "user", "metadata": nest(32)}),
        lambda s: s.append("s", {"role": "user", "metadata": nest(33)}),
    ),
    "fork_metadata 32 levels": (
        lambda s: s.fork("s", fork_metadata=nest(32)),
        lambda s: s.fork("s", fork_metadata=nest(33)),
    ),
    **{
        f"{field} 256 chars": (
            lambda s, f=field: s.append("s", {"role": "tool", f: "\U0001f600" * 256}),
            lambda s, f=field: s.append("s", {"role": "tool", f: "\U0001f600" * 257}),
        )
        for field in ("provider", "model", "tool_name", "tool_call_id")
    },
    **{
        f"{field} 2**63-1": (
            lambda s, f=field: s.append("s", {"role": "assistant", f: MAX_INT}),
            lambda s, f=field: s.append("s", {"role": "assistant", f: MAX_INT + 1}),
        )
        for field in ("input_tokens", "output_tokens")
    },
    **{
        f"{field} >= 0": (
            lambda s, f=field: s.append("s", {"role": "assistant", f: 0}),
            lambda s, f=field: s.append("s", {"role": "assistant", f: -1}),
        )
        for field in ("input_tokens", "output_tokens")
    },
    "cost >= 0": (
        lambda s: s.append("s", {"role": "assistant", "cost": 0.0}),
        lambda s: s.append("s", {"role": "assistant", "cost": -5e-324}),
    ),
    "cost finite": (
        lambda s: s.append("s", {"role": "assistant", "cost": 1.7976931348623157e308}),
        lambda s: s.append("s", {"role": "assistant", "cost": float("inf")}),
    ),
    "list_sessions limit 10000": (
        lambda s: s.list_sessions(limit=10_000),
        lambda s: s.list_sessions(limit=10_001),
    ),
    "list_sessions limit 1": (
        lambda s: s.list_sessions(limit=1),
        lambda s: s.list_sessions(limit=0),
    ),
}


@pytest.mark.parametrize("name", list(BOUNDARIES))
def test_each_limit_takes_its_maximum_and_refuses_one_more(store: SessionStore, name: str) -> None:
    seeded(store)
    accept, refuse = BOUNDARIES[name]
    before = fingerprint(store)
    with pytest.raises(ValidationError):
        refuse(store)
    assert fingerprint(store) == before
    accept(store)


def test_numbers_at_the_limit_round_trip(store: SessionStore) -> None:
    seeded(store)
    [msg] = store.append(
        "s",
        {
            "role": "assistant",
            "input_tokens": MAX_INT,
            "output_tokens": 0,
            "cost": 1.7976931348623157e308,
            "metadata": {"big": 2**64, "neg": -(2**63) - 1, "tiny": 5e-324, "zero": -0.0},
        },
    )
    for read in (msg, store.get_message(msg.id), store.messages("s")[-1]):
        assert (read.input_tokens, read.output_tokens) == (MAX_INT, 0)
        assert read.cost == 1.7976931348623157e308
        assert read.metadata == {"big": 2**64, "neg": -(2**63) - 1, "tiny": 5e-324, "zero": 0.0}
        assert str(read.metadata["zero"]) == "-0.0"


@pytest.mark.parametrize("limit", [-1, -(2**63), 2**63, 2**64])
def test_search_limit_out_of_range_is_refused_typed(store: SessionStore, limit: int) -> None:
    """A search limit no query can run with is bad input, not a driver or server error."""
    seeded(store)
    store.add_message("s", "user", "hello again")
    with pytest.raises(ValidationError):
        store.search("hello", limit=limit)


def test_search_limit_in_range_is_honoured(store: SessionStore) -> None:
    seeded(store)
    for i in range(3):
        store.add_message("s", "user", f"hello {i}")
    assert len(store.search("hello", limit=1)) == 1
    assert len(store.search("hello", limit=10_000)) == 4


def test_history_windows_take_any_integer(store: SessionStore) -> None:
    seeded(store)
    store.add_message("s", "user", "second")
    assert store.messages("s", 2**64) == []
    assert [m.content for m in store.messages("s", -(2**64))] == ["hello", "second"]
    assert [m.content for m in store.messages("s", 0, 2**64)] == ["hello", "second"]
