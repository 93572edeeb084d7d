"""Memory of the lineage mirror vs the peer "one networkx node per message".

For each M/S in ``--sizes`` (M messages across S sessions) a synthetic tenant is generated:
S sessions forming random fork trees (each fork at a random position of its parent's
history), each session owning about M/S messages. No server is needed: the trees are built
as ``TreeRecord`` objects, as a load from Neo4j would hand them over.

* ours: ``Mirror.put_tree`` for every tree. The mirror keeps sessions and fork edges only
  (histories are read from Neo4j by index), so its size follows sessions, not messages.
* peer: an ``nx.DiGraph`` with the same sessions (and fork edges) plus one node per message
  id with PREVIOUS edges (message -> predecessor) and a HEAD edge per session.

Memory is what each keeps after the build, as tracemalloc sees it (the generated input rows
are freed as they are consumed, so they are not counted); the build time is measured in a
separate run without tracing (time.perf_counter). Generation is seeded: both get the same data.

Run: ``python -m benchmarks.mirror_memory --sizes 100k/1k,1M/10k``
"""

from __future__ import annotations

import argparse
import gc
import random
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import networkx as nx
from rich.console import Console
from rich.table import Table

from benchmarks.common import (
    fmt_bytes,
    fmt_count,
    fmt_ratio,
    machine_line,
    make_console,
    parse_count,
    progress,
    timed,
)
from session_graph import lineage
from session_graph.mirror import Mirror
from session_graph.records import TreeNode, TreeRecord

MsgRef = tuple[str, int]

DEFAULT_SIZES = [(100_000, 1_000), (1_000_000, 10_000)]
SEED = 20_240_601
_MESSAGE_SALT = 0x5BD1E9955BD1E9955BD1E9955BD1E995  # message ids differ from session ids


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``"100k/1k,1M/10k"`` -> ``[(100000, 1000), (1000000, 10000)]``."""
    pairs = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            messages, sessions = part.split("/")
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected MESSAGES/SESSIONS, got {part!r}") from None
        m, s = parse_count(messages), parse_count(sessions)
        if s > m:
            raise argparse.ArgumentTypeError(f"{part!r}: more sessions than messages")
        pairs.append((m, s))
    return pairs


# -- synthetic data ------------------------------------------------------------------------


@dataclass
class Plan:
    """The shape of a synthetic tenant: who forks whom where, and how many own messages."""

    ids: list[str]
    parent: list[int]  # -1 for a root
    fork_pos: list[int]  # position in the parent's history the fork starts after; -1: none
    own: list[int]  # own message count
    seed: int

    def length(self, s: int) -> int:
        return self.fork_pos[s] + 1 + self.own[s]

    def ref_at(self, s: int, position: int) -> MsgRef:
        """The (owner, idx) of the message at ``position`` of session ``s``'s history."""
        while position <= self.fork_pos[s]:
            s = self.parent[s]
        return (self.ids[s], position - self.fork_pos[s] - 1)


def make_plan(messages: int, sessions: int, seed: int = SEED) -> Plan:
    rng = random.Random(seed)
    roots = max(1, sessions // 1000)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(sessions)]
    base, extra = divmod(messages, sessions)
    own = [base + (1 if i < extra else 0) for i in range(sessions)]
    parent, fork_pos = [-1] * sessions, [-1] * sessions
    plan = Plan(ids, parent, fork_pos, own, seed)
    for s in range(roots, sessions):
        # half the forks pick a recent session, so trees also grow deep
        p = rng.randrange(s) if rng.random() < 0.5 else rng.randrange(max(0, s - 30), s)
        parent[s] = p
        fork_pos[s] = rng.randrange(plan.length(p))
    return plan


def trees(plan: Plan) -> list[TreeRecord]:
    """The plan's fork trees, as the mirror loads them."""
    start = 1_735_689_600_000  # 2025-01-01 in epoch ms
    root_of: list[int] = []
    by_root: dict[int, list[TreeNode]] = {}
    for s, sid in enumerate(plan.ids):
        p = plan.parent[s]
        root_of.append(s if p < 0 else root_of[p])
        node = TreeNode(sid, None if p < 0 else plan.ids[p], start + s, "active",
                        None if p < 0 else plan.fork_pos[s])  # fmt: skip
        by_root.setdefault(root_of[s], []).append(node)
    return [TreeRecord(plan.ids[r], 0, nodes) for r, nodes in by_root.items()]


def head_ref(plan: Plan, s: int) -> MsgRef | None:
    return plan.ref_at(s, plan.length(s) - 1) if plan.length(s) else None


def message_id(plan: Plan, ref: MsgRef) -> str:
    """A deterministic message id for (owner, idx): the same in every generation."""
    owner, idx = ref
    base = uuid.UUID(owner).int ^ _MESSAGE_SALT
    return str(uuid.UUID(int=(base + idx) & ((1 << 128) - 1), version=4))


def topo_rows(plan: Plan) -> Iterator[tuple[str, MsgRef | None]]:
    """Every message id with its predecessor's (owner, idx)."""
    for s, sid in enumerate(plan.ids):
        for idx in range(plan.own[s]):
            if idx > 0:
                prev: MsgRef | None = (sid, idx - 1)
            elif plan.fork_pos[s] >= 0:
                prev = plan.ref_at(plan.parent[s], plan.fork_pos[s])
            else:
                prev = None
            yield message_id(plan, (sid, idx)), prev


# -- the two structures --------------------------------------------------------------------


def build_mirror(plan: Plan) -> Mirror:
    mirror = Mirror(max_sessions=len(plan.ids) + 1)
    for tree in trees(plan):
        mirror.put_tree(tree, 0.0)
    return mirror


def build_peer(plan: Plan) -> nx.DiGraph:
    """One node per session and per message; fork, PREVIOUS and HEAD edges."""
    graph = nx.DiGraph()
    for s, sid in enumerate(plan.ids):
        graph.add_node(sid)
        if plan.parent[s] >= 0:
            graph.add_edge(plan.ids[plan.parent[s]], sid, kind="FORKED_FROM")
    for mid, prev in topo_rows(plan):
        graph.add_node(mid)
        if prev is not None:
            graph.add_edge(mid, message_id(plan, prev))
    for s, sid in enumerate(plan.ids):
        head = head_ref(plan, s)
        if head is not None:
            graph.add_edge(sid, message_id(plan, head))
    return graph


def traced_bytes(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes the built structure keeps (tracemalloc, after a collection), and the structure."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, built
    finally:
        tracemalloc.stop()


@dataclass
class MemoryRow:
    messages: int
    sessions: int
    ours_bytes: int
    ours_seconds: float
    peer_bytes: int | None
    peer_seconds: float | None


def measure(messages: int, sessions: int, peer: bool, console: Console) -> MemoryRow:
    plan = make_plan(messages, sessions)
    label = f"{fmt_count(messages)}/{fmt_count(sessions)}"
    steps = 4 if peer else 2
    with progress(console) as bar:
        task = bar.add_task(f"building {label}", total=steps)
        console.print(f"[dim]building {label}: mirror ...[/dim]")
        ours_bytes, mirror = traced_bytes(lambda: build_mirror(plan))
        assert isinstance(mirror, Mirror)
        assert len(mirror) == sessions
        assert lineage.root(mirror.graph, plan.ids[-1]) in mirror
        del mirror
        bar.advance(task)
        ours_seconds = timed(lambda: build_mirror(plan))[1]
        bar.advance(task)
        peer_bytes = peer_seconds = None
        if peer:
            console.print(f"[dim]building {label}: one networkx node per message ...[/dim]")
            peer_bytes, graph = traced_bytes(lambda: build_peer(plan))
            assert isinstance(graph, nx.DiGraph)
            assert graph.number_of_nodes() == messages + sessions
            del graph
            bar.advance(task)
            peer_seconds = timed(lambda: build_peer(plan))[1]
            bar.advance(task)
    gc.collect()
    return MemoryRow(messages, sessions, ours_bytes, ours_seconds, peer_bytes, peer_seconds)


def build_table(rows: Sequence[MemoryRow], note: str) -> Table:
    table = Table(title="Mirror memory vs one networkx node per message", caption=note)
    table.add_column("messages / sessions", justify="right")
    table.add_column("ours total", justify="right")
    table.add_column("ours B/msg", justify="right")
    table.add_column("ours B/session", justify="right")
    table.add_column("ours build s", justify="right")
    table.add_column("peer total", justify="right")
    table.add_column("peer B/msg", justify="right")
    table.add_column("peer build s", justify="right")
    table.add_column("ratio peer/ours", justify="right")
    for r in rows:
        per = r.ours_bytes / r.messages
        peer_cells = ["skipped", "-", "-", "-"]
        if r.peer_bytes is not None and r.peer_seconds is not None:
            peer_cells = [
                fmt_bytes(r.peer_bytes),
                f"{r.peer_bytes / r.messages:,.0f}",
                f"{r.peer_seconds:.2f}",
                fmt_ratio(r.peer_bytes / r.ours_bytes),
            ]
        table.add_row(
            f"{fmt_count(r.messages)} / {fmt_count(r.sessions)}",
            fmt_bytes(r.ours_bytes),
            f"{per:,.1f}",
            f"{r.ours_bytes / r.sessions:,.0f}",
            f"{r.ours_seconds:.2f}",
            *peer_cells,
        )
    return table


def run(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    *,
    peer_max: int = 1_000_000,
    console: Console | None = None,
) -> Table:
    """Measure every size and print the table; returns it."""
    console = console or make_console()
    rows = [measure(m, s, m <= peer_max, console) for m, s in sizes]
    note = (
        "bytes kept after the build (tracemalloc), per message, session overhead included; "
        f"build time untraced; {machine_line()}"
    )
    table = build_table(rows, note)
    console.print(table)
    return table


def main(argv: Sequence[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_pairs,
        default=DEFAULT_SIZES,
        help="MESSAGES/SESSIONS pairs, e.g. 100k/1k,1M/10k (default)",
    )
    parser.add_argument(
        "--peer-max",
        type=parse_count,
        default=1_000_000,
        help="skip the networkx peer above this many messages (1M takes ~1 GB; default 1M)",
    )
    args = parser.parse_args(argv)
    return run(args.sizes, peer_max=args.peer_max)


if __name__ == "__main__":
    main()
