"""The Neo4j backend: the system of record. Every statement is a saved query from ``cypher/``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, LiteralString

import neo4j
from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import (
    ConstraintError,
    IncompleteCommit,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from session_graph import queries
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
from session_graph.errors import (
    ConflictError,
    ServerUnavailableError,
    SessionGraphError,
    StorageError,
)

log = logging.getLogger("session_graph.neo4j")

MIGRATIONS = ["0001_constraints", "0002_indexes"]
RETRYABLE = (ServiceUnavailable, SessionExpired, IncompleteCommit, TransientError)


def native(value: Any) -> Any:
    """Neo4j temporal values to Python ones, recursively."""
    if isinstance(value, neo4j.time.DateTime):
        return value.to_native()
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


class _Reader:
    def __init__(self, tx: ManagedTransaction, tenant: str) -> None:
        self.tx = tx
        self.tenant = tenant

    def _run(self, name: str, **params: Any) -> list[neo4j.Record]:
        result = self.tx.run(queries.cypher(name), tenant=self.tenant, **params)
        return list(result)

    def session_rows(self, ids: Sequence[str] | None) -> list[SessionRow]:
        recs = (
            self._run("all_session_rows")
            if ids is None
            else self._run("session_rows", ids=list(ids))
        )
        rows = []
        for rec in recs:
            head = None if rec["head_id"] is None else (rec["head_owner"], rec["head_idx"])
            rows.append(
                SessionRow(native(rec["session"]), rec["head_id"], head, native(rec["fork"]))
            )
        return rows

    def list_session_ids(self, flt: ListFilter) -> list[str]:
        after_created, after_id = flt.after if flt.after else (None, None)
        extra = 100
        while True:
            recs = self._run(
                "list_session_ids",
                user_id=flt.user_id,
                status=flt.status,
                tags=list(flt.tags),
                created_after=flt.created_after,
                created_before=flt.created_before,
                include_deleted=flt.include_deleted,
                after_created=after_created,
                limit=flt.limit + extra,
            )
            ids = [
                rec["id"]
                for rec in recs
                if after_id is None
                or native(rec["created_at"]) != after_created
                or rec["id"] > after_id
            ]
            if len(ids) >= flt.limit or len(recs) < flt.limit + extra:
                return ids[: flt.limit]
            extra *= 10

    def message_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [native(rec["message"]) for rec in self._run("message_rows", ids=list(ids))]

    def message_owners(self, ids: Sequence[str]) -> dict[str, str]:
        return {rec["id"]: rec["session_id"] for rec in self._run("message_owners", ids=list(ids))}

    @staticmethod
    def _topo(recs: Iterable[neo4j.Record]) -> list[TopoRow]:
        return [
            TopoRow(
                r["session_id"],
                r["idx"],
                r["id"],
                None if r["prev_session"] is None else (r["prev_session"], r["prev_idx"]),
            )
            for r in recs
        ]

    def topology(self) -> Iterable[TopoRow]:
        result = self.tx.run(queries.cypher("topology_messages"), tenant=self.tenant)
        return self._topo(result)

    def topology_from(self, wants: Sequence[tuple[str, int]]) -> list[TopoRow]:
        rows = [{"session_id": sid, "from_idx": idx} for sid, idx in wants]
        return self._topo(self._run("topology_messages_from", wants=rows))

    def changes_since(self, seq: int) -> ChangeFeed:
        rec = self._run("changes_since", seq=seq)[0]
        changes = [Change(c["seq"], c["session_id"], c["kind"]) for c in rec["changes"]]
        changes.sort(key=lambda c: c.seq)
        return ChangeFeed(rec["seq"], changes)

    def current_seq(self) -> int:
        return int(self._run("current_seq")[0]["seq"])

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        return [native(r["message"]) for r in self._run("search_messages", text=text, limit=limit)]


class _Writer(_Reader):
    def __init__(self, tx: ManagedTransaction, tenant: str, seq: int) -> None:
        super().__init__(tx, tenant)
        self.seq = seq
        self.prev_seq = seq - 1

    def record(self, changes: Sequence[tuple[str, str]]) -> None:
        rows = [{"session_id": sid, "kind": kind} for sid, kind in changes]
        self._run("record_changes", seq=self.seq, changes=rows)

    def create_sessions(self, rows: Sequence[dict[str, Any]]) -> None:
        self._run("create_sessions", rows=list(rows))

    def update_session(self, session_id: str, props: dict[str, Any]) -> None:
        self._run("update_session", id=session_id, props=props)

    def set_head(
        self, session_id: str, head_id: str | None, length: int, next_idx: int, now: datetime
    ) -> None:
        self._run(
            "set_head", id=session_id, head_id=head_id, length=length, next_idx=next_idx, now=now
        )

    def create_fork_edges(self, forks: Sequence[dict[str, Any]]) -> None:
        self._run("create_fork_edges", forks=list(forks))

    def create_merge_edge(self, fork_id: str, into_id: str, props: dict[str, Any]) -> None:
        self._run("create_merge_edge", fork_id=fork_id, into_id=into_id, props=props)

    def append_messages(
        self,
        session_id: str,
        head_id: str | None,
        rows: Sequence[dict[str, Any]],
        length: int,
        next_idx: int,
        now: datetime,
    ) -> None:
        self._run(
            "append_messages",
            session_id=session_id,
            head_id=head_id,
            rows=list(rows),
            length=length,
            next_idx=next_idx,
            now=now,
        )

    def link_copies(self, links: Sequence[dict[str, str]]) -> None:
        self._run("link_copies", links=list(links))

    def delete_messages(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 5000):
            self._run("delete_messages", ids=list(ids[start : start + 5000]))

    def delete_sessions(self, ids: Sequence[str]) -> None:
        self._run("delete_sessions", ids=list(ids))


def _consume(query: str, params: dict[str, Any], session: neo4j.Session) -> None:
    session.run(query, params).consume()


class Neo4jBackend(Backend):
    """A tenant's view of a Neo4j database, through a driver the caller owns or hands over."""

    def __init__(
        self,
        driver: Driver,
        *,
        tenant: str = "default",
        database: str = "neo4j",
        retry_attempts: int = 6,
        owns_driver: bool = False,
    ) -> None:
        self.driver = driver
        self.tenant = tenant
        self.database = database
        self.retry_attempts = retry_attempts
        self.owns_driver = owns_driver

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential(multiplier=0.25, max=5),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )

    def _call(self, work: Callable[[neo4j.Session], T]) -> T:
        try:
            for attempt in self._retrying():
                with attempt, self.driver.session(database=self.database) as session:
                    return work(session)
        except SessionGraphError:
            raise
        except (ServiceUnavailable, SessionExpired) as exc:
            raise ServerUnavailableError(f"Neo4j is unreachable: {exc}") from exc
        except ConstraintError as exc:
            raise ConflictError(f"uniqueness constraint violated: {exc.message}") from exc
        except Neo4jError as exc:
            raise StorageError(f"Neo4j error {exc.code}: {exc.message}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def setup(self) -> list[str]:
        applied = set(self.applied_migrations())
        done = []
        for version in MIGRATIONS:
            if version in applied:
                continue
            for statement in queries.get(version).statements():
                self._call(partial(_consume, statement, {}))
            self._call(partial(_consume, queries.cypher("record_migration"), {"version": version}))
            done.append(version)
        return done

    def applied_migrations(self) -> list[str]:
        def work(session: neo4j.Session) -> list[str]:
            return [r["version"] for r in session.run(queries.cypher("applied_migrations"))]

        return self._call(work)

    def read(self, fn: Callable[[Reader], T]) -> T:
        return self._call(lambda s: s.execute_read(lambda tx: fn(_Reader(tx, self.tenant))))

    def write(self, changes: Sequence[tuple[str, str]], fn: Callable[[Writer], T]) -> tuple[T, int]:
        rows = [{"session_id": sid, "kind": kind} for sid, kind in changes]

        def unit(tx: ManagedTransaction) -> tuple[T, int]:
            bumped = tx.run(queries.cypher("bump_change"), tenant=self.tenant, changes=rows)
            seq = int(bumped.single(strict=True)["seq"])
            return fn(_Writer(tx, self.tenant, seq)), seq

        return self._call(lambda s: s.execute_write(unit))

    def run_saved(self, name: str, **params: Any) -> list[dict[str, Any]]:
        text: LiteralString = queries.cypher(name)
        records = self._call(
            lambda s: list(
                s.execute_read(lambda tx: list(tx.run(text, tenant=self.tenant, **params)))
            )
        )
        return [native(dict(r)) for r in records]

    def trim_changes(self, keep: int) -> int:
        total = 0
        while True:
            deleted = self._call(
                lambda s: s.execute_write(
                    lambda tx: tx.run(
                        queries.cypher("trim_changes"), tenant=self.tenant, keep=keep, batch=10_000
                    ).single(strict=True)["deleted"]
                )
            )
            total += int(deleted)
            if deleted == 0:
                return total

    def close(self) -> None:
        if self.owns_driver:
            self.driver.close()
