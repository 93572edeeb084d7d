"""Deletion never breaks another session's history; purge removes only what no one reaches."""

from __future__ import annotations

import pytest

from session_graph import MessageNotFoundError, SessionNotFoundError, SessionStore


def contents(store: SessionStore, sid: str) -> list[str]:
    return [m.content for m in store.messages(sid)]


def test_deleting_a_parent_keeps_forks_whole(store: SessionStore) -> None:
    store.create_session("p")
    ids = [
        m.id for m in store.append("p", [{"role": "user", "content": f"m{i}"} for i in range(4)])
    ]
    store.fork("p", at=1, id="f")
    store.append("f", {"role": "assistant", "content": "f"})
    store.delete_session("p", purge=True)
    assert contents(store, "f") == ["m0", "m1", "f"]
    assert store.parent("f") == "p"  # the tombstone keeps the lineage
    assert store.get_session("p").deleted
    for gone in ids[2:]:
        with pytest.raises(MessageNotFoundError):
            store.get_message(gone)
    assert store.get_message(ids[1]).content == "m1"


def test_purge_drops_tombstones_nothing_needs(store: SessionStore) -> None:
    store.create_session("p")
    store.append("p", {"role": "user", "content": "x"})
    store.fork("p", id="f")
    store.delete_session("f")
    report = store.purge()
    assert report.sessions == 1 and report.messages == 0
    with pytest.raises(SessionNotFoundError):
        store.get_session("f")
    assert contents(store, "p") == ["x"]
    store.delete_session("p")
    report = store.purge()
    assert (report.messages, report.sessions) == (1, 1)
    assert store.purge().messages == 0


def test_purge_after_children_go(store: SessionStore) -> None:
    store.create_session("p")
    store.append("p", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    store.fork("p", at=0, id="f")
    store.delete_session("p", purge=True)
    assert contents(store, "f") == ["a"]
    store.delete_session("f", purge=True)
    for sid in ("p", "f"):
        with pytest.raises(SessionNotFoundError):
            store.get_session(sid)
        with pytest.raises(SessionNotFoundError):
            store.ancestors(sid)
    assert len(store.mirror) == 0  # the purged tree left the mirror too


def test_purge_keeps_a_popped_message_while_a_fork_holds_it(store: SessionStore) -> None:
    store.create_session("p")
    store.append("p", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    store.fork("p", id="f")
    popped = store.pop_last("p")
    store.purge()
    assert store.get_message(popped.id).content == "b"
    store.delete_session("f", purge=True)
    with pytest.raises(MessageNotFoundError):
        store.get_message(popped.id)
    assert contents(store, "p") == ["a"]


def test_merged_messages_survive_deleting_the_fork(store: SessionStore) -> None:
    store.create_session("p")
    store.append("p", {"role": "user", "content": "q"})
    store.fork("p", id="f")
    store.append("f", {"role": "assistant", "content": "answer"})
    assert store.merge("f").mode == "fast-forward"
    store.delete_session("f", purge=True)
    assert contents(store, "p") == ["q", "answer"]
