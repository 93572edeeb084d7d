"""Side-by-side comparison of sessions of one tree: where they part, and what each branch cost.

``compare(store, ["a", "b", "c"])`` finds the newest message every history holds (the common
fork point), takes each session's messages after it (its *diverging* part) and sums tokens,
cost and wall time over them, next to whole-history totals and numeric scores read from the
session metadata. ``Comparison.best("cost")`` then picks a branch.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from session_graph.core import check_lookup_name
from session_graph.errors import ConflictError, ValidationError
from session_graph.ids import BYTES_TYPES
from session_graph.models import Message
from session_graph.store import AsyncSessionStore, SessionStore

# metric name -> (BranchMetrics attribute, is a higher value better by default)
METRICS: dict[str, tuple[str, bool]] = {
    "messages": ("diverging_count", True),
    "history_messages": ("message_count", True),
    "input_tokens": ("input_tokens", False),
    "output_tokens": ("output_tokens", False),
    "tokens": ("total_tokens", False),
    "history_tokens": ("history_total_tokens", False),
    "cost": ("cost", False),
    "history_cost": ("history_cost", False),
    "wall_time": ("wall_time", False),
}
ALIASES = {
    "total_tokens": "tokens",
    "diverging_messages": "messages",
    "message_count": "history_messages",
}
SCORE_PREFIX = "score:"  # forces ``best`` to read a score whose key is also a metric name


class CommonPoint(BaseModel):
    """The newest message all compared histories hold."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    position: int


class BranchMetrics(BaseModel):
    """One compared session: its diverging messages and what they cost.

    Token and cost sums are None when no message of the part reports them (so ``best`` can
    tell "free" from "unknown"). ``diff`` is the unified diff of the first session's
    diverging part against this one's (empty for the first session itself).
    """

    model_config = ConfigDict(frozen=True)

    session_id: str
    title: str | None
    status: str
    messages: tuple[Message, ...]
    message_count: int
    diverging_count: int
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost: float | None
    history_input_tokens: int | None
    history_output_tokens: int | None
    history_total_tokens: int | None
    history_cost: float | None
    providers: tuple[str, ...]
    models: tuple[str, ...]
    wall_time: float | None
    scores: dict[str, int | float] = Field(default_factory=dict)
    diff: str = ""

    def metric(self, by: str) -> int | float | None:
        """The value of a metric (see ``METRICS``) or score key; None when the branch lacks it."""
        name = ALIASES.get(by, by)
        if name in METRICS:
            value: int | float | None = getattr(self, METRICS[name][0])
            return value
        return self.scores.get(by.removeprefix(SCORE_PREFIX))


class Comparison(BaseModel):
    """The result of ``compare``: the common fork point and one ``BranchMetrics`` per session."""

    model_config = ConfigDict(frozen=True)

    fork_point: CommonPoint | None
    branches: list[BranchMetrics]
    score_keys: tuple[str, ...] = ()

    def branch(self, session_id: str) -> BranchMetrics:
        """The metrics of one compared session."""
        for b in self.branches:
            if b.session_id == session_id:
                return b
        raise KeyError(session_id)

    def best(self, by: str, *, highest: bool | None = None) -> BranchMetrics:
        """The branch with the best value of a metric or score; ties go to the earliest branch.

        By default the lowest ``cost``, ``tokens`` (and their variants) and ``wall_time`` win,
        and the highest ``messages`` and scores win; ``highest`` overrides that. Branches
        lacking the metric are skipped.

        Raises:
            ValidationError: no branch has the metric.
        """
        name = ALIASES.get(by, by)
        if highest is None:
            highest = METRICS[name][1] if name in METRICS else True
        scored = [(v, b) for b in self.branches if (v := b.metric(by)) is not None]
        if not scored:
            if name in METRICS or by.removeprefix(SCORE_PREFIX) in self.score_keys:
                raise ValidationError(
                    f"no compared session has a value for {by!r}: none of the messages the "
                    "branches added carry one (compare by another metric)"
                )
            known = ", ".join(METRICS)
            scores = ", ".join(self.score_keys) or "none"
            raise ValidationError(f"unknown metric {by!r} (metrics: {known}; scores: {scores})")
        pick = max if highest else min
        return pick(scored, key=lambda item: item[0])[1]


def compare(
    store: SessionStore, session_ids: Sequence[str], *, score_keys: Sequence[str] | None = None
) -> Comparison:
    """Compare two or more sessions of one tree.

    Args:
        session_ids: the sessions, in the order the branches are reported; the first one is
            the reference every ``diff`` is taken against.
        score_keys: metadata keys to read as scores (a dotted key such as ``"eval.accuracy"``
            also reaches into nested objects); None reads every top-level number.

    Raises:
        ValidationError: ``store`` is not a ``SessionStore``, ``session_ids`` is not a list
            (or tuple) of at least two distinct session ids, or ``score_keys`` is not a list
            of non-empty strings.
        ConflictError: the sessions are not all in one tree.
        SessionNotFoundError: a session does not exist.
    """
    _check_store(store)
    if isinstance(session_ids, (str, *BYTES_TYPES)):
        raise ValidationError("compare takes a sequence of session ids, not one string")
    if not isinstance(session_ids, Sequence):
        raise ValidationError(
            "compare takes a list or tuple of session ids (in the order to report them), "
            f"not {type(session_ids).__name__}"
        )
    ids = [check_lookup_name(sid) for sid in session_ids]
    if len(ids) < 2:
        raise ValidationError(f"compare needs at least two sessions, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise ValidationError("compare got the same session twice")
    keys = None if score_keys is None else _score_keys(score_keys)
    roots = {sid: store.root(sid) for sid in ids}  # validates ids and refreshes the mirror
    if len(set(roots.values())) > 1:
        trees = ", ".join(f"{sid!r} (root {r!r})" for sid, r in roots.items())
        raise ConflictError(f"sessions to compare must share one tree: {trees}")
    sessions = {sid: store.get_session(sid) for sid in ids}

    # Histories form a prefix tree, so the prefix common to all is the shortest of the
    # prefixes each shares with the first one.
    commons = [store.common_ancestor(ids[0], other) for other in ids[1:]]
    lengths = {sid: sessions[sid].message_count for sid in ids}
    fork_point = None
    position = -1
    if all(c is not None for c in commons):
        first = min((c for c in commons if c is not None), key=lambda c: c.position)
        position = first.position
        fork_point = CommonPoint(message_id=first.id, position=position)

    shared = store.messages(ids[0], 0, position + 1) if position >= 0 else []
    parts = {sid: store.messages(sid, position + 1, lengths[sid]) for sid in ids}
    reference = _diff_lines(parts[ids[0]])
    branches: list[BranchMetrics] = []
    for sid in ids:
        own = parts[sid]
        whole = [*shared, *own]
        session = sessions[sid]
        diff = "" if sid == ids[0] else _diff(reference, _diff_lines(own), ids[0], sid)
        metrics = BranchMetrics(
            session_id=sid, title=session.title, status=session.status, messages=tuple(own),
            message_count=len(whole), diverging_count=len(own),
            input_tokens=_sum(m.input_tokens for m in own),
            output_tokens=_sum(m.output_tokens for m in own),
            total_tokens=_tokens(own), cost=_cost(own),
            history_input_tokens=_sum(m.input_tokens for m in whole),
            history_output_tokens=_sum(m.output_tokens for m in whole),
            history_total_tokens=_tokens(whole), history_cost=_cost(whole),
            providers=_unique(m.provider for m in own), models=_unique(m.model for m in own),
            wall_time=_wall_time(own), scores=_scores(session.metadata, keys), diff=diff,
        )  # fmt: skip
        branches.append(metrics)
    found: dict[str, None] = dict.fromkeys(keys or ())
    for b in branches:
        found.update(dict.fromkeys(b.scores))
    return Comparison(fork_point=fork_point, branches=branches, score_keys=tuple(found))


def _check_store(store: Any) -> None:
    """``compare`` reads through the sync API: a ``SessionStore`` or one with its methods."""
    needed = ("root", "get_session", "common_ancestor", "messages")
    if isinstance(store, AsyncSessionStore) or not all(
        callable(getattr(store, name, None)) for name in needed
    ):
        raise ValidationError(
            f"compare takes a SessionStore, not {type(store).__name__} "
            "(an AsyncSessionStore's methods must be awaited)"
        )


def _score_keys(keys: Sequence[str]) -> list[str]:
    if isinstance(keys, (str, *BYTES_TYPES)):
        raise ValidationError("score_keys takes a sequence of keys, not one string")
    if not isinstance(keys, Sequence):
        kind = type(keys).__name__
        raise ValidationError(f"score_keys takes a list or tuple of keys, not {kind}")
    for key in keys:
        if not isinstance(key, str) or not key:
            raise ValidationError(f"score keys must be non-empty strings, got {key!r}")
    return list(dict.fromkeys(keys))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scores(metadata: Mapping[str, Any], keys: list[str] | None) -> dict[str, int | float]:
    if keys is None:
        return {k: v for k, v in metadata.items() if _number(v)}
    out: dict[str, int | float] = {}
    for key in keys:
        value = metadata.get(key, _lookup(metadata, key))  # a literal key beats a dotted path
        if _number(value):
            out[key] = value
    return out


def _lookup(metadata: Mapping[str, Any], dotted: str) -> Any:
    value: Any = metadata
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _tokens(messages: Sequence[Message]) -> int | None:
    return _sum(
        None if m.input_tokens is None and m.output_tokens is None
        else (m.input_tokens or 0) + (m.output_tokens or 0)
        for m in messages
    )  # fmt: skip


def _cost(messages: Sequence[Message]) -> float | None:
    present = [m.cost for m in messages if m.cost is not None]
    return math.fsum(present) if present else None  # fsum: exact-as-possible money totals


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


def _wall_time(messages: Sequence[Message]) -> float | None:
    if len(messages) < 2:
        return None
    # the span of the timestamps, so out-of-order created_at values never give a negative time
    stamps = [m.created_at for m in messages]
    return (max(stamps) - min(stamps)).total_seconds()


def _diff_lines(messages: Sequence[Message]) -> list[str]:
    """Messages as ``role: content`` lines; further lines of a message are indented."""
    lines: list[str] = []
    for m in messages:
        first, *rest = m.content.split("\n")
        lines.append(f"{m.role}: {first}")
        lines.extend(f"  {line}" for line in rest)
    return lines


def _diff(a: list[str], b: list[str], a_name: str, b_name: str) -> str:
    return "\n".join(difflib.unified_diff(a, b, fromfile=a_name, tofile=b_name, lineterm=""))


__all__ = ["METRICS", "BranchMetrics", "CommonPoint", "Comparison", "compare"]
