"""The storage boundary: what a backend must do, for one tenant.

A backend runs *operations* for one tenant. The hot path (create, append, a history window,
fork) is one statement each, run on its own (``auto``); the writes that must read before they
write (merge, clear_history, purge, edit) run several operations in one transaction
(``write``), which the backend retries as a whole on transient failures. Every operation is
idempotent under retries: ids are made before the first attempt and each write finds its own
earlier effect. ``AsyncMemoryBackend`` is the reference; ``AsyncNeo4jBackend`` the system of
record; both pass the conformance suite.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from session_graph.history import Runs
from session_graph.records import (
    AppendOutcome,
    ForkOutcome,
    ListFilter,
    MessageRow,
    SessionRecord,
    TreeRecord,
    TreeSession,
    UpdateOutcome,
    Window,
)

T = TypeVar("T")


class AsyncOps(Protocol):
    """The operations, each one statement, inside whatever transaction runs them."""

    async def session_rows(self, ids: Sequence[str]) -> list[SessionRecord]: ...
    async def create_session(self, props: dict[str, Any], op: str) -> tuple[SessionRecord, bool]:
        """Create a root session unless its id exists; returns it and whether ``op`` made it."""
        ...

    async def list_session_ids(self, flt: ListFilter) -> list[str]: ...
    async def update_session(
        self, session_id: str, props: dict[str, Any], op: str
    ) -> UpdateOutcome | None: ...
    async def append(
        self, session_id: str, rows: list[dict[str, Any]], ts: list[int | None] | None
    ) -> AppendOutcome | None:
        """Append rows as the session's newest messages (None: no such session)."""
        ...

    async def append_one(
        self, session_id: str, row: dict[str, Any], ts: int | None
    ) -> AppendOutcome | None:
        """Append one message (the hot path): None when the session is missing or closed;
        ``ConflictError`` when its id is stored already."""
        ...

    async def reserve_append(
        self, session_id: str, first_id: str, count: int, op: str
    ) -> tuple[str, int, int, str | None, Runs] | None:
        """Large appends, step 1: lock, reserve ``count`` idx values; returns
        ``(status, first idx, base position, head id, runs)``; a retried step (same ``op``)
        returns the same reservation with status 'reserved'."""
        ...

    async def write_chunk(
        self,
        session_id: str,
        rows: list[dict[str, Any]],
        ts: list[int | None] | None,
        prev_id: str | None,
        base: int,
        first: int,
    ) -> int | None:
        """Large appends, step 2 (per chunk): write messages off-history, after ``prev_id``;
        returns their creation time (epoch ms), None when an earlier try wrote them."""
        ...

    async def finish_append(
        self,
        session_id: str,
        last_id: str,
        base: int,
        head_id: str | None,
        props: dict[str, Any],
        op: str,
    ) -> str | None:
        """Large appends, step 3: move HEAD to ``last_id`` unless the session moved
        (``op`` finds a step whose answer was lost)."""
        ...

    async def window(
        self, session_id: str, start: int | None, stop: int | None
    ) -> Window | None: ...
    async def message_rows(self, ids: Sequence[str]) -> list[MessageRow]: ...
    async def pop(self, session_id: str, expect: str, op: str) -> str | None:
        """Pop the head if it is ``expect``; returns the status (None: no such session)."""
        ...

    async def fork(
        self,
        parent: str,
        at: int | None,
        at_id: str | None,
        children: list[dict[str, Any]],
        op: str,
        before: bool,
    ) -> ForkOutcome | None:
        """Fork at a position or message (``before``: just before it, as edit does)."""
        ...

    async def tree_of(self, session_id: str) -> TreeRecord | None: ...
    async def tree_versions(self, roots: Sequence[str]) -> dict[str, int | None]: ...
    async def search(
        self, text: str, limit: int, include_deleted: bool
    ) -> list[MessageRow]: ...
    async def encrypted_content(self) -> bool: ...
    async def lock(self, ids: Sequence[str]) -> dict[str, SessionRecord]:
        """Lock the sessions' tree roots, then the sessions (roots first, ids in order)."""
        ...

    async def own_ids(
        self, session_id: str, ranges: Sequence[tuple[int, int]]
    ) -> list[tuple[str, int]]:
        """``(id, idx)`` of the session's own messages in the idx ranges, by idx."""
        ...

    async def held(self, session_id: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` something outside ``ids`` holds (another HEAD, a later message)."""
        ...

    async def set_history(
        self, session_id: str, head_id: str | None, props: dict[str, Any]
    ) -> None: ...
    async def delete_messages(self, ids: Sequence[str]) -> None: ...
    async def link_copies(self, links: Sequence[dict[str, str]]) -> None: ...
    async def create_merge_edge(
        self, fork_id: str, into_id: str, props: dict[str, Any]
    ) -> None: ...
    async def record_op(
        self, session_id: str, op: str, result: str, props: dict[str, Any]
    ) -> None: ...
    async def bump_tree(self, root: str) -> int: ...
    async def tree_sessions(self, root: str) -> list[TreeSession]: ...
    async def roots(self, after: str | None, limit: int) -> list[str]: ...
    async def unreached(self, session_id: str, keep: Sequence[tuple[int, int]]) -> list[str]: ...
    async def delete_sessions(self, ids: Sequence[str]) -> None: ...


class AsyncBackend(ABC):
    """One tenant's view of a store."""

    tenant: str

    @abstractmethod
    async def setup(self) -> list[str]:
        """Apply pending schema migrations; returns the versions applied now (repeatable)."""

    @abstractmethod
    async def applied_migrations(self) -> list[str]:
        """Schema versions already applied."""

    @abstractmethod
    async def auto(self, fn: Callable[[AsyncOps], Awaitable[T]], *, write: bool = True) -> T:
        """Run ``fn``, which makes exactly one operation, on its own (one round trip)."""

    @abstractmethod
    async def read(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        """Run ``fn`` in one read transaction."""

    @abstractmethod
    async def write(self, fn: Callable[[AsyncOps], Awaitable[T]]) -> T:
        """Run ``fn`` in one write transaction; ``fn`` may run again when a try fails."""

    async def run_saved(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a saved query from ``cypher/`` (backends without Cypher raise)."""
        raise NotImplementedError(f"{type(self).__name__} does not run Cypher")

    async def close(self) -> None:  # noqa: B027 - optional hook; the memory backend holds nothing
        """Release connections; the backend is unusable afterwards."""
