"""Shared assertions for Neo4j tests: chain integrity, and store answers equal the Cypher's."""

from __future__ import annotations

from typing import Any

from tests.stores import tenant_query


def rows(store: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    found = tenant_query(store, query, **params)
    assert found is not None, "a Neo4j store is needed"
    return found


def assert_chains_intact(store: Any) -> None:
    """Every message has at most one predecessor, positions follow their predecessor's, and
    every session's runs describe exactly the chain its HEAD walks."""
    two_prev = rows(
        store,
        "MATCH (m:SGMessage {tenant: $t})-[r:PREVIOUS]->() WITH m, count(r) AS n "
        "WHERE n > 1 RETURN m.id AS id",
    )
    assert two_prev == []
    positions = rows(
        store,
        "MATCH (m:SGMessage {tenant: $t})-[:PREVIOUS]->(p) WHERE m.pos <> p.pos + 1 "
        "RETURN m.id AS id",
    )
    assert positions == []
    for s in rows(store, "MATCH (s:SGSession {tenant: $t}) RETURN s.id AS id, s.length AS n"):
        walked = [
            r["id"] for r in store.run_saved("session_history", id=s["id"])
        ]
        assert store.history_ids(s["id"]) == walked, s["id"]
        assert len(walked) == s["n"], s["id"]


def assert_store_equals_server(store: Any) -> None:
    """Every session's history and lineage through the store API equal the saved Cypher's."""
    store.refresh()
    sessions = [r["id"] for r in rows(store, "MATCH (s:SGSession {tenant: $t}) RETURN s.id AS id")]
    for sid in sessions:
        assert store_view(store, sid) == server_view(store, sid), sid


def server_view(store: Any, sid: str) -> dict[str, object]:
    run = store.run_saved
    return {
        "history": [r["id"] for r in run("session_history", id=sid)],
        "ancestors": [r["id"] for r in run("session_ancestors", id=sid)],
        "subtree": sorted(r["id"] for r in run("session_subtree", id=sid)),
        "siblings": sorted(r["id"] for r in run("session_siblings", id=sid)),
    }


def store_view(store: Any, sid: str) -> dict[str, object]:
    return {
        "history": store.history_ids(sid),
        "ancestors": store.ancestors(sid),
        "subtree": sorted(store.descendants(sid)),
        "siblings": sorted(store.siblings(sid)),
    }
