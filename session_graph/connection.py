"""From settings to a ready ``Neo4jBackend``: pick the server, wait for it, build the driver."""

from __future__ import annotations

from neo4j import GraphDatabase

from session_graph.backends.neo4j import Neo4jBackend
from session_graph.config import Settings
from session_graph.runtime import ConnectionInfo, resolve_connection, wait_for_bolt


def backend_for(info: ConnectionInfo, settings: Settings) -> Neo4jBackend:
    """A backend on the server ``info`` names, once it answers (bounded by connect_timeout)."""
    wait_for_bolt(info, settings.connect_timeout, query=True)
    driver = GraphDatabase.driver(
        info.uri,
        auth=info.auth,
        notifications_min_severity="OFF",
        max_transaction_retry_time=settings.connect_timeout,
        connection_acquisition_timeout=settings.connect_timeout,
    )
    return Neo4jBackend(
        driver,
        tenant=settings.tenant,
        database=info.database,
        retry_attempts=settings.retry_attempts,
        owns_driver=True,
    )


def connect_backend(
    settings: Settings, *, instance: str = "default", allow_docker: bool = False
) -> Neo4jBackend:
    """The configured server (``SESSION_GRAPH_NEO4J_URI``), else a local one started now."""
    return backend_for(
        resolve_connection(settings, allow_docker=allow_docker, instance=instance), settings
    )
