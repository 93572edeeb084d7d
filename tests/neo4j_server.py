"""pytest plugin: one real Neo4j server for the whole test session.

Where the server comes from, first match wins:

1. ``SESSION_GRAPH_NEO4J_URI`` (with ``SESSION_GRAPH_NEO4J_PASSWORD``...): that server.
2. A Docker engine that answers (and ``SESSION_GRAPH_DOCKER`` is not ``never``): testcontainers.
3. Otherwise a local server in ``SESSION_GRAPH_HOME`` (default ``~/.session_graph``), instance
   ``pytest-<pid>``, deleted at the end; the jar cache in that home is reused between runs.

A server that cannot start is an error, never a skip. Tests that kill and restart the server use
``local_neo4j`` and fail when the server is not the local one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from session_graph.config import Settings
from session_graph.runtime import (
    ConnectionInfo,
    LocalNeo4j,
    docker_available,
    docker_neo4j,
    resolve_connection,
    wait_for_bolt,
)

INSTANCE_PREFIX = "pytest-"


@dataclass(frozen=True)
class Neo4jServer:
    """The session's server and, when session_graph runs it, its controller."""

    info: ConnectionInfo
    local: LocalNeo4j | None


def settings_for_tests() -> Settings:
    """Settings from the environment, with any fixed local port dropped (instances share home)."""
    return Settings(local_port=None)


def reap_stale_instances(settings: Settings) -> None:
    """Destroy ``pytest-*-<pid>`` instances left by test runs whose process is gone."""
    instances = settings.home / "instances"
    for path in sorted(instances.glob(f"{INSTANCE_PREFIX}*")) if instances.is_dir() else []:
        owner = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and owner.isdigit() and not _pid_exists(int(owner)):
            LocalNeo4j(settings, path.name).destroy()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Neo4jServer]:
    """The session's Neo4j server (see the module docstring for where it comes from)."""
    settings = settings_for_tests()
    if settings.neo4j_uri:
        info = resolve_connection(settings)
        wait_for_bolt(info, settings.connect_timeout, query=True)
        yield Neo4jServer(info, None)
        return
    if settings.docker == "auto" and docker_available():
        with docker_neo4j(settings) as info:
            yield Neo4jServer(info, None)
        return
    with contextlib.suppress(OSError):
        reap_stale_instances(settings)
    local = LocalNeo4j(settings, f"{INSTANCE_PREFIX}{os.getpid()}")
    info = local.start()  # raises RuntimeSetupError with the server log: an error, not a skip
    try:
        yield Neo4jServer(info, local)
    finally:
        local.destroy()


@pytest.fixture(scope="session")
def neo4j_info(neo4j_server: Neo4jServer) -> ConnectionInfo:
    """How to reach the session's Neo4j server."""
    return neo4j_server.info


@pytest.fixture(scope="session")
def local_neo4j(neo4j_server: Neo4jServer) -> LocalNeo4j:
    """The session's server as a :class:`LocalNeo4j`, for tests that kill and restart it.

    Fails (does not skip) when the server is not local: unset ``SESSION_GRAPH_NEO4J_URI`` and set
    ``SESSION_GRAPH_DOCKER=never`` to run these tests.
    """
    if neo4j_server.local is None:
        pytest.fail(
            f"this test needs the local server session_graph starts itself, but the session "
            f"uses a {neo4j_server.info.source!r} server; unset SESSION_GRAPH_NEO4J_URI and set "
            "SESSION_GRAPH_DOCKER=never",
            pytrace=False,
        )
    return neo4j_server.local
