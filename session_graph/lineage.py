"""Lineage questions as plain functions over the mirror's fork graph (parent -> child edges)."""

from __future__ import annotations

import networkx as nx


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


def _by_creation(graph: nx.DiGraph, nodes: object) -> list[str]:
    """Oldest first; ties (same millisecond) by id."""
    return sorted((str(n) for n in nodes), key=lambda n: (graph.nodes[n]["created"], n))  # type: ignore[attr-defined]
