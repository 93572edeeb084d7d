"""A session's history as *runs*: pure functions, no I/O.

Every message belongs to the session that appended it (its *owner*) and has an ``idx``, its
ordinal among that owner's messages (never reused while the message exists). A history is a
list of runs, oldest first; a run is ``(owner, first idx, last idx)``: consecutive own
messages of one owner. A root session that only appends has one run. A fork inherits its
parent's runs cut at the fork point and adds its own run when it appends. ``pop_last`` and
``clear_history`` shorten or drop runs.

The runs sit on the session node (``run_owner``, ``run_start``, ``run_end``), so a window of a
history is a handful of index range seeks on ``(tenant, session_id, idx)``, whatever the
history's length, and a fork copies a few integers instead of messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Run:
    """Own messages ``start..end`` (inclusive) of ``owner``, at positions ``pos..``."""

    owner: str
    start: int
    end: int
    pos: int

    def __len__(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Runs:
    """A history as runs, oldest first (the three lists stored on a session node)."""

    owner: tuple[str, ...] = ()
    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()

    @classmethod
    def of(
        cls, owner: Sequence[str] | None, start: Sequence[int] | None, end: Sequence[int] | None
    ) -> Runs:
        return cls(tuple(owner or ()), tuple(start or ()), tuple(end or ()))

    def __iter__(self) -> Iterator[Run]:
        pos = 0
        for owner, start, end in zip(self.owner, self.start, self.end, strict=True):
            yield Run(owner, start, end, pos)
            pos += end - start + 1

    def __len__(self) -> int:
        """Number of messages (not runs)."""
        return sum(e - s + 1 for s, e in zip(self.start, self.end, strict=True))

    def props(self) -> dict[str, list[str] | list[int]]:
        """The node properties that store these runs."""
        return {
            "run_owner": list(self.owner),
            "run_start": list(self.start),
            "run_end": list(self.end),
        }

    def window(self, start: int, stop: int) -> list[Run]:
        """The parts of runs that hold positions ``start..stop-1`` (already normalised)."""
        out: list[Run] = []
        for run in self:
            lo, hi = max(start, run.pos), min(stop, run.pos + len(run))
            if lo < hi:
                out.append(
                    Run(run.owner, run.start + lo - run.pos, run.start + hi - 1 - run.pos, lo)
                )
        return out

    def cut(self, position: int) -> Runs:
        """The history of positions ``0..position`` (a fork at ``position``; -1: empty)."""
        owner: list[str] = []
        start: list[int] = []
        end: list[int] = []
        for run in self:
            if run.pos > position:
                break
            owner.append(run.owner)
            start.append(run.start)
            end.append(min(run.end, run.start + position - run.pos))
        return Runs(tuple(owner), tuple(start), tuple(end))

    def appended(self, owner: str, first_idx: int, count: int) -> Runs:
        """After ``count`` new own messages of ``owner`` from ``first_idx`` on."""
        if self.owner and self.owner[-1] == owner and self.end[-1] == first_idx - 1:
            return Runs(self.owner, self.start, (*self.end[:-1], first_idx + count - 1))
        return Runs(
            (*self.owner, owner), (*self.start, first_idx), (*self.end, first_idx + count - 1)
        )

    def covered(self) -> dict[str, list[tuple[int, int]]]:
        """Idx ranges per owner that this history holds."""
        out: dict[str, list[tuple[int, int]]] = {}
        for run in self:
            out.setdefault(run.owner, []).append((run.start, run.end))
        return out


def common_length(a: Runs, b: Runs) -> int:
    """How many leading messages two histories share."""
    shared = 0
    for ra, rb in zip(a, b, strict=False):
        if ra.owner != rb.owner or ra.start != rb.start:
            break
        shared += min(len(ra), len(rb))
        if ra.end != rb.end:
            break
    return shared


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges, sorted and merged where they touch or overlap."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
