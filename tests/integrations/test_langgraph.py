"""The LangGraph checkpointer on the real Neo4j server, with real langgraph.

``langgraph-checkpoint-conformance`` runs against ``AsyncNeo4jSaver`` and ``Neo4jSaver``
(through its async methods): every base and extended capability must be detected and pass.
A real ``StateGraph`` (a conditional edge, an interrupt, a branch made with ``update_state``
from an earlier checkpoint) runs with ``graph.invoke`` on ``Neo4jSaver`` and ``graph.ainvoke``
on ``AsyncNeo4jSaver``: its state and history, the checkpoint tree (the branch shows), channel
values stored once (counted in Cypher), ``copy_thread`` continued on both sides independently,
and ``delete_thread`` of the source leaving the copy whole. Bad input is refused with typed
errors and nothing stored.
"""

from __future__ import annotations

import asyncio
import operator
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, TypedDict, TypeVar

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.graph import END, START, StateGraph
from langgraph.types import StateSnapshot
from neo4j import Driver

from session_graph import (
    AsyncSessionStore,
    SessionDeletedError,
    SessionExistsError,
    SessionStore,
    Settings,
    ValidationError,
)
from session_graph.crypto import generate_key
from session_graph.errors import EncryptionError
from session_graph.integrations.langgraph import AsyncNeo4jSaver, Neo4jSaver
from session_graph.runtime import ConnectionInfo
from tests.stores import event_loop_thread, graph_state, tenant_query

T = TypeVar("T")


@pytest.fixture
def async_store(
    neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str
) -> Iterator[AsyncSessionStore]:
    """An ``AsyncSessionStore`` on the test event loop (``event_loop_thread``), own tenant."""
    loop = event_loop_thread()
    store = AsyncSessionStore.connect_to(neo4j_info, Settings(tenant=tenant, mirror_max_lag=0))
    loop.run(store.connect())
    yield store
    loop.run(store.close())


# -- the conformance suite ----------------------------------------------------------------------


def assert_full_conformance(report: CapabilityReport) -> None:
    report.print_report()  # shown with -s
    for capability in Capability:
        result = report.results[capability.value]
        print(f"  {capability.value}: {result.tests_passed} passed, {result.tests_failed} failed")
        assert result.detected, f"{capability.value} is not detected"
        assert result.passed, f"{capability.value}: {result.failures}"
        assert result.tests_passed > 0 and result.tests_failed == 0
    assert report.conformance_level() == "FULL"


def test_conformance_async_saver(async_store: AsyncSessionStore) -> None:
    @checkpointer_test(name="AsyncNeo4jSaver")
    async def saver() -> Any:
        yield AsyncNeo4jSaver(async_store)

    began = time.perf_counter()
    report = event_loop_thread().run(validate(saver))
    print(f"conformance (AsyncNeo4jSaver): {time.perf_counter() - began:.1f} s")
    assert_full_conformance(report)


def test_conformance_sync_saver(neo4j_store: SessionStore) -> None:
    @checkpointer_test(name="Neo4jSaver")
    async def saver() -> Any:
        yield Neo4jSaver(neo4j_store)

    began = time.perf_counter()
    report = asyncio.run(validate(saver))
    print(f"conformance (Neo4jSaver, async methods): {time.perf_counter() - began:.1f} s")
    assert_full_conformance(report)


# -- a real graph ----------------------------------------------------------------------------


class State(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]
    count: int


def plan(state: State) -> dict[str, Any]:
    return {"notes": [f"plan {state['topic']}"], "count": state["count"] + 1}


def act(state: State) -> dict[str, Any]:
    return {"notes": [f"act {state['count']}"], "count": state["count"] + 1}


def review(state: State) -> dict[str, Any]:
    return {"notes": [f"review {state['count']}"]}


def route(state: State) -> str:
    return "act" if state["count"] < 3 else "review"


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """plan -> act (while count < 3) -> review, interrupted before review."""
    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("act", act)
    builder.add_node("review", review)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route, ["act", "review"])
    builder.add_conditional_edges("act", route, ["act", "review"])
    builder.add_edge("review", END)
    return builder.compile(checkpointer=checkpointer, interrupt_before=["review"])


class Runner:
    """One scenario, two ways: the sync graph API on ``Neo4jSaver``, or the async one on
    ``AsyncNeo4jSaver`` (on the test event loop)."""

    def __init__(self, saver: Neo4jSaver | AsyncNeo4jSaver) -> None:
        self.saver = saver
        self.graph = build_graph(saver)
        self.asynchronous = isinstance(saver, AsyncNeo4jSaver)

    def _run(self, sync: Callable[[], T], coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return event_loop_thread().run(coro()) if self.asynchronous else sync()

    def invoke(self, inputs: Any, thread: str | dict[str, Any]) -> Any:
        config = cfg(thread) if isinstance(thread, str) else thread
        return self._run(
            lambda: self.graph.invoke(inputs, config),
            lambda: self.graph.ainvoke(inputs, config),
        )

    def state(self, thread: str) -> StateSnapshot:
        return self._run(
            lambda: self.graph.get_state(cfg(thread)),
            lambda: self.graph.aget_state(cfg(thread)),
        )

    def history(self, thread: str) -> list[StateSnapshot]:
        async def collect() -> list[StateSnapshot]:
            return [s async for s in self.graph.aget_state_history(cfg(thread))]

        return self._run(lambda: [*self.graph.get_state_history(cfg(thread))], collect)

    def update(self, config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        return self._run(
            lambda: self.graph.update_state(config, values),
            lambda: self.graph.aupdate_state(config, values),
        )

    def copy(self, source: str, target: str) -> None:
        saver = self.saver
        if isinstance(saver, AsyncNeo4jSaver):
            event_loop_thread().run(saver.acopy_thread(source, target))
        else:
            saver.copy_thread(source, target)

    def delete(self, thread: str) -> None:
        saver = self.saver
        if isinstance(saver, AsyncNeo4jSaver):
            event_loop_thread().run(saver.adelete_thread(thread))
        else:
            saver.delete_thread(thread)

    def tree(self, thread: str) -> list[Any]:
        saver = self.saver
        if isinstance(saver, AsyncNeo4jSaver):
            return event_loop_thread().run(saver.acheckpoint_tree(thread))
        return saver.checkpoint_tree(thread)


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def ids(history: list[StateSnapshot]) -> list[str]:
    return [s.config["configurable"]["checkpoint_id"] for s in history]


def walk(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from walk(node["children"])


def query(store: Any, text: str, **params: Any) -> list[dict[str, Any]]:
    rows = tenant_query(store, text, **params)
    assert rows is not None
    return rows


@pytest.fixture(params=["sync", "async"])
def runner(
    request: pytest.FixtureRequest, neo4j_store: SessionStore, tenant: str
) -> Iterator[tuple[Runner, SessionStore]]:
    """A ``Runner`` on each saver, and a sync store on the same tenant (for Cypher checks)."""
    if request.param == "sync":
        yield Runner(Neo4jSaver(neo4j_store)), neo4j_store
        return
    astore = request.getfixturevalue("async_store")
    saver = event_loop_thread().run(_async_saver(astore))
    yield Runner(saver), neo4j_store


async def _async_saver(store: AsyncSessionStore) -> AsyncNeo4jSaver:
    return AsyncNeo4jSaver(store)  # made on the loop it runs on


def test_a_graph_runs_branches_copies_and_deletes(runner: tuple[Runner, SessionStore]) -> None:
    run, store = runner
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"

    # Runs to the interrupt before review: plan, act, act.
    run.invoke({"topic": "trip", "notes": [], "count": 0}, a)
    paused = run.state(a)
    assert paused.values == {"topic": "trip", "notes": ["plan trip", "act 1", "act 2"], "count": 3}
    assert paused.next == ("review",)
    history = run.history(a)
    assert [s.metadata["step"] for s in history] == [3, 2, 1, 0, -1]  # newest first
    assert [s.metadata["source"] for s in history] == ["loop"] * 4 + ["input"]
    parents = [s.parent_config["configurable"]["checkpoint_id"] for s in history[:-1]]
    assert parents == ids(history)[1:]  # a chain: each checkpoint's parent is the one before

    # A branch from the checkpoint after plan: update_state there (as plan: review is next).
    after_plan = next(s for s in history if s.metadata["step"] == 1)
    run.update(after_plan.config, {"notes": ["edited"], "count": 7})
    branched = run.state(a)
    assert branched.values["notes"] == ["plan trip", "edited"]
    assert branched.next == ("review",)
    tree = run.tree(a)
    forked = [n for n in walk(tree) if len(n["children"]) > 1]
    assert [n["id"] for n in forked] == [after_plan.config["configurable"]["checkpoint_id"]]
    assert sorted(c["source"] for c in forked[0]["children"]) == ["loop", "update"]
    assert len(list(walk(tree))) == 6 and len(tree) == 1  # one root: the input checkpoint

    # Values that do not change are stored once: `topic`, written by the input only, is one
    # value node that every checkpoint of the thread holds.
    topic = query(
        store,
        "MATCH (b:SGChannelValue {tenant: $t, thread_id: $a, channel: 'topic'}) "
        "RETURN count { (b)<-[:VALUE]-(:SGCheckpoint) } AS holders",
        a=a,
    )
    assert [r["holders"] for r in topic] == [5]  # every checkpoint after the input one
    counted = query(
        store,
        "MATCH (c:SGCheckpoint {tenant: $t, thread_id: $a}) "
        "RETURN count { (c)-[:VALUE]->() } AS held, "
        "COUNT { MATCH (b:SGChannelValue {tenant: $t, thread_id: $a}) } AS stored",
        a=a,
    )
    held = sum(r["held"] for r in counted)
    assert counted[0]["stored"] < held  # a store per checkpoint would hold `held` values

    # copy_thread: b starts where a is; both go on independently.
    before_copy = ids(run.history(a))
    run.copy(a, b)
    assert ids(run.history(b)) == before_copy
    assert run.state(b).values == branched.values
    run.invoke(None, a)  # a: review
    copy_branch = run.update(run.state(b).config, {"notes": ["copy only"]})
    run.invoke(None, copy_branch)  # b: its own update, then review
    assert run.state(a).values["notes"] == ["plan trip", "edited", "review 7"]
    assert run.state(b).values["notes"] == ["plan trip", "edited", "copy only", "review 7"]
    a_ids, b_ids = ids(run.history(a)), ids(run.history(b))
    assert set(before_copy) <= set(a_ids) & set(b_ids)
    assert not (set(a_ids) - set(before_copy)) & set(b_ids)  # b never sees a's later ones
    b_tree = run.tree(b)
    owners = {n["id"]: n["thread_id"] for n in walk(b_tree)}
    assert {owners[i] for i in before_copy} == {a}
    assert {owners[i] for i in set(b_ids) - set(before_copy)} == {b}
    copied = store.get_session(b)
    assert copied.parent_id == a and copied.fork is not None
    assert copied.fork.reason == "copy_thread"

    # delete_thread(a): a is empty and takes new writes; b is whole and goes on.
    b_history = [(s.config, s.values, s.next) for s in run.history(b)]
    run.delete(a)
    assert run.history(a) == [] and run.state(a).values == {}
    assert [(s.config, s.values, s.next) for s in run.history(b)] == b_history
    kept = query(
        store,
        "MATCH (c:SGCheckpoint {tenant: $t, thread_id: $a}) RETURN c.id AS id ORDER BY id",
        a=a,
    )
    assert [r["id"] for r in kept] == sorted(before_copy)  # only what b still sees stays
    run.invoke({"topic": "again", "notes": [], "count": 5}, a)
    again = run.history(a)
    assert run.state(a).values["notes"] == ["plan again"]
    assert not set(ids(again)) & set(a_ids)  # nothing deleted comes back
    run.invoke(None, b)  # b still runs (nothing left to do: stays at the end)
    assert run.state(b).values["notes"][-1] == "review 7"

    # delete_thread(b): now nothing needs a's old checkpoints, so they go too.
    run.delete(b)
    left = query(
        store,
        "MATCH (c:SGCheckpoint {tenant: $t}) RETURN c.thread_id AS thread, count(*) AS n",
    )
    assert {r["thread"]: r["n"] for r in left} == {a: len(again)}
    orphans = query(
        store,
        "MATCH (b:SGChannelValue {tenant: $t}) WHERE NOT EXISTS { (b)<-[:VALUE]-() } "
        "RETURN count(b) AS n",
    )
    assert orphans == [{"n": 0}]
    writers = query(
        store, "MATCH (w:SGCheckpointWrite {tenant: $t}) RETURN DISTINCT w.thread_id AS t"
    )
    assert [r["t"] for r in writers] == [a]
    assert {s.id for s in store.list_sessions(tags=["langgraph"]).items} == {a, b}


def test_prune_keeps_the_latest_and_spares_copies(neo4j_store: SessionStore) -> None:
    saver = Neo4jSaver(neo4j_store)
    graph = build_graph(saver)
    graph.invoke({"topic": "t", "notes": [], "count": 0}, cfg("p"))
    saver.copy_thread("p", "p-copy")
    whole = [*saver.list(cfg("p"))]

    saver.prune(["p"], strategy="keep_latest")

    assert [t.checkpoint["id"] for t in saver.list(cfg("p"))] == [whole[0].checkpoint["id"]]
    assert [t.checkpoint["id"] for t in saver.list(cfg("p-copy"))] == [
        t.checkpoint["id"] for t in whole
    ]
    assert graph.get_state(cfg("p")).values == graph.get_state(cfg("p-copy")).values
    saver.prune(["p-copy"], strategy="delete")
    assert [*saver.list(cfg("p-copy"))] == []
    stored = query(neo4j_store, "MATCH (c:SGCheckpoint {tenant: $t}) RETURN count(c) AS n")
    assert stored == [{"n": 1}]


def test_delete_for_runs_hides_a_run_and_spares_copies(neo4j_store: SessionStore) -> None:
    saver = Neo4jSaver(neo4j_store)
    first = saver.put(cfg("r"), generate_checkpoint(), generate_metadata(run_id="run-1"), {})
    second_config = {"configurable": {**first["configurable"], "thread_id": "r"}}
    saver.put(second_config, generate_checkpoint(), generate_metadata(run_id="run-2"), {})
    saver.copy_thread("r", "r-copy")

    saver.delete_for_runs(["run-1"])

    assert [t.metadata["run_id"] for t in saver.list(cfg("r"))] == ["run-2"]
    assert [t.metadata["run_id"] for t in saver.list(cfg("r-copy"))] == ["run-2", "run-1"]
    listed = saver.list(None)  # every thread, each as itself (a copy's tuples name the copy)
    every = [(t.config["configurable"]["thread_id"], t.metadata["run_id"]) for t in listed]
    assert sorted(every) == [("r", "run-2"), ("r-copy", "run-1"), ("r-copy", "run-2")]
    assert len([*saver.list(None, limit=2)]) == 2


def test_copies_of_copies_outlive_every_delete(neo4j_store: SessionStore) -> None:
    """a -> b -> c (each a copy of the one before): deleting a or b never changes what c
    sees; only what no thread sees any more is removed, and in the end nothing is left."""
    saver = Neo4jSaver(neo4j_store)

    def put(thread: str, parent: dict[str, Any] | None, step: int) -> dict[str, Any]:
        config = generate_config(thread)
        if parent is not None:
            config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
        values = {"x": f"{thread}{step}"}
        versions = {"x": saver.get_next_version(None, None)}
        checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
        return saver.put(config, checkpoint, generate_metadata(step=step), versions)

    def seen(thread: str) -> list[tuple[str, Any, list[Any]]]:
        return [
            (t.checkpoint["id"], t.checkpoint["channel_values"], t.pending_writes or [])
            for t in saver.list(cfg(thread))
        ]

    def count(label: str) -> int:
        rows = query(neo4j_store, f"MATCH (n:{label} {{tenant: $t}}) RETURN count(n) AS n")
        return int(rows[0]["n"])

    a1 = put("a", None, 1)
    a2 = put("a", a1, 2)
    saver.put_writes(a2, [("x", "pending")], "task")
    saver.copy_thread("a", "b")
    b3 = put("b", a2, 3)
    saver.copy_thread("b", "c")
    put("c", b3, 4)
    put("a", a2, 3)  # after the copies: neither b nor c sees it
    c_before = seen("c")
    writes = {cid: [w[2] for w in pending] for cid, _, pending in c_before}
    assert len(c_before) == 4 and writes[a2["configurable"]["checkpoint_id"]] == ["pending"]

    saver.delete_thread("b")
    assert seen("b") == [] and seen("c") == c_before and len(seen("a")) == 3
    saver.delete_thread("a")
    assert seen("a") == [] and seen("c") == c_before
    owners = query(
        neo4j_store,
        "MATCH (c:SGCheckpoint {tenant: $t}) RETURN c.thread_id AS o, count(*) AS n ORDER BY o",
    )
    assert [(r["o"], r["n"]) for r in owners] == [("a", 2), ("b", 1), ("c", 1)]
    put("b", None, 9)  # b takes writes again, from scratch
    assert [v for _, v, _ in seen("b")] == [{"x": "b9"}]

    saver.delete_thread("c")
    saver.delete_thread("b")
    left = [count(label) for label in ("SGCheckpoint", "SGChannelValue", "SGCheckpointWrite")]
    assert left == [0, 0, 0]


def test_pending_writes_of_a_copy_stop_at_the_copy(neo4j_store: SessionStore) -> None:
    saver = Neo4jSaver(neo4j_store)
    stored = saver.put(cfg("w"), generate_checkpoint(), generate_metadata(), {})
    saver.put_writes(stored, [("ch", "before")], "task-1")
    saver.copy_thread("w", "w-copy")
    saver.put_writes(stored, [("ch", "after")], "task-2")  # the source goes on at the copy point

    source = saver.get_tuple(stored)
    copy = saver.get_tuple(cfg("w-copy"))
    assert source is not None and copy is not None
    assert sorted(w[2] for w in source.pending_writes or []) == ["after", "before"]
    assert [w[2] for w in copy.pending_writes or []] == ["before"]


def test_copy_costs_the_same_at_any_history_length(neo4j_store: SessionStore) -> None:
    """A copy adds one session and its fork edge, whatever the source holds: no checkpoint,
    write or value is copied."""
    saver = Neo4jSaver(neo4j_store)
    counts = (
        "MATCH (n {tenant: $t}) RETURN labels(n)[0] AS what, count(*) AS n UNION ALL "
        "MATCH ({tenant: $t})-[r]->() RETURN type(r) AS what, count(*) AS n"
    )
    for length in (3, 30):
        source, parent = f"long-{length}", None
        for step in range(length):
            config = generate_config(source)
            if parent is not None:
                config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            values = {"x": step}
            checkpoint = generate_checkpoint(channel_values=values, channel_versions=values)
            parent = saver.put(config, checkpoint, generate_metadata(step=step), values)
            saver.put_writes(parent, [("x", step)], "task")
        before = {r["what"]: r["n"] for r in query(neo4j_store, counts)}

        saver.copy_thread(source, f"{source}-copy")

        after = {r["what"]: r["n"] for r in query(neo4j_store, counts)}
        grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        assert grown == {"SGSession": 1, "FORKED_FROM": 1}
        assert len([*saver.list(cfg(f"{source}-copy"))]) == length


def test_delta_channel_history_matches_the_reference_walk(neo4j_store: SessionStore) -> None:
    saver = Neo4jSaver(neo4j_store)
    parent: dict[str, Any] | None = None
    configs = []
    for step in range(6):
        config = generate_config("d")
        if parent is not None:
            config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
        values = {"a": f"snap {step}"} if step in (0, 3) else {}
        versions = {"a": saver.get_next_version(None, None)} if values else {}
        checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
        parent = saver.put(config, checkpoint, generate_metadata(step=step), versions)
        saver.put_writes(parent, [("a", step), ("b", step)], f"task-{step}")
        configs.append(parent)

    for target in (configs[-1], configs[2], cfg("d")):
        ours = saver.get_delta_channel_history(config=target, channels=["a", "b", "c"])
        reference = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=target, channels=["a", "b", "c"]
        )
        assert ours == reference
    assert saver.get_delta_channel_history(config=configs[-1], channels=["a"])["a"] == {
        "writes": [("task-3", "a", 3), ("task-4", "a", 4)],
        "seed": "snap 3",
    }


def add_lines(state: list[str] | None, writes: list[list[str]]) -> list[str]:
    return [*(state or []), *(line for lines in writes for line in lines)]


class Log(TypedDict):
    log: Annotated[list[str], DeltaChannel(add_lines, snapshot_frequency=3)]
    n: int


def log_step(state: Log) -> dict[str, Any]:
    return {"log": [f"s{state['n']}"], "n": state["n"] + 1}


def test_delta_channels_survive_prune_and_copy(neo4j_store: SessionStore) -> None:
    """A DeltaChannel stores only every third value; its state is rebuilt from the writes of
    the checkpoints since (get_delta_channel_history), also after prune and in a copy."""
    builder = StateGraph(Log)
    builder.add_node("step", log_step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: "step" if s["n"] < 7 else END, ["step", END])
    saver = Neo4jSaver(neo4j_store)
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"log": [], "n": 0}, cfg("delta"))
    whole = graph.get_state(cfg("delta")).values
    assert whole == {"log": [f"s{i}" for i in range(7)], "n": 7}

    saver.copy_thread("delta", "delta-copy")
    saver.prune(["delta"], strategy="keep_latest")

    kept = [*saver.list(cfg("delta"))]
    assert 1 < len(kept) < 9  # the newest and its ancestors back to the last snapshot
    assert graph.get_state(cfg("delta")).values == whole
    assert graph.get_state(cfg("delta-copy")).values == whole
    graph.invoke({"log": ["x"], "n": 6}, cfg("delta-copy"))
    assert graph.get_state(cfg("delta-copy")).values["log"] == [*whole["log"], "x", "s6"]
    assert graph.get_state(cfg("delta")).values == whole


# -- bad input -----------------------------------------------------------------------------------


def test_a_store_on_the_memory_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs Neo4j"):
        Neo4jSaver(SessionStore.in_memory())
    with pytest.raises(ValidationError, match="must be a SessionStore"):
        Neo4jSaver("bolt://localhost")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "message", "read_too"),
    [
        ({"configurable": {"thread_id": 7}}, "thread_id must be str", True),
        ({"configurable": {"thread_id": b"t"}}, "decode it first", True),
        ({"configurable": {}}, "needs a thread_id", True),
        ({}, "needs a 'configurable' mapping", True),
        ("t", "must be a mapping", True),
        ({"configurable": {"thread_id": "t", "checkpoint_ns": 1}}, "checkpoint_ns must", True),
        # a thread id no session can have: refused when written, simply not found when read
        ({"configurable": {"thread_id": " t"}}, "leading or trailing whitespace", False),
        ({"configurable": {"thread_id": "t\u202e"}}, "U\\+202E", False),
    ],
)
def test_bad_configs_raise_validation_errors_and_write_nothing(
    neo4j_store: SessionStore, config: Any, message: str, read_too: bool
) -> None:
    saver = Neo4jSaver(neo4j_store)
    before = graph_state(neo4j_store)
    with pytest.raises(ValidationError, match=message):
        saver.put(config, generate_checkpoint(), generate_metadata(), {})
    with pytest.raises(ValidationError):
        saver.put_writes(config, [("ch", 1)], "task")
    if read_too:
        with pytest.raises(ValidationError, match=message):
            saver.get_tuple(config)
        with pytest.raises(ValidationError, match=message):
            saver.list(config)
    else:
        assert saver.get_tuple(config) is None and [*saver.list(config)] == []
    assert graph_state(neo4j_store) == before


def test_other_bad_arguments_raise_validation_errors(neo4j_store: SessionStore) -> None:
    saver = Neo4jSaver(neo4j_store)
    saver.put(cfg("ok"), generate_checkpoint(), generate_metadata(), {})
    neo4j_store.create_session("plain")  # a session that is not a thread
    before = graph_state(neo4j_store)
    bad: list[tuple[Callable[[], Any], str]] = [
        (lambda: saver.put(cfg("plain"), generate_checkpoint(), generate_metadata(), {}),
         "not a LangGraph thread"),
        (lambda: saver.put(cfg("ok"), {"id": 3}, generate_metadata(), {}), "needs an 'id'"),
        (lambda: saver.put_writes(cfg("ok"), [("ch", 1)], "task"), "checkpoint_id"),
        (lambda: saver.put_writes(generate_config("ok", checkpoint_id="c"), "ch", "t"),
         "list of \\(channel, value\\) pairs"),
        (lambda: [*saver.list(cfg("ok"), limit="2")], "limit must be an integer"),  # type: ignore[arg-type]
        (lambda: [*saver.list(cfg("ok"), filter=["source"])], "filter must be a mapping"),  # type: ignore[arg-type]
        (lambda: [*saver.list(cfg("ok"), filter={"x": object()})], "not a JSON value"),
        (lambda: [*saver.list(cfg("ok"), before=cfg("ok"))], "before needs a config"),
        (lambda: saver.delete_thread(7), "thread_id must be str"),  # type: ignore[arg-type]
        (lambda: saver.delete_thread("plain"), "not a LangGraph thread"),
        (lambda: saver.delete_for_runs("run-1"), "list of strings"),
        (lambda: saver.delete_for_runs([1]), "must be str"),  # type: ignore[list-item]
        (lambda: saver.prune("ok"), "list of strings"),
        (lambda: saver.prune(["ok"], strategy="newest"), "keep_latest, delete"),
        (lambda: saver.copy_thread("ok", "ok"), "two different threads"),
        (lambda: saver.copy_thread("ok", "plain"), "not a LangGraph thread"),
        (lambda: saver.copy_thread("plain", "new"), "not a LangGraph thread"),
        (lambda: saver.copy_thread("ok", " new"), "whitespace"),
        (lambda: saver.checkpoint_tree("plain"), "not a LangGraph thread"),
    ]  # fmt: skip
    for call, message in bad:
        with pytest.raises(ValidationError, match=message):
            call()
    assert graph_state(neo4j_store) == before
    assert saver.get_tuple(cfg("plain")) is None and [*saver.list(cfg("nobody"))] == []
    saver.delete_thread("nobody")  # missing threads: nothing to do
    saver.copy_thread("nobody", "new")
    assert graph_state(neo4j_store) == before


def test_copy_into_an_existing_thread_and_writes_to_a_deleted_session_are_refused(
    neo4j_store: SessionStore,
) -> None:
    saver = Neo4jSaver(neo4j_store)
    for thread in ("x", "y"):
        saver.put(cfg(thread), generate_checkpoint(), generate_metadata(), {})
    with pytest.raises(SessionExistsError):
        saver.copy_thread("x", "y")
    saver.copy_thread("x", "z")
    saver.copy_thread("x", "z")  # repeating a copy that was made: nothing more
    neo4j_store.delete_session("y")
    with pytest.raises(SessionDeletedError):
        saver.put(cfg("y"), generate_checkpoint(), generate_metadata(), {})
    assert saver.get_tuple(cfg("y")) is not None  # a deleted session stays readable


def test_sync_calls_on_the_async_savers_loop_are_refused(async_store: AsyncSessionStore) -> None:
    async def on_the_loop() -> str:
        saver = AsyncNeo4jSaver(async_store)
        try:
            saver.get_tuple(cfg("t"))
        except asyncio.InvalidStateError as exc:
            return str(exc)
        return "no error"

    assert "use the async methods" in event_loop_thread().run(on_the_loop())
    with pytest.raises(asyncio.InvalidStateError, match="no event loop yet"):
        AsyncNeo4jSaver(async_store).get_tuple(cfg("t"))  # made outside any loop


def test_importing_without_langgraph_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "langgraph" or n.startswith("langgraph.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "session_graph.integrations.langgraph")
    with pytest.raises(ImportError, match=r"pip install 'session-graph\[langgraph\]'"):
        import session_graph.integrations.langgraph  # noqa: F401


def test_the_stores_keys_encrypt_checkpoints(neo4j_factory: Callable[..., SessionStore]) -> None:
    """With SESSION_GRAPH_ENCRYPTION_KEYS the saver encrypts checkpoints, metadata, channel
    values and writes as the store encrypts content; without a key they cannot be read."""
    keyed = neo4j_factory(encryption_keys=generate_key())
    graph = build_graph(Neo4jSaver(keyed))
    thread = f"t-{uuid.uuid4().hex[:6]}"
    graph.invoke({"topic": "the launch code", "notes": [], "count": 0}, cfg(thread))
    assert graph.get_state(cfg(thread)).values["topic"] == "the launch code"
    stored = query(
        keyed,
        "MATCH (n) WHERE (n:SGCheckpoint OR n:SGChannelValue OR n:SGCheckpointWrite) "
        "AND n.tenant = $t RETURN n AS node",
    )
    blobs = [v for r in stored for v in dict(r["node"]).values() if isinstance(v, bytes)]
    assert blobs and not any(b"launch" in b for b in blobs)
    kinds = [v for r in stored for k, v in dict(r["node"]).items() if k.endswith("type")]
    assert kinds and all(str(k).endswith("+fernet") for k in kinds)
    with pytest.raises(EncryptionError):
        build_graph(Neo4jSaver(neo4j_factory())).get_state(cfg(thread))


def test_purging_a_thread_session_removes_its_checkpoints(neo4j_store: SessionStore) -> None:
    """A thread deleted through the store and purged leaves no checkpoint behind, and a thread
    written again under that id starts empty (nothing purged comes back)."""
    saver = Neo4jSaver(neo4j_store)
    graph = build_graph(saver)
    graph.invoke({"topic": "t", "notes": [], "count": 0}, cfg("gone"))
    graph.invoke({"topic": "u", "notes": [], "count": 0}, cfg("kept"))
    count = (
        "MATCH (n {tenant: $t}) WHERE n:SGCheckpoint OR n:SGCheckpointWrite OR n:SGChannelValue "
        "RETURN n.thread_id AS thread, count(n) AS n ORDER BY thread"
    )
    before = {r["thread"]: r["n"] for r in query(neo4j_store, count)}
    assert before["gone"] > 0 and before["kept"] > 0

    neo4j_store.delete_session("gone", purge=True)

    assert {r["thread"]: r["n"] for r in query(neo4j_store, count)} == {"kept": before["kept"]}
    assert [*saver.list(cfg("gone"))] == []
    graph.invoke({"topic": "v", "notes": [], "count": 2}, cfg("gone"))
    history = [*saver.list(cfg("gone"))]
    assert history and all(t.metadata.get("step", 0) < 3 for t in history)
    assert graph.get_state(cfg("gone")).values["topic"] == "v"
