"""session_graph beside the stores a user would pick instead, side by side in one run.

Every contender is driven through its public API, with no LLM calls, in the same process
against the same machine (and, for langchain-neo4j, the same Neo4j server). Within each
measurement the contenders take turns in an order that rotates between repeats; medians of the
repeats are reported, with the ratio session_graph / peer. The table is printed (rich) and
written to ``BENCHMARKS.md`` at the repository root with the command, machine and date.

Peers (the ``bench`` extra: ``pip install -e '.[bench]'``):

* langchain-neo4j ``Neo4jChatMessageHistory``: a message chain per session on the same server;
* the OpenAI Agents SDK's ``SQLiteSession`` and ``AdvancedSQLiteSession`` (branches copy the
  branch's message structure rows), on a file in a temporary directory;
* LangGraph's ``SqliteSaver``: one checkpoint per append holding the whole message list, as a
  graph with a ``MessagesState`` would write.

Rows: (1) one append to a 1k-message session, p50/p95; (2) appends/s from 16 threads, each to its
own session, and from 1 thread; (3) ingest of 10k messages in one call; (4) reading a whole
5k-message branch; (5) the last 10 messages of a 100- and of a 1M-message session; (6) opening
a store on a tenant of 1M messages / 10k sessions: time and memory, in a fresh process; (7) fork
at 100 ... 1M messages vs one append; (8) lineage through the store vs the saved Cypher.

Run: ``python -m benchmarks.peers`` (about 25 minutes) or ``python -m benchmarks.peers --quick``
(small sizes, under 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any, LiteralString, cast

from rich.console import Console
from rich.table import Table

from benchmarks.common import (
    BENCH_INSTANCE,
    add_server_args,
    fmt_count,
    machine_line,
    make_console,
    median,
    open_bench_store,
    parse_count,
    parse_counts,
    progress,
    quiet_gc,
    timed,
)
from session_graph import SessionStore, Settings, queries
from session_graph.runtime import ConnectionInfo, LocalNeo4j, resolve_connection

ROOT = Path(__file__).resolve().parents[1]
SEED = 11
SLOW_SECONDS = 5.0  # a contender whose first run takes longer runs only --slow-repeats times
ROWS = ("1", "2", "3", "4", "5", "6", "7", "8")

OURS = "session_graph"
LANGCHAIN = "langchain-neo4j"
SQLITE = "SQLiteSession"
ADVANCED = "AdvancedSQLiteSession"
LANGGRAPH = "LangGraph SqliteSaver"
CYPHER = "saved Cypher (driver)"
PEERS = (LANGCHAIN, SQLITE, ADVANCED, LANGGRAPH, CYPHER)
HEADERS = {  # narrow column headers for the terminal table
    OURS: "session_\ngraph",
    LANGCHAIN: "langchain-\nneo4j",
    SQLITE: "SQLite-\nSession",
    ADVANCED: "Advanced-\nSQLite-\nSession",
    LANGGRAPH: "LangGraph\nSqlite-\nSaver",
    CYPHER: "saved\nCypher",
}
PEER_PACKAGES = {
    "langchain_neo4j": "langchain-neo4j",
    "agents": "openai-agents",
    "langgraph.checkpoint.sqlite": "langgraph-checkpoint-sqlite",
}

Msg = dict[str, str]


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Sizes and repeats of one run (``FULL`` and ``QUICK`` are the two presets)."""

    repeats: int = 5
    slow_repeats: int = 1
    appends: int = 300
    base: int = 1_000
    threads: int = 16
    per_thread: int = 40
    ingest: int = 10_000
    read: int = 5_000
    big: int = 1_000_000
    open_size: tuple[int, int] = (1_000_000, 10_000)
    fork_sizes: tuple[int, ...] = (100, 10_000, 100_000, 1_000_000)
    tree: int = 1_000
    calls: int = 200
    batch: int = 10_000
    langgraph_max: int = 100_000
    branch_max: int = 1_000_000
    rows: tuple[str, ...] = ROWS


FULL = Config()
QUICK = Config(
    repeats=3,
    per_thread=10,
    ingest=2_000,
    read=1_000,
    big=10_000,
    open_size=(10_000, 100),
    fork_sizes=(100, 10_000),
    tree=300,
    calls=100,
)


# -- the peers' packages (the `bench` extra) -----------------------------------------------


class MissingPeersError(RuntimeError):
    """The peers' packages are not installed."""


def load_peers() -> SimpleNamespace:
    """Import the peers' classes, or fail naming the packages to install."""
    missing = []
    for module, package in PEER_PACKAGES.items():
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise MissingPeersError(
            f"benchmarks.peers needs {', '.join(missing)}: install the bench extra, "
            "pip install -e '.[bench]'"
        )
    from agents import SQLiteSession
    from agents.extensions.memory import AdvancedSQLiteSession
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_neo4j import Neo4jChatMessageHistory
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.sqlite import SqliteSaver

    return SimpleNamespace(
        SQLiteSession=SQLiteSession,
        AdvancedSQLiteSession=AdvancedSQLiteSession,
        HumanMessage=HumanMessage,
        AIMessage=AIMessage,
        Neo4jChatMessageHistory=Neo4jChatMessageHistory,
        SqliteSaver=SqliteSaver,
        empty_checkpoint=empty_checkpoint,
    )


def conversation(start: int, count: int) -> list[Msg]:
    """``count`` short messages, user and assistant in turn (user on even positions)."""
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"message {i}"} for i in range(start, start + count)]


def lc_messages(peers: SimpleNamespace, msgs: list[Msg]) -> list[Any]:
    """LangChain message objects (what langchain-neo4j and LangGraph graphs store)."""
    human, ai = peers.HumanMessage, peers.AIMessage
    return [(human if m["role"] == "user" else ai)(content=m["content"]) for m in msgs]


# -- the contenders ------------------------------------------------------------------------


class Contender:
    """One store behind a uniform face: sessions, appends, reads. Unsupported calls raise."""

    name = ""
    chunk = 10_000  # messages per call when loading a session

    def prepare(self, msgs: list[Msg]) -> list[Any]:
        """The store's own message objects (made before the clock starts)."""
        return msgs

    def create(self) -> Any:
        raise NotImplementedError

    def add(self, handle: Any, items: list[Any]) -> None:
        """Append ``items`` in one call of the store's API."""
        raise NotImplementedError

    def append(self, handle: Any, item: Any) -> None:
        self.add(handle, [item])

    def read(self, handle: Any) -> int:
        """Read the whole history; returns its length."""
        raise NotImplementedError

    def tail(self, handle: Any, k: int) -> int:
        """Read the last ``k`` messages; returns how many came back."""
        raise NotImplementedError

    def branch(self, size: int) -> Any:
        """A session (or branch) whose history holds ``size`` messages, to read."""
        handle = self.create()
        self.add(handle, self.prepare(conversation(0, size)))
        return handle

    def close(self) -> None:
        """Release what the contender holds (connections, files, data)."""


class Ours(Contender):
    """session_graph's synchronous ``SessionStore`` API."""

    name = OURS

    def __init__(self, store: SessionStore, batch: int) -> None:
        self.store = store
        self.chunk = batch

    def create(self) -> str:
        return self.store.create_session(title="bench").id

    def add(self, handle: str, items: list[Msg]) -> None:
        self.store.append(handle, items)

    def append(self, handle: str, item: Msg) -> None:
        self.store.append(handle, item)

    def read(self, handle: str) -> int:
        return len(self.store.messages(handle))

    def tail(self, handle: str, k: int) -> int:
        return len(self.store.messages(handle, -k))

    def fork(self, handle: str, length: int) -> str:
        """A fork whose history is the first ``length`` messages."""
        return self.store.fork(handle, at=length - 1).id

    def branch(self, size: int) -> str:
        """A fork sharing the first half of its parent's history, then its own second half."""
        shared = size // 2
        root = self.create()
        for start in range(0, size, self.chunk):
            self.add(root, conversation(start, min(self.chunk, size - start)))
        fork = self.fork(root, shared)
        for start in range(shared, size, self.chunk):
            self.add(fork, conversation(start, min(self.chunk, size - start)))
        return fork


class Langchain(Contender):
    """``Neo4jChatMessageHistory`` (a history object, with its own driver, per session)."""

    name = LANGCHAIN
    chunk = 250
    window = 5_000_000  # `.messages` returns the last 2 x window messages: make that all

    _DELETE_MESSAGES: LiteralString = """
    MATCH (s:Session {id: $id})-[:LAST_MESSAGE]->(last:Message)
    WHERE s.tenant IS NULL
    MATCH (last)<-[:NEXT*0..]-(m:Message)
    CALL (m) { DETACH DELETE m } IN TRANSACTIONS OF 10000 ROWS
    """
    _DELETE_SESSION: LiteralString = (
        "MATCH (s:Session {id: $id}) WHERE s.tenant IS NULL DETACH DELETE s"
    )

    def __init__(self, peers: SimpleNamespace, info: ConnectionInfo, driver: Any) -> None:
        self.peers = peers
        self.info = info
        self.driver = driver  # ours, for the cleanup
        self.ids: list[str] = []
        self.histories: list[Any] = []

    def prepare(self, msgs: list[Msg]) -> list[Any]:
        return lc_messages(self.peers, msgs)

    def create(self) -> Any:
        sid = f"bench-peers-lc-{uuid.uuid4().hex}"
        self.ids.append(sid)  # before the constructor writes the session node
        history = self.peers.Neo4jChatMessageHistory(
            sid,
            url=self.info.uri,
            username=self.info.user,
            password=self.info.password,
            database=self.info.database,
            window=self.window,
        )
        self.histories.append(history)
        return history

    def add(self, handle: Any, items: list[Any]) -> None:
        handle.add_messages(items)

    def append(self, handle: Any, item: Any) -> None:
        handle.add_message(item)

    def read(self, handle: Any) -> int:
        return len(handle.messages)

    def close(self) -> None:
        """Delete every session this run made (by id) and close the histories' drivers."""
        with self.driver.session(database=self.info.database) as session:
            for sid in self.ids:
                session.run(self._DELETE_MESSAGES, id=sid).consume()
                session.run(self._DELETE_SESSION, id=sid).consume()
        self.ids.clear()
        self.histories.clear()  # each history closes the driver it owns when collected


class AsyncRunner:
    """One event loop for the async peers' calls (each call is awaited to completion)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __call__(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


class AgentsSqlite(Contender):
    """The OpenAI Agents SDK's ``SQLiteSession`` on one database file."""

    name = SQLITE
    chunk = 100_000

    def __init__(self, peers: SimpleNamespace, path: Path, run: AsyncRunner) -> None:
        self.peers = peers
        self.path = path
        self.run = run
        self.sessions: list[Any] = []

    def create(self) -> Any:
        session = self.peers.SQLiteSession(f"s-{uuid.uuid4().hex}", self.path)
        self.sessions.append(session)
        return session

    def add(self, handle: Any, items: list[Msg]) -> None:
        self.run(handle.add_items(items))

    def read(self, handle: Any) -> int:
        return len(self.run(handle.get_items()))

    def tail(self, handle: Any, k: int) -> int:
        return len(self.run(handle.get_items(limit=k)))

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.sessions.clear()


class AgentsAdvanced(AgentsSqlite):
    """``AdvancedSQLiteSession``: branches from a user turn (copying its structure rows)."""

    name = ADVANCED

    def create(self) -> Any:
        session = self.peers.AdvancedSQLiteSession(
            session_id=f"a-{uuid.uuid4().hex}", db_path=self.path, create_tables=True
        )
        self.sessions.append(session)
        return session

    def fork(self, handle: Any, length: int) -> str:
        """Branch at the last user turn of a ``length``-message session (copies length-2 rows)."""
        return cast(str, self.run(handle.create_branch_from_turn(math.ceil(length / 2))))

    def unfork(self, handle: Any, branch: str) -> None:
        self.run(handle.switch_to_branch("main"))
        self.run(handle.delete_branch(branch))

    def branch(self, size: int) -> Any:
        """A branch from turn size/4+1: the first ~half copied, then its own messages."""
        handle = self.create()
        turn = size // 4 + 1
        copied = 2 * (turn - 1)
        self.add(handle, conversation(0, size))
        self.run(handle.create_branch_from_turn(turn))  # switches to the new branch
        self.add(handle, conversation(copied, size - copied))
        return handle


@dataclass
class LgThread:
    """A LangGraph thread: its config (latest checkpoint) and the state the graph holds."""

    config: dict[str, Any]
    messages: list[Any]
    step: int = 0


class LangGraph(Contender):
    """LangGraph's ``SqliteSaver``: each append is one checkpoint with the whole message list.

    That is what a graph with ``MessagesState`` (the ``add_messages`` reducer) stores per step.
    """

    name = LANGGRAPH
    chunk = 100_000

    def __init__(self, peers: SimpleNamespace, path: Path) -> None:
        self.peers = peers
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.saver = peers.SqliteSaver(self.conn)
        self.saver.setup()

    def prepare(self, msgs: list[Msg]) -> list[Any]:
        return lc_messages(self.peers, msgs)

    def create(self) -> LgThread:
        return LgThread({"configurable": {"thread_id": uuid.uuid4().hex, "checkpoint_ns": ""}}, [])

    def add(self, handle: LgThread, items: list[Any]) -> None:
        handle.step += 1
        handle.messages = [*handle.messages, *items]
        checkpoint = self.peers.empty_checkpoint()
        checkpoint["channel_values"] = {"messages": handle.messages}
        checkpoint["channel_versions"] = {"messages": handle.step}
        meta = {"source": "loop", "step": handle.step, "parents": {}}
        handle.config = self.saver.put(handle.config, checkpoint, meta, {"messages": handle.step})

    def _latest(self, handle: LgThread) -> list[Any]:
        thread = handle.config["configurable"]["thread_id"]
        found = self.saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
        return cast(list[Any], found.checkpoint["channel_values"]["messages"])

    def read(self, handle: LgThread) -> int:
        return len(self._latest(handle))

    def tail(self, handle: LgThread, k: int) -> int:
        return len(self._latest(handle)[-k:])

    def close(self) -> None:
        self.conn.close()


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal for session_graph's figure: its text and the check."""

    text: str
    check: Callable[[float], bool]


@dataclass
class Row:
    """One line of the table: session_graph's figure and each applicable peer's."""

    key: str
    measure: str
    unit: str  # ms, µs, s, MB, /s or x (a ratio: no peer ratios shown)
    ours: float | None
    peers: dict[str, float | str] = field(default_factory=dict)  # str: why there is no figure
    target: Target | None = None
    few: set[str] = field(default_factory=set)  # contenders measured fewer times (slow)

    def status(self) -> str:
        if self.target is None or self.ours is None:
            return ""
        return "met" if self.target.check(self.ours) else "missed"


def fmt_value(value: float, unit: str) -> str:
    if unit == "x":
        return fmt_ratio(value)
    if unit.endswith("/s") or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def fmt_ratio(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def ours_cell(row: Row) -> str:
    if row.ours is None:
        return "-"
    return fmt_value(row.ours, row.unit) + ("*" if OURS in row.few else "")


def peer_cell(row: Row, peer: str, sep: str = " ") -> str:
    """The peer's figure and, after ``sep``, the ratio session_graph / peer."""
    value = row.peers.get(peer)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text = fmt_value(value, row.unit) + ("*" if peer in row.few else "")
    if row.unit != "x" and row.ours is not None and value > 0:
        text += f"{sep}({fmt_ratio(row.ours / value)})"
    return text


def used_peers(rows: Sequence[Row]) -> list[str]:
    return [p for p in PEERS if any(p in r.peers for r in rows)]


CAPTION = (
    "median of the repeats; (ratio) = session_graph / peer: for ms and µs below 1x means "
    "session_graph is faster, for /s above 1x does; * = measured fewer times (one run "
    f"takes over {SLOW_SECONDS:.0f} s)"
)


def build_table(rows: Sequence[Row], note: str) -> Table:
    table = Table(title="session_graph beside its peers", caption=f"{CAPTION}; {note}")
    table.add_column("#", justify="right")
    table.add_column("measure", min_width=24)
    table.add_column(HEADERS[OURS], justify="right")
    peers = used_peers(rows)
    for peer in peers:
        table.add_column(HEADERS[peer], justify="right")
    table.add_column("target")
    table.add_column("")
    for row in rows:
        status = row.status()
        styled = {"met": "[green]met[/green]", "missed": "[red]missed[/red]"}.get(status, "")
        table.add_row(
            row.key,
            f"{row.measure} ({row.unit})",
            ours_cell(row),
            *(peer_cell(row, p, "\n") for p in peers),
            row.target.text if row.target else "",
            styled,
        )
    return table


def markdown_table(rows: Sequence[Row]) -> str:
    peers = used_peers(rows)
    head = ["#", "measure", OURS, *peers, "target", ""]
    lines = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---:", "---", "---:", *(["---:"] * len(peers)), "---", "---"]) + " |",
    ]
    for row in rows:
        cells = [
            row.key,
            f"{row.measure} ({row.unit})",
            ours_cell(row),
            *(peer_cell(row, p) for p in peers),
            row.target.text if row.target else "",
            row.status(),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# -- measuring -----------------------------------------------------------------------------


def rotated(items: Sequence[Any], turn: int) -> list[Any]:
    """``items`` starting at ``turn`` (mod len): who goes first changes every repeat."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Samples:
    """Timings per contender; a slow contender (first run > SLOW_SECONDS) runs fewer times."""

    repeats: int
    slow_repeats: int
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        got = self.seconds.get(name, [])
        if got and got[0] > SLOW_SECONDS:
            return len(got) < min(self.repeats, self.slow_repeats)
        return len(got) < self.repeats

    def add(self, name: str, seconds: float) -> None:
        self.seconds.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return median(self.seconds[name])

    def few(self) -> set[str]:
        return {n for n, s in self.seconds.items() if len(s) < self.repeats}


def ms(seconds: float) -> float:
    return seconds * 1000


@contextlib.contextmanager
def tracked(console: Console, label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar (terminal) or a line per 10% (piped) for a long loading phase."""
    console.print(f"[dim]{label} ...[/dim]")
    start = time.perf_counter()
    state = {"done": 0, "mark": total / 10}
    with progress(console) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int) -> None:
            state["done"] += n
            bar.advance(task, n)
            if not console.is_terminal and total >= 50_000 and state["done"] >= state["mark"]:
                state["mark"] += total / 10
                elapsed = time.perf_counter() - start
                console.print(f"[dim]  {state['done']:,}/{total:,} ({elapsed:.0f} s)[/dim]")

        yield advance


@contextlib.contextmanager
def phase(console: Console, label: str) -> Iterator[None]:
    """Announce a phase and, at its end, how long it took."""
    console.print(f"[bold]{label}[/bold]")
    start = time.perf_counter()
    yield
    console.print(f"[dim]{label}: {time.perf_counter() - start:.0f} s[/dim]")


def load(
    contender: Contender, handle: Any, have: int, want: int, advance: Callable[[int], None]
) -> None:
    """Append messages ``have .. want-1`` in calls of ``contender.chunk`` messages."""
    for start in range(have, want, contender.chunk):
        count = min(contender.chunk, want - start)
        contender.add(handle, contender.prepare(conversation(start, count)))
        advance(count)


def new_session(contender: Contender, size: int, console: Console) -> Any:
    handle = contender.create()
    with tracked(console, f"{contender.name}: a {fmt_count(size)}-message session", size) as adv:
        load(contender, handle, 0, size, adv)
    return handle


# -- row 1: one append ---------------------------------------------------------------------


def append_latency(contenders: Sequence[Contender], cfg: Config, console: Console) -> list[Row]:
    handles = {c.name: new_session(c, cfg.base, console) for c in contenders}
    seconds: dict[str, list[float]] = {c.name: [] for c in contenders}
    console.print(f"[dim]{cfg.appends} single appends each, in turns ...[/dim]")
    with progress(console) as bar, quiet_gc():
        task = bar.add_task("single appends", total=cfg.appends)
        for i in range(cfg.appends):
            for c in rotated(contenders, i):
                item = c.prepare(conversation(cfg.base + i, 1))[0]
                seconds[c.name].append(
                    timed(lambda c=c, item=item: c.append(handles[c.name], item))[1]
                )
            bar.advance(task)
    rows = []
    for key, q in (("1a", 50), ("1b", 95)):
        figures = {n: ms(percentile(s, q)) for n, s in seconds.items()}
        rows.append(
            Row(
                key,
                f"one append to a {fmt_count(cfg.base)}-msg session, p{q}",
                "ms",
                figures.pop(OURS),
                dict(figures),
            )
        )
    return rows


# -- row 2: concurrent writers -------------------------------------------------------------


def appends_per_second(
    handles: Sequence[Any], per_thread: int, work: Callable[[Any, int], None]
) -> float:
    """Each handle gets a thread doing ``per_thread`` appends, all started together."""
    barrier = threading.Barrier(len(handles) + 1)
    errors: list[BaseException] = []

    def worker(handle: Any) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                work(handle, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(h,), daemon=True) for h in handles]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return len(handles) * per_thread / elapsed


def concurrent_appends(ours: Ours, lc: Langchain, cfg: Config, console: Console) -> list[Row]:
    n = cfg.threads
    sessions = {OURS: [ours.create() for _ in range(n)], LANGCHAIN: [lc.create() for _ in range(n)]}
    item = {OURS: conversation(0, 1)[0], LANGCHAIN: lc.prepare(conversation(0, 1))[0]}
    work = {
        OURS: lambda sid, i: ours.append(sid, item[OURS]),
        LANGCHAIN: lambda h, i: lc.append(h, item[LANGCHAIN]),
    }
    runs = [(name, threads) for name in (OURS, LANGCHAIN) for threads in (n, 1)]
    rates: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    console.print(f"[dim]{n} threads x {cfg.per_thread} appends, and 1 thread ...[/dim]")
    with progress(console) as bar:
        task = bar.add_task("concurrent appends", total=cfg.repeats * len(runs))
        for rep in range(cfg.repeats):
            for name, threads in rotated(runs, rep):
                handles = sessions[name][:threads]
                rates[name, threads].append(appends_per_second(handles, cfg.per_thread, work[name]))
                bar.advance(task)
    many = {name: median(rates[name, n]) for name in (OURS, LANGCHAIN)}
    one = {name: median(rates[name, 1]) for name in (OURS, LANGCHAIN)}
    return [
        Row(
            "2a",
            f"{n} threads, a session each",
            "appends/s",
            many[OURS],
            {LANGCHAIN: many[LANGCHAIN]},
        ),
        Row("2b", "1 thread", "appends/s", one[OURS], {LANGCHAIN: one[LANGCHAIN]}),
        Row(
            "2c",
            f"scaling: {n} threads / 1 thread",
            "x",
            many[OURS] / one[OURS],
            {LANGCHAIN: many[LANGCHAIN] / one[LANGCHAIN]},
            Target(">= 3x", lambda v: v >= 3),
        ),
    ]


# -- row 3: ingest -------------------------------------------------------------------------


def ingest_rate(contenders: Sequence[Contender], cfg: Config, console: Console) -> list[Row]:
    items = {c.name: c.prepare(conversation(0, cfg.ingest)) for c in contenders}
    samples = Samples(cfg.repeats, cfg.slow_repeats)
    console.print(
        f"[dim]ingesting {fmt_count(cfg.ingest)} messages in one call, in turns ...[/dim]"
    )
    with progress(console) as bar, quiet_gc():
        task = bar.add_task("ingest", total=cfg.repeats * len(contenders))
        for rep in range(cfg.repeats):
            for c in rotated(contenders, rep):
                if samples.wants(c.name):
                    handle = c.create()
                    samples.add(c.name, timed(lambda c=c, h=handle: c.add(h, items[c.name]))[1])
                bar.advance(task)
    rates = {c.name: cfg.ingest / samples.median(c.name) for c in contenders}
    return [
        Row(
            "3",
            f"ingest {fmt_count(cfg.ingest)} messages in one call",
            "msg/s",
            rates.pop(OURS),
            dict(rates),
            few=samples.few(),
        )
    ]


# -- row 4: read a branch ------------------------------------------------------------------


def read_branch(contenders: Sequence[Contender], cfg: Config, console: Console) -> list[Row]:
    handles = {}
    for c in contenders:
        console.print(f"[dim]{c.name}: a {fmt_count(cfg.read)}-message branch ...[/dim]")
        handles[c.name] = c.branch(cfg.read)
    samples = Samples(cfg.repeats, cfg.slow_repeats)
    with progress(console) as bar, quiet_gc():
        task = bar.add_task("whole-branch reads", total=cfg.repeats * len(contenders))
        for rep in range(cfg.repeats):
            for c in rotated(contenders, rep):
                if samples.wants(c.name):
                    got, seconds = timed(lambda c=c: c.read(handles[c.name]))
                    if got != cfg.read:
                        raise AssertionError(f"{c.name} read {got} messages, not {cfg.read}")
                    samples.add(c.name, seconds)
                bar.advance(task)
    figures = {c.name: ms(samples.median(c.name)) for c in contenders}
    return [
        Row(
            "4",
            f"read a whole {fmt_count(cfg.read)}-message branch",
            "ms",
            figures.pop(OURS),
            dict(figures),
            few=samples.few(),
        )
    ]


# -- rows 5 and 7: long sessions: the last 10 messages, forks --------------------------------


@dataclass
class Long:
    """The growing sessions of rows 5 and 7, and how far each contender needs to grow."""

    ours: Ours
    others: list[Contender]
    handles: dict[str, Any]
    limits: dict[str, int]
    side: str  # a short session of ours for the append timings
    have: int = 0

    def grow(self, want: int, console: Console) -> None:
        growing = [c for c in (self.ours, *self.others) if want <= self.limits[c.name]]
        total = (want - self.have) * len(growing)
        with tracked(
            console, f"growing the long sessions to {fmt_count(want)} messages", total
        ) as adv:
            for c in growing:
                load(c, self.handles[c.name], self.have, want, adv)
        self.have = want


def fast_repeats(cfg: Config) -> int:
    """Repeats for millisecond operations (forks, last-10 reads): 4 x --repeats."""
    return 4 * cfg.repeats


def measure_forks(
    long: Long, adv: AgentsAdvanced, n: int, cfg: Config
) -> tuple[float, float, float | None, bool]:
    """Our fork and append, and the Advanced branch (when n <= branch_max), in turns."""
    item = conversation(0, 1)[0]
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("fork", lambda: long.ours.fork(long.handles[OURS], n)),
        ("append", lambda: long.ours.append(long.side, item)),
    ]
    if n <= cfg.branch_max:
        jobs.append(("branch", lambda: adv.fork(long.handles[ADVANCED], n)))
    samples = Samples(fast_repeats(cfg), cfg.slow_repeats)
    with quiet_gc():
        for rep in range(samples.repeats):
            for name, job in rotated(jobs, rep):
                if not samples.wants(name):
                    continue
                made, seconds = timed(job)
                samples.add(name, seconds)
                if name == "branch":
                    adv.unfork(long.handles[ADVANCED], made)  # untimed: same data every run
    branch = ms(samples.median("branch")) if "branch" in samples.seconds else None
    few = "branch" in samples.few()
    return ms(samples.median("fork")), ms(samples.median("append")), branch, few


def fork_rows(
    results: Sequence[tuple[int, float, float, float | None, bool]], cfg: Config
) -> list[Row]:
    rows = []
    for n, fork, append, branch, few in results:
        skipped = f"not run (> {fmt_count(cfg.branch_max)})"
        peer: dict[str, float | str] = {ADVANCED: branch if branch is not None else skipped}
        rows.append(
            Row(
                "7",
                f"fork at {fmt_count(n)} messages (one append: {fmt_value(append, 'ms')} ms)",
                "ms",
                fork,
                peer,
                Target("<= 2x append", lambda v, a=append: v <= 2 * a),
                {ADVANCED} if few else set(),
            )
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        peer = {}
        if first[3] is not None and last[3] is not None:
            peer[ADVANCED] = last[3] / first[3]
        rows.append(
            Row(
                "7",
                f"fork at {fmt_count(last[0])} / fork at {fmt_count(first[0])}",
                "x",
                last[1] / first[1],
                peer,
                Target("<= 1.5x (flat)", lambda v: v <= 1.5),
            )
        )
    return rows


def measure_tails(
    long: Long, short: dict[str, Any], lg: LangGraph, cfg: Config, console: Console
) -> list[Row]:
    """The last 10 messages of the 100-message and of the long sessions, in turns."""
    jobs: list[tuple[str, Contender, str, Any]] = []
    for c in (long.ours, *long.others):
        jobs.append((c.name, c, "short", short[c.name]))
        if cfg.big <= long.limits[c.name]:
            jobs.append((c.name, c, "long", long.handles[c.name]))
    jobs.append((LANGGRAPH, lg, "short", short[LANGGRAPH]))
    if cfg.big <= cfg.langgraph_max:
        console.print(f"[dim]{LANGGRAPH}: a {fmt_count(cfg.big)}-message thread ...[/dim]")
        thread = lg.create()
        lg.add(thread, lg.prepare(conversation(0, cfg.big)))
        jobs.append((LANGGRAPH, lg, "long", thread))
    samples = Samples(fast_repeats(cfg), cfg.slow_repeats)
    with quiet_gc():
        for rep in range(samples.repeats):
            for name, c, which, handle in rotated(jobs, rep):
                key = f"{name}/{which}"
                if not samples.wants(key):
                    continue
                got, seconds = timed(lambda c=c, h=handle: c.tail(h, 10))
                if got != 10:
                    raise AssertionError(f"{key}: last 10 gave {got} messages")
                samples.add(key, seconds)
    figure = {k: ms(samples.median(k)) for k in samples.seconds}
    few = {k.split("/")[0] for k in samples.few()}
    names = [c.name for c in (long.ours, *long.others, lg)]
    limit = {**long.limits, LANGGRAPH: cfg.langgraph_max}

    def row(key: str, measure: str, which: str) -> Row:
        peers: dict[str, float | str] = {}
        for name in names[1:]:
            peers[name] = figure.get(f"{name}/{which}", f"not run (> {fmt_count(limit[name])})")
        return Row(key, measure, "ms", figure[f"{OURS}/{which}"], peers, few=few)

    ratios: dict[str, float | str] = {}
    for name in names[1:]:
        if f"{name}/long" in figure:
            ratios[name] = figure[f"{name}/long"] / figure[f"{name}/short"]
    return [
        row("5a", "last 10 messages of a 100-msg session", "short"),
        row("5b", f"last 10 messages of a {fmt_count(cfg.big)}-msg session", "long"),
        Row(
            "5c",
            f"last 10: {fmt_count(cfg.big)} / 100",
            "x",
            figure[f"{OURS}/long"] / figure[f"{OURS}/short"],
            ratios,
            Target("<= 1.5x", lambda v: v <= 1.5),
        ),
    ]


def long_sessions(
    ours: Ours,
    sqlite: AgentsSqlite,
    adv: AgentsAdvanced,
    lg: LangGraph,
    cfg: Config,
    console: Console,
) -> list[Row]:
    """Rows 5 and 7: grow one long session per contender through the sizes, measuring."""
    forks = sorted(cfg.fork_sizes) if "7" in cfg.rows else []
    tails = "5" in cfg.rows
    sizes = sorted(set(forks) | ({cfg.big} if tails else set()))
    big = cfg.big if tails else 0
    branched = max([n for n in forks if n <= cfg.branch_max], default=0)
    others: list[Contender] = [sqlite, adv]
    limits = {OURS: sizes[-1], SQLITE: big, ADVANCED: max(big, branched)}
    long = Long(ours, others, {c.name: c.create() for c in (ours, *others)}, limits, ours.create())
    ours.add(long.side, conversation(0, 10))
    short = {}
    for c in (ours, sqlite, adv, lg):
        short[c.name] = c.create()
        c.add(short[c.name], c.prepare(conversation(0, 100)))
    rows: list[Row] = []
    results = []
    for n in sizes:
        long.grow(n, console)
        if n in forks:
            console.print(f"[dim]forks at {fmt_count(n)} messages ...[/dim]")
            results.append((n, *measure_forks(long, adv, n, cfg)))
        if n == big:
            console.print(f"[dim]last 10 messages at 100 and {fmt_count(n)} messages ...[/dim]")
            rows += measure_tails(long, short, lg, cfg, console)
    return rows + fork_rows(results, cfg)


# -- row 6: opening a store on a big tenant ------------------------------------------------

# Run in a fresh interpreter: RSS after the imports, then open + first get_session.
_OPEN_PROBE = """
import json, os, resource, sys, time
from session_graph import SessionStore, Settings

def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

tenant, sid = sys.argv[1], sys.argv[2]
before = rss()
start = time.perf_counter()
with SessionStore.open(Settings(tenant=tenant)) as store:
    store.get_session(sid)
    seconds = time.perf_counter() - start
    after = rss()
print(json.dumps({"seconds": seconds, "before": before, "after": after}))
"""


def probe_env(info: ConnectionInfo) -> dict[str, str]:
    """The child's environment: this server, and this interpreter's session_graph first."""
    import session_graph

    env = dict(os.environ)
    env.update(
        SESSION_GRAPH_NEO4J_URI=info.uri,
        SESSION_GRAPH_NEO4J_USER=info.user,
        SESSION_GRAPH_NEO4J_DATABASE=info.database,
    )
    env.pop("SESSION_GRAPH_NEO4J_PASSWORD", None)
    if info.password is not None:
        env["SESSION_GRAPH_NEO4J_PASSWORD"] = info.password
    package_root = str(Path(session_graph.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def probe_open(env: dict[str, str], tenant: str, sid: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_PROBE, tenant, sid],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"open probe failed ({done.returncode}): {done.stderr[-2000:]}")
    return cast(dict[str, float], json.loads(done.stdout.strip().splitlines()[-1]))


def fill_tenant(
    store: SessionStore, messages: int, sessions: int, batch: int, console: Console
) -> str:
    """``sessions`` sessions of ``messages // sessions`` messages each; returns one id."""
    per = messages // sessions
    label = f"a tenant of {fmt_count(per * sessions)} messages / {fmt_count(sessions)} sessions"
    ids = []
    with tracked(console, label, per * sessions) as advance:
        for _ in range(sessions):
            sid = store.create_session(title="bench").id
            for start in range(0, per, batch):
                store.append(sid, conversation(start, min(batch, per - start)))
            ids.append(sid)
            advance(per)
    return random.Random(SEED).choice(ids)


def open_rows(info: ConnectionInfo, cfg: Config, console: Console) -> list[Row]:
    messages, sessions = cfg.open_size
    size = f"{fmt_count(messages // sessions * sessions)} msgs / {fmt_count(sessions)} sessions"
    with (
        open_bench_store("peers", info=info, console=console) as empty,
        open_bench_store("peers", info=info, console=console) as big,
    ):
        tenants = {"empty": (empty.tenant, empty.create_session(title="empty").id)}
        tenants["big"] = (big.tenant, fill_tenant(big, messages, sessions, cfg.batch, console))
        env = probe_env(info)
        results: dict[str, list[dict[str, float]]] = {"empty": [], "big": []}
        with progress(console) as bar:
            task = bar.add_task("open in a fresh process", total=cfg.repeats * 2)
            for rep in range(cfg.repeats):
                for which in rotated(["empty", "big"], rep):
                    results[which].append(probe_open(env, *tenants[which]))
                    bar.advance(task)
    seconds = {w: median([r["seconds"] for r in rs]) for w, rs in results.items()}
    rss = {w: median([r["after"] for r in rs]) for w, rs in results.items()}
    return [
        Row("6a", "open + first get_session, empty tenant", "s", seconds["empty"]),
        Row(
            "6b",
            f"open + first get_session, {size}",
            "s",
            seconds["big"],
            target=Target("<= 0.5 s", lambda v: v <= 0.5),
        ),
        Row(
            "6c",
            f"RSS beyond the empty tenant's, {size}",
            "MB",
            (rss["big"] - rss["empty"]) / 1e6,
            target=Target("<= 100 MB", lambda v: v <= 100),
        ),
    ]


# -- row 8: lineage ------------------------------------------------------------------------


def grow_tree(store: SessionStore, size: int, rng: random.Random, console: Console) -> list[str]:
    """Roots with a few messages, then random forks (``explore``), half at recent sessions."""
    ids: list[str] = []
    length: dict[str, int] = {}
    with tracked(console, f"a fork tree of {fmt_count(size)} sessions", size) as advance:
        for i in range(max(1, size // 1000)):
            sid = store.create_session(title=f"root {i}").id
            length[sid] = rng.randint(3, 8)
            store.append(sid, conversation(0, length[sid]))
            ids.append(sid)
            advance(1)
        while len(ids) < size:
            parent = rng.choice(ids) if rng.random() < 0.5 else rng.choice(ids[-30:])
            at = rng.randrange(length[parent])
            count = min(rng.randint(1, 4), size - len(ids))
            forks = store.explore(parent, at, [f"strategy-{k}" for k in range(count)])
            for fork in forks:
                ids.append(fork.id)
                length[fork.id] = at + 1
            grown = rng.choice(forks).id
            extra = rng.randint(1, 4)
            store.append(grown, conversation(length[grown], extra))
            length[grown] += extra
            advance(len(forks))
    return ids


@dataclass(frozen=True)
class Question:
    name: str
    saved: str  # the saved query's name
    ask: Callable[[SessionStore, str], list[str]]
    normalize: Callable[[list[str]], list[str]]


QUESTIONS = (
    Question("ancestors", "session_ancestors", SessionStore.ancestors, list),
    Question("siblings", "session_siblings", SessionStore.siblings, sorted),
    Question("descendants", "session_subtree", SessionStore.descendants, sorted),
)


def cypher_ids(driver: Any, database: str, text: str, tenant: str, sid: str) -> list[str]:
    from neo4j import RoutingControl

    records, _, _ = driver.execute_query(
        cast(LiteralString, text),
        {"tenant": tenant, "id": sid},
        database_=database,
        routing_=RoutingControl.READ,
    )
    return [str(r["id"]) for r in records]


def lineage_rows(
    store: SessionStore, driver: Any, database: str, cfg: Config, console: Console
) -> list[Row]:
    rng = random.Random(SEED)
    ids = grow_tree(store, cfg.tree, rng, console)
    picked = rng.sample(ids, min(cfg.calls, len(ids)))
    rows = []
    console.print(
        f"[dim]lineage: {len(picked)} calls x {cfg.repeats} per question and way ...[/dim]"
    )
    for k, q in enumerate(QUESTIONS):
        text = queries.cypher(q.saved)
        ways: list[tuple[str, Callable[[str], list[str]]]] = [
            (OURS, lambda sid, q=q: q.ask(store, sid)),
            (CYPHER, lambda sid, t=text: cypher_ids(driver, database, t, store.tenant, sid)),
        ]
        seconds: dict[str, list[float]] = {OURS: [], CYPHER: []}
        with quiet_gc():
            for rep in range(cfg.repeats):
                for n, sid in enumerate(picked):
                    answers = {}
                    for name, way in rotated(ways, rep + n):
                        answer, took = timed(lambda w=way, s=sid: w(s))
                        seconds[name].append(took)
                        answers[name] = q.normalize(answer)
                    if answers[OURS] != answers[CYPHER]:
                        raise AssertionError(f"{q.name}({sid}): {answers}")
        ours, cypher = median(seconds[OURS]) * 1e6, median(seconds[CYPHER]) * 1e6
        rows.append(
            Row(
                f"8{'abc'[k]}",
                f"{q.name} of a session, {fmt_count(len(ids))}-session tree",
                "µs",
                ours,
                {CYPHER: cypher},
                Target(">= 20x faster", lambda v, c=cypher: c / v >= 20),
            )
        )
    return rows


# -- the run -------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """A plain ``kill`` unwinds like Ctrl-C, so every tenant and peer session is deleted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def server(settings: Settings, console: Console) -> tuple[ConnectionInfo, LocalNeo4j | None]:
    """``SESSION_GRAPH_NEO4J_URI`` when set, else the local ``bench`` instance (started)."""
    if settings.neo4j_uri:
        return resolve_connection(settings), None
    local = LocalNeo4j(settings, BENCH_INSTANCE, console=console)
    return local.start(), local


@dataclass(frozen=True)
class Machine:
    """Where the figures come from (for BENCHMARKS.md)."""

    date: str
    cores: int
    ram_gb: float
    python: str
    system: str
    neo4j: str
    server: str
    packages: str
    revision: str
    load: str
    mirror_max_lag: float


def ram_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def neo4j_version(driver: Any, database: str) -> str:
    records, _, _ = driver.execute_query(
        "CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition",
        database_=database,
    )
    return f"{records[0]['v']} {records[0]['edition']}" if records else "unknown"


def git_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    rev = git("rev-parse", "--short", "HEAD")
    if not rev:
        return "unknown"
    dirty = git("status", "--porcelain", "--", "session_graph", "cypher")
    return rev + (" + uncommitted changes to session_graph/cypher" if dirty else "")


def package_versions() -> str:
    names = ["session-graph", "neo4j", *PEER_PACKAGES.values()]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def describe(driver: Any, info: ConnectionInfo) -> Machine:
    host = info.uri.split("://", 1)[-1].split(":")[0]
    local = host in ("127.0.0.1", "localhost", "::1", "[::1]")
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    return Machine(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 0,
        ram_gb=ram_bytes() / 2**30,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        system=f"{platform.system()} {platform.release()}",
        neo4j=neo4j_version(driver, info.database),
        server="on this machine (loopback)" if local else "remote",
        packages=package_versions(),
        revision=git_revision(),
        load=load,
        mirror_max_lag=Settings().mirror_max_lag,
    )


def report(rows: Sequence[Row], machine: Machine, cfg: Config, command: str, minutes: float) -> str:
    end_load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    return f"""# Benchmarks: session_graph beside its peers

Produced by `{command}` on {machine.date} ({minutes:.1f} min), revision {machine.revision}.
What each row measures, and how: `benchmarks/README.md` ("peers.py").

- **Machine:** {machine.cores} cores, {machine.ram_gb:.1f} GiB RAM, {machine.python}, \
{machine.system}; load average {machine.load} at the start, {end_load} at the end.
- **Neo4j:** {machine.neo4j}, {machine.server}.
- **Packages:** {machine.packages}.
- **session_graph settings:** from the environment; `mirror_max_lag` {machine.mirror_max_lag:g} s.
- **Repeats:** {cfg.repeats} ({4 * cfg.repeats} for rows 5 and 7); a contender whose first \
run takes over {SLOW_SECONDS:.0f} s runs {cfg.slow_repeats} time(s) (marked *).

{markdown_table(rows)}

Figures are medians of the repeats, in one run, with the contenders taking turns in a rotating
order. In parentheses: session_graph / peer. For ms and µs below 1x means session_graph is
faster; for /s above 1x does. Compare ratios within this run, not milliseconds across machines.
"""


@dataclass
class Contenders:
    """The peers of one run, with their files and connections."""

    lc: Langchain
    sqlite: AgentsSqlite
    adv: AgentsAdvanced
    lg: LangGraph


def open_peers(stack: contextlib.ExitStack, info: ConnectionInfo, driver: Any) -> Contenders:
    peers = load_peers()
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-peers-")))
    runner = AsyncRunner()
    stack.callback(runner.close)
    found = Contenders(
        Langchain(peers, info, driver),
        AgentsSqlite(peers, tmp / "agents.db", runner),
        AgentsAdvanced(peers, tmp / "advanced.db", runner),
        LangGraph(peers, tmp / "langgraph.db"),
    )
    for c in (found.lg, found.adv, found.sqlite, found.lc):
        stack.callback(c.close)  # runs in reverse: langchain-neo4j's nodes go first
    return found


def short_rows(info: ConnectionInfo, peers: Contenders, cfg: Config, console: Console) -> list[Row]:
    """Rows 1-4, in one tenant; langchain-neo4j's sessions are deleted right after."""
    rows: list[Row] = []
    with open_bench_store("peers", info=info, console=console) as store:
        ours = Ours(store, cfg.batch)
        everyone = [ours, peers.lc, peers.sqlite, peers.adv, peers.lg]
        if "1" in cfg.rows:
            with phase(console, "row 1: one append"):
                rows += append_latency(everyone, cfg, console)
        if "2" in cfg.rows:
            with phase(console, "row 2: concurrent appends"):
                rows += concurrent_appends(ours, peers.lc, cfg, console)
        if "3" in cfg.rows:
            with phase(console, "row 3: ingest"):
                rows += ingest_rate(everyone, cfg, console)
        if "4" in cfg.rows:
            with phase(console, "row 4: read a branch"):
                rows += read_branch(everyone, cfg, console)
    console.print(f"[dim]deleting {len(peers.lc.ids)} {LANGCHAIN} sessions ...[/dim]")
    peers.lc.close()  # its lookups scan every :Session node: leave none behind for later rows
    return rows


def measure_all(info: ConnectionInfo, driver: Any, cfg: Config, console: Console) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        peers = open_peers(stack, info, driver)
        if set("1234") & set(cfg.rows):
            rows += short_rows(info, peers, cfg, console)
        if "8" in cfg.rows:
            with (
                phase(console, "row 8: lineage"),
                open_bench_store("peers", info=info, console=console) as store,
            ):
                rows += lineage_rows(store, driver, info.database, cfg, console)
        if set("57") & set(cfg.rows):
            with (
                phase(console, "rows 5 and 7: long sessions"),
                open_bench_store("peers", info=info, console=console) as store,
            ):
                ours = Ours(store, cfg.batch)
                rows += long_sessions(ours, peers.sqlite, peers.adv, peers.lg, cfg, console)
        if "6" in cfg.rows:
            with phase(console, "row 6: open"):
                rows += open_rows(info, cfg, console)
    return sorted(rows, key=lambda r: r.key[0])


def run(
    cfg: Config = FULL,
    *,
    info: ConnectionInfo | None = None,
    stop: bool = False,
    console: Console | None = None,
    out: Path | None = ROOT / "BENCHMARKS.md",
    command: str = "python -m benchmarks.peers",
) -> Table:
    """Measure every row in ``cfg.rows``, print the table and write ``out``; returns the table."""
    from neo4j import GraphDatabase

    console = console or make_console()
    load_peers()  # fail before any work when the bench extra is missing
    started = time.perf_counter()
    local: LocalNeo4j | None = None
    with sigterm_exits():
        if info is None:
            info, local = server(Settings(), console)
        driver = GraphDatabase.driver(info.uri, auth=info.auth, notifications_min_severity="OFF")
        try:
            machine = describe(driver, info)
            rows = measure_all(info, driver, cfg, console)
        finally:
            driver.close()
            if stop and local is not None:
                local.stop()
    table = build_table(rows, machine_line())
    console.print(table)
    if out is not None:
        minutes = (time.perf_counter() - started) / 60
        out.write_text(report(rows, machine, cfg, command, minutes), encoding="utf-8")
        console.print(f"[dim]wrote {out}[/dim]")
    return table


# -- the command line ----------------------------------------------------------------------


def parse_pair(text: str) -> tuple[int, int]:
    """``"1M/10k"`` -> ``(1000000, 10000)``."""
    messages, _, sessions = text.partition("/")
    if not sessions:
        raise argparse.ArgumentTypeError(f"expected MESSAGES/SESSIONS, got {text!r}")
    return parse_count(messages), parse_count(sessions)


def parse_rows(text: str) -> tuple[str, ...]:
    rows = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}; rows are {', '.join(ROWS)}")
    return rows


# flag, type, Config field, help (full / quick defaults are appended)
OPTIONS: list[tuple[str, Callable[[str], Any], str, str]] = [
    ("--repeats", int, "repeats", "repeats of each measurement (rows 5, 7: 4x)"),
    ("--slow-repeats", int, "slow_repeats", f"runs of a measurement taking > {SLOW_SECONDS:g} s"),
    ("--appends", parse_count, "appends", "row 1: timed single appends per contender"),
    ("--base", parse_count, "base", "row 1: messages in the session appended to"),
    ("--threads", int, "threads", "row 2: writer threads"),
    ("--per-thread", parse_count, "per_thread", "row 2: appends per thread"),
    ("--ingest", parse_count, "ingest", "row 3: messages ingested in one call"),
    ("--read", parse_count, "read", "row 4: messages in the branch read"),
    ("--big", parse_count, "big", "row 5: messages in the long session"),
    ("--open-size", parse_pair, "open_size", "row 6: MESSAGES/SESSIONS of the opened tenant"),
    ("--fork-sizes", lambda t: tuple(parse_counts(t)), "fork_sizes", "row 7: history lengths"),
    ("--tree", parse_count, "tree", "row 8: sessions in the fork tree"),
    ("--calls", parse_count, "calls", "row 8: sessions asked about"),
    ("--batch", parse_count, "batch", "messages per append when loading session_graph"),
    ("--langgraph-max", parse_count, "langgraph_max", "row 5: largest LangGraph thread"),
    (
        "--branch-max",
        parse_count,
        "branch_max",
        "row 7: largest N AdvancedSQLiteSession branches at",
    ),
    ("--rows", parse_rows, "rows", "rows to run, e.g. 1,3,8"),
]


def show(name: str, value: Any) -> str:
    """A default as the command line spells it."""
    if name == "rows":
        return ",".join(value)
    if isinstance(value, tuple):
        return ("/" if name == "open_size" else ",").join(fmt_count(v) for v in value)
    return fmt_count(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: the whole run in < 2 min")
    for flag, kind, name, text in OPTIONS:
        full, quick = show(name, getattr(FULL, name)), show(name, getattr(QUICK, name))
        default = full if full == quick else f"{full}; --quick: {quick}"
        p.add_argument(flag, type=kind, dest=name, help=f"{text} (default {default})")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md", help="report file")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--profile", type=Path, help="write a pyinstrument HTML profile of the run")
    add_server_args(p)
    return p


def config_from(args: argparse.Namespace) -> Config:
    chosen = {name: getattr(args, name) for _, _, name, _ in OPTIONS}
    return replace(
        QUICK if args.quick else FULL, **{k: v for k, v in chosen.items() if v is not None}
    )


def main(argv: Sequence[str] | None = None) -> Table:
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(given)
    kwargs: dict[str, Any] = {
        "stop": args.stop,
        "out": None if args.no_write else args.out,
        "command": shlex.join(["python", "-m", "benchmarks.peers", *given]),
    }
    try:
        if args.profile is None:
            return run(config_from(args), **kwargs)
        from pyinstrument import Profiler

        with Profiler() as profiler:
            table = run(config_from(args), **kwargs)
        args.profile.write_text(profiler.output_html(), encoding="utf-8")
        return table
    except MissingPeersError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
