"""Lineage questions as plain functions over the mirror's fork graph (parent -> child edges)."""

from __future__ import annotations

from datetime import datetime, timezone

import networkx as nx

from session_graph.mirror import Mirror

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parent(graph: nx.DiGraph, session_id: str) -> str | None:
    """The session this one was forked from, or None for a root."""
    for p in graph.predecessors(session_id):
        return str(p)
    return None


def children(graph: nx.DiGraph, session_id: str) -> list[str]:
    """Direct forks of a session, oldest first."""
    return _by_creation(graph, graph.successors(session_id))


def siblings(graph: nx.DiGraph, session_id: str) -> list[str]:
    """Other forks of the same parent (none for a root)."""
    p = parent(graph, session_id)
    if p is None:
        return []
    return [c for c in children(graph, p) if c != session_id]


def ancestors(graph: nx.DiGraph, session_id: str) -> list[str]:
    """Parent, grandparent, ... up to the root: nearest first."""
    out: list[str] = []
    current = parent(graph, session_id)
    while current is not None:
        out.append(current)
        current = parent(graph, current)
    return out


def root(graph: nx.DiGraph, session_id: str) -> str:
    """The root of the session's tree (itself when it is not a fork)."""
    chain = ancestors(graph, session_id)
    return chain[-1] if chain else session_id


def depth(graph: nx.DiGraph, session_id: str) -> int:
    """How many forks lie between the root and this session (0 for a root)."""
    return len(ancestors(graph, session_id))


def descendants(graph: nx.DiGraph, session_id: str) -> list[str]:
    """Every fork below the session, breadth first (nearest first), ties by creation."""
    out: list[str] = []
    frontier = [session_id]
    while frontier:
        level: list[str] = []
        for node in frontier:
            level.extend(children(graph, node))
        out.extend(level)
        frontier = level
    return out


def subtree(graph: nx.DiGraph, session_id: str) -> nx.DiGraph:
    """The session and its descendants as a graph (a view: do not modify)."""
    return graph.subgraph([session_id, *descendants(graph, session_id)])


def common_ancestor(mirror: Mirror, a: str, b: str) -> tuple[str, int] | None:
    """The newest message both histories hold, as (message id, position), or None."""
    runs_a = mirror.runs(mirror.head(a))
    runs_b = mirror.runs(mirror.head(b))
    best: tuple[str, int] | None = None
    position = -1
    for ra, rb in zip(runs_a, runs_b, strict=False):
        if ra.session_id != rb.session_id or ra.start != rb.start:
            break
        end = min(ra.end, rb.end)
        position += end - ra.start + 1
        best = (mirror.message_id((ra.session_id, end)), position)
        if ra.end != rb.end:
            break
    return best


def _by_creation(graph: nx.DiGraph, nodes: object) -> list[str]:
    def key(node: str) -> tuple[bool, datetime, str]:
        created = graph.nodes[node]["row"].props.get("created_at")
        return (created is not None, created or _EPOCH, node)

    return sorted((str(n) for n in nodes), key=key)  # type: ignore[attr-defined]
