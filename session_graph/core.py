"""What the store does without I/O: checks input, builds stored rows, turns rows into models.

Shared by the async store and the sync one generated from it, so none of this is written twice.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

import pydantic

from session_graph import queries
from session_graph.config import Settings
from session_graph.crypto import ContentCodec
from session_graph.errors import LimitExceededError, ValidationError
from session_graph.ids import BYTES_TYPES, new_id, not_text, validate_message_id, validate_name
from session_graph.models import (
    MAX_INT,
    ForkPoint,
    Message,
    NewMessage,
    NewSession,
    Session,
    ToolCall,
    check_metadata,
    check_text,
    name_sequence,
)
from session_graph.records import OPTIONAL_FIELDS, MessageRow, SessionRecord

M = TypeVar("M", bound=pydantic.BaseModel)
MessageInput = NewMessage | Mapping[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


MIN_INT = -(2**63)  # Neo4j integers are signed 64-bit: MIN_INT..MAX_INT

# -- argument checks: every public method checks its arguments with these before any I/O ----


def _kind(value: Any) -> str:
    return type(value).__name__


def check_bool(value: Any, what: str) -> bool:
    """``value`` if it is True or False (no truthy strings, numbers or None)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be True or False, not {_kind(value)}")
    return value


def check_int(
    value: Any, what: str, *, minimum: int | None = MIN_INT, maximum: int | None = MAX_INT
) -> int:
    """``value`` if it is an int (not a bool, float or str) within ``minimum..maximum``
    (signed 64-bit by default; None: unbounded)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, not {_kind(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValidationError(f"{what} must be between {minimum} and {maximum}, got {value}")
    return value


def check_optional_int(
    value: Any, what: str, *, minimum: int | None = MIN_INT, maximum: int | None = MAX_INT
) -> int | None:
    return None if value is None else check_int(value, what, minimum=minimum, maximum=maximum)


def check_str(value: Any, what: str) -> str:
    """``value`` if it is a str (bytes are refused with a hint to decode them)."""
    if not isinstance(value, str):
        raise ValidationError(not_text(value, what))
    return value


def check_optional_str(value: Any, what: str) -> str | None:
    return None if value is None else check_str(value, what)


def check_lookup_name(value: Any, what: str = "session id") -> str:
    """A name that finds something stored (lenient: old ids stay reachable)."""
    return validate_name(value, what=what, lookup=True)


def check_optional_lookup_name(value: Any, what: str) -> str | None:
    return None if value is None else check_lookup_name(value, what)


def check_mapping(value: Any, what: str, *, optional: bool = False) -> dict[str, Any]:
    """``value`` as a dict if it is a mapping (None gives {} when ``optional``)."""
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping (dict), not {_kind(value)}")
    return dict(value)


def check_optional_datetime(value: Any, what: str) -> datetime | None:
    """``value`` if it is None or a timezone-aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a timezone-aware datetime, not {_kind(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} must be timezone-aware")
    return value


def check_instance(value: Any, kind: type[Any], what: str, *, optional: bool = False) -> Any:
    """``value`` if it is a ``kind`` (or None when ``optional``)."""
    if (value is None and optional) or isinstance(value, kind):
        return value
    raise ValidationError(f"{what} must be a {kind.__name__}, not {_kind(value)}")


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_CYPHER_SCALARS = (str, bool, int, float, date, time, timedelta)


def check_saved_query(name: Any, params: Mapping[str, Any]) -> None:
    """``name`` names a saved query and ``params`` are exactly its parameters (the tenant is
    the store's), each a value Neo4j takes."""
    check_str(name, "saved query name")
    known = queries.load_all()
    if name not in known:
        raise ValidationError(f"no saved query {name!r}; known: {', '.join(sorted(known))}")
    if "tenant" in params:
        raise ValidationError("run_saved takes no tenant: the store's own tenant is used")
    wanted = set(_PARAM.findall(known[name].text)) - {"tenant"}
    missing, unknown = sorted(wanted - set(params)), sorted(set(params) - wanted)
    if missing or unknown:
        raise ValidationError(
            f"saved query {name!r} takes {', '.join(sorted(wanted)) or 'no parameters'}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    stack: list[tuple[str, Any]] = list(params.items())
    while stack:
        what, value = stack.pop()
        if value is None:
            continue
        if isinstance(value, BYTES_TYPES):
            raise ValidationError(not_text(value, f"parameter {what}"))
        if isinstance(value, int) and not isinstance(value, bool):
            check_int(value, f"parameter {what}")
        elif isinstance(value, str):
            try:
                check_text(value, f"parameter {what}")
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        elif isinstance(value, list | tuple):
            stack.extend((f"{what}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                check_str(key, f"a key of parameter {what}")
                stack.append((f"{what}.{key}", item))
        elif not isinstance(value, _CYPHER_SCALARS):
            raise ValidationError(f"parameter {what} cannot be a {_kind(value)}")


def validated(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or the project's ValidationError."""
    try:
        return data if isinstance(data, model) else model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(str(exc)) from exc


def to_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (exact, no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def to_ms(stamp: datetime) -> int:
    return (stamp - EPOCH) // timedelta(milliseconds=1)


def new_op() -> str:
    """An id for one write call, made before its first attempt (retries reuse it)."""
    return new_id()


def metadata_json(metadata: Mapping[str, Any], settings: Settings) -> str:
    """Metadata as stored JSON text, refused when over ``max_metadata_bytes``."""
    encoded = to_json(metadata)
    size = len(encoded.encode("utf-8"))
    if size > settings.max_metadata_bytes:
        raise LimitExceededError(
            f"metadata is {size} bytes as JSON; the limit is {settings.max_metadata_bytes} "
            "(SESSION_GRAPH_MAX_METADATA_BYTES)"
        )
    return encoded


def prepare_messages(
    messages: MessageInput | Sequence[MessageInput], settings: Settings
) -> list[NewMessage]:
    """Validate what ``append`` was given: one message or a non-empty list of them."""
    items: Sequence[Any]
    if isinstance(messages, (NewMessage, Mapping)):
        items = [messages]
    elif isinstance(messages, Sequence) and not isinstance(messages, (str, *BYTES_TYPES)):
        items = messages
    else:
        raise ValidationError(
            "append takes a message (NewMessage or dict) or a list of them, "
            f"not {_kind(messages)}"
        )
    if not items:
        raise ValidationError("append needs at least one message")
    prepared = [validated(NewMessage, m) for m in items]
    seen: set[str] = set()
    for m in prepared:
        size = len(m.content.encode("utf-8"))
        if size > settings.max_message_bytes:
            raise LimitExceededError(
                f"message content is {size} bytes; the limit is {settings.max_message_bytes} "
                "(SESSION_GRAPH_MAX_MESSAGE_BYTES)"
            )
        if m.parts or m.tool_calls or m.native is not None:
            size = len((message_body(m) or "").encode("utf-8"))
            if size > settings.max_message_bytes:
                raise LimitExceededError(
                    f"message body (parts, tool calls, native form) is {size} bytes as JSON; "
                    f"the limit is {settings.max_message_bytes} (SESSION_GRAPH_MAX_MESSAGE_BYTES)"
                )
        metadata_json(m.metadata, settings)
        if m.id is not None:
            if m.id in seen:
                raise ValidationError(f"message id {m.id} appears twice in one append")
            seen.add(m.id)
    return prepared


def body_json(
    parts: Sequence[Mapping[str, Any]] = (),
    tool_calls: Sequence[ToolCall] = (),
    native: Mapping[str, Any] | None = None,
) -> str | None:
    """The structured part of a message as stored JSON text, or None when it has none. Keys
    keep their order: a framework's native form comes back as it was given."""
    body: dict[str, Any] = {}
    if parts:
        body["parts"] = list(parts)
    if tool_calls:
        body["tool_calls"] = [c.model_dump(exclude_none=True) for c in tool_calls]
    if native is not None:
        body["native"] = native
    if not body:
        return None
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def message_body(item: NewMessage) -> str | None:
    """``body_json`` of a message to append."""
    return body_json(item.parts, item.tool_calls, item.native)


def message_row(
    item: NewMessage, message_id: str, codec: ContentCodec, copied_from: str | None = None
) -> dict[str, Any]:
    """The properties stored for a new message: only those with a value (lean rows)."""
    row: dict[str, Any] = {"id": message_id, "role": item.role}
    row.update((k, v) for k, v in codec.encode(item.content).items() if v is not None)
    for name in OPTIONAL_FIELDS:
        value = getattr(item, name)
        if value is not None:
            row[name] = value
    if item.metadata:
        row["metadata"] = to_json(item.metadata)
    if item.kind != "message":
        row["kind"] = item.kind
    if item.tool_calls:
        row["tool_names"] = [c.name for c in item.tool_calls]
    body = message_body(item)
    if body is not None:
        row.update(codec.encode_body(body))
    if copied_from is not None:
        row["copied_from"] = copied_from
    return row


def timestamps(items: Sequence[NewMessage]) -> list[int | None] | None:
    """Caller-given creation times in epoch ms (None when no message has one)."""
    if all(m.created_at is None for m in items):
        return None
    return [None if m.created_at is None else to_ms(m.created_at) for m in items]


_MESSAGE_FIELDS_SET = frozenset(Message.model_fields)
_set = object.__setattr__


def _message(values: dict[str, Any]) -> Message:
    """A ``Message`` from complete, already valid values, built as ``model_construct`` does
    but without its per-field defaults pass: reads build one per message, so this is the
    per-message cost of every read (tests compare it with validated models)."""
    message = Message.__new__(Message)
    _set(message, "__dict__", values)
    _set(message, "__pydantic_fields_set__", set(_MESSAGE_FIELDS_SET))
    _set(message, "__pydantic_extra__", None)
    _set(message, "__pydantic_private__", None)
    return message


def messages_from_rows(rows: list[MessageRow], codec: ContentCodec) -> list[Message]:
    """Stored rows (``records.MESSAGE_FIELDS`` order) as ``Message`` models.

    Rows come from the database, already checked on the way in, so they are not validated
    again. Messages written together share a creation time, so times convert once each.
    """
    times: dict[int, datetime] = {}
    out = []
    for row in rows:
        (mid, owner, pos, role, content, enc, created, provider, model, tin, tout, cost, tool,
         call, name, native_format, meta, copied, kind, body, body_enc) = row  # fmt: skip
        stamp = times.get(created)
        if stamp is None:
            stamp = times[created] = from_ms(created)
        parts: tuple[dict[str, Any], ...] = ()
        calls: tuple[ToolCall, ...] = ()
        native = None
        if body is not None or body_enc is not None:
            found = json.loads(body if body_enc is None else codec.decode_pair(None, body_enc))
            parts = tuple(found.get("parts", ()))
            calls = tuple(ToolCall.model_construct(**c) for c in found.get("tool_calls", ()))
            native = found.get("native")
        out.append(
            _message(
                {
                    "id": mid,
                    "session_id": owner,
                    "position": pos,
                    "role": role,
                    "content": content if enc is None else codec.decode_pair(content, enc),
                    "created_at": stamp,
                    "provider": provider,
                    "model": model,
                    "input_tokens": tin,
                    "output_tokens": tout,
                    "cost": cost,
                    "tool_name": tool,
                    "tool_call_id": call,
                    "metadata": json.loads(meta) if meta else {},
                    "copied_from": copied,
                    "name": name,
                    "kind": kind or "message",
                    "parts": parts,
                    "tool_calls": calls,
                    "native": native,
                    "native_format": native_format,
                }
            )
        )
    return out


def message_from_row(row: MessageRow, codec: ContentCodec) -> Message:
    """One stored row as a ``Message`` (see ``messages_from_rows``)."""
    return messages_from_rows([row], codec)[0]


def message_from_item(
    item: NewMessage,
    message_id: str,
    session_id: str,
    position: int,
    created: datetime,
    copied_from: str | None = None,
) -> Message:
    """The ``Message`` a just-appended item became (no read back needed)."""
    return Message.model_construct(
        id=message_id,
        session_id=session_id,
        position=position,
        role=item.role,
        content=item.content,
        created_at=item.created_at or created,
        provider=item.provider,
        model=item.model,
        input_tokens=item.input_tokens,
        output_tokens=item.output_tokens,
        cost=item.cost,
        tool_name=item.tool_name,
        tool_call_id=item.tool_call_id,
        metadata=dict(item.metadata),
        copied_from=copied_from,
        name=item.name,
        kind=item.kind,
        parts=item.parts,
        tool_calls=item.tool_calls,
        native=item.native,
        native_format=item.native_format,
    )


def session_from_record(rec: SessionRecord) -> Session:
    p = rec.props
    fork = None
    if rec.fork is not None:
        f = rec.fork
        fork = ForkPoint(
            parent_id=f["parent_id"],
            message_id=f.get("at"),
            position=f.get("position", -1),
            reason=f.get("reason"),
            metadata=json.loads(f.get("metadata") or "{}"),
            created_at=f["created_at"],
        )
    return Session(
        id=p["id"],
        title=p.get("title"),
        user_id=p.get("user_id"),
        tags=tuple(p.get("tags") or ()),
        status=p.get("status") or "active",
        metadata=json.loads(p.get("metadata") or "{}"),
        created_at=p["created_at"],
        updated_at=p["updated_at"],
        deleted_at=p.get("deleted_at"),
        fork=fork,
        head_id=rec.head_id,
        message_count=int(p.get("length") or 0),
        root_id=rec.root,
    )


def tag_tuple(tags: Sequence[str]) -> tuple[str, ...]:
    """Tags as a tuple; one bare string is refused rather than split into characters, and
    anything but a list or tuple of strings (a set, a mapping, None) is refused."""
    return name_sequence(tags)


def fork_child(
    settings: Settings,
    id: str | None,
    title: str | None,
    tags: Sequence[str],
    metadata: Mapping[str, Any] | None,
    reason: str | None,
    fork_metadata: Mapping[str, Any] | None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """A fork to create, as the fork statement takes it: ``{id, props, fork}``."""
    fields = validated(
        NewSession,
        {
            "id": id,
            "title": title,
            "tags": tag_tuple(tags),
            "metadata": check_mapping(metadata, "metadata", optional=True),
        },
    )
    check_optional_str(reason, "fork reason")
    given_fork_meta = check_mapping(fork_metadata, "fork_metadata", optional=True)
    if reason is not None and len(reason) > 1000:
        raise ValidationError("fork reason is longer than 1000 characters")
    try:
        check_text(reason, "reason")
        fork_meta = check_metadata(given_fork_meta)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    props: dict[str, Any] = {
        "title": fields.title,
        "tags": list(fields.tags),
        "status": "active",
        "metadata": metadata_json(fields.metadata, settings),
    }
    if user_id is not None:
        props["user_id"] = user_id
    fork: dict[str, Any] = {"metadata": metadata_json(fork_meta, settings)}
    if reason is not None:
        fork["reason"] = reason
    return {"id": fields.id or new_id(), "props": props, "fork": fork}


def checked_message_id(value: Any) -> str:
    try:
        return validate_message_id(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def checked_session_id(value: Any) -> str:
    """A session id to look up (the lenient check: ids older releases stored stay reachable)."""
    return check_lookup_name(value, "session id")


def encode_cursor(created: datetime, session_id: str) -> str:
    raw = json.dumps([created.isoformat(), session_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    check_str(cursor, "cursor")
    try:
        created, sid = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        stamp = datetime.fromisoformat(created)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValidationError("cursor is not one that list_sessions returned") from exc
    if stamp.tzinfo is None or not isinstance(sid, str):
        raise ValidationError("cursor is not one that list_sessions returned")
    return stamp, sid
