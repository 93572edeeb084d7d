"""Plain records the runtime hands out: how to connect, and what a local server is doing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Source = Literal["uri", "docker", "local"]


@dataclass(frozen=True, kw_only=True)
class ConnectionInfo:
    """Where a Neo4j server answers and how to log in; the password never appears in repr.

    Attributes:
        uri: Bolt URI (``bolt://127.0.0.1:7687``, ``neo4j+s://...``).
        user: user name.
        password: password, or None for a server without authentication.
        database: database every query targets.
        source: who provided the server: explicit ``uri``, ``docker`` (testcontainers) or
            ``local`` (a server session_graph started itself).
    """

    uri: str
    user: str = "neo4j"
    password: str | None = field(default=None, repr=False)
    database: str = "neo4j"
    source: Source = "uri"

    @property
    def auth(self) -> tuple[str, str] | None:
        """The ``auth`` argument for ``neo4j.GraphDatabase.driver``."""
        return None if self.password is None else (self.user, self.password)


@dataclass(frozen=True, kw_only=True)
class LocalStatus:
    """State of one local server instance.

    Attributes:
        running: the server process is alive (it may still be starting).
        pid: process id while running.
        port: Bolt port the instance uses (kept across restarts), None before the first start.
        uri: Bolt URI for ``port``.
        version: Neo4j version of the running server, else the configured one.
        home: the instance directory.
        started_at: ISO-8601 UTC start time while running.
    """

    running: bool
    pid: int | None
    port: int | None
    uri: str | None
    version: str
    home: Path
    started_at: str | None = None
