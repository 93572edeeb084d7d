"""Lineage questions answered by the mirror vs the saved Cypher queries, on a tree of forks.

A tenant is grown to each size in ``--sizes`` (number of sessions): ``max(1, S // 1000)`` roots
with a few messages each, then random forks (``store.explore`` with 1-4 strategies at a
random position of a random session -- half of the time a recent one, so trees grow deep),
each fork getting 1-4 messages in one append. Then, for ``--samples`` random sessions (and,
for the common ancestor, a random partner in the same tree), each question is timed three
ways, ``--repeats`` times, median reported:

* store: the ``SessionStore`` method (``store.ancestors(...)`` ...). These call
  ``store._known``, which checks the change-log seq on the server first: one round trip.
  ``store.common_ancestor`` makes two such checks and fetches the message.
* mirror fn: the pure function on the in-process mirror (``lineage.ancestors(graph, sid)``),
  no server. (Histories and common ancestors are read from Neo4j by the store, not from the
  mirror: ``benchmarks/peers.py`` measures those.)
* cypher: the saved query through ``store.backend.run_saved`` (one read transaction).

The script asserts that all three give the same answers.

Run: ``python -m benchmarks.lineage --sizes 10k --samples 200``
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import (
    add_repeat_arg,
    add_server_args,
    fmt_count,
    fmt_ratio,
    fmt_us,
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
from session_graph import SessionStore, lineage
from session_graph.runtime import ConnectionInfo

DEFAULT_SIZES = [10_000]
SEED = 7
METHODS = ("store", "mirror fn", "cypher")

Args = tuple[str, ...]
Ask = Callable[[SessionStore, Args], Any]


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["id"]) for r in rows]


def _first_id(rows: list[dict[str, Any]]) -> str | None:
    return str(rows[0]["id"]) if rows else None


@dataclass(frozen=True)
class Question:
    """One lineage question asked three ways, and how to compare the answers."""

    name: str
    store: Ask
    mirror: Ask
    cypher: Ask
    normalize: Callable[[Any], Any] = lambda x: x
    pairs: bool = False  # asked about (session, another session of its tree)
    of_root: bool = False  # asked about the root of the sampled session's tree


QUESTIONS = [
    Question(
        "ancestors",
        lambda st, a: st.ancestors(a[0]),
        lambda st, a: lineage.ancestors(st.mirror.graph, a[0]),
        lambda st, a: _ids(st.backend.run_saved("session_ancestors", id=a[0])),
    ),
    Question(
        "descendants (subtree)",
        lambda st, a: st.descendants(a[0]),
        lambda st, a: lineage.descendants(st.mirror.graph, a[0]),
        lambda st, a: _ids(st.backend.run_saved("session_subtree", id=a[0])),
        normalize=sorted,
    ),
    Question(
        "descendants of a root",
        lambda st, a: st.descendants(a[0]),
        lambda st, a: lineage.descendants(st.mirror.graph, a[0]),
        lambda st, a: _ids(st.backend.run_saved("session_subtree", id=a[0])),
        normalize=sorted,
        of_root=True,
    ),
    Question(
        "siblings",
        lambda st, a: st.siblings(a[0]),
        lambda st, a: lineage.siblings(st.mirror.graph, a[0]),
        lambda st, a: _ids(st.backend.run_saved("session_siblings", id=a[0])),
        normalize=sorted,
    ),
]


@dataclass
class Tree:
    """The sessions made so far: creation order and the root of each."""

    ids: list[str] = field(default_factory=list)
    root_of: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)

    def add(self, sid: str, root: str) -> None:
        self.ids.append(sid)
        self.root_of[sid] = root
        self.members.setdefault(root, []).append(sid)


def messages(rng: random.Random, count: int) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"turn {rng.randrange(10**6)}"} for i in range(count)]


def grow_tree(
    store: SessionStore, tree: Tree, sessions: int, rng: random.Random, console: Console
) -> None:
    """Add roots and forks until the tenant holds ``sessions`` sessions (shows progress)."""
    console.print(f"[dim]growing the fork tree to {fmt_count(sessions)} sessions ...[/dim]")
    roots = max(1, sessions // 1000)
    with progress(console) as bar:
        task = bar.add_task(
            f"forks to {fmt_count(sessions)} sessions", total=sessions, completed=len(tree.ids)
        )
        while len(tree.members) < roots and len(tree.ids) < sessions:
            sid = store.create_session(title=f"root {len(tree.members)}").id
            store.append(sid, messages(rng, rng.randint(3, 8)))
            tree.add(sid, sid)
            bar.advance(task)
        while len(tree.ids) < sessions:
            recent = tree.ids[-30:]
            parent = rng.choice(tree.ids) if rng.random() < 0.5 else rng.choice(recent)
            at = rng.randrange(store.message_count(parent))
            count = min(rng.randint(1, 4), sessions - len(tree.ids))
            forks = store.explore(parent, at, [f"strategy-{i}" for i in range(count)])
            for fork in forks:
                store.append(fork.id, messages(rng, rng.randint(1, 4)))
                tree.add(fork.id, tree.root_of[parent])
            bar.advance(task, len(forks))


@dataclass
class Timing:
    question: str
    seconds: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METHODS})
    checked: int = 0
    sizes: list[int] = field(default_factory=list)


def check(question: Question, args: Args, answers: dict[str, Any]) -> None:
    """All three ways must give the same answer."""
    first = answers[METHODS[0]]
    if any(answers[m] != first for m in METHODS[1:]):
        got = ", ".join(f"{m} {answers[m]!r}" for m in METHODS)
        raise AssertionError(f"{question.name}{args}: {got}")


def ask_all(
    store: SessionStore,
    tree: Tree,
    samples: int,
    repeats: int,
    rng: random.Random,
    console: Console,
) -> list[Timing]:
    picked = rng.sample(tree.ids, min(samples, len(tree.ids)))
    partners = [rng.choice(tree.members[tree.root_of[s]]) for s in picked]
    timings = [Timing(q.name) for q in QUESTIONS]
    console.print(f"[dim]asking {len(picked)} sessions x {len(QUESTIONS)} questions ...[/dim]")
    with progress(console) as bar:
        task = bar.add_task("questions", total=repeats * len(picked))
        for rep in range(repeats):
            for n, (sid, partner) in enumerate(zip(picked, partners, strict=True)):
                # the order of the three ways rotates, so none always runs first
                order = [(n + rep + k) % len(METHODS) for k in range(len(METHODS))]
                with quiet_gc():
                    store.refresh()  # untimed: the first round trip after a collection is slow
                    for question, timing in zip(QUESTIONS, timings, strict=True):
                        args: Args = (sid,)
                        if question.pairs:
                            args = (sid, partner)
                        elif question.of_root:
                            args = (tree.root_of[sid],)
                        asks = (question.store, question.mirror, question.cypher)
                        answers: dict[str, Any] = {}
                        for i in order:
                            answer, seconds = timed(partial(asks[i], store, args))
                            timing.seconds[METHODS[i]].append(seconds)
                            answers[METHODS[i]] = question.normalize(answer)
                        if rep == 0:
                            check(question, args, answers)
                            timing.checked += 1
                            found = answers[METHODS[0]]
                            if isinstance(found, list):
                                timing.sizes.append(len(found))
                bar.advance(task)
    return timings


def build_table(results: Sequence[tuple[int, list[Timing]]], note: str) -> Table:
    table = Table(title="Lineage: mirror vs saved Cypher (median microseconds)", caption=note)
    table.add_column("sessions", justify="right")
    table.add_column("question")
    table.add_column("answer size\nmedian (max)", justify="right")
    table.add_column("store µs", justify="right")
    table.add_column("mirror fn µs", justify="right")
    table.add_column("cypher µs", justify="right")
    table.add_column("cypher/store", justify="right")
    table.add_column("cypher/mirror fn", justify="right")
    table.add_column("answers agree", justify="right")
    for size, timings in results:
        for i, t in enumerate(timings):
            store_s, mirror_s, cypher_s = (median(t.seconds[m]) for m in METHODS)
            table.add_row(
                fmt_count(size) if i == 0 else "",
                t.question,
                f"{median(t.sizes):g} ({max(t.sizes)})" if t.sizes else "-",
                fmt_us(store_s),
                fmt_us(mirror_s),
                fmt_us(cypher_s),
                fmt_ratio(cypher_s / store_s),
                fmt_ratio(cypher_s / mirror_s),
                f"{t.checked}/{t.checked}",
                end_section=i == len(timings) - 1,
            )
    return table


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    samples: int = 200,
    repeats: int = 3,
    info: ConnectionInfo | None = None,
    stop: bool = False,
    console: Console | None = None,
) -> Table:
    """Grow the tree to each size, ask, and print the table; returns it."""
    console = console or make_console()
    rng = random.Random(SEED)
    results: list[tuple[int, list[Timing]]] = []
    with open_bench_store("lineage", info=info, stop=stop, console=console) as store:
        tree = Tree()
        for size in sorted(sizes):
            grow_tree(store, tree, size, rng, console)
            depth = max(store.depth(s) for s in tree.ids)
            console.print(
                f"[dim]{fmt_count(size)} sessions in {len(tree.members)} trees, "
                f"deepest fork chain {depth}[/dim]"
            )
            ask_all(store, tree, samples, 1, rng, console)  # warm-up: plans, caches
            results.append((size, ask_all(store, tree, samples, repeats, rng, console)))
    note = (
        f"{samples} random sessions x {repeats} repeats per question; store = SessionStore "
        f"method (one seq check round trip first), mirror fn = pure function on the mirror, "
        f"cypher = run_saved; {machine_line()}"
    )
    table = build_table(results, note)
    console.print(table)
    return table


def main(argv: Sequence[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_counts,
        default=DEFAULT_SIZES,
        help="numbers of sessions in the tenant, e.g. 1k,10k (default 10k)",
    )
    parser.add_argument(
        "--samples", type=parse_count, default=200, help="random sessions asked about"
    )
    add_repeat_arg(parser, 3)
    add_server_args(parser)
    args = parser.parse_args(argv)
    return run(args.sizes, samples=args.samples, repeats=args.repeats, stop=args.stop)


if __name__ == "__main__":
    main()
