"""Messages: append (one, many, idempotent), read windows, count, pop_last, clear_history."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from session_graph import (
    ConflictError,
    MessageNotFoundError,
    NewMessage,
    SessionNotFoundError,
    SessionStore,
    ValidationError,
)
from tests.stores import StoreFactory, fingerprint


def conversation(store: SessionStore, sid: str, n: int) -> list[str]:
    roles = ["user", "assistant"]
    msgs = store.append(sid, [{"role": roles[i % 2], "content": f"m{i}"} for i in range(n)])
    return [m.id for m in msgs]


def test_append_returns_stored_messages_with_all_fields(store: SessionStore) -> None:
    store.create_session("s")
    when = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    sent = NewMessage(
        role="tool",
        content="42",
        provider="openai",
        model="gpt-x",
        input_tokens=10,
        output_tokens=3,
        cost=0.0012,
        tool_name="calc",
        tool_call_id="call_1",
        metadata={"latency_ms": 12},
        created_at=when,
    )
    [msg] = store.append("s", sent)
    [read] = store.messages("s")
    assert read == msg
    assert (read.role, read.content, read.provider, read.model) == ("tool", "42", "openai", "gpt-x")
    assert (read.input_tokens, read.output_tokens, read.cost) == (10, 3, 0.0012)
    assert (read.tool_name, read.tool_call_id, read.metadata) == (
        "calc",
        "call_1",
        {"latency_ms": 12},
    )
    assert read.created_at == when and read.position == 0 and read.session_id == "s"
    assert store.get_message(msg.id) == msg


def test_batch_append_keeps_order_and_positions(store: SessionStore) -> None:
    store.create_session("s")
    ids = conversation(store, "s", 5)
    more = store.append("s", {"role": "user", "content": "m5"})
    history = store.messages("s")
    assert [m.id for m in history] == [*ids, more[0].id]
    assert [m.position for m in history] == list(range(6))
    assert [m.content for m in history] == [f"m{i}" for i in range(6)]
    assert store.message_count("s") == 6
    assert store.get_session("s").head_id == more[0].id


def test_windows_follow_slice_rules(store: SessionStore) -> None:
    store.create_session("s")
    conversation(store, "s", 10)
    contents = lambda ms: [m.content for m in ms]  # noqa: E731
    assert contents(store.messages("s", 2, 5)) == ["m2", "m3", "m4"]
    assert contents(store.messages("s", -2)) == ["m8", "m9"]
    assert contents(store.messages("s", 8, 100)) == ["m8", "m9"]
    assert store.messages("s", 20) == []


def test_append_with_given_ids_is_idempotent(store: SessionStore) -> None:
    store.create_session("s")
    mid = str(uuid.uuid4())
    first = store.append("s", {"id": mid, "role": "user", "content": "once"})
    second = store.append("s", {"id": mid, "role": "user", "content": "once"})
    assert first == second
    assert store.message_count("s") == 1


def test_reusing_a_message_id_elsewhere_is_a_conflict(store: SessionStore) -> None:
    store.create_session("a")
    store.create_session("b")
    mid = str(uuid.uuid4())
    store.append("a", {"id": mid, "role": "user", "content": "x"})
    with pytest.raises(ConflictError):
        store.append("b", {"id": mid, "role": "user", "content": "x"})
    assert store.message_count("b") == 0


def test_bad_messages_change_nothing(store: SessionStore) -> None:
    store.create_session("s")
    conversation(store, "s", 2)
    bad = [
        {"role": "robot", "content": "x"},
        {"role": "user", "content": 5},
        {"role": "user", "content": "x", "input_tokens": -1},
        {"role": "user", "content": "x", "cost": float("nan")},
        {"role": "user", "content": "x", "id": "not-a-uuid"},
        {"role": "user", "content": "x", "unknown": 1},
        {"role": "user", "content": "x", "created_at": "2025-01-01T00:00:00"},
    ]
    for item in bad:
        with pytest.raises(ValidationError):
            store.append("s", [{"role": "user", "content": "fine"}, item])
    with pytest.raises(ValidationError):
        store.append("s", [])
    assert [m.content for m in store.messages("s")] == ["m0", "m1"]


def test_append_to_missing_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        store.append("nope", {"role": "user", "content": "x"})


def test_pop_last_removes_and_returns(store: SessionStore) -> None:
    store.create_session("s")
    ids = conversation(store, "s", 3)
    popped = store.pop_last("s")
    assert popped.id == ids[-1] and popped.content == "m2"
    assert [m.id for m in store.messages("s")] == ids[:2]
    with pytest.raises(MessageNotFoundError):
        store.get_message(ids[-1])
    again = store.append("s", {"role": "assistant", "content": "new"})
    assert again[0].position == 2
    assert [m.content for m in store.messages("s")] == ["m0", "m1", "new"]


def test_pop_last_on_empty_session(store: SessionStore) -> None:
    store.create_session("s")
    with pytest.raises(MessageNotFoundError):
        store.pop_last("s")


def test_clear_history(store: SessionStore) -> None:
    store.create_session("s")
    ids = conversation(store, "s", 4)
    assert store.clear_history("s") == 4
    assert store.messages("s") == [] and store.message_count("s") == 0
    for mid in ids:
        with pytest.raises(MessageNotFoundError):
            store.get_message(mid)
    conversation(store, "s", 1)
    assert [m.position for m in store.messages("s")] == [0]


def test_search(store: SessionStore) -> None:
    store.create_session("s")
    store.append(
        "s",
        [
            {"role": "user", "content": "Where is PARIS?"},
            {"role": "assistant", "content": "In France."},
        ],
    )
    assert [m.content for m in store.search("paris")] == ["Where is PARIS?"]
    assert store.search("berlin") == []


def test_search_leaves_out_deleted_sessions_unless_asked(store: SessionStore) -> None:
    store.create_session("gone")
    [kept] = store.append("gone", {"role": "user", "content": "shared needle"})
    store.fork("gone", at=0, id="fork")
    [own] = store.append("fork", {"role": "user", "content": "fork needle"})
    store.delete_session("gone")
    assert [m.id for m in store.search("needle")] == [own.id]
    both = store.search("needle", include_deleted=True)
    assert {(m.id, m.session_id) for m in both} == {(own.id, "fork"), (kept.id, "gone")}


def test_a_large_append_goes_in_chunks_shown_together(open_store: StoreFactory) -> None:
    store = open_store(append_chunk=3)
    store.create_session("big")
    store.append("big", {"role": "system", "content": "s"})
    fork = store.fork("big", id="side")
    written = store.append("big", [{"role": "user", "content": f"m{i}"} for i in range(10)])
    assert [m.position for m in written] == list(range(1, 11))
    assert [m.content for m in store.messages("big")] == ["s"] + [f"m{i}" for i in range(10)]
    assert [m.content for m in store.messages("big", -2)] == ["m8", "m9"]
    assert store.message_count("big") == 11
    assert store.messages(fork.id) == store.messages("big", 0, 1)
    again = store.append("big", [{"role": "user", "content": "x"}] * 7)
    assert [m.position for m in again] == list(range(11, 18))
    given = [{"role": "user", "content": f"g{i}", "id": str(uuid.uuid4())} for i in range(5)]
    first = store.append("big", given)
    assert store.append("big", given) == first  # the caller's own retry: stored ones back
    assert store.message_count("big") == 23


def test_a_large_append_that_races_another_writer_appends_nothing(
    open_store: StoreFactory,
) -> None:
    store, other = open_store(append_chunk=2), open_store()
    store.create_session("s")
    store.append("s", {"role": "user", "content": "first"})
    chunks = 0

    def after_a_chunk(fn: Any) -> None:  # another process appends between the chunks
        nonlocal chunks
        if getattr(fn, "__name__", "") == "write":
            chunks += 1
            if chunks == 1:
                other.append("s", {"role": "user", "content": "meanwhile"})

    backend = store.backend
    original = backend.auto
    if inspect.iscoroutinefunction(original):  # the async store, on the test's event loop

        async def racing_async(fn: Any, **kw: Any) -> Any:
            result = await original(fn, **kw)
            await asyncio.get_running_loop().run_in_executor(None, after_a_chunk, fn)
            return result

        backend.auto = racing_async
    else:

        def racing(fn: Any, **kw: Any) -> Any:
            result = original(fn, **kw)
            after_a_chunk(fn)
            return result

        backend.auto = racing
    with pytest.raises(ConflictError):
        store.append("s", [{"role": "user", "content": f"c{i}"} for i in range(5)])
    assert chunks >= 1
    assert [m.content for m in store.messages("s")] == ["first", "meanwhile"]
    assert [m.content for m in other.messages("s", -1)] == ["meanwhile"]
    assert store.purge().messages == 0  # the chunks were removed, nothing left behind


def test_extend_streams_any_number_of_messages(open_store: StoreFactory) -> None:
    store = open_store(append_chunk=4)
    store.create_session("s")
    store.append("s", {"role": "system", "content": "sys"})
    generated = ({"role": "user", "content": f"g{i}"} for i in range(11))
    assert store.extend("s", generated) == 11
    assert [m.content for m in store.messages("s")] == ["sys"] + [f"g{i}" for i in range(11)]
    assert [m.position for m in store.messages("s", -3)] == [9, 10, 11]


def test_extend_with_a_bad_message_appends_nothing(open_store: StoreFactory) -> None:
    store = open_store(append_chunk=2)
    store.create_session("s")
    before = fingerprint(store)
    bad = [{"role": "user", "content": f"m{i}"} for i in range(5)] + [{"role": "nobody"}]
    with pytest.raises(ValidationError):
        store.extend("s", iter(bad))
    store.purge()  # what the failed append left off-history is gone
    assert fingerprint(store)[:2] == before[:2]
    assert store.message_count("s") == 0
