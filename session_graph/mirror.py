"""The in-process mirror of fork trees: sessions and fork edges, nothing per message.

Sessions are networkx nodes and forks are edges (parent -> child), so lineage questions are
plain graph algorithms (``session_graph.lineage``). The mirror holds only the trees in use:
a tree is loaded whole the first time one of its sessions is asked about, kept with the
``tree_version`` its root had then, and evicted least-recently-used beyond ``max_sessions``.
Opening a store therefore loads nothing, and memory follows the trees in use, not the tenant.

Coherence: this process's writes patch the mirror at once (the write returns the tree's new
version; a gap means another process wrote too, and the tree is dropped to be reloaded).
Other processes' writes are seen when the tree's version is checked again, at most
``max_lag`` seconds after the last check. The mirror does no I/O: the store feeds it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import networkx as nx

from session_graph.records import TreeNode, TreeRecord


@dataclass(slots=True)
class TreeState:
    """What the mirror knows of one tree: its version and when that was last confirmed."""

    version: int
    checked_at: float
    sessions: set[str]


class Mirror:
    """Fork trees of one tenant, loaded on demand, bounded, kept fresh by version checks."""

    def __init__(self, max_sessions: int = 100_000) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        self.trees: OrderedDict[str, TreeState] = OrderedDict()
        self.roots: dict[str, str] = {}
        self.max_sessions = max_sessions
        self.lock = threading.RLock()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self.roots

    def __len__(self) -> int:
        return len(self.roots)

    def root_of(self, session_id: str) -> str | None:
        return self.roots.get(session_id)

    def fresh_root(self, session_id: str, now: float, max_lag: float) -> str | None:
        """The session's root when its tree was confirmed within ``max_lag`` seconds."""
        root = self.roots.get(session_id)
        if root is None:
            return None
        tree = self.trees[root]
        if now - tree.checked_at > max_lag:
            return None
        self.trees.move_to_end(root)
        return root

    def confirm(self, root: str, version: int | None, now: float) -> bool:
        """Record a version check; a changed (or vanished) tree is dropped. True if kept."""
        tree = self.trees.get(root)
        if tree is None:
            return False
        if version != tree.version:
            self.drop_tree(root)
            return False
        tree.checked_at = now
        self.trees.move_to_end(root)
        return True

    def put_tree(self, record: TreeRecord, now: float) -> None:
        """Replace a tree with what the database holds."""
        self.drop_tree(record.root)
        state = TreeState(record.version, now, set())
        self.trees[record.root] = state
        for node in record.nodes:
            self._add(record.root, node)
        for node in record.nodes:
            if node.parent is not None:
                self.graph.add_edge(node.parent, node.id)
        self._evict(keep=record.root)

    def put_new_root(self, node: TreeNode, version: int, now: float) -> None:
        """A root this process just created: a tree of one session (unless already known)."""
        if node.id not in self.trees and version == 0:
            self.put_tree(TreeRecord(node.id, version, [node]), now)

    def drop_tree(self, root: str) -> None:
        tree = self.trees.pop(root, None)
        if tree is None:
            return
        self.graph.remove_nodes_from(tree.sessions)
        for sid in tree.sessions:
            self.roots.pop(sid, None)

    def patch(self, root: str, version: int, nodes: list[TreeNode]) -> None:
        """Apply this process's own write: new or changed sessions at tree ``version``.

        Patching is only sound when the mirror had the version just before; otherwise another
        process wrote in between and the tree is dropped (reloaded when next asked).
        """
        tree = self.trees.get(root)
        if tree is None:
            return
        if tree.version != version - 1:
            self.drop_tree(root)
            return
        tree.version = version
        for node in nodes:
            self._add(root, node)
            if node.parent is not None:
                self.graph.add_edge(node.parent, node.id)

    def set_status(self, root: str, version: int, session_id: str, status: str) -> None:
        """Apply this process's own status change (delete, merge, update)."""
        tree = self.trees.get(root)
        if tree is None or session_id not in self.graph:
            self.drop_tree(root)
            return
        node: TreeNode = self.graph.nodes[session_id]["node"]
        self.patch(
            root, version, [TreeNode(node.id, node.parent, node.created_ms, status, node.position)]
        )

    def _add(self, root: str, node: TreeNode) -> None:
        self.graph.add_node(node.id, node=node, created=node.created_ms)
        self.roots[node.id] = root
        self.trees[root].sessions.add(node.id)

    def _evict(self, keep: str) -> None:
        while len(self.roots) > self.max_sessions and len(self.trees) > 1:
            oldest = next(iter(self.trees))
            if oldest == keep:
                self.trees.move_to_end(keep)
                continue
            self.drop_tree(oldest)
