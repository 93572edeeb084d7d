"""The public stores: ``SessionStore`` (sync) and ``AsyncSessionStore`` (async).

``AsyncSessionStore`` (``session_graph/_async``) is the one implementation; ``SessionStore``
(``session_graph/_sync``) is generated from it by ``scripts/unasync.py``.
"""

from session_graph._async.store import AsyncSessionStore
from session_graph._sync.store import SessionStore

__all__ = ["AsyncSessionStore", "SessionStore"]
