"""The storage boundary: what a backend must do, and the plain records it trades in.

A backend stores one tenant's sessions, messages, fork edges and change log. All tree logic
(history resolution, fork points, reachability) lives above it, in the mirror and the store;
a backend only runs simple reads and writes inside transactions. ``MemoryBackend`` is the
reference implementation; ``Neo4jBackend`` is the system of record. Both pass the same
conformance suite (``tests/conformance``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

MsgRef = tuple[str, int]
"""A message's place: (id of the session that appended it, its idx among that session's own)."""

APPEND = "append"
"""Change kind: the session's row changed and it may have new own messages (idx only grew)."""
RESET = "reset"
"""Change kind: reload the session wholly (messages were removed, or it was purged)."""


@dataclass(slots=True)
class SessionRow:
    """A session as stored: its properties, head and fork edge."""

    props: dict[str, Any]
    head_id: str | None = None
    head: MsgRef | None = None
    fork: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.props["id"])


@dataclass(slots=True, frozen=True)
class TopoRow:
    """One message's place in the chain, without its body."""

    session_id: str
    idx: int
    id: str
    prev: MsgRef | None


@dataclass(slots=True, frozen=True)
class Change:
    seq: int
    session_id: str
    kind: str


@dataclass(slots=True)
class ChangeFeed:
    """The log's current seq and its entries after the seq asked for, oldest first."""

    seq: int
    changes: list[Change] = field(default_factory=list)


@dataclass(slots=True)
class ListFilter:
    user_id: str | None = None
    status: str | None = None
    tags: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_deleted: bool = False
    after: tuple[datetime, str] | None = None
    limit: int = 100


class Reader(Protocol):
    """Reads, inside one transaction."""

    def session_rows(self, ids: Sequence[str] | None) -> list[SessionRow]: ...
    def list_session_ids(self, flt: ListFilter) -> list[str]: ...
    def message_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...
    def message_owners(self, ids: Sequence[str]) -> dict[str, str]: ...
    def topology(self) -> Iterable[TopoRow]: ...
    def topology_from(self, wants: Sequence[tuple[str, int]]) -> list[TopoRow]: ...
    def changes_since(self, seq: int) -> ChangeFeed: ...
    def current_seq(self) -> int: ...
    def search(self, text: str, limit: int) -> list[dict[str, Any]]: ...


class Writer(Reader, Protocol):
    """Reads and writes inside one write transaction that holds the tenant's change lock."""

    prev_seq: int
    seq: int

    def record(self, changes: Sequence[tuple[str, str]]) -> None:
        """Add change-log entries to this transaction's seq."""
        ...

    def create_sessions(self, rows: Sequence[dict[str, Any]]) -> None: ...
    def update_session(self, session_id: str, props: dict[str, Any]) -> None: ...
    def set_head(
        self, session_id: str, head_id: str | None, length: int, next_idx: int, now: datetime
    ) -> None: ...
    def create_fork_edges(self, forks: Sequence[dict[str, Any]]) -> None: ...
    def create_merge_edge(self, fork_id: str, into_id: str, props: dict[str, Any]) -> None: ...
    def append_messages(
        self,
        session_id: str,
        head_id: str | None,
        rows: Sequence[dict[str, Any]],
        length: int,
        next_idx: int,
        now: datetime,
    ) -> None:
        """Create ``rows`` after ``head_id`` as the session's newest messages; move HEAD."""
        ...
    def link_copies(self, links: Sequence[dict[str, str]]) -> None: ...
    def delete_messages(self, ids: Sequence[str]) -> None: ...
    def delete_sessions(self, ids: Sequence[str]) -> None: ...


class Backend(ABC):
    """One tenant's view of a store. Subclasses implement transactions; nothing else."""

    tenant: str

    @abstractmethod
    def setup(self) -> list[str]:
        """Apply pending schema migrations; returns the versions applied now (repeatable)."""

    @abstractmethod
    def applied_migrations(self) -> list[str]:
        """Schema versions already applied."""

    @abstractmethod
    def read(self, fn: Callable[[Reader], T]) -> T:
        """Run ``fn`` in one read transaction (retried on transient failures)."""

    @abstractmethod
    def write(self, changes: Sequence[tuple[str, str]], fn: Callable[[Writer], T]) -> tuple[T, int]:
        """Run ``fn`` in one write transaction after recording ``(session_id, kind)`` changes.

        The transaction first bumps the tenant's change counter, which serialises writers of
        the tenant. ``fn`` may run more than once when a transient failure is retried, so it
        must be a pure function of what it reads. Returns ``fn``'s result and the new seq.
        """

    def run_saved(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a saved query from ``cypher/`` (backends without Cypher raise)."""
        raise NotImplementedError(f"{type(self).__name__} does not run Cypher")

    def trim_changes(self, keep: int) -> int:
        """Drop change-log entries older than the newest ``keep``; returns how many."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook; the memory backend holds nothing
        """Release connections; the backend is unusable afterwards."""
