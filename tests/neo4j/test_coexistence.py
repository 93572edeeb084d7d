"""session_graph beside langchain-neo4j's chat history on one database, with the same ids.

langchain-neo4j's ``Neo4jChatMessageHistory`` keeps one ``(:Session {id})`` node per session
(its default label, no tenant) and its messages as a ``(:Message)`` chain: ``LAST_MESSAGE`` from
the session to the newest, ``NEXT`` from each to the one after it. session_graph once used the
same labels, so langchain's messages attached themselves to our session of the same id, and its
``clear(delete_session_node=True)`` deleted our root session and left its fork an orphan.

Here the real langchain class and session_graph work side by side on the same session ids:
each library reads back exactly its own data, and every operation of one (writes, clears,
deletes, purge, setup) leaves the other's nodes, relationships and properties as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_neo4j import Neo4jChatMessageHistory
from neo4j import Driver

from session_graph import SessionStore
from session_graph.runtime import ConnectionInfo
from tests.stores import graph_state

LANGCHAIN_NODES = """
MATCH (s:Session) WHERE s.id IN $ids
OPTIONAL MATCH (s)-[:LAST_MESSAGE]->(last)
OPTIONAL MATCH (last)<-[:NEXT*0..]-(m)
WITH collect(DISTINCT s) + collect(DISTINCT m) AS nodes
UNWIND nodes AS n
CALL (n) {
  OPTIONAL MATCH (n)-[r]-()
  RETURN collect([type(r), elementId(startNode(r)), elementId(endNode(r)), properties(r)])
         AS rels
}
RETURN elementId(n) AS eid, labels(n) AS labels, properties(n) AS props, rels
"""


def langchain_state(driver: Driver, ids: list[str]) -> list[str]:
    """langchain's session nodes of ``ids`` and every message of their chains, with labels,
    properties and all relationships either way (so anything attached to them shows too)."""
    out = []
    for r in driver.execute_query(LANGCHAIN_NODES, ids=ids).records:
        rels = sorted(repr([t, a, b, sorted(p.items())]) for t, a, b, p in r["rels"] if t)
        out.append(repr([r["eid"], sorted(r["labels"]), sorted(r["props"].items()), rels]))
    return sorted(out)


def said(history: Neo4jChatMessageHistory) -> list[tuple[str, Any]]:
    return [(m.type, m.content) for m in history.messages]


def ours(store: Any, ids: list[str]) -> tuple[Any, ...]:
    """What session_graph answers about ``ids`` and its tenant's whole graph."""
    sessions = [store.get_session(sid) for sid in ids]
    histories = [store.messages(sid) for sid in ids]
    lineage = [
        (store.parent(sid), store.children(sid), store.ancestors(sid), store.descendants(sid))
        for sid in ids
    ]
    listing = store.list_sessions(include_deleted=True, limit=100).items
    return sessions, histories, lineage, listing, graph_state(store)


@pytest.fixture
def langchain(neo4j_info: ConnectionInfo, neo4j_driver: Driver) -> Iterator[Any]:
    """Opens langchain-neo4j histories (default labels) on the tests' server; removes what
    they wrote at the end."""
    opened: list[Neo4jChatMessageHistory] = []

    def open_history(session_id: str) -> Neo4jChatMessageHistory:
        history = Neo4jChatMessageHistory(
            session_id,
            url=neo4j_info.uri,
            username=neo4j_info.user,
            password=neo4j_info.password,
            database=neo4j_info.database,
            window=50,
        )
        opened.append(history)
        return history

    yield open_history
    for history in opened:
        history.clear(delete_session_node=True)


def test_langchain_and_session_graph_share_a_database_and_ids(
    neo4j_store: SessionStore, neo4j_driver: Driver, langchain: Any
) -> None:
    store = neo4j_store
    sid = f"chat-{uuid.uuid4().hex[:8]}"
    fork_id = f"{sid}-fork"
    lc_said: list[BaseMessage] = [SystemMessage("be brief"), HumanMessage("hi")]
    lc = langchain(sid)
    lc.add_messages(lc_said)

    # session_graph makes the same ids, writes, forks.
    store.create_session(sid, title="ours")
    store.append(
        sid,
        [
            {"role": "user", "content": "u0"},
            {"role": "assistant", "content": "a0"},
            {"role": "user", "content": "u1"},
        ],
    )
    store.fork(sid, at=1, id=fork_id, reason="try")
    store.append(fork_id, {"role": "assistant", "content": "f0"})
    assert [m.content for m in store.messages(sid)] == ["u0", "a0", "u1"]
    assert [m.content for m in store.messages(fork_id)] == ["u0", "a0", "f0"]

    # langchain writes to the same ids, and reads back exactly its own messages.
    ours_before = ours(store, [sid, fork_id])
    lc.add_messages([AIMessage("hello")])
    lc_fork = langchain(fork_id)
    lc_fork.add_messages([HumanMessage("fork?")])
    assert said(lc) == [("system", "be brief"), ("human", "hi"), ("ai", "hello")]
    assert said(lc_fork) == [("human", "fork?")]
    assert ours(store, [sid, fork_id]) == ours_before

    # langchain's clear, with its session node: our root, fork and lineage stay.
    lc_fork.clear()
    lc.clear(delete_session_node=True)
    assert said(lc) == []
    assert ours(store, [sid, fork_id]) == ours_before
    assert store.ancestors(fork_id) == [sid]
    assert store.descendants(sid) == [fork_id]
    store.append(fork_id, {"role": "user", "content": "f1"})
    assert [m.content for m in store.messages(fork_id)] == ["u0", "a0", "f0", "f1"]
    ours_before = ours(store, [sid, fork_id])

    # session_graph's setup, deletes and purge: langchain's data stays.
    lc = langchain(sid)
    lc.add_messages([HumanMessage("again"), AIMessage("sure")])
    lc_fork.add_messages([HumanMessage("fork again")])
    theirs_before = langchain_state(neo4j_driver, [sid, fork_id])
    assert len(theirs_before) == 5  # two sessions, three messages
    assert store.setup() == []
    assert langchain_state(neo4j_driver, [sid, fork_id]) == theirs_before
    assert ours(store, [sid, fork_id]) == ours_before
    store.delete_session(fork_id)
    store.delete_session(sid)
    report = store.purge()
    assert report.messages == 5 and report.sessions == 2
    assert langchain_state(neo4j_driver, [sid, fork_id]) == theirs_before
    assert said(lc) == [("human", "again"), ("ai", "sure")]
    assert said(lc_fork) == [("human", "fork again")]
    assert graph_state(store) == []  # ours are gone, all of them
