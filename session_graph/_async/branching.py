"""Branching: fork, explore (several forks at once), edit-as-branch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from session_graph._async.backend import AsyncOps
from session_graph._async.base import AsyncStoreBase
from session_graph.core import (
    MessageInput,
    check_bool,
    check_int,
    check_str,
    checked_message_id,
    checked_session_id,
    fork_child,
    message_row,
    new_op,
    prepare_messages,
    session_from_record,
    timestamps,
    validated,
)
from session_graph.errors import (
    ConflictError,
    ForkPointError,
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.ids import BYTES_TYPES, new_id, not_text
from session_graph.models import NewMessage, Session, Strategy
from session_graph.records import ForkOutcome, TreeNode


def _strategy(value: Any) -> Strategy:
    """One strategy of ``explore``: a name, a ``Strategy`` or a mapping of its fields."""
    if isinstance(value, BYTES_TYPES):
        raise ValidationError(not_text(value, "strategy"))
    return validated(Strategy, {"name": value} if isinstance(value, str) else value)


def _fork_point(at: Any) -> tuple[int | None, str | None]:
    """``at`` as (position, message id): an index, a message id, or None (the newest)."""
    if at is None:
        return None, None
    if isinstance(at, bool):
        raise ValidationError("fork point must be an index or a message id")
    if isinstance(at, int):
        if abs(at) > 2**62:
            raise ValidationError("fork point is out of range")
        return at, None
    if isinstance(at, str):
        try:
            return None, checked_message_id(at)
        except ValidationError:
            raise ForkPointError(f"message {at!r} is not a message id") from None
    raise ValidationError("fork point must be an index or a message id")


class AsyncBranchingMixin(AsyncStoreBase):
    async def fork(
        self,
        session_id: str,
        at: int | str | None = None,
        *,
        id: str | None = None,
        reason: str | None = None,
        title: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        fork_metadata: Mapping[str, Any] | None = None,
        before: bool = False,
    ) -> Session:
        """Branch a session at a message: a new session whose history is the parent's up to it.

        Nothing is copied: the fork's head points at the parent's message, so forking costs
        the same at any history length (one statement).

        Args:
            at: position in the history (negative counts from the end) or a message id;
                None forks at the newest message.
            id: the fork's session id (generated when omitted; give one for idempotent retries).
            reason, fork_metadata: kept on the FORKED_FROM relationship.
            before: end the fork just before that message instead (to answer it anew; a fork
                before the first message is empty).
        """
        check_bool(before, "before")
        child = fork_child(self.settings, id, title, tags, metadata, reason, fork_metadata)
        return (await self._fork(session_id, at, [child], before=before))[0]

    async def explore(
        self,
        session_id: str,
        at: int | str | None,
        strategies: Sequence[str | Strategy | Mapping[str, Any]],
    ) -> list[Session]:
        """Create one fork per strategy at the same message, in one statement.

        Each fork's FORKED_FROM carries the strategy name as ``reason`` and in its metadata.
        """
        if (
            not isinstance(strategies, Sequence)
            or isinstance(strategies, (str, *BYTES_TYPES))
            or not strategies
        ):
            raise ValidationError("explore needs a non-empty list of strategies")
        parsed = [_strategy(s) for s in strategies]
        names = [s.name for s in parsed]
        if len(set(names)) != len(names):
            raise ValidationError("strategy names must be distinct")
        children = [
            fork_child(
                self.settings,
                s.id,
                s.title or s.name,
                s.tags,
                s.metadata,
                s.name,
                {"strategy": s.name},
            )
            for s in parsed
        ]
        if len({c["id"] for c in children}) != len(children):
            raise ValidationError("strategy ids must be distinct")
        return await self._fork(session_id, at, children)

    async def _fork(
        self,
        session_id: str,
        at: Any,
        children: list[dict[str, Any]],
        *,
        before: bool = False,
        then: list[MessageInput] | None = None,
    ) -> list[Session]:
        """Create ``children`` as forks; with ``then``, append it to the (one) child after."""
        checked_session_id(session_id)
        position, at_id = _fork_point(at)
        op = new_op()
        items = prepare_messages(then, self.settings) if then else []
        rows = [message_row(m, m.id or new_id(), self.codec) for m in items]

        async def unit(ops: AsyncOps) -> ForkOutcome | None:
            outcome = await ops.fork(session_id, position, at_id, children, op, before)
            if outcome is not None and outcome.status in ("ok", "replay") and rows:
                done = await ops.append(children[0]["id"], rows, timestamps(items))
                if done is None or done.status not in ("ok", "replay"):
                    raise ConflictError("the edited fork could not take its message")
            return outcome

        run = self.backend.write if rows else self.backend.auto  # fork + message: one tx
        outcome = await run(unit)
        if outcome is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        self._check_fork(session_id, at, outcome)
        if outcome.status == "ok":
            self._patch_tree(
                outcome.root,
                outcome.tree_version,
                [
                    TreeNode(c["id"], session_id, outcome.created_ms, "active", outcome.position)
                    for c in children
                ],
            )
        if rows:  # the fork's record predates its message
            return [session_from_record(await self._record(children[0]["id"]))]
        return [session_from_record(rec) for rec in outcome.made]

    @staticmethod
    def _check_fork(session_id: str, at: Any, outcome: ForkOutcome) -> None:
        status = outcome.status
        if status == "exists":
            raise SessionExistsError("a fork id is taken by another session")
        if status == "deleted":
            raise SessionDeletedError(f"session {session_id!r} is deleted; it takes no forks")
        if status == "message":
            raise ForkPointError(f"message {at!r} is not in the history of {session_id!r}")
        if status == "position":
            raise ForkPointError(f"fork point {at!r} is outside the history of {session_id!r}")

    async def edit(
        self,
        session_id: str,
        index: int,
        message: MessageInput,
        *,
        id: str | None = None,
        reason: str = "edit",
    ) -> Session:
        """Edit-as-branch: a fork just before ``index`` whose next message is ``message``.

        The original session is untouched; the new fork holds the edited history. The fork
        and its message are written in one transaction.
        """
        check_int(index, "edit index")
        check_str(reason, "edit reason")
        if not isinstance(message, (NewMessage, Mapping)):
            raise ValidationError(
                f"edit takes one message (NewMessage or dict), not {type(message).__name__}"
            )
        prepare_messages(message, self.settings)
        child = fork_child(self.settings, id, None, (), None, reason, {"edited_position": index})
        return (await self._fork(session_id, index, [child], before=True, then=[message]))[0]
