"""Shared assertions for Neo4j tests: chain integrity and mirror-equals-server."""

from __future__ import annotations

from typing import Any

from session_graph import SessionStore, lineage
from session_graph.mirror import Mirror


def tenant_query(store: SessionStore, query: str, **params: Any) -> list[dict[str, Any]]:
    """Run a test-only read with the tenant as a parameter (never interpolated)."""
    driver = store.backend.driver  # type: ignore[attr-defined]
    records, _, _ = driver.execute_query(
        query, t=store.tenant, database_=store.backend.database, **params  # type: ignore[attr-defined]
    )
    return [dict(r) for r in records]


def assert_chains_intact(store: SessionStore) -> None:
    """Every message has at most one predecessor and one same-session successor."""
    two_prev = tenant_query(
        store,
        "MATCH (m:Message {tenant: $t})-[r:PREVIOUS]->() WITH m, count(r) AS n "
        "WHERE n > 1 RETURN m.id AS id",
    )
    assert two_prev == []
    split = tenant_query(
        store,
        "MATCH (m:Message {tenant: $t})<-[:PREVIOUS]-(n:Message) "
        "WHERE n.session_id = m.session_id WITH m, count(n) AS k WHERE k > 1 RETURN m.id AS id",
    )
    assert split == []
    positions = tenant_query(
        store,
        "MATCH (m:Message {tenant: $t})-[:PREVIOUS]->(p) WHERE m.pos <> p.pos + 1 "
        "RETURN m.id AS id",
    )
    assert positions == []


def assert_mirror_equals_server(store: SessionStore) -> None:
    """Every session's history and lineage on the mirror equal the saved Cypher's answers."""
    store.refresh()
    fresh = Mirror()
    store.backend.read(fresh.load)
    run = store.backend.run_saved
    sessions = sorted(s for s in store.mirror.sessions() if "tenant" in store.mirror.row(s).props)
    assert sessions == sorted(fresh.sessions())
    for sid in sessions:
        assert store.mirror.history_ids(sid) == [r["id"] for r in run("session_history", id=sid)]
        assert fresh.history_ids(sid) == store.mirror.history_ids(sid)
        assert lineage.ancestors(store.mirror.graph, sid) == [
            r["id"] for r in run("session_ancestors", id=sid)
        ]
        assert sorted(lineage.descendants(store.mirror.graph, sid)) == sorted(
            r["id"] for r in run("session_subtree", id=sid)
        )
