"""Plain records the backends hand to the store: what is stored, before it becomes a model.

Both backends (Neo4j, memory) speak in these, sync and async alike, so the store's logic and
the conformance suite see one shape whatever answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from session_graph.history import Runs

OPTIONAL_FIELDS = (
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "tool_name",
    "tool_call_id",
    "name",
    "native_format",
)
"""Message properties stored only when they have a value (lean rows)."""

MESSAGE_FIELDS = (
    "id",
    "session_id",
    "pos",
    "role",
    "content",
    "content_enc",
    "created_at",
    *OPTIONAL_FIELDS,
    "metadata",
    "copied_from",
    "kind",
    "body",
    "body_enc",
)
"""The order of a message row: every read returns messages as lists in this order, with
``created_at`` in epoch milliseconds (a plain integer is far cheaper to move than a temporal)."""

MessageRow = list[Any]

WRITABLE_CLOSED = ("deleted",)
"""Statuses that refuse appends (the statements get them as ``$closed``)."""


@dataclass(slots=True)
class SessionRecord:
    """A session as stored: its properties, head message id and fork edge."""

    props: dict[str, Any]
    head_id: str | None = None
    fork: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.props["id"])

    @property
    def root(self) -> str:
        return str(self.props.get("root") or self.props["id"])

    @property
    def status(self) -> str:
        return str(self.props.get("status") or "active")

    @property
    def length(self) -> int:
        return int(self.props.get("length") or 0)

    @property
    def runs(self) -> Runs:
        p = self.props
        return Runs.of(p.get("run_owner"), p.get("run_start"), p.get("run_end"))

    def op_result(self, op: str) -> str | None:
        """What write call ``op`` recorded as its result on this session, if it did."""
        ops = self.props.get("ops") or []
        results = self.props.get("op_results") or []
        for i, recorded in enumerate(ops):
            if recorded == op:
                return results[i] if i < len(results) else ""
        return None


@dataclass(slots=True)
class AppendOutcome:
    """What the append statement did: ``status`` 'ok', 'replay', 'conflict' or a closed status."""

    status: str
    base: int
    at_ms: int


@dataclass(slots=True)
class Window:
    """Part of a history: the history's length and the rows asked for, oldest first."""

    length: int
    version: int
    rows: list[MessageRow] = field(default_factory=list)


@dataclass(slots=True)
class ForkOutcome:
    """What the fork statement did: ``status`` 'ok', 'replay', 'exists', 'deleted',
    'message' (the message is not on the history) or 'position' (out of range)."""

    status: str
    position: int | None
    at: str | None
    tree_version: int
    root: str
    created_ms: int
    made: list[SessionRecord] = field(default_factory=list)


@dataclass(slots=True)
class UpdateOutcome:
    """What the update statement did: ``status`` 'ok', 'replay' or 'deleted'."""

    status: str
    tree_version: int
    record: SessionRecord


@dataclass(slots=True)
class TreeNode:
    """One session of a fork tree, as the mirror keeps it."""

    id: str
    parent: str | None
    created_ms: int
    status: str
    position: int | None


@dataclass(slots=True)
class TreeRecord:
    """A whole fork tree: its root, version and sessions."""

    root: str
    version: int
    nodes: list[TreeNode]


@dataclass(slots=True)
class TreeSession:
    """A session of a tree with what purge needs: its runs and whether forks hang off it."""

    id: str
    status: str
    runs: Runs
    next_idx: int
    has_forks: bool


@dataclass(slots=True)
class ListFilter:
    """A page of ``list_sessions``."""

    user_id: str | None = None
    status: str | None = None
    tags: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_deleted: bool = False
    after: tuple[datetime, str] | None = None
    limit: int = 100
