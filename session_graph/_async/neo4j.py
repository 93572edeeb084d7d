"""The Neo4j backend: the system of record. Every statement is a saved query from ``cypher/``.

The hot path runs as auto-commit statements (one round trip each); the rest as managed
transactions. Both are retried here on transient failures and lost connections, including a
connection lost while committing (the outcome unknown): every operation finds its own earlier
effect, so a retry never applies a call twice. Reads and writes share one bookmark manager,
so on a cluster (``neo4j://`` routing URIs) reads go to followers yet always see this
process's own writes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import neo4j
import tenacity
from neo4j.exceptions import (
    ClientError,
    ConstraintError,
    IncompleteCommit,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)
from tenacity import (
    RetryCallState,
    before_sleep_log,
    retry_if_exception,
    wait_exponential,
)

from session_graph import queries
from session_graph._async.backend import AsyncBackend, AsyncOps, T
from session_graph.errors import (
    ConflictError,
    LimitExceededError,
    ServerUnavailableError,
    SessionGraphError,
    StorageError,
)
from session_graph.history import Runs
from session_graph.records import (
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

log = logging.getLogger("session_graph.neo4j")

MIGRATIONS = ["0001_constraints", "0002_indexes", "0003_runs"]


def native(value: Any) -> Any:
    """Neo4j temporal values to Python ones, recursively."""
    if isinstance(value, neo4j.time.DateTime):
        return value.to_native()
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


def memory_limit(exc: BaseException) -> bool:
    """Neo4j reports a transaction over its memory limit as transient; retrying cannot help."""
    code = getattr(exc, "code", "") or ""
    return "MemoryPoolOutOfMemory" in code or "TransactionMemoryLimit" in code


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ServiceUnavailable, SessionExpired, IncompleteCommit)):
        return True
    return isinstance(exc, TransientError) and not memory_limit(exc)


def _record(rec: neo4j.Record) -> SessionRecord:
    return SessionRecord(native(rec["session"]), rec["head_id"], native(rec["fork"]))


class AsyncNeo4jOps:
    """The operations as saved statements, run by a session (auto-commit) or a transaction."""

    def __init__(self, runner: Any, tenant: str) -> None:
        self.runner = runner
        self.tenant = tenant

    async def _run(self, name: str, **params: Any) -> list[neo4j.Record]:
        result = await self.runner.run(queries.cypher(name), tenant=self.tenant, **params)
        return [record async for record in result]

    async def session_rows(self, ids: Sequence[str]) -> list[SessionRecord]:
        return [_record(r) for r in await self._run("session_rows", ids=list(ids))]

    async def create_session(self, props: dict[str, Any], op: str) -> tuple[SessionRecord, bool]:
        rec = (await self._run("create_session", props=props, op=op))[0]
        return _record(rec), bool(rec["mine"])

    async def list_session_ids(self, flt: ListFilter) -> list[str]:
        after_created, after_id = flt.after if flt.after else (None, None)
        extra = 100
        while True:
            recs = await self._run(
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

    async def update_session(
        self, session_id: str, props: dict[str, Any], op: str
    ) -> UpdateOutcome | None:
        recs = await self._run("update_session", id=session_id, props=props, op=op)
        if not recs:
            return None
        rec = recs[0]
        return UpdateOutcome(rec["status"], rec["tree_version"], _record(rec))

    async def append(
        self, session_id: str, rows: list[dict[str, Any]], ts: list[int | None] | None
    ) -> AppendOutcome | None:
        recs = await self._run(
            "append", id=session_id, rows=rows, ts=ts, closed=list(WRITABLE_CLOSED)
        )
        if not recs:
            return None
        rec = recs[0]
        return AppendOutcome(rec["status"], rec["base"], rec["at"])

    async def reserve_append(
        self, session_id: str, first_id: str, count: int, op: str
    ) -> tuple[str, int, int, str | None, Runs] | None:
        recs = await self._run(
            "reserve_append",
            id=session_id,
            first_id=first_id,
            count=count,
            op=op,
            closed=list(WRITABLE_CLOSED),
        )
        if not recs:
            return None
        r = recs[0]
        return (
            r["status"],
            r["first"],
            r["base"],
            r["head_id"],
            Runs.of(r["owner"], r["start"], r["end"]),
        )

    async def write_chunk(
        self,
        session_id: str,
        rows: list[dict[str, Any]],
        ts: list[int | None] | None,
        prev_id: str | None,
        base: int,
        first: int,
    ) -> int | None:
        recs = await self._run(
            "write_chunk",
            id=session_id,
            rows=rows,
            ts=ts,
            prev_id=prev_id,
            base=base,
            first=first,
        )
        return recs[0]["at"] if recs else None

    async def finish_append(
        self,
        session_id: str,
        last_id: str,
        base: int,
        head_id: str | None,
        props: dict[str, Any],
        op: str,
    ) -> str | None:
        recs = await self._run(
            "finish_append",
            id=session_id,
            last_id=last_id,
            base=base,
            head_id=head_id,
            props=props,
            closed=list(WRITABLE_CLOSED),
            op=op,
        )
        return str(recs[0]["status"]) if recs else None

    async def append_one(
        self, session_id: str, row: dict[str, Any], ts: int | None
    ) -> AppendOutcome | None:
        recs = await self._run(
            "append_one", id=session_id, row=row, ts=ts, closed=list(WRITABLE_CLOSED)
        )
        if not recs:
            return None
        rec = recs[0]
        return AppendOutcome(rec["status"], rec["base"], rec["at"])

    async def window(self, session_id: str, start: int | None, stop: int | None) -> Window | None:
        recs = await self._run("history_window", id=session_id, start=start, stop=stop)
        if not recs:
            return None
        rec = recs[0]
        return Window(rec["length"], rec["version"], rec["rows"])

    async def message_rows(self, ids: Sequence[str]) -> list[MessageRow]:
        return [r["row"] for r in await self._run("message_rows", ids=list(ids))]

    async def pop(self, session_id: str, expect: str, op: str) -> str | None:
        recs = await self._run(
            "pop", id=session_id, expect=expect, op=op, closed=list(WRITABLE_CLOSED)
        )
        return str(recs[0]["status"]) if recs else None

    async def fork(
        self,
        parent: str,
        at: int | None,
        at_id: str | None,
        children: list[dict[str, Any]],
        op: str,
        before: bool,
    ) -> ForkOutcome | None:
        recs = await self._run(
            "fork", parent=parent, at=at, at_id=at_id, children=children, op=op, before=before
        )
        if not recs:
            return None
        r = recs[0]
        made = [SessionRecord(native(p), h, native(f)) for p, h, f in r["made"]]
        return ForkOutcome(
            r["status"],
            r["position"],
            r["at"],
            r["tree_version"],
            r["root"],
            r["created_at"],
            made,
        )

    async def tree_of(self, session_id: str) -> TreeRecord | None:
        recs = await self._run("tree_of", id=session_id)
        if not recs:
            return None
        rec = recs[0]
        nodes = [TreeNode(i, p, c, s or "active", pos) for i, p, c, s, pos in rec["sessions"]]
        return TreeRecord(rec["root"], rec["version"], nodes)

    async def tree_versions(self, roots: Sequence[str]) -> dict[str, int | None]:
        return {r["id"]: r["version"] for r in await self._run("tree_versions", roots=list(roots))}

    async def search(self, text: str, limit: int) -> list[MessageRow]:
        return [r["row"] for r in await self._run("search_messages", text=text, limit=limit)]

    async def lock(self, ids: Sequence[str]) -> dict[str, SessionRecord]:
        recs = await self._run("lock_sessions", ids=sorted(set(ids)))
        return {rec.id: rec for rec in map(_record, recs)}

    async def own_ids(
        self, session_id: str, ranges: Sequence[tuple[int, int]]
    ) -> list[tuple[str, int]]:
        recs = await self._run(
            "own_ids", session=session_id, ranges=[[lo, hi] for lo, hi in ranges]
        )
        return [(r["id"], r["idx"]) for r in recs]

    async def held(self, session_id: str, ids: Sequence[str]) -> set[str]:
        recs = await self._run("message_holders", session=session_id, ids=list(ids))
        return {r["id"] for r in recs if r["held"]}

    async def set_history(
        self, session_id: str, head_id: str | None, props: dict[str, Any]
    ) -> None:
        await self._run("set_history", id=session_id, head_id=head_id, props=props)

    async def delete_messages(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 5000):
            await self._run("delete_messages", ids=list(ids[start : start + 5000]))

    async def link_copies(self, links: Sequence[dict[str, str]]) -> None:
        await self._run("link_copies", links=list(links))

    async def create_merge_edge(self, fork_id: str, into_id: str, props: dict[str, Any]) -> None:
        await self._run("create_merge_edge", fork_id=fork_id, into_id=into_id, props=props)

    async def record_op(self, session_id: str, op: str, result: str, props: dict[str, Any]) -> None:
        await self._run("record_op", id=session_id, op=op, result=result, props=props)

    async def bump_tree(self, root: str) -> int:
        return int((await self._run("bump_tree", root=root))[0]["version"])

    async def tree_sessions(self, root: str) -> list[TreeSession]:
        return [
            TreeSession(
                r["id"],
                r["status"] or "active",
                Runs.of(r["owner"], r["start"], r["end"]),
                int(r["next_idx"] or 0),
                bool(r["has_forks"]),
            )
            for r in await self._run("tree_sessions", root=root)
        ]

    async def roots(self, after: str | None, limit: int) -> list[str]:
        return [r["id"] for r in await self._run("roots", after=after, limit=limit)]

    async def unreached(self, session_id: str, keep: Sequence[tuple[int, int]]) -> list[str]:
        recs = await self._run(
            "unreached_messages", session=session_id, keep=[[lo, hi] for lo, hi in keep]
        )
        return [r["id"] for r in recs]

    async def delete_sessions(self, ids: Sequence[str]) -> None:
        await self._run("delete_sessions", ids=list(ids))


class AsyncNeo4jBackend(AsyncBackend):
    """A tenant's view of a Neo4j database, through a driver the caller owns or hands over."""

    def __init__(
        self,
        driver: neo4j.AsyncDriver,
        *,
        tenant: str = "default",
        database: str = "neo4j",
        retry_attempts: int = 6,
        unavailable_timeout: float = 120.0,
        owns_driver: bool = False,
    ) -> None:
        self.driver = driver
        self.tenant = tenant
        self.database = database
        self.retry_attempts = retry_attempts
        self.unavailable_timeout = unavailable_timeout
        self.owns_driver = owns_driver
        # A routing driver (neo4j://: a cluster) may read from a follower: one bookmark
        # manager for all reads and writes makes every read see this process's own writes.
        # A direct driver (bolt://) talks to one server, where that holds already, and a
        # bookmark on every statement only costs time.
        routing = isinstance(driver, neo4j.AsyncNeo4jDriver)
        self.bookmarks = neo4j.AsyncGraphDatabase.bookmark_manager() if routing else None

    def _session(self, write: bool) -> neo4j.AsyncSession:
        return self.driver.session(
            database=self.database,
            bookmark_manager=self.bookmarks,
            default_access_mode=neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS,
        )

    def _stop(self, state: RetryCallState) -> bool:
        """A server that is away (restarting, a lost connection) is waited for up to
        ``unavailable_timeout`` seconds; other transient errors get ``retry_attempts`` tries."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, (ServiceUnavailable, SessionExpired, IncompleteCommit)):
            return (state.seconds_since_start or 0.0) >= self.unavailable_timeout
        return state.attempt_number >= self.retry_attempts

    async def _call(self, work: Callable[[neo4j.AsyncSession], Awaitable[T]], write: bool) -> T:
        try:
            try:  # the first try, without the retry machinery (the hot path)
                async with self._session(write) as session:
                    return await work(session)
            except Exception as exc:
                if not retryable(exc):
                    raise
                log.warning("retrying after %s: %s", type(exc).__name__, exc)
            retrying = tenacity.AsyncRetrying(
                retry=retry_if_exception(retryable),
                stop=self._stop,
                wait=wait_exponential(multiplier=0.1, max=2),
                before_sleep=before_sleep_log(log, logging.WARNING),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    async with self._session(write) as session:
                        return await work(session)
        except SessionGraphError:
            raise
        except (ServiceUnavailable, SessionExpired) as exc:
            raise ServerUnavailableError(f"Neo4j is unreachable: {exc}") from exc
        except ConstraintError as exc:
            raise ConflictError(f"uniqueness constraint violated: {exc.message}") from exc
        except (TransientError, ClientError) as exc:
            if memory_limit(exc):
                raise LimitExceededError(
                    "the write is larger than the server's transaction memory limit "
                    "(dbms.memory.transaction.total.max); write it in smaller parts"
                ) from exc
            raise StorageError(f"Neo4j error {exc.code}: {exc.message}") from exc
        except Neo4jError as exc:
            raise StorageError(f"Neo4j error {exc.code}: {exc.message}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def auto(self, fn: Callable[[AsyncOps], Awaitable[T]], *, write: bool = True) -> T:
        async def work(session: neo4j.AsyncSession) -> T:
            return await fn(AsyncNeo4jOps(session, self.tenant))

        return await self._call(work, write)

    async def read(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        async def work(session: neo4j.AsyncSession) -> T:
            async def unit(tx: neo4j.AsyncManagedTransaction) -> T:
                return await fn(AsyncNeo4jOps(tx, self.tenant))

            return await session.execute_read(unit)

        return await self._call(work, False)

    async def write(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        async def work(session: neo4j.AsyncSession) -> T:
            async def unit(tx: neo4j.AsyncManagedTransaction) -> T:
                return await fn(AsyncNeo4jOps(tx, self.tenant))

            return await session.execute_write(unit)

        return await self._call(work, True)

    async def _statement(self, text: str, params: dict[str, Any], write: bool) -> list[Any]:
        async def work(session: neo4j.AsyncSession) -> list[Any]:
            result = await session.run(text, params)
            return [native(dict(r)) async for r in result]

        return await self._call(work, write)

    async def setup(self) -> list[str]:
        applied = set(await self.applied_migrations())
        done = []
        for version in MIGRATIONS:
            if version in applied:
                continue
            for statement in queries.get(version).statements():
                await self._statement(statement, {}, True)
            await self._statement(queries.cypher("record_migration"), {"version": version}, True)
            done.append(version)
        # Sessions an older release wrote (before 0003, or beside this one) get their runs.
        await self._convert_legacy()
        return done

    async def _convert_legacy(self) -> None:
        """Give sessions written before 0003 their runs and root; drop the old change log."""
        while True:
            found = await self._statement(queries.cypher("legacy_sessions"), {"batch": 500}, False)
            if not found:
                break
            rows = []
            for rec in found:
                runs = Runs()
                for owner, idx in rec["chain"]:
                    if owner is not None:
                        runs = runs.appended(owner, idx, 1)
                rows.append(
                    {
                        "tenant": rec["tenant"],
                        "id": rec["id"],
                        "root": rec["root"],
                        **{
                            "owner": list(runs.owner),
                            "start": list(runs.start),
                            "end": list(runs.end),
                        },
                    }
                )
            await self._statement(queries.cypher("convert_legacy_sessions"), {"rows": rows}, True)
        while (await self._statement(queries.cypher("drop_change_log"), {"batch": 10_000}, True))[
            0
        ]["deleted"]:
            pass

    async def applied_migrations(self) -> list[str]:
        rows = await self._statement(queries.cypher("applied_migrations"), {}, False)
        return [r["version"] for r in rows]

    async def run_saved(self, name: str, **params: Any) -> list[dict[str, Any]]:
        if "tenant" in params:  # the tenant is the store's, never a caller's
            raise TypeError("run_saved() takes no tenant: the store's own tenant is used")
        return await self._statement(queries.cypher(name), {**params, "tenant": self.tenant}, False)

    async def close(self) -> None:
        if self.owns_driver:
            await self.driver.close()
