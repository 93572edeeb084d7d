"""What every concern of the store shares: the backend, settings, codec and mirror."""

from __future__ import annotations

import time

from session_graph._async.backend import AsyncBackend
from session_graph.config import Settings
from session_graph.core import check_instance, checked_session_id
from session_graph.crypto import ContentCodec
from session_graph.errors import SessionDeletedError, SessionNotFoundError
from session_graph.mirror import Mirror
from session_graph.models import DELETED
from session_graph.records import SessionRecord, TreeNode


class AsyncStoreBase:
    """State and helpers the concern mixins build on (see ``AsyncSessionStore``)."""

    def __init__(self, backend: AsyncBackend, settings: Settings | None = None) -> None:
        check_instance(backend, AsyncBackend, "backend")
        check_instance(settings, Settings, "settings", optional=True)
        self.backend = backend
        self.settings = settings or Settings()
        self.mirror = Mirror(self.settings.mirror_max_sessions)
        secret = self.settings.encryption_keys
        self.codec = ContentCodec.from_secret(secret.get_secret_value() if secret else None)

    @property
    def tenant(self) -> str:
        return self.backend.tenant

    async def _record(self, session_id: str) -> SessionRecord:
        """A stored session (deleted ones included), read now."""
        checked_session_id(session_id)
        rows = await self.backend.auto(lambda ops: ops.session_rows([session_id]), write=False)
        if not rows:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return rows[0]

    @staticmethod
    def _live(rec: SessionRecord) -> SessionRecord:
        if rec.status == DELETED:
            raise SessionDeletedError(f"session {rec.id!r} is deleted; it takes no writes")
        return rec

    # -- the mirror ----------------------------------------------------------------------

    async def _tree(self, session_id: str) -> str:
        """Make sure the session's tree is in the mirror and fresh enough; returns its root.

        Fresh enough: confirmed within ``mirror_max_lag`` seconds. Otherwise one small read
        checks the root's tree_version, and a changed tree is loaded again (one read).
        """
        checked_session_id(session_id)
        now = time.monotonic()
        with self.mirror.lock:
            root = self.mirror.fresh_root(session_id, now, self.settings.mirror_max_lag)
            known = self.mirror.root_of(session_id)
        if root is not None:
            return root
        if known is not None:
            versions = await self.backend.auto(lambda ops: ops.tree_versions([known]), write=False)
            with self.mirror.lock:
                if self.mirror.confirm(known, versions.get(known), now) and (
                    session_id in self.mirror
                ):
                    return known
        record = await self.backend.auto(lambda ops: ops.tree_of(session_id), write=False)
        if record is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        with self.mirror.lock:
            self.mirror.put_tree(record, now)
        return record.root

    def _patch_tree(self, root: str, version: int, nodes: list[TreeNode]) -> None:
        with self.mirror.lock:
            self.mirror.patch(root, version, nodes)

    def _patch_status(self, root: str, version: int, session_id: str, status: str) -> None:
        with self.mirror.lock:
            self.mirror.set_status(root, version, session_id, status)
