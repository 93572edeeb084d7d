"""Lineage reads on the mirror: parent, children, siblings, ancestors, descendants, root, depth."""

from __future__ import annotations

import pytest

from session_graph import SessionNotFoundError, SessionStore


@pytest.fixture
def tree(store: SessionStore) -> SessionStore:
    r"""root -> a -> a1, a2 ; root -> b ; a1 -> a1x."""
    store.create_session("root")
    store.append("root", [{"role": "user", "content": f"r{i}"} for i in range(4)])
    store.fork("root", at=1, id="a")
    store.append("a", {"role": "assistant", "content": "a"})
    store.fork("root", at=3, id="b")
    store.fork("a", at=2, id="a1")
    store.fork("a", at=0, id="a2")
    store.append("a1", {"role": "user", "content": "a1"})
    store.fork("a1", at=3, id="a1x")
    return store


def test_parent_children_siblings(tree: SessionStore) -> None:
    assert tree.parent("root") is None and tree.parent("a1") == "a"
    assert tree.children("root") == ["a", "b"]
    assert tree.children("a") == ["a1", "a2"]
    assert tree.siblings("a1") == ["a2"] and tree.siblings("root") == []


def test_ancestors_descendants_root_depth(tree: SessionStore) -> None:
    assert tree.ancestors("a1x") == ["a1", "a", "root"]
    assert tree.descendants("root") == ["a", "b", "a1", "a2", "a1x"]
    assert tree.descendants("a1x") == []
    assert tree.root("a1x") == "root" and tree.root("root") == "root"
    assert [tree.depth(s) for s in ("root", "a", "a1", "a1x")] == [0, 1, 2, 3]


def test_common_ancestor_message(tree: SessionStore) -> None:
    def common(x: str, y: str) -> str | None:
        found = tree.common_ancestor(x, y)
        return None if found is None else found.content

    assert common("a", "b") == "r1"
    assert common("a1x", "a2") == "r0"
    assert common("a1x", "a1") == "a1"
    assert common("root", "root") == "r3"
    tree.create_session("other")
    tree.append("other", {"role": "user", "content": "x"})
    assert common("root", "other") is None


def test_lineage_of_unknown_session(tree: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        tree.children("nope")
