"""A throwaway Neo4j in Docker through testcontainers (tests on machines with a Docker engine)."""

from __future__ import annotations

import contextlib
import importlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from session_graph.config import Settings
from session_graph.runtime.bolt import wait_for_bolt
from session_graph.runtime.info import ConnectionInfo


def docker_image(settings: Settings) -> str:
    """The pinned community image for ``settings.neo4j_version``."""
    return f"neo4j:{settings.neo4j_version}-community"


def docker_available(timeout: float = 2.0) -> bool:
    """True if the Docker SDK is installed and an engine answers ping within ``timeout``.

    Never raises; the check runs in a daemon thread so a hung engine socket cannot block.
    """
    answer: list[bool] = []

    def ping() -> None:
        try:
            docker: Any = importlib.import_module("docker")
            client = docker.from_env(timeout=max(1, int(timeout)))
            try:
                answer.append(bool(client.ping()))
            finally:
                client.close()
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=ping, name="docker-ping", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


@contextlib.contextmanager
def docker_neo4j(settings: Settings) -> Iterator[ConnectionInfo]:
    """Run a Neo4j container for the duration of the ``with`` block.

    Yields:
        Connection details of the container (``source="docker"``); the password is random.
    """
    password = secrets.token_urlsafe(18)
    container = _container_class()(image=docker_image(settings), password=password)
    container.with_env("NEO4J_server_memory_heap_max__size", settings.local_heap)
    container.with_env("NEO4J_server_memory_pagecache_size", settings.local_pagecache)
    container.with_env("NEO4J_dbms_usage__report_enabled", "false")
    container.with_env("NEO4J_initial_dbms_default__database", settings.neo4j_database)
    with container:
        info = ConnectionInfo(
            uri=container.get_connection_url(),
            user="neo4j",
            password=password,
            database=settings.neo4j_database,
            source="docker",
        )
        wait_for_bolt(info, settings.connect_timeout, query=True)
        yield info


def _container_class() -> Any:
    # testcontainers moved the module to testcontainers.community.neo4j after 4.x; the old path
    # still imports but warns.
    for name in ("testcontainers.community.neo4j", "testcontainers.neo4j"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name).Neo4jContainer
    raise ImportError("testcontainers is not installed: pip install 'session-graph[test]'")
