"""compare(): fork point of N sessions, exact per-branch metrics, best(), diffs, errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from session_graph import (
    ConflictError,
    SessionNotFoundError,
    SessionStore,
    ValidationError,
)
from session_graph.compare import compare

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def build(store: SessionStore) -> list[str]:
    """root (3 msgs); a and b fork root at 1; c forks a at 3 (sharing a's first two own).

    Costs are binary fractions so sums are exact. Returns the root's message ids.
    """
    store.create_session("root", title="root", metadata={"score": 1})
    root_ids = [m.id for m in store.append("root", [
        {"role": "system", "content": "be brief", "created_at": at(0)},
        {"role": "user", "content": "plan a trip", "created_at": at(1), "input_tokens": 10,
         "cost": 0.125},
        {"role": "assistant", "content": "root answer", "created_at": at(2), "output_tokens": 5},
    ])]  # fmt: skip
    meta = {"score": 0.75, "passed": True, "eval": {"accuracy": 0.5}, "label": "x"}
    store.fork("root", at=1, id="a", title="A", metadata=meta)
    store.append("a", [
        {"role": "assistant", "content": "plan A\nday 2", "created_at": at(100),
         "provider": "openai", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 40,
         "cost": 0.25},
        {"role": "user", "content": "cheaper?", "created_at": at(110)},
        {"role": "assistant", "content": "hostels", "created_at": at(145.5), "provider": "openai",
         "model": "gpt-4o-mini", "input_tokens": 150, "output_tokens": 20, "cost": 0.5},
    ])  # fmt: skip
    store.fork("root", at=1, id="b", title="B", metadata={"score": 0.9})
    store.append("b", {"role": "assistant", "content": "plan B", "created_at": at(200),
                       "provider": "anthropic", "model": "claude", "input_tokens": 90,
                       "output_tokens": 30, "cost": 0.0625})  # fmt: skip
    store.fork("a", at=3, id="c", title="C")
    store.append("c", {"role": "assistant", "content": "camping", "created_at": at(300),
                       "cost": 0.03125})  # fmt: skip
    return root_ids


def test_metrics_are_exact(store: SessionStore) -> None:
    root_ids = build(store)
    cmp = compare(store, ["a", "b"])
    assert cmp.fork_point is not None
    assert (cmp.fork_point.message_id, cmp.fork_point.position) == (root_ids[1], 1)
    a, b = cmp.branches
    assert (a.session_id, a.title, a.status) == ("a", "A", "active")
    assert [m.content for m in a.messages] == ["plan A\nday 2", "cheaper?", "hostels"]
    assert (a.message_count, a.diverging_count) == (5, 3)
    assert (a.input_tokens, a.output_tokens, a.total_tokens, a.cost) == (250, 60, 310, 0.75)
    assert (a.history_input_tokens, a.history_output_tokens) == (260, 60)
    assert (a.history_total_tokens, a.history_cost) == (320, 0.875)
    assert a.providers == ("openai",) and a.models == ("gpt-4o", "gpt-4o-mini")
    assert a.wall_time == 45.5
    assert a.scores == {"score": 0.75}  # bools, strings and nested values are not scores
    assert [m.content for m in b.messages] == ["plan B"]
    assert (b.message_count, b.diverging_count) == (3, 1)
    assert (b.input_tokens, b.output_tokens, b.total_tokens, b.cost) == (90, 30, 120, 0.0625)
    assert (b.history_total_tokens, b.history_cost) == (130, 0.1875)
    assert b.providers == ("anthropic",) and b.models == ("claude",)
    assert b.wall_time is None  # fewer than two diverging messages
    assert b.scores == {"score": 0.9}
    assert cmp.score_keys == ("score",)
    assert cmp.branch("b") is b


def test_missing_numbers_are_none_not_zero(store: SessionStore) -> None:
    build(store)
    store.fork("root", at=1, id="d")
    store.append("d", [{"role": "user", "content": "x", "created_at": at(5)},
                       {"role": "assistant", "content": "y", "created_at": at(4)}])  # fmt: skip
    d = compare(store, ["a", "d"]).branch("d")
    assert (d.input_tokens, d.output_tokens, d.total_tokens, d.cost) == (None, None, None, None)
    assert (d.history_input_tokens, d.history_cost) == (10, 0.125)  # from the shared prefix
    assert d.history_output_tokens is None and d.history_total_tokens == 10
    assert d.wall_time == 1.0  # timestamps out of order: still the span, never negative
    assert d.providers == () and d.models == () and d.scores == {}


def test_fork_point_of_three_branches(store: SessionStore) -> None:
    root_ids = build(store)
    pairwise = {
        (x, y): store.common_ancestor(x, y) for x, y in [("c", "a"), ("c", "b"), ("a", "b")]
    }
    assert {k: v.position for k, v in pairwise.items() if v} == {("c", "a"): 3, ("c", "b"): 1,
                                                                 ("a", "b"): 1}  # fmt: skip
    for order in (["c", "b", "a"], ["a", "c", "b"], ["c", "a", "b"], ["b", "c", "a"]):
        cmp = compare(store, order)
        assert cmp.fork_point is not None
        assert (cmp.fork_point.position, cmp.fork_point.message_id) == (1, root_ids[1])
        assert [b.session_id for b in cmp.branches] == order
    c = compare(store, ["c", "b", "a"]).branch("c")
    assert [m.content for m in c.messages] == ["plan A\nday 2", "cheaper?", "camping"]
    assert c.wall_time == 200.0 and c.cost == 0.28125
    two = compare(store, ["c", "a"])
    assert two.fork_point is not None and two.fork_point.position == 3
    assert two.fork_point.message_id == store.history_ids("a")[3]
    assert [m.content for m in two.branch("c").messages] == ["camping"]
    assert [m.content for m in two.branch("a").messages] == ["hostels"]


def test_ancestor_against_fork_and_no_shared_message(store: SessionStore) -> None:
    build(store)
    cmp = compare(store, ["root", "a"])
    assert cmp.fork_point is not None and cmp.fork_point.position == 1
    assert [m.content for m in cmp.branch("root").messages] == ["root answer"]
    edited = store.edit("root", 0, {"role": "system", "content": "be verbose"})
    cmp = compare(store, ["root", edited.id])
    assert cmp.fork_point is None
    assert cmp.branch("root").diverging_count == 3
    assert [m.content for m in cmp.branch(edited.id).messages] == ["be verbose"]


def test_diff_of_diverging_parts(store: SessionStore) -> None:
    build(store)
    cmp = compare(store, ["a", "b", "c"])
    assert cmp.branches[0].diff == ""
    assert cmp.branch("b").diff == "\n".join([
        "--- a", "+++ b", "@@ -1,4 +1 @@",
        "-assistant: plan A", "-  day 2", "-user: cheaper?", "-assistant: hostels",
        "+assistant: plan B",
    ])  # fmt: skip
    assert cmp.branch("c").diff == "\n".join([
        "--- a", "+++ c", "@@ -1,4 +1,4 @@",
        " assistant: plan A", "   day 2", " user: cheaper?", "-assistant: hostels",
        "+assistant: camping",
    ])  # fmt: skip


def test_best_in_both_directions(store: SessionStore) -> None:
    build(store)
    cmp = compare(store, ["a", "b", "c"])
    assert cmp.best("cost").session_id == "b"  # a 0.75, b 0.0625, c 0.28125
    assert cmp.best("cost", highest=True).session_id == "a"
    assert cmp.best("tokens").session_id == "b"  # c has 140 tokens, b 120
    assert cmp.best("tokens", highest=True).session_id == "a"
    assert cmp.best("messages").session_id == "a"  # ties (a, c: 3) go to the earliest
    assert cmp.best("messages", highest=False).session_id == "b"
    assert cmp.best("wall_time").session_id == "a"  # 45.5 s; b has none, c 200 s
    assert cmp.best("wall_time", highest=True).session_id == "c"
    assert cmp.best("score").session_id == "b"  # c has no score: skipped
    assert cmp.best("score", highest=False).session_id == "a"
    assert cmp.best("history_cost").session_id == "b"
    with pytest.raises(ValidationError, match="unknown metric 'nope'"):
        cmp.best("nope")


def test_best_by_a_metric_no_branch_has_says_so(store: SessionStore) -> None:
    """A known metric without values is not an unknown one (the README once crashed here)."""
    store.create_session("p")
    store.append("p", {"role": "user", "content": "q"})
    store.explore("p", 0, ["x", "y"])
    x, y = store.children("p")
    store.append(x, {"role": "assistant", "content": "a"})
    store.append(y, {"role": "assistant", "content": "b", "cost": 0.5})
    cmp = compare(store, [x, y])
    assert cmp.best("cost").session_id == y  # x has no cost: skipped, not "free"
    with pytest.raises(ValidationError, match="no compared session has a value for 'tokens'"):
        cmp.best("tokens")


def test_score_keys_and_dotted_paths(store: SessionStore) -> None:
    build(store)
    store.update_session("b", metadata={"score": 0.9, "cost": 7})
    cmp = compare(store, ["a", "b"], score_keys=["eval.accuracy", "passed", "score", "cost"])
    assert cmp.branch("a").scores == {"eval.accuracy": 0.5, "score": 0.75}
    assert cmp.branch("b").scores == {"score": 0.9, "cost": 7}
    assert cmp.score_keys == ("eval.accuracy", "passed", "score", "cost")
    assert cmp.best("eval.accuracy").session_id == "a"
    # a metric name wins over a same-named score; "score:" reaches the score
    assert cmp.best("cost", highest=True).session_id == "a"
    assert cmp.best("score:cost", highest=True).session_id == "b"
    with pytest.raises(ValidationError):
        cmp.best("passed")  # present only as a bool: not a score anywhere


def test_refusals(store: SessionStore) -> None:
    build(store)
    store.create_session("other")
    for bad in ([], ["a"], ["a", "a"], "ab"):
        with pytest.raises(ValidationError):
            compare(store, bad)
    with pytest.raises(ValidationError):
        compare(store, ["a", "b"], score_keys=[""])
    with pytest.raises(ConflictError, match="one tree"):
        compare(store, ["a", "other"])
    with pytest.raises(SessionNotFoundError):
        compare(store, ["a", "missing"])


def test_deleted_sessions_compare(store: SessionStore) -> None:
    build(store)
    store.delete_session("b")
    cmp = compare(store, ["a", "b"])
    assert cmp.branch("b").status == "deleted" and cmp.branch("b").diverging_count == 1
