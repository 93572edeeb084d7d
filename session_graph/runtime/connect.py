"""Choosing the Neo4j server to use and waiting until it answers."""

from __future__ import annotations

import atexit
import contextlib

from session_graph.config import Settings
from session_graph.runtime.bolt import wait_for_bolt
from session_graph.runtime.docker import docker_available, docker_neo4j
from session_graph.runtime.info import ConnectionInfo
from session_graph.runtime.local import LocalNeo4j

__all__ = ["resolve_connection", "wait_for_bolt"]


def resolve_connection(
    settings: Settings, *, allow_docker: bool = False, instance: str = "default"
) -> ConnectionInfo:
    """The server to use, in order: ``settings.neo4j_uri``, Docker, a local server.

    Args:
        settings: configuration.
        allow_docker: use a throwaway testcontainers server when ``settings.docker`` is
            ``"auto"`` and a Docker engine answers (tests); it is removed at interpreter exit.
        instance: name of the local server instance to start or reuse.

    Raises:
        RuntimeSetupError: the local server could not be installed or started.
    """
    if settings.neo4j_uri:
        password = settings.neo4j_password
        return ConnectionInfo(
            uri=settings.neo4j_uri,
            user=settings.neo4j_user,
            password=None if password is None else password.get_secret_value(),
            database=settings.neo4j_database,
            source="uri",
        )
    if allow_docker and settings.docker == "auto" and docker_available():
        stack = contextlib.ExitStack()
        info = stack.enter_context(docker_neo4j(settings))
        atexit.register(stack.close)
        return info
    return LocalNeo4j(settings, instance).start()
