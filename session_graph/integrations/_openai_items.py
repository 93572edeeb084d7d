"""Responses items and session_graph messages, both ways (no I/O, no SDK import).

An item becomes a ``NewMessage`` with the first-class fields filled (role, content, parts,
tool calls, kind) and the item itself as ``native``; a stored message becomes the items it
stands for: its native item when this integration wrote it, otherwise items built from the
first-class fields. ``session_graph.integrations.openai_agents`` builds on these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from session_graph.core import validated
from session_graph.errors import ValidationError
from session_graph.integrations._exact import check_exact_json
from session_graph.models import Message, NewMessage

NATIVE_FORMAT = "openai.responses"
"""``native_format`` of the messages this integration writes."""

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# Arguments of built-in tool calls, by the key each call type keeps them under.
_ARGUMENT_KEYS = ("arguments", "input", "action", "queries", "code", "operation")


# -- items in, messages out ---------------------------------------------------------------


def _parts(value: Any) -> list[dict[str, Any]]:
    """The content parts of a list (each a dict with a str ``type``); others are left out."""
    if not isinstance(value, list):
        return []
    return [
        p for p in value if isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"]
    ]


def _text(parts: list[dict[str, Any]], *keys: str) -> str:
    return "".join(str(p[key]) for p in parts for key in keys if isinstance(p.get(key), str))


def content_text(content: Any) -> str:
    """The text of a message's content: the str itself, or its parts' text joined."""
    return content if isinstance(content, str) else _text(_parts(content), "text")


def _message_fields(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise ValidationError(
            f"item {index}: a message's role must be one of {', '.join(_ROLES)}, not {role!r}"
        )
    fields: dict[str, Any] = {"role": _ROLES[role], "kind": "message"}
    content = item.get("content")
    if isinstance(content, str):
        fields["content"] = content
    else:
        parts = _parts(content)
        fields["parts"] = parts
        fields["content"] = _text(parts, "text", "refusal")
    return fields


def _item_fields(item: Mapping[str, Any], index: int, names: Mapping[str, str]) -> dict[str, Any]:
    """The first-class fields of one Responses item (role, content, parts, tool calls, kind)."""
    kind = item.get("type")
    if kind is None or kind == "message":
        return _message_fields(item, index)
    if not isinstance(kind, str):
        raise ValidationError(f"item {index}: 'type' must be a str, not {type(kind).__name__}")
    fields: dict[str, Any] = {"kind": kind}
    call_id = item.get("call_id", item.get("id"))
    if kind == "reasoning":
        summary = _parts(item.get("summary"))
        fields.update(role="assistant", parts=summary, content=_text(summary, "text"))
        if not fields["content"]:
            fields["content"] = _text(_parts(item.get("content")), "text")
    elif kind.endswith("_output") or kind == "mcp_approval_response":
        output = item.get("output")
        fields["role"] = "tool"
        if kind == "mcp_approval_response":
            call_id = item.get("approval_request_id")
        if isinstance(output, str):
            fields["content"] = output
        else:
            fields["parts"] = _parts(output)
        if isinstance(call_id, str):
            fields["tool_call_id"] = call_id
            if call_id in names:
                fields["tool_name"] = names[call_id]
    elif kind.endswith("_call"):
        fields["role"] = "assistant"
        name = item.get("name")
        if kind == "mcp_call" and isinstance(item.get("server_label"), str):
            name = f"{item['server_label']}.{name}"
        args = next((item[k] for k in _ARGUMENT_KEYS if k in item), None)
        fields["tool_calls"] = [
            {
                "id": call_id if isinstance(call_id, str) else None,
                "name": name if isinstance(name, str) and name else kind.removesuffix("_call"),
                "arguments": args,
            }
        ]
    else:  # mcp_list_tools, item_reference, compaction, ...: what the model side produced
        fields["role"] = "assistant"
    return fields


def item_to_message(
    item: Any, index: int = 0, names: Mapping[str, str] | None = None
) -> NewMessage:
    """One Responses item as a ``NewMessage``: first-class fields filled, the item kept
    verbatim as ``native``. ``names`` maps call ids to tool names (for tool outputs).

    Raises:
        ValidationError: the item is not a dict of JSON values, or not a Responses item.
    """
    if not isinstance(item, dict):
        raise ValidationError(
            f"item {index} must be a dict (a Responses input item), not {type(item).__name__}"
        )
    check_exact_json(item, f"item {index}")
    if "type" not in item and "role" not in item:
        raise ValidationError(f"item {index} has neither 'type' nor 'role': not a Responses item")
    fields = _item_fields(item, index, names or {})
    try:
        return validated(NewMessage, {**fields, "native": item, "native_format": NATIVE_FORMAT})
    except ValidationError as exc:
        raise ValidationError(f"item {index}: {exc}") from None


def items_to_messages(items: Sequence[Any]) -> list[NewMessage]:
    """Items as messages, checked before anything is written."""
    names: dict[str, str] = {}
    out = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if isinstance(call_id, str) and isinstance(name, str):
                names[call_id] = name
        out.append(item_to_message(item, index, names))
    return out


# -- messages in, items out ---------------------------------------------------------------


def _input_part(part: Mapping[str, Any]) -> dict[str, Any] | None:
    """A content part of another writer as a Responses input part (None: no equivalent)."""
    kind = part.get("type")
    if kind in ("input_text", "input_image", "input_file"):
        return dict(part)
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
        if isinstance(url, str):
            return {"type": "input_image", "image_url": url, "detail": detail}
    return None


def message_items(message: Message) -> list[dict[str, Any]]:
    """The Responses items a stored message stands for: its native item when this
    integration wrote it, otherwise built from the first-class fields (an easy input message,
    a function call output, and one function call item per tool call)."""
    if message.native_format == NATIVE_FORMAT and message.native is not None:
        return [message.native]
    if message.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.tool_call_id or "",
                "output": message.content,
            }
        ]
    items: list[dict[str, Any]] = []
    if message.content or message.parts or not message.tool_calls:
        content: Any = message.content
        if message.parts and message.role in ("user", "system"):
            parts = [_input_part(p) for p in message.parts]
            if all(p is not None for p in parts):
                content = parts
        items.append({"role": message.role, "content": content})
    for i, call in enumerate(message.tool_calls):
        args = call.arguments if call.arguments is not None else {}
        items.append(
            {
                "type": "function_call",
                "call_id": call.id or f"{message.id}-{i}",
                "name": call.name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            }
        )
    return items
