"""session_graph: a Neo4j-backed session store for LLM agents, with shared-history forks."""

from session_graph.config import Settings
from session_graph.errors import (
    ConfigError,
    ConflictError,
    EncryptionError,
    ForkPointError,
    LimitExceededError,
    MergeConflictError,
    MessageNotFoundError,
    NotFoundError,
    RuntimeSetupError,
    SchemaError,
    ServerUnavailableError,
    SessionDeletedError,
    SessionExistsError,
    SessionGraphError,
    SessionNotFoundError,
    StorageError,
    ValidationError,
)
from session_graph.models import (
    ForkPoint,
    MergeResult,
    Message,
    NewMessage,
    NewSession,
    Page,
    PurgeReport,
    Session,
    Strategy,
)
from session_graph.store import AsyncSessionStore, SessionStore

__version__ = "0.1.0"

__all__ = [
    "AsyncSessionStore",
    "ConfigError",
    "ConflictError",
    "EncryptionError",
    "ForkPoint",
    "ForkPointError",
    "LimitExceededError",
    "MergeConflictError",
    "MergeResult",
    "Message",
    "MessageNotFoundError",
    "NewMessage",
    "NewSession",
    "NotFoundError",
    "Page",
    "PurgeReport",
    "RuntimeSetupError",
    "SchemaError",
    "ServerUnavailableError",
    "Session",
    "SessionDeletedError",
    "SessionExistsError",
    "SessionGraphError",
    "SessionNotFoundError",
    "SessionStore",
    "Settings",
    "StorageError",
    "Strategy",
    "ValidationError",
    "__version__",
]
