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


def test_a_tree_changed_elsewhere_is_reloaded(open_store: StoreFactory) -> None:
    one, two = open_store(), open_store()
    one.create_session("s")
    one.fork("s", id="f1")
    assert two.descendants("s") == ["f1"]  # two loads the tree
    one.fork("f1", id="f2")
    one.delete_session("f1")
    assert two.descendants("s") == ["f1", "f2"]  # the version moved: reloaded
    assert two.ancestors("f2") == ["f1", "s"]
    assert two.get_session("f1").deleted


def test_default_settings_answer_lineage_from_memory(open_store: StoreFactory) -> None:
    writer, reader = open_store(), open_store(mirror_max_lag=1.0)  # the default
    writer.create_session("s")
    assert reader.children("s") == []
    writer.fork("s", id="f")
    assert reader.children("s") == []  # within a second of its last check: from memory
    reader.refresh()
    assert reader.children("s") == ["f"]
    mine = reader.fork("s", id="g")  # its own write: seen at once, whatever the lag
    assert reader.children("s") == ["f", mine.id]


def test_max_lag_skips_the_check_within_the_window(open_store: StoreFactory) -> None:
    writer, lagging = open_store(), open_store(mirror_max_lag=3600)
    writer.create_session("s")
    lagging.refresh()
    assert lagging.children("s") == []
    writer.fork("s", id="f")
    assert lagging.children("s") == []  # within the window: the mirror as last checked
    lagging.refresh()
    assert lagging.children("s") == ["f"]
