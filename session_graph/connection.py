"""From settings to a server that answers: an explicit URI, else a local server started now."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from neo4j.exceptions import AuthError

from session_graph.config import Settings
from session_graph.errors import ConfigError
from session_graph.runtime import ConnectionInfo, resolve_connection, wait_for_bolt


def ready_connection(
    settings: Settings,
    *,
    instance: str = "default",
    allow_docker: bool = False,
    check: Callable[[], None] | None = None,
) -> ConnectionInfo:
    """The configured server (``SESSION_GRAPH_NEO4J_URI``), else a local one; waits until it
    answers (bounded by ``connect_timeout``). Blocks while a local server starts; ``check``
    is called before every attempt (progress, or raise to stop waiting).

    Raises:
        ConfigError: the configured host does not resolve (said at once, not after the wait),
            or the server refuses the credentials.
    """
    info = resolve_connection(settings, allow_docker=allow_docker, instance=instance)
    if info.source == "uri":
        check_resolves(info.uri)
    try:
        wait_for_bolt(info, settings.connect_timeout, query=True, check=check)
    except AuthError as exc:
        raise ConfigError(
            f"Neo4j refused the login of user {info.user!r} at {info.uri} ({exc.message}); "
            "check SESSION_GRAPH_NEO4J_USER and SESSION_GRAPH_NEO4J_PASSWORD"
        ) from None
    return info


def check_resolves(uri: str) -> None:
    """Fail fast on a host name that does not resolve: waiting would not make it resolve."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    try:
        socket.getaddrinfo(host, parts.port or 7687, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(
            f"the host {host!r} of SESSION_GRAPH_NEO4J_URI does not resolve ({reason})"
        ) from None
