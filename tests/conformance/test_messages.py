"""Messages: append (one, many, idempotent), read windows, count, pop_last, clear_history."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from session_graph import (
    ConflictError,
    MessageNotFoundError,
    NewMessage,
    SessionNotFoundError,
    SessionStore,
    ValidationError,
)


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
