"""The mirror's lineage answers equal the saved Cypher's, over random trees (property-based)."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neo4j import Driver

from session_graph import SessionGraphError, SessionStore, Settings
from session_graph.backends.neo4j import Neo4jBackend
from session_graph.lineage import common_ancestor
from session_graph.mirror import Mirror
from session_graph.runtime import ConnectionInfo

OPS = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 50), st.integers(1, 4)),
    st.tuples(st.just("fork"), st.integers(0, 50), st.floats(0, 1)),
    st.tuples(st.just("edit"), st.integers(0, 50), st.floats(0, 1)),
    st.tuples(st.just("pop"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("clear"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("merge"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("purge"), st.just(0), st.just(0)),
)


def open_tenant(info: ConnectionInfo, driver: Driver, tenant: str) -> SessionStore:
    store = SessionStore(
        Neo4jBackend(driver, tenant=tenant, database=info.database), Settings(tenant=tenant)
    )
    store.connect()
    return store


def apply(store: SessionStore, op: tuple[str, int, float]) -> None:
    kind, pick, arg = op
    live = [
        s
        for s in store.mirror.sessions()
        if store.mirror.row(s).props.get("status") not in (None, "deleted")
    ]
    if kind == "purge":
        store.purge()
        return
    if not live:
        store.create_session()
        return
    sid = live[pick % len(live)]
    length = store.message_count(sid)
    try:
        if kind == "append":
            store.append(
                sid, [{"role": "user", "content": f"{sid[-4:]}-{i}"} for i in range(int(arg))]
            )
        elif kind == "fork":
            store.fork(sid, at=int(arg * (length - 1)) if length else None)
        elif kind == "edit" and length:
            store.edit(sid, int(arg * (length - 1)), {"role": "user", "content": "edited"})
        elif kind == "pop":
            store.pop_last(sid)
        elif kind == "clear":
            store.clear_history(sid)
        elif kind == "delete":
            store.delete_session(sid)
        elif kind == "merge":
            store.merge(sid)
    except SessionGraphError:
        pass  # refused operations (pop on empty, merge of a root...) must change nothing


def server_view(store: SessionStore, sid: str) -> dict[str, object]:
    run = store.backend.run_saved
    return {
        "history": [r["id"] for r in run("session_history", id=sid)],
        "ancestors": [r["id"] for r in run("session_ancestors", id=sid)],
        "subtree": sorted(r["id"] for r in run("session_subtree", id=sid)),
        "siblings": sorted(r["id"] for r in run("session_siblings", id=sid)),
    }


def mirror_view(store: SessionStore, mirror: Mirror, sid: str) -> dict[str, object]:
    from session_graph import lineage

    return {
        "history": mirror.history_ids(sid),
        "ancestors": lineage.ancestors(mirror.graph, sid),
        "subtree": sorted(lineage.descendants(mirror.graph, sid)),
        "siblings": sorted(lineage.siblings(mirror.graph, sid)),
    }


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ops=st.lists(OPS, min_size=3, max_size=25),
    pairs=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=5),
)
def test_mirror_equals_cypher_on_random_trees(
    neo4j_info: ConnectionInfo,
    neo4j_driver: Driver,
    ops: list[tuple[str, int, float]],
    pairs: list[tuple[int, int]],
) -> None:
    tenant = f"prop-{uuid.uuid4().hex[:10]}"
    store = open_tenant(neo4j_info, neo4j_driver, tenant)
    store.create_session("root")
    store.append("root", [{"role": "user", "content": f"r{i}"} for i in range(3)])
    for op in ops:
        apply(store, op)

    fresh = Mirror()
    store.backend.read(fresh.load)
    other = open_tenant(neo4j_info, neo4j_driver, tenant)  # a second process's view
    sessions = sorted(s for s in store.mirror.sessions() if "tenant" in store.mirror.row(s).props)
    assert sessions == sorted(fresh.sessions()) == sorted(other.mirror.sessions())
    fanout = {r["id"]: r["forks"] for r in store.backend.run_saved("fork_fanout")}
    for sid in sessions:
        expected = server_view(store, sid)
        assert mirror_view(store, store.mirror, sid) == expected, sid
        assert mirror_view(store, fresh, sid) == expected, sid
        assert store.mirror.length(sid) == len(expected["history"])  # type: ignore[arg-type]
        assert fanout[sid] == store.mirror.graph.out_degree(sid)
    for i, j in pairs if sessions else []:
        a, b = sessions[i % len(sessions)], sessions[j % len(sessions)]
        rows = store.backend.run_saved("common_ancestor_message", a=a, b=b)
        want = (rows[0]["id"], rows[0]["position"]) if rows else None
        assert common_ancestor(store.mirror, a, b) == want
