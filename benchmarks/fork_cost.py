"""What a fork costs, beside the naive "copy-on-fork" peer, at growing history lengths.

One session is grown to each N in ``--sizes`` (appends of ``--batch`` messages). At each N:

* ours: ``store.fork(sid, at=N//2)`` and ``store.fork(sid, at=N-1)``, ``--repeats`` times each
  (median reported), and what a fork adds in Neo4j (nodes, relationships, properties of the
  tenant before/after) and to the process (the memory the store keeps per fork as
  tracemalloc sees it: the mirror's new session node).
* copy (the peer, benchmark-only Cypher): a fork that copies the k parent messages into a new
  session, props and all, with PREVIOUS links and a HEAD, in transactions of at most
  ``COPY_TX_ROWS`` messages. Each copy is deleted again (untimed) so every run sees the same
  database. ``--copy-max`` caps the N the peer is run at.

Run: ``python -m benchmarks.fork_cost --sizes 100,10k,100k,1M``
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, LiteralString

from rich.console import Console
from rich.table import Table

from benchmarks.common import (
    Counts,
    add_repeat_arg,
    add_server_args,
    auto_commit,
    fmt_count,
    fmt_ms,
    fmt_ratio,
    in_write_tx,
    machine_line,
    make_console,
    median,
    open_bench_store,
    parse_count,
    parse_counts,
    progress,
    quiet_gc,
    tenant_counts,
    timed,
)
from session_graph import SessionStore
from session_graph.runtime import ConnectionInfo

DEFAULT_SIZES = [100, 10_000, 100_000, 1_000_000]
COPY_TX_ROWS = 10_000  # the server's default transaction memory cap refuses ~50k copies

# The peer: copy the parent's own messages idx lo..hi-1 (the benchmark's parent is a root
# session, so its history is its own messages) into the copy session, then chain them.
_COPY_MESSAGES: LiteralString = """
MATCH (m:SGMessage {tenant: $tenant, session_id: $parent})
WHERE m.idx >= $lo AND m.idx < $hi
CREATE (c:SGMessage)
SET c = m {.*, id: randomUUID(), session_id: $copy, copied_from: m.id}
"""
_LINK_COPIES: LiteralString = """
MATCH (c:SGMessage {tenant: $tenant, session_id: $copy})
WHERE c.idx >= $lo AND c.idx < $hi AND c.idx > 0
MATCH (p:SGMessage {tenant: $tenant, session_id: $copy, idx: c.idx - 1})
CREATE (c)-[:PREVIOUS]->(p)
"""
_COPY_SESSION: LiteralString = """
MATCH (s:SGSession {tenant: $tenant, id: $parent})
CREATE (c:SGSession)
SET c = s {.*, id: $copy, length: $k, next_idx: $k,
           created_at: datetime(), updated_at: datetime()}
WITH c
MATCH (h:SGMessage {tenant: $tenant, session_id: $copy, idx: $k - 1})
CREATE (c)-[:HEAD]->(h)
"""
_DROP_COPY_MESSAGES: LiteralString = """
MATCH (n:SGMessage {tenant: $tenant, session_id: $copy})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
"""
_DROP_COPY_SESSION: LiteralString = (
    "MATCH (s:SGSession {tenant: $tenant, id: $copy}) DETACH DELETE s"
)


def copy_fork(store: SessionStore, parent: str, k: int) -> str:
    """The peer's fork: copies the parent's first ``k`` messages into a new session."""
    copy = f"copy-{uuid.uuid4().hex}"
    params: dict[str, Any] = {"tenant": store.tenant, "parent": parent, "copy": copy}
    for lo in range(0, k, COPY_TX_ROWS):
        hi = min(k, lo + COPY_TX_ROWS)

        def chunk(tx: Any, lo: int = lo, hi: int = hi) -> None:
            tx.run(_COPY_MESSAGES, params, lo=lo, hi=hi).consume()
            tx.run(_LINK_COPIES, params, lo=lo, hi=hi).consume()
            if hi == k:
                tx.run(_COPY_SESSION, params, k=k).consume()

        in_write_tx(store, chunk)
    return copy


def drop_copy(store: SessionStore, copy: str) -> None:
    auto_commit(store, _DROP_COPY_MESSAGES, tenant=store.tenant, copy=copy)
    auto_commit(store, _DROP_COPY_SESSION, tenant=store.tenant, copy=copy)


def message_batch(start: int, count: int) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"message {i}"} for i in range(start, start + count)]


def grow(store: SessionStore, sid: str, have: int, want: int, batch: int, console: Console) -> int:
    """Append messages until the session holds ``want`` (shows progress)."""
    if want <= have:
        return have
    console.print(f"[dim]loading to {fmt_count(want)} messages ...[/dim]")
    with progress(console) as bar:
        task = bar.add_task(f"loading to {fmt_count(want)} messages", total=want - have)
        while have < want:
            count = min(batch, want - have)
            store.append(sid, message_batch(have, count))
            have += count
            bar.advance(task, count)
    return have


def traced_fork_bytes(store: SessionStore, sid: str, at: int) -> int:
    """Memory the mirror keeps after one more fork (tracemalloc, retained after a collect)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fork = store.fork(sid, at=at)
        del fork
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@dataclass
class ForkCost:
    n: int
    ours_mid: float
    ours_end: float
    ours_added: tuple[float, float, float]
    mirror_traced: int
    copy_mid: float | None = None
    copy_end: float | None = None
    copy_added: Counts | None = None
    copy_runs: int = 0


def measure_size(
    store: SessionStore,
    sid: str,
    n: int,
    repeats: int,
    copy_max: int,
    copy_repeats_large: int,
    console: Console,
) -> ForkCost:
    points = {"mid": n // 2, "end": n - 1}
    ours: dict[str, list[float]] = {"mid": [], "end": []}
    before = tenant_counts(store)
    with quiet_gc():
        for _ in range(repeats):
            for name, at in points.items():
                ours[name].append(timed(partial(store.fork, sid, at=at))[1])
    forks = repeats * len(points)
    added = (tenant_counts(store) - before).per(forks)
    traced = median([traced_fork_bytes(store, sid, n - 1) for _ in range(3)])
    result = ForkCost(n, median(ours["mid"]), median(ours["end"]), added, int(traced))
    if n > copy_max:
        return result
    runs = repeats if n < 1_000_000 else min(repeats, copy_repeats_large)
    copies: dict[str, list[float]] = {"mid": [], "end": []}
    with progress(console) as bar:
        task = bar.add_task(f"copy-on-fork at {fmt_count(n)}", total=runs * len(points))
        for _ in range(runs):
            for name, at in points.items():
                first = name == "end" and not copies["end"]
                counted = tenant_counts(store) if first else None
                with quiet_gc():
                    copy, seconds = timed(partial(copy_fork, store, sid, at + 1))
                copies[name].append(seconds)
                if counted is not None:
                    result.copy_added = tenant_counts(store) - counted
                drop_copy(store, copy)
                bar.advance(task)
    result.copy_mid, result.copy_end = median(copies["mid"]), median(copies["end"])
    result.copy_runs = runs
    return result


def build_table(rows: Sequence[ForkCost], copy_max: int, note: str) -> Table:
    table = Table(title="Fork cost: shared-history fork (ours) vs copy-on-fork", caption=note)
    table.add_column("N msgs", justify="right")
    table.add_column("ours fork ms\nmid / end", justify="right")
    table.add_column("ours adds per fork\nnodes / rels / props", justify="right")
    table.add_column("process keeps\nper fork (traced)", justify="right")
    table.add_column("copy fork ms\nmid / end", justify="right")
    table.add_column("copy adds (end)\nnodes / rels / props", justify="right")
    table.add_column("ratio copy/ours\nmid / end", justify="right")
    for r in rows:
        nodes, rels, props = r.ours_added
        ours_added = f"{nodes:g} / {rels:g} / {props:g}"
        mirror = f"{r.mirror_traced:,} B"
        if r.copy_end is None or r.copy_mid is None or r.copy_added is None:
            copy_ms = f"not run (> {fmt_count(copy_max)})"
            copy_added = "-"
            ratio = "-"
        else:
            runs = "" if r.copy_runs > 1 else " (1 run)"
            copy_ms = f"{fmt_ms(r.copy_mid)} / {fmt_ms(r.copy_end)}{runs}"
            c = r.copy_added
            copy_added = f"{c.nodes:,} / {c.rels:,} / {c.props:,}"
            ratio = f"{fmt_ratio(r.copy_mid / r.ours_mid)} / {fmt_ratio(r.copy_end / r.ours_end)}"
        table.add_row(
            fmt_count(r.n),
            f"{fmt_ms(r.ours_mid)} / {fmt_ms(r.ours_end)}",
            ours_added,
            mirror,
            copy_ms,
            copy_added,
            ratio,
        )
    return table


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    repeats: int = 5,
    batch: int = 10_000,
    copy_max: int = 1_000_000,
    copy_repeats_large: int = 1,
    info: ConnectionInfo | None = None,
    stop: bool = False,
    console: Console | None = None,
) -> Table:
    """Measure every size in one run and print the table; returns it."""
    console = console or make_console()
    rows: list[ForkCost] = []
    with open_bench_store("fork", info=info, stop=stop, console=console) as store:
        sid = store.create_session(title="fork-cost parent").id
        have = 0
        warm = False
        for n in sorted(sizes):
            have = grow(store, sid, have, n, batch, console)
            if not warm:  # first calls plan the queries and warm the server: not measured
                store.fork(sid, at=n - 1)
                drop_copy(store, copy_fork(store, sid, n))
                warm = True
            console.print(f"[dim]measuring N={fmt_count(n)} ...[/dim]")
            rows.append(measure_size(store, sid, n, repeats, copy_max, copy_repeats_large, console))
    large = ""
    if any(r.copy_runs and r.n >= 1_000_000 for r in rows):
        large = f" (copy at 1M: {copy_repeats_large} per point)"
    note = (
        f"median of {repeats} forks per point{large}; ours adds include the change-log entry "
        f"(a :Change node) each write makes; {machine_line()}"
    )
    table = build_table(rows, copy_max, note)
    console.print(table)
    return table


def main(argv: Sequence[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_counts,
        default=DEFAULT_SIZES,
        help="history lengths, e.g. 100,10k,100k,1M (default)",
    )
    parser.add_argument("--batch", type=parse_count, default=10_000, help="messages per append")
    parser.add_argument(
        "--copy-max",
        type=parse_count,
        default=1_000_000,
        help="largest N the copy-on-fork peer is run at (default 1M)",
    )
    parser.add_argument(
        "--copy-repeats-large",
        type=int,
        default=1,
        help="copies per point at N >= 1M (each copies up to 1M messages; default 1)",
    )
    add_repeat_arg(parser, 5)
    add_server_args(parser)
    args = parser.parse_args(argv)
    return run(
        args.sizes,
        repeats=args.repeats,
        batch=args.batch,
        copy_max=args.copy_max,
        copy_repeats_large=args.copy_repeats_large,
        stop=args.stop,
    )


if __name__ == "__main__":
    main()
