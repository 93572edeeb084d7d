"""The in-memory reference backend: plain dicts, one lock, copy-on-write transactions.

It follows the same contract as the Neo4j backend and passes the same conformance suite, so
users can test their own code against session_graph without a server.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from session_graph.backends.base import (
    Backend,
    Change,
    ChangeFeed,
    ListFilter,
    Reader,
    SessionRow,
    T,
    TopoRow,
    Writer,
)

MIGRATIONS = ["0001_constraints", "0002_indexes"]


@dataclass
class _State:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)
    forks: dict[str, dict[str, Any]] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    prev: dict[str, str] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    seq: int = 0

    def fork_copy(self) -> _State:
        return _State(
            dict(self.sessions),
            dict(self.heads),
            dict(self.forks),
            list(self.merges),
            dict(self.messages),
            dict(self.prev),
            dict(self.copies),
            list(self.changes),
            self.seq,
        )


class MemoryDatabase:
    """What several ``MemoryBackend`` instances share, like processes sharing a server."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, _State] = {}
        self.migrations: list[str] = []

    def state(self, tenant: str) -> _State:
        return self.tenants.setdefault(tenant, _State())


class _Reader:
    def __init__(self, state: _State) -> None:
        self.s = state

    def _ref(self, message_id: str | None) -> tuple[str, int] | None:
        if message_id is None:
            return None
        row = self.s.messages[message_id]
        return (row["session_id"], row["idx"])

    def session_rows(self, ids: Sequence[str] | None) -> list[SessionRow]:
        wanted = self.s.sessions.keys() if ids is None else [i for i in ids if i in self.s.sessions]
        rows = []
        for sid in wanted:
            head = self.s.heads.get(sid)
            fork = self.s.forks.get(sid)
            rows.append(
                SessionRow(
                    copy.deepcopy(self.s.sessions[sid]),
                    head,
                    self._ref(head),
                    dict(fork) if fork is not None else None,
                )
            )
        return rows

    def list_session_ids(self, flt: ListFilter) -> list[str]:
        found = []
        for sid, p in self.s.sessions.items():
            if flt.user_id is not None and p.get("user_id") != flt.user_id:
                continue
            if flt.status is not None and p.get("status") != flt.status:
                continue
            if not flt.include_deleted and p.get("status") == "deleted":
                continue
            if not all(tag in p.get("tags", []) for tag in flt.tags):
                continue
            created = p["created_at"]
            if flt.created_after is not None and created < flt.created_after:
                continue
            if flt.created_before is not None and created >= flt.created_before:
                continue
            if flt.after is not None and (created, sid) <= flt.after:
                continue
            found.append((created, sid))
        found.sort()
        return [sid for _, sid in found[: flt.limit]]

    def message_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.s.messages[i]) for i in ids if i in self.s.messages]

    def message_owners(self, ids: Sequence[str]) -> dict[str, str]:
        return {i: self.s.messages[i]["session_id"] for i in ids if i in self.s.messages}

    def _topo(self, message_id: str) -> TopoRow:
        row = self.s.messages[message_id]
        return TopoRow(
            row["session_id"], row["idx"], message_id, self._ref(self.s.prev.get(message_id))
        )

    def topology(self) -> Iterable[TopoRow]:
        return [self._topo(mid) for mid in self.s.messages]

    def topology_from(self, wants: Sequence[tuple[str, int]]) -> list[TopoRow]:
        limits = dict(wants)
        return [
            self._topo(mid)
            for mid, row in self.s.messages.items()
            if row["session_id"] in limits and row["idx"] >= limits[row["session_id"]]
        ]

    def changes_since(self, seq: int) -> ChangeFeed:
        return ChangeFeed(self.s.seq, [c for c in self.s.changes if c.seq > seq])

    def current_seq(self) -> int:
        return self.s.seq

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        needle = text.lower()
        hits = [
            copy.deepcopy(row)
            for row in self.s.messages.values()
            if row.get("content") is not None
            and (text in row["content"] or needle in row["content"].lower())
        ]
        hits.sort(key=lambda r: (r["created_at"], r["id"]))
        hits.reverse()
        return hits[:limit]


class _Writer(_Reader):
    def __init__(self, state: _State, prev_seq: int) -> None:
        super().__init__(state)
        self.prev_seq = prev_seq
        self.seq = state.seq

    def record(self, changes: Sequence[tuple[str, str]]) -> None:
        self.s.changes.extend(Change(self.seq, sid, kind) for sid, kind in changes)

    def create_sessions(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            if row["id"] in self.s.sessions:
                raise RuntimeError(f"constraint: session {row['id']!r} exists")
            self.s.sessions[row["id"]] = copy.deepcopy(dict(row))

    def update_session(self, session_id: str, props: dict[str, Any]) -> None:
        if session_id in self.s.sessions:
            self.s.sessions[session_id] = {**self.s.sessions[session_id], **copy.deepcopy(props)}

    def set_head(self, session_id, head_id, length, next_idx, now) -> None:  # type: ignore[no-untyped-def]
        if session_id not in self.s.sessions:
            return
        if head_id is None or head_id not in self.s.messages:
            self.s.heads.pop(session_id, None)
        else:
            self.s.heads[session_id] = head_id
        self.update_session(session_id, {"length": length, "next_idx": next_idx, "updated_at": now})

    def create_fork_edges(self, forks: Sequence[dict[str, Any]]) -> None:
        for fork in forks:
            self.s.forks[fork["child_id"]] = {**fork["props"], "parent_id": fork["parent_id"]}

    def create_merge_edge(self, fork_id: str, into_id: str, props: dict[str, Any]) -> None:
        self.s.merges.append({**props, "fork_id": fork_id, "into_id": into_id})

    def append_messages(
        self,
        session_id: str,
        head_id: str | None,
        rows: Sequence[dict[str, Any]],
        length: int,
        next_idx: int,
        now: datetime,
    ) -> None:
        prev = head_id
        for row in rows:
            if row["id"] in self.s.messages:
                raise RuntimeError(f"constraint: message {row['id']!r} exists")
            self.s.messages[row["id"]] = copy.deepcopy(dict(row))
            if prev is not None:
                self.s.prev[row["id"]] = prev
            prev = row["id"]
        self.set_head(session_id, prev, length, next_idx, now)

    def link_copies(self, links: Sequence[dict[str, str]]) -> None:
        for link in links:
            self.s.copies[link["id"]] = link["original"]

    def delete_messages(self, ids: Sequence[str]) -> None:
        gone = set(ids)
        for mid in gone:
            self.s.messages.pop(mid, None)
            self.s.prev.pop(mid, None)
            self.s.copies.pop(mid, None)
        for sid, head in list(self.s.heads.items()):
            if head in gone:
                del self.s.heads[sid]
        for mid, prev in list(self.s.prev.items()):
            if prev in gone:
                del self.s.prev[mid]

    def delete_sessions(self, ids: Sequence[str]) -> None:
        gone = set(ids)
        for sid in gone:
            self.s.sessions.pop(sid, None)
            self.s.heads.pop(sid, None)
            self.s.forks.pop(sid, None)
        for child, fork in list(self.s.forks.items()):
            if fork["parent_id"] in gone:
                del self.s.forks[child]
        self.s.merges = [m for m in self.s.merges if not gone & {m["fork_id"], m["into_id"]}]


class MemoryBackend(Backend):
    """A tenant's view of a ``MemoryDatabase`` (a new private one when none is given)."""

    def __init__(self, tenant: str = "default", database: MemoryDatabase | None = None) -> None:
        self.tenant = tenant
        self.database = database or MemoryDatabase()

    def setup(self) -> list[str]:
        with self.database.lock:
            new = [m for m in MIGRATIONS if m not in self.database.migrations]
            self.database.migrations.extend(new)
            return new

    def applied_migrations(self) -> list[str]:
        return list(self.database.migrations)

    def read(self, fn: Callable[[Reader], T]) -> T:
        with self.database.lock:
            return fn(_Reader(self.database.state(self.tenant)))

    def write(self, changes: Sequence[tuple[str, str]], fn: Callable[[Writer], T]) -> tuple[T, int]:
        with self.database.lock:
            current = self.database.state(self.tenant)
            draft = current.fork_copy()
            prev_seq = draft.seq
            draft.seq += 1
            draft.changes.extend(Change(draft.seq, sid, kind) for sid, kind in changes)
            result = fn(_Writer(draft, prev_seq))
            self.database.tenants[self.tenant] = draft
            return result, draft.seq

    def trim_changes(self, keep: int) -> int:
        with self.database.lock:
            state = self.database.state(self.tenant)
            kept = [c for c in state.changes if c.seq > state.seq - keep]
            dropped = len(state.changes) - len(kept)
            self.database.tenants[self.tenant] = replace(state, changes=kept)
            return dropped
