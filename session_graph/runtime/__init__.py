"""Where the Neo4j server comes from: an explicit URI, Docker (tests) or a local server.

``resolve_connection(settings)`` picks one and returns a :class:`ConnectionInfo`;
:class:`LocalNeo4j` manages a server session_graph runs itself (Java 17 + Maven, no Docker).
"""

from __future__ import annotations

from session_graph.runtime.bolt import wait_for_bolt
from session_graph.runtime.connect import resolve_connection
from session_graph.runtime.docker import docker_available, docker_neo4j
from session_graph.runtime.errors import RuntimeSetupError
from session_graph.runtime.info import ConnectionInfo, LocalStatus
from session_graph.runtime.jars import JarCache
from session_graph.runtime.local import LocalNeo4j

__all__ = [
    "ConnectionInfo",
    "JarCache",
    "LocalNeo4j",
    "LocalStatus",
    "RuntimeSetupError",
    "docker_available",
    "docker_neo4j",
    "resolve_connection",
    "wait_for_bolt",
]
