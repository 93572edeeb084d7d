"""The in-process mirror of a tenant's topology: sessions, fork edges and message chains.

Sessions are networkx nodes and forks are edges (parent -> child), so lineage questions are
plain graph algorithms. Message chains are *not* graph nodes: each session keeps its own
messages as a ``Segment``, 16 bytes per message id in one ``bytearray``, with the rare
non-default predecessor links in a small dict. A history is then a few slices of a few
segments (a "run" per session it passes through), so reads cost the number of forks on the
way, not the number of messages.

The mirror follows the store's change log: ``seq`` is the last change it reflects.
"""

from __future__ import annotations

import threading
import uuid
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import networkx as nx

from session_graph.backends.base import RESET, MsgRef, Reader, SessionRow, TopoRow

NIL = bytes(16)


def id_bytes(message_id: str) -> bytes:
    return uuid.UUID(message_id).bytes


class Segment:
    """A session's own messages in append order (``idx``), as packed 16-byte UUIDs.

    ``exc`` holds a message's predecessor where it is not the default: the previous own
    message for idx > 0, nothing for idx 0. That happens at a fork's first message (it
    follows the parent's fork point), after ``pop_last`` kept a message another session
    needs, and after ``clear_history``.
    """

    __slots__ = ("exc", "exc_keys", "own")

    def __init__(self) -> None:
        self.own = bytearray()
        self.exc: dict[int, MsgRef | None] = {}
        self.exc_keys: list[int] = []

    def __len__(self) -> int:
        return len(self.own) // 16

    def nbytes(self) -> int:
        return len(self.own) + 100 * len(self.exc)

    def id_at(self, idx: int) -> str | None:
        raw = bytes(self.own[16 * idx : 16 * idx + 16])
        return None if raw == NIL else str(uuid.UUID(bytes=raw))

    def ids(self, start: int, end: int) -> list[str]:
        """Ids of own messages ``start..end`` inclusive."""
        raw = self.own
        return [
            str(uuid.UUID(bytes=bytes(raw[16 * i : 16 * i + 16]))) for i in range(start, end + 1)
        ]

    def exists(self, idx: int) -> bool:
        return 0 <= idx < len(self) and self.own[16 * idx : 16 * idx + 16] != NIL

    def put(self, owner: str, idx: int, message_id: str, prev: MsgRef | None) -> None:
        size = len(self)
        if idx >= size:
            self.own.extend(NIL * (idx + 1 - size))
        self.own[16 * idx : 16 * idx + 16] = id_bytes(message_id)
        default = (owner, idx - 1) if idx > 0 else None
        if prev != default:
            if idx not in self.exc:
                insort(self.exc_keys, idx)
            self.exc[idx] = prev
        elif idx in self.exc:
            del self.exc[idx]
            self.exc_keys.remove(idx)

    def remove(self, idx: int) -> MsgRef | None:
        """Forget own message ``idx``; returns its non-default predecessor, if it had one."""
        had: MsgRef | None = None
        if idx in self.exc:
            had = self.exc.pop(idx)
            self.exc_keys.remove(idx)
        self.own[16 * idx : 16 * idx + 16] = NIL
        while len(self.own) >= 16 and self.own[-16:] == NIL:
            del self.own[-16:]
        return had

    def prev(self, owner: str, idx: int) -> MsgRef | None:
        if idx in self.exc:
            return self.exc[idx]
        return (owner, idx - 1) if idx > 0 else None

    def run_start(self, idx: int) -> int:
        """The first idx of the run of default links that ends at ``idx``."""
        at = bisect_right(self.exc_keys, idx)
        return self.exc_keys[at - 1] if at else 0

    def find(self, raw: bytes, start: int, end: int) -> int:
        """Idx of the message id ``raw`` within own ``start..end``, or -1."""
        pos = self.own.find(raw, 16 * start, 16 * (end + 1))
        while pos != -1 and pos % 16:
            pos = self.own.find(raw, pos + 1, 16 * (end + 1))
        return -1 if pos == -1 else pos // 16


@dataclass(frozen=True, slots=True)
class Run:
    """``end - start + 1`` consecutive own messages of ``session_id`` on a history."""

    session_id: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start + 1


class Mirror:
    """Topology of one tenant, kept in step with the backend through its change log."""

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        self.seq = -1
        self.lock = threading.RLock()
        self.heads_at: dict[MsgRef, set[str]] = defaultdict(set)
        self.exc_targets: dict[MsgRef, set[MsgRef]] = defaultdict(set)

    # -- reading -------------------------------------------------------------------------

    def __contains__(self, session_id: object) -> bool:
        return session_id in self.graph

    def row(self, session_id: str) -> SessionRow:
        row: SessionRow = self.graph.nodes[session_id]["row"]
        return row

    def segment(self, session_id: str) -> Segment:
        seg: Segment = self.graph.nodes[session_id]["seg"]
        return seg

    def head(self, session_id: str) -> MsgRef | None:
        return self.row(session_id).head

    def length(self, session_id: str) -> int:
        return int(self.row(session_id).props.get("length") or 0)

    def next_idx(self, session_id: str) -> int:
        return len(self.segment(session_id))

    def prev(self, ref: MsgRef) -> MsgRef | None:
        return self.segment(ref[0]).prev(*ref)

    def message_id(self, ref: MsgRef) -> str:
        found = self.segment(ref[0]).id_at(ref[1])
        if found is None:
            raise KeyError(f"no message at {ref}")
        return found

    def runs(self, ref: MsgRef | None) -> list[Run]:
        """The history ending at ``ref`` as runs, oldest first."""
        out: list[Run] = []
        while ref is not None:
            owner, idx = ref
            seg = self.segment(owner)
            start = seg.run_start(idx)
            out.append(Run(owner, start, idx))
            ref = seg.prev(owner, start)
        out.reverse()
        return out

    def history_ids(self, session_id: str) -> list[str]:
        ids: list[str] = []
        for run in self.runs(self.head(session_id)):
            ids.extend(self.segment(run.session_id).ids(run.start, run.end))
        return ids

    def ref_at(self, session_id: str, position: int) -> MsgRef:
        """The message at 0-based ``position`` of a session's history."""
        seen = 0
        for run in self.runs(self.head(session_id)):
            if position < seen + len(run):
                return (run.session_id, run.start + position - seen)
            seen += len(run)
        raise IndexError(position)

    def locate(self, session_id: str, message_id: str) -> tuple[MsgRef, int] | None:
        """Where ``message_id`` is on a session's history: its ref and position."""
        raw = id_bytes(message_id)
        seen = 0
        for run in self.runs(self.head(session_id)):
            idx = self.segment(run.session_id).find(raw, run.start, run.end)
            if idx != -1:
                return (run.session_id, idx), seen + idx - run.start
            seen += len(run)
        return None

    def needed(self, ref: MsgRef, ignore_heads: set[str], ignore_refs: set[MsgRef]) -> bool:
        """Does anything but ``ignore_heads``/``ignore_refs`` hold this message in a history?"""
        if self.heads_at.get(ref, set()) - ignore_heads:
            return True
        if self.exc_targets.get(ref, set()) - ignore_refs:
            return True
        owner, idx = ref
        seg = self.segment(owner)
        nxt = (owner, idx + 1)
        return seg.exists(idx + 1) and idx + 1 not in seg.exc and nxt not in ignore_refs

    def memory_bytes(self) -> int:
        """Approximate bytes held for message topology (segments and link exceptions)."""
        return sum(self.segment(n).nbytes() for n in self.graph)

    # -- changing ------------------------------------------------------------------------

    def put_session(self, row: SessionRow) -> None:
        sid = row.id
        if sid in self.graph:
            old: SessionRow = self.graph.nodes[sid]["row"]
            if old.head is not None:
                self._unhead(old.head, sid)
            self.graph.nodes[sid]["row"] = row
        else:
            self.graph.add_node(sid, row=row, seg=Segment())
        if row.head is not None:
            self.heads_at[row.head].add(sid)
        for parent in list(self.graph.predecessors(sid)):
            self.graph.remove_edge(parent, sid)
        if row.fork is not None:
            parent = str(row.fork["parent_id"])
            if parent not in self.graph:
                self.graph.add_node(parent, row=SessionRow({"id": parent}), seg=Segment())
            self.graph.add_edge(parent, sid)

    def _unhead(self, ref: MsgRef, sid: str) -> None:
        holders = self.heads_at.get(ref)
        if holders is not None:
            holders.discard(sid)
            if not holders:
                del self.heads_at[ref]

    def put_messages(self, rows: Iterable[TopoRow]) -> None:
        for row in rows:
            if row.session_id not in self.graph:
                self.graph.add_node(
                    row.session_id, row=SessionRow({"id": row.session_id}), seg=Segment()
                )
            seg = self.segment(row.session_id)
            old = seg.exc.get(row.idx)
            if old is not None:
                self._untarget(old, (row.session_id, row.idx))
            seg.put(row.session_id, row.idx, row.id, row.prev)
            if row.idx in seg.exc and row.prev is not None:
                self.exc_targets[row.prev].add((row.session_id, row.idx))

    def _untarget(self, target: MsgRef, source: MsgRef) -> None:
        sources = self.exc_targets.get(target)
        if sources is not None:
            sources.discard(source)
            if not sources:
                del self.exc_targets[target]

    def remove_messages(self, refs: Iterable[MsgRef]) -> None:
        for ref in sorted(refs, key=lambda r: (r[0], -r[1])):
            owner, idx = ref
            if owner not in self.graph:
                continue
            had = self.segment(owner).remove(idx)
            if had is not None:
                self._untarget(had, ref)

    def reset_segment(self, session_id: str) -> None:
        seg = self.segment(session_id)
        for idx, prev in seg.exc.items():
            if prev is not None:
                self._untarget(prev, (session_id, idx))
        self.graph.nodes[session_id]["seg"] = Segment()

    def drop_session(self, session_id: str) -> None:
        if session_id not in self.graph:
            return
        self.reset_segment(session_id)
        head = self.row(session_id).head
        if head is not None:
            self._unhead(head, session_id)
        self.graph.remove_node(session_id)

    # -- following the backend -----------------------------------------------------------

    def load(self, reader: Reader, upto: int | None = None) -> None:
        """Replace everything with the backend's current state (as of seq ``upto`` if given)."""
        seq = reader.current_seq() if upto is None else upto
        rows = reader.session_rows(None)
        with self.lock:
            self.graph = nx.DiGraph()
            self.heads_at = defaultdict(set)
            self.exc_targets = defaultdict(set)
            for row in rows:
                self.put_session(row)
            self.put_messages(reader.topology())
            self.seq = seq

    def catch_up(self, reader: Reader, upto: int | None = None) -> None:
        """Apply the changes recorded after ``seq`` (a full load when the log has a gap).

        Inside a write transaction ``upto`` is the seq before it, so the transaction's own
        entry (already visible to it) is left for the patch applied after commit.
        """
        with self.lock:
            if self.seq < 0:
                self.load(reader, upto)
                return
            feed = reader.changes_since(self.seq)
            if upto is not None:
                feed.changes = [c for c in feed.changes if c.seq <= upto]
                feed.seq = upto
            if feed.seq == self.seq:
                return
            if feed.seq < self.seq or not feed.changes or feed.changes[0].seq != self.seq + 1:
                self.load(reader, upto)
                return
            kinds: dict[str, str] = {}
            for change in feed.changes:
                if kinds.get(change.session_id) != RESET:
                    kinds[change.session_id] = change.kind
            rows = {row.id: row for row in reader.session_rows(list(kinds))}
            wants: list[tuple[str, int]] = []
            for sid, kind in kinds.items():
                row = rows.get(sid)
                if row is None:
                    self.drop_session(sid)
                    continue
                if kind == RESET and sid in self.graph:
                    self.reset_segment(sid)
                self.put_session(row)
                wants.append((sid, len(self.segment(sid))))
            if wants:
                self.put_messages(reader.topology_from(wants))
            self.seq = feed.seq

    def sessions(self) -> Iterator[str]:
        return iter(self.graph.nodes)
