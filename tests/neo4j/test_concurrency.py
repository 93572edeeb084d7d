"""Concurrent writers on a real Neo4j: no message lost, one chain, order equals commit order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from session_graph import SessionStore
from tests.neo4j.checks import assert_chains_intact, assert_store_equals_server
from tests.stores import StoreFactory

APPENDERS = 32
PER_APPENDER = 15


def test_32_concurrent_appenders_on_one_session(neo4j_factory: StoreFactory) -> None:
    stores = [neo4j_factory() for _ in range(4)]  # four "processes", eight threads each
    stores[0].create_session("hot")
    start = threading.Barrier(APPENDERS)
    acked: list[list[tuple[int, int, str]]] = [[] for _ in range(APPENDERS)]

    def appender(n: int) -> None:
        store = stores[n % len(stores)]
        start.wait()
        for i in range(PER_APPENDER):
            [msg] = store.append("hot", {"role": "user", "content": f"{n}:{i}"})
            acked[n].append((msg.position, i, msg.id))

    with ThreadPoolExecutor(APPENDERS) as pool:
        for future in [pool.submit(appender, n) for n in range(APPENDERS)]:
            future.result()

    history = stores[1].messages("hot")
    total = APPENDERS * PER_APPENDER
    assert len(history) == total
    assert [m.position for m in history] == list(range(total))
    by_id = {m.id: m for m in history}
    for n, mine in enumerate(acked):
        assert len(mine) == PER_APPENDER
        # each appender's own messages appear in the order it committed them
        assert [pos for pos, _, _ in mine] == sorted(pos for pos, _, _ in mine)
        for pos, i, mid in mine:
            assert by_id[mid].position == pos and by_id[mid].content == f"{n}:{i}"
    assert_chains_intact(stores[0])
    for store in stores:
        assert store.history_ids("hot") == [m.id for m in history]


def test_100_sessions_created_forked_and_deleted_concurrently(neo4j_factory: StoreFactory) -> None:
    stores = [neo4j_factory() for _ in range(3)]

    def life(n: int) -> None:
        store = stores[n % len(stores)]
        sid = f"s{n:03d}"
        store.create_session(sid, tags=[f"n{n}"])
        store.append(sid, [{"role": "user", "content": f"{sid}-{i}"} for i in range(3)])
        fork = store.fork(sid, at=n % 3, id=f"{sid}-fork")
        store.append(fork.id, {"role": "assistant", "content": f"{sid}-fork-own"})
        if n % 4 == 0:
            store.delete_session(sid, purge=n % 8 == 0)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(life, n) for n in range(100)]:
            future.result()

    checker = stores[0]
    for n in range(100):
        sid = f"s{n:03d}"
        fork = f"{sid}-fork"
        expected = [f"{sid}-{i}" for i in range(n % 3 + 1)] + [f"{sid}-fork-own"]
        assert [m.content for m in checker.messages(fork)] == expected  # no leakage
        assert checker.parent(fork) == sid
        assert checker.get_session(sid).deleted == (n % 4 == 0)
        if n % 4:
            assert [m.content for m in checker.messages(sid)] == [f"{sid}-{i}" for i in range(3)]
    assert_chains_intact(checker)
    for store in stores:
        assert_store_equals_server(store)


def test_same_store_shared_by_threads(neo4j_store: SessionStore) -> None:
    neo4j_store.create_session("shared")

    def work(n: int) -> None:
        for i in range(10):
            neo4j_store.append("shared", {"role": "user", "content": f"{n}-{i}"})
            neo4j_store.fork("shared", at=0)

    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(work, n) for n in range(6)]:
            future.result()
    assert neo4j_store.message_count("shared") == 60
    assert len(neo4j_store.children("shared")) == 60
    assert_store_equals_server(neo4j_store)


def test_writers_of_different_sessions_each_keep_their_chain(neo4j_factory: StoreFactory) -> None:
    """16 writers, each on its own session of one tenant (they take no common lock)."""
    stores = [neo4j_factory() for _ in range(4)]
    for n in range(16):
        stores[0].create_session(f"own-{n}")
    start = threading.Barrier(16)

    def writer(n: int) -> None:
        store = stores[n % len(stores)]
        start.wait()
        for i in range(20):
            store.append(f"own-{n}", {"role": "user", "content": f"{n}:{i}"})
            if i == 10:
                store.fork(f"own-{n}", at=i, id=f"own-{n}-fork")

    with ThreadPoolExecutor(16) as pool:
        for future in [pool.submit(writer, n) for n in range(16)]:
            future.result()
    for n in range(16):
        assert [m.content for m in stores[1].messages(f"own-{n}")] == [
            f"{n}:{i}" for i in range(20)
        ]
        assert stores[2].children(f"own-{n}") == [f"own-{n}-fork"]
        assert stores[3].message_count(f"own-{n}-fork") == 11
    assert_chains_intact(stores[0])
