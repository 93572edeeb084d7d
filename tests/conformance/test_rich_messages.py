"""Rich messages: content parts, tool calls, names, kinds and a framework's native form,
stored first-class so Cypher reads role, text, tool names, tokens and cost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from session_graph import NewMessage, SessionStore, ToolCall, ValidationError
from session_graph.crypto import generate_key
from session_graph.records import MESSAGE_FIELDS
from tests.stores import StoreFactory, backend_read, fingerprint, tenant_query

NATIVE = {"type": "ai", "data": {"content": [{"type": "text", "text": "Paris"}], "id": None}}
RICH: dict[str, Any] = {
    "role": "assistant",
    "name": "planner",
    "parts": [
        {"type": "text", "text": "Looking that up: "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "Paris"},
    ],
    "tool_calls": [
        {"id": "call_1", "name": "search", "arguments": {"q": "capital of France", "k": [1, 2]}},
        {"id": "call_2", "name": "lookup", "arguments": '{"city": "Paris"}'},
    ],
    "native": NATIVE,
    "native_format": "langchain",
    "input_tokens": 12,
    "output_tokens": 4,
    "cost": 0.001,
}


def test_rich_fields_round_trip(store: SessionStore) -> None:
    store.create_session("s")
    [sent] = store.append("s", RICH)
    [tool] = store.append(
        "s",
        {"role": "tool", "content": "Paris", "tool_name": "search", "tool_call_id": "call_1",
         "kind": "function_call_output"},
    )  # fmt: skip
    read, read_tool = store.messages("s")
    assert read == sent and read_tool == tool
    assert read.content == "Looking that up: Paris"  # the parts' text, for dashboards
    assert read.parts == tuple(RICH["parts"])
    assert read.tool_calls == (
        ToolCall(id="call_1", name="search", arguments={"q": "capital of France", "k": [1, 2]}),
        ToolCall(id="call_2", name="lookup", arguments='{"city": "Paris"}'),
    )
    assert (read.name, read.kind, read.native, read.native_format) == (
        "planner",
        "message",
        NATIVE,
        "langchain",
    )
    assert read_tool.kind == "function_call_output" and read_tool.tool_calls == ()
    assert store.get_message(sent.id) == sent


def test_given_content_is_kept_beside_parts(store: SessionStore) -> None:
    store.create_session("s")
    [m] = store.append("s", {"role": "user", "content": "caption", "parts": RICH["parts"]})
    assert m.content == "caption" and store.messages("s")[0].parts == tuple(RICH["parts"])


BAD_FIELDS: list[tuple[str, Any]] = [
    ("parts", [{"text": "no type"}]),
    ("parts", [{"type": ""}]),
    ("parts", "text"),
    ("parts", [["type", "text"]]),
    ("tool_calls", [{"id": "c", "arguments": {}}]),
    ("tool_calls", [{"name": ""}]),
    ("tool_calls", [{"name": "x", "extra": 1}]),
    ("tool_calls", {"name": "x"}),
    ("tool_calls", [{"name": b"x"}]),
    ("tool_calls", [{"name": "x", "arguments": float("nan")}]),
    ("native", {"a": 1}),  # without native_format
    ("native", ["a"]),
    ("native_format", "bad\u200bformat"),
    ("kind", " reply"),
    ("kind", ""),
    ("name", b"bob"),
    ("name", "x" * 257),
]


def test_bad_rich_fields_are_refused(store: SessionStore) -> None:
    store.create_session("s")
    store.append("s", {"role": "user", "content": "kept"})
    before = fingerprint(store)
    for field, value in BAD_FIELDS:
        with pytest.raises(ValidationError):
            store.append("s", [{"role": "user", "content": "fine"}, {"role": "user", field: value}])
    assert fingerprint(store) == before


def test_body_is_limited_like_content(open_store: StoreFactory) -> None:
    store = open_store(max_message_bytes=1000)
    store.create_session("s")
    with pytest.raises(ValidationError, match="body"):
        store.append("s", {"role": "user", "parts": [{"type": "text", "text": "x" * 2000}],
                           "content": "short"})  # fmt: skip
    assert store.message_count("s") == 0


def test_cypher_reads_role_text_tool_names_tokens(store: SessionStore) -> None:
    store.create_session("s")
    store.append("s", [{"role": "user", "content": "capital of France?"}, RICH])
    rows = tenant_query(
        store,
        "MATCH (m:SGMessage {tenant: $t}) RETURN m.role AS role, m.content AS text, "
        "m.tool_names AS tools, m.output_tokens AS out, m.cost AS cost, m.kind AS kind, "
        "m.name AS name ORDER BY m.pos",
    )
    if rows is None:
        return  # the memory backend has no Cypher
    assert rows == [
        {"role": "user", "text": "capital of France?", "tools": None, "out": None, "cost": None,
         "kind": None, "name": None},
        {"role": "assistant", "text": "Looking that up: Paris", "tools": ["search", "lookup"],
         "out": 4, "cost": 0.001, "kind": None, "name": "planner"},
    ]  # fmt: skip


def test_body_is_encrypted_with_the_content(open_store: StoreFactory) -> None:
    store = open_store(encryption_keys=generate_key())
    store.create_session("s")
    [m] = store.append("s", RICH)
    row = dict(zip(MESSAGE_FIELDS, backend_read(store, lambda ops: ops.message_rows([m.id]))[0],
                   strict=True))  # fmt: skip
    assert row["body"] is None and row["content"] is None
    assert "capital" not in row["body_enc"] and "Paris" not in row["body_enc"]
    assert store.get_message(m.id) == m
    assert store.get_message(m.id).tool_calls[0].arguments["q"] == "capital of France"


def test_forks_and_merge_copies_keep_rich_fields(store: SessionStore) -> None:
    store.create_session("s")
    store.append("s", {"role": "user", "content": "q"})
    fork = store.fork("s", id="f")
    store.append("s", {"role": "user", "content": "main goes on"})
    [rich] = store.append(fork.id, RICH)
    assert store.messages("f")[-1] == rich
    result = store.merge("f", into="s")
    assert result.mode == "copy"
    copy = store.messages("s")[-1]
    assert copy.copied_from == rich.id
    fields = ("role", "content", "name", "parts", "tool_calls", "native", "native_format", "kind")
    assert {k: getattr(copy, k) for k in fields} == {k: getattr(rich, k) for k in fields}


def test_new_message_model_builds_content_from_parts() -> None:
    m = NewMessage(role="user", parts=[{"type": "input_text", "text": "a"}, {"type": "x"}])
    assert m.content == "a"
    assert json.loads(m.model_dump_json())["parts"][1] == {"type": "x"}
