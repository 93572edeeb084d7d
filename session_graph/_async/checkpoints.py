"""Checkpoints of LangGraph threads in Neo4j: the storage side of the LangGraph saver.

A thread is a session of the store (made through its API on the first write, marked by its
metadata); its checkpoints, pending writes and channel values are nodes of their own
(``cypher/checkpoints.cypher`` describes the model). This module runs those statements
through the store's backend (its driver, transactions and retries) and speaks plain
records: bytes in, bytes out. Serialising (LangGraph's serde) is the saver's job
(``session_graph.integrations.langgraph``), so this module, and the CLI's checkpoint tree,
need no LangGraph.

Deletes never break a copy: a thread stops *seeing* what it deletes or prunes, and only what no
thread of its fork tree sees any more is removed (``_collect``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

from session_graph import queries
from session_graph._async.backend import AsyncOps
from session_graph._async.neo4j import AsyncNeo4jBackend, AsyncNeo4jOps
from session_graph.core import check_instance, check_lookup_name, check_str, from_ms
from session_graph.errors import (
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.ids import new_id, validate_name

if TYPE_CHECKING:
    from session_graph._async.store import AsyncSessionStore

THREAD_KIND = "langgraph.thread"
"""The ``kind`` in the metadata of the sessions that are LangGraph threads."""
THREAD_TAG = "langgraph"
THREAD_METADATA: dict[str, Any] = {"kind": THREAD_KIND}
NO_LIMIT = 2**62
KNOWN_THREADS = 10_000


class StoredCheckpoint(TypedDict):
    """A checkpoint as a thread sees it, still serialised."""

    thread: str
    """The thread it was read for."""
    owner: str
    """The thread that wrote it: the one asked about, or a thread it was copied from."""
    ns: str
    id: str
    parent_id: str | None
    type: str
    checkpoint: bytes
    metadata_type: str
    metadata: bytes
    values: list[tuple[str, str, bytes]]
    """``(channel, type, value)`` of each stored channel value."""
    writes: list[tuple[str, str, str, bytes]]
    """Pending writes ``(task_id, channel, type, value)``, in ``writes_sort_key`` order."""


class CheckpointNode(TypedDict):
    """One checkpoint of a thread's checkpoint tree."""

    id: str
    namespace: str
    parent_id: str | None
    step: int | None
    source: str | None
    run_id: str | None
    created_at: str | None
    """ISO-8601 UTC (the checkpoint's own ``ts`` when it has one)."""
    thread_id: str
    """The thread that wrote it (a copy shows its source's checkpoints)."""
    children: list[CheckpointNode]


class HistoryStep(TypedDict):
    """One ancestor of a checkpoint in a DeltaChannel history: its pending writes and stored
    values of the channels asked about."""

    writes: list[tuple[str, str, str, bytes]]
    values: dict[str, tuple[str, bytes]]


def _not_a_thread(thread_id: str) -> ValidationError:
    return ValidationError(
        f"session {thread_id!r} is not a LangGraph thread; use another thread_id "
        "(threads are sessions the checkpointer creates)"
    )


def is_thread_metadata(metadata: Any) -> bool:
    """Does a session's metadata (a dict, or its stored JSON text) mark a LangGraph thread?"""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return False
    return isinstance(metadata, dict) and metadata.get("kind") == THREAD_KIND


def _writes(rows: Sequence[Sequence[Any]]) -> list[tuple[str, str, str, bytes]]:
    """Pending-write rows ``[level, task_id, idx, seq, channel, type, value, task_path]`` as a
    thread sees them: per thread the newest version of each ``(task_id, idx)``; between a
    copy and its source the first write of a task wins, as a saver that copied rows would
    keep it, except special channels (negative idx), where the newest (the copy's) wins."""
    newest: dict[tuple[int, str, int], Sequence[Any]] = {}
    for row in rows:
        key = (row[0], row[1], row[2])
        if key not in newest or row[3] > newest[key][3]:
            newest[key] = row
    chosen: dict[tuple[str, int], Sequence[Any]] = {}
    for row in newest.values():
        held = chosen.get((row[1], row[2]))
        if held is None or (row[2] >= 0 and row[0] > held[0]) or (row[2] < 0 and row[0] < held[0]):
            chosen[(row[1], row[2])] = row
    ordered = sorted(chosen.values(), key=lambda r: (r[7] or "", r[1], r[2]))
    return [(r[1], r[4], r[5], bytes(r[6] or b"")) for r in ordered]


def _stored(thread: str, rec: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        thread=thread,
        owner=rec["owner"],
        ns=rec["ns"],
        id=rec["id"],
        parent_id=rec["parent_id"],
        type=rec["type"],
        checkpoint=bytes(rec["checkpoint"]),
        metadata_type=rec["metadata_type"],
        metadata=bytes(rec["metadata"]),
        values=[(c, t, bytes(v)) for c, t, v in rec["channel_values"]],
        writes=_writes(rec["writes"]),
    )


def checkpoint_tree(rows: Sequence[dict[str, Any]]) -> list[CheckpointNode]:
    """Flat checkpoint rows (``checkpoint_tree``) as trees: roots are checkpoints whose parent
    the thread does not see (its first one, or one whose parent was pruned), by namespace."""
    nodes: dict[tuple[str, str], CheckpointNode] = {}
    for row in rows:
        created = row.get("ts") or (
            from_ms(row["created_ms"]).isoformat() if row.get("created_ms") is not None else None
        )
        nodes[(row["ns"], row["id"])] = CheckpointNode(
            id=row["id"],
            namespace=row["ns"],
            parent_id=row["parent_id"],
            step=row["step"],
            source=row["source"],
            run_id=row["run_id"],
            created_at=created,
            thread_id=row["owner"],
            children=[],
        )
    roots: list[CheckpointNode] = []
    for (ns, _), node in sorted(nodes.items()):
        parent = nodes.get((ns, node["parent_id"] or ""))
        if parent is not None and parent is not node:
            parent["children"].append(node)
        else:
            roots.append(node)
    return roots


class AsyncCheckpointRepository:
    """The checkpoints of one store's tenant, on Neo4j.

    Args:
        store: an open ``AsyncSessionStore`` on Neo4j (the in-memory backend has no Cypher).

    Raises:
        ValidationError: the store is not on Neo4j.
    """

    def __init__(self, store: AsyncSessionStore) -> None:
        from session_graph._async.store import AsyncSessionStore

        check_instance(store, AsyncSessionStore, "store")
        if not isinstance(store.backend, AsyncNeo4jBackend):
            raise ValidationError(
                "the LangGraph checkpointer needs Neo4j: this store runs on the in-memory "
                "backend (open one with AsyncSessionStore.open())"
            )
        self.store = store
        self.backend: AsyncNeo4jBackend = store.backend
        self._known: dict[str, None] = {}  # threads this process wrote (their session exists)

    # -- running statements ---------------------------------------------------------------

    @staticmethod
    async def _run(ops: AsyncOps, name: str, **params: Any) -> list[Any]:
        """Run a statement of ``cypher/checkpoints.cypher``: its values go in one map, ``$p``
        (one plan per statement: the server keys plans on the size of string and list
        parameters, so separate ones cost a fresh plan per mix of sizes)."""
        neo = cast(AsyncNeo4jOps, ops)
        result = await neo.runner.run(queries.cypher(name), tenant=neo.tenant, p=params)
        return [record async for record in result]

    async def _auto(self, name: str, *, write: bool = True, **params: Any) -> list[Any]:
        """One statement on its own: one round trip."""

        async def unit(ops: AsyncOps) -> list[Any]:
            return await self._run(ops, name, **params)

        return await self.backend.auto(unit, write=write)

    # -- threads --------------------------------------------------------------------------

    async def _threads(self, ids: Sequence[str]) -> dict[str, Any]:
        rows = await self._auto("checkpoint_threads_info", write=False, threads=list(ids))
        return {r["id"]: r for r in rows}

    async def _adopt(self, thread_id: str) -> None:
        """Make ``thread_id`` a thread: create its session through the store (a marked one that
        exists is taken as it is), or refuse a session that is something else."""
        session = await self.store.create_session(
            thread_id,
            title="LangGraph thread",
            tags=[THREAD_TAG],
            metadata=THREAD_METADATA,
            get_or_create=True,
        )
        if not is_thread_metadata(session.metadata):
            raise _not_a_thread(thread_id)

    async def _write(self, name: str, thread_id: str, **params: Any) -> None:
        """A write to a thread (put, put_writes): one round trip for a thread this process
        wrote before, two for another (its session is made or checked first)."""
        known = thread_id in self._known
        if not known:
            await self._adopt(thread_id)
        rows = await self._auto(name, thread=thread_id, adopt=not known, gen=new_id(), **params)
        row = rows[0]
        if row["ok"]:
            if len(self._known) >= KNOWN_THREADS:
                self._known.clear()
            self._known[thread_id] = None
            return
        self._known.pop(thread_id, None)
        if row["deleted"]:
            raise SessionDeletedError(
                f"thread {thread_id!r} is a deleted session; it takes no checkpoints"
            )
        if known:  # it changed since this process wrote it: check it again
            await self._write(name, thread_id, **params)
            return
        if not row["found"]:
            raise SessionNotFoundError(f"thread {thread_id!r} was removed while being written")
        raise _not_a_thread(thread_id)

    # -- checkpoints ----------------------------------------------------------------------

    async def put(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        parent_id: str | None,
        props: dict[str, Any],
        values: list[dict[str, Any]],
    ) -> None:
        """Store a checkpoint: ``props`` (its serialised form and plain fields), ``values``
        (``{channel, version, new, link, type, value}``: new versions become value nodes,
        others link the value the thread holds)."""
        _check_write_thread(thread_id)
        await self._write(
            "checkpoint_put",
            thread_id,
            ns=ns,
            id=checkpoint_id,
            parent=parent_id,
            props={**props, "parent_id": parent_id},
            values=values,
        )

    async def put_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[dict[str, Any]],
        *,
        upsert: bool,
    ) -> None:
        """Store pending writes (``{idx, channel, type, value}``) of a task."""
        _check_write_thread(thread_id)
        await self._write(
            "checkpoint_put_writes",
            thread_id,
            ns=ns,
            checkpoint=checkpoint_id,
            task=task_id,
            path=task_path,
            writes=writes,
            upsert=upsert,
        )

    async def get(
        self, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        """The checkpoint ``checkpoint_id`` (None: the newest) of a namespace, as the thread
        sees it; None when there is none (or no such thread)."""
        check_lookup_name(thread_id, "thread_id")
        if checkpoint_id is None:
            rows = await self._auto("checkpoint_latest", write=False, thread=thread_id, ns=ns)
        else:
            rows = await self._auto(
                "checkpoint_by_id", write=False, thread=thread_id, ns=ns, id=checkpoint_id
            )
        return _stored(thread_id, rows[0]) if rows else None

    async def list_checkpoints(
        self,
        thread_id: str | None,
        *,
        ns: str | None = None,
        checkpoint_id: str | None = None,
        before: str | None = None,
        pairs: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[StoredCheckpoint]:
        """Checkpoints newest first (one thread, or every thread when ``thread_id`` is None),
        filtered; ``pairs`` are canonical JSON ``[key, value]`` metadata must hold."""
        if thread_id is None:
            rows = await self._auto("checkpoint_all_threads", write=False)
            threads = [r["id"] for r in rows]
        else:
            threads = [check_lookup_name(thread_id, "thread_id")]
        found: list[StoredCheckpoint] = []
        remaining = NO_LIMIT if limit is None else limit
        for thread in threads:
            if remaining <= 0:
                break
            rows = await self._auto(
                "checkpoint_list",
                write=False,
                thread=thread,
                ns=ns,
                id=checkpoint_id,
                before=before,
                pairs=list(pairs),
                limit=remaining,
            )
            found.extend(_stored(thread, r) for r in rows)
            remaining -= len(rows)
        return found

    async def tree(self, thread_id: str) -> list[CheckpointNode]:
        """The checkpoint tree of a thread: every checkpoint it sees, children under their
        parent, roots by namespace (see ``checkpoint_tree``).

        Raises:
            ValidationError: the session exists and is not a thread.
        """
        check_lookup_name(thread_id, "thread_id")
        info = (await self._threads([thread_id])).get(thread_id)
        if info is not None and not info["thread"]:
            raise _not_a_thread(thread_id)
        rows = await self._auto("checkpoint_tree", write=False, thread=thread_id)
        return checkpoint_tree([dict(r) for r in rows])

    async def ancestry(
        self, thread_id: str, ns: str, checkpoint_id: str | None, channels: Sequence[str]
    ) -> tuple[list[HistoryStep], dict[str, int]] | None:
        """For a DeltaChannel history: the ancestors of a checkpoint (None: the newest of the
        namespace) the thread sees, nearest first, each with its pending writes of
        ``channels`` (up to the ancestor holding a stored value of the channel) and that
        stored value; and, per channel, the index of that ancestor (absent: none holds one).
        Two statements in one read transaction; None when the namespace has no checkpoint."""
        check_lookup_name(thread_id, "thread_id")
        if checkpoint_id is None:
            newest = await self.get(thread_id, ns, None)
            if newest is None:
                return None
            checkpoint_id = newest["id"]
        wanted_channels = list(channels)

        async def unit(ops: AsyncOps) -> tuple[list[HistoryStep], dict[str, int]]:
            rows = await self._run(
                ops,
                "checkpoint_ancestry",
                thread=thread_id,
                ns=ns,
                id=checkpoint_id,
                channels=wanted_channels,
            )
            chain = []
            for row in rows:
                if row["level"] is None:  # the thread does not see it: the walk ends
                    break
                chain.append(row)
            seeds: dict[str, int] = {}
            open_channels = set(wanted_channels)
            wanted = []
            for k, row in enumerate(chain):
                if not open_channels:
                    break
                here = [ch for ch in wanted_channels if ch in open_channels]
                seeded = [ch for ch in here if ch in row["stored"]]
                wanted.append([row["element"], row["level"], here, seeded])
                for ch in seeded:
                    seeds[ch] = k
                    open_channels.discard(ch)
            if not wanted:
                return [], seeds
            found = {
                r["element"]: r
                for r in await self._run(ops, "checkpoint_history", thread=thread_id, wanted=wanted)
            }
            steps = [
                HistoryStep(
                    writes=_writes(found[w[0]]["writes"]) if w[0] in found else [],
                    values={
                        c: (t, bytes(v))
                        for c, t, v in (found[w[0]]["channel_values"] if w[0] in found else [])
                    },
                )
                for w in wanted
            ]
            return steps, seeds

        return await self.backend.read(unit)

    # -- copies and deletes ---------------------------------------------------------------

    async def copy_thread(self, source: str, target: str) -> None:
        """Make ``target`` a copy of ``source``: a fork of its session (the store's ``fork``)
        that sees the source's checkpoints up to now and none it writes later. Copies no
        checkpoint, write or value: three round trips at any history length (a read of both
        sessions, the fork, one statement recording the copy point). A missing source is an
        empty thread: nothing is made. Repeating a copy that was made is a no-op.

        Raises:
            ValidationError: bad ids, the same thread twice, or a session that is not a thread.
            SessionExistsError: ``target`` is a thread already (a copy makes a new one).
        """
        check_lookup_name(source, "source thread_id")
        validate_name(check_str(target, "target thread_id"), what="target thread_id")
        if source == target:
            raise ValidationError("copy_thread needs two different threads")
        info = await self._threads([source, target])
        src, dst = info.get(source), info.get(target)
        if src is None:
            return
        if not src["thread"]:
            raise _not_a_thread(source)
        if dst is not None:
            marked = dst["thread"] or is_thread_metadata(dst["metadata"])
            if dst["parent"] == source and dst["copied"]:
                return  # made already (a retried call)
            if not marked:
                raise _not_a_thread(target)
            if dst["parent"] != source or dst["thread"]:
                raise SessionExistsError(
                    f"thread {target!r} exists; copy_thread makes a new thread"
                )
            # else: the fork of an earlier call that did not get to record the copy point
        else:
            await self.store.fork(
                source,
                None,
                id=target,
                reason="copy_thread",
                title="LangGraph thread",
                tags=[THREAD_TAG],
                metadata=THREAD_METADATA,
                fork_metadata={"langgraph": "copy_thread"},
            )
        await self._auto("checkpoint_copy", source=source, target=target, gen=new_id())

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes: the thread starts a new generation and
        sees none of them; what copies made from it still see stays, the rest is removed.
        The thread (its session) stays, so writing to it again starts afresh. A missing
        thread is a no-op.

        Raises:
            ValidationError: the session exists and is not a thread.
        """
        check_lookup_name(thread_id, "thread_id")

        async def unit(ops: AsyncOps) -> None:
            root = await self._lock(ops, thread_id)
            if root is None:
                return
            await self._run(ops, "checkpoint_new_generation", thread=thread_id, gen=new_id())
            await self._collect(ops, root)

        await self.backend.write(unit)

    async def prune(self, thread_id: str, keep: Callable[[list[dict[str, Any]]], set[str]]) -> None:
        """Hide all but the checkpoints ``keep`` picks from a thread, and remove what no
        thread sees any more. ``keep`` gets the rows of ``checkpoint_visible`` (element, ns,
        id, parents, delta_channels, stored) and returns the elements to keep.

        Raises:
            ValidationError: the session exists and is not a thread.
        """
        check_lookup_name(thread_id, "thread_id")

        async def unit(ops: AsyncOps) -> None:
            root = await self._lock(ops, thread_id)
            if root is None:
                return
            rows = [dict(r) for r in await self._run(ops, "checkpoint_visible", thread=thread_id)]
            kept = keep(rows)
            hide = [r["element"] for r in rows if r["element"] not in kept]
            if hide:
                await self._run(ops, "checkpoint_hide", thread=thread_id, elements=hide)
                await self._collect(ops, root)

        await self.backend.write(unit)

    async def prune_threads(
        self, thread_ids: Sequence[str], keep: Callable[[list[dict[str, Any]]], set[str]] | None
    ) -> None:
        """``prune`` each thread with ``keep``; with None, delete each (``delete_thread``)."""
        for thread_id in thread_ids:
            if keep is None:
                await self.delete_thread(thread_id)
            else:
                await self.prune(thread_id, keep)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints of runs from the threads that wrote them (and their writes),
        one fork tree per transaction. Copies made before keep what they saw."""
        runs = [check_str(run, "run id") for run in run_ids]
        if not runs:
            return
        rows = await self._auto("checkpoint_run_roots", write=False, runs=runs)
        for root in sorted(r["root"] for r in rows):

            async def unit(ops: AsyncOps, root: str = root) -> None:
                await self._run(ops, "checkpoint_lock_tree", root=root)
                hidden = await self._run(ops, "checkpoint_hide_runs", root=root, runs=runs)
                if any(r["hidden"] for r in hidden):
                    await self._collect(ops, root)

            await self.backend.write(unit)

    async def _lock(self, ops: AsyncOps, thread_id: str) -> str | None:
        """Lock the fork tree of a thread; its root, or None when there is no such session.

        Raises:
            ValidationError: the session is not a thread.
        """
        rows = await self._run(ops, "checkpoint_lock_thread", thread=thread_id)
        if not rows:
            return None
        if not rows[0]["thread"]:
            raise _not_a_thread(thread_id)
        return str(rows[0]["root"])

    async def _collect(self, ops: AsyncOps, root: str) -> None:
        """Remove what no thread of the tree rooted at ``root`` sees any more: checkpoints,
        the values only they held, and pending writes (same transaction, tree locked)."""
        collected = (await self._run(ops, "checkpoint_collect", root=root))[0]
        await self._run(
            ops,
            "checkpoint_collect_rest",
            root=root,
            values=collected["values"],
            removed=collected["removed"],
        )


def _check_write_thread(thread_id: str) -> None:
    """A thread id a write may create: a session id (str, visible, NFC, at most 256)."""
    validate_name(check_str(thread_id, "thread_id"), what="thread_id")
