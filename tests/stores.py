"""pytest plugin: stores on every backend, each test in a tenant of its own.

``store`` is parametrized over the backends, so a test that takes it is part of the
conformance suite every backend must pass. ``neo4j_store`` is for tests that need the server
itself (saved Cypher, faults). ``open_store`` makes another store on the same data, like a
second process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from neo4j import Driver, GraphDatabase

from session_graph import SessionStore, Settings
from session_graph.backends.memory import MemoryDatabase
from session_graph.backends.neo4j import Neo4jBackend
from session_graph.runtime import ConnectionInfo

BACKENDS = ["memory", "neo4j"]
StoreFactory = Callable[..., SessionStore]


def graph_size(store: SessionStore) -> tuple[int, int] | None:
    """Nodes and outgoing relationships of the store's tenant (Neo4j only)."""
    backend = store.backend
    if not isinstance(backend, Neo4jBackend):
        return None
    records, _, _ = backend.driver.execute_query(
        "MATCH (n {tenant: $t}) OPTIONAL MATCH (n)-[r]->() "
        "RETURN count(DISTINCT n) AS nodes, count(r) AS rels",
        t=store.tenant,
        database_=backend.database,
    )
    return int(records[0]["nodes"]), int(records[0]["rels"])


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_info: ConnectionInfo) -> Iterator[Driver]:
    """One driver for the session, with the schema applied once."""
    driver = GraphDatabase.driver(
        neo4j_info.uri, auth=neo4j_info.auth, notifications_min_severity="OFF"
    )
    Neo4jBackend(driver, database=neo4j_info.database).setup()
    yield driver
    driver.close()


@pytest.fixture
def tenant() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _neo4j_factory(
    info: ConnectionInfo, driver: Driver, tenant: str, own_driver: bool
) -> StoreFactory:
    def make(**overrides: object) -> SessionStore:
        settings = Settings(**{"tenant": tenant, **overrides})  # type: ignore[arg-type]
        drv = (
            GraphDatabase.driver(info.uri, auth=info.auth, notifications_min_severity="OFF")
            if own_driver
            else driver
        )
        backend = Neo4jBackend(
            drv,
            tenant=settings.tenant,
            database=info.database,
            retry_attempts=settings.retry_attempts,
            owns_driver=own_driver,
        )
        store = SessionStore(backend, settings)
        store.connect()
        return store

    return make


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tenant: str) -> Iterator[StoreFactory]:
    """Opens stores (any settings overrides as keyword arguments) on one backend's data."""
    opened: list[SessionStore] = []
    if request.param == "memory":
        database = MemoryDatabase()

        def make(**overrides: object) -> SessionStore:
            settings = Settings(**{"tenant": tenant, **overrides})  # type: ignore[arg-type]
            return SessionStore.in_memory(settings, database=database)

        factory: StoreFactory = make
    else:
        info = request.getfixturevalue("neo4j_info")
        driver = request.getfixturevalue("neo4j_driver")
        factory = _neo4j_factory(info, driver, tenant, own_driver=True)

    def tracked(**overrides: object) -> SessionStore:
        store = factory(**overrides)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory) -> SessionStore:
    """A store on each backend, in a fresh tenant."""
    return open_store()


@pytest.fixture
def neo4j_store(neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str) -> SessionStore:
    """A store on the real Neo4j server, in a fresh tenant."""
    return _neo4j_factory(neo4j_info, neo4j_driver, tenant, own_driver=False)()


@pytest.fixture
def neo4j_factory(neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str) -> StoreFactory:
    """Opens further Neo4j stores on the same tenant, each with a driver of its own."""
    return _neo4j_factory(neo4j_info, neo4j_driver, tenant, own_driver=True)
