"""Tenants: no API call of one tenant's store reads or changes another tenant's data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from session_graph import NotFoundError, SessionExistsError, SessionStore
from tests.stores import StoreFactory


@pytest.fixture
def pair(open_store: StoreFactory) -> tuple[SessionStore, SessionStore]:
    mine, theirs = open_store(), open_store(tenant=f"other-{uuid.uuid4().hex[:12]}")
    theirs.create_session("secret", title="theirs", tags=["t"])
    theirs.append("secret", [{"role": "user", "content": "private"}] * 2)
    theirs.fork("secret", at=0, id="secret-fork")
    return mine, theirs


CALLS: dict[str, Callable[[SessionStore, str], Any]] = {
    "get_session": lambda s, sid: s.get_session(sid),
    "messages": lambda s, sid: s.messages(sid),
    "message_count": lambda s, sid: s.message_count(sid),
    "history_ids": lambda s, sid: s.history_ids(sid),
    "append": lambda s, sid: s.append(sid, {"role": "user", "content": "x"}),
    "update_session": lambda s, sid: s.update_session(sid, title="hijacked"),
    "delete_session": lambda s, sid: s.delete_session(sid),
    "pop_last": lambda s, sid: s.pop_last(sid),
    "clear_history": lambda s, sid: s.clear_history(sid),
    "fork": lambda s, sid: s.fork(sid, at=0),
    "explore": lambda s, sid: s.explore(sid, 0, ["a"]),
    "edit": lambda s, sid: s.edit(sid, 0, {"role": "user", "content": "x"}),
    "merge": lambda s, sid: s.merge("secret-fork", into=sid),
    "parent": lambda s, sid: s.parent(sid),
    "children": lambda s, sid: s.children(sid),
    "siblings": lambda s, sid: s.siblings(sid),
    "ancestors": lambda s, sid: s.ancestors(sid),
    "descendants": lambda s, sid: s.descendants(sid),
    "root": lambda s, sid: s.root(sid),
    "depth": lambda s, sid: s.depth(sid),
    "common_ancestor": lambda s, sid: s.common_ancestor(sid, sid),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_other_tenants_sessions_do_not_exist(
    pair: tuple[SessionStore, SessionStore], call: str
) -> None:
    mine, theirs = pair
    before = [m.model_dump() for m in theirs.messages("secret")]
    with pytest.raises(NotFoundError):
        CALLS[call](mine, "secret")
    assert [m.model_dump() for m in theirs.messages("secret")] == before
    assert theirs.get_session("secret").title == "theirs"
    assert theirs.children("secret") == ["secret-fork"]


def test_listing_search_messages_and_purge_stay_in_the_tenant(
    pair: tuple[SessionStore, SessionStore],
) -> None:
    mine, theirs = pair
    assert mine.list_sessions(include_deleted=True).items == ()
    assert mine.search("private") == []
    secret_msg = theirs.history_ids("secret")[0]
    with pytest.raises(NotFoundError):
        mine.get_message(secret_msg)
    mine.create_session("secret")  # the same id is free in another tenant
    with pytest.raises(SessionExistsError):
        mine.create_session("secret")
    assert mine.purge().messages == 0
    assert theirs.message_count("secret") == 2
    assert theirs.get_session("secret").title == "theirs"
