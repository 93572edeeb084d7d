"""Run every benchmark in turn and print their tables (see benchmarks/README.md).

Run: ``python -m benchmarks.run_all`` (full sizes; the 1M-message fork cost loads 1M messages
into Neo4j and takes a while) or ``python -m benchmarks.run_all --quick`` (small sizes).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.table import Table

from benchmarks import fork_cost, lineage, mirror_memory
from benchmarks.common import (
    BENCH_INSTANCE,
    make_console,
    parse_count,
    parse_counts,
)
from session_graph import Settings
from session_graph.runtime import LocalNeo4j

QUICK_FORK = [100, 10_000]
QUICK_LINEAGE = [1_000]
QUICK_MEMORY = [(10_000, 100), (100_000, 1_000)]


def main(argv: Sequence[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--fork-sizes", type=parse_counts, help="fork_cost --sizes")
    parser.add_argument("--lineage-sizes", type=parse_counts, help="lineage --sizes")
    parser.add_argument(
        "--memory-sizes", type=mirror_memory.parse_pairs, help="mirror_memory --sizes"
    )
    parser.add_argument("--samples", type=parse_count, default=200, help="lineage --samples")
    parser.add_argument(
        "--stop",
        action="store_true",
        help=f"stop the local '{BENCH_INSTANCE}' server at the end (default: leave it running)",
    )
    args = parser.parse_args(argv)
    console = make_console()
    fork_sizes = args.fork_sizes or (QUICK_FORK if args.quick else fork_cost.DEFAULT_SIZES)
    lineage_sizes = args.lineage_sizes or (QUICK_LINEAGE if args.quick else lineage.DEFAULT_SIZES)
    memory_sizes = args.memory_sizes or (
        QUICK_MEMORY if args.quick else mirror_memory.DEFAULT_SIZES
    )
    tables = [
        mirror_memory.run(memory_sizes, console=console),
        fork_cost.run(fork_sizes, console=console),
        lineage.run(lineage_sizes, samples=args.samples, console=console),
    ]
    settings = Settings()
    if args.stop and not settings.neo4j_uri:
        LocalNeo4j(settings, BENCH_INSTANCE).stop()
    return tables


if __name__ == "__main__":
    main()
