"""Waiting until a Neo4j server answers on Bolt."""

from __future__ import annotations

import time
from collections.abc import Callable

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, DriverError, TransientError

from session_graph.runtime.errors import ServerUnavailableError
from session_graph.runtime.info import ConnectionInfo

_POLL_INTERVAL = 0.25


def wait_for_bolt(
    info: ConnectionInfo,
    timeout: float,
    *,
    check: Callable[[], None] | None = None,
    query: bool = False,
) -> None:
    """Poll until the server accepts a Bolt login, or ``timeout`` seconds pass.

    Args:
        info: server and credentials.
        timeout: seconds to keep trying.
        check: called before every attempt; raise from it to stop waiting (a dead process).
        query: also run ``RETURN 1`` on ``info.database`` (the database is online).

    Raises:
        ServerUnavailableError: no answer within ``timeout``.
        neo4j.exceptions.AuthError: the server answers but refuses the credentials.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with GraphDatabase.driver(
        info.uri,
        auth=info.auth,
        connection_timeout=min(5.0, timeout),
        max_connection_pool_size=2,
        max_transaction_retry_time=1.0,
    ) as driver:
        while True:
            if check is not None:
                check()
            try:
                driver.verify_connectivity()
                if query:
                    driver.execute_query("RETURN 1", database_=info.database)
                return
            except AuthError:
                raise
            except (DriverError, TransientError, OSError) as exc:
                last = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerUnavailableError(
                    f"Neo4j at {info.uri} did not answer within {timeout:.0f}s: {last}"
                ) from last
            time.sleep(min(_POLL_INTERVAL, remaining))
