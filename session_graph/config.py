"""Configuration: one settings object read from ``SESSION_GRAPH_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

import pydantic
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from session_graph.errors import ConfigError

ENV_PREFIX = "SESSION_GRAPH_"
NEO4J_VERSION = "5.26.30"
URI_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
# A DNS name (letters of any script, digits, '-', '_'), an IPv4 or a bracketed IPv6 address.
_HOST = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.?)*(?:[^\W_](?:[\w-]{0,61}[^\W_])?)?$")


def _default_home() -> Path:
    return Path.home() / ".session_graph"


class Settings(BaseSettings):
    """Everything session_graph can be told, with defaults that work on a fresh machine.

    Every field maps to ``SESSION_GRAPH_<FIELD>`` (for example ``SESSION_GRAPH_NEO4J_URI``).
    With no ``neo4j_uri`` the store uses a local Neo4j server that session_graph starts itself.
    """

    # hide_input_in_errors: a rejected value may be a password or a URI holding one.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

    def __init__(self, **values: Any) -> None:
        """Read the environment (and ``values``); a bad setting raises ``ConfigError``."""
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                (f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
                + e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ConfigError(f"bad configuration: {problems}") from None

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
    local_port: int | None = Field(
        default=None, ge=1, le=65535, description="local server Bolt port; unset = free"
    )
    local_heap: str = Field(default="512m", description="local server JVM heap (-Xmx)")
    local_pagecache: str = Field(default="256m", description="local server page cache")
    docker: Literal["auto", "never"] = Field(
        default="auto", description="tests: use testcontainers when a Docker engine answers"
    )

    connect_timeout: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds to wait for a server that is still starting",
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
        allow_inf_nan=False,
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
    debug: bool = Field(
        default=False, description="command line: print the traceback of an error (1/true)"
    )

    @field_validator("home", mode="before")
    @classmethod
    def _check_home(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a directory (unset it for ~/.session_graph)")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but holding no key is a mistake (an empty expansion, a stray comma), not
        # "no encryption": content would be written in the clear.
        if value is None or value.get_secret_value() == "":
            return None  # an empty variable is an unset one, as for the URI
        if not any(k.strip() for k in value.get_secret_value().split(",")):
            raise ValueError("holds no key (unset it to store content unencrypted)")
        return value

    @field_validator("local_heap", "local_pagecache")
    @classmethod
    def _check_size(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]{0,8}[kKmMgG]?", value):
            raise ValueError(f"a memory size looks like 512m or 2g, not {value!r}")
        return value

    @field_validator("neo4j_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}", value):
            raise ValueError(f"a Neo4j version looks like {NEO4J_VERSION}, not {value!r}")
        return value

    @field_validator("neo4j_uri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        # Messages here never quote the URI: it may hold a password.
        parts = _split_uri(value)
        if parts.scheme not in URI_SCHEMES:
            raise ValueError(
                "the URI must start with one of " + ", ".join(f"{s}://" for s in URI_SCHEMES)
            )
        host = parts.hostname
        if not host:
            raise ValueError("the URI names no host")
        if ":" not in host and not _HOST.match(host):
            raise ValueError(f"the URI's host {host!r} is not a valid host name")
        if parts.port == 0:
            raise ValueError("the URI's port must be between 1 and 65535")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("the URI must not have a path or a fragment")
        if parts.query and not parts.scheme.startswith("neo4j"):
            raise ValueError("only neo4j:// URIs take a query (a routing context)")
        return value

    @model_validator(mode="after")
    def _credentials_from_uri(self) -> Settings:
        """``bolt://user:password@host`` works, but the URI kept (and shown) has no secret."""
        if not self.neo4j_uri:
            return self
        parts = _split_uri(self.neo4j_uri)
        if parts.username is None and parts.password is None:
            return self
        user = unquote(parts.username or "")
        if user and user != self.neo4j_user and "neo4j_user" in self.model_fields_set:
            raise ValueError("the URI names a user and SESSION_GRAPH_NEO4J_USER another; give one")
        if parts.password is not None:
            password = unquote(parts.password)
            given = self.neo4j_password
            if given is not None and given.get_secret_value() != password:
                raise ValueError(
                    "the URI holds a password and SESSION_GRAPH_NEO4J_PASSWORD another; give one"
                )
            self.neo4j_password = SecretStr(password)
        if user:
            self.neo4j_user = user
        host = parts.netloc.rpartition("@")[2]
        self.neo4j_uri = parts._replace(netloc=host).geturl()
        return self

    @field_validator("tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        from session_graph.ids import validate_name

        return validate_name(value, what="tenant")


def _split_uri(value: str) -> SplitResult:
    """``value`` split into parts; ports out of range and broken hosts raise ValueError."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise ValueError(f"the URI is not valid ({exc})") from None
    return parts
