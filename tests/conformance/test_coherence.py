"""Two stores on the same data (two processes): each mirror learns what the other wrote."""

from __future__ import annotations

from tests.stores import StoreFactory


def test_second_store_sees_foreign_writes(open_store: StoreFactory) -> None:
    one, two = open_store(), open_store()
    one.create_session("p")
    one.append("p", [{"role": "user", "content": f"m{i}"} for i in range(3)])
    assert [m.content for m in two.messages("p")] == ["m0", "m1", "m2"]
    fork = two.fork("p", at=1)
    assert one.children("p") == [fork.id]
    two.append(fork.id, {"role": "user", "content": "from two"})
    assert [m.content for m in one.messages(fork.id)] == ["m0", "m1", "from two"]
    one.pop_last("p")
    assert two.message_count("p") == 2
    one.clear_history(fork.id)
    assert two.history_ids(fork.id) == []
    two.delete_session(fork.id, purge=True)
    assert one.children("p") == []


def test_interleaved_writers_keep_one_chain(open_store: StoreFactory) -> None:
    one, two = open_store(), open_store()
    one.create_session("s")
    for i in range(10):
        (one if i % 2 else two).append("s", {"role": "user", "content": str(i)})
    expected = [str(i) for i in range(10)]
    assert [m.content for m in one.messages("s")] == expected
    assert [m.content for m in two.messages("s")] == expected
    assert one.history_ids("s") == two.history_ids("s")


def test_trimmed_change_log_forces_a_full_reload(open_store: StoreFactory) -> None:
    one, two = open_store(change_log_retention=1), open_store()
    one.create_session("s")
    two.refresh()
    for i in range(5):
        one.append("s", {"role": "user", "content": str(i)})
    one.trim_change_log()
    assert two.message_count("s") == 5
    assert [m.content for m in two.messages("s")] == [str(i) for i in range(5)]


def test_max_lag_skips_the_check_within_the_window(open_store: StoreFactory) -> None:
    writer, lagging = open_store(), open_store(mirror_max_lag=3600)
    writer.create_session("s")
    lagging.refresh()
    assert lagging.children("s") == []
    writer.fork("s", id="f")
    assert lagging.children("s") == []  # within the window: the mirror as last checked
    lagging.refresh()
    assert lagging.children("s") == ["f"]
