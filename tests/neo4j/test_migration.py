"""Data older releases wrote opens with this one, and other software's data beside it stays.

Release 0.1 kept histories as chains only and a tenant-wide change log: that graph is built
with the statements 0.1 ran (sessions without runs, messages with owner, idx and pos, PREVIOUS
chains, HEADs, FORKED_FROM, (:Tenant)/(:Change) nodes), then ``setup()`` converts it.

Releases before migration 0004 used the labels :Session, :Message and :SchemaMigration (the
defaults of other libraries too, langchain-neo4j's among them) and unprefixed constraint and
index names. Their databases are made here by the statements those releases ran: their
migrations, and the store's own writes through the saved queries under the old labels. Then
``setup()`` must move exactly our nodes to :SGSession/:SGMessage/:SGSchemaMigration (every
property and relationship as it was), drop exactly our old constraints and indexes, and leave
every node, relationship, property, constraint and index of other software as it was, also
when that software uses the same labels, the same ids and the same schema names.

The tests share the session's database with the others, so each makes its "older database"
by taking this release's schema away first (``previous_release``); setup brings it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from neo4j import Driver

from session_graph import SessionStore, Settings, StorageError, queries
from session_graph._sync.neo4j import MIGRATIONS, SCHEMA, Neo4jBackend
from session_graph.runtime import ConnectionInfo

OLD_GRAPH = """
CREATE (t:Tenant {id: $t, seq: 9})
CREATE (:Change {tenant: $t, seq: 9, session_id: 'L', kind: 'append', at: datetime()})
CREATE (:Change {tenant: $t, seq: 8, session_id: 'LF', kind: 'reset', at: datetime()})
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
    assert labels_of(neo4j_driver, tenant) == {("SGMessage",): 9, ("SGSession",): 4}


# -- databases older releases made -------------------------------------------------------------

RELEASE_0_1 = {  # the migrations of release 0.1, as it ran them
    "0001_constraints": [
        "CREATE CONSTRAINT session_key IF NOT EXISTS "
        "FOR (s:Session) REQUIRE (s.tenant, s.id) IS UNIQUE",
        "CREATE CONSTRAINT message_key IF NOT EXISTS "
        "FOR (m:Message) REQUIRE (m.tenant, m.id) IS UNIQUE",
        "CREATE CONSTRAINT tenant_key IF NOT EXISTS FOR (t:Tenant) REQUIRE t.id IS UNIQUE",
        "CREATE CONSTRAINT migration_key IF NOT EXISTS "
        "FOR (v:SchemaMigration) REQUIRE v.version IS UNIQUE",
    ],
    "0002_indexes": [
        "CREATE INDEX message_owner IF NOT EXISTS "
        "FOR (m:Message) ON (m.tenant, m.session_id, m.idx)",
        "CREATE INDEX session_created IF NOT EXISTS FOR (s:Session) ON (s.tenant, s.created_at)",
        "CREATE INDEX session_user IF NOT EXISTS FOR (s:Session) ON (s.tenant, s.user_id)",
        "CREATE INDEX session_status IF NOT EXISTS FOR (s:Session) ON (s.tenant, s.status)",
        "CREATE INDEX change_seq IF NOT EXISTS FOR (c:Change) ON (c.tenant, c.seq)",
    ],
}
PREVIOUS_RELEASE = {  # the release before 0004: 0.1's and its own 0003
    **RELEASE_0_1,
    "0003_runs": [
        "CREATE INDEX session_root IF NOT EXISTS FOR (s:Session) ON (s.tenant, s.root)",
        "DROP INDEX change_seq IF EXISTS",
        "DROP CONSTRAINT tenant_key IF EXISTS",
    ],
}
OLD_CONSTRAINTS = ["session_key", "message_key", "tenant_key", "migration_key"]
OLD_INDEXES = [
    "message_owner",
    "session_created",
    "session_user",
    "session_status",
    "change_seq",
    "session_root",
]
OLD_LABELS = {
    "Session": "SGSession",
    "Message": "SGMessage",
    "SchemaMigration": "SGSchemaMigration",
}
NEW_LABELS = {new: old for old, new in OLD_LABELS.items()}


def schema(driver: Driver, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Constraints and indexes by name, with everything about them that does not change by
    use (an index's read counts and population state do)."""
    found = {}
    for r in driver.execute_query(
        "SHOW CONSTRAINTS YIELD id, name, type, entityType, labelsOrTypes, properties, "
        "ownedIndex, propertyType RETURN *"
    ).records:
        found[f"constraint {r['name']}"] = dict(r)
    for r in driver.execute_query(
        "SHOW INDEXES YIELD id, name, type, entityType, labelsOrTypes, properties, "
        "indexProvider, owningConstraint, options RETURN *"
    ).records:
        found[f"index {r['name']}"] = dict(r)
    if names is None:
        return found
    return {k: v for k, v in found.items() if k.split(" ", 1)[1] in names}


def names_in(driver: Driver) -> set[str]:
    return {key.split(" ", 1)[1] for key in schema(driver)}


NODES = """
UNWIND $ids AS eid
MATCH (n) WHERE elementId(n) = eid
CALL (n) {
  OPTIONAL MATCH (n)-[r]-()
  RETURN collect([type(r), elementId(startNode(r)), elementId(endNode(r)), properties(r)])
         AS rels
}
RETURN eid, labels(n) AS labels, properties(n) AS props, rels
"""


def nodes_state(driver: Driver, ids: list[str], rename: dict[str, str] | None = None) -> list[str]:
    """The nodes ``ids`` (element ids) with their labels (renamed by ``rename``), every
    property and every relationship either way: equal means nothing about them changed."""
    out = []
    for r in driver.execute_query(NODES, ids=ids).records:
        labels = sorted((rename or {}).get(label, label) for label in r["labels"])
        rels = sorted(repr([t, a, b, sorted(p.items())]) for t, a, b, p in r["rels"] if t)
        out.append(repr([r["eid"], labels, sorted(r["props"].items()), rels]))
    assert len(out) == len(ids), "a node is gone"
    return sorted(out)


def element_ids(driver: Driver, tenant: str) -> list[str]:
    query = "MATCH (n {tenant: $t}) RETURN collect(elementId(n)) AS ids"
    return list(driver.execute_query(query, t=tenant).records[0]["ids"])


def labels_of(driver: Driver, tenant: str) -> dict[tuple[str, ...], int]:
    """How many nodes of the tenant carry each set of labels."""
    query = "MATCH (n {tenant: $t}) RETURN labels(n) AS labels, count(*) AS n"
    records = driver.execute_query(query, t=tenant).records
    return {tuple(sorted(r["labels"])): r["n"] for r in records}


def migration_records(driver: Driver) -> list[str]:
    query = "MATCH (v:SGSchemaMigration) RETURN v {.*, labels: labels(v)} AS v ORDER BY v.version"
    return [repr(sorted(r["v"].items())) for r in driver.execute_query(query).records]


class OlderDatabase:
    """Makes the database's schema what an older release left: its migrations run and
    recorded on :SchemaMigration nodes, none of this release's."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.made = False
        self.foreign: list[str] = []  # element ids of other software's nodes, removed after

    def __call__(
        self,
        migrations: dict[str, list[str]] = PREVIOUS_RELEASE,
        before: Callable[[Driver], None] | None = None,
        after: Callable[[Driver], None] | None = None,
    ) -> None:
        self.made = True
        for row in schema(self.driver).values():
            if row["name"].startswith("session_graph_"):
                self.drop(row)
        self.driver.execute_query("MATCH (v:SGSchemaMigration) DETACH DELETE v")
        if before is not None:
            before(self.driver)
        for version, statements in migrations.items():
            for statement in statements:
                self.driver.execute_query(statement)
            self.driver.execute_query(
                "CREATE (:SchemaMigration {version: $v, applied_at: datetime()})", v=version
            )
        if after is not None:
            after(self.driver)

    def drop(self, row: dict[str, Any]) -> None:
        if "ownedIndex" in row:
            self.driver.execute_query("DROP CONSTRAINT $n IF EXISTS", n=row["name"])
        elif row["owningConstraint"] is None:
            self.driver.execute_query("DROP INDEX $n IF EXISTS", n=row["name"])

    def restore(self) -> None:
        """This release's schema back, whatever the test left; other software's gone."""
        old = set(OLD_CONSTRAINTS) | set(OLD_INDEXES)
        for row in schema(self.driver).values():
            if row["name"] in old or {"Conversation", "Other"} & set(row["labelsOrTypes"] or []):
                self.drop(row)
        self.driver.execute_query(
            "UNWIND $ids AS eid MATCH (n) WHERE elementId(n) = eid DETACH DELETE n",
            ids=self.foreign,
        )
        self.driver.execute_query("MATCH (v:SchemaMigration) DETACH DELETE v")
        Neo4jBackend(self.driver).setup()


@pytest.fixture
def older_database(neo4j_driver: Driver) -> Iterator[OlderDatabase]:
    """Makes an older release's database of the tests' one; gives it back at the end."""
    older = OlderDatabase(neo4j_driver)
    yield older
    if older.made:
        older.restore()


def old_release_cypher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store runs its statements as the release before 0004 did: under the old labels."""
    original = queries.cypher

    def old(name: str) -> str:
        text = original(name)
        for new, label in NEW_LABELS.items():
            text = text.replace(f":{new}", f":{label}")
        return text

    monkeypatch.setattr(queries, "cypher", old)


IDS = ["R", "F", "FF", "EA", "EB", "Q"]
SINCE_0004 = MIGRATIONS[MIGRATIONS.index("0004_own_labels") :]
"""What setup applies to a database the release before 0004 made."""


def write_tree(store: Any) -> None:
    """A fork tree with every kind of write: appends, forks, an explore, a copy merge,
    a pop of a shared message, a delete, and an empty second tree."""
    store.create_session("R", title="root", user_id="u1", tags=["a", "b"], metadata={"k": 1})
    store.append(
        "R",
        [
            {"role": "system", "content": "r0"},
            {"role": "user", "content": "r1"},
            {"role": "assistant", "content": "r2", "provider": "p", "model": "m",
             "input_tokens": 3, "output_tokens": 4, "cost": 0.5},
        ],
    )  # fmt: skip
    store.fork("R", at=1, id="F", reason="try")
    store.append("F", {"role": "assistant", "content": "f0", "metadata": {"x": [1]}})
    store.append("R", {"role": "user", "content": "r3"})
    store.merge("F")  # R moved on: f0 is copied into R
    store.explore("R", 0, [{"name": "a", "id": "EA"}, {"name": "b", "id": "EB"}])
    store.append("EA", {"role": "user", "content": "ea0"})
    store.fork("F", id="FF")
    store.pop_last("FF")  # f0 stays for F: only FF's HEAD moves
    store.delete_session("EB")
    store.create_session("Q", tags=["empty"])


def reading(store: Any) -> dict[str, Any]:
    """Everything the store answers about the tree."""
    return {
        "sessions": [store.get_session(sid) for sid in IDS],
        "histories": {sid: store.messages(sid) for sid in IDS},
        "windows": {sid: store.messages(sid, -2) for sid in IDS},
        "lineage": {
            sid: (
                store.parent(sid),
                store.children(sid),
                store.ancestors(sid),
                store.descendants(sid),
                store.root(sid),
                store.siblings(sid),
            )
            for sid in IDS
        },
        "listing": [s.id for s in store.list_sessions(include_deleted=True, limit=100).items],
        "search": store.search("r", limit=100),
    }


def open_store(info: ConnectionInfo, tenant: str) -> SessionStore:
    return SessionStore.connect_to(info, Settings(tenant=tenant, mirror_max_lag=0))


def previous_release_tree(
    info: ConnectionInfo, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The tree, written by the release before 0004; what that release read back."""
    with monkeypatch.context() as patch:
        old_release_cypher(patch)
        with open_store(info, tenant) as store:
            store.connect()
            write_tree(store)
            return reading(store)


FOREIGN = """
// langchain-neo4j's Neo4jChatMessageHistory, with our root's id as its session id
CREATE (ls:Session {id: 'R', createdAt: datetime()})
CREATE (m1:Message {role: 'human', content: 'hi', createdAt: datetime()})
CREATE (m2:Message {role: 'ai', content: 'hello', createdAt: datetime()})
CREATE (ls)-[:LAST_MESSAGE]->(m2)
CREATE (m1)-[:NEXT]->(m2)
// other software's nodes with our old labels, our tenant's name, shapes close to ours
CREATE (t1:Tenant {id: $t})
CREATE (t2:Tenant {id: $t + '-2', seq: 3})
CREATE (c1:Change {tenant: $t + '-2', seq: 3, session_id: 'R', kind: 'append', at: datetime(),
                   by: 'audit'})
CREATE (t3:Tenant {id: $t + '-3', seq: 1})
CREATE (c2:Change {tenant: $t + '-3', seq: 1, session_id: 'R', kind: 'append', at: datetime()})
CREATE (t3)-[:LOGGED]->(c2)
CREATE (s1:Session {tenant: $t, id: 'theirs', title: 'not ours', status: 'active'})
CREATE (s2:Session {tenant: $t, id: 'R2', root: 'R2', run_owner: 'R2', run_start: 0})
CREATE (s3:Session {tenant: $t, id: 'L0', status: 'active', tags: [], metadata: '{}',
                    created_at: datetime(), updated_at: datetime(), length: 'long',
                    next_idx: 0})
CREATE (m3:Message {tenant: $t, id: 'fm', session_id: 'theirs', idx: 0, pos: 0})
CREATE (m3)-[:PREVIOUS]->(m1)
CREATE (s1)-[:HEAD]->(m3)
CREATE (v1:SchemaMigration {version: 'V1__init', applied_at: datetime()})
CREATE (k:Conversation {key: 'k1'})
CREATE (k)-[:ABOUT]->(ls)
RETURN [x IN [ls, m1, m2, t1, t2, c1, t3, c2, s1, s2, s3, m3, v1, k] | elementId(x)] AS ids
"""
FOREIGN_SCHEMA_BEFORE = [  # made before the older release ran its migrations: it kept these
    "CREATE CONSTRAINT session_key FOR (c:Conversation) REQUIRE c.key IS UNIQUE",
    "CREATE INDEX session_user FOR (c:Conversation) ON (c.user)",
]
FOREIGN_SCHEMA_AFTER = [  # made after its 0003 dropped ours: the same name and shape as ours
    "CREATE CONSTRAINT tenant_key FOR (t:Tenant) REQUIRE t.id IS UNIQUE",
]


def run_all(statements: list[str]) -> Callable[[Driver], None]:
    def run(driver: Driver) -> None:
        for statement in statements:
            driver.execute_query(statement)

    return run


def assert_schema_is_ours(driver: Driver, keep: Iterable[str] = ()) -> None:
    """Our schema names are all there, and none of the old ones but those in ``keep``."""
    names = names_in(driver)
    assert set(SCHEMA) <= names
    assert not (set(OLD_CONSTRAINTS) | set(OLD_INDEXES)) - set(keep) & names


def assert_moved(
    driver: Driver,
    tenant: str,
    ours: list[str],
    ours_before: list[str],
    old_reading: dict[str, Any],
    info: ConnectionInfo,
) -> None:
    """Our nodes are under the new labels only, with every property and relationship as
    they were, and the store reads what the older release read."""
    assert nodes_state(driver, ours) == ours_before
    assert {label for labels in labels_of(driver, tenant) for label in labels} >= {
        "SGSession",
        "SGMessage",
    }
    with open_store(info, tenant) as store:
        store.connect()
        assert reading(store) == old_reading


# -- the release before 0004 -------------------------------------------------------------------


def test_previous_release_database_moves_to_our_labels_and_names(
    neo4j_info: ConnectionInfo,
    neo4j_driver: Driver,
    older_database: OlderDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    older_database()
    assert set(OLD_CONSTRAINTS) - {"tenant_key"} <= names_in(neo4j_driver)
    assert not any(name.startswith("session_graph_") for name in names_in(neo4j_driver))
    tenant = f"prev-{uuid.uuid4().hex[:8]}"
    old_reading = previous_release_tree(neo4j_info, tenant, monkeypatch)
    ours = element_ids(neo4j_driver, tenant)
    assert set(labels_of(neo4j_driver, tenant)) == {("Session",), ("Message",)}
    ours_before = nodes_state(neo4j_driver, ours, OLD_LABELS)

    with open_store(neo4j_info, tenant) as store:
        assert store.setup() == SINCE_0004

    assert set(labels_of(neo4j_driver, tenant)) == {("SGSession",), ("SGMessage",)}
    assert_moved(neo4j_driver, tenant, ours, ours_before, old_reading, neo4j_info)
    assert_schema_is_ours(neo4j_driver)
    assert neo4j_driver.execute_query("MATCH (v:SchemaMigration) RETURN v").records == []
    records = neo4j_driver.execute_query(
        "MATCH (v:SGSchemaMigration) RETURN v.version AS v, v.adopted_at IS NOT NULL AS adopted "
        "ORDER BY v"
    ).records
    assert [(r["v"], r["adopted"]) for r in records] == [
        ("0001_constraints", True),
        ("0002_indexes", True),
        ("0003_runs", True),
        *((version, False) for version in SINCE_0004),
    ]
    with open_store(neo4j_info, tenant) as store:  # and it works on
        store.connect()
        store.append("F", {"role": "user", "content": "later"})
        store.fork("EA", id="EA2")
        assert [m.content for m in store.messages("F")] == ["r0", "r1", "f0", "later"]
        assert store.ancestors("EA2") == ["EA", "R"]
        store.delete_session("FF", purge=True)
    assert set(labels_of(neo4j_driver, tenant)) == {("SGSession",), ("SGMessage",)}


def test_other_software_beside_a_previous_release_database_keeps_everything(
    neo4j_info: ConnectionInfo,
    neo4j_driver: Driver,
    older_database: OlderDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """langchain-style data with our ids, :Tenant/:Change/:Session/:Message/:SchemaMigration
    nodes of other shapes, and constraints and indexes named like ours all stay as they were,
    through setup and a second setup; release 0.1's own data beside them is converted."""
    older_database(before=run_all(FOREIGN_SCHEMA_BEFORE), after=run_all(FOREIGN_SCHEMA_AFTER))
    tenant = f"prev-{uuid.uuid4().hex[:8]}"
    legacy = f"{tenant}-legacy"
    old_reading = previous_release_tree(neo4j_info, tenant, monkeypatch)
    ours = element_ids(neo4j_driver, tenant)
    ours_before = nodes_state(neo4j_driver, ours, OLD_LABELS)
    moved = {(OLD_LABELS[old],): n for (old,), n in labels_of(neo4j_driver, tenant).items()}
    neo4j_driver.execute_query(OLD_GRAPH, t=legacy)  # release 0.1's data beside
    foreign = list(neo4j_driver.execute_query(FOREIGN, t=tenant).records[0]["ids"])
    older_database.foreign += foreign
    foreign_before = nodes_state(neo4j_driver, foreign)
    foreign_names = ["session_key", "session_user", "tenant_key"]
    foreign_schema = schema(neo4j_driver, foreign_names)
    assert len(foreign_schema) == 5  # two constraints, their two indexes, an index
    assert all(row["labelsOrTypes"] != ["Session"] for row in foreign_schema.values())

    with open_store(neo4j_info, tenant) as store:
        assert store.setup() == SINCE_0004

    assert nodes_state(neo4j_driver, foreign) == foreign_before
    assert schema(neo4j_driver, foreign_names) == foreign_schema
    assert_moved(neo4j_driver, tenant, ours, ours_before, old_reading, neo4j_info)
    assert labels_of(neo4j_driver, tenant) == {**moved, ("Session",): 3, ("Message",): 1}
    assert_schema_is_ours(neo4j_driver, keep=foreign_names)
    with open_store(neo4j_info, legacy) as store:
        store.connect()
        assert [m.content for m in store.messages("LFF")] == ["l0", "l1", "l2", "lf0"]
        assert store.ancestors("LFF") == ["LF", "L"]
    assert labels_of(neo4j_driver, legacy) == {("SGSession",): 3, ("SGMessage",): 8}

    everything = element_ids(neo4j_driver, tenant) + element_ids(neo4j_driver, legacy) + foreign
    state = (
        nodes_state(neo4j_driver, everything),
        schema(neo4j_driver),
        migration_records(neo4j_driver),
    )
    with open_store(neo4j_info, tenant) as store:
        assert store.setup() == []
    assert (
        nodes_state(neo4j_driver, everything),
        schema(neo4j_driver),
        migration_records(neo4j_driver),
    ) == state, "a second setup changed something"


def test_release_0_1_database_drops_its_change_log_schema(
    neo4j_driver: Driver, older_database: OlderDatabase
) -> None:
    """A database release 0.1 migrated (0001, 0002: tenant_key, change_seq) loses those too."""
    older_database(RELEASE_0_1)
    assert {"tenant_key", "change_seq"} <= names_in(neo4j_driver)
    tenant = f"legacy-{uuid.uuid4().hex[:8]}"
    neo4j_driver.execute_query(OLD_GRAPH, t=tenant)
    assert Neo4jBackend(neo4j_driver).setup() == MIGRATIONS[2:]
    assert_schema_is_ours(neo4j_driver)
    assert labels_of(neo4j_driver, tenant) == {("SGSession",): 3, ("SGMessage",): 8}


@pytest.mark.parametrize("crash_at", ["relabel_messages", "relabel_sessions", "drop_index"])
def test_a_crash_while_moving_ends_in_the_same_graph(
    neo4j_info: ConnectionInfo,
    neo4j_driver: Driver,
    older_database: OlderDatabase,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
) -> None:
    """Setup stops (the process dies) at the second batch of a step, the next setup carries
    on: the graph, the schema and the records end as an uninterrupted setup leaves them."""
    older_database()
    tenant = f"crash-{uuid.uuid4().hex[:8]}"
    old_reading = previous_release_tree(neo4j_info, tenant, monkeypatch)
    ours = element_ids(neo4j_driver, tenant)
    ours_before = nodes_state(neo4j_driver, ours, OLD_LABELS)
    crash_text = queries.cypher(crash_at)
    statement = Neo4jBackend._statement
    calls = 0

    def crashing(self: Neo4jBackend, text: str, params: dict[str, Any], write: bool) -> Any:
        nonlocal calls
        if text == crash_text:
            calls += 1
            if calls == 2:
                raise KeyboardInterrupt("the process dies here")
        return statement(self, text, params, write)

    with open_store(neo4j_info, tenant) as store, monkeypatch.context() as patch:
        patch.setattr(Neo4jBackend, "_statement", crashing)
        assert isinstance(store.backend, Neo4jBackend)
        store.backend.relabel_batch = 2
        with pytest.raises(KeyboardInterrupt):
            store.setup()
    assert calls == 2
    applied = Neo4jBackend(neo4j_driver).applied_migrations()
    assert applied == MIGRATIONS[:3]  # 0004 is recorded only when all of it is done
    labels = labels_of(neo4j_driver, tenant)
    if crash_at != "drop_index":  # stopped half way: some nodes moved, some not
        assert ("SGSession",) in labels or ("SGMessage",) in labels
        assert ("Session",) in labels or ("Message",) in labels

    with open_store(neo4j_info, tenant) as store:
        assert store.setup() == SINCE_0004
    assert set(labels_of(neo4j_driver, tenant)) == {("SGSession",), ("SGMessage",)}
    assert_moved(neo4j_driver, tenant, ours, ours_before, old_reading, neo4j_info)
    assert_schema_is_ours(neo4j_driver)


def test_setup_refuses_another_index_with_one_of_our_names(
    neo4j_driver: Driver, older_database: OlderDatabase
) -> None:
    """An index of other software named like one of ours (so ours was never made) is an
    error naming it, not a silently missing index; the other index stays."""
    older_database(
        before=run_all(["CREATE INDEX session_graph_session_user FOR (o:Other) ON (o.user)"])
    )
    theirs = schema(neo4j_driver, ["session_graph_session_user"])
    with pytest.raises(StorageError, match="session_graph_session_user"):
        Neo4jBackend(neo4j_driver).setup()
    assert schema(neo4j_driver, ["session_graph_session_user"]) == theirs
    neo4j_driver.execute_query("DROP INDEX session_graph_session_user")
    Neo4jBackend(neo4j_driver).setup()
    assert set(SCHEMA) <= names_in(neo4j_driver)


# -- 0005: rich messages ------------------------------------------------------------------------


def test_rich_messages_migration_lifts_tool_calls_out_of_metadata(
    neo4j_info: ConnectionInfo, neo4j_driver: Driver
) -> None:
    """Tool calls kept in metadata (the shapes the demo, LangChain and OpenAI chat use) become
    first-class tool calls and `tool_names`; metadata stays as it was; anything that is not
    unmistakably a list of calls is left alone; a second setup changes nothing."""
    tenant = f"rich-{uuid.uuid4().hex[:8]}"
    shapes: list[Any] = [
        [{"id": "c1", "type": "function", "name": "search", "arguments": {"q": "x"}}],
        [{"id": "c2", "name": "calc", "args": {"a": 1}, "type": "tool_call"}],
        [{"id": "c3", "type": "function", "function": {"name": "get", "arguments": "{}"}}],
        [{"name": "ok"}, {"no": "name"}],  # one bad call: the list stays in metadata only
        "not a list",
        [],
    ]
    with open_store(neo4j_info, tenant) as store:
        store.create_session("s")
        written = store.append(
            "s", [{"role": "assistant", "content": f"m{i}", "metadata": {"tool_calls": shape}}
                  for i, shape in enumerate(shapes)],
        )  # fmt: skip
        store.append("s", {"role": "user", "content": "tool_calls are mentioned in text only"})
    neo4j_driver.execute_query(
        "MATCH (v:SGSchemaMigration {version: '0005_rich_messages'}) DELETE v"
    )
    backend = Neo4jBackend(neo4j_driver)
    backend.relabel_batch = 2  # several batches, each its own transaction
    assert backend.setup() == ["0005_rich_messages"]
    assert backend.setup() == []

    with open_store(neo4j_info, tenant) as store:
        store.connect()
        read = store.messages("s")
    assert [m.metadata for m in read[:6]] == [w.metadata for w in written]
    assert [[(c.id, c.name, c.arguments) for c in m.tool_calls] for m in read] == [
        [("c1", "search", {"q": "x"})],
        [("c2", "calc", {"a": 1})],
        [("c3", "get", "{}")],
        [],
        [],
        [],
        [],
    ]
    names = neo4j_driver.execute_query(
        "MATCH (m:SGMessage {tenant: $t}) RETURN m.tool_names AS n ORDER BY m.pos", t=tenant
    ).records
    assert [r["n"] for r in names] == [["search"], ["calc"], ["get"], None, None, None, None]
