"""pytest plugin: stores on every target, each test in a tenant of its own.

``store`` is parametrized over the targets (the in-memory reference, Neo4j through the sync
``SessionStore`` and Neo4j through ``AsyncSessionStore``), so a test that takes it is part of
the conformance suite all three must pass. The async store runs on one event loop in a
background thread behind ``SyncOverAsync``, which turns each coroutine method into a plain
call: the same tests then drive the async implementation. ``neo4j_store`` is for tests that
need the server itself (saved Cypher, faults). ``open_store`` makes another store on the same
data, like a second process.

Stores made here check tree versions on every lineage call (``mirror_max_lag=0``) unless a
test asks otherwise, so cross-process coherence is what the suite tests by default.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from neo4j import Driver, GraphDatabase

from session_graph import AsyncSessionStore, SessionStore, Settings
from session_graph._async.neo4j import AsyncNeo4jBackend
from session_graph._sync.neo4j import Neo4jBackend
from session_graph.runtime import ConnectionInfo

BACKENDS = ["memory", "neo4j", "neo4j-async"]
StoreFactory = Callable[..., Any]
T = TypeVar("T")
TEST_DEFAULTS: dict[str, object] = {"mirror_max_lag": 0}


class EventLoopThread:
    """One asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_LOOP: EventLoopThread | None = None


def event_loop_thread() -> EventLoopThread:
    global _LOOP
    if _LOOP is None:
        _LOOP = EventLoopThread()
    return _LOOP


class SyncOverAsync:
    """An ``AsyncSessionStore`` called like a ``SessionStore`` (for the shared tests)."""

    def __init__(self, store: AsyncSessionStore, loop: EventLoopThread) -> None:
        self._store = store
        self._loop = loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._loop.run(attr(*args, **kwargs))

            return call
        return attr


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


def _settings(tenant: str, overrides: dict[str, object]) -> Settings:
    return Settings(**{"tenant": tenant, **TEST_DEFAULTS, **overrides})  # type: ignore[arg-type]


def _neo4j_factory(info: ConnectionInfo, tenant: str, asynchronous: bool) -> StoreFactory:
    def make(**overrides: object) -> Any:
        settings = _settings(tenant, overrides)
        if asynchronous:
            loop = event_loop_thread()
            astore = AsyncSessionStore.connect_to(info, settings)
            loop.run(astore.connect())
            return SyncOverAsync(astore, loop)
        store = SessionStore.connect_to(info, settings)
        store.connect()
        return store

    return make


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tenant: str) -> Iterator[StoreFactory]:
    """Opens stores (any settings overrides as keyword arguments) on one target's data."""
    opened: list[Any] = []
    if request.param == "memory":
        from session_graph._sync.memory import MemoryDatabase

        database = MemoryDatabase()

        def make(**overrides: object) -> SessionStore:
            return SessionStore.in_memory(_settings(tenant, overrides), database=database)

        factory: StoreFactory = make
    else:
        request.getfixturevalue("neo4j_driver")  # the schema, applied once
        info = request.getfixturevalue("neo4j_info")
        factory = _neo4j_factory(info, tenant, request.param == "neo4j-async")

    def tracked(**overrides: object) -> Any:
        store = factory(**overrides)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory) -> Any:
    """A store on each target, in a fresh tenant."""
    return open_store()


@pytest.fixture
def neo4j_factory(neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str) -> StoreFactory:
    """Opens Neo4j stores (sync) on the same tenant, each with a driver of its own."""
    return _neo4j_factory(neo4j_info, tenant, False)


@pytest.fixture
def neo4j_store(neo4j_factory: StoreFactory) -> Iterator[SessionStore]:
    """A store on the real Neo4j server, in a fresh tenant."""
    store: SessionStore = neo4j_factory()
    yield store
    store.close()


GRAPH_STATE = (
    "MATCH (n {tenant: $t}) "
    "RETURN 0 AS kind, labels(n) AS what, properties(n) AS props, null AS a, null AS b "
    "UNION ALL "
    "MATCH (n {tenant: $t})-[r]->(m) "
    "RETURN 1 AS kind, [type(r)] AS what, properties(r) AS props, n.id AS a, m.id AS b"
)


def tenant_query(store: Any, query: str, **params: Any) -> list[dict[str, Any]] | None:
    """A test-only read on a Neo4j store's database, the tenant as ``$t`` (None for memory)."""
    backend = store.backend
    if isinstance(backend, Neo4jBackend):
        result = backend.driver.execute_query(
            query, t=store.tenant, database_=backend.database, **params
        )
    elif isinstance(backend, AsyncNeo4jBackend):
        result = store.run(
            backend.driver.execute_query(
                query, t=store.tenant, database_=backend.database, **params
            )
        )
    else:
        return None
    return [dict(r) for r in result.records]


def graph_state(store: Any) -> list[str] | None:
    """Every node and relationship of the store's tenant with all properties, sorted (Neo4j
    stores; None for memory): equal before and after means nothing at all was written."""
    rows = tenant_query(store, GRAPH_STATE)
    if rows is None:
        return None
    return sorted(
        repr([r["kind"], r["what"], sorted(r["props"].items()), r["a"], r["b"]]) for r in rows
    )


def other_tenant(store: Any, tenant: str) -> Any:
    """A store of the same kind on the same database, for another tenant."""
    settings = store.settings.model_copy(update={"tenant": tenant})
    backend = store.backend
    if isinstance(backend, Neo4jBackend):
        other = SessionStore(
            Neo4jBackend(backend.driver, tenant=tenant, database=backend.database), settings
        )
        other.connect()
        return other
    if isinstance(backend, AsyncNeo4jBackend):
        astore = AsyncSessionStore(
            AsyncNeo4jBackend(backend.driver, tenant=tenant, database=backend.database), settings
        )
        return SyncOverAsync(astore, event_loop_thread())
    return SessionStore.in_memory(settings, database=backend.database)


def fingerprint(store: Any, sids: Any = None) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was: sessions, histories, the whole graph."""
    sessions = store.list_sessions(include_deleted=True, limit=10_000).items
    ids = [s.id for s in sessions] if sids is None else list(sids)
    histories = tuple(tuple(store.messages(sid)) for sid in ids)
    return sessions, histories, graph_state(store)


def backend_read(store: Any, fn: Callable[[Any], Any]) -> Any:
    """``store.backend.read(fn)`` for any target (the async one runs on the test loop)."""
    result = store.backend.read(fn)
    return store.run(result) if inspect.iscoroutine(result) else result
