"""The server dies mid-run (SIGKILL) and comes back: writers resume, nothing lost or doubled."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from session_graph import ServerUnavailableError, SessionStore, Settings
from session_graph.runtime import LocalNeo4j, wait_for_bolt
from session_graph.runtime.info import ConnectionInfo
from tests.neo4j.checks import assert_chains_intact, assert_store_equals_server
from tests.stores import StoreFactory, tenant_query

WRITERS = 4
PER_WRITER = 2500
KILL_AFTER = 2500  # acknowledged appends, all writers together
FORK_EVERY = 400


def ready_connection_at(info: ConnectionInfo, settings: Settings) -> ConnectionInfo:
    """What ``SessionStore.open`` does for a configured URI: wait (bounded) until it answers."""
    wait_for_bolt(info, settings.connect_timeout, query=True)
    return info


@pytest.mark.slow
def test_sigkill_and_restart_mid_run(
    neo4j_factory: StoreFactory, local_neo4j: LocalNeo4j, neo4j_info: ConnectionInfo
) -> None:
    stores = [neo4j_factory() for _ in range(WRITERS)]
    for n, store in enumerate(stores):
        store.create_session(f"w{n}")
    acked: list[list[str]] = [[] for _ in range(WRITERS)]
    forks: list[list[str]] = [[] for _ in range(WRITERS)]
    last_ack = [0.0] * WRITERS
    errors: list[BaseException] = []
    lock = threading.Lock()
    total = [0]

    def writer(n: int) -> None:
        store, sid = stores[n], f"w{n}"
        try:
            for i in range(PER_WRITER):
                [msg] = store.append(sid, {"role": "user", "content": f"{n}:{i}"})
                acked[n].append(msg.id)
                last_ack[n] = time.monotonic()
                with lock:
                    total[0] += 1
                if i % FORK_EVERY == FORK_EVERY - 1:
                    forks[n].append(store.fork(sid, at=i // 2).id)
        except BaseException as exc:  # recorded: a writer must never give up
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while total[0] < KILL_AFTER and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    acked_before_kill = total[0]
    killed_at = time.monotonic()
    local_neo4j.kill()
    time.sleep(1.0)
    local_neo4j.start()
    back_at = time.monotonic()
    for t in threads:
        t.join(timeout=900)
    elapsed = time.monotonic() - started

    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    resumed = [stamp - killed_at for stamp in last_ack]  # every writer acked after the kill
    wait_for_bolt(neo4j_info, 60, query=True)
    checker = stores[0]
    checker.refresh()
    found = 0
    for n in range(WRITERS):
        history = checker.history_ids(f"w{n}")
        assert history == acked[n]  # every acknowledged append present, once, in order
        found += len(history)
        contents = [m.content for m in checker.messages(f"w{n}", -3)]
        assert contents == [f"{n}:{i}" for i in range(PER_WRITER - 3, PER_WRITER)]
        assert [f for f in checker.children(f"w{n}")] == forks[n]
    counts = tenant_query(checker, "MATCH (m:SGMessage {tenant: $t}) RETURN m.id AS id") or []
    duplicates = sum(c - 1 for c in Counter(r["id"] for r in counts).values())
    assert duplicates == 0 and len(counts) == WRITERS * PER_WRITER
    assert_chains_intact(checker)
    assert_store_equals_server(checker)
    print(
        f"\nfault test: {WRITERS * PER_WRITER} appends acknowledged ({acked_before_kill} before "
        f"the kill), {found} found, {duplicates} duplicates, {sum(map(len, forks))} forks; "
        f"server back {back_at - killed_at:.1f}s after SIGKILL; all writers done "
        f"{max(resumed):.1f}s after it; whole run {elapsed:.1f}s"
    )


def test_store_opened_while_server_starts_waits(
    local_neo4j: LocalNeo4j, neo4j_info: ConnectionInfo, neo4j_driver: object, tenant: str
) -> None:
    local_neo4j.stop()
    starter = threading.Thread(target=local_neo4j.start)
    starter.start()
    try:
        settings = Settings(tenant=tenant, connect_timeout=120)
        began = time.monotonic()
        # the path SessionStore.open takes: wait (bounded) for Bolt, then connect
        with SessionStore.connect_to(ready_connection_at(neo4j_info, settings), settings) as store:
            waited = time.monotonic() - began
            store.connect()
            store.create_session("after-start")
            assert store.get_session("after-start").id == "after-start"
        assert waited > 0.5  # it really was still starting
    finally:
        starter.join()


def test_open_gives_up_after_the_deadline(neo4j_info: ConnectionInfo, tenant: str) -> None:
    dead = ConnectionInfo(uri="bolt://127.0.0.1:9", user="neo4j", password="x", source="uri")
    began = time.monotonic()
    with pytest.raises(ServerUnavailableError):
        ready_connection_at(dead, Settings(tenant=tenant, connect_timeout=2))
    assert time.monotonic() - began < 30
