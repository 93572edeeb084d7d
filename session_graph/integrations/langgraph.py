"""A LangGraph checkpointer on Neo4j: ``Neo4jSaver`` (sync) and ``AsyncNeo4jSaver`` (async).

Both are complete ``BaseCheckpointSaver`` implementations on the store's own database, tenant,
driver, transactions and retries: checkpoints with their metadata and namespaces, pending
writes, ``list`` with ``filter``/``before``/``limit``, ``delete_thread``, and the extended
capabilities ``copy_thread``, ``delete_for_runs`` and ``prune``, plus the DeltaChannel history
walk. They pass ``langgraph-checkpoint-conformance`` (base and every extended capability).

How it is stored (``cypher/checkpoints.cypher`` has the details):

- A thread is a session of the store (tag ``langgraph``, metadata ``{"kind":
  "langgraph.thread"}``), made through the store's API the first time the thread is
  written, so ``session-graph sessions``, ``tree``, lineage and exports see threads. A
  ``thread_id`` naming a session that is not a thread raises ``ValidationError``.
- Checkpoints form a tree through ``PARENT`` edges (``session-graph checkpoints THREAD``
  shows it). Channel values are stored once per channel and version and shared by every
  checkpoint holding them.
- ``copy_thread(source, target)`` is a fork of the source thread's session that copies
  nothing: the target sees the source's checkpoints up to the copy and its own after.
  Three round trips, whatever the history.
- ``delete_thread``, ``prune`` and ``delete_for_runs`` hide what they delete from the thread
  that deletes it; what a copy made earlier still sees stays, the rest is removed. A thread
  deleted and written again starts afresh.

Values are serialised with the saver's ``serde`` (LangGraph's ``JsonPlusSerializer`` by
default) and stored as Neo4j byte arrays. A store with ``SESSION_GRAPH_ENCRYPTION_KEYS``
encrypts checkpoints, metadata, channel values and writes with those keys (as it does
message content); only the metadata keys and values ``list(filter=...)`` matches on, and
the tree's ids, steps and sources, stay readable.
Channel versions are strings (``get_next_version`` as LangGraph's Postgres saver makes them),
so a branch never reuses a version of another branch.

Example::

    with SessionStore.open() as store:
        graph = builder.compile(checkpointer=Neo4jSaver(store))
        graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from session_graph._async.checkpoints import (
    AsyncCheckpointRepository,
    CheckpointNode,
    HistoryStep,
    StoredCheckpoint,
)
from session_graph._sync.checkpoints import CheckpointRepository
from session_graph.core import check_instance, check_str
from session_graph.crypto import ContentCodec
from session_graph.errors import ValidationError
from session_graph.store import AsyncSessionStore, SessionStore

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        DeltaChannelHistory,
        PendingWrite,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langgraph
    raise ImportError(
        "session_graph.integrations.langgraph needs langgraph-checkpoint: "
        "pip install 'session-graph[langgraph]'"
    ) from exc

__all__ = ["AsyncNeo4jSaver", "Neo4jSaver"]

T = TypeVar("T")
LOCK_STRIPES = 64
"""Writes to one thread from one process take turns (on one of these locks, by thread id):
LangGraph saves a checkpoint and its tasks' writes concurrently, and in Neo4j two statements
that lock the same session at once can deadlock (retried, but with a warning and a delay)."""
CheckpointTree = list[CheckpointNode]
"""A thread's checkpoints as trees: each node holds its ``children``."""
CheckpointTuples = list[CheckpointTuple]
STRATEGIES = ("keep_latest", "delete")


# -- input checks and conversions (no I/O) ---------------------------------------------------


def _configurable(config: Any, what: str = "config") -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise ValidationError(
            f"{what} must be a mapping like {{'configurable': {{'thread_id': ...}}}}, "
            f"not {type(config).__name__}"
        )
    conf = config.get("configurable")
    if not isinstance(conf, Mapping):
        raise ValidationError(f"{what} needs a 'configurable' mapping with a thread_id")
    return conf


def _target(config: Any, what: str = "config") -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id)`` of a config (ns defaults to '')."""
    conf = _configurable(config, what)
    thread = conf.get("thread_id")
    if thread is None:
        raise ValidationError(f"{what}['configurable'] needs a thread_id")
    check_str(thread, "thread_id")
    ns = conf.get("checkpoint_ns")
    ns = "" if ns is None else check_str(ns, "checkpoint_ns")
    checkpoint_id = conf.get("checkpoint_id") or None
    if checkpoint_id is not None:
        check_str(checkpoint_id, "checkpoint_id")
    return thread, ns, checkpoint_id


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _canonical(value: Any) -> Any:
    """``value`` as the JSON metadata filters compare: integral floats as ints, tuples as
    lists (so a filter matches what LangGraph's own savers match)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {check_str(k, "metadata key"): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON")


def _pair(key: str, value: Any) -> str:
    """One metadata entry as stored for filtering: canonical JSON of ``[key, value]``."""
    return json.dumps(
        [key, _canonical(value)], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _pairs(metadata: Mapping[str, Any]) -> list[str]:
    pairs = []
    for key, value in metadata.items():
        try:
            pairs.append(_pair(key, value))
        except (TypeError, ValueError, ValidationError):
            continue  # not JSON: kept in the metadata, not filterable
    return pairs


def _filter_pairs(filter: Any) -> list[str]:
    if filter is None:
        return []
    if not isinstance(filter, Mapping):
        raise ValidationError(f"filter must be a mapping, not {type(filter).__name__}")
    pairs = []
    for key, value in filter.items():
        check_str(key, "filter key")
        try:
            pairs.append(_pair(key, value))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"filter[{key!r}] is not a JSON value: {exc}") from None
    return pairs


def _limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(f"limit must be an integer or None, not {type(limit).__name__}")
    return max(limit, 0)


def _names(values: Any, what: str) -> list[str]:
    """A list of ids (one bare string is refused rather than split into characters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValidationError(f"{what} must be a list of strings, not {type(values).__name__}")
    return [check_str(v, f"each of the {what}") for v in values]


def _strategy(strategy: Any) -> str:
    check_str(strategy, "strategy")
    if strategy not in STRATEGIES:
        raise ValidationError(
            f"prune strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}"
        )
    return str(strategy)


def _keep_latest(rows: list[dict[str, Any]]) -> set[str]:
    """The checkpoints ``keep_latest`` keeps: the newest of each namespace and, when its
    metadata counts DeltaChannel updates since their last snapshot, its ancestors back to the
    one holding each such channel's stored value (the history that channel is rebuilt from)."""
    by_element = {r["element"]: r for r in rows}
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = newest.get(row["ns"])
        if held is None or row["id"] > held["id"]:
            newest[row["ns"]] = row
    keep: set[str] = set()
    for row in newest.values():
        keep.add(row["element"])
        wanted = set(row["delta_channels"])
        node = row
        while wanted and node["parents"]:
            parent = by_element.get(node["parents"][0])
            if parent is None:  # not seen by the thread: the history ends here anyway
                break
            keep.add(parent["element"])
            wanted -= set(parent["stored"])
            node = parent
    return keep


class StoreKeysSerializer:
    """A serde that encrypts what another serde makes with the store's keys (Fernet) when it
    has keys, marking the type ``+fernet`` as LangGraph's ``EncryptedSerializer`` marks
    ``+aes``. Values stored without encryption still load; encrypted ones need a key."""

    SUFFIX = "+fernet"

    def __init__(self, inner: SerializerProtocol, codec: ContentCodec) -> None:
        self.inner = inner
        self.codec = codec

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = self.inner.dumps_typed(obj)
        if not self.codec.encrypts:
            return kind, data
        return kind + self.SUFFIX, self.codec.encrypt_bytes(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, blob = data
        if kind.endswith(self.SUFFIX):
            kind, blob = kind[: -len(self.SUFFIX)], self.codec.decrypt_bytes(blob)
        return self.inner.loads_typed((kind, blob))


class _Neo4jSaverBase(BaseCheckpointSaver[str]):
    """What both savers share: input checks and the conversions between LangGraph's types and
    the stored records (no I/O)."""

    def _use_store_keys(self, codec: ContentCodec, given: SerializerProtocol | None) -> None:
        """Values are encrypted as message content is, unless a serde of the caller's decides;
        a value encrypted earlier still loads."""
        if given is None:
            self.serde = StoreKeysSerializer(self.serde, codec)

    def _encode_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[dict[str, Any], RunnableConfig]:
        thread, ns, parent = _target(config)
        if not isinstance(checkpoint, Mapping):
            raise ValidationError(f"checkpoint must be a mapping, not {type(checkpoint).__name__}")
        checkpoint_id = checkpoint.get("id")
        if not isinstance(checkpoint_id, str) or not checkpoint_id:
            raise ValidationError("checkpoint needs an 'id' (a non-empty str)")
        if not isinstance(metadata, Mapping):
            raise ValidationError(f"metadata must be a mapping, not {type(metadata).__name__}")
        if not isinstance(new_versions, Mapping):
            raise ValidationError("new_versions must be a mapping of channel to version")
        saved: dict[str, Any] = dict(checkpoint)
        values: Mapping[str, Any] = saved.pop("channel_values", None) or {}
        versions: Mapping[str, Any] = saved.get("channel_versions") or {}
        rows: list[dict[str, Any]] = []
        for channel, version in new_versions.items():
            if channel not in values:  # an empty channel: nothing to store
                continue
            kind, blob = self.serde.dumps_typed(values[channel])
            linked = channel in versions and str(versions[channel]) == str(version)
            rows.append(
                {
                    "channel": channel,
                    "version": str(version),
                    "new": True,
                    "link": linked,
                    "type": kind,
                    "value": blob,
                }
            )
        made = {r["channel"] for r in rows if r["link"]}
        rows.extend(
            {"channel": channel, "version": str(version), "new": False, "link": True}
            for channel, version in versions.items()
            if channel not in made and channel not in new_versions
        )
        meta = get_serializable_checkpoint_metadata(config, metadata)
        ckind, cblob = self.serde.dumps_typed(saved)
        mkind, mblob = self.serde.dumps_typed(meta)
        step = meta.get("step")
        counters = meta.get("counters_since_delta_snapshot")
        props = {
            "type": ckind,
            "checkpoint": cblob,
            "metadata_type": mkind,
            "metadata": mblob,
            "metadata_pairs": _pairs(meta),
            "step": step if isinstance(step, int) and not isinstance(step, bool) else None,
            "source": meta.get("source") if isinstance(meta.get("source"), str) else None,
            "run_id": None if meta.get("run_id") is None else str(meta.get("run_id")),
            "ts": checkpoint.get("ts") if isinstance(checkpoint.get("ts"), str) else None,
            "delta_channels": sorted(counters) if isinstance(counters, Mapping) else [],
        }
        put = {
            "thread_id": thread,
            "ns": ns,
            "checkpoint_id": checkpoint_id,
            "parent_id": parent,
            "props": props,
            "values": rows,
        }
        return put, _config(thread, ns, checkpoint_id)

    def _encode_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, path: str
    ) -> dict[str, Any]:
        thread, ns, checkpoint_id = _target(config)
        if checkpoint_id is None:
            raise ValidationError("put_writes needs config['configurable']['checkpoint_id']")
        check_str(task_id, "task_id")
        check_str(path, "task_path")
        if isinstance(writes, str | bytes) or not isinstance(writes, Sequence):
            raise ValidationError("writes must be a list of (channel, value) pairs")
        rows = []
        for idx, write in enumerate(writes):
            if not isinstance(write, tuple | list) or len(write) != 2:
                raise ValidationError("each write must be a (channel, value) pair")
            channel, value = write
            check_str(channel, "write channel")
            kind, blob = self.serde.dumps_typed(value)
            rows.append(
                {
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "type": kind,
                    "value": blob,
                }
            )
        return {
            "thread_id": thread,
            "ns": ns,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "task_path": path,
            "writes": rows,
            "upsert": bool(rows) and all(w[0] in WRITES_IDX_MAP for w in writes),
        }

    def _list_args(
        self, config: Any, filter: Any, before: Any, limit: Any
    ) -> tuple[str | None, dict[str, Any]]:
        thread: str | None = None
        ns: str | None = None
        checkpoint_id: str | None = None
        if config is not None:
            thread, _, checkpoint_id = _target(config)
            given = _configurable(config).get("checkpoint_ns")
            ns = None if given is None else check_str(given, "checkpoint_ns")
        before_id = None if before is None else _before(before)
        return thread, {
            "ns": ns,
            "checkpoint_id": checkpoint_id,
            "before": before_id,
            "pairs": _filter_pairs(filter),
            "limit": _limit(limit),
        }

    def _tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        thread_id, loads = stored["thread"], self.serde.loads_typed
        checkpoint = loads((stored["type"], stored["checkpoint"]))
        checkpoint["channel_values"] = {c: loads((t, v)) for c, t, v in stored["values"]}
        parent = stored["parent_id"]
        return CheckpointTuple(
            config=_config(thread_id, stored["ns"], stored["id"]),
            checkpoint=checkpoint,
            metadata=loads((stored["metadata_type"], stored["metadata"])),
            parent_config=None if parent is None else _config(thread_id, stored["ns"], parent),
            pending_writes=[(task, c, loads((t, v))) for task, c, t, v in stored["writes"]],
        )

    def _history(
        self, channels: Sequence[str], steps: list[HistoryStep], seeds: dict[str, int]
    ) -> dict[str, DeltaChannelHistory]:
        loads = self.serde.loads_typed
        result: dict[str, DeltaChannelHistory] = {}
        for channel in channels:
            last = seeds.get(channel, len(steps) - 1)
            writes: list[PendingWrite] = [
                (task, c, loads((t, v)))
                for k in range(last, -1, -1)  # oldest ancestor first
                for task, c, t, v in steps[k]["writes"]
                if c == channel
            ]
            entry: DeltaChannelHistory = {"writes": writes}
            if channel in seeds:
                entry["seed"] = loads(steps[seeds[channel]]["values"][channel])
            result[channel] = entry
        return result

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next version of a channel: a zero-padded counter and a random fraction, as
        LangGraph's Postgres and in-memory savers make them (a branch never reuses another
        branch's version, so a value stored once per version is never ambiguous)."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"


def _before(before: Any) -> str:
    _, _, checkpoint_id = _target(before, "before")
    if checkpoint_id is None:
        raise ValidationError("before needs a config with a checkpoint_id")
    return checkpoint_id


def _empty_history(channels: Sequence[str]) -> dict[str, DeltaChannelHistory]:
    return {channel: {"writes": []} for channel in channels}


# -- the savers ------------------------------------------------------------------------------


class Neo4jSaver(_Neo4jSaverBase):
    """A LangGraph checkpointer on a ``SessionStore`` (Neo4j).

    The sync methods are native; the async ones run them in a worker thread (the store is
    thread-safe). For asyncio applications ``AsyncNeo4jSaver`` is native.

    Args:
        store: an open store on Neo4j (``SessionStore.open()``), set up (migration
            ``0006_checkpoints``).
        serde: how values are serialised (LangGraph's default when omitted).

    Raises:
        ValidationError: ``store`` is not a ``SessionStore``, or runs on the in-memory backend.
    """

    def __init__(self, store: SessionStore, *, serde: SerializerProtocol | None = None) -> None:
        check_instance(store, SessionStore, "store")
        super().__init__(serde=serde)
        self._use_store_keys(store.codec, serde)
        self.store = store
        self.checkpoints = CheckpointRepository(store)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``, else the thread's newest in
        the namespace), with its values and pending writes; None when there is none."""
        thread, ns, checkpoint_id = _target(config)
        stored = self.checkpoints.get(thread, ns, checkpoint_id)
        return None if stored is None else self._tuple(stored)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of the config's thread (every thread when None) and
        namespace (every one when the config has none), with metadata matching ``filter``,
        older than ``before``, at most ``limit``."""
        thread, args = self._list_args(config, filter, before, limit)
        found = self.checkpoints.list_checkpoints(thread, **args)
        return (self._tuple(stored) for stored in found)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (one round trip; the first write of a thread also creates its
        session). Returns the config naming it."""
        put, next_config = self._encode_put(config, checkpoint, metadata, new_versions)
        with self._locks[hash(put["thread_id"]) % LOCK_STRIPES]:
            self.checkpoints.put(**put)
        return next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against the checkpoint ``config`` names."""
        args = self._encode_writes(config, writes, task_id, task_path)
        upsert = args.pop("upsert")
        with self._locks[hash(args["thread_id"]) % LOCK_STRIPES]:
            self.checkpoints.put_writes(**args, upsert=upsert)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes (copies made from it keep theirs)."""
        self.checkpoints.delete_thread(check_str(thread_id, "thread_id"))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints and writes of runs (copies made before keep theirs)."""
        self.checkpoints.delete_for_runs(_names(run_ids, "run_ids"))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Make ``target_thread_id`` a copy of ``source_thread_id`` (a fork of its session
        that copies nothing; see the module docstring)."""
        self.checkpoints.copy_thread(
            check_str(source_thread_id, "source_thread_id"),
            check_str(target_thread_id, "target_thread_id"),
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint (and the ancestors its
        DeltaChannels are rebuilt from); ``delete``: delete the threads' checkpoints."""
        keep = None if _strategy(strategy) == "delete" else _keep_latest
        self.checkpoints.prune_threads(_names(thread_ids, "thread_ids"), keep)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Per channel, the pending writes along the parent chain of a checkpoint back to the
        nearest ancestor holding a stored value (the seed): two statements, any depth."""
        if not channels:
            return {}
        found = self.checkpoints.ancestry(*_target(config), channels)
        return _empty_history(channels) if found is None else self._history(channels, *found)

    def checkpoint_tree(self, thread_id: str) -> CheckpointTree:
        """A thread's checkpoints as trees (children under their parent), roots first."""
        return self.checkpoints.tree(check_str(thread_id, "thread_id"))

    # The async interface runs the sync one in a worker thread.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        def read() -> CheckpointTuples:
            return [*self.list(config, filter=filter, before=before, limit=limit)]

        for item in await asyncio.to_thread(read):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )


class AsyncNeo4jSaver(_Neo4jSaverBase):
    """A LangGraph checkpointer on an ``AsyncSessionStore`` (Neo4j), native asyncio.

    The sync methods (``get_tuple``, ``list``, ``put``... as ``graph.get_state`` uses them)
    run the async ones on the event loop the saver was made on, as LangGraph's
    ``AsyncPostgresSaver`` does: call them from another thread; called on that loop's own
    thread they raise ``asyncio.InvalidStateError`` (use the async methods there).

    Args:
        store: an open ``AsyncSessionStore`` on Neo4j, set up.
        serde: how values are serialised (LangGraph's default when omitted).

    Raises:
        ValidationError: ``store`` is not an ``AsyncSessionStore``, or runs on the in-memory
            backend.
    """

    def __init__(
        self, store: AsyncSessionStore, *, serde: SerializerProtocol | None = None
    ) -> None:
        check_instance(store, AsyncSessionStore, "store")
        super().__init__(serde=serde)
        self._use_store_keys(store.codec, serde)
        self.store = store
        self.checkpoints = AsyncCheckpointRepository(store)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None  # taken from the first async call

    def _on_loop(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """See ``Neo4jSaver.get_tuple``."""
        self._on_loop()
        thread, ns, checkpoint_id = _target(config)
        stored = await self.checkpoints.get(thread, ns, checkpoint_id)
        return None if stored is None else self._tuple(stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """See ``Neo4jSaver.list``."""
        self._on_loop()
        thread, args = self._list_args(config, filter, before, limit)
        for stored in await self.checkpoints.list_checkpoints(thread, **args):
            yield self._tuple(stored)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """See ``Neo4jSaver.put``."""
        self._on_loop()
        put, next_config = self._encode_put(config, checkpoint, metadata, new_versions)
        async with self._locks[hash(put["thread_id"]) % LOCK_STRIPES]:
            await self.checkpoints.put(**put)
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """See ``Neo4jSaver.put_writes``."""
        self._on_loop()
        args = self._encode_writes(config, writes, task_id, task_path)
        upsert = args.pop("upsert")
        async with self._locks[hash(args["thread_id"]) % LOCK_STRIPES]:
            await self.checkpoints.put_writes(**args, upsert=upsert)

    async def adelete_thread(self, thread_id: str) -> None:
        """See ``Neo4jSaver.delete_thread``."""
        self._on_loop()
        await self.checkpoints.delete_thread(check_str(thread_id, "thread_id"))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """See ``Neo4jSaver.delete_for_runs``."""
        self._on_loop()
        await self.checkpoints.delete_for_runs(_names(run_ids, "run_ids"))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """See ``Neo4jSaver.copy_thread``."""
        self._on_loop()
        await self.checkpoints.copy_thread(
            check_str(source_thread_id, "source_thread_id"),
            check_str(target_thread_id, "target_thread_id"),
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """See ``Neo4jSaver.prune``."""
        self._on_loop()
        keep = None if _strategy(strategy) == "delete" else _keep_latest
        await self.checkpoints.prune_threads(_names(thread_ids, "thread_ids"), keep)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """See ``Neo4jSaver.get_delta_channel_history``."""
        self._on_loop()
        if not channels:
            return {}
        found = await self.checkpoints.ancestry(*_target(config), channels)
        return _empty_history(channels) if found is None else self._history(channels, *found)

    async def acheckpoint_tree(self, thread_id: str) -> CheckpointTree:
        """See ``Neo4jSaver.checkpoint_tree``."""
        self._on_loop()
        return await self.checkpoints.tree(check_str(thread_id, "thread_id"))

    # The sync interface runs the async one on the saver's event loop, from another thread.

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "synchronous calls to AsyncNeo4jSaver run on the event loop it was made on, "
                "from another thread; on that loop use the async methods (aget_tuple, alist, "
                "graph.ainvoke ...)"
                if loop is not None
                else "AsyncNeo4jSaver has no event loop yet: make it inside the loop it runs "
                "on (in async code), or call an async method first"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def read() -> CheckpointTuples:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        return iter(self._run(read()))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._run(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._run(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self.aprune(thread_ids, strategy=strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._run(self.aget_delta_channel_history(config=config, channels=channels))
