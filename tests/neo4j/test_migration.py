"""Data an older release wrote (chains only, a tenant-wide change log) opens with this one.

The graph is built with the statements release 0.1 ran (sessions without runs, messages with
owner, idx and pos, PREVIOUS chains, HEADs, FORKED_FROM, (:Tenant)/(:Change) nodes), then
``setup()`` converts it: histories, lineage and later writes must be what they were meant to be.
"""

from __future__ import annotations

import uuid

from neo4j import Driver

from session_graph import SessionStore, Settings
from session_graph.runtime import ConnectionInfo

OLD_GRAPH = """
CREATE (t:Tenant {id: $t, seq: 9})
CREATE (:Change {tenant: $t, seq: 9, session_id: 'L', kind: 'append'})
CREATE (l:Session {tenant: $t, id: 'L', status: 'active', tags: [], metadata: '{}',
                   created_at: datetime(), updated_at: datetime(), length: 5, next_idx: 6})
CREATE (f:Session {tenant: $t, id: 'LF', status: 'active', tags: [], metadata: '{}',
                   created_at: datetime(), updated_at: datetime(), length: 5, next_idx: 2})
CREATE (ff:Session {tenant: $t, id: 'LFF', status: 'active', tags: [], metadata: '{}',
                    created_at: datetime(), updated_at: datetime(), length: 4, next_idx: 0})
WITH l, f, ff
UNWIND range(0, 4) AS i
CREATE (m:Message {tenant: $t, id: randomUUID(), session_id: 'L', idx: i, pos: i,
                   role: 'user', content: 'l' + i, created_at: datetime()})
WITH l, f, ff, collect(m) AS ms
FOREACH (i IN range(1, 4) | FOREACH (a IN [ms[i]] | FOREACH (b IN [ms[i - 1]] |
  CREATE (a)-[:PREVIOUS]->(b))))
// L popped its message 4 (kept: nothing held it, but the old release left idx 4 unused
// after a pop that kept a message for a fork) and appended idx 5 after message 3.
WITH l, f, ff, ms[2] AS m2, ms[3] AS m3
CREATE (l5:Message {tenant: $t, id: randomUUID(), session_id: 'L', idx: 5, pos: 4,
                    role: 'user', content: 'l-after-pop', created_at: datetime()})
CREATE (l5)-[:PREVIOUS]->(m3)
CREATE (l)-[:HEAD]->(l5)
CREATE (f)-[:FORKED_FROM {at: m2.id, position: 2, created_at: datetime()}]->(l)
CREATE (f0:Message {tenant: $t, id: randomUUID(), session_id: 'LF', idx: 0, pos: 3,
                    role: 'assistant', content: 'lf0', created_at: datetime()})
CREATE (f1:Message {tenant: $t, id: randomUUID(), session_id: 'LF', idx: 1, pos: 4,
                    role: 'assistant', content: 'lf1', created_at: datetime()})
CREATE (f0)-[:PREVIOUS]->(m2)
CREATE (f1)-[:PREVIOUS]->(f0)
CREATE (f)-[:HEAD]->(f1)
CREATE (ff)-[:FORKED_FROM {at: f0.id, position: 3, created_at: datetime()}]->(f)
CREATE (ff)-[:HEAD]->(f0)
"""


def test_release_0_1_data_is_converted_by_setup(
    neo4j_info: ConnectionInfo, neo4j_driver: Driver
) -> None:
    tenant = f"legacy-{uuid.uuid4().hex[:8]}"
    neo4j_driver.execute_query(OLD_GRAPH, t=tenant)
    store = SessionStore.connect_to(neo4j_info, Settings(tenant=tenant, mirror_max_lag=0))
    with store:
        store.connect(setup=True)
        histories = {s: [m.content for m in store.messages(s)] for s in ("L", "LF", "LFF")}
        assert histories == {
            "L": ["l0", "l1", "l2", "l3", "l-after-pop"],
            "LF": ["l0", "l1", "l2", "lf0", "lf1"],
            "LFF": ["l0", "l1", "l2", "lf0"],
        }
        assert [m.position for m in store.messages("L")] == [0, 1, 2, 3, 4]
        assert store.descendants("L") == ["LF", "LFF"]
        assert store.ancestors("LFF") == ["LF", "L"]
        assert store.get_session("LFF").root_id == "L"
        assert [m.content for m in store.messages("LF", -2)] == ["lf0", "lf1"]
        store.append("LF", {"role": "user", "content": "after"})
        store.fork("LFF", at=1, id="LFFF")
        assert [m.content for m in store.messages("LF", 3)] == ["lf0", "lf1", "after"]
        assert [m.content for m in store.messages("LFFF")] == ["l0", "l1"]
        assert store.common_ancestor("L", "LFF").content == "l2"  # type: ignore[union-attr]
    left = neo4j_driver.execute_query(
        "MATCH (n) WHERE (n:Tenant AND n.id = $t) OR (n:Change AND n.tenant = $t) "
        "RETURN count(n) AS n",
        t=tenant,
    ).records[0]["n"]
    assert left == 0
