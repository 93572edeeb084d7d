"""The loopback Bolt proxy against a real Neo4j: pass-through, and commits the client never sees.

Each test that cuts a connection asserts two things: which exception the driver really raises,
and what the server really did (read through a driver that bypasses the proxy). Together they
pin down how ``neo4j`` 6.x behaves when a commit's outcome is unknown, which is what
``session_graph``'s idempotent writes must survive.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from neo4j import (
    AsyncGraphDatabase,
    Driver,
    GraphDatabase,
    ManagedTransaction,
)
from neo4j.exceptions import IncompleteCommit, ServiceUnavailable

from session_graph.runtime import ConnectionInfo
from tests.bolt_proxy import (
    BOLT_MAGIC,
    COMMIT,
    RECORD,
    SUCCESS,
    BoltProxy,
    _Link,
    _Parser,
    iter_chunks,
)

LABEL = "ProxyTest"


def make_driver(uri: str, info: ConnectionInfo) -> Driver:
    return GraphDatabase.driver(
        uri, auth=info.auth, notifications_min_severity="OFF", connection_timeout=10
    )


@pytest.fixture(scope="module")
def direct(neo4j_info: ConnectionInfo) -> Iterator[Driver]:
    """A driver straight to the server: the ground truth about what was committed."""
    with make_driver(neo4j_info.uri, neo4j_info) as driver:
        yield driver


@pytest.fixture
def proxy(neo4j_info: ConnectionInfo) -> Iterator[BoltProxy]:
    with BoltProxy.for_uri(neo4j_info.uri) as proxy:
        yield proxy


@pytest.fixture
def via_proxy(proxy: BoltProxy, neo4j_info: ConnectionInfo) -> Iterator[Driver]:
    """A driver whose every connection goes through ``proxy``."""
    with make_driver(proxy.uri, neo4j_info) as driver:
        yield driver


@pytest.fixture
def run_id(direct: Driver, neo4j_info: ConnectionInfo) -> Iterator[str]:
    """A fresh id; every node a test creates is ``(:ProxyTest {run: run_id})``, deleted after."""
    run = uuid.uuid4().hex
    yield run
    direct.execute_query(
        f"MATCH (n:{LABEL} {{run: $run}}) DETACH DELETE n",
        {"run": run},
        database_=neo4j_info.database,
    )


@pytest.fixture
def count(direct: Driver, neo4j_info: ConnectionInfo, run_id: str) -> Callable[[str], int]:
    """How many ``(:ProxyTest {run: run_id, kind: kind})`` nodes the server holds."""

    def count(kind: str) -> int:
        records = direct.execute_query(
            f"MATCH (n:{LABEL} {{run: $run, kind: $kind}}) RETURN count(n) AS n",
            {"run": run_id, "kind": kind},
            database_=neo4j_info.database,
        ).records
        return int(records[0]["n"])

    return count


@pytest.fixture
def counter(direct: Driver, neo4j_info: ConnectionInfo, run_id: str) -> Callable[[], int]:
    """The value of the test's counter node (0 when absent)."""

    def counter() -> int:
        records = direct.execute_query(
            f"MATCH (c:{LABEL} {{run: $run, kind: 'counter'}}) RETURN c.n AS n",
            {"run": run_id},
            database_=neo4j_info.database,
        ).records
        return int(records[0]["n"]) if records else 0

    return counter


CREATE = f"CREATE (:{LABEL} {{run: $run, kind: $kind}})"
INCREMENT = (
    f"MERGE (c:{LABEL} {{run: $run, kind: 'counter'}}) SET c.n = coalesce(c.n, 0) + 1 RETURN c.n"
)


# -- the parser alone ----------------------------------------------------------------------------


def message(signature: int, packed_fields: bytes, chunk: int = 0xFFFF) -> bytes:
    return b"".join(iter_chunks(bytes([0xB1, signature]) + packed_fields, chunk))


@pytest.fixture
def link() -> Iterator[_Link]:
    """A link over a socket pair, for the parser's shared per-connection flags."""
    left, right = socket.socketpair()
    link = _Link(left, right)
    yield link
    link.cut()


SUCCESS_EMPTY = message(SUCCESS, b"\xa0")
RECORD_ONE = message(RECORD, b"\x91\x01")
# {"bookmark": "FB:x", "db": "neo4j"}, cut in 3-byte chunks
SUCCESS_COMMIT = message(SUCCESS, b"\xa2\x88bookmark\x84FB:x\x82db\x85neo4j", chunk=3)
NOOP = b"\x00\x00"


@pytest.mark.parametrize("manifest", [False, True])
@pytest.mark.parametrize("step", [1, 2, 7, 1 << 20])
def test_parser_reassembles_messages_across_any_reads(
    link: _Link, manifest: bool, step: int
) -> None:
    client, server = _Parser("client", link), _Parser("server", link)
    hello = BOLT_MAGIC + bytes(16)
    # manifest: 0x000001FF, 1 offer (5.8 down to 5.0), no capabilities; else plain 5.8
    answer = b"\x00\x00\x01\xff\x01\x00\x08\x08\x05\x00" if manifest else b"\x00\x00\x08\x05"
    stream = answer + NOOP + SUCCESS_EMPTY + RECORD_ONE + NOOP + SUCCESS_COMMIT

    client_units = client.feed(hello)
    server_units = []
    for start in range(0, len(stream), step):
        server_units += server.feed(stream[start : start + step])
    choice = b"\x00\x00\x08\x05\x00" if manifest else b""  # version 5.8, no capabilities
    client_units += client.feed(choice + message(COMMIT, b""))

    assert link.manifest is manifest
    expected_client = [hello, *([choice] if manifest else []), message(COMMIT, b"")]
    assert [raw for raw, _ in client_units] == expected_client
    assert client_units[-1][1] is not None and client_units[-1][1].signature == COMMIT
    assert b"".join(raw for raw, _ in server_units) == stream
    messages = [m for _, m in server_units if m is not None]
    assert [m.signature for m in messages] == [SUCCESS, RECORD, SUCCESS]
    assert [m.ends_commit for m in messages] == [False, False, True]
    assert messages[2].metadata == {"bookmark": "FB:x", "db": "neo4j"}


def test_parser_pipes_non_bolt_bytes_untouched(link: _Link) -> None:
    client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # a TLS ClientHello start
    assert _Parser("client", link).feed(client_hello) == [(client_hello, None)]
    assert link.raw
    server_bytes = b"\x16\x03\x03\x00\x7a\x02" + SUCCESS_COMMIT
    assert _Parser("server", link).feed(server_bytes) == [(server_bytes, None)]


# -- against the server --------------------------------------------------------------------------


def test_pass_through_many_queries_and_large_results(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    count: Callable[[str], int],
) -> None:
    pad = "p" * 1000
    big = "b" * 300_000  # > 64 KB: one message of several chunks, spanning many reads
    with via_proxy.session(database=neo4j_info.database) as session:
        for i in range(200):
            assert session.run("RETURN $i AS i", i=i).single(strict=True)["i"] == i
        rows = session.run("UNWIND range(1, 2000) AS i RETURN i, $pad AS pad", pad=pad).data()
        assert [r["i"] for r in rows] == list(range(1, 2001))
        assert all(r["pad"] == pad for r in rows)
        assert session.run("RETURN $big AS big", big=big).single(strict=True)["big"] == big
        with session.begin_transaction() as tx:
            tx.run(
                f"UNWIND range(1, 50) AS i CREATE (:{LABEL} {{run: $run, kind: 'bulk', i: i}})",
                run=run_id,
            ).consume()
            tx.commit()

    assert count("bulk") == 50
    assert proxy.cuts == 0
    # every transaction's commit confirmation was recognised: 202 auto-commit + 1 explicit
    assert proxy.commits == 203


def test_cut_explicit_commit_raises_incomplete_commit_and_the_write_is_committed(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    count: Callable[[str], int],
) -> None:
    proxy.cut_after_commits(1)
    with via_proxy.session(database=neo4j_info.database) as session:
        tx = session.begin_transaction()
        tx.run(CREATE, run=run_id, kind="explicit").consume()
        with pytest.raises(IncompleteCommit):
            tx.commit()

    assert count("explicit") == 1  # the server committed; the client could not know
    assert proxy.cuts == 1
    assert proxy.commits == 1
    (metadata,) = proxy.withheld
    assert metadata is not None and isinstance(metadata["bookmark"], str)


def test_cut_autocommit_raises_plain_service_unavailable_and_the_write_is_committed(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    count: Callable[[str], int],
) -> None:
    proxy.cut_after_commits(1)
    with (
        via_proxy.session(database=neo4j_info.database) as session,
        pytest.raises(ServiceUnavailable) as raised,
    ):
        session.run(CREATE, run=run_id, kind="auto").consume()

    # not IncompleteCommit: for an auto-commit query the driver does not flag the unknown outcome
    assert type(raised.value) is ServiceUnavailable
    assert count("auto") == 1
    assert proxy.cuts == 1


def test_driver_recovers_after_cuts_and_proxy_disarms_after_n(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    count: Callable[[str], int],
) -> None:
    proxy.cut_after_commits(2)
    with via_proxy.session(database=neo4j_info.database) as session:
        tx = session.begin_transaction()
        tx.run(CREATE, run=run_id, kind="recover").consume()
        with pytest.raises(IncompleteCommit):
            tx.commit()
        with pytest.raises(ServiceUnavailable):
            session.run(CREATE, run=run_id, kind="recover").consume()
        assert proxy.cuts == 2
        # disarmed now: the same session and driver work on a fresh connection
        session.run(CREATE, run=run_id, kind="recover").consume()
        for i in range(20):
            assert session.run("RETURN $i AS i", i=i).single(strict=True)["i"] == i
    records = via_proxy.execute_query("RETURN 1 AS one", database_=neo4j_info.database).records
    assert records[0]["one"] == 1

    assert count("recover") == 3
    assert proxy.cuts == 2


def test_execute_write_does_not_retry_an_incomplete_commit(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    counter: Callable[[], int],
) -> None:
    calls = 0

    def increment(tx: ManagedTransaction) -> int:
        nonlocal calls
        calls += 1
        return int(tx.run(INCREMENT, run=run_id).single(strict=True)[0])

    proxy.cut_after_commits(1)
    with (
        via_proxy.session(database=neo4j_info.database) as session,
        pytest.raises(IncompleteCommit),
    ):
        session.execute_write(increment)

    # IncompleteCommit.is_retryable() is False: one attempt, applied once, error to the caller
    assert calls == 1
    assert proxy.commits == 1
    assert counter() == 1


def test_execute_query_does_not_retry_an_incomplete_commit(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    counter: Callable[[], int],
) -> None:
    proxy.cut_after_commits(1)
    with pytest.raises(IncompleteCommit):
        via_proxy.execute_query(INCREMENT, {"run": run_id}, database_=neo4j_info.database)

    assert proxy.commits == 1
    assert counter() == 1


def test_retrying_on_service_unavailable_applies_a_cut_write_twice(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    counter: Callable[[], int],
) -> None:
    """The hazard: IncompleteCommit is a ServiceUnavailable, so a generic retry re-applies."""
    assert issubclass(IncompleteCommit, ServiceUnavailable)
    proxy.cut_after_commits(1)
    failures: list[type[BaseException]] = []
    for _attempt in range(3):
        try:
            via_proxy.execute_query(INCREMENT, {"run": run_id}, database_=neo4j_info.database)
            break
        except ServiceUnavailable as exc:
            failures.append(type(exc))

    assert failures == [IncompleteCommit]
    assert proxy.commits == 2
    assert counter() == 2  # one logical increment, applied twice

    # An idempotent write (keyed by an operation id) survives the same retry.
    guarded = (
        f"MERGE (c:{LABEL} {{run: $run, kind: 'guarded'}}) "
        "ON CREATE SET c.n = 0, c.ops = [] "
        "WITH c WHERE NOT $op IN c.ops "
        "SET c.n = c.n + 1, c.ops = c.ops + $op"
    )
    proxy.cut_after_commits(1)
    op = uuid.uuid4().hex
    for _attempt in range(3):
        try:
            via_proxy.execute_query(
                guarded, {"run": run_id, "op": op}, database_=neo4j_info.database
            )
            break
        except ServiceUnavailable:
            continue
    records = via_proxy.execute_query(
        f"MATCH (c:{LABEL} {{run: $run, kind: 'guarded'}}) RETURN c.n AS n",
        {"run": run_id},
        database_=neo4j_info.database,
    ).records
    assert proxy.cuts == 2
    assert records[0]["n"] == 1


def test_async_driver_raises_incomplete_commit_too(
    proxy: BoltProxy, neo4j_info: ConnectionInfo, run_id: str, count: Callable[[str], int]
) -> None:
    async def commit_through_cut() -> None:
        driver = AsyncGraphDatabase.driver(
            proxy.uri, auth=neo4j_info.auth, notifications_min_severity="OFF"
        )
        async with driver, driver.session(database=neo4j_info.database) as session:
            tx = await session.begin_transaction()
            await (await tx.run(CREATE, run=run_id, kind="async")).consume()
            await tx.commit()

    proxy.cut_after_commits(1)
    with pytest.raises(IncompleteCommit):
        asyncio.run(commit_through_cut())
    assert count("async") == 1


def test_cut_after_client_commit_leaves_the_outcome_unknown(
    proxy: BoltProxy,
    via_proxy: Driver,
    neo4j_info: ConnectionInfo,
    run_id: str,
    count: Callable[[str], int],
) -> None:
    proxy.cut_after_client_message(COMMIT)
    with via_proxy.session(database=neo4j_info.database) as session:
        tx = session.begin_transaction()
        tx.run(CREATE, run=run_id, kind="unknown").consume()
        with pytest.raises(IncompleteCommit):
            tx.commit()

    assert proxy.cuts == 1
    assert proxy.commits == 0  # no confirmation ever reached the proxy
    # The server got COMMIT and a closed socket at once: it may commit or roll back.
    assert count("unknown") in (0, 1)


def test_drop_all_cuts_open_connections_and_the_driver_reconnects(
    proxy: BoltProxy, via_proxy: Driver, neo4j_info: ConnectionInfo
) -> None:
    via_proxy.execute_query("RETURN 1", database_=neo4j_info.database)
    assert proxy.open_connections == 1  # the driver's idle pooled connection
    with via_proxy.session(database=neo4j_info.database) as session:
        tx = session.begin_transaction()
        tx.run("RETURN 1").consume()
        assert proxy.drop_all() == 1
        with pytest.raises(ServiceUnavailable):
            tx.run("RETURN 2").consume()
        tx.close()
    deadline = time.monotonic() + 5
    while proxy.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.open_connections == 0

    records = via_proxy.execute_query("RETURN 3 AS n", database_=neo4j_info.database).records
    assert records[0]["n"] == 3
    assert proxy.cuts == 0  # drop_all is not an armed cut
