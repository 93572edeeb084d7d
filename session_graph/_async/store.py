"""``AsyncSessionStore``: the public API, a thin facade over one module per concern.

Sessions (``sessions.py``), messages (``messages.py``), branching (``branching.py``), merging
(``merging.py``), lineage (``lineage.py``) and maintenance (``maintenance.py``) each live in
their own module as a mixin over the shared base (``base.py``); this class only opens,
closes and sets up. ``SessionStore`` (``session_graph._sync``) is generated from this code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import neo4j

from session_graph._async.branching import AsyncBranchingMixin
from session_graph._async.lineage import AsyncLineageMixin
from session_graph._async.maintenance import AsyncMaintenanceMixin
from session_graph._async.merging import AsyncMergingMixin
from session_graph._async.messages import AsyncMessagesMixin
from session_graph._async.neo4j import AsyncNeo4jBackend
from session_graph._async.sessions import AsyncSessionsMixin
from session_graph.config import Settings
from session_graph.core import check_bool, check_instance, check_saved_query, check_str
from session_graph.errors import SchemaError
from session_graph.ids import validate_name
from session_graph.runtime import ConnectionInfo

if TYPE_CHECKING:
    from session_graph._async.memory import MemoryDatabase


class AsyncSessionStore(
    AsyncSessionsMixin,
    AsyncMessagesMixin,
    AsyncBranchingMixin,
    AsyncMergingMixin,
    AsyncLineageMixin,
    AsyncMaintenanceMixin,
):
    """Sessions, messages and forks of one tenant, stored in a backend.

    Open one with ``open()`` (Neo4j, from settings) or ``in_memory()``; both are context
    managers. Nothing touches the database in the constructor, and opening loads nothing
    that grows with the tenant: fork trees load into the mirror when first asked about.
    """

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        setup: bool = False,
        instance: str = "default",
    ) -> AsyncIterator[Any]:
        """Connect to Neo4j as configured (a local server is started when no URI is set).

        Args:
            settings: configuration; read from ``SESSION_GRAPH_*`` when omitted.
            setup: apply pending schema migrations first (``session-graph init`` does this).
            instance: name of the local server instance, when one is used.
        """
        from session_graph.connection import ready_connection

        check_instance(settings, Settings, "settings", optional=True)
        check_bool(setup, "setup")
        validate_name(check_str(instance, "instance"), what="instance")
        settings = settings or Settings()
        store = cls.connect_to(ready_connection(settings, instance=instance), settings)
        try:
            await store.connect(setup=setup)
            yield store
        finally:
            await store.close()

    @classmethod
    def connect_to(cls, info: ConnectionInfo, settings: Settings) -> AsyncSessionStore:
        """A store on the server ``info`` names, with a driver of its own (not yet checked)."""
        check_instance(info, ConnectionInfo, "info")
        check_instance(settings, Settings, "settings")
        driver = neo4j.AsyncGraphDatabase.driver(
            info.uri,
            auth=info.auth,
            notifications_min_severity="OFF",
            max_transaction_retry_time=settings.connect_timeout,
            connection_acquisition_timeout=settings.connect_timeout,
        )
        backend = AsyncNeo4jBackend(
            driver,
            tenant=settings.tenant,
            database=info.database,
            retry_attempts=settings.retry_attempts,
            unavailable_timeout=settings.connect_timeout,
            owns_driver=True,
        )
        return cls(backend, settings)

    @classmethod
    async def in_memory(
        cls, settings: Settings | None = None, *, database: MemoryDatabase | None = None
    ) -> AsyncSessionStore:
        """A store on the in-memory reference backend (tests, experiments), set up."""
        from session_graph._async.memory import AsyncMemoryBackend, MemoryDatabase

        check_instance(settings, Settings, "settings", optional=True)
        check_instance(database, MemoryDatabase, "database", optional=True)
        settings = settings or Settings()
        store = cls(AsyncMemoryBackend(settings.tenant, database), settings)
        await store.connect(setup=True)
        return store

    async def __aenter__(self) -> AsyncSessionStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def setup(self) -> list[str]:
        """Apply pending schema migrations (repeatable); returns the versions applied now."""
        return await self.backend.setup()

    async def connect(self, *, setup: bool = False) -> None:
        """Check the schema (applying it when ``setup``). Loads nothing else."""
        check_bool(setup, "setup")
        if setup:
            await self.setup()
        elif not await self.backend.applied_migrations():
            raise SchemaError("the database has no session_graph schema: run `session-graph init`")

    async def run_saved(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a saved query from ``cypher/`` by name (this store's tenant as ``$tenant``).

        ``params`` are exactly the query's parameters (``$tenant`` aside), each a value
        Neo4j takes (None, bool, 64-bit int, float, str, temporal values, lists, maps).

        Raises:
            ValidationError: no saved query has that name, a parameter is missing or unknown,
                ``tenant`` is given, or a value is not one Neo4j takes.
        """
        check_saved_query(name, params)
        return await self.backend.run_saved(name, **params)

    async def close(self) -> None:
        """Close the backend's connections."""
        await self.backend.close()
