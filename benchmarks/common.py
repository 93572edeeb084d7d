"""Shared pieces of the benchmarks: sizes, timing, the server connection, tenant cleanup.

Every benchmark that needs Neo4j connects the way the store does: ``SESSION_GRAPH_NEO4J_URI``
(with ``SESSION_GRAPH_NEO4J_PASSWORD`` ...) when set, else a local server instance named
``bench`` that is started (or reused) and left running unless ``--stop`` is given. Each run
works in a tenant of its own and deletes that tenant's data at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from session_graph import SessionStore, Settings
from session_graph.runtime import ConnectionInfo, LocalNeo4j, resolve_connection

T = TypeVar("T")

BENCH_INSTANCE = "bench"
DELETE_BATCH = 10_000

_SUFFIXES = {"k": 1_000, "m": 1_000_000}


# -- sizes ---------------------------------------------------------------------------------


def parse_count(text: str) -> int:
    """``"100"``, ``"10k"``, ``"1M"``, ``"2.5k"`` -> an int."""
    raw = text.strip().lower().replace("_", "")
    factor = _SUFFIXES.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in _SUFFIXES else raw
    try:
        value = float(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a positive whole count: {text!r}")
    return int(value)


def parse_counts(text: str) -> list[int]:
    """``"100,10k,1M"`` -> ``[100, 10000, 1000000]``."""
    return [parse_count(part) for part in text.split(",") if part.strip()]


def fmt_count(n: int) -> str:
    """``10000`` -> ``"10k"``, ``1000000`` -> ``"1M"`` (exact values only)."""
    for suffix, factor in (("M", 1_000_000), ("k", 1_000)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:,.1f}x"


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:,.2f}" if ms < 10 else f"{ms:,.1f}"


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:,.1f}"


def fmt_bytes(n: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:,.1f} {unit}"
    return f"{n:,.0f} B"


# -- timing --------------------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the seconds it took (time.perf_counter)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect garbage first, then keep the cyclic collector out of the timed region."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def machine_line() -> str:
    """One line naming the machine the numbers come from."""
    cores = os.cpu_count() or 0
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load {os.getloadavg()[0]:.1f}"
    return f"{platform.python_implementation()} {platform.python_version()}, {cores} cores{load}"


# -- output --------------------------------------------------------------------------------


def make_console() -> Console:
    """The console tables go to: the terminal's width, or 150 columns when piped to a file."""
    console = Console()
    return console if console.is_terminal else Console(width=150)


def progress(console: Console) -> Progress:
    """A rich progress display for loading phases (drawn on ``console``; gone when done).

    Off when the console is not a terminal (the phases are still announced in plain lines).
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stop",
        action="store_true",
        help=f"stop the local '{BENCH_INSTANCE}' server at the end (default: leave it running)",
    )


def add_repeat_arg(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--repeats",
        type=int,
        default=default,
        help=f"times each measurement is repeated; the median is reported (default {default})",
    )


# -- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """What a tenant holds in Neo4j: nodes, relationships and properties (of both)."""

    nodes: int
    rels: int
    props: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.nodes - other.nodes, self.rels - other.rels, self.props - other.props)

    def per(self, n: int) -> tuple[float, float, float]:
        return (self.nodes / n, self.rels / n, self.props / n)


_COUNTS: LiteralString = """
MATCH (n {tenant: $t})
OPTIONAL MATCH (n)-[r]->()
WITH n, count(r) AS rels, sum(size(keys(r))) AS rel_props
RETURN count(n) AS nodes, sum(rels) AS rels, sum(size(keys(n))) + sum(rel_props) AS props
"""

_DELETE_TENANT: LiteralString = """
MATCH (n {tenant: $t})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
"""

def auto_commit(store: SessionStore, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
    """Run one statement in an auto-commit transaction (needed for ``IN TRANSACTIONS``)."""
    backend: Any = store.backend
    with backend.driver.session(database=backend.database) as session:
        return [dict(r) for r in session.run(query, params)]


def in_write_tx(store: SessionStore, work: Callable[[Any], T]) -> T:
    """Run ``work(tx)`` in one managed write transaction of the store's driver."""
    backend: Any = store.backend
    with backend.driver.session(database=backend.database) as session:
        result: T = session.execute_write(work)
        return result


def tenant_counts(store: SessionStore) -> Counts:
    """Nodes, relationships (leaving tenant nodes) and properties of the store's tenant."""
    row = auto_commit(store, _COUNTS, t=store.tenant)[0]
    return Counts(int(row["nodes"]), int(row["rels"] or 0), int(row["props"] or 0))


def delete_tenant(store: SessionStore) -> None:
    """Delete everything of the store's tenant, 10k nodes per transaction (benchmarks only)."""
    auto_commit(store, _DELETE_TENANT, t=store.tenant)


def bench_tenant(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:10]}"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def open_bench_store(
    name: str,
    *,
    info: ConnectionInfo | None = None,
    stop: bool = False,
    console: Console | None = None,
) -> Iterator[SessionStore]:
    """A store in a fresh tenant; the tenant's data is deleted on the way out.

    Args:
        name: the benchmark's name, part of the tenant name.
        info: a server to use as is (tests); otherwise ``SESSION_GRAPH_NEO4J_URI`` when set,
            else the local ``bench`` instance, started or reused.
        stop: stop the local ``bench`` instance afterwards (ignored for other servers).
    """
    settings = Settings(tenant=bench_tenant(name))
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        # a plain `kill` unwinds like Ctrl-C, so the tenant is still deleted
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    local: LocalNeo4j | None = None
    if info is None:
        if settings.neo4j_uri:
            info = resolve_connection(settings)
        else:
            local = LocalNeo4j(settings, BENCH_INSTANCE, console=console)
            info = local.start()
    store = SessionStore.connect_to(info, settings)
    if console is not None:
        console.print(f"[dim]tenant {settings.tenant} on {info.uri}[/dim]")
    try:
        store.connect(setup=True)
        yield store
    finally:
        try:
            if console is not None:
                console.print(f"[dim]deleting tenant {settings.tenant} ...[/dim]")
            delete_tenant(store)
        finally:
            store.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if stop and local is not None:
                local.stop()
