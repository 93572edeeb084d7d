"""merge: fast-forward when the target has not moved, copies with provenance otherwise."""

from __future__ import annotations

import pytest

from session_graph import MergeConflictError, SessionStore


def contents(store: SessionStore, sid: str) -> list[str]:
    return [m.content for m in store.messages(sid)]


@pytest.fixture
def base(store: SessionStore) -> SessionStore:
    store.create_session("p")
    store.append("p", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    store.fork("p", id="f")
    store.append("f", [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}])
    return store


def test_fast_forward(base: SessionStore) -> None:
    fork_ids = base.history_ids("f")
    result = base.merge("f")
    assert (result.mode, result.into_id, result.common_position, result.copied) == (
        "fast-forward",
        "p",
        1,
        (),
    )
    assert base.history_ids("p") == fork_ids  # shared, not copied
    assert base.get_session("f").status == "merged"
    assert base.merge("f").mode == "up-to-date"


def test_copy_merge_when_parent_moved(base: SessionStore) -> None:
    base.append("p", {"role": "user", "content": "meanwhile"})
    originals = base.history_ids("f")[2:]
    result = base.merge("f")
    assert result.mode == "copy" and len(result.copied) == 2
    assert contents(base, "p") == ["q", "a", "meanwhile", "q2", "a2"]
    copies = base.messages("p")[3:]
    assert [c.copied_from for c in copies] == originals
    assert [c.id for c in copies] == list(result.copied)
    assert contents(base, "f") == ["q", "a", "q2", "a2"]
    assert base.merge("f").mode == "up-to-date"
    base.append("f", {"role": "user", "content": "more"})
    again = base.merge("f")
    assert again.mode == "copy" and len(again.copied) == 1
    assert contents(base, "p")[-1] == "more"


def test_merge_into_named_target_and_errors(base: SessionStore) -> None:
    base.fork("p", at=0, id="g")
    base.append("g", {"role": "assistant", "content": "g-own"})
    result = base.merge("f", into="g")
    assert (result.mode, result.common_position) == ("copy", 0)
    assert contents(base, "g") == ["q", "g-own", "a", "q2", "a2"]
    base.fork("p", at=0, id="h")
    assert base.merge("f", into="h").mode == "fast-forward"
    assert base.history_ids("h") == base.history_ids("f")
    with pytest.raises(MergeConflictError):
        base.merge("p")  # a root has no parent
    base.create_session("elsewhere")
    with pytest.raises(MergeConflictError):
        base.merge("f", into="elsewhere")
