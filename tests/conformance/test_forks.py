"""Forks share history: fork at any message, explore, edit-as-branch, pop/clear around forks."""

from __future__ import annotations

import pytest

from session_graph import ForkPointError, SessionStore, ValidationError


def chat(store: SessionStore, sid: str, n: int, prefix: str = "m") -> list[str]:
    store.create_session(sid)
    roles = ["user", "assistant"]
    return [
        m.id
        for m in store.append(
            sid, [{"role": roles[i % 2], "content": f"{prefix}{i}"} for i in range(n)]
        )
    ]


def contents(store: SessionStore, sid: str) -> list[str]:
    return [m.content for m in store.messages(sid)]


@pytest.mark.parametrize("at", [0, 2, 4, -1, -5])
def test_fork_at_first_middle_and_last(store: SessionStore, at: int) -> None:
    ids = chat(store, "p", 5)
    fork = store.fork("p", at=at, reason="try", fork_metadata={"why": "test"})
    k = at % 5
    assert fork.fork is not None
    assert (fork.fork.parent_id, fork.fork.position, fork.fork.message_id) == ("p", k, ids[k])
    assert fork.fork.reason == "try" and fork.fork.metadata == {"why": "test"}
    assert contents(store, fork.id) == [f"m{i}" for i in range(k + 1)]
    assert store.message_count(fork.id) == k + 1
    # shared, not copied: the fork's history is the parent's own message objects
    assert store.history_ids(fork.id) == ids[: k + 1]
    store.append(fork.id, {"role": "user", "content": "branch"})
    assert contents(store, fork.id)[-1] == "branch"
    assert contents(store, "p") == [f"m{i}" for i in range(5)]


def test_fork_by_message_id_and_default_head(store: SessionStore) -> None:
    ids = chat(store, "p", 3)
    assert store.fork("p", at=ids[1]).fork.position == 1  # type: ignore[union-attr]
    assert store.fork("p").fork.position == 2  # type: ignore[union-attr]


def test_bad_fork_points(store: SessionStore) -> None:
    chat(store, "p", 3)
    other = chat(store, "q", 1)
    for at in (3, -4, other[0], "not-a-uuid"):
        with pytest.raises(ForkPointError):
            store.fork("p", at=at)
    with pytest.raises(ValidationError):
        store.fork("p", at=1.5)  # type: ignore[arg-type]
    assert store.children("p") == []


def test_many_forks_of_one_message_get_distinct_ids(store: SessionStore) -> None:
    chat(store, "p", 2)
    forks = [store.fork("p", at=1).id for _ in range(25)]
    assert len(set(forks)) == 25
    assert sorted(store.children("p")) == sorted(forks)


def test_fork_with_given_id_is_idempotent(store: SessionStore) -> None:
    chat(store, "p", 2)
    a = store.fork("p", at=0, id="f")
    b = store.fork("p", at=0, id="f")
    assert a.id == b.id == "f" and store.children("p") == ["f"]


def test_forks_of_forks_at_several_depths(store: SessionStore) -> None:
    chat(store, "root", 4)
    f1 = store.fork("root", at=1, id="f1")
    store.append(
        f1.id, [{"role": "user", "content": "f1-a"}, {"role": "assistant", "content": "f1-b"}]
    )
    f2 = store.fork("f1", at=3, id="f2")
    store.append(f2.id, {"role": "user", "content": "f2-a"})
    store.fork("f2", at=0, id="f3")
    assert contents(store, "f2") == ["m0", "m1", "f1-a", "f1-b", "f2-a"]
    assert contents(store, "f3") == ["m0"]
    assert store.depth("f3") == 3 and store.root("f3") == "root"
    assert [m.position for m in store.messages("f2")] == [0, 1, 2, 3, 4]


def test_explore_creates_one_fork_per_strategy(store: SessionStore) -> None:
    chat(store, "p", 3)
    forks = store.explore("p", 1, ["concise", {"name": "verbose", "metadata": {"temp": 0.9}}])
    assert [f.fork.reason for f in forks] == ["concise", "verbose"]  # type: ignore[union-attr]
    assert [f.fork.metadata for f in forks] == [{"strategy": "concise"}, {"strategy": "verbose"}]  # type: ignore[union-attr]
    assert forks[1].metadata == {"temp": 0.9}
    assert all(contents(store, f.id) == ["m0", "m1"] for f in forks)
    with pytest.raises(ValidationError):
        store.explore("p", 1, ["same", "same"])
    assert len(store.children("p")) == 2


def test_edit_as_branch(store: SessionStore) -> None:
    chat(store, "p", 4)
    edited = store.edit("p", 2, {"role": "user", "content": "edited"})
    assert contents(store, edited.id) == ["m0", "m1", "edited"]
    assert contents(store, "p") == ["m0", "m1", "m2", "m3"]
    assert edited.fork is not None and edited.fork.position == 1
    first = store.edit("p", 0, {"role": "user", "content": "new start"})
    assert contents(store, first.id) == ["new start"]
    assert first.fork is not None and first.fork.position == -1 and first.fork.message_id is None
    assert store.parent(first.id) == "p"


def test_pop_last_keeps_a_message_a_fork_holds(store: SessionStore) -> None:
    ids = chat(store, "p", 3)
    fork = store.fork("p", at=2)
    popped = store.pop_last("p")
    assert popped.id == ids[2]
    assert contents(store, "p") == ["m0", "m1"]
    assert contents(store, fork.id) == ["m0", "m1", "m2"]
    store.append("p", {"role": "assistant", "content": "other"})
    assert contents(store, "p") == ["m0", "m1", "other"]
    assert contents(store, fork.id) == ["m0", "m1", "m2"]
    later = store.fork("p", at=2)
    assert contents(store, later.id) == ["m0", "m1", "other"]


def test_pop_last_of_a_fork_without_own_messages_moves_back(store: SessionStore) -> None:
    chat(store, "p", 3)
    fork = store.fork("p", at=2)
    store.pop_last(fork.id)
    assert contents(store, fork.id) == ["m0", "m1"]
    assert contents(store, "p") == ["m0", "m1", "m2"]


def test_clear_history_keeps_what_forks_hold(store: SessionStore) -> None:
    chat(store, "p", 4)
    fork = store.fork("p", at=1)
    store.append(fork.id, {"role": "user", "content": "f"})
    assert store.clear_history("p") == 4
    assert contents(store, "p") == []
    assert contents(store, fork.id) == ["m0", "m1", "f"]
    store.append("p", {"role": "user", "content": "fresh"})
    assert contents(store, "p") == ["fresh"]


def test_clear_history_of_a_fork_leaves_parent(store: SessionStore) -> None:
    chat(store, "p", 3)
    fork = store.fork("p", at=1)
    store.append(fork.id, {"role": "user", "content": "f"})
    assert store.clear_history(fork.id) == 3
    assert contents(store, fork.id) == []
    assert contents(store, "p") == ["m0", "m1", "m2"]
    assert store.parent(fork.id) == "p"
