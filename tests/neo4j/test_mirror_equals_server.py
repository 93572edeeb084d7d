"""The store's lineage and histories equal the saved Cypher's, over random trees (property-based).

Three views must agree with the Cypher: the store that made the tree (its mirror patched by its
own writes), a second store opened afterwards (mirror loaded from the database), and a third
that was open all along and learns the tree by version checks (another process).
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neo4j import Driver

from session_graph import SessionGraphError, SessionStore, Settings
from session_graph.runtime import ConnectionInfo
from tests.neo4j.checks import rows, server_view, store_view

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


def open_tenant(info: ConnectionInfo, tenant: str, **overrides: object) -> SessionStore:
    store = SessionStore.connect_to(info, Settings(tenant=tenant, **overrides))  # type: ignore[arg-type]
    store.connect()
    return store


def apply(store: SessionStore, op: tuple[str, int, float]) -> None:
    kind, pick, arg = op
    live = [s.id for s in store.list_sessions(limit=10_000).items]
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


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ops=st.lists(OPS, min_size=3, max_size=25),
    pairs=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=5),
)
def test_mirror_equals_cypher_on_random_trees(
    neo4j_info: ConnectionInfo,
    neo4j_driver: Driver,  # the schema, applied once
    ops: list[tuple[str, int, float]],
    pairs: list[tuple[int, int]],
) -> None:
    tenant = f"prop-{uuid.uuid4().hex[:10]}"
    store = open_tenant(neo4j_info, tenant)
    watcher = open_tenant(neo4j_info, tenant, mirror_max_lag=0)  # another process, open all along
    store.create_session("root")
    store.append("root", [{"role": "user", "content": f"r{i}"} for i in range(3)])
    watcher.children("root")
    for op in ops:
        apply(store, op)
    fresh = open_tenant(neo4j_info, tenant)  # opened afterwards: loads what it is asked
    try:
        sessions = sorted(
            r["id"] for r in rows(store, "MATCH (s:SGSession {tenant: $t}) RETURN s.id AS id")
        )
        fanout = {r["id"]: r["forks"] for r in store.run_saved("fork_fanout")}
        for sid in sessions:
            expected = server_view(store, sid)
            for view in (store, fresh, watcher):
                assert store_view(view, sid) == expected, sid
            assert store.message_count(sid) == len(expected["history"])  # type: ignore[arg-type]
            assert fanout[sid] == len(store.children(sid))
        for i, j in pairs if sessions else []:
            a, b = sessions[i % len(sessions)], sessions[j % len(sessions)]
            found = store.run_saved("common_ancestor_message", a=a, b=b)
            want = (found[0]["id"], found[0]["position"]) if found else None
            got = store.common_ancestor(a, b)
            assert (None if got is None else (got.id, got.position)) == want, (a, b)
    finally:
        for s in (store, watcher, fresh):
            s.close()
