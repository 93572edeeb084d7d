"""Stored rows become the same ``Message`` a validated model would be (reads skip validation)."""

from __future__ import annotations

import json
import uuid

import pytest

from session_graph.core import from_ms, messages_from_rows, to_ms
from session_graph.crypto import ContentCodec, generate_key
from session_graph.errors import EncryptionError
from session_graph.models import Message
from session_graph.records import MESSAGE_FIELDS

BODY = {
    "parts": [{"type": "text", "text": "hé"}, {"type": "image_url", "image_url": {"url": "u"}}],
    "tool_calls": [{"id": "c1", "name": "calc", "arguments": {"x": [1, 2]}}, {"name": "now"}],
    "native": {"type": "ai", "data": {"content": "hé", "id": None}},
}
ROWS = [
    # id, session_id, pos, role, content, content_enc, created_at ms, provider, model,
    # input_tokens, output_tokens, cost, tool_name, tool_call_id, name, native_format,
    # metadata, copied_from, kind, body, body_enc
    [str(uuid.uuid4()), "s", 0, "system", "", None, 0, None, None, None, None, None, None, None,
     None, None, None, None, None, None, None],
    [str(uuid.uuid4()), "s", 1, "assistant", "héllo", None, 1_700_000_000_123, "openai", "gpt",
     5, 6, 0.25, None, None, "bot", "langchain", json.dumps({"a": [1, {"b": None}]}), None,
     None, json.dumps(BODY), None],
    [str(uuid.uuid4()), "f", 2, "tool", "42", None, 1_700_000_000_123, None, None, None, None,
     None, "calc", "call-1", None, None, None, str(uuid.uuid4()), "function_call_output", None,
     None],
]  # fmt: skip


def validated(row: list[object], content: str | None = None) -> Message:
    data = dict(zip(MESSAGE_FIELDS, row, strict=True))
    body = BODY if data["body"] or data["body_enc"] else {}
    return Message(
        id=data["id"],
        session_id=data["session_id"],
        position=data["pos"],
        role=data["role"],
        content=data["content"] if content is None else content,
        created_at=from_ms(data["created_at"]),  # type: ignore[arg-type]
        provider=data["provider"],
        model=data["model"],
        input_tokens=data["input_tokens"],
        output_tokens=data["output_tokens"],
        cost=data["cost"],
        tool_name=data["tool_name"],
        tool_call_id=data["tool_call_id"],
        metadata=json.loads(data["metadata"]) if data["metadata"] else {},  # type: ignore[arg-type]
        copied_from=data["copied_from"],
        name=data["name"],
        kind=data["kind"] or "message",
        parts=body.get("parts", ()),
        tool_calls=body.get("tool_calls", ()),
        native=body.get("native"),
        native_format=data["native_format"],
    )


def test_rows_equal_validated_models() -> None:
    built = messages_from_rows(ROWS, ContentCodec())
    for message, row in zip(built, ROWS, strict=True):
        expected = validated(row)
        assert message == expected
        assert message.model_dump() == expected.model_dump()
        assert message.model_dump_json() == expected.model_dump_json()
        assert message.model_copy(update={"content": "x"}).content == "x"
        assert message.content == expected.content  # the original is untouched
        with pytest.raises(ValueError):
            message.content = "changed"  # frozen, like any Message
    assert built[1].created_at is built[2].created_at  # one conversion per creation time
    assert to_ms(built[1].created_at) == 1_700_000_000_123


def test_encrypted_rows_decrypt() -> None:
    codec = ContentCodec([generate_key()])
    token = codec.encode("secret")["content_enc"]
    row = [*ROWS[1][:4], None, token, *ROWS[1][6:]]
    row[MESSAGE_FIELDS.index("body")] = None
    row[MESSAGE_FIELDS.index("body_enc")] = codec.encode_body(json.dumps(BODY))["body_enc"]
    [message] = messages_from_rows([row], codec)
    assert message == validated(row, content="secret")
    assert message.tool_calls[0].arguments == {"x": [1, 2]}
    with pytest.raises(EncryptionError):
        messages_from_rows([row], ContentCodec())
