"""``SessionStore``: the public API over one backend, one tenant and the topology mirror."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from session_graph import lineage
from session_graph.backends.base import (
    APPEND,
    RESET,
    Backend,
    ListFilter,
    MsgRef,
    Reader,
    SessionRow,
    TopoRow,
    Writer,
)
from session_graph.backends.memory import MemoryBackend, MemoryDatabase
from session_graph.config import Settings
from session_graph.crypto import ContentCodec
from session_graph.errors import (
    ConflictError,
    EncryptionError,
    ForkPointError,
    LimitExceededError,
    MergeConflictError,
    MessageNotFoundError,
    SchemaError,
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.ids import new_id, validate_name
from session_graph.mirror import Mirror
from session_graph.models import (
    DELETED,
    ForkPoint,
    Message,
    NewMessage,
    NewSession,
    Page,
    Session,
    SessionFields,
    Strategy,
    utcnow,
)

R = TypeVar("R")
MessageInput = NewMessage | Mapping[str, Any]
MirrorOp = Callable[[Mirror], None]
_UNSET: Any = object()


class _Rollback(Exception):
    """Raised inside a write to abandon it (nothing to do), carrying the result."""

    def __init__(self, result: Any) -> None:
        self.result = result


@dataclass(frozen=True)
class PurgeReport:
    """What ``purge`` removed."""

    messages: int
    sessions: int


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` did.

    ``mode`` is ``fast-forward`` (the target's head moved to the fork's head, nothing
    copied), ``copy`` (the fork's diverging messages were appended to the target as copies
    linked to their originals by COPIED_FROM) or ``up-to-date`` (nothing to merge).
    """

    mode: str
    fork_id: str
    into_id: str
    common_position: int
    copied: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Head:
    """A session's history end as a write sees it."""

    head_id: str | None
    head: MsgRef | None
    length: int
    next_idx: int


def _validated(model: type[pydantic.BaseModel], data: Any) -> Any:
    try:
        return data if isinstance(data, model) else model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(str(exc)) from exc


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)


class SessionStore:
    """Sessions, messages and forks of one tenant, stored in a backend and mirrored in memory.

    Open one with ``SessionStore.open()`` (Neo4j, from settings) or ``SessionStore.in_memory()``;
    both are context managers. Nothing touches the database in the constructor.
    """

    def __init__(self, backend: Backend, settings: Settings | None = None) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.mirror = Mirror()
        self._checked_at = float("-inf")
        secret = self.settings.encryption_keys
        self.codec = ContentCodec.from_secret(secret.get_secret_value() if secret else None)

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls,
        settings: Settings | None = None,
        *,
        setup: bool = False,
        instance: str = "default",
    ) -> Iterator[SessionStore]:
        """Connect to Neo4j as configured (a local server is started when no URI is set).

        Args:
            settings: configuration; read from ``SESSION_GRAPH_*`` when omitted.
            setup: apply pending schema migrations first (``session-graph init`` does this).
            instance: name of the local server instance, when one is used.
        """
        from session_graph.connection import connect_backend

        settings = settings or Settings()
        backend = connect_backend(settings, instance=instance)
        store = cls(backend, settings)
        try:
            store.connect(setup=setup)
            yield store
        finally:
            store.close()

    @classmethod
    def in_memory(
        cls,
        settings: Settings | None = None,
        *,
        database: MemoryDatabase | None = None,
    ) -> SessionStore:
        """A store on the in-memory reference backend (tests, experiments); set up and loaded."""
        settings = settings or Settings()
        store = cls(MemoryBackend(settings.tenant, database), settings)
        store.connect(setup=True)
        return store

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> list[str]:
        """Apply pending schema migrations (repeatable); returns the versions applied now."""
        return self.backend.setup()

    def connect(self, *, setup: bool = False) -> None:
        """Check the schema (applying it when ``setup``) and load the mirror."""
        if setup:
            self.setup()
        elif not self.backend.applied_migrations():
            raise SchemaError("the database has no session_graph schema: run `session-graph init`")
        self.backend.read(self.mirror.load)

    def close(self) -> None:
        """Close the backend's connections."""
        self.backend.close()

    @property
    def tenant(self) -> str:
        return self.backend.tenant

    # -- the write path ------------------------------------------------------------------

    def _write(
        self,
        changes: Sequence[tuple[str, str]],
        compute: Callable[[Writer], tuple[R, list[MirrorOp]]],
    ) -> R:
        """Run ``compute`` in one write transaction on an up-to-date mirror; then patch it."""

        for sid, _ in changes:
            validate_name(sid, what="session id")

        def unit(tx: Writer) -> tuple[R, list[MirrorOp]]:
            with self.mirror.lock:
                if self.mirror.seq != tx.prev_seq:
                    self.mirror.catch_up(tx, upto=tx.prev_seq)
                return compute(tx)

        try:
            (result, ops), seq = self.backend.write(changes, unit)
        except _Rollback as done:
            return done.result  # type: ignore[no-any-return]
        with self.mirror.lock:
            if self.mirror.seq == seq - 1:
                for op in ops:
                    op(self.mirror)
                self.mirror.seq = seq
        return result

    def refresh(self) -> int:
        """Bring the mirror up to date with writes made elsewhere; returns the seq reached."""
        current = self.backend.read(lambda r: r.current_seq())
        if current != self.mirror.seq:
            self.backend.read(self.mirror.catch_up)
        self._checked_at = time.monotonic()
        return self.mirror.seq

    def _maybe_refresh(self) -> None:
        """Check the change counter unless the last check is within ``mirror_max_lag``."""
        lag = self.settings.mirror_max_lag
        if lag <= 0 or time.monotonic() - self._checked_at > lag:
            self.refresh()

    def _stored_row(self, session_id: str) -> SessionRow:
        """The mirrored row of a stored session (deleted ones included)."""
        validate_name(session_id, what="session id")
        if session_id not in self.mirror:
            raise SessionNotFoundError(f"no session {session_id!r}")
        row = self.mirror.row(session_id)
        if "tenant" not in row.props:  # a parent placeholder for a session purged since
            raise SessionNotFoundError(f"no session {session_id!r}")
        return row

    def _live_row(self, session_id: str) -> SessionRow:
        row = self._stored_row(session_id)
        if row.props.get("status") == DELETED:
            raise SessionDeletedError(f"session {session_id!r} is deleted; it takes no writes")
        return row

    def _known(self, session_id: str) -> str:
        self._maybe_refresh()
        self._stored_row(session_id)
        return session_id

    # -- conversions ---------------------------------------------------------------------

    def _session(self, row: SessionRow) -> Session:
        p = row.props
        fork = None
        if row.fork is not None:
            f = row.fork
            fork = ForkPoint(
                parent_id=f["parent_id"],
                message_id=f.get("at"),
                position=f.get("position", -1),
                reason=f.get("reason"),
                metadata=json.loads(f.get("metadata") or "{}"),
                created_at=f["created_at"],
            )
        return Session(
            id=p["id"],
            title=p.get("title"),
            user_id=p.get("user_id"),
            tags=tuple(p.get("tags") or ()),
            status=p.get("status", "active"),
            metadata=json.loads(p.get("metadata") or "{}"),
            created_at=p["created_at"],
            updated_at=p["updated_at"],
            deleted_at=p.get("deleted_at"),
            fork=fork,
            head_id=row.head_id,
            message_count=int(p.get("length") or 0),
        )

    def _message(self, p: Mapping[str, Any]) -> Message:
        return Message(
            id=p["id"],
            session_id=p["session_id"],
            position=p["pos"],
            role=p["role"],
            content=self.codec.decode(dict(p)),
            created_at=p["created_at"],
            provider=p.get("provider"),
            model=p.get("model"),
            input_tokens=p.get("input_tokens"),
            output_tokens=p.get("output_tokens"),
            cost=p.get("cost"),
            tool_name=p.get("tool_name"),
            tool_call_id=p.get("tool_call_id"),
            metadata=json.loads(p.get("metadata") or "{}"),
            copied_from=p.get("copied_from"),
        )

    def _check_metadata(self, metadata: Mapping[str, Any]) -> str:
        encoded = _json(metadata)
        if len(encoded.encode("utf-8")) > self.settings.max_metadata_bytes:
            raise LimitExceededError(
                f"metadata is {len(encoded.encode('utf-8'))} bytes as JSON; "
                f"the limit is {self.settings.max_metadata_bytes} "
                "(SESSION_GRAPH_MAX_METADATA_BYTES)"
            )
        return encoded

    def _prepare(self, messages: MessageInput | Sequence[MessageInput]) -> list[NewMessage]:
        items: Sequence[Any]
        if isinstance(messages, (NewMessage, Mapping)):
            items = [messages]
        elif isinstance(messages, Sequence) and not isinstance(messages, (str, bytes)):
            items = messages
        else:
            raise ValidationError("append takes a message (NewMessage or dict) or a list of them")
        if not items:
            raise ValidationError("append needs at least one message")
        prepared: list[NewMessage] = [_validated(NewMessage, m) for m in items]
        seen: set[str] = set()
        for m in prepared:
            size = len(m.content.encode("utf-8"))
            if size > self.settings.max_message_bytes:
                raise LimitExceededError(
                    f"message content is {size} bytes; the limit is "
                    f"{self.settings.max_message_bytes} (SESSION_GRAPH_MAX_MESSAGE_BYTES)"
                )
            self._check_metadata(m.metadata)
            if m.id is not None:
                if m.id in seen:
                    raise ValidationError(f"message id {m.id} appears twice in one append")
                seen.add(m.id)
        return prepared

    # -- sessions ------------------------------------------------------------------------

    def create_session(
        self,
        id: str | None = None,
        *,
        title: str | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        status: str = "active",
        metadata: Mapping[str, Any] | None = None,
        get_or_create: bool = False,
    ) -> Session:
        """Create a session (``id`` generated when omitted).

        Raises:
            SessionExistsError: ``id`` is taken and ``get_or_create`` is false.
            SessionDeletedError: ``id`` names a deleted session.
        """
        spec: NewSession = _validated(
            NewSession,
            {
                "id": id,
                "title": title,
                "user_id": user_id,
                "tags": _tag_tuple(tags),
                "status": status,
                "metadata": dict(metadata or {}),
            },
        )
        meta = self._check_metadata(spec.metadata)
        sid = spec.id or new_id()
        generated = spec.id is None

        def compute(tx: Writer) -> tuple[Session, list[MirrorOp]]:
            existing = tx.session_rows([sid])
            if existing:
                row = existing[0]
                if row.props.get("status") == DELETED:
                    raise SessionDeletedError(f"session {sid!r} was deleted")
                if get_or_create or generated:  # generated: our own earlier, retried commit
                    raise _Rollback(self._session(row))
                raise SessionExistsError(f"session {sid!r} exists")
            now = utcnow()
            props = {
                "tenant": self.tenant,
                "id": sid,
                "title": spec.title,
                "user_id": spec.user_id,
                "tags": list(spec.tags),
                "status": spec.status,
                "metadata": meta,
                "created_at": now,
                "updated_at": now,
                "length": 0,
                "next_idx": 0,
            }
            tx.create_sessions([props])
            row = SessionRow(props)
            return self._session(row), [lambda m: m.put_session(row)]

        return self._write([(sid, APPEND)], compute)

    def get_session(self, session_id: str) -> Session:
        """A session by id (deleted ones too: they stay readable).

        Raises:
            SessionNotFoundError: no such session in this tenant.
        """
        validate_name(session_id, what="session id")
        rows = self.backend.read(lambda r: r.session_rows([session_id]))
        if not rows:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return self._session(rows[0])

    def list_sessions(
        self,
        *,
        tags: Sequence[str] = (),
        user_id: str | None = None,
        status: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Sessions oldest first, filtered; ``Page.next_cursor`` fetches the next page."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        for tag in _tag_tuple(tags):
            validate_name(tag, what="tag")
        for stamp in (created_after, created_before):
            if stamp is not None and stamp.tzinfo is None:
                raise ValidationError("created_after/created_before must be timezone-aware")
        flt = ListFilter(
            user_id=user_id,
            status=status,
            tags=list(tags),
            created_after=created_after,
            created_before=created_before,
            include_deleted=include_deleted,
            after=_decode_cursor(cursor),
            limit=limit + 1,
        )

        def read(r: Any) -> list[SessionRow]:
            ids = r.list_session_ids(flt)
            rows = {row.id: row for row in r.session_rows(ids)}
            return [rows[i] for i in ids if i in rows]

        rows = self.backend.read(read)
        more = len(rows) > limit
        rows = rows[:limit]
        items = tuple(self._session(row) for row in rows)
        next_cursor = _encode_cursor(items[-1].created_at, items[-1].id) if more and items else None
        return Page(items=items, next_cursor=next_cursor)

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = _UNSET,
        user_id: str | None = _UNSET,
        tags: Sequence[str] = _UNSET,
        status: str = _UNSET,
        metadata: Mapping[str, Any] = _UNSET,
    ) -> Session:
        """Change a session's editable fields; those not given stay as they are."""
        given: dict[str, Any] = {
            k: v
            for k, v in {
                "title": title,
                "user_id": user_id,
                "tags": tags,
                "status": status,
                "metadata": metadata,
            }.items()
            if v is not _UNSET
        }
        if "tags" in given:
            given["tags"] = _tag_tuple(given["tags"])
        if "metadata" in given:
            given["metadata"] = dict(given["metadata"])
        fields: SessionFields = _validated(SessionFields, given)
        props: dict[str, Any] = {k: getattr(fields, k) for k in given}
        if "tags" in props:
            props["tags"] = list(props["tags"])
        if "metadata" in props:
            props["metadata"] = self._check_metadata(props["metadata"])

        def compute(tx: Writer) -> tuple[Session, list[MirrorOp]]:
            row = self._live_row(session_id)
            props["updated_at"] = utcnow()
            tx.update_session(session_id, props)
            new = SessionRow({**row.props, **props}, row.head_id, row.head, row.fork)
            return self._session(new), [lambda m: m.put_session(new)]

        return self._write([(session_id, APPEND)], compute)

    def delete_session(self, session_id: str, *, purge: bool = False) -> None:
        """Delete a session: it stops taking writes and leaves listings.

        Its node stays as a tombstone while forks of it exist, so they keep their lineage,
        and every message on a remaining session's history stays. ``purge`` (or a later
        ``purge()``) removes the messages no live session reaches and tombstones that
        nothing needs. Deleting twice is a no-op.
        """

        def compute(tx: Writer) -> tuple[None, list[MirrorOp]]:
            row = self._stored_row(session_id)
            if row.props.get("status") == DELETED:
                raise _Rollback(None)
            now = utcnow()
            props = {"status": DELETED, "deleted_at": now, "updated_at": now}
            tx.update_session(session_id, props)
            new = SessionRow({**row.props, **props}, row.head_id, row.head, row.fork)
            return None, [lambda m: m.put_session(new)]

        self._write([(session_id, APPEND)], compute)
        if purge:
            self.purge()

    # -- messages ------------------------------------------------------------------------

    def _head(self, session_id: str) -> _Head:
        row = self.mirror.row(session_id)
        return _Head(
            row.head_id, row.head, self.mirror.length(session_id), self.mirror.next_idx(session_id)
        )

    def _append_rows(
        self,
        tx: Writer,
        session_id: str,
        row: SessionRow,
        at: _Head,
        items: list[NewMessage],
        ids: list[str],
        copied_from: Sequence[str | None] | None = None,
    ) -> tuple[list[Message], list[MirrorOp]]:
        """Write ``items`` after ``at`` in ``session_id``: the core of every append."""
        now = utcnow()
        rows: list[dict[str, Any]] = []
        topo: list[TopoRow] = []
        prev_id, prev_ref = at.head_id, at.head
        for i, (item, mid) in enumerate(zip(items, ids, strict=True)):
            idx, pos = at.next_idx + i, at.length + i
            props: dict[str, Any] = {
                "tenant": self.tenant,
                "id": mid,
                "session_id": session_id,
                "idx": idx,
                "pos": pos,
                "role": item.role,
                "created_at": item.created_at or now,
                "provider": item.provider,
                "model": item.model,
                "input_tokens": item.input_tokens,
                "output_tokens": item.output_tokens,
                "cost": item.cost,
                "tool_name": item.tool_name,
                "tool_call_id": item.tool_call_id,
                "metadata": _json(item.metadata),
                "copied_from": copied_from[i] if copied_from else None,
                **self.codec.encode(item.content),
            }
            rows.append(props)
            topo.append(TopoRow(session_id, idx, mid, prev_ref))
            prev_id, prev_ref = mid, (session_id, idx)
        length, next_idx = at.length + len(items), at.next_idx + len(items)
        tx.append_messages(session_id, at.head_id, rows, length, next_idx, now)
        new_props = {**row.props, "length": length, "next_idx": next_idx, "updated_at": now}
        new_row = SessionRow(new_props, prev_id, prev_ref, row.fork)

        def patch(m: Mirror) -> None:
            m.put_messages(topo)
            m.put_session(new_row)

        return [self._message(p) for p in rows], [patch]

    def append(
        self, session_id: str, messages: MessageInput | Sequence[MessageInput]
    ) -> list[Message]:
        """Append one or more messages to a session's history, in one transaction.

        Give messages ids (UUIDs) to make a retried append idempotent: an append whose ids
        are all stored in this session already returns the stored messages.

        Raises:
            ValidationError: bad input (nothing written). LimitExceededError: over the limits.
            SessionNotFoundError, SessionDeletedError, ConflictError: ids used elsewhere.
        """
        items = self._prepare(messages)
        ids = [m.id or new_id() for m in items]
        # Fresh ids cannot be stored yet on the first attempt; a retry may follow a commit
        # whose outcome was unknown, so from then on the ids are looked up first.
        attempts = 0 if all(m.id is None for m in items) else 1

        def compute(tx: Writer) -> tuple[list[Message], list[MirrorOp]]:
            nonlocal attempts
            attempts += 1
            row = self._live_row(session_id)
            owners = tx.message_owners(ids) if attempts > 1 else {}
            if owners:
                if len(owners) == len(ids) and set(owners.values()) == {session_id}:
                    stored = {p["id"]: p for p in tx.message_rows(ids)}
                    raise _Rollback([self._message(stored[i]) for i in ids])
                raise ConflictError(f"message ids already stored: {sorted(owners)}")
            return self._append_rows(tx, session_id, row, self._head(session_id), items, ids)

        return self._write([(session_id, APPEND)], compute)

    def add_message(self, session_id: str, role: str, content: str = "", **fields: Any) -> Message:
        """Append one message given as keyword arguments; returns it."""
        return self.append(session_id, {"role": role, "content": content, **fields})[0]

    def messages(self, session_id: str, start: int = 0, stop: int | None = None) -> list[Message]:
        """The session's history, or its window ``start:stop`` (slice rules), oldest first."""
        self._known(session_id)
        with self.mirror.lock:
            ids = self.mirror.history_ids(session_id)[start:stop]
        return self._fetch(ids)

    def _fetch(self, ids: Sequence[str]) -> list[Message]:
        found: dict[str, dict[str, Any]] = {}
        for begin in range(0, len(ids), 2000):
            chunk = list(ids[begin : begin + 2000])

            def read(r: Reader, chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return r.message_rows(chunk)

            for p in self.backend.read(read):
                found[p["id"]] = p
        missing = [i for i in ids if i not in found]
        if missing:  # written or purged by another process meanwhile
            raise ConflictError(f"messages changed during the read: {missing[:3]}; retry")
        return [self._message(found[i]) for i in ids]

    def get_message(self, message_id: str) -> Message:
        """One message by id.

        Raises:
            MessageNotFoundError: no such message in this tenant.
        """
        from session_graph.ids import validate_message_id

        try:
            mid = validate_message_id(message_id)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        rows = self.backend.read(lambda r: r.message_rows([mid]))
        if not rows:
            raise MessageNotFoundError(f"no message {message_id!r}")
        return self._message(rows[0])

    def message_count(self, session_id: str) -> int:
        """How many messages the session's history holds (shared ones included)."""
        self._known(session_id)
        return self.mirror.length(session_id)

    def history_ids(self, session_id: str) -> list[str]:
        """Message ids of the session's history, oldest first (from the mirror)."""
        self._known(session_id)
        with self.mirror.lock:
            return self.mirror.history_ids(session_id)

    def pop_last(self, session_id: str) -> Message:
        """Remove the newest message from the session's history and return it, atomically.

        The message itself is deleted unless another session's history holds it (a fork
        made at it, or after it); then only this session's head moves back.

        Raises:
            MessageNotFoundError: the history is empty.
        """

        def compute(tx: Writer) -> tuple[Message, list[MirrorOp]]:
            row = self._live_row(session_id)
            at = self._head(session_id)
            if at.head is None or at.head_id is None:
                raise MessageNotFoundError(f"session {session_id!r} has no messages")
            popped = self._message(tx.message_rows([at.head_id])[0])
            prev = self.mirror.prev(at.head)
            prev_id = None if prev is None else self.mirror.message_id(prev)
            removed = self._removable(session_id, [at.head])
            return popped, self._move_head(
                tx, session_id, row, prev_id, prev, at.length - 1, removed
            )

        return self._write([(session_id, RESET)], compute)

    def clear_history(self, session_id: str) -> int:
        """Empty the session's history; returns how many messages it held.

        Messages other sessions' histories hold stay (forks keep theirs); the rest are deleted.
        """

        def compute(tx: Writer) -> tuple[int, list[MirrorOp]]:
            row = self._live_row(session_id)
            at = self._head(session_id)
            chain: list[MsgRef] = []
            ref = at.head
            while ref is not None and ref[0] == session_id:
                chain.append(ref)
                ref = self.mirror.prev(ref)
            removed = self._removable(session_id, chain)
            return at.length, self._move_head(tx, session_id, row, None, None, 0, removed)

        return self._write([(session_id, RESET)], compute)

    def _removable(self, session_id: str, chain: list[MsgRef]) -> list[MsgRef]:
        """The newest-first prefix of ``chain`` (own messages) that nothing else holds."""
        gone: set[MsgRef] = set()
        out: list[MsgRef] = []
        for ref in chain:
            if ref[0] != session_id or self.mirror.needed(ref, {session_id}, gone):
                break
            gone.add(ref)
            out.append(ref)
        return out

    def _move_head(
        self,
        tx: Writer,
        session_id: str,
        row: SessionRow,
        head_id: str | None,
        head: MsgRef | None,
        length: int,
        removed: list[MsgRef],
    ) -> list[MirrorOp]:
        seg = self.mirror.segment(session_id)
        gone = {idx for _, idx in removed}
        next_idx = len(seg)
        while next_idx > 0 and (next_idx - 1 in gone or not seg.exists(next_idx - 1)):
            next_idx -= 1
        if removed:
            tx.delete_messages([self.mirror.message_id(r) for r in removed])
        now = utcnow()
        tx.set_head(session_id, head_id, length, next_idx, now)
        new_row = SessionRow(
            {**row.props, "length": length, "next_idx": next_idx, "updated_at": now},
            head_id,
            head,
            row.fork,
        )

        def patch(m: Mirror) -> None:
            m.remove_messages(removed)
            m.put_session(new_row)

        return [patch]

    def search(self, text: str, *, limit: int = 50) -> list[Message]:
        """Messages whose content contains ``text`` (case-insensitive), newest first.

        Raises:
            EncryptionError: content is encrypted at rest, so the database cannot search it.
        """
        if self.codec.encrypts:
            raise EncryptionError("search is unavailable when message content is encrypted")
        if not text:
            raise ValidationError("search text must not be empty")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise ValidationError("search limit must be between 1 and 10000")
        return [self._message(p) for p in self.backend.read(lambda r: r.search(text, limit))]

    # -- forks ---------------------------------------------------------------------------

    def _fork_position(self, parent: str, at: int | str | None) -> int:
        length = self.mirror.length(parent)
        if at is None:
            return length - 1
        if isinstance(at, bool):
            raise ValidationError("fork point must be an index or a message id")
        if isinstance(at, int):
            position = at + length if at < 0 else at
            if not 0 <= position < length:
                raise ForkPointError(
                    f"fork point {at} is outside session {parent!r} (it has {length} messages)"
                )
            return position
        if isinstance(at, str):
            try:
                from session_graph.ids import validate_message_id

                located = self.mirror.locate(parent, validate_message_id(at))
            except ValueError:
                located = None
            if located is None:
                raise ForkPointError(f"message {at!r} is not in the history of {parent!r}")
            return located[1]
        raise ValidationError("fork point must be an index or a message id")

    def _create_forks(
        self, tx: Writer, parent: str, position: int, specs: list[dict[str, Any]]
    ) -> tuple[list[Session], list[SessionRow], list[MirrorOp]]:
        """Create fork sessions of ``parent`` whose histories end at ``position`` (-1: empty)."""
        parent_row = self._live_row(parent)
        ref = self.mirror.ref_at(parent, position) if position >= 0 else None
        at_id = None if ref is None else self.mirror.message_id(ref)
        ids = [spec["id"] for spec in specs]
        existing = {row.id: row for row in tx.session_rows(ids)}
        if existing:
            mine = [
                r
                for r in existing.values()
                if r.fork and r.fork["parent_id"] == parent and r.fork.get("at") == at_id
            ]
            if len(mine) == len(ids) == len(existing):  # a retried, already committed fork
                raise _Rollback([self._session(existing[i]) for i in ids])
            raise SessionExistsError(f"session ids taken: {sorted(existing)}")
        now = utcnow()
        rows, edges, out, mirror_rows = [], [], [], []
        for spec in specs:
            props = {
                "tenant": self.tenant,
                "id": spec["id"],
                "title": spec.get("title"),
                "user_id": parent_row.props.get("user_id"),
                "tags": list(spec.get("tags", ())),
                "status": "active",
                "metadata": spec["metadata"],
                "created_at": now,
                "updated_at": now,
                "length": position + 1,
                "next_idx": 0,
            }
            fork = {
                "at": at_id,
                "position": position,
                "reason": spec.get("reason"),
                "metadata": spec["fork_metadata"],
                "created_at": now,
            }
            rows.append(props)
            edges.append({"child_id": spec["id"], "parent_id": parent, "props": fork})
            row = SessionRow(props, at_id, ref, {**fork, "parent_id": parent})
            mirror_rows.append(row)
            out.append(self._session(row))
        tx.create_sessions(rows)
        tx.create_fork_edges(edges)
        if at_id is not None:
            for spec in specs:
                tx.set_head(spec["id"], at_id, position + 1, 0, now)

        def patch(m: Mirror) -> None:
            for row in mirror_rows:
                m.put_session(row)

        return out, mirror_rows, [patch]

    def _fork_spec(
        self,
        id: str | None,
        title: str | None,
        tags: Sequence[str],
        metadata: Mapping[str, Any] | None,
        reason: str | None,
        fork_metadata: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        fields: NewSession = _validated(
            NewSession,
            {"id": id, "title": title, "tags": _tag_tuple(tags), "metadata": dict(metadata or {})},
        )
        if reason is not None and len(reason) > 1000:
            raise ValidationError("fork reason is longer than 1000 characters")
        from session_graph.models import check_metadata, check_text

        try:
            check_text(reason, "reason")
            fork_meta = check_metadata(dict(fork_metadata or {}))
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return {
            "id": fields.id or new_id(),
            "title": fields.title,
            "tags": fields.tags,
            "metadata": self._check_metadata(fields.metadata),
            "reason": reason,
            "fork_metadata": self._check_metadata(fork_meta),
        }

    def fork(
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
    ) -> Session:
        """Branch a session at a message: a new session whose history is the parent's up to it.

        Nothing is copied: the fork's head points at the parent's message, so forking costs
        the same at any history length.

        Args:
            at: position in the history (negative counts from the end) or a message id;
                None forks at the newest message.
            id: the fork's session id (generated when omitted; give one for idempotent retries).
            reason, fork_metadata: kept on the FORKED_FROM relationship.
        """
        spec = self._fork_spec(id, title, tags, metadata, reason, fork_metadata)

        def compute(tx: Writer) -> tuple[list[Session], list[MirrorOp]]:
            self._live_row(session_id)
            position = self._fork_position(session_id, at)
            created, _, ops = self._create_forks(tx, session_id, position, [spec])
            return created, ops

        return self._write([(spec["id"], APPEND)], compute)[0]

    def explore(
        self,
        session_id: str,
        at: int | str | None,
        strategies: Sequence[str | Strategy | Mapping[str, Any]],
    ) -> list[Session]:
        """Create one fork per strategy at the same message, in one transaction.

        Each fork's FORKED_FROM carries the strategy name as ``reason`` and in its metadata.
        """
        if not strategies:
            raise ValidationError("explore needs at least one strategy")
        parsed: list[Strategy] = [
            _validated(Strategy, {"name": s} if isinstance(s, str) else s) for s in strategies
        ]
        names = [s.name for s in parsed]
        if len(set(names)) != len(names):
            raise ValidationError("strategy names must be distinct")
        specs = [
            self._fork_spec(
                s.id, s.title or s.name, s.tags, s.metadata, s.name, {"strategy": s.name}
            )
            for s in parsed
        ]

        def compute(tx: Writer) -> tuple[list[Session], list[MirrorOp]]:
            self._live_row(session_id)
            position = self._fork_position(session_id, at)
            created, _, ops = self._create_forks(tx, session_id, position, specs)
            return created, ops

        return self._write([(s["id"], APPEND) for s in specs], compute)

    def edit(
        self,
        session_id: str,
        index: int,
        message: MessageInput,
        *,
        id: str | None = None,
        reason: str = "edit",
    ) -> Session:
        """Edit-as-branch: a fork at ``index - 1`` whose next message is ``message``.

        The original session is untouched; the new fork holds the edited history.
        """
        item = self._prepare(message)
        spec = self._fork_spec(id, None, (), None, reason, {"edited_position": index})
        mid = item[0].id or new_id()

        def compute(tx: Writer) -> tuple[list[Session], list[MirrorOp]]:
            self._live_row(session_id)
            position = self._fork_position(session_id, index)
            created, rows, ops = self._create_forks(tx, session_id, position - 1, [spec])
            row = rows[0]
            at = _Head(row.head_id, row.head, position, 0)
            _, more = self._append_rows(tx, row.id, row, at, item, [mid])
            return created, [*ops, *more]

        created = self._write([(spec["id"], APPEND)], compute)
        return self.get_session(created[0].id)

    def merge(self, fork_id: str, into: str | None = None) -> MergeResult:
        """Bring a fork's diverging messages into another session of its tree (default: parent).

        Fast-forward when the target has not moved past the common message: the target's
        head moves to the fork's head and shares its messages. Otherwise the diverging
        messages are appended to the target as copies, each linked to its original by
        ``COPIED_FROM``. Either way a ``MERGED_INTO`` relationship records the merge and the
        fork gets status ``merged``; it stays readable and writable, and deleting it later
        never removes messages the target's history holds.

        Raises:
            MergeConflictError: the sessions are in different trees, or are the same session.
        """

        def compute(tx: Writer) -> tuple[MergeResult, list[MirrorOp]]:
            fork_row = self._live_row(fork_id)
            target = into if into is not None else lineage.parent(self.mirror.graph, fork_id)
            if target is None:
                raise MergeConflictError(f"session {fork_id!r} is not a fork; name a target")
            into_row = self._live_row(target)
            graph = self.mirror.graph
            if target == fork_id or lineage.root(graph, target) != lineage.root(graph, fork_id):
                raise MergeConflictError(
                    f"{fork_id!r} and {target!r} are not two sessions of one tree"
                )
            common = lineage.common_ancestor(self.mirror, fork_id, target)
            position = -1 if common is None else common[1]
            fork_len, into_len = self.mirror.length(fork_id), self.mirror.length(target)
            start = position + 1
            merged_head = fork_row.props.get("merged_head")
            if merged_head is not None and into_len - 1 != position:
                seen = self.mirror.locate(fork_id, merged_head)  # copied by an earlier merge
                if seen is not None and seen[1] >= start:
                    start = seen[1] + 1
            now = utcnow()
            ops: list[MirrorOp] = []
            copied: tuple[str, ...] = ()
            if start >= fork_len:
                mode = "up-to-date"
            elif into_len - 1 == position:
                mode = "fast-forward"
                ops = self._move_head(
                    tx, target, into_row, fork_row.head_id, fork_row.head, fork_len, []
                )
            else:
                mode = "copy"
                diverging = self.mirror.history_ids(fork_id)[start:]
                stored = {p["id"]: p for p in tx.message_rows(diverging)}
                originals = [self._message(stored[i]) for i in diverging]
                items = [
                    NewMessage(
                        role=o.role,
                        content=o.content,
                        provider=o.provider,
                        model=o.model,
                        input_tokens=o.input_tokens,
                        output_tokens=o.output_tokens,
                        cost=o.cost,
                        tool_name=o.tool_name,
                        tool_call_id=o.tool_call_id,
                        metadata=o.metadata,
                    )
                    for o in originals
                ]
                new_ids = [new_id() for _ in items]
                _, ops = self._append_rows(
                    tx, target, into_row, self._head(target), items, new_ids, diverging
                )
                pairs = zip(new_ids, diverging, strict=True)
                tx.link_copies([{"id": n, "original": o} for n, o in pairs])
                copied = tuple(new_ids)
            if mode != "up-to-date":
                tx.create_merge_edge(
                    fork_id, target, {"mode": mode, "copied": len(copied), "created_at": now}
                )
            status = {"status": "merged", "updated_at": now, "merged_head": fork_row.head_id}
            tx.update_session(fork_id, status)
            merged_row = SessionRow(
                {**fork_row.props, **status}, fork_row.head_id, fork_row.head, fork_row.fork
            )
            ops.append(lambda m: m.put_session(merged_row))
            return MergeResult(mode, fork_id, target, position, copied), ops

        target_id = into if into is not None else self.parent(fork_id)
        if target_id is None:
            raise MergeConflictError(f"session {fork_id!r} is not a fork; name a target")
        return self._write([(fork_id, APPEND), (target_id, APPEND)], compute)

    # -- lineage (answered on the mirror) ------------------------------------------------

    def parent(self, session_id: str) -> str | None:
        """The session this one was forked from (None for a root)."""
        with self.mirror.lock:
            return lineage.parent(self.mirror.graph, self._known(session_id))

    def children(self, session_id: str) -> list[str]:
        """Direct forks, oldest first."""
        with self.mirror.lock:
            return lineage.children(self.mirror.graph, self._known(session_id))

    def siblings(self, session_id: str) -> list[str]:
        """Other forks of the same parent."""
        with self.mirror.lock:
            return lineage.siblings(self.mirror.graph, self._known(session_id))

    def ancestors(self, session_id: str) -> list[str]:
        """Parent, grandparent, ... root: nearest first."""
        with self.mirror.lock:
            return lineage.ancestors(self.mirror.graph, self._known(session_id))

    def descendants(self, session_id: str) -> list[str]:
        """Every fork below the session, nearest first."""
        with self.mirror.lock:
            return lineage.descendants(self.mirror.graph, self._known(session_id))

    def root(self, session_id: str) -> str:
        """The root session of the tree."""
        with self.mirror.lock:
            return lineage.root(self.mirror.graph, self._known(session_id))

    def depth(self, session_id: str) -> int:
        """Number of forks between the root and the session."""
        with self.mirror.lock:
            return lineage.depth(self.mirror.graph, self._known(session_id))

    def common_ancestor(self, a: str, b: str) -> Message | None:
        """The newest message both sessions' histories hold, or None."""
        self._maybe_refresh()
        self._stored_row(a)
        self._stored_row(b)
        with self.mirror.lock:
            found = lineage.common_ancestor(self.mirror, a, b)
        return None if found is None else self._fetch([found[0]])[0]

    # -- maintenance ---------------------------------------------------------------------

    def purge(self) -> PurgeReport:
        """Delete messages no live session's history reaches, and tombstones nothing needs.

        The rule: a message stays while the history of any session that is not deleted
        holds it. A deleted session's node stays while it has forks (so they keep their
        lineage) or owns a message that stays; otherwise it goes.
        """

        def compute(tx: Writer) -> tuple[PurgeReport, list[MirrorOp]]:
            m = self.mirror
            reached: dict[str, list[tuple[int, int]]] = {}
            for sid in m.sessions():
                if m.row(sid).props.get("status") == DELETED:
                    continue
                for run in m.runs(m.head(sid)):
                    reached.setdefault(run.session_id, []).append((run.start, run.end))
            doomed: list[MsgRef] = []
            for sid in m.sessions():
                seg = m.segment(sid)
                keep = bytearray(len(seg))
                for start, end in reached.get(sid, []):
                    keep[start : end + 1] = b"\x01" * (end - start + 1)
                doomed.extend((sid, i) for i in range(len(seg)) if not keep[i] and seg.exists(i))
            left = {sid: len(m.segment(sid)) for sid in m.sessions()}
            for sid, _ in doomed:
                left[sid] -= 1
            graph = m.graph.copy()
            dropped: list[str] = []
            changed = True
            while changed:
                changed = False
                for sid in list(graph.nodes):
                    props = m.row(sid).props
                    orphan = "tenant" not in props or props.get("status") == DELETED
                    if orphan and graph.out_degree(sid) == 0 and left.get(sid, 0) <= 0:
                        graph.remove_node(sid)
                        dropped.append(sid)
                        changed = True
            if not doomed and not dropped:
                raise _Rollback(PurgeReport(0, 0))
            touched = sorted({sid for sid, _ in doomed} | set(dropped))
            tx.record([(sid, RESET) for sid in touched])
            ids = [m.message_id(ref) for ref in doomed]
            tx.delete_messages(ids)
            gone = set(doomed)
            # only deleted sessions' heads can be unreached; the kept ones lose their head
            headless = [
                sid for sid in {sid for sid, _ in doomed} - set(dropped) if m.row(sid).head in gone
            ]
            for sid in headless:
                tx.set_head(sid, None, 0, int(m.row(sid).props.get("next_idx") or 0), utcnow())
            tx.delete_sessions([s for s in dropped if "tenant" in m.row(s).props])

            def patch(mm: Mirror) -> None:
                mm.remove_messages(doomed)
                for sid in dropped:
                    mm.drop_session(sid)
                for sid in headless:
                    row = mm.row(sid)
                    mm.put_session(SessionRow({**row.props, "length": 0}, None, None, row.fork))

            return PurgeReport(len(ids), len(dropped)), [patch]

        return self._write([], compute)

    def trim_change_log(self) -> int:
        """Drop change-log entries older than ``change_log_retention``; returns how many."""
        return self.backend.trim_changes(self.settings.change_log_retention)


def _tag_tuple(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags as a tuple; one bare string is refused rather than split into characters."""
    if isinstance(tags, str | bytes):
        raise ValidationError("tags must be a list of strings, not one string")
    return tuple(tags)


def _encode_cursor(created: datetime, session_id: str) -> str:
    raw = json.dumps([created.isoformat(), session_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        created, sid = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        stamp = datetime.fromisoformat(created)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValidationError("cursor is not one that list_sessions returned") from exc
    if stamp.tzinfo is None or not isinstance(sid, str):
        raise ValidationError("cursor is not one that list_sessions returned")
    return stamp, sid


__all__ = ["MergeResult", "PurgeReport", "SessionStore"]
