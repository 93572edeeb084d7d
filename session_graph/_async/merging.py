"""Merging a fork back: fast-forward, or copies of its diverging messages."""

from __future__ import annotations

import json
from dataclasses import asdict

from session_graph import lineage
from session_graph._async.backend import AsyncOps
from session_graph._async.base import AsyncStoreBase
from session_graph.core import checked_session_id, message_from_row, message_row, new_op
from session_graph.errors import MergeConflictError, SessionNotFoundError
from session_graph.history import common_length
from session_graph.ids import new_id
from session_graph.models import MergeResult


class AsyncMergingMixin(AsyncStoreBase):
    async def merge(self, fork_id: str, into: str | None = None) -> MergeResult:
        """Bring a fork's diverging messages into another session of its tree (default: parent).

        Fast-forward when the target has not moved past the common message: the target's
        head moves to the fork's head and shares its messages. Otherwise the diverging
        messages are appended to the target as copies, each linked to its original by
        ``COPIED_FROM``. Either way a ``MERGED_INTO`` relationship records the merge and the
        fork gets status ``merged``; it stays readable and writable, and deleting it later
        never removes messages the target's history holds. Merging again copies only what
        is new. A retry after a lost answer merges nothing more and returns the same result.

        Raises:
            MergeConflictError: the sessions are in different trees, or are the same session.
        """
        checked_session_id(fork_id)
        target = into
        if target is None:
            await self._tree(fork_id)
            with self.mirror.lock:
                target = lineage.parent(self.mirror.graph, fork_id)
            if target is None:
                raise MergeConflictError(f"session {fork_id!r} is not a fork; name a target")
        checked_session_id(target)
        into_id = target
        op = new_op()

        async def unit(ops: AsyncOps) -> tuple[MergeResult, str, int | None]:
            recs = await ops.lock([fork_id, into_id])
            for sid in (fork_id, into_id):
                if sid not in recs:
                    raise SessionNotFoundError(f"no session {sid!r}")
            fork, dest = recs[fork_id], recs[into_id]
            prior = fork.op_result(op)
            if prior is not None:
                data = json.loads(prior)
                return MergeResult(**{**data, "copied": tuple(data["copied"])}), fork.root, None
            self._live(fork)
            self._live(dest)
            if into_id == fork_id or fork.root != dest.root:
                raise MergeConflictError(
                    f"{fork_id!r} and {into_id!r} are not two sessions of one tree"
                )
            shared = common_length(fork.runs, dest.runs)
            position, start = shared - 1, shared
            merged_head = fork.props.get("merged_head")
            if merged_head is not None and dest.length - 1 != position:
                rows = await ops.message_rows([merged_head])  # copied by an earlier merge
                if rows and rows[0][2] >= start:
                    window = await ops.window(fork_id, rows[0][2], rows[0][2] + 1)
                    if window is not None and window.rows and window.rows[0][0] == merged_head:
                        start = rows[0][2] + 1
            copied: tuple[str, ...] = ()
            if start >= fork.length:
                mode = "up-to-date"
            elif dest.length - 1 == position:
                mode = "fast-forward"
                props = {**fork.runs.props(), "length": fork.length}
                await ops.set_history(into_id, fork.head_id, props)
            else:
                mode = "copy"
                window = await ops.window(fork_id, start, fork.length)
                originals = [message_from_row(r, self.codec) for r in window.rows] if window else []
                new_ids = [new_id() for _ in originals]
                rows_out = [
                    message_row(
                        o.as_new(),
                        mid,
                        self.codec,
                        copied_from=o.id,
                    )
                    for o, mid in zip(originals, new_ids, strict=True)
                ]
                done = await ops.append(into_id, rows_out, None)
                if done is None or done.status != "ok":
                    raise MergeConflictError(f"could not append the copies to {into_id!r}")
                await ops.link_copies(
                    [{"id": n, "original": o.id} for n, o in zip(new_ids, originals, strict=True)]
                )
                copied = tuple(new_ids)
            if mode != "up-to-date":
                await ops.create_merge_edge(fork_id, into_id, {"mode": mode, "copied": len(copied)})
            result = MergeResult(mode, fork_id, into_id, position, copied)
            await ops.record_op(
                fork_id,
                op,
                json.dumps({**asdict(result), "copied": list(copied)}),
                {"status": "merged", "merged_head": fork.head_id},
            )
            return result, fork.root, await ops.bump_tree(fork.root)

        result, root, version = await self.backend.write(unit)
        if version is not None:
            self._patch_status(root, version, fork_id, "merged")
        return result
