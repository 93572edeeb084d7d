"""Each benchmark runs at a tiny size against the test server and prints its table.

No timing assertions: only that the scripts work end to end (their own answer checks
included) and that the table has the rows asked for.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from benchmarks import fork_cost, lineage, mirror_memory, peers
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


# peers.py imports the peers' packages (the `bench` extra) itself: without them this fails with
# MissingPeersError naming the packages, never a skip.
PEERS_TINY = peers.Config(
    repeats=1,
    appends=5,
    base=20,
    threads=3,
    per_thread=2,
    ingest=40,
    read=40,
    big=300,
    open_size=(200, 4),
    fork_sizes=(20, 300),
    tree=12,
    calls=4,
    batch=100,
    langgraph_max=300,
    branch_max=300,
)
PEERS_KEYS = ["1a", "1b", "2a", "2b", "2c", "3", "4", "5a", "5b", "5c", "6a", "6b", "6c"]


def test_peers_smoke(neo4j_info: ConnectionInfo, tmp_path: Path) -> None:
    console = recording_console()
    out = tmp_path / "BENCHMARKS.md"
    table = peers.run(PEERS_TINY, info=neo4j_info, console=console, out=out, command="smoke")
    assert "session_graph beside its peers" in console.export_text()
    assert cells(table, 0) == [*PEERS_KEYS, "7", "7", "7", "8a", "8b", "8c"]
    status = cells(table, len(table.columns) - 1)
    assert all(s in ("", "[green]met[/green]", "[red]missed[/red]") for s in status)
    report = out.read_text(encoding="utf-8")
    assert report.startswith("# Benchmarks: session_graph beside its peers")
    assert "Produced by `smoke`" in report and "Neo4j:" in report
    assert "| 1a | one append to a 20-msg session, p50 (ms) |" in report
    if neo4j_info.password:
        assert neo4j_info.password not in report


def test_peers_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(peers.PEER_PACKAGES, "no_such_module_for_bench", "no-such-package")
    with pytest.raises(peers.MissingPeersError, match=r"no-such-package.*\[bench\]"):
        peers.load_peers()
