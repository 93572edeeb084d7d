"""The exception tree of session_graph.

SessionGraphError
├── ValidationError          bad input (also a ValueError); nothing was written
│   ├── LimitExceededError   content or metadata over the configured size
│   └── ConfigError          bad settings (SESSION_GRAPH_* variables, Settings arguments)
├── NotFoundError            (also a KeyError)
│   ├── SessionNotFoundError
│   └── MessageNotFoundError
├── ConflictError            the request contradicts what is stored
│   ├── SessionExistsError
│   ├── SessionDeletedError  writes to a deleted session are refused
│   ├── ForkPointError       a fork point that is not in the session's history
│   └── MergeConflictError
├── SchemaError              the database has no (or an older) session_graph schema
├── StorageError             the backend failed after retries (wraps the driver error)
│   └── ServerUnavailableError
├── EncryptionError          content cannot be decrypted with the configured keys
└── RuntimeSetupError        a local Neo4j cannot be installed or started
"""

from __future__ import annotations


class SessionGraphError(Exception):
    """Root of every error session_graph raises on purpose."""


class ValidationError(SessionGraphError, ValueError):
    """Input was refused before anything was written."""


class LimitExceededError(ValidationError):
    """Content or metadata is larger than the configured limit."""


class ConfigError(ValidationError):
    """The configuration is invalid: a setting, an environment variable, an unusable URI.

    Messages name the setting but never echo a secret (passwords, URI credentials).
    """


class NotFoundError(SessionGraphError, KeyError):
    """A session or message does not exist (for this tenant)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SessionNotFoundError(NotFoundError):
    """No such session for this tenant."""


class MessageNotFoundError(NotFoundError):
    """No such message in the session's history."""


class ConflictError(SessionGraphError):
    """The request contradicts what is stored."""


class SessionExistsError(ConflictError):
    """A session with that id exists already and get-or-create was not asked for."""


class SessionDeletedError(ConflictError):
    """The session was deleted: it stays readable for lineage but takes no writes."""


class ForkPointError(ConflictError):
    """The fork point is not a message of the session's history."""


class MergeConflictError(ConflictError):
    """The two sessions cannot be merged (different trees, or the fork is not a descendant)."""


class SchemaError(SessionGraphError):
    """The database lacks the session_graph schema: run ``session-graph init``."""


class StorageError(SessionGraphError):
    """The backend failed, after retries where the failure was transient."""


class ServerUnavailableError(StorageError):
    """The Neo4j server could not be reached within the configured time."""


class EncryptionError(SessionGraphError):
    """Stored content could not be decrypted with the configured keys."""


class RuntimeSetupError(SessionGraphError):
    """A local Neo4j server could not be installed or started; the message says what to do."""
