"""Sessions: create, get-or-create, read, list with filters and cursors, update, delete."""

from __future__ import annotations

from datetime import timedelta

import pytest

from session_graph import (
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStore,
    ValidationError,
)
from session_graph.models import utcnow


def test_create_and_get_round_trip(store: SessionStore) -> None:
    created = store.create_session(
        "chat-1",
        title="Plan a trip",
        user_id="u1",
        tags=["travel", "demo"],
        metadata={"score": 0.5, "nested": {"k": [1, 2, None]}},
    )
    got = store.get_session("chat-1")
    assert got == created
    assert got.title == "Plan a trip"
    assert got.tags == ("travel", "demo")
    assert got.metadata == {"score": 0.5, "nested": {"k": [1, 2, None]}}
    assert got.status == "active"
    assert got.message_count == 0 and got.head_id is None and got.fork is None


def test_generated_ids_are_distinct(store: SessionStore) -> None:
    ids = {store.create_session().id for _ in range(20)}
    assert len(ids) == 20


def test_duplicate_id_is_refused_unless_get_or_create(store: SessionStore) -> None:
    first = store.create_session("same", title="first")
    with pytest.raises(SessionExistsError):
        store.create_session("same", title="second")
    again = store.create_session("same", title="ignored", get_or_create=True)
    assert again.id == first.id and again.title == "first"
    assert store.get_session("same").title == "first"


def test_get_missing_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        store.get_session("nope")
    with pytest.raises(KeyError):  # NotFoundError is also a KeyError
        store.get_session("nope")


def test_list_filters(store: SessionStore) -> None:
    a = store.create_session("a", user_id="alice", tags=["x", "y"])
    store.create_session("b", user_id="bob", tags=["x"])
    store.create_session("c", user_id="alice", tags=["y"], status="archived")
    ids = lambda page: [s.id for s in page.items]  # noqa: E731
    assert ids(store.list_sessions()) == ["a", "b", "c"]
    assert ids(store.list_sessions(user_id="alice")) == ["a", "c"]
    assert ids(store.list_sessions(tags=["x"])) == ["a", "b"]
    assert ids(store.list_sessions(tags=["x", "y"])) == ["a"]
    assert ids(store.list_sessions(status="archived")) == ["c"]
    assert ids(store.list_sessions(created_after=a.created_at + timedelta(days=1))) == []
    assert ids(store.list_sessions(created_before=utcnow() + timedelta(seconds=5))) == [
        "a",
        "b",
        "c",
    ]


def test_list_pages_with_cursor(store: SessionStore) -> None:
    made = [store.create_session(f"s{i:02d}").id for i in range(7)]
    seen, cursor = [], None
    while True:
        page = store.list_sessions(limit=3, cursor=cursor)
        seen.extend(s.id for s in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == made


def test_bad_cursor_and_limit(store: SessionStore) -> None:
    with pytest.raises(ValidationError):
        store.list_sessions(cursor="not-a-cursor")
    with pytest.raises(ValidationError):
        store.list_sessions(limit=0)


def test_update_session(store: SessionStore) -> None:
    store.create_session("u", title="old", tags=["a"])
    updated = store.update_session("u", title="new", status="done", metadata={"score": 3})
    assert (updated.title, updated.status, updated.tags) == ("new", "done", ("a",))
    assert store.get_session("u") == updated
    with pytest.raises(ValidationError):
        store.update_session("u", status="deleted")


def test_delete_hides_from_listing_and_refuses_writes(store: SessionStore) -> None:
    store.create_session("gone")
    store.append("gone", {"role": "user", "content": "hi"})
    store.delete_session("gone")
    store.delete_session("gone")  # twice is a no-op
    assert [s.id for s in store.list_sessions().items] == []
    assert [s.id for s in store.list_sessions(include_deleted=True).items] == ["gone"]
    got = store.get_session("gone")
    assert got.deleted and got.deleted_at is not None
    with pytest.raises(SessionDeletedError):
        store.append("gone", {"role": "user", "content": "again"})
    with pytest.raises(SessionDeletedError):
        store.create_session("gone", get_or_create=True)
    with pytest.raises(SessionDeletedError):
        store.fork("gone", at=0)
    with pytest.raises(SessionDeletedError):
        store.update_session("gone", title="x")
    assert store.get_session("gone").status == "deleted"
    with pytest.raises(SessionNotFoundError):
        store.delete_session("never-existed")
