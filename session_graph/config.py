"""Configuration: one settings object read from ``SESSION_GRAPH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SESSION_GRAPH_"
NEO4J_VERSION = "5.26.30"


def _default_home() -> Path:
    return Path.home() / ".session_graph"


class Settings(BaseSettings):
    """Everything session_graph can be told, with defaults that work on a fresh machine.

    Every field maps to ``SESSION_GRAPH_<FIELD>`` (for example ``SESSION_GRAPH_NEO4J_URI``).
    With no ``neo4j_uri`` the store uses a local Neo4j server that session_graph starts itself.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    neo4j_uri: str | None = Field(
        default=None, description="bolt://, neo4j:// or neo4j+s:// URI; unset = local server"
    )
    neo4j_user: str = Field(default="neo4j", description="Neo4j user name")
    neo4j_password: SecretStr | None = Field(
        default=None, description="Neo4j password (local server: generated and kept in HOME)"
    )
    neo4j_database: str = Field(default="neo4j", description="database name")
    home: Path = Field(
        default_factory=_default_home,
        description="data directory: local server files, jar cache, exports",
    )
    tenant: str = Field(default="default", description="tenant every read and write is scoped to")

    neo4j_version: str = Field(default=NEO4J_VERSION, description="local server version (5.26.x)")
    local_port: int | None = Field(default=None, description="local server Bolt port; unset = free")
    local_heap: str = Field(default="512m", description="local server JVM heap (-Xmx)")
    local_pagecache: str = Field(default="256m", description="local server page cache")
    docker: Literal["auto", "never"] = Field(
        default="auto", description="tests: use testcontainers when a Docker engine answers"
    )

    connect_timeout: float = Field(
        default=120.0, gt=0, description="seconds to wait for a server that is still starting"
    )
    retry_attempts: int = Field(default=6, ge=1, description="attempts for transient failures")
    max_message_bytes: int = Field(
        default=1_000_000, gt=0, description="largest message content, UTF-8 bytes"
    )
    max_metadata_bytes: int = Field(
        default=64_000, gt=0, description="largest metadata, bytes of its JSON form"
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="comma-separated Fernet keys; first encrypts, all decrypt (rotation)",
    )
    mirror_max_lag: float = Field(
        default=1.0,
        ge=0,
        description="seconds a lineage answer may lag other processes' writes "
        "(0: check the tree's version on every call); own writes are always seen at once",
    )
    mirror_max_sessions: int = Field(
        default=100_000, gt=0, description="sessions the lineage mirror holds before evicting trees"
    )
    append_chunk: int = Field(
        default=10_000,
        gt=0,
        le=1_000_000,
        description="messages per transaction; longer appends go in chunks shown together",
    )

    @field_validator("neo4j_uri")
    @classmethod
    def _check_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        allowed = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")
        if not value.startswith(allowed):
            raise ValueError(f"neo4j_uri must start with one of {', '.join(allowed)}")
        return value

    @field_validator("tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        from session_graph.ids import validate_name

        return validate_name(value, what="tenant")
