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
from dataclasses import dataclass
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
from session_graph.core import body_json
from session_graph.errors import (
    ConflictError,
    LimitExceededError,
    ServerUnavailableError,
    SessionGraphError,
    StorageError,
)
from session_graph.history import Runs
from session_graph.models import calls_from_metadata
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

OWN_LABELS = "0004_own_labels"
RICH_MESSAGES = "0005_rich_messages"
CHECKPOINTS = "0006_checkpoints"  # LangGraph checkpoints (cypher/checkpoints.cypher)
MIGRATIONS = [
    "0001_constraints",
    "0002_indexes",
    "0003_runs",
    OWN_LABELS,
    RICH_MESSAGES,
    CHECKPOINTS,
]
ADOPTABLE = MIGRATIONS[:3]
"""Versions releases before 0004 recorded on ``(:SchemaMigration)`` nodes (setup adopts them)."""


@dataclass(frozen=True)
class SchemaItem:
    """A constraint or index as setup made it: what proves one of that name is ours."""

    constraint: bool
    label: str
    properties: tuple[str, ...]
    migration: str
    """The version that made it (under the old names: an older release's)."""


OLD_SCHEMA = {
    "session_key": SchemaItem(True, "Session", ("tenant", "id"), "0001_constraints"),
    "message_key": SchemaItem(True, "Message", ("tenant", "id"), "0001_constraints"),
    "tenant_key": SchemaItem(True, "Tenant", ("id",), "0001_constraints"),
    "migration_key": SchemaItem(True, "SchemaMigration", ("version",), "0001_constraints"),
    "message_owner": SchemaItem(False, "Message", ("tenant", "session_id", "idx"), "0002_indexes"),
    "session_created": SchemaItem(False, "Session", ("tenant", "created_at"), "0002_indexes"),
    "session_user": SchemaItem(False, "Session", ("tenant", "user_id"), "0002_indexes"),
    "session_status": SchemaItem(False, "Session", ("tenant", "status"), "0002_indexes"),
    "change_seq": SchemaItem(False, "Change", ("tenant", "seq"), "0002_indexes"),
    "session_root": SchemaItem(False, "Session", ("tenant", "root"), "0003_runs"),
}
"""What releases before 0004 made, under names other software may use too."""
CHANGE_LOG_SCHEMA = ("tenant_key", "change_seq")
"""Dropped already by an older release's 0003: ones present after it are not ours."""

SCHEMA = {
    "session_graph_session_key": SchemaItem(True, "SGSession", ("tenant", "id"), OWN_LABELS),
    "session_graph_message_key": SchemaItem(True, "SGMessage", ("tenant", "id"), OWN_LABELS),
    "session_graph_migration_key": SchemaItem(True, "SGSchemaMigration", ("version",), OWN_LABELS),
    "session_graph_message_owner": SchemaItem(
        False, "SGMessage", ("tenant", "session_id", "idx"), OWN_LABELS
    ),
    "session_graph_session_created": SchemaItem(
        False, "SGSession", ("tenant", "created_at"), OWN_LABELS
    ),
    "session_graph_session_user": SchemaItem(False, "SGSession", ("tenant", "user_id"), OWN_LABELS),
    "session_graph_session_status": SchemaItem(
        False, "SGSession", ("tenant", "status"), OWN_LABELS
    ),
    "session_graph_session_root": SchemaItem(False, "SGSession", ("tenant", "root"), OWN_LABELS),
    "session_graph_message_tool": SchemaItem(
        False, "SGMessage", ("tenant", "tool_name"), RICH_MESSAGES
    ),
}
"""The constraints and indexes this release keeps (cypher/migrations.cypher)."""
CHANGE_KINDS = ["append", "reset"]
"""The kinds of entry release 0.1's change log held."""


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


def _same(row: dict[str, Any], item: SchemaItem) -> bool:
    """Is this SHOW CONSTRAINTS / SHOW INDEXES row the constraint or index ``item`` describes?"""
    kind = str(row.get("type"))
    kind_ok = "UNIQUENESS" in kind if item.constraint else kind == "RANGE"
    return (
        kind_ok
        and row.get("entityType") == "NODE"
        and list(row.get("labelsOrTypes") or []) == [item.label]
        and list(row.get("properties") or []) == list(item.properties)
    )


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

    async def search(self, text: str, limit: int, include_deleted: bool) -> list[MessageRow]:
        rows = await self._run(
            "search_messages", text=text, limit=limit, include_deleted=include_deleted
        )
        return [r["row"] for r in rows]

    async def encrypted_content(self) -> bool:
        return bool(await self._run("encrypted_content"))

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
        self.relabel_batch = 10_000  # nodes per transaction when setup moves ours to our labels
        self.legacy_batch = 500  # sessions per transaction when setup converts 0.1 data
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
        # Records an older release kept under the label :SchemaMigration become ours first,
        # so a database it migrated is not migrated again from scratch.
        await self._statement(queries.cypher("adopt_migrations"), {"versions": ADOPTABLE}, True)
        applied = await self._applied()
        done = []
        for version in MIGRATIONS:
            if version in applied:
                continue
            for statement in queries.get(version).statements():
                await self._statement(statement, {}, True)
            if version == OWN_LABELS:  # recorded only once our nodes are moved over
                await self._convert_legacy()
                await self._relabel()
                await self._drop_old_schema(applied)
            if version == RICH_MESSAGES:
                await self._lift_tool_calls()
            await self._statement(queries.cypher("record_migration"), {"version": version}, True)
            done.append(version)
        await self._check_schema()
        # Sessions an older release wrote (before 0003, or beside this one) get their runs,
        # then our labels.
        await self._convert_legacy()
        await self._relabel()
        return done

    async def _convert_legacy(self) -> None:
        """Give sessions written before 0003 their runs and root; drop the old change log."""
        while True:
            found = await self._statement(
                queries.cypher("legacy_sessions"), {"batch": self.legacy_batch}, False
            )
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
                        "element": rec["element"],
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
            converted = await self._statement(
                queries.cypher("convert_legacy_sessions"), {"rows": rows}, True
            )
            if not converted[0]["converted"]:  # changed meanwhile: found again, or gone
                break
        for name in ("drop_change_counters", "drop_change_log"):
            params = {"batch": 10_000, "kinds": CHANGE_KINDS}
            while (await self._statement(queries.cypher(name), params, True))[0]["deleted"]:
                pass

    async def _lift_tool_calls(self) -> None:
        """Tool calls earlier writers kept in message metadata (``tool_calls``, as the demo
        did) become first-class, in batches: a crash leaves the rest for the next setup."""
        after = ""
        while True:
            found = await self._statement(
                queries.cypher("tool_calls_in_metadata"),
                {"after": after, "batch": self.relabel_batch, "key": '"tool_calls"'},
                False,
            )
            if not found:
                return
            after = found[-1]["element"]
            rows = []
            for rec in found:
                calls = calls_from_metadata(rec["metadata"])
                if calls:
                    body = body_json(tool_calls=calls)
                    names = [c.name for c in calls]
                    rows.append({"element": rec["element"], "body": body, "tool_names": names})
            if rows:
                await self._statement(queries.cypher("lift_tool_calls"), {"rows": rows}, True)

    async def _relabel(self) -> None:
        """Move the sessions and messages an older release wrote to our labels, in batches
        (each its own transaction, so a crash leaves a graph the next setup carries on with):
        a batch of sessions provably ours, then their messages, then those sessions."""
        while True:
            found = await self._statement(
                queries.cypher("unlabelled_sessions"), {"batch": self.relabel_batch}, False
            )
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            for rec in found:  # one node per (tenant, id); a duplicate waits (and stays)
                rows.setdefault((rec["tenant"], rec["id"]), rec)
            if not rows:
                return
            owners = [{"tenant": t, "id": i} for t, i in rows]
            params = {"owners": owners, "batch": self.relabel_batch}
            while (await self._statement(queries.cypher("relabel_messages"), params, True))[0][
                "relabelled"
            ]:
                pass
            moved = await self._statement(
                queries.cypher("relabel_sessions"), {"rows": list(rows.values())}, True
            )
            if not moved[0]["relabelled"]:  # changed meanwhile: found again, or gone
                return

    async def _schema(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The constraints and indexes named ``names``, as SHOW describes them."""
        found: dict[str, dict[str, Any]] = {}
        for query in ("schema_constraints", "schema_indexes"):
            for row in await self._statement(queries.cypher(query), {"names": list(names)}, False):
                if row.get("owningConstraint") is None:  # not a constraint's own index
                    found[row["name"]] = row
        return found

    async def _drop_old_schema(self, applied: dict[str, bool]) -> None:
        """Drop the constraints and indexes an older release made under unprefixed names, but
        only each one that is provably ours: the migration that made it was an older
        release's (adopted), and it has the label and properties that migration gave it.
        Another library's of the same name stays."""
        for name, row in (await self._schema(list(OLD_SCHEMA))).items():
            item = OLD_SCHEMA[name]
            ours = applied.get(item.migration, False) and _same(row, item)
            if name in CHANGE_LOG_SCHEMA and applied.get("0003_runs", False):
                ours = False  # an older release's 0003 dropped ours: this one is not
            if ours:
                drop = "drop_constraint" if item.constraint else "drop_index"
                await self._statement(queries.cypher(drop), {"name": name}, True)

    async def _check_schema(self) -> None:
        """Our constraints and indexes exist as we made them (not another's of that name)."""
        found = await self._schema(list(SCHEMA))
        if any(name not in found for name in SCHEMA):  # dropped since: made again
            for statement in queries.get(OWN_LABELS).statements():
                await self._statement(statement, {}, True)
            found = await self._schema(list(SCHEMA))
        wrong = sorted(n for n, it in SCHEMA.items() if n not in found or not _same(found[n], it))
        if wrong:
            raise StorageError(
                "another constraint or index has the name of session_graph's "
                f"{', '.join(wrong)}; drop or rename it and run setup again"
            )

    async def _applied(self) -> dict[str, bool]:
        """Applied versions, each with whether an older release applied it (adopted)."""
        rows = await self._statement(queries.cypher("applied_migrations"), {}, False)
        return {r["version"]: bool(r["adopted"]) for r in rows}

    async def applied_migrations(self) -> list[str]:
        return list(await self._applied())

    async def run_saved(self, name: str, **params: Any) -> list[dict[str, Any]]:
        if "tenant" in params:  # the tenant is the store's, never a caller's
            raise TypeError("run_saved() takes no tenant: the store's own tenant is used")
        return await self._statement(queries.cypher(name), {**params, "tenant": self.tenant}, False)

    async def close(self) -> None:
        if self.owns_driver:
            await self.driver.close()
