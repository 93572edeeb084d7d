"""From settings to a server that answers: an explicit URI, else a local server started now."""

from __future__ import annotations

from session_graph.config import Settings
from session_graph.runtime import ConnectionInfo, resolve_connection, wait_for_bolt


def ready_connection(
    settings: Settings, *, instance: str = "default", allow_docker: bool = False
) -> ConnectionInfo:
    """The configured server (``SESSION_GRAPH_NEO4J_URI``), else a local one; waits until it
    answers (bounded by ``connect_timeout``). Blocks while a local server starts."""
    info = resolve_connection(settings, allow_docker=allow_docker, instance=instance)
    wait_for_bolt(info, settings.connect_timeout, query=True)
    return info
