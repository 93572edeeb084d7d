"""Pydantic models: what callers send (``NewMessage``, ``NewSession``) and what they get back."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from session_graph.errors import ValidationError
from session_graph.ids import BYTES_TYPES, not_text, validate_message_id, validate_name

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
DELETED = "deleted"
MAX_INT = 2**63 - 1  # Neo4j integers are signed 64-bit
MAX_TAGS = 64
MAX_METADATA_DEPTH = 32


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, at millisecond precision (what Neo4j keeps)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _depth(value: Any, limit: int = MAX_METADATA_DEPTH) -> int:
    """Nesting depth of dicts/lists, iteratively, stopping once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata must be JSON: string keys, finite numbers, nesting at most 32 levels."""
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata is not JSON-safe: {exc}") from exc
    except UnicodeEncodeError as exc:
        raise ValueError("metadata holds text that is not valid Unicode (lone surrogate)") from exc
    return value


def check_text(value: str | None, what: str) -> str | None:
    """Text must encode as UTF-8 (lone surrogates cannot be stored)."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode (lone surrogate at {exc.start})") from exc
    return value


def no_bytes(value: Any, what: str) -> Any:
    """``value`` unless it is bytes-like: text fields take ``str`` only, never decoded bytes."""
    if isinstance(value, BYTES_TYPES):
        raise ValidationError(not_text(value, what))
    return value


def name_sequence(value: Any, what: str = "tags") -> tuple[Any, ...]:
    """A list or tuple of names (tags) as a tuple; one string, a set, a mapping or any other
    container is refused (a string would split into characters, a set has no order)."""
    if isinstance(value, (str, *BYTES_TYPES)):
        raise ValidationError(f"{what} must be a list of strings, not one {type(value).__name__}")
    if not isinstance(value, (list, tuple)):
        raise ValidationError(
            f"{what} must be a list or tuple of strings, not {type(value).__name__}"
        )
    for item in value:
        if not isinstance(item, str):
            raise ValidationError(not_text(item, f"each of the {what}"))
    return tuple(value)


def _check_date(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueError("created_at is out of range in UTC") from exc
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


MAX_NAME = 256
MAX_KIND = 64
TEXT_KEYS = ("text",)


def check_json_object(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON object nesting at most 32 levels (metadata rules, under another name)."""
    try:
        return check_metadata(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("metadata", what, 1)) from None


def parts_text(parts: Any) -> str:
    """The text of content parts: every part's str ``text``, joined with "" (as LangChain's
    ``.text`` and the OpenAI SDK's output text do)."""
    if not isinstance(parts, list | tuple):
        return ""
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


class ToolCall(_Input):
    """A call a message makes to a tool: the framework's call id, the tool's name and its
    arguments exactly as the framework gave them (a dict, or JSON text for OpenAI)."""

    id: str | None = Field(default=None, max_length=MAX_NAME)
    name: str = Field(min_length=1, max_length=MAX_NAME)
    arguments: JsonValue = None

    @field_validator("id", "name", mode="before")
    @classmethod
    def _not_bytes(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bytes(value, "tool call " + str(info.field_name))

    @field_validator("id", "name")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return check_text(value, "tool call text")

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, value: Any) -> Any:
        if isinstance(value, str):
            return check_text(value, "tool call arguments")
        check_json_object({"arguments": value}, "tool call arguments")
        return value



def calls_from_metadata(metadata: str | None) -> list[ToolCall]:
    """Tool calls an earlier writer kept in message metadata as ``tool_calls`` (JSON text), in
    the shapes frameworks use: ``{id, name, arguments}``, LangChain's ``{id, name, args}`` or
    OpenAI chat's ``{id, type, function: {name, arguments}}``. Anything else gives ``[]``:
    only calls that are unmistakably calls are lifted (schema migration 0005)."""
    try:
        found = json.loads(metadata or "{}").get("tool_calls")
    except (ValueError, AttributeError):
        return []
    if not isinstance(found, list) or not found:
        return []
    calls = []
    for item in found:
        if not isinstance(item, dict):
            return []
        spec: dict[str, Any] = item["function"] if isinstance(item.get("function"), dict) else item
        arguments = spec.get("arguments", spec.get("args"))
        try:
            calls.append(ToolCall(id=item.get("id"), name=spec.get("name"), arguments=arguments))
        except PydanticValidationError:
            return []
    return calls

class NewMessage(_Input):
    """A message to append. ``id`` may be given (a UUID) to make retries idempotent.

    Text fields take ``str`` only (bytes are refused, not decoded), token counts ``int``
    only (not bool, float or str), ``cost`` an int or float, ``created_at`` a
    timezone-aware ``datetime`` or ISO-8601 text with a timezone (not a number).
    """

    role: Role
    content: str = ""
    id: str | None = None
    created_at: datetime | None = None
    provider: str | None = Field(default=None, max_length=256)
    model: str | None = Field(default=None, max_length=256)
    input_tokens: int | None = Field(default=None, ge=0, le=MAX_INT)
    output_tokens: int | None = Field(default=None, ge=0, le=MAX_INT)
    cost: float | None = Field(default=None, ge=0)
    tool_name: str | None = Field(default=None, max_length=256)
    tool_call_id: str | None = Field(default=None, max_length=256)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=MAX_NAME)
    kind: str = Field(default="message", max_length=MAX_KIND)
    parts: tuple[dict[str, JsonValue], ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    native: dict[str, JsonValue] | None = None
    native_format: str | None = Field(default=None, max_length=MAX_KIND)

    @model_validator(mode="before")
    @classmethod
    def _content_from_parts(cls, data: Any) -> Any:
        # Dashboards read `content`: a message given as parts gets their text there.
        if isinstance(data, dict) and data.get("parts") and not data.get("content"):
            text = parts_text(data["parts"])
            if text:
                data = {**data, "content": text}
        return data

    @field_validator(
        "role",
        "content",
        "id",
        "provider",
        "model",
        "tool_name",
        "tool_call_id",
        "name",
        "kind",
        "native_format",
        mode="before",
    )
    @classmethod
    def _not_bytes(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bytes(value, str(info.field_name))

    @field_validator("parts", "tool_calls", mode="before")
    @classmethod
    def _sequence(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{info.field_name} must be a list, not {type(value).__name__}")
        return value

    @field_validator("parts")
    @classmethod
    def _parts(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for i, part in enumerate(value):
            if not isinstance(part.get("type"), str) or not part["type"]:
                raise ValueError(f"part {i} needs a non-empty str 'type'")
            check_json_object(part, f"part {i}")
        return value

    @field_validator("kind", "native_format")
    @classmethod
    def _label(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else validate_name(value, what=str(info.field_name))

    @field_validator("native")
    @classmethod
    def _native(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_json_object(value, "native")

    @model_validator(mode="after")
    def _native_needs_format(self) -> NewMessage:
        if self.native is not None and self.native_format is None:
            raise ValueError("native needs native_format (who wrote it, e.g. 'langchain')")
        return self

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _whole(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{info.field_name} must be an integer, not {type(value).__name__}")
        return value

    @field_validator("cost", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"cost must be a number (int or float), not {type(value).__name__}")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _stamp(cls, value: Any) -> Any:
        # JSON input (files, the CLI, framework messages) carries times as ISO-8601 text;
        # numbers are refused: seconds or milliseconds would be a guess.
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    "created_at text must be ISO-8601 with a timezone "
                    "(2025-01-31T09:30:00+00:00 or ...Z)"
                ) from None
        if value is not None and not isinstance(value, datetime):
            raise ValueError(
                "created_at must be a timezone-aware datetime or ISO-8601 text, "
                f"not {type(value).__name__}"
            )
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else validate_message_id(value)

    @field_validator("content", "provider", "model", "tool_name", "tool_call_id", "name")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return check_text(value, "text")

    @field_validator("cost")
    @classmethod
    def _cost(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("cost must be a finite number")
        return value

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: datetime | None) -> datetime | None:
        return _check_date(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class SessionFields(_Input):
    """Editable session fields, shared by ``NewSession`` and updates."""

    title: str | None = Field(default=None, max_length=1000)
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    status: str = "active"
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("title", "user_id", "status", mode="before")
    @classmethod
    def _not_bytes(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bytes(value, str(info.field_name))

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, value: Any) -> tuple[Any, ...]:
        return name_sequence(value)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return check_text(value, "title")

    @field_validator("user_id")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, what="user_id")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        seen: dict[str, None] = {}
        for tag in value:
            seen[validate_name(tag, what="tag")] = None
        return tuple(seen)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        validate_name(value, what="status")
        if value == DELETED:
            raise ValueError("status 'deleted' is set by delete_session only")
        if len(value) > 64:
            raise ValueError("status is longer than 64 characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class NewSession(SessionFields):
    """A session to create; ``id`` may be given by the caller (any printable text)."""

    id: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_not_bytes(cls, value: Any) -> Any:
        return no_bytes(value, "session id")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, what="session id")


class Strategy(_Input):
    """One branch of ``explore``: a name, and optional session fields for the fork."""

    name: str
    id: str | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("name", "id", "title", mode="before")
    @classmethod
    def _not_bytes(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bytes(value, "strategy " + str(info.field_name))

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, value: Any) -> tuple[Any, ...]:
        return name_sequence(value, "strategy tags")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return check_text(value, "strategy title")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, what="strategy name")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, what="session id")

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class Message(_Output):
    """A stored message. ``position`` is its 0-based index in every history that holds it."""

    id: str
    session_id: str
    position: int
    role: Role
    content: str
    created_at: datetime
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    copied_from: str | None = None
    name: str | None = None
    kind: str = "message"
    parts: tuple[dict[str, JsonValue], ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    native: dict[str, JsonValue] | None = None
    native_format: str | None = None

    def as_new(self) -> NewMessage:
        """This message's content and fields as a ``NewMessage`` to append elsewhere (a merge's
        copies): no id and no time, so the copy gets its own."""
        skip = ("id", "created_at")
        fields = {k: getattr(self, k) for k in NewMessage.model_fields if k not in skip}
        return NewMessage.model_construct(id=None, created_at=None, **fields)


class ForkPoint(_Output):
    """Where a fork left its parent: the message (None for an empty fork) and its position."""

    parent_id: str
    message_id: str | None
    position: int
    reason: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: datetime


class Session(_Output):
    """A stored session; ``fork`` is set when it was forked from another session."""

    id: str
    title: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    status: str = "active"
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    fork: ForkPoint | None = None
    head_id: str | None = None
    message_count: int = 0
    root_id: str | None = None

    @property
    def deleted(self) -> bool:
        return self.status == DELETED

    @property
    def parent_id(self) -> str | None:
        return self.fork.parent_id if self.fork else None


class Page(_Output):
    """One page of a listing; pass ``next_cursor`` back to get the next page."""

    items: tuple[Session, ...]
    next_cursor: str | None = None


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` did.

    ``mode`` is ``fast-forward`` (the target's head moved to the fork's head, nothing
    copied), ``copy`` (the fork's diverging messages were appended to the target as copies
    linked to their originals by COPIED_FROM) or ``up-to-date`` (nothing to merge).
    """

    mode: str
    fork_id: str
    into_id: str
    common_position: int
    copied: tuple[str, ...] = ()


@dataclass(frozen=True)
class PurgeReport:
    """What ``purge`` removed."""

    messages: int
    sessions: int
