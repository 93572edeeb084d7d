"""Lineage questions, answered from the in-process mirror of fork trees."""

from __future__ import annotations

import time

from session_graph import lineage
from session_graph._async.base import AsyncStoreBase
from session_graph.core import checked_session_id, message_from_row, session_from_record
from session_graph.errors import SessionNotFoundError
from session_graph.history import common_length
from session_graph.models import Message, Session


class AsyncLineageMixin(AsyncStoreBase):
    """Answers come from memory while the tree was confirmed within ``mirror_max_lag``
    seconds; this process's own writes are always seen at once."""

    async def parent(self, session_id: str) -> str | None:
        """The session this one was forked from (None for a root)."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.parent(self.mirror.graph, session_id)

    async def children(self, session_id: str) -> list[str]:
        """Direct forks, oldest first."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.children(self.mirror.graph, session_id)

    async def siblings(self, session_id: str) -> list[str]:
        """Other forks of the same parent."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.siblings(self.mirror.graph, session_id)

    async def ancestors(self, session_id: str) -> list[str]:
        """Parent, grandparent, ... root: nearest first."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.ancestors(self.mirror.graph, session_id)

    async def descendants(self, session_id: str) -> list[str]:
        """Every fork below the session, nearest first."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.descendants(self.mirror.graph, session_id)

    async def root(self, session_id: str) -> str:
        """The root session of the tree."""
        return await self._tree(session_id)

    async def depth(self, session_id: str) -> int:
        """Number of forks between the root and the session."""
        await self._tree(session_id)
        with self.mirror.lock:
            return lineage.depth(self.mirror.graph, session_id)

    async def tree(self, session_id: str) -> list[Session]:
        """Every session of the fork tree holding ``session_id``, deleted ones included:
        the root first, then depth first, children oldest first (one read)."""
        root = await self._tree(session_id)
        with self.mirror.lock:
            graph = self.mirror.graph
            order: list[str] = []
            stack = [root]
            while stack:
                sid = stack.pop()
                order.append(sid)
                stack.extend(reversed(lineage.children(graph, sid)))
        records = await self.backend.auto(lambda ops: ops.session_rows(order), write=False)
        found = {r.id: r for r in records}
        return [session_from_record(found[sid]) for sid in order if sid in found]

    async def common_ancestor(self, a: str, b: str) -> Message | None:
        """The newest message both sessions' histories hold, or None."""
        checked_session_id(a)
        checked_session_id(b)
        found = {
            r.id: r
            for r in await self.backend.auto(lambda ops: ops.session_rows([a, b]), write=False)
        }
        for sid in (a, b):
            if sid not in found:
                raise SessionNotFoundError(f"no session {sid!r}")
        shared = common_length(found[a].runs, found[b].runs)
        if shared == 0:
            return None
        window = await self.backend.auto(lambda ops: ops.window(a, shared - 1, shared), write=False)
        if window is None or not window.rows:
            return None
        return message_from_row(window.rows[0], self.codec)

    async def refresh(self) -> int:
        """Check every mirrored tree against the database now (changed trees are dropped and
        load again when next asked); returns how many trees stay mirrored."""
        with self.mirror.lock:
            roots = list(self.mirror.trees)
        if not roots:
            return 0
        versions = await self.backend.auto(lambda ops: ops.tree_versions(roots), write=False)
        now = time.monotonic()
        with self.mirror.lock:
            return sum(self.mirror.confirm(root, versions.get(root), now) for root in roots)
