"""The OpenAI Agents SDK integration on the real Neo4j server, with the real SDK.

Agents run through ``Runner.run`` on the SDK's own scripted model (``agents.testing``), so
what is stored is exactly what the SDK hands a session. Every coroutine runs on the test
event loop thread, where the ``AsyncSessionStore`` lives.
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.memory import Session, SessionABC
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage
from neo4j import Driver
from openai.types.responses.response_usage import InputTokensDetails

from session_graph import AsyncSessionStore, Settings, ToolCall
from session_graph.errors import SessionExistsError, SessionNotFoundError, ValidationError
from session_graph.integrations.openai_agents import NATIVE_FORMAT, SessionGraphSession
from session_graph.runtime import ConnectionInfo
from tests.stores import event_loop_thread

T = TypeVar("T")
NO_TRACES = RunConfig(tracing_disabled=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return event_loop_thread().run(coro)


@pytest.fixture
def store(neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str) -> Iterator[Any]:
    astore = AsyncSessionStore.connect_to(neo4j_info, Settings(tenant=tenant))
    run(astore.connect())
    yield astore
    run(astore.close())


@pytest.fixture
def cypher(neo4j_driver: Driver, neo4j_info: ConnectionInfo, tenant: str) -> Any:
    def query(text: str, **params: Any) -> list[dict[str, Any]]:
        result = neo4j_driver.execute_query(text, t=tenant, database_=neo4j_info.database, **params)
        return [dict(r) for r in result.records]

    return query


ITEMS: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer briefly."},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is in "},
            {"type": "input_text", "text": "this picture?"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
        ],
    },
    {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "A picture; look it up."}],
        "encrypted_content": None,
    },
    {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "a.png"},
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"url":"https://example.com/a.png","score":0.5}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "a red bicycle"},
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "text": "A red bicycle.",
                "annotations": [{"type": "url_citation", "start_index": 0, "end_index": 5,
                                 "url": "https://example.com", "title": "ex"}],
                "logprobs": [],
            }
        ],
    },
    {"role": "user", "content": "Thanks! 🚲"},
]  # fmt: skip


def test_each_item_type_comes_back_exactly_with_first_class_fields(store: Any, cypher: Any) -> None:
    session = SessionGraphSession("chat", store)
    assert isinstance(session, SessionABC) and isinstance(session, Session)
    given = copy.deepcopy(ITEMS)
    run(session.add_items(given))
    assert given == ITEMS  # the caller's items are not changed
    assert run(session.get_items()) == ITEMS
    assert run(SessionGraphSession("chat", store).get_items()) == ITEMS  # another instance

    stored = run(store.messages("chat"))
    assert {m.native_format for m in stored} == {NATIVE_FORMAT}
    fields = [(m.role, m.kind, m.content) for m in stored]
    assert fields == [
        ("system", "message", "Answer briefly."),
        ("user", "message", "What is in this picture?"),
        ("assistant", "reasoning", "A picture; look it up."),
        ("assistant", "web_search_call", ""),
        ("assistant", "function_call", ""),
        ("tool", "function_call_output", "a red bicycle"),
        ("assistant", "message", "A red bicycle."),
        ("user", "message", "Thanks! 🚲"),
    ]
    assert stored[1].parts == tuple(ITEMS[1]["content"])
    assert stored[2].parts == tuple(ITEMS[2]["summary"])
    assert stored[3].tool_calls == (
        ToolCall(id="ws_1", name="web_search", arguments={"type": "search", "query": "a.png"}),
    )
    assert stored[4].tool_calls == (
        ToolCall(id="call_1", name="lookup", arguments=ITEMS[4]["arguments"]),
    )
    assert (stored[5].tool_call_id, stored[5].tool_name) == ("call_1", "lookup")

    # what a dashboard reads with plain Cypher
    rows = cypher(
        "MATCH (:SGSession {tenant: $t, id: 'chat'})-[:HEAD]->(:SGMessage)-[:PREVIOUS*0..]->(m) "
        "RETURN m.role AS role, m.kind AS kind, m.content AS content, m.tool_names AS tools "
        "ORDER BY m.pos"
    )
    assert [(r["role"], r["kind"] or "message", r["content"]) for r in rows] == fields
    assert [r["tools"] for r in rows][3:5] == [["web_search"], ["lookup"]]


def test_limits_pop_and_clear(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    session = SessionGraphSession("s", store, session_settings={"limit": 3})
    assert run(session.get_items()) == []
    assert run(session.pop_item()) is None
    run(session.clear_session())
    with pytest.raises(SessionNotFoundError):
        run(store.get_session("s"))  # reads and no-ops create nothing

    items = [{"role": "user", "content": f"m{i}"} for i in range(10)]
    run(session.add_items(items[:4]))
    run(session.add_items(items[4:]))
    run(session.add_items([]))

    windows: list[Any] = []
    read = store.messages

    async def spy(sid: str, start: Any = None, stop: Any = None) -> Any:
        windows.append(start)
        return await read(sid, start, stop)

    monkeypatch.setattr(store, "messages", spy)
    assert run(session.get_items()) == items[-3:]  # session_settings.limit
    assert run(session.get_items(5)) == items[-5:]
    assert run(session.get_items(100)) == items
    assert run(session.get_items(0)) == []
    assert windows == [-3, -5, -100]  # only the window asked for is read
    monkeypatch.undo()

    assert run(session.pop_item()) == items[-1]
    assert run(session.pop_item()) == items[-2]
    assert run(SessionGraphSession("s", store).get_items()) == items[:-2]
    run(session.clear_session())
    assert run(session.get_items()) == []
    assert run(session.pop_item()) is None
    run(session.add_items(items[:1]))
    assert run(session.get_items()) == items[:1]


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ("not a list", "must be a list"),
        ([["role", "user"]], "item 0 must be a dict"),
        ([{"role": "user", "content": "ok"}, {"role": "user", "content": {1}}], "1.content is a"),
        ([{"role": "user", "content": ("a", "b")}], "item 0.content is a tuple"),
        ([{"type": "function_call_output", "call_id": "c", "output": math.nan}], "cannot hold"),
        ([{"role": "user", "content": "x", 1: "y"}], "key 1"),
        ([{"role": "tool", "content": "x"}], "role must be one of"),
        ([{"content": "x"}], "neither 'type' nor 'role'"),
        ([{"type": 3, "role": "user"}], "'type' must be a str"),
        ([{"type": "bad\u202ekind", "id": "x"}], "item 0:"),
    ],
)  # fmt: skip
def test_bad_items_are_refused_and_nothing_is_written(store: Any, items: Any, error: str) -> None:
    session = SessionGraphSession("s", store)
    run(session.add_items([{"role": "user", "content": "kept"}]))
    with pytest.raises(ValidationError, match=error):
        run(session.add_items(items))
    assert run(session.get_items()) == [{"role": "user", "content": "kept"}]


def test_bad_arguments_and_unknown_branches(store: Any) -> None:
    with pytest.raises(ValidationError, match="session id"):
        SessionGraphSession(" padded", store)
    with pytest.raises(ValidationError, match="store must be a AsyncSessionStore"):
        SessionGraphSession("s", object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="session_settings"):
        SessionGraphSession("s", store, session_settings={"limit": "many"})
    with pytest.raises(ValidationError, match=r"session_settings\.limit"):
        SessionGraphSession("s", store, session_settings={"limit": -1})
    session = SessionGraphSession("s", store)
    for limit in (-1, True, 2.0, "3"):
        with pytest.raises(ValidationError, match="limit"):
            run(session.get_items(limit))  # type: ignore[arg-type]
    run(session.add_items([{"role": "user", "content": "hi"}]))
    for call in (
        session.switch_to_branch("nope"),
        session.get_items(branch_id="nope"),
        session.delete_branch("nope"),
        session.get_conversation_turns("nope"),
    ):
        with pytest.raises(SessionNotFoundError, match="no branch 'nope' in session 's'"):
            run(call)
    with pytest.raises(ValidationError, match="'main' branch cannot be deleted"):
        run(session.delete_branch("main"))
    with pytest.raises(ValidationError, match="turn 2 does not exist on branch 'main'"):
        run(session.create_branch_from_turn(2))
    with pytest.raises(ValidationError, match="turn_number"):
        run(session.create_branch_from_turn(0))
    with pytest.raises(ValidationError, match="'main' is the session itself"):
        run(session.create_branch_from_turn(1, "main"))
    with pytest.raises(ValidationError, match="takes a RunResult"):
        run(session.store_run_usage(object()))  # type: ignore[arg-type]
    assert session.current_branch_id == "main"


def test_messages_of_other_writers_come_back_as_items(store: Any) -> None:
    run(store.create_session("plain"))
    run(
        store.append(
            "plain",
            [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "parts": [{"type": "text", "text": "Look: "},
                                           {"type": "image_url", "image_url": {"url": "u"}}]},
                {"role": "assistant", "content": "Checking.",
                 "tool_calls": [{"id": "c1", "name": "look", "arguments": {"q": 1}}]},
                {"role": "tool", "content": "a cat", "tool_call_id": "c1", "tool_name": "look"},
                {"role": "assistant", "content": "A cat."},
            ],
        )
    )  # fmt: skip
    items = run(SessionGraphSession("plain", store).get_items())
    assert items == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": [{"type": "input_text", "text": "Look: "},
                                     {"type": "input_image", "image_url": "u", "detail": "auto"}]},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "c1", "name": "look", "arguments": '{"q": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
        {"role": "assistant", "content": "A cat."},
    ]  # fmt: skip
    assert run(SessionGraphSession("plain", store).get_items(3)) == items[-3:]


@function_tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def usage(tokens_in: int, tokens_out: int, cached: int = 0) -> Usage:
    return Usage(
        requests=1,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        total_tokens=tokens_in + tokens_out,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
    )


def tool_turn(city: str, n: int) -> list[ModelStep]:
    """A turn in which the model calls the tool, then answers (two model calls)."""
    return [
        ModelStep(output=[function_call("weather", {"city": city}, call_id=f"call_{n}")],
                  usage=usage(10 * n, 1)),
        ModelStep(output=[assistant_message(f"{city}: sunny.", item_id=f"msg_{n}")],
                  usage=usage(10 * n, 2)),
    ]  # fmt: skip


def text_turn(text: str, n: int) -> list[ModelStep]:
    step = ModelStep(
        output=[assistant_message(text, item_id=f"msg_{n}")], usage=usage(10 * n, 3, n)
    )
    return [step]


def test_an_agent_runs_turns_and_a_branch_that_copies_nothing(store: Any, cypher: Any) -> None:
    model = ScriptedModel()
    agent = Agent(name="planner", instructions="Plan trips.", model=model, tools=[weather])
    session = SessionGraphSession("trip", store)

    async def turn(text: str, steps: list[ModelStep], recorder: Any = session) -> None:
        model.extend(steps)
        result = await Runner.run(agent, text, session=session, run_config=NO_TRACES)
        await recorder.store_run_usage(result)

    run(turn("Weather in Lisbon?", tool_turn("Lisbon", 1)))
    run(turn("And Porto?", tool_turn("Porto", 2)))
    run(turn("Thanks!", text_turn("Enjoy.", 3)))
    model.assert_complete()

    main_items = run(session.get_items())
    user = [i for i, item in enumerate(main_items) if item.get("role") == "user"]
    assert [main_items[i]["content"] for i in user] == [
        "Weather in Lisbon?",
        "And Porto?",
        "Thanks!",
    ]
    assert main_items[1] == {
        "arguments": '{"city":"Lisbon"}', "call_id": "call_1", "name": "weather",
        "type": "function_call", "id": "call_1",
    }  # fmt: skip
    assert main_items[2] == {
        "call_id": "call_1", "output": "sunny in Lisbon", "type": "function_call_output"
    }  # fmt: skip
    assert len(main_items) == 10
    turns = run(session.get_conversation_turns())
    assert [(t["turn"], t["content"]) for t in turns] == [
        (1, "Weather in Lisbon?"), (2, "And Porto?"), (3, "Thanks!")
    ]  # fmt: skip
    assert [t["turn"] for t in run(session.find_turns_by_content("porto"))] == [2]

    # branch from turn 2: the history before its user message, shared, not copied
    assert run(session.create_branch_from_turn(2, "faro")) == "faro"
    assert session.current_branch_id == "faro"
    assert session.current_session_id == "trip:faro"
    assert run(session.get_items()) == main_items[: user[1]]
    run(turn("What about Faro?", tool_turn("Faro", 4)))
    assert model.last_call is not None
    seen = [i.get("content") for i in model.last_call.input if isinstance(i, dict)]
    assert "What about Faro?" in seen and "And Porto?" not in seen  # the branch's history
    run(turn("Great.", text_turn("Bye.", 5)))

    branch_items = run(session.get_items())
    assert branch_items[: user[1]] == main_items[: user[1]]
    assert [i["content"] for i in branch_items if i.get("role") == "user"] == [
        "Weather in Lisbon?", "What about Faro?", "Great."
    ]  # fmt: skip
    assert run(session.get_items(branch_id="main")) == main_items

    # switching back: main continues where it was, the branch keeps its own
    run(session.switch_to_branch("main"))
    # usage recorded by another object on main: it finds the turn in the history
    run(turn("One more?", text_turn("Sure.", 6), SessionGraphSession("trip", store)))
    now = run(session.get_items())
    assert now[:10] == main_items and now[10] == {"content": "One more?", "role": "user"}
    assert run(session.get_items(branch_id="faro")) == branch_items

    branches = run(session.list_branches())
    assert [(b["branch_id"], b["session_id"], b["message_count"], b["user_turns"], b["is_current"])
            for b in branches] == [
        ("main", "trip", 12, 4, True),
        ("faro", "trip:faro", len(branch_items), 3, False),
    ]  # fmt: skip

    # in Neo4j: a fork at the message before turn 2, sharing the prefix nodes
    fork = cypher(
        "MATCH (b:SGSession {tenant: $t, id: 'trip:faro'})-[f:FORKED_FROM]->(p:SGSession) "
        "RETURN p.id AS parent, f.position AS position, f.at AS at"
    )
    stored_main = run(store.messages("trip"))
    assert fork == [{"parent": "trip", "position": user[1] - 1, "at": stored_main[user[1] - 1].id}]
    shared = cypher(
        "MATCH (:SGSession {tenant: $t, id: 'trip'})-[:HEAD]->()-[:PREVIOUS*0..]->(m) "
        "MATCH (:SGSession {tenant: $t, id: 'trip:faro'})-[:HEAD]->()-[:PREVIOUS*0..]->(m) "
        "RETURN count(m) AS n"
    )
    assert shared == [{"n": user[1]}]
    nodes = cypher("MATCH (m:SGMessage {tenant: $t}) RETURN count(m) AS n")
    assert nodes == [{"n": 12 + len(branch_items) - user[1]}]  # nothing copied
    assert cypher("MATCH (m:SGMessage {tenant: $t}) WHERE m.copied_from IS NOT NULL "
                  "RETURN count(m) AS n") == [{"n": 0}]  # fmt: skip

    # usage per turn: main's four turns; the branch's own two plus turn 1 it shares
    per_turn = run(session.get_turn_usage())
    assert isinstance(per_turn, list)
    assert [
        (u["user_turn_number"], u["requests"], u["input_tokens"], u["output_tokens"])
        for u in per_turn
    ] == [(1, 2, 20, 3), (2, 2, 40, 3), (3, 1, 30, 3), (4, 1, 60, 3)]
    on_branch = run(session.get_turn_usage(branch_id="faro"))
    assert isinstance(on_branch, list)
    assert [(u["user_turn_number"], u["input_tokens"]) for u in on_branch] == [
        (1, 20), (2, 80), (3, 50)
    ]  # fmt: skip
    assert run(session.get_turn_usage(2, branch_id="faro"))["total_tokens"] == 83
    assert run(session.get_turn_usage(9)) == {}
    assert run(session.get_turn_usage(1))["input_tokens_details"] is None  # zeros are not kept
    cached = run(session.get_turn_usage(3))["input_tokens_details"]
    assert cached is not None and cached["cached_tokens"] == 3
    assert run(session.get_session_usage()) == {
        "requests": 9, "input_tokens": 280, "output_tokens": 18, "total_tokens": 298,
        "total_turns": 6,
    }  # fmt: skip
    assert run(session.get_session_usage("faro")) == {
        "requests": 5, "input_tokens": 150, "output_tokens": 9, "total_tokens": 159,
        "total_turns": 3,
    }  # fmt: skip
    assert "openai_agents_usage" in run(store.get_session("trip:faro")).metadata


def test_branches_from_turn_one_names_deletion_and_clearing(store: Any, cypher: Any) -> None:
    session = SessionGraphSession("c", store)
    run(
        session.add_items([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    )
    run(session.add_items([{"role": "user", "content": "c"}]))

    name = run(session.create_branch_from_turn(1))
    assert name.startswith("branch_from_turn_1_") and session.current_branch_id == name
    assert run(session.get_items()) == []  # an empty fork
    assert cypher(
        "MATCH (:SGSession {tenant: $t, id: $id})-[f:FORKED_FROM]->(p) "
        "RETURN p.id AS p, f.position AS pos",
        id=f"c:{name}",
    ) == [{"p": "c", "pos": -1}]  # fmt: skip
    run(session.add_items([{"role": "user", "content": "other"}]))
    run(session.switch_to_branch("main"))
    run(session.create_branch_from_turn(2, "two"))
    with pytest.raises(SessionExistsError, match="branch 'two' exists"):
        run(session.create_branch_from_turn(1, "two"))
    with pytest.raises(ValidationError, match="current branch"):
        run(session.delete_branch("two"))
    assert [b["branch_id"] for b in run(session.list_branches())] == ["main", name, "two"]

    run(session.delete_branch("two", force=True))
    assert session.current_branch_id == "main"
    assert [b["branch_id"] for b in run(session.list_branches())] == ["main", name]
    with pytest.raises(SessionNotFoundError):
        run(session.switch_to_branch("two"))

    run(session.switch_to_branch(name))
    run(session.clear_session())  # as AdvancedSQLiteSession: every branch goes, main is empty
    assert session.current_branch_id == "main"
    assert run(session.get_items()) == []
    assert [b["branch_id"] for b in run(session.list_branches())] == ["main"]
    run(session.add_items([{"role": "user", "content": "again"}]))
    with pytest.raises(SessionExistsError):  # a used name stays taken
        run(session.create_branch_from_turn(1, name))


def test_importing_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "agents" or n.startswith("agents.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "session_graph.integrations.openai_agents")
    with pytest.raises(ImportError, match=r"pip install 'session-graph\[openai-agents\]'"):
        importlib.import_module("session_graph.integrations.openai_agents")
