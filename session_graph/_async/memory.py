"""The in-memory reference backend: the saved Cypher statements, done on dicts.

Each operation does what its statement in ``cypher/`` does on Neo4j: the same statuses, the same
"nothing is written unless the status is 'ok'", the same records (``tests/test_backend_parity``
runs both side by side). A write transaction works on a shallow copy of the tenant's graph and
installs it only when ``fn`` returns, so an exception rolls everything back like a failed Neo4j
transaction. Every call runs under one lock per ``MemoryDatabase``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, cast

from session_graph._async.backend import AsyncBackend, AsyncOps, T
from session_graph.errors import ConflictError, StorageError
from session_graph.history import Runs
from session_graph.models import DELETED
from session_graph.records import (
    MESSAGE_FIELDS,
    WRITABLE_CLOSED,
    AppendOutcome,
    ForkOutcome,
    ListFilter,
    MessageRow,
    SessionRecord,
    TreeNode,
    TreeRecord,
    TreeSession,
    UpdateOutcome,
    Window,
)

MIGRATIONS = ["0001_constraints", "0002_indexes", "0003_runs", "0004_own_labels"]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)
KEPT_OPS = 16
"""``([$op] + s.ops)[0..16]``: how many write calls a session remembers."""
ATTEMPTS = 6

_CREATED = MESSAGE_FIELDS.index("created_at")

Props = dict[str, Any]
Node = tuple[str, Props]
Relationship = tuple[str, str, str, Props]


def _now() -> datetime:
    """``datetime.transaction()``: UTC, millisecond precision."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def _ms(value: object) -> int | None:
    """``.epochMillis`` of a stored time (None where Neo4j has none)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return (value - EPOCH) // MS
    return None


def _prop(props: Mapping[str, Any], key: str) -> Any:
    """``n.key``: the value, or null when the property is absent."""
    return props.get(key)


def _end(value: int | None, n: int, default: int) -> int:
    """One end of a ``history_window`` slice (Python rules, clamped to ``0..n``)."""
    if value is None:
        return default
    return max(0, n + value) if value < 0 else min(value, n)


def _plus(value: Any, n: Any) -> Any:
    """``value + n`` with Cypher's null propagation."""
    return None if value is None or n is None else value + n


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    for kind in (str, bytes, datetime, date, time, timedelta):  # datetime before its base, date
        if isinstance(value, kind):
            return kind.__name__
    raise StorageError(
        "property values can only be of primitive types or arrays thereof, "
        f"not {type(value).__name__}"
    )


def _stored(value: Any) -> Any:
    """A property value as Neo4j stores it: sequences become lists, mixed numbers floats."""
    if not isinstance(value, (list, tuple)):
        _kind(value)
        return value
    items = list(value)
    if any(item is None for item in items):
        raise StorageError("collections containing null values can not be stored in properties")
    kinds = {_kind(item) for item in items}
    if len(kinds) > 1:
        raise StorageError("collections containing mixed types can not be stored in properties")
    if kinds == {"number"} and any(isinstance(item, float) for item in items):
        return [float(item) for item in items]
    return items


def _put(target: Props, key: str, value: Any) -> None:
    """``SET n.key = value``: null removes the property."""
    if value is None:
        target.pop(key, None)
    else:
        target[key] = _stored(value)


def _merge(target: Props, props: Mapping[str, Any] | None) -> None:
    """``SET n += $props`` (nulls remove; a null map is a type error, as in Cypher)."""
    if props is None:
        raise StorageError("expected a map of properties, got null")
    for key, value in props.items():
        _put(target, key, value)


def _copy(props: Mapping[str, Any]) -> Props:
    """Properties to hand out: stored lists are ours, so callers get their own."""
    return {k: list(v) if isinstance(v, list) else v for k, v in props.items()}


def _row(m: Mapping[str, Any]) -> MessageRow:
    row = [m.get(name) for name in MESSAGE_FIELDS]
    row[_CREATED] = _ms(row[_CREATED])
    return [list(v) if isinstance(v, list) else v for v in row]


def _run_lists(s: Mapping[str, Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """A session's ``run_owner``, ``run_start``, ``run_end`` as new lists."""
    owner, start, end = (list(s.get(key) or []) for key in ("run_owner", "run_start", "run_end"))
    return owner, start, end


def _add_to(index: dict[str, frozenset[str]], key: str, value: str) -> None:
    index[key] = index.get(key, frozenset()) | {value}


def _drop_from(index: dict[str, frozenset[str]], key: str, value: str) -> None:
    rest = index.get(key, frozenset()) - {value}
    if rest:
        index[key] = rest
    else:
        index.pop(key, None)


@dataclass
class _State:
    """One tenant's graph, with the reverse indexes the statements' patterns need.

    Stored values are replaced, never changed in place, so a shallow copy of the dicts is a
    snapshot. The per-owner idx maps are the exception: a draft copies one before its first
    change (``fresh`` names those it copied).
    """

    sessions: dict[str, Props] = field(default_factory=dict)
    trees: dict[str, tuple[str, ...]] = field(default_factory=dict)  # root -> its sessions
    heads: dict[str, str] = field(default_factory=dict)  # session -> HEAD message
    headed: dict[str, frozenset[str]] = field(default_factory=dict)  # message -> sessions
    forks: dict[str, tuple[str, Props]] = field(default_factory=dict)  # child -> parent, edge
    children: dict[str, frozenset[str]] = field(default_factory=dict)  # parent -> children
    merges: list[tuple[str, str, Props]] = field(default_factory=list)
    messages: dict[str, Props] = field(default_factory=dict)
    owned: dict[str, dict[int, tuple[str, ...]]] = field(default_factory=dict)  # owner -> idx
    prev: dict[str, str] = field(default_factory=dict)  # message -> its PREVIOUS
    later: dict[str, frozenset[str]] = field(default_factory=dict)  # message -> PREVIOUS to it
    copies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # copy -> originals
    copied: dict[str, frozenset[str]] = field(default_factory=dict)  # original -> copies
    fresh: set[str] = field(default_factory=set)

    def draft(self) -> _State:
        return _State(
            dict(self.sessions),
            dict(self.trees),
            dict(self.heads),
            dict(self.headed),
            dict(self.forks),
            dict(self.children),
            list(self.merges),
            dict(self.messages),
            dict(self.owned),
            dict(self.prev),
            dict(self.later),
            dict(self.copies),
            dict(self.copied),
        )

    # Reads.

    def record(self, session_id: str) -> SessionRecord:
        edge = self.forks.get(session_id)
        fork = None if edge is None else {**_copy(edge[1]), "parent_id": edge[0]}
        return SessionRecord(_copy(self.sessions[session_id]), self.heads.get(session_id), fork)

    def with_root(self, session_id: str) -> tuple[Props, Props] | None:
        """The session and its tree root: ``MATCH (s ...) MATCH (r ... {id: s.root})``."""
        s = self.sessions.get(session_id)
        root = None if s is None else s.get("root")
        r = self.sessions.get(root) if isinstance(root, str) else None
        return None if s is None or r is None else (s, r)

    def own(self, owner: str, first: int, last: int) -> list[Props]:
        """Messages of ``owner`` with ``first <= idx <= last`` by idx: the index range seek."""
        index = self.owned.get(owner)
        if not index or first > last:
            return []
        if last - first < len(index):
            keys = [i for i in range(first, last + 1) if i in index]
        else:
            keys = sorted(i for i in index if first <= i <= last)
        return [self.messages[mid] for i in keys for mid in index[i]]

    def message_at(self, owner: str, idx: int) -> str | None:
        """The message ``{session_id: owner, idx: idx}`` (the first, were there several)."""
        ids = self.owned.get(owner, {}).get(idx, ())
        return ids[0] if ids else None

    # Writes (on a draft only).

    def put(self, session_id: str, props: Props) -> None:
        """Store a session's new properties, keeping ``trees`` in step with its root."""
        old = self.sessions.get(session_id)
        old_root = None if old is None else old.get("root")
        new_root = props.get("root")
        if old is None or old_root != new_root:
            if isinstance(old_root, str):
                self._untree(old_root, session_id)
            if isinstance(new_root, str):
                self.trees[new_root] = (*self.trees.get(new_root, ()), session_id)
        self.sessions[session_id] = props

    def _untree(self, root: str, session_id: str) -> None:
        rest = tuple(x for x in self.trees.get(root, ()) if x != session_id)
        if rest:
            self.trees[root] = rest
        else:
            self.trees.pop(root, None)

    def set_head(self, session_id: str, message_id: str | None) -> None:
        old = self.heads.pop(session_id, None)
        if old is not None:
            _drop_from(self.headed, old, session_id)
        if message_id is not None:
            self.heads[session_id] = message_id
            _add_to(self.headed, message_id, session_id)

    def add_fork(self, child: str, parent: str, edge: Props) -> None:
        self.forks[child] = (parent, edge)
        _add_to(self.children, parent, child)

    def _index(self, owner: str) -> dict[int, tuple[str, ...]]:
        if owner not in self.fresh:
            self.owned[owner] = dict(self.owned.get(owner, {}))
            self.fresh.add(owner)
        return self.owned.setdefault(owner, {})

    def add_message(self, m: Props) -> None:
        self.messages[m["id"]] = m
        index = self._index(m["session_id"])
        index[m["idx"]] = (*index.get(m["idx"], ()), m["id"])

    def link(self, newer: str, older: str) -> None:
        self.prev[newer] = older
        _add_to(self.later, older, newer)

    def link_copy(self, copy: str, original: str) -> None:
        self.copies[copy] = (*self.copies.get(copy, ()), original)
        _add_to(self.copied, original, copy)

    def drop_message(self, message_id: str) -> None:
        """``DETACH DELETE m``: its HEADs, PREVIOUS both ways and copy links go with it."""
        m = self.messages.pop(message_id)
        owner, idx = m["session_id"], m["idx"]
        index = self._index(owner)
        rest = tuple(x for x in index.get(idx, ()) if x != message_id)
        if rest:
            index[idx] = rest
        else:
            index.pop(idx, None)
        if not index:
            del self.owned[owner]
        for session_id in self.headed.pop(message_id, frozenset()):
            del self.heads[session_id]
        older = self.prev.pop(message_id, None)
        if older is not None:
            _drop_from(self.later, older, message_id)
        for newer in self.later.pop(message_id, frozenset()):
            del self.prev[newer]
        for original in self.copies.pop(message_id, ()):
            _drop_from(self.copied, original, message_id)
        for copy in self.copied.pop(message_id, frozenset()):
            left = tuple(o for o in self.copies.get(copy, ()) if o != message_id)
            if left:
                self.copies[copy] = left
            else:
                self.copies.pop(copy, None)

    def drop_session(self, session_id: str) -> None:
        """``DETACH DELETE s``: its HEAD, fork edges both ways and merge edges go with it."""
        props = self.sessions.pop(session_id)
        if isinstance(props.get("root"), str):
            self._untree(props["root"], session_id)
        self.set_head(session_id, None)
        edge = self.forks.pop(session_id, None)
        if edge is not None:
            _drop_from(self.children, edge[0], session_id)
        for child in self.children.pop(session_id, frozenset()):
            del self.forks[child]
        if self.merges:
            self.merges = [e for e in self.merges if session_id not in (e[0], e[1])]

    def graph(self) -> tuple[list[Node], list[Relationship]]:
        nodes = [("SGSession", _copy(p)) for p in self.sessions.values()]
        nodes += [("SGMessage", _copy(m)) for m in self.messages.values()]
        rels: list[Relationship] = [("HEAD", s, m, {}) for s, m in self.heads.items()]
        rels += [("FORKED_FROM", c, p, _copy(e)) for c, (p, e) in self.forks.items()]
        rels += [("MERGED_INTO", f, i, _copy(e)) for f, i, e in self.merges]
        rels += [("PREVIOUS", m, p, {}) for m, p in self.prev.items()]
        rels += [("COPIED_FROM", c, o, {}) for c, os in self.copies.items() for o in os]
        nodes.sort(key=lambda n: (n[0], str(n[1].get("id"))))
        rels.sort(key=lambda r: r[:3])
        return nodes, rels


class AsyncMemoryOps:
    """The operations on one tenant's graph: a write transaction's draft, or the live graph."""

    def __init__(self, state: _State, tenant: str, now: datetime, writable: bool) -> None:
        self.st = state
        self.tenant = tenant
        self.now = now
        self.writable = writable

    def _now_ms(self) -> int:
        """``datetime.transaction().epochMillis``."""
        return (self.now - EPOCH) // MS

    def _write(self) -> None:
        # Neo4j refuses every statement with an updating clause in a read transaction
        # (Neo.ClientError.Statement.AccessMode), even one that would change nothing.
        if not self.writable:
            raise StorageError("a write operation in a read transaction (access mode: read)")

    async def session_rows(self, ids: Sequence[str]) -> list[SessionRecord]:
        return [self.st.record(i) for i in ids if i in self.st.sessions]

    async def create_session(self, props: dict[str, Any], op: str) -> tuple[SessionRecord, bool]:
        self._write()
        session_id = props.get("id")
        if session_id is None:
            raise StorageError("cannot merge a session with a null id")
        if session_id not in self.st.sessions:
            s: Props = {"tenant": self.tenant, "id": session_id}
            _merge(s, props)
            s.update(root=session_id, tree_version=0, version=1, length=0, next_idx=0)
            s.update(run_owner=[], run_start=[], run_end=[])
            _put(s, "ops", [op])
            s["created_at"] = s["updated_at"] = self.now
            self.st.put(session_id, s)
        record = self.st.record(session_id)
        return record, op in (record.props.get("ops") or [])

    async def list_session_ids(self, flt: ListFilter) -> list[str]:
        found: list[tuple[Any, str]] = []
        for session_id, s in self.st.sessions.items():
            created, tags = s.get("created_at"), s.get("tags")
            if (
                (flt.user_id is not None and s.get("user_id") != flt.user_id)
                or (flt.status is not None and s.get("status") != flt.status)
                # `s.status <> 'deleted'` is null, so false, for a session without a status.
                or (not flt.include_deleted and s.get("status") in (None, "deleted"))
                or (flt.tags and not (isinstance(tags, list) and set(flt.tags) <= set(tags)))
                or not _at_least(created, flt.created_after)
                or (flt.created_before is not None and not _before(created, flt.created_before))
                or (flt.after is not None and not _after(created, session_id, flt.after))
            ):
                continue
            found.append((created, session_id))
        if flt.limit < 0:
            raise StorageError(f"LIMIT {flt.limit}: must be a non-negative integer")
        found.sort(key=lambda f: (f[0] is None, f[0] or EPOCH, f[1]))  # nulls last, as Cypher
        return [session_id for _, session_id in found[: flt.limit]]

    async def update_session(
        self, session_id: str, props: dict[str, Any], op: str
    ) -> UpdateOutcome | None:
        self._write()
        found = self.st.with_root(session_id)
        if found is None:
            return None
        s, r = found
        root = s["root"]
        if op in (s.get("ops") or []):
            status = "replay"
        elif s.get("status") == "deleted":
            status = "deleted"
        else:
            status = "ok"
        if status == "ok":
            sp = dict(s)
            _merge(sp, props)
            sp["updated_at"] = self.now
            _put(sp, "version", _plus(sp.get("version"), 1))
            _put(sp, "ops", [op, *(sp.get("ops") or [])][:KEPT_OPS])
            rp = sp if r is s else dict(r)  # SET items apply in order, to one node when s = r
            _put(rp, "tree_version", _plus(rp.get("tree_version"), 1))
            self.st.put(session_id, sp)
            if rp is not sp:
                self.st.put(root, rp)
        version = _prop(self.st.sessions[root], "tree_version")
        return UpdateOutcome(status, version, self.st.record(session_id))

    async def append(
        self, session_id: str, rows: list[dict[str, Any]], ts: list[int | None] | None
    ) -> AppendOutcome | None:
        self._write()
        s = self.st.sessions.get(session_id)
        if s is None:
            return None
        base, first = _prop(s, "length"), _prop(s, "next_idx")
        status = self._append_status(session_id, s, rows[0].get("id") if rows else None)
        if status == "ok":
            if not rows:
                # CREATE (s)-[:HEAD]->(last([])) fails on Neo4j, and with it the statement.
                raise StorageError("cannot create the HEAD relationship: no message to point at")
            head = self.st.heads.get(session_id)
            chain = self._create(session_id, rows, ts, base, first, head)
            n = len(chain)
            owner, start, end = _run_lists(s)
            sp = dict(s)
            if owner and end and owner[-1] == session_id and end[-1] == first - 1:
                sp["run_end"] = [*end[:-1], first + n - 1]
            else:
                sp.update(run_owner=[*owner, session_id], run_start=[*start, first])
                sp["run_end"] = [*end, first + n - 1]
            sp.update(length=base + n, next_idx=first + n, updated_at=self.now)
            _put(sp, "version", _plus(_prop(sp, "version"), 1))
            self.st.set_head(session_id, chain[-1])
            self.st.put(session_id, sp)
        return AppendOutcome(status, base, self._now_ms())

    async def append_one(
        self, session_id: str, row: dict[str, Any], ts: int | None
    ) -> AppendOutcome | None:
        s = self.st.sessions.get(session_id)
        if s is None or s.get("status") in WRITABLE_CLOSED:
            return None  # the statement's WHERE drops the row
        if row.get("id") in self.st.messages:
            raise ConflictError(f"uniqueness constraint violated: message {row.get('id')!r}")
        return await self.append(session_id, [row], None if ts is None else [ts])

    def _append_status(self, session_id: str, s: Props, first_id: Any) -> str:
        """'replay' (the first id is this session's already), 'conflict' (another's), a closed
        status, or 'ok'."""
        dup = self.st.messages.get(first_id) if first_id is not None else None
        if dup is not None:
            return "replay" if dup.get("session_id") == session_id else "conflict"
        if s.get("status") in WRITABLE_CLOSED:
            return str(s["status"])
        return "ok"

    def _create(
        self,
        session_id: str,
        rows: list[dict[str, Any]],
        ts: list[int | None] | None,
        base: Any,
        first: Any,
        prev: str | None,
    ) -> list[str]:
        """Create ``rows`` as messages of ``session_id`` chained after ``prev``; their ids."""
        chain: list[str] = []
        for i, row in enumerate(rows):
            m: Props = {}
            _merge(m, row)
            m.update(tenant=self.tenant, session_id=session_id)
            _put(m, "pos", _plus(base, i))
            _put(m, "idx", _plus(first, i))
            stamp = ts[i] if ts is not None and i < len(ts) else None
            m["created_at"] = self.now if stamp is None else EPOCH + stamp * MS
            message_id = m.get("id")
            if message_id is None:
                raise StorageError("a message needs an id")
            if message_id in self.st.messages:
                raise ConflictError(
                    f"uniqueness constraint violated: message {message_id!r} exists "
                    f"in tenant {self.tenant!r}"
                )
            self.st.add_message(m)
            chain.append(message_id)
        links = ([prev] if prev is not None else []) + chain
        for i in range(1, len(links)):
            self.st.link(links[i], links[i - 1])
        return chain

    async def reserve_append(
        self, session_id: str, first_id: str, count: int, op: str
    ) -> tuple[str, int, int, str | None, Runs] | None:
        self._write()
        s = self.st.sessions.get(session_id)
        if s is None:
            return None
        runs = Runs.of(s.get("run_owner"), s.get("run_start"), s.get("run_end"))
        ops, results = s.get("ops") or [], s.get("op_results") or []
        base, head = _prop(s, "length"), self.st.heads.get(session_id)
        if op in ops:  # a retried step: the range it reserved, base and head as they are now
            return "reserved", int(results[ops.index(op)]), base, head, runs
        first = _prop(s, "next_idx")
        status = self._append_status(session_id, s, first_id)
        if status == "ok":
            sp = dict(s)
            _put(sp, "next_idx", _plus(first, count))
            sp["ops"] = [op, *ops][:16]
            sp["op_results"] = [str(first), *results][:16]
            self.st.put(session_id, sp)
        return status, first, base, head, runs

    async def write_chunk(
        self,
        session_id: str,
        rows: list[dict[str, Any]],
        ts: list[int | None] | None,
        prev_id: str | None,
        base: int,
        first: int,
    ) -> int | None:
        self._write()
        first_id = rows[0].get("id") if rows else None
        if first_id is not None and first_id in self.st.messages:
            return None  # written by an earlier try
        prev = prev_id if prev_id is not None and prev_id in self.st.messages else None
        self._create(session_id, rows, ts, base, first, prev)
        return self._now_ms()

    async def finish_append(
        self,
        session_id: str,
        last_id: str,
        base: int,
        head_id: str | None,
        props: dict[str, Any],
        op: str,
    ) -> str | None:
        self._write()
        s = self.st.sessions.get(session_id)
        if s is None:
            return None
        head = self.st.heads.get(session_id)
        length = _prop(s, "length")
        if op in (s.get("ops") or []):
            return "replay"
        if s.get("status") in WRITABLE_CLOSED:
            return str(s["status"])
        # `s.length <> $base` is null (not true) when either is null.
        if (length is not None and base is not None and length != base) or (head or "") != (
            head_id or ""
        ):
            return "moved"
        if last_id not in self.st.messages:
            raise StorageError("cannot create the HEAD relationship: no message to point at")
        self.st.set_head(session_id, last_id)
        sp = dict(s)
        _merge(sp, props)
        _put(sp, "version", _plus(_prop(sp, "version"), 1))
        sp["updated_at"] = self.now
        sp["ops"] = [op, *(sp.get("ops") or [])][:16]
        self.st.put(session_id, sp)
        return "ok"

    async def window(self, session_id: str, start: int | None, stop: int | None) -> Window | None:
        s = self.st.sessions.get(session_id)
        if s is None:
            return None
        n = _prop(s, "length")
        # Python slice rules, except that a length below 0 (see fork) gives no rows, not an error.
        lo, hi = _end(start, n, 0), _end(stop, n, n)
        runs = Runs.of(s.get("run_owner"), s.get("run_start"), s.get("run_end"))
        found = [m for r in runs.window(lo, hi) for m in self.st.own(r.owner, r.start, r.end)]
        found.sort(key=lambda m: (m.get("pos") is None, m.get("pos") or 0))  # ORDER BY m.pos
        return Window(n, _prop(s, "version"), [_row(m) for m in found])

    async def message_rows(self, ids: Sequence[str]) -> list[MessageRow]:
        return [_row(self.st.messages[i]) for i in ids if i in self.st.messages]

    async def pop(self, session_id: str, expect: str, op: str) -> str | None:
        self._write()
        found = self.st.with_root(session_id)
        if found is None:
            return None
        s = found[0]
        head = self.st.heads.get(session_id)
        if op in (s.get("ops") or []):
            return "replay"
        if s.get("status") in WRITABLE_CLOSED:
            return str(s["status"])
        if head is None:
            return "empty"
        if expect is not None and head != expect:  # `h.id <> null` is null: not 'moved'
            return "moved"
        h = self.st.messages[head]
        drop = (
            h.get("session_id") == session_id
            and self.st.headed.get(head, frozenset()) <= {session_id}
            and not self.st.later.get(head)
        )
        self.st.set_head(session_id, self.st.prev.get(head))
        owner, start, end = _run_lists(s)
        sp = dict(s)
        if end and start and end[-1] == start[-1]:
            sp.update(run_owner=owner[:-1], run_start=start[:-1], run_end=end[:-1])
        elif not end:
            # run_end[0..-1] + [last([]) - 1] is [null]: Neo4j cannot store it.
            raise StorageError("collections containing null values can not be stored")
        else:
            sp["run_end"] = [*end[:-1], end[-1] - 1]
        _put(sp, "length", _plus(s.get("length"), -1))
        if drop and h.get("idx") == _plus(s.get("next_idx"), -1):
            sp["next_idx"] = h["idx"]
        _put(sp, "version", _plus(s.get("version"), 1))
        sp["updated_at"] = self.now
        _put(sp, "ops", [op, *(s.get("ops") or [])][:KEPT_OPS])
        self.st.put(session_id, sp)
        if drop:
            self.st.drop_message(head)
        return "ok"

    async def fork(
        self,
        parent: str,
        at: int | None,
        at_id: str | None,
        children: list[dict[str, Any]],
        op: str,
        before: bool,
    ) -> ForkOutcome | None:
        self._write()
        found = self.st.with_root(parent)
        if found is None:
            return None
        p, r = found
        root = p["root"]
        owner, start, end = _run_lists(p)
        n = _prop(p, "length")
        bounds = [0]
        for i in range(len(owner)):
            bounds.append(bounds[-1] + end[i] - start[i] + 1)
        k0: Any = None
        if at_id is not None:
            am = self.st.messages.get(at_id)
            if am is not None:
                k0 = next(
                    (
                        bounds[i] + am["idx"] - start[i]
                        for i in range(len(owner))
                        if owner[i] == am.get("session_id") and start[i] <= am["idx"] <= end[i]
                    ),
                    None,
                )
        elif at is None:
            k0 = _plus(n, -1)
        else:
            k0 = n + at if at < 0 else at
        k = _plus(k0, -1) if before else k0
        # Every run that starts at or before k, the last one cut at k (Runs.cut stops at the
        # first run past k instead: the same for well-formed runs; this is what Cypher does).
        cut: list[tuple[str, int, int]] = []
        if k is not None:
            cut = [
                (owner[i], start[i], min(end[i], start[i] + k - bounds[i]))
                for i in range(len(owner))
                if bounds[i] <= k
            ]
        atm = self.st.message_at(cut[-1][0], cut[-1][2]) if cut else None
        taken = ours = 0
        for c in children:
            x = None if c.get("id") is None else self.st.sessions.get(c["id"])
            if x is None:
                continue
            taken += 1
            edge = self.st.forks.get(x["id"])
            if op in (x.get("ops") or []) or (
                edge is not None and edge[0] == parent and (edge[1].get("at") or "") == (atm or "")
            ):
                ours += 1
        if taken > 0 and ours == len(children):
            status = "replay"
        elif taken > 0:
            status = "exists"
        elif p.get("status") == "deleted":
            status = "deleted"
        elif at_id is not None and k0 is None:
            status = "message"
        elif k0 is None or k0 >= n or (k0 < 0 and at is not None) or (k is not None and k < -1):
            status = "position"
        else:
            status = "ok"
        if status == "ok":
            rp = dict(r)
            _put(rp, "tree_version", _plus(_prop(r, "tree_version"), 1))
            self.st.put(root, rp)
            for c in children:
                self._fork_child(c, p, root, k, cut, atm, op)
        made = (
            [self.st.record(c["id"]) for c in children if c.get("id") in self.st.sessions]
            if status in ("ok", "replay")
            else []
        )
        version = _prop(self.st.sessions[root], "tree_version")
        return ForkOutcome(status, k, atm, version, root, self._now_ms(), made)

    def _fork_child(
        self,
        c: dict[str, Any],
        p: Props,
        root: str,
        k: int,
        cut: list[tuple[str, int, int]],
        atm: str | None,
        op: str,
    ) -> None:
        child = c.get("id")
        if child is None:
            raise StorageError("a fork child needs an id")
        if child in self.st.sessions:
            raise ConflictError(
                f"uniqueness constraint violated: session {child!r} exists "
                f"in tenant {self.tenant!r}"
            )
        props = c.get("props")
        x: Props = {}
        _merge(x, props)
        x.update(tenant=self.tenant, id=child, root=root, version=1)
        user_id = _prop(cast(Props, props), "user_id")  # props is a map: _merge took it
        _put(x, "user_id", user_id if user_id is not None else _prop(p, "user_id"))
        x.update(length=k + 1, next_idx=0)
        _put(x, "ops", [op])
        x.update(run_owner=[o for o, _, _ in cut], run_start=[s for _, s, _ in cut])
        x.update(run_end=[e for _, _, e in cut], created_at=self.now, updated_at=self.now)
        edge: Props = {}
        _merge(edge, c.get("fork"))
        _put(edge, "at", atm)
        edge.update(position=k, created_at=self.now)
        self.st.put(child, x)
        self.st.add_fork(child, p["id"], edge)
        if atm is not None:
            self.st.set_head(child, atm)

    async def tree_of(self, session_id: str) -> TreeRecord | None:
        found = self.st.with_root(session_id)
        if found is None:
            return None
        root = found[0]["root"]
        nodes: list[TreeNode] = []
        for x_id in self.st.trees.get(root, ()):
            x = self.st.sessions[x_id]
            edge = self.st.forks.get(x_id)
            nodes.append(
                TreeNode(
                    x_id,
                    None if edge is None else edge[0],
                    cast(int, _ms(x.get("created_at"))),
                    x.get("status") or "active",
                    None if edge is None else edge[1].get("position"),
                )
            )
        # Grouped by (root, version), no matching session means no row at all.
        return TreeRecord(root, _prop(found[1], "tree_version"), nodes) if nodes else None

    async def tree_versions(self, roots: Sequence[str]) -> dict[str, int | None]:
        sessions = self.st.sessions
        return {r: sessions[r].get("tree_version") if r in sessions else None for r in roots}

    async def search(self, text: str, limit: int, include_deleted: bool) -> list[MessageRow]:
        if limit < 0:
            raise StorageError(f"LIMIT {limit}: must be a non-negative integer")
        needle = text.lower()
        sessions = self.st.sessions
        hits = [
            m
            for m in self.st.messages.values()
            if isinstance(m.get("content"), str)
            and (text in m["content"] or needle in m["content"].lower())
            and (include_deleted or sessions.get(m["session_id"], {}).get("status") != DELETED)
        ]
        hits.sort(key=lambda m: str(m["id"]))
        hits.sort(key=lambda m: m["created_at"], reverse=True)  # stable: ties keep id order
        return [_row(m) for m in hits[:limit]]

    async def encrypted_content(self) -> bool:
        return any(m.get("content_enc") is not None for m in self.st.messages.values())

    async def lock(self, ids: Sequence[str]) -> dict[str, SessionRecord]:
        self._write()
        # Nothing to lock beyond the database lock; a session whose root is gone drops out.
        return {i: self.st.record(i) for i in sorted(set(ids)) if self.st.with_root(i)}

    async def own_ids(
        self, session_id: str, ranges: Sequence[tuple[int, int]]
    ) -> list[tuple[str, int]]:
        found = [(m["id"], m["idx"]) for lo, hi in ranges for m in self.st.own(session_id, lo, hi)]
        found.sort(key=lambda f: f[1])  # ORDER BY idx, overlapping ranges repeating rows
        return found

    async def held(self, session_id: str, ids: Sequence[str]) -> set[str]:
        wanted = set(ids)
        return {
            i
            for i in ids
            if i in self.st.messages
            and (
                # `o.id <> $session` is null, so false, when there is no $session.
                any(session_id is not None and o != session_id for o in self.st.headed.get(i, ()))
                or any(x not in wanted for x in self.st.later.get(i, ()))
            )
        }

    async def set_history(
        self, session_id: str, head_id: str | None, props: dict[str, Any]
    ) -> None:
        self._write()
        s = self.st.sessions.get(session_id)
        if s is None:
            return
        self.st.set_head(session_id, head_id if head_id in self.st.messages else None)
        sp = dict(s)
        _merge(sp, props)
        _put(sp, "version", _plus(sp.get("version"), 1))
        sp["updated_at"] = self.now
        self.st.put(session_id, sp)

    async def delete_messages(self, ids: Sequence[str]) -> None:
        self._write()
        for message_id in ids:
            if message_id in self.st.messages:
                self.st.drop_message(message_id)

    async def link_copies(self, links: Sequence[dict[str, str]]) -> None:
        self._write()
        for link in links:
            copy, original = link.get("id"), link.get("original")
            if copy in self.st.messages and original in self.st.messages:
                self.st.link_copy(copy, original)

    async def create_merge_edge(self, fork_id: str, into_id: str, props: dict[str, Any]) -> None:
        self._write()
        if fork_id in self.st.sessions and into_id in self.st.sessions:
            edge: Props = {}
            _merge(edge, props)
            edge["created_at"] = self.now
            self.st.merges.append((fork_id, into_id, edge))

    async def record_op(self, session_id: str, op: str, result: str, props: dict[str, Any]) -> None:
        self._write()
        s = self.st.sessions.get(session_id)
        if s is None:
            return
        sp = dict(s)
        _put(sp, "ops", [op, *(s.get("ops") or [])][:KEPT_OPS])
        _put(sp, "op_results", [result, *(s.get("op_results") or [])][:KEPT_OPS])
        _put(sp, "version", _plus(s.get("version"), 1))
        sp["updated_at"] = self.now
        _merge(sp, props)
        self.st.put(session_id, sp)

    async def bump_tree(self, root: str) -> int:
        self._write()
        r = self.st.sessions.get(root)
        if r is None:
            # No row: the Neo4j backend's `[0]` on the empty result raises this.
            raise IndexError("list index out of range")
        version = _plus(r.get("tree_version"), 1)
        rp = dict(r)
        _put(rp, "tree_version", version)
        self.st.put(root, rp)
        if version is None:
            raise TypeError("the root has no tree_version")  # int(None) in the Neo4j backend
        return int(version)

    async def tree_sessions(self, root: str) -> list[TreeSession]:
        out: list[TreeSession] = []
        for session_id in self.st.trees.get(root, ()):
            s = self.st.sessions[session_id]
            out.append(
                TreeSession(
                    session_id,
                    s.get("status") or "active",
                    Runs.of(s.get("run_owner"), s.get("run_start"), s.get("run_end")),
                    int(s.get("next_idx") or 0),
                    bool(self.st.children.get(session_id)),
                )
            )
        return out

    async def roots(self, after: str | None, limit: int) -> list[str]:
        if limit < 0:
            raise StorageError(f"LIMIT {limit}: must be a non-negative integer")
        found = sorted(
            r
            for r in self.st.trees
            if r in self.st.sessions
            and self.st.sessions[r].get("root") == r
            and (after is None or r > after)
        )
        return found[:limit]

    async def unreached(self, session_id: str, keep: Sequence[tuple[int, int]]) -> list[str]:
        index = self.st.owned.get(session_id, {})
        return [
            message_id
            for idx in sorted(index)
            if not any(lo <= idx <= hi for lo, hi in keep)
            for message_id in index[idx]
        ]

    async def delete_sessions(self, ids: Sequence[str]) -> None:
        self._write()
        for session_id in ids:
            if session_id in self.st.sessions:
                self.st.drop_session(session_id)


def _comparable(a: datetime, b: datetime) -> bool:
    # A DateTime and a LocalDateTime compare as null in Cypher (and raise in Python).
    return (a.tzinfo is None) == (b.tzinfo is None)


def _at_least(created: Any, bound: datetime | None) -> bool:
    """``$bound IS NULL OR s.created_at >= $bound``."""
    if bound is None:
        return True
    return isinstance(created, datetime) and _comparable(created, bound) and created >= bound


def _before(created: Any, bound: datetime) -> bool:
    return isinstance(created, datetime) and _comparable(created, bound) and created < bound


def _after(created: Any, session_id: str, cursor: tuple[datetime, str]) -> bool:
    """Strictly after the keyset cursor ``(created_at, id)``."""
    at, after_id = cursor
    if not _at_least(created, at):
        return False
    return bool(created != at or after_id is None or session_id > after_id)


class MemoryDatabase:
    """What several memory backends share, like processes sharing one server."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, _State] = {}
        self.migrations: list[str] = []

    def graph(self, tenant: str) -> tuple[list[Node], list[Relationship]]:
        """A tenant's nodes ``(label, props)`` and relationships ``(type, from id, to id,
        props)``, sorted: what tests compare with a server's graph."""
        with self.lock:
            return self.tenants.get(tenant, _State()).graph()


class AsyncMemoryBackend(AsyncBackend):
    """A tenant's view of a ``MemoryDatabase`` (a private new one when none is given)."""

    def __init__(self, tenant: str = "default", database: MemoryDatabase | None = None) -> None:
        self.tenant = tenant
        self.database = database if database is not None else MemoryDatabase()

    async def setup(self) -> list[str]:
        with self.database.lock:
            new = [v for v in MIGRATIONS if v not in self.database.migrations]
            self.database.migrations.extend(new)
            return new

    async def applied_migrations(self) -> list[str]:
        with self.database.lock:
            return sorted(self.database.migrations)

    async def auto(self, fn: Callable[[AsyncOps], Awaitable[T]], *, write: bool = True) -> T:
        if write:
            return await self.write(fn)
        return await self.read(fn)

    async def read(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        with self.database.lock:
            state = self.database.tenants.get(self.tenant)
            if state is None:
                state = _State()
            return await fn(AsyncMemoryOps(state, self.tenant, _now(), writable=False))

    async def write(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        with self.database.lock:
            for _ in range(ATTEMPTS):
                base = self.database.tenants.get(self.tenant)
                draft = base.draft() if base is not None else _State()
                result = await fn(AsyncMemoryOps(draft, self.tenant, _now(), writable=True))
                # fn has nothing to wait for, but if it did wait, or wrote through another
                # backend meanwhile, installing the draft would lose that write: run it again
                # on the new state instead, as Neo4j retries a transaction that lost a deadlock.
                if self.database.tenants.get(self.tenant) is base:
                    draft.fresh.clear()
                    self.database.tenants[self.tenant] = draft
                    return result
        raise StorageError(f"the tenant kept changing under a transaction ({ATTEMPTS} tries)")
