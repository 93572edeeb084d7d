"""Cypher injection: user data never changes what a query means.

Ids, tags, titles, user ids, statuses, metadata, message fields, search text, cursors, tenant
names and saved-query parameters that hold Cypher fragments are stored and read back as data,
match only themselves, and touch nothing else: not the store's other sessions, not other
tenants (one of them literally called ``other``), on the memory backend and on the real server.
The saved queries themselves are checked too: they take values only as ``$parameters``, and each
of them (every statement of every migration included) compiles on the server.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

import session_graph
from session_graph import (
    ForkPointError,
    SessionNotFoundError,
    SessionStore,
    ValidationError,
)
from session_graph import queries as saved
from session_graph._sync.memory import MemoryBackend
from session_graph.runtime import ConnectionInfo
from tests.stores import fingerprint, other_tenant, tenant_query

FRAGMENTS = [
    "' }) MATCH (n) DETACH DELETE n //",
    '" }) MATCH (n) DETACH DELETE n //',
    "\\u0027 }) MATCH (n) DETACH DELETE n //",
    "\u0027) RETURN 1 //",
    "x'}) WITH * MATCH (s:SGSession) SET s.tenant = 'pwned' //",
    '") RETURN 1 UNION MATCH (n) RETURN n //',
    "') RETURN 1 UNION ALL MATCH (n) DETACH DELETE n RETURN 1 AS x //",
    "`) DETACH DELETE n //",
    "``; MATCH (n) DETACH DELETE n",
    "`SGSession`",
    "$tenant",
    "{tenant: 'other'}",
    "$tenant}) MATCH (n {tenant: 'other'}) DETACH DELETE n //",
    "' OR 1=1 OR '' = '",
    "*/ MATCH (n) DETACH DELETE n /*",
    "; DROP CONSTRAINT session_graph_session_key; //",
    "CALL db.clearQueryCaches()",
    "\\' } ) // \\\\",
    "{0} %s %(tenant)s {tenant}",
    ".*",
    "(?i)^.*$",
    "%",
    "_",
    "[a-z]+",
    "\\",
    "x\u05d0'-- \U0001f600",  # right-to-left text, visible (bidi controls: test_arguments)
]


def _tag(text: str) -> str:
    return re.sub(r"\W+", "_", text.encode("unicode_escape").decode("ascii")).strip("_")[:40]


FRAGMENT_IDS = [f"{i:02d}-{_tag(f)}" for i, f in enumerate(FRAGMENTS)]


# -- stores on other tenants -------------------------------------------------------------------


def tenant_store(store: SessionStore, tenant: str) -> SessionStore:
    """A store on the same database as ``store`` but another tenant."""
    return other_tenant(store, tenant)  # type: ignore[no-any-return]


def graph_size(store: SessionStore) -> dict[str, int] | None:
    """Nodes by label and outgoing relationships by type, of the store's tenant (Neo4j)."""
    rows = tenant_query(
        store,
        "MATCH (n {tenant: $t}) UNWIND labels(n) AS label "
        "RETURN 'node:' + label AS what, count(*) AS n "
        "UNION ALL "
        "MATCH (n {tenant: $t})-[r]->() RETURN 'rel:' + type(r) AS what, count(*) AS n",
    )
    return None if rows is None else {r["what"]: int(r["n"]) for r in rows}


def populate(store: SessionStore) -> None:
    sid = f"victim-{uuid.uuid4().hex[:8]}"
    store.create_session(sid, title="keep me", user_id="bob", tags=["plain"], metadata={"a": 1})
    store.append(
        sid, [{"role": "user", "content": "secret"}, {"role": "assistant", "content": "ok"}]
    )
    store.fork(sid, 0, id=f"{sid}-fork", reason="why")


@pytest.fixture
def victims(store: SessionStore) -> Iterator[list[SessionStore]]:
    """Two other tenants with data ("other" and a random one), checked unchanged at the end."""
    others = [tenant_store(store, "other"), tenant_store(store, f"victim-{uuid.uuid4().hex[:8]}")]
    for other in others:
        populate(other)
    before = [fingerprint(o) for o in others]
    yield others
    assert [fingerprint(o) for o in others] == before, "another tenant's data changed"
    for other in others:
        other.close()


# -- fragments as data -------------------------------------------------------------------------


@pytest.mark.parametrize("frag", FRAGMENTS, ids=FRAGMENT_IDS)
def test_cypher_fragments_are_stored_and_read_as_data(
    store: SessionStore, victims: list[SessionStore], frag: str
) -> None:
    store.create_session("bystander", user_id="bob", tags=["plain"], metadata={"b": 2})
    [quiet] = store.append("bystander", {"role": "user", "content": "nothing to see"})
    meta = {frag: frag, "nested": [frag, {frag: [frag, None, 1]}]}

    made = store.create_session(frag, title=frag, user_id=frag, tags=[frag, "plain"], metadata=meta)
    first, second = store.append(
        frag,
        [
            {
                "role": "tool",
                "content": frag,
                "provider": frag,
                "model": frag,
                "tool_name": frag,
                "tool_call_id": frag,
                "metadata": meta,
            },
            {"role": "assistant", "content": f"before {frag} after"},
        ],
    )
    fork = store.fork(
        frag, 0, id=f"{frag} fork", reason=frag, title=frag, tags=[frag], fork_metadata=meta
    )
    [branch] = store.explore(frag, None, [{"name": frag, "id": f"{frag} branch"}])
    updated = store.update_session(frag, title=f"{frag}{frag}", status=frag[:64])

    # Read back exactly.
    read = store.get_session(frag)
    assert read == updated
    assert (read.id, read.title, read.user_id, read.tags, read.status, read.metadata) == (
        frag,
        frag + frag,
        frag,
        (frag, "plain"),
        frag[:64],
        meta,
    )
    assert made.metadata == meta
    history = store.messages(frag)
    assert history == [first, second]
    assert store.get_message(first.id) == first
    assert (first.content, first.provider, first.model, first.tool_name, first.tool_call_id) == (
        frag,
        frag,
        frag,
        frag,
        frag,
    )
    assert first.metadata == meta and second.content == f"before {frag} after"
    forked = store.get_session(f"{frag} fork")
    assert forked == fork and forked.fork is not None
    assert (forked.fork.parent_id, forked.fork.reason, forked.fork.metadata) == (frag, frag, meta)
    assert store.messages(f"{frag} fork") == [first]
    assert store.get_session(f"{frag} branch") == branch
    assert branch.fork is not None and branch.fork.reason == frag

    # Filters and lineage match the fragment exactly and nothing else.
    def listed(**filters: Any) -> set[str]:
        page = store.list_sessions(include_deleted=True, limit=10_000, **filters)
        return {s.id for s in page.items}

    family = {frag, f"{frag} fork", f"{frag} branch"}
    assert listed(user_id=frag) == family  # forks inherit the parent's user id
    assert listed(tags=[frag]) == {frag, f"{frag} fork"}
    assert listed(tags=[frag, "plain"]) == {frag}
    assert listed(status=frag[:64]) == {frag}
    assert listed(user_id="bob") == {"bystander"}
    assert listed() == family | {"bystander"}
    assert store.parent(f"{frag} fork") == frag
    assert sorted(store.children(frag)) == sorted([f"{frag} fork", f"{frag} branch"])
    assert store.root(f"{frag} branch") == frag
    hits = store.search(frag, limit=10_000)
    assert {m.id for m in hits} == {first.id, second.id}
    assert store.search("nothing", limit=10_000) == [quiet]

    if not isinstance(store.backend, MemoryBackend):
        run = store.run_saved
        assert [r["id"] for r in run("session_history", id=frag)] == [first.id, second.id]
        assert [r["id"] for r in run("session_ancestors", id=f"{frag} branch")] == [frag]
        assert sorted(r["id"] for r in run("session_subtree", id=frag)) == sorted(family - {frag})
        size = graph_size(store)
        assert size is not None
        assert size == {
            "node:SGSession": 4,  # frag, its fork and branch, the bystander
            "node:SGMessage": 3,
            "rel:HEAD": 4,
            "rel:PREVIOUS": 1,
            "rel:FORKED_FROM": 2,
        }

    # Deleting the fork with the fragment id removes that fork only.
    store.delete_session(f"{frag} fork", purge=True)
    assert listed() == {frag, f"{frag} branch", "bystander"}
    assert store.messages(frag) == [first, second]
    assert store.messages("bystander") == [quiet]
    assert store.get_session("bystander").metadata == {"b": 2}


def test_fragments_used_as_lookups_find_nothing(
    store: SessionStore, victims: list[SessionStore]
) -> None:
    """Asking for a fragment that names no session finds nothing; nothing is matched widely."""
    store.create_session("s", user_id="alice", tags=["t"], status="active")
    store.add_message("s", "user", "plain words")
    before = fingerprint(store)
    stamp = datetime(2020, 1, 1, tzinfo=timezone.utc).isoformat()
    for frag in FRAGMENTS:
        with pytest.raises(SessionNotFoundError):
            store.get_session(frag)
        with pytest.raises(SessionNotFoundError):
            store.messages(frag)
        with pytest.raises(SessionNotFoundError):
            store.append(frag, {"role": "user", "content": "x"})
        with pytest.raises(SessionNotFoundError):
            store.delete_session(frag)
        assert store.list_sessions(user_id=frag).items == ()
        assert store.list_sessions(status=frag).items == ()
        assert store.list_sessions(tags=[frag]).items == ()
        assert store.search(frag) == []
        with pytest.raises(ForkPointError):
            store.fork("s", at=frag)
        cursor = base64.urlsafe_b64encode(json.dumps([stamp, frag]).encode()).decode()
        assert [s.id for s in store.list_sessions(cursor=cursor).items] == ["s"]
    assert fingerprint(store) == before


# -- tenants -----------------------------------------------------------------------------------


def test_tenant_names_with_cypher_fragments_stay_isolated(
    store: SessionStore, victims: list[SessionStore]
) -> None:
    store.create_session("shared-id", title="main")
    store.add_message("shared-id", "user", "main tenant words")
    main_before = fingerprint(store)
    suffix = uuid.uuid4().hex[:8]
    for frag in FRAGMENTS:
        hostile = tenant_store(store, f"{frag} {suffix}")
        try:
            assert hostile.list_sessions(include_deleted=True).items == ()
            assert hostile.search("words") == []
            with pytest.raises(SessionNotFoundError):
                hostile.messages("shared-id")
            hostile.create_session("shared-id", title=frag)
            msg = hostile.add_message("shared-id", "user", f"{frag} words")
            assert [s.title for s in hostile.list_sessions().items] == [frag]
            assert hostile.messages("shared-id") == [msg]
            assert hostile.search("words") == [msg]
            hostile.fork("shared-id", id="child")
            assert hostile.children("shared-id") == ["child"]
            assert fingerprint(store) == main_before
            if not isinstance(store.backend, MemoryBackend):
                assert store.run_saved("session_subtree", id="shared-id") == []
                rows = hostile.run_saved("session_subtree", id="shared-id")
                assert [r["id"] for r in rows] == ["child"]
        finally:
            hostile.close()
    assert [m.content for m in store.search("words")] == ["main tenant words"]


# -- search ------------------------------------------------------------------------------------

CONTENTS = [
    "a.c",
    "abc",
    "a%c",
    "a_c",
    "x*y",
    "(?i)",
    "[ab]",
    "^start",
    "end$",
    "back\\slash",
    "quote'd",
    'dq"d',
    "`tick`",
    "$tenant",
    "{0}",
    "\\u0027",
    "it's",
    "' }) MATCH (n) DETACH DELETE n //",
    "plain",
    "A.C upper",
    "",
]
NEEDLES = [
    ".",
    "a.c",
    "%",
    "_",
    "*",
    ".*",
    "(?i)",
    "[ab]",
    "[",
    "^",
    "$",
    "^start",
    "end$",
    "\\",
    "\\\\",
    "'",
    '"',
    "`",
    "$tenant",
    "{0}",
    "\\u0027",
    "\u0027",
    "' }) MATCH (n) DETACH DELETE n //",
    "DETACH",
    "a",
    "zzz",
    "' OR '1'='1",
    "(",
    ")",
]


def test_search_matches_metacharacters_literally(
    store: SessionStore, victims: list[SessionStore]
) -> None:
    store.create_session("s")
    stored = store.append("s", [{"role": "user", "content": c} for c in CONTENTS])
    for other in victims:
        assert other.search(".") == []
    wrong: list[str] = []
    for needle in NEEDLES:
        got = {m.id for m in store.search(needle, limit=10_000)}
        want = {m.id for m in stored if needle.lower() in m.content.lower()}
        if got != want:
            found = sorted(m.content for m in stored if m.id in got)
            expected = sorted(m.content for m in stored if m.id in want)
            wrong.append(f"search({needle!r}) found {found}, expected {expected}")
    with pytest.raises(ValidationError):
        store.search("")
    assert wrong == [], "\n".join(wrong)


# -- saved queries -----------------------------------------------------------------------------


def test_saved_queries_take_hostile_parameters_as_data(neo4j_store: SessionStore) -> None:
    store = neo4j_store
    other = tenant_store(store, "other")
    populate(other)
    other_before = fingerprint(other)
    run = store.run_saved
    for frag in FRAGMENTS:
        for name in ("session_ancestors", "session_subtree", "session_siblings", "session_history"):
            assert run(name, id=frag) == [], (name, frag)
        assert run("common_ancestor_message", a=frag, b=frag) == []
    parent, child = FRAGMENTS[0], FRAGMENTS[5]
    store.create_session(parent)
    [msg] = store.append(parent, {"role": "user", "content": "hi"})
    store.fork(parent, id=child)
    store.fork(parent, id=FRAGMENTS[10])
    assert [r["id"] for r in run("session_ancestors", id=child)] == [parent]
    assert sorted(r["id"] for r in run("session_subtree", id=parent)) == sorted(
        [child, FRAGMENTS[10]]
    )
    assert [r["id"] for r in run("session_siblings", id=child)] == [FRAGMENTS[10]]
    assert [r["id"] for r in run("session_history", id=child)] == [msg.id]
    assert [r["id"] for r in run("common_ancestor_message", a=child, b=FRAGMENTS[10])] == [msg.id]
    fanout = {r["id"]: r["forks"] for r in run("fork_fanout")}
    assert fanout == {parent: 2, child: 0, FRAGMENTS[10]: 0}
    with pytest.raises(ValidationError):
        run("fork_fanout", tenant="other")  # the tenant is the store's, never a caller's
    assert fingerprint(other) == other_before
    other.close()


QUERIES = saved.load_all()
SCHEMA_QUERIES = {
    "0001_constraints",
    "0002_indexes",
    "0003_runs",
    "0004_own_labels",
    "0005_rich_messages",
    "applied_migrations",
    "record_migration",
    "adopt_migrations",
    "schema_constraints",
    "schema_indexes",
    "drop_constraint",
    "drop_index",
    # moving an older release's nodes to our labels runs over every tenant
    "unlabelled_sessions",
    "relabel_messages",
    # lifting tool calls out of metadata (0005) runs over every tenant
    "tool_calls_in_metadata",
    "lift_tool_calls",
    "relabel_sessions",
    # the conversion of release 0.1 data runs once over every tenant
    "legacy_sessions",
    "convert_legacy_sessions",
    "drop_change_counters",
    "drop_change_log",
}
# Status codes the statements return and a status they test: constants, never user data.
ALLOWED_LITERALS = {
    "'deleted'",
    "'ok'",
    "'replay'",
    "'conflict'",
    "'exists'",
    "'message'",
    "'position'",
    "'moved'",
    "'reserved'",
    "'empty'",
    "''",
}
_COMMENT = re.compile(r"//[^\n]*")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_FORMAT_MARKERS = [
    (re.compile(r"\{\s*\d*\s*\}"), "str.format placeholder {} / {0}"),
    (re.compile(r"\{[A-Za-z_]\w*\}"), "str.format/legacy-parameter placeholder {name}"),
    (re.compile(r"%[sdrf]|%\("), "printf placeholder %s / %(name)s"),
    (re.compile(r"['\"]\s*\+|\+\s*['\"]"), "string concatenation ' +"),
    (re.compile(r"\$\{|\$\d"), "template placeholder ${...} / $0"),
    (re.compile(r"`"), "backtick-quoted identifier"),
    (re.compile(r"\bapoc\.cypher\b|\bapoc\.run", re.IGNORECASE), "dynamic Cypher via APOC"),
]


def test_the_saved_queries_are_the_expected_set() -> None:
    assert set(QUERIES) >= SCHEMA_QUERIES
    hot = {"session_rows", "append", "history_window", "fork", "pop", "search_messages"}
    assert hot <= set(QUERIES)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_saved_query_takes_values_only_as_parameters(name: str) -> None:
    query = QUERIES[name]
    text = _COMMENT.sub("", query.text)
    problems = [what for pattern, what in _FORMAT_MARKERS if pattern.search(text)]
    literals = set(re.findall(r"'[^']*'|\"[^\"]*\"", text))
    if literals - ALLOWED_LITERALS:
        problems.append(f"string literals {sorted(literals - ALLOWED_LITERALS)}")
    looks_up = re.search(r"\b(MATCH|MERGE)\b", text) is not None
    if name not in SCHEMA_QUERIES and looks_up and "$tenant" not in text:
        problems.append("matches without $tenant")  # every lookup is scoped to the tenant
    assert problems == [], f"{query.file}:{name}: {problems}"


def test_no_cypher_is_built_from_strings_in_the_package() -> None:
    """Every ``.run``/``execute_query`` in session_graph gets a saved query, a name or a literal."""
    root = Path(session_graph.__file__).parent
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "execute_query")
                and node.args
            ):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "subprocess":
                continue
            query = node.args[0]
            built = isinstance(query, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(query, ast.Call)
                and isinstance(query.func, ast.Attribute)
                and query.func.attr in ("format", "join", "replace", "format_map")
            )
            if built:
                bad.append(f"{path.relative_to(root)}:{node.lineno}")
    assert bad == [], f"Cypher built from strings at {bad}"


DUMMIES: dict[str, Any] = {
    "tenant": "t",
    "id": "x",
    "a": "x",
    "b": "y",
    "ids": ["x"],
    "session_id": "x",
    "head_id": "x",
    "fork_id": "x",
    "into_id": "y",
    "rows": [{"id": "x", "tenant": "t"}],
    "changes": [{"session_id": "x", "kind": "append"}],
    "links": [{"id": "x", "original": "y"}],
    "wants": [{"session_id": "x", "from_idx": 0}],
    "forks": [{"child_id": "x", "parent_id": "y", "props": {}}],
    "props": {"title": "x"},
    "tags": ["x"],
    "text": "x",
    "user_id": "x",
    "status": "active",
    "after_id": "x",
    "version": "0000_x",
    "versions": ["0000_x"],
    "names": ["x"],
    "name": "x",
    "owners": [{"tenant": "t", "id": "x"}],
    "kinds": ["append"],
    "include_deleted": False,
    "seq": 1,
    "keep": [[0, 1]],
    "ranges": [[0, 1]],
    "roots": ["x"],
    "root": "x",
    "part": "x",
    "after": "x",
    "children": [{"id": "x", "props": {}, "fork": {}}],
    "closed": ["deleted"],
    "ts": [1],
    "count": 1,
    "first_id": "x",
    "last_id": "x",
    "prev_id": "x",
    "expect": "x",
    "op": "x",
    "result": "x",
    "base": 0,
    "first": 0,
    "start": 0,
    "stop": 1,
    "at": 0,
    "at_id": "x",
    "before": False,
    "session": "x",
    "parent": "x",
    "batch": 1,
    "limit": 1,
    "length": 1,
    "next_idx": 1,
    "now": datetime(2025, 1, 1, tzinfo=timezone.utc),
    "created_after": datetime(2025, 1, 1, tzinfo=timezone.utc),
    "created_before": datetime(2025, 1, 1, tzinfo=timezone.utc),
    "after_created": datetime(2025, 1, 1, tzinfo=timezone.utc),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_saved_query_compiles_on_the_server(
    name: str, neo4j_driver: Driver, neo4j_info: ConnectionInfo
) -> None:
    query = QUERIES[name]
    statements = query.statements()
    assert len(statements) == query.text.count(";") + 1  # every statement, none dropped
    for statement in statements:
        params = {p: DUMMIES.get(p) for p in _PARAM.findall(statement)}
        summary = neo4j_driver.execute_query(
            "EXPLAIN " + statement, params, database_=neo4j_info.database
        ).summary
        assert summary.plan is not None, f"{name}: no plan for {statement!r}"
        assert summary.counters.contains_updates is False and summary.counters.nodes_created == 0
