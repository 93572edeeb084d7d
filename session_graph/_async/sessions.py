"""Sessions: create, read, list, update, delete."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from session_graph._async.base import AsyncStoreBase
from session_graph.core import (
    check_bool,
    check_int,
    check_lookup_name,
    check_mapping,
    check_optional_datetime,
    check_optional_lookup_name,
    checked_session_id,
    decode_cursor,
    encode_cursor,
    metadata_json,
    new_op,
    session_from_record,
    tag_tuple,
    to_ms,
    validated,
)
from session_graph.errors import (
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
)
from session_graph.ids import new_id
from session_graph.models import DELETED, NewSession, Page, Session, SessionFields, utcnow
from session_graph.records import ListFilter, SessionRecord, TreeNode

_UNSET: Any = object()


class AsyncSessionsMixin(AsyncStoreBase):
    async def create_session(
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
        """Create a session, the root of a new fork tree (``id`` generated when omitted).

        Raises:
            SessionExistsError: ``id`` is taken and ``get_or_create`` is false.
            SessionDeletedError: ``id`` names a deleted session.
        """
        spec = validated(
            NewSession,
            {
                "id": id,
                "title": title,
                "user_id": user_id,
                "tags": tag_tuple(tags),
                "status": status,
                "metadata": check_mapping(metadata, "metadata", optional=True),
            },
        )
        check_bool(get_or_create, "get_or_create")
        props = {
            "id": spec.id or new_id(),
            "title": spec.title,
            "user_id": spec.user_id,
            "tags": list(spec.tags),
            "status": spec.status,
            "metadata": metadata_json(spec.metadata, self.settings),
        }
        op = new_op()
        rec, mine = await self.backend.auto(lambda ops: ops.create_session(props, op))
        if rec.status == DELETED:
            raise SessionDeletedError(f"session {rec.id!r} was deleted")
        if not mine and not get_or_create:
            raise SessionExistsError(f"session {rec.id!r} exists")
        if mine:
            node = TreeNode(rec.id, None, to_ms(rec.props["created_at"]), rec.status, None)
            with self.mirror.lock:
                self.mirror.put_new_root(
                    node, int(rec.props.get("tree_version") or 0), time.monotonic()
                )
        return session_from_record(rec)

    async def get_session(self, session_id: str) -> Session:
        """A session by id (deleted ones too: they stay readable).

        Raises:
            SessionNotFoundError: no such session in this tenant.
        """
        return session_from_record(await self._record(session_id))

    async def list_sessions(
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
        """Sessions oldest first, filtered; ``Page.next_cursor`` fetches the next page.

        Filters find what is stored, so they take any id ``get_session`` takes: a value no
        session can have simply matches nothing.
        """
        tag_list = [check_lookup_name(tag, "tag") for tag in tag_tuple(tags)]
        user_id = check_optional_lookup_name(user_id, "user_id")
        status = check_optional_lookup_name(status, "status")
        created_after = check_optional_datetime(created_after, "created_after")
        created_before = check_optional_datetime(created_before, "created_before")
        check_bool(include_deleted, "include_deleted")
        check_int(limit, "limit", minimum=1, maximum=10_000)
        flt = ListFilter(
            user_id=user_id,
            status=status,
            tags=tag_list,
            created_after=created_after,
            created_before=created_before,
            include_deleted=include_deleted,
            after=decode_cursor(cursor),
            limit=limit + 1,
        )

        async def read(ops: Any) -> list[SessionRecord]:
            ids = await ops.list_session_ids(flt)
            rows = {row.id: row for row in await ops.session_rows(ids)}
            return [rows[i] for i in ids if i in rows]

        rows = await self.backend.read(read)
        more = len(rows) > limit
        items = tuple(session_from_record(row) for row in rows[:limit])
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def update_session(
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
        checked_session_id(session_id)
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
            given["tags"] = tag_tuple(given["tags"])
        if "metadata" in given:
            given["metadata"] = check_mapping(given["metadata"], "metadata")
        fields = validated(SessionFields, given)
        props: dict[str, Any] = {k: getattr(fields, k) for k in given}
        if "tags" in props:
            props["tags"] = list(props["tags"])
        if "metadata" in props:
            props["metadata"] = metadata_json(props["metadata"], self.settings)
        rec = await self._update(session_id, props)
        if rec is None:
            raise SessionDeletedError(f"session {session_id!r} is deleted; it takes no writes")
        return session_from_record(rec)

    async def _update(self, session_id: str, props: dict[str, Any]) -> SessionRecord | None:
        """Set ``props``; None when the session is deleted (nothing written)."""
        checked_session_id(session_id)
        op = new_op()
        outcome = await self.backend.auto(lambda ops: ops.update_session(session_id, props, op))
        if outcome is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        if outcome.status == "deleted":
            return None
        rec = outcome.record
        if outcome.status == "ok":
            self._patch_status(rec.root, outcome.tree_version, rec.id, rec.status)
        return rec

    async def delete_session(self, session_id: str, *, purge: bool = False) -> None:
        """Delete a session: it stops taking writes and leaves listings.

        Its node stays as a tombstone while forks of it exist, so they keep their lineage,
        and every message on a remaining session's history stays. ``purge`` (or a later
        ``purge()``) removes the messages no live session reaches and tombstones that
        nothing needs. Deleting twice is a no-op.
        """
        checked_session_id(session_id)
        check_bool(purge, "purge")
        await self._update(session_id, {"status": DELETED, "deleted_at": utcnow()})
        if purge:
            await self.purge()  # type: ignore[attr-defined]
