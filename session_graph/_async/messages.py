"""Messages: append (the hot path), read windows of a history, pop, clear, search."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

from session_graph._async.backend import AsyncOps
from session_graph._async.base import AsyncStoreBase
from session_graph.core import (
    MessageInput,
    check_optional_int,
    checked_message_id,
    checked_session_id,
    from_ms,
    message_from_item,
    message_from_row,
    message_row,
    messages_from_rows,
    new_op,
    prepare_messages,
    timestamps,
)
from session_graph.errors import (
    ConflictError,
    EncryptionError,
    MessageNotFoundError,
    SessionDeletedError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.history import Runs
from session_graph.ids import new_id
from session_graph.models import Message, NewMessage, check_text
from session_graph.records import WRITABLE_CLOSED, MessageRow

_POP_TRIES = 20


def _window_arg(value: Any, what: str) -> int | None:
    """A window bound: None or an int (not a bool, float or str)."""
    bound = check_optional_int(value, what, minimum=None, maximum=None)
    if bound is None:
        return None
    # Slices take any integer; past the 64-bit range of the database the answer is the same.
    return max(-(2**62), min(2**62, bound))


class AsyncMessagesMixin(AsyncStoreBase):
    async def append(
        self, session_id: str, messages: MessageInput | Sequence[MessageInput]
    ) -> list[Message]:
        """Append one or more messages to a session's history, atomically: one round trip.

        Appends of one session queue behind each other (one chain, in commit order); appends
        of different sessions never wait for each other. Lists longer than ``append_chunk``
        are written in chunks that become visible together (see ``extend``). Give messages
        ids (UUIDs) to make your own retries idempotent: an append whose ids are stored in
        this session already returns the stored messages.

        Raises:
            ValidationError: bad input (nothing written). LimitExceededError: over the limits.
            SessionNotFoundError, SessionDeletedError, ConflictError: ids used elsewhere.
        """
        checked_session_id(session_id)
        chunk = self.settings.append_chunk
        if _is_list(messages) and len(messages) > chunk:  # type: ignore[arg-type]
            listed: Sequence[MessageInput] = messages  # type: ignore[assignment]
            parts = (listed[i : i + chunk] for i in range(0, len(listed), chunk))
            kept: list[Message] = []
            await self._append_chunks(session_id, parts, kept)
            return kept
        items = prepare_messages(messages, self.settings)
        ids = [m.id or new_id() for m in items]
        rows = [message_row(m, i, self.codec) for m, i in zip(items, ids, strict=True)]
        ts = timestamps(items)
        if len(rows) == 1:
            return [await self._append_one(session_id, items[0], ids[0], rows[0], ts)]
        outcome = await self.backend.auto(lambda ops: ops.append(session_id, rows, ts))
        if outcome is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        self._check_append_status(session_id, outcome.status)
        if outcome.status == "replay":
            return await self._stored(session_id, ids)
        created = from_ms(outcome.at_ms)
        return [
            message_from_item(m, i, session_id, outcome.base + n, created)
            for n, (m, i) in enumerate(zip(items, ids, strict=True))
        ]

    async def _append_one(
        self,
        session_id: str,
        item: NewMessage,
        message_id: str,
        row: dict[str, Any],
        ts: list[int | None] | None,
    ) -> Message:
        """The one-message append (every agent turn): one linear statement."""
        stamp = None if ts is None else ts[0]
        try:
            outcome = await self.backend.auto(lambda ops: ops.append_one(session_id, row, stamp))
        except ConflictError:
            # the id is stored: this call's own write, retried after a lost answer, or the
            # caller's retry with the same id (both get the stored message), or another's
            return (await self._stored(session_id, [message_id]))[0]
        if outcome is None:  # missing or closed: say which
            self._live(await self._record(session_id))
            raise ConflictError(f"session {session_id!r} changed during the append; retry")
        return message_from_item(item, message_id, session_id, outcome.base, from_ms(outcome.at_ms))

    async def extend(self, session_id: str, messages: Iterable[MessageInput]) -> int:
        """Append any number of messages from an iterable; returns how many were appended.

        For imports and bulk loads: a generator streams, and memory stays bounded by one
        chunk (``append_chunk`` messages) at any size. The chunks are written off-history and
        become visible together in one last step, so readers see all of them or none. If
        another writer appends to the session meanwhile, nothing is appended and
        ``ConflictError`` is raised; a bad message anywhere raises its error and appends
        nothing either.
        """
        checked_session_id(session_id)
        if isinstance(messages, (str, bytes, bytearray, memoryview, Mapping, NewMessage, Set)) or (
            not isinstance(messages, Iterable)
        ):
            raise ValidationError(
                "extend takes an iterable of messages in order (a list, tuple or generator), "
                f"not {type(messages).__name__}"
            )
        return await self._append_chunks(
            session_id, _chunks(iter(messages), self.settings.append_chunk), None
        )

    @staticmethod
    def _check_append_status(session_id: str, status: str) -> None:
        if status in WRITABLE_CLOSED:
            raise SessionDeletedError(f"session {session_id!r} is deleted; it takes no writes")
        if status == "conflict":
            raise ConflictError("a message id is already stored in another session")

    async def _stored(self, session_id: str, ids: list[str]) -> list[Message]:
        """The messages ``ids`` as stored in ``session_id`` (a replayed append)."""
        rows = await self.backend.auto(lambda ops: ops.message_rows(ids), write=False)
        found = {r[0]: r for r in rows if r[1] == session_id}
        if len(found) != len(ids):
            elsewhere = sorted({r[0] for r in rows} - set(found))
            if elsewhere:
                raise ConflictError(f"message ids already stored in another session: {elsewhere}")
            raise ConflictError("some of these message ids are stored already, not all")
        return [message_from_row(found[i], self.codec) for i in ids]

    async def _append_chunks(
        self,
        session_id: str,
        parts: Iterator[Sequence[MessageInput]],
        kept: list[Message] | None,
    ) -> int:
        """Write chunks off-history (each reserving its idx range), then move HEAD once.

        ``kept`` collects the appended messages when the caller wants them back.
        """
        written: list[str] = []
        runs: Runs | None = None
        base = 0
        head_id: str | None = None
        count = 0
        try:
            for n, part in enumerate(parts):
                items = prepare_messages(part, self.settings) if part else []
                if not items:
                    continue
                ids = [m.id or new_id() for m in items]
                reserve = await self.backend.auto(
                    _reserver(session_id, ids[0], len(items), new_op())
                )
                if reserve is None:
                    raise SessionNotFoundError(f"no session {session_id!r}")
                status, first, at_base, at_head, at_runs = reserve
                self._check_append_status(session_id, status)
                if status == "replay":
                    if n or written:  # a repeated id inside this append
                        raise ConflictError("a message id appears twice in one append")
                    return await self._replayed(session_id, items, ids, parts, kept)
                if runs is None:
                    runs, base, head_id = at_runs, at_base, at_head
                rows = [message_row(m, i, self.codec) for m, i in zip(items, ids, strict=True)]
                written.extend(ids)
                prev = head_id if count == 0 else written[count - 1]
                at = await self.backend.auto(
                    _chunk_writer(session_id, rows, timestamps(items), prev, base + count, first)
                )
                if kept is not None:
                    if at is None:  # written by an earlier try whose answer was lost
                        kept.extend(await self._stored(session_id, ids))
                    else:
                        created = from_ms(at)
                        kept.extend(
                            message_from_item(m, i, session_id, base + count + k, created)
                            for k, (m, i) in enumerate(zip(items, ids, strict=True))
                        )
                runs = runs.appended(session_id, first, len(items))
                count += len(items)
            if runs is None:
                return 0
            props = {**runs.props(), "length": base + count}
            last, finish = written[-1], new_op()
            done = await self.backend.auto(
                lambda ops: ops.finish_append(session_id, last, base, head_id, props, finish)
            )
        except BaseException:
            await self._discard(written)
            raise
        if done in WRITABLE_CLOSED or done == "moved" or done is None:
            await self._discard(written)
            if done in WRITABLE_CLOSED:
                raise SessionDeletedError(f"session {session_id!r} was deleted meanwhile")
            raise ConflictError(
                f"session {session_id!r} changed while a large append was being written; "
                "nothing was appended, retry"
            )
        return count

    async def _replayed(
        self,
        session_id: str,
        items: list[NewMessage],
        ids: list[str],
        parts: Iterator[Sequence[MessageInput]],
        kept: list[Message] | None,
    ) -> int:
        """A large append whose first message is stored already: the caller's own retry."""
        count = len(items)
        if kept is not None:
            kept.extend(await self._stored(session_id, ids))
        for part in parts:
            more = prepare_messages(part, self.settings)
            if any(m.id is None for m in more):
                raise ConflictError("some of these messages are stored already, not all")
            if kept is not None:
                kept.extend(await self._stored(session_id, [str(m.id) for m in more]))
            count += len(more)
        return count

    async def _discard(self, ids: list[str]) -> None:
        """Remove chunks of an append that did not finish (never on any history)."""
        if not ids:
            return
        # The first error is the one to report; purge removes what this could not.
        with contextlib.suppress(Exception):
            await self.backend.auto(lambda ops: ops.delete_messages(ids))

    async def add_message(
        self, session_id: str, role: str, content: str = "", **fields: Any
    ) -> Message:
        """Append one message given as keyword arguments; returns it."""
        return (await self.append(session_id, {"role": role, "content": content, **fields}))[0]

    async def messages(
        self, session_id: str, start: int | None = None, stop: int | None = None
    ) -> list[Message]:
        """The session's history, or its window ``start:stop`` (slice rules), oldest first.

        One round trip; the cost is what is returned: ``messages(s, -10)`` costs the same at
        100 or 1,000,000 messages.
        """
        return messages_from_rows(await self._window(session_id, start, stop), self.codec)

    async def _window(
        self, session_id: str, start: int | None, stop: int | None
    ) -> list[MessageRow]:
        checked_session_id(session_id)
        lo, hi = _window_arg(start, "start"), _window_arg(stop, "stop")
        window = await self.backend.auto(lambda ops: ops.window(session_id, lo, hi), write=False)
        if window is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return window.rows

    async def get_message(self, message_id: str) -> Message:
        """One message by id.

        Raises:
            MessageNotFoundError: no such message in this tenant.
        """
        mid = checked_message_id(message_id)
        rows = await self.backend.auto(lambda ops: ops.message_rows([mid]), write=False)
        if not rows:
            raise MessageNotFoundError(f"no message {message_id!r}")
        return message_from_row(rows[0], self.codec)

    async def message_count(self, session_id: str) -> int:
        """How many messages the session's history holds (shared ones included)."""
        return (await self._record(session_id)).length

    async def history_ids(self, session_id: str) -> list[str]:
        """Message ids of the session's history, oldest first."""
        return [str(r[0]) for r in await self._window(session_id, None, None)]

    async def pop_last(self, session_id: str) -> Message:
        """Remove the newest message from the session's history and return it, atomically.

        The message itself is deleted unless another session's history holds it (a fork
        made at it, or after it); then only this session's head moves back. A retry after
        a lost answer pops nothing more and returns the same message.

        Raises:
            MessageNotFoundError: the history is empty.
        """
        checked_session_id(session_id)
        op = new_op()
        expected: Message | None = None
        for _ in range(_POP_TRIES):
            if expected is None:
                newest = await self.messages(session_id, -1)
                if not newest:
                    raise MessageNotFoundError(f"session {session_id!r} has no messages")
                expected = newest[0]
            status = await self.backend.auto(_popper(session_id, expected.id, op))
            if status is None:
                raise SessionNotFoundError(f"no session {session_id!r}")
            if status in ("ok", "replay"):
                return expected
            if status in WRITABLE_CLOSED:
                raise SessionDeletedError(f"session {session_id!r} is deleted; it takes no writes")
            if status == "empty":
                raise MessageNotFoundError(f"session {session_id!r} has no messages")
            expected = None  # 'moved': another writer changed the head; read it again
        raise ConflictError(f"session {session_id!r} kept changing; pop_last gave up, retry")

    async def clear_history(self, session_id: str) -> int:
        """Empty the session's history; returns how many messages it held.

        Messages other sessions' histories hold stay (forks keep theirs); the rest are deleted.
        """
        checked_session_id(session_id)
        op = new_op()

        async def unit(ops: AsyncOps) -> int:
            rec = (await ops.lock([session_id])).get(session_id)
            if rec is None:
                raise SessionNotFoundError(f"no session {session_id!r}")
            prior = rec.op_result(op)
            if prior is not None:
                return int(prior)
            self._live(rec)
            runs = rec.runs
            own = [(r.start, r.end) for r in _trailing_own(runs, session_id)]
            listed = await ops.own_ids(session_id, own) if own else []
            held = await ops.held(session_id, [i for i, _ in listed]) if listed else set()
            removable: list[tuple[str, int]] = []
            for mid, idx in reversed(listed):
                if mid in held:
                    break
                removable.append((mid, idx))
            next_idx = int(rec.props.get("next_idx") or 0)
            for _, idx in sorted(removable, key=lambda p: -p[1]):
                if idx == next_idx - 1:
                    next_idx = idx
            if removable:
                await ops.delete_messages([mid for mid, _ in removable])
            await ops.set_history(
                session_id, None, {**Runs().props(), "length": 0, "next_idx": next_idx}
            )
            await ops.record_op(session_id, op, str(rec.length), {})
            return rec.length

        return await self.backend.write(unit)

    async def search(
        self, text: str, *, limit: int = 50, include_deleted: bool = False
    ) -> list[Message]:
        """Messages whose content contains ``text`` (case-insensitive), newest first.

        A hit's ``session_id`` is the session that wrote it (forks that share it hold it too).
        Messages written by deleted sessions are left out unless ``include_deleted``.

        Raises:
            EncryptionError: message content is encrypted at rest (by this store's keys or
                another's), so the database cannot search it.
        """
        if self.codec.encrypts:
            raise EncryptionError("search is unavailable when message content is encrypted")
        if not isinstance(text, str) or not text:
            raise ValidationError("search text must be a non-empty string")
        try:
            check_text(text, "search text")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise ValidationError("search limit must be between 1 and 10000")
        if not isinstance(include_deleted, bool):
            raise ValidationError("search include_deleted must be True or False")

        async def read(ops: AsyncOps) -> tuple[list[MessageRow], bool]:
            rows = await ops.search(text, limit, include_deleted)
            # A full page answers the question; a short one may be short because content is
            # encrypted, which must not pass for "no match".
            return rows, len(rows) < limit and await ops.encrypted_content()

        rows, encrypted = await self.backend.read(read)
        if encrypted:
            raise EncryptionError(
                "message content in this tenant is encrypted at rest, so search cannot read "
                "it; search is unavailable on encrypted content"
            )
        return [message_from_row(r, self.codec) for r in rows]


def _trailing_own(runs: Runs, session_id: str) -> list[Any]:
    """The runs at the end of a history that the session owns (its own newest messages)."""
    out = []
    for run in reversed(list(iter(runs))):
        if run.owner != session_id:
            break
        out.append(run)
    out.reverse()
    return out


def _chunk_writer(
    session_id: str,
    rows: list[dict[str, Any]],
    ts: list[int | None] | None,
    prev_id: str | None,
    base: int,
    first: int,
) -> Callable[[AsyncOps], Awaitable[int | None]]:
    async def write(ops: AsyncOps) -> int | None:
        return await ops.write_chunk(session_id, rows, ts, prev_id, base, first)

    return write


def _reserver(
    session_id: str, first_id: str, count: int, op: str
) -> Callable[[AsyncOps], Awaitable[tuple[str, int, int, str | None, Runs] | None]]:
    async def reserve(ops: AsyncOps) -> tuple[str, int, int, str | None, Runs] | None:
        return await ops.reserve_append(session_id, first_id, count, op)

    return reserve


def _is_list(messages: object) -> bool:
    return isinstance(messages, Sequence) and not isinstance(messages, (str, bytes))


def _chunks(messages: Iterator[MessageInput], size: int) -> Iterator[list[MessageInput]]:
    while part := list(itertools.islice(messages, size)):
        yield part


def _popper(session_id: str, expect: str, op: str) -> Callable[[AsyncOps], Awaitable[str | None]]:
    async def pop(ops: AsyncOps) -> str | None:
        return await ops.pop(session_id, expect, op)

    return pop
