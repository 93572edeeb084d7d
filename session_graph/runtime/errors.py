"""Errors of the runtime layer.

``RuntimeSetupError`` lives in the project's exception tree (:mod:`session_graph.errors`);
it is re-exported here so runtime code and its callers import it from one place.
"""

from __future__ import annotations

from session_graph.errors import RuntimeSetupError, ServerUnavailableError

__all__ = ["RuntimeSetupError", "ServerUnavailableError"]
