"""Maintenance: purge what no live session's history needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from session_graph._async.backend import AsyncOps
from session_graph._async.base import AsyncStoreBase
from session_graph.history import Runs, merge_ranges
from session_graph.models import DELETED, PurgeReport


class AsyncMaintenanceMixin(AsyncStoreBase):
    async def purge(self) -> PurgeReport:
        """Delete messages no live session's history reaches, and tombstones nothing needs.

        The rule: a message stays while the history of any session that is not deleted
        holds it. A deleted session's node stays while it has forks (so they keep their
        lineage) or owns a message that stays; otherwise it goes. Works one tree at a
        time, each in one transaction that holds the tree's lock, so it is safe beside
        writers and resumable after a crash.
        """
        messages = sessions = 0
        after: str | None = None
        while True:
            roots = await self.backend.read(_roots_after(after))
            if not roots:
                return PurgeReport(messages, sessions)
            for root in roots:
                m, s = await self.backend.write(_purger(root))
                messages, sessions = messages + m, sessions + s
                if m or s:
                    with self.mirror.lock:
                        self.mirror.drop_tree(root)
            after = roots[-1]


def _roots_after(after: str | None) -> Callable[[AsyncOps], Awaitable[list[str]]]:
    async def read(ops: AsyncOps) -> list[str]:
        return await ops.roots(after, 500)

    return read


def _purger(root: str) -> Callable[[AsyncOps], Awaitable[tuple[int, int]]]:
    async def unit(ops: AsyncOps) -> tuple[int, int]:
        return await _purge_tree(ops, root)

    return unit


async def _purge_tree(ops: AsyncOps, root: str) -> tuple[int, int]:
    if not await ops.lock([root]):
        return 0, 0
    tree = await ops.tree_of(root)
    sessions = await ops.tree_sessions(root)
    if tree is None or not sessions:
        return 0, 0
    parents = {node.id: node.parent for node in tree.nodes}
    covered: dict[str, list[tuple[int, int]]] = {}
    for s in sessions:
        if s.status != DELETED:
            for owner, ranges in s.runs.covered().items():
                covered.setdefault(owner, []).extend(ranges)
    doomed: list[str] = []
    for s in sessions:
        keep = merge_ranges(covered.get(s.id, []))
        if s.next_idx == 0 or keep == [(0, s.next_idx - 1)]:
            continue
        doomed.extend(await ops.unreached(s.id, keep))
    children: dict[str, int] = {}
    for parent in parents.values():
        if parent is not None:
            children[parent] = children.get(parent, 0) + 1
    dropped: list[str] = []
    changed = True
    while changed:
        changed = False
        for s in sessions:
            if s.id in dropped or s.status != DELETED:
                continue
            if children.get(s.id, 0) == 0 and not covered.get(s.id):
                dropped.append(s.id)
                parent = parents.get(s.id)
                if parent is not None:
                    children[parent] -= 1
                changed = True
    if not doomed and not dropped:
        return 0, 0
    await ops.delete_messages(doomed)
    merged = {owner: merge_ranges(ranges) for owner, ranges in covered.items()}
    emptied = [
        s
        for s in sessions
        if s.status == DELETED and s.id not in dropped and not _within(s.runs, merged)
    ]
    for s in emptied:  # a tombstone's history is no longer whole: it keeps none
        await ops.set_history(s.id, None, {**Runs().props(), "length": 0})
    await ops.delete_sessions(dropped)
    if root not in dropped:
        await ops.bump_tree(root)
    return len(doomed), len(dropped)


def _within(runs: Runs, covered: dict[str, list[tuple[int, int]]]) -> bool:
    """Does every message of ``runs`` stay (lie within what live histories cover)?"""
    return all(
        any(lo <= run.start and run.end <= hi for lo, hi in covered.get(run.owner, []))
        for run in runs
    )
