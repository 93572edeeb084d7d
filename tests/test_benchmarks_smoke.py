"""Each benchmark runs at a tiny size against the test server and prints its table.

No timing assertions: only that the scripts work end to end (their own answer checks
included) and that the table has the rows asked for.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from benchmarks import fork_cost, lineage, mirror_memory
from benchmarks.common import fmt_count, parse_counts
from session_graph.runtime import ConnectionInfo


def recording_console() -> Console:
    return Console(file=io.StringIO(), width=200, record=True)


def cells(table: Table, column: int) -> list[str]:
    return [str(c) for c in table.columns[column].cells]


def test_parse_counts() -> None:
    assert parse_counts("100,10k,1M,2.5k") == [100, 10_000, 1_000_000, 2_500]
    assert [fmt_count(n) for n in (100, 10_000, 1_000_000, 2_500)] == ["100", "10k", "1M", "2500"]


def test_fork_cost_smoke(neo4j_info: ConnectionInfo) -> None:
    console = recording_console()
    table = fork_cost.run(
        [50, 300], repeats=2, batch=100, copy_max=100, info=neo4j_info, console=console
    )
    text = console.export_text()
    assert "Fork cost" in text
    assert cells(table, 0) == ["50", "300"]
    assert table.row_count == 2
    ours_added = cells(table, 2)
    assert all(cell.startswith("1 / 2 / ") for cell in ours_added)  # session; FORKED_FROM, HEAD
    copy_added = cells(table, 5)
    assert copy_added[0].startswith("51 / 50 / ")  # 50 copies + the session; 49 PREVIOUS + HEAD
    assert copy_added[1] == "-"  # above copy_max: not run
    assert "not run" in cells(table, 4)[1]


def test_lineage_smoke(neo4j_info: ConnectionInfo) -> None:
    console = recording_console()
    table = lineage.run([40], samples=8, repeats=1, info=neo4j_info, console=console)
    assert "Lineage" in console.export_text()
    assert cells(table, 1) == [q.name for q in lineage.QUESTIONS]
    assert cells(table, 8) == ["8/8"] * len(lineage.QUESTIONS)  # answers checked


@pytest.mark.parametrize("peer_max", [10_000, 100])
def test_mirror_memory_smoke(peer_max: int) -> None:
    console = recording_console()
    table = mirror_memory.run([(2_000, 20)], peer_max=peer_max, console=console)
    assert "Mirror memory" in console.export_text()
    assert cells(table, 0) == ["2k / 20"]
    peer = cells(table, 5)[0]
    assert (peer == "skipped") == (peer_max < 2_000)
