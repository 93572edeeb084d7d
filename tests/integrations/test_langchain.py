"""The LangChain chat message history on the real Neo4j server, with real langchain-core.

Every message type reads back exactly (``==`` and ``message_to_dict``) through the sync and
the async store; a ``RunnableWithMessageHistory`` chain with langchain-core's fake chat model
stores what it should (checked through the store and with Cypher); forks branch a history
without copying, clear on a fork leaves the parent whole, messages other writers stored read
back as sensible LangChain messages, and bad input is refused with nothing stored.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    message_to_dict,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from neo4j import Driver

from session_graph import (
    AsyncSessionStore,
    ForkPointError,
    SessionNotFoundError,
    SessionStore,
    Settings,
    ToolCall,
    ValidationError,
)
from session_graph.integrations.langchain import (
    SessionGraphChatMessageHistory,
    history_factory,
    to_langchain,
)
from session_graph.runtime import ConnectionInfo
from tests.stores import event_loop_thread, fingerprint, graph_state, tenant_query

# langchain-core 1.x deprecates RunnableWithMessageHistory (in favour of LangGraph
# persistence) and warns when one is made; it is supported until 2.0.
pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.deprecation.LangChainDeprecationWarning"
)

HISTORY = """
MATCH (:SGSession {tenant: $t, id: $sid})-[:HEAD]->(:SGMessage)-[:PREVIOUS*0..]->(m:SGMessage)
RETURN m.role AS role, m.content AS content, m.name AS name, m.tool_names AS tool_names,
       m.tool_name AS tool_name, m.tool_call_id AS tool_call_id, m.input_tokens AS input_tokens,
       m.output_tokens AS output_tokens, m.model AS model, m.provider AS provider,
       m.native_format AS native_format, m.body AS body
ORDER BY m.pos
"""
MESSAGE_NODES = "MATCH (m:SGMessage {tenant: $t}) RETURN count(m) AS n"


def every_message() -> list[BaseMessage]:
    """One of each LangChain message type and chunk type, every field set somewhere."""
    return [
        SystemMessage("Be brief.", id="sys-1", name="rules", additional_kwargs={"k": [1, 2.5]}),
        HumanMessage(
            [
                "plain text, ",
                {"type": "text", "text": "then a block"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"no_type": True},
            ],
            id="human-1",
            name="ann",
            custom_field={"extra": ["fields", "kept"]},
        ),
        AIMessage(
            "Checking.",
            id="lc_run--0001",
            name="planner",
            tool_calls=[
                {"name": "weather", "args": {"city": "Lisbon", "days": [1, 2]}, "id": "call_1"}
            ],
            invalid_tool_calls=[
                invalid_tool_call(name="time", args="{not json", id="call_2", error="bad JSON")
            ],
            usage_metadata={
                "input_tokens": 31,
                "output_tokens": 9,
                "total_tokens": 40,
                "input_token_details": {"cache_read": 8},
                "output_token_details": {"reasoning": 2},
            },
            response_metadata={
                "model_name": "gpt-4o-2024-08-06",
                "model_provider": "openai",
                "finish_reason": "tool_calls",
                "logprobs": None,
            },
            additional_kwargs={"reasoning_content": "look it up", "refusal": None},
        ),
        ToolMessage(
            "18C",
            tool_call_id="call_1",
            name="weather",
            artifact={"raw": {"temp": 18.5, "unit": "C"}},
            status="error",
            id="tool-1",
        ),
        FunctionMessage(content='{"result": 3}', name="add"),
        ChatMessage(content="A critique.", role="critic"),
        ChatMessage(content="From the assistant.", role="assistant"),
        AIMessageChunk(
            content="partial ",
            tool_call_chunks=[{"name": "weather", "args": '{"city": "Li', "id": "c9", "index": 0}],
            chunk_position="last",
        ),
        HumanMessageChunk(content="human chunk"),
        SystemMessageChunk(content="system chunk"),
        ToolMessageChunk(content="tool chunk", tool_call_id="call_1"),
        FunctionMessageChunk(content="function chunk", name="add"),
        ChatMessageChunk(content="chat chunk", role="user"),
        AIMessage([]),
        HumanMessage(""),
    ]


def assert_same(got: list[BaseMessage], want: list[BaseMessage]) -> None:
    assert [type(m) for m in got] == [type(m) for m in want]
    assert got == want
    assert [message_to_dict(m) for m in got] == [message_to_dict(m) for m in want]


@pytest.fixture
def store(neo4j_store: SessionStore) -> SessionStore:
    return neo4j_store


@pytest.fixture
def astore(
    neo4j_info: ConnectionInfo, neo4j_driver: Driver, tenant: str
) -> Iterator[AsyncSessionStore]:
    """An AsyncSessionStore on the test loop's thread, in the same tenant as ``store``."""
    loop = event_loop_thread()
    settings = Settings(tenant=tenant, mirror_max_lag=0)
    async_store = AsyncSessionStore.connect_to(neo4j_info, settings)
    loop.run(async_store.connect())
    yield async_store
    loop.run(async_store.close())


def run(coro: Any) -> Any:
    return event_loop_thread().run(coro)


def test_every_message_type_round_trips_exactly(store: SessionStore) -> None:
    messages = every_message()
    SessionGraphChatMessageHistory("all", store=store).add_messages(messages)

    assert_same(SessionGraphChatMessageHistory("all", store=store).messages, messages)
    stored = store.messages("all")
    assert len({m.created_at for m in stored}) == 1  # one write (one append) for the batch
    assert {m.native_format for m in stored} == {"langchain"}
    assert [m.role for m in stored] == [
        "system", "user", "assistant", "tool", "tool", "user", "assistant", "assistant",
        "user", "system", "tool", "tool", "user", "assistant", "user",
    ]  # fmt: skip
    human, ai, tool = stored[1], stored[2], stored[3]
    assert human.content == "plain text, then a block"
    assert human.parts == (
        {"type": "text", "text": "plain text, "},
        {"type": "text", "text": "then a block"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "non_standard", "value": {"no_type": True}},
    )
    assert (human.name, ai.name) == ("ann", "planner")
    assert ai.tool_calls == (
        ToolCall(id="call_1", name="weather", arguments={"city": "Lisbon", "days": [1, 2]}),
    )
    assert (ai.input_tokens, ai.output_tokens) == (31, 9)
    assert (ai.model, ai.provider) == ("gpt-4o-2024-08-06", "openai")
    assert (tool.tool_call_id, tool.tool_name) == ("call_1", "weather")
    assert (stored[4].tool_name, stored[4].tool_call_id) == ("add", None)

    rows = tenant_query(store, HISTORY, sid="all")
    assert rows is not None and len(rows) == len(messages)
    assert rows[2]["tool_names"] == ["weather"]
    assert (rows[2]["input_tokens"], rows[2]["output_tokens"]) == (31, 9)
    assert (rows[3]["tool_call_id"], rows[3]["tool_name"]) == ("call_1", "weather")
    native = json.loads(rows[3]["body"])["native"]
    assert native["data"]["artifact"] == {"raw": {"temp": 18.5, "unit": "C"}}


def test_async_methods_run_on_the_async_store(
    store: SessionStore, astore: AsyncSessionStore
) -> None:
    history = SessionGraphChatMessageHistory("a", async_store=astore, title="async")
    messages = every_message()
    run(history.aadd_messages(messages[:3]))
    run(history.aadd_messages(messages[3:]))
    assert_same(run(history.aget_messages()), messages)
    assert_same(SessionGraphChatMessageHistory("a", store=store).messages, messages)
    assert store.get_session("a").title == "async"

    branch = run(history.afork(at="lc_run--0001", reason="retry"))
    assert_same(run(branch.aget_messages()), messages[:3])
    assert run(history.abranches()) == [branch.session_id]
    run(branch.aclear())
    assert run(branch.aget_messages()) == []
    assert_same(run(history.aget_messages()), messages)

    with pytest.raises(ValidationError, match="only an async_store"):
        _ = history.messages
    with pytest.raises(ValidationError, match="aadd_messages"):
        history.add_messages([HumanMessage("sync")])
    with pytest.raises(ValidationError, match="only an async_store"):
        history.clear()
    assert len(store.messages("a")) == len(messages)

    fresh = SessionGraphChatMessageHistory("fresh", async_store=astore)
    for bad in ([HumanMessage("x" * 2_000_000)], [RemoveMessage(id="x")], HumanMessage("x")):
        with pytest.raises(ValidationError):
            run(fresh.aadd_messages(bad))  # type: ignore[arg-type]
    with pytest.raises(SessionNotFoundError):
        store.get_session("fresh")  # refused before any I/O: not even the session was made


def test_a_sync_store_serves_the_async_methods_in_a_thread(store: SessionStore) -> None:
    history = SessionGraphChatMessageHistory("t", store=store)

    async def go() -> tuple[list[BaseMessage], list[BaseMessage], list[str]]:
        said = (m for m in [HumanMessage("hi"), AIMessage("hello", id="ai-1")])
        await history.aadd_messages(said)  # type: ignore[arg-type]  # any iterable, once
        branch = await history.afork(at=0)
        await branch.aadd_messages([AIMessage("other")])
        await history.aclear()
        return await history.aget_messages(), await branch.aget_messages(), [branch.session_id]

    mine, branch_messages, branch_ids = asyncio.run(go())
    assert mine == []
    assert [m.content for m in store.messages(branch_ids[0])] == ["hi", "other"]
    assert branch_messages == [HumanMessage("hi"), AIMessage("other")]
    assert history.branches() == branch_ids == store.children("t")


@pytest.mark.parametrize("family", ["sync", "async"])
def test_a_runnable_with_message_history_stores_every_turn(
    family: Literal["sync", "async"], store: SessionStore, request: pytest.FixtureRequest
) -> None:
    replies = [
        AIMessage(
            "Day 1: Alfama.",
            usage_metadata={"input_tokens": 20, "output_tokens": 180, "total_tokens": 200},
            response_metadata={"model_name": "fake-4o", "model_provider": "fake"},
        ),
        AIMessage(
            "",
            tool_calls=[{"name": "weather", "args": {"city": "Lisbon"}, "id": "call_7"}],
            usage_metadata={"input_tokens": 210, "output_tokens": 12, "total_tokens": 222},
            response_metadata={"model_name": "fake-4o", "model_provider": "fake"},
        ),
        AIMessage("Sunny, 24C.", usage_metadata=None),
    ]
    seen: list[list[BaseMessage]] = []

    def spy(prompt: PromptValue) -> PromptValue:
        seen.append(prompt.to_messages())
        return prompt

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You plan trips."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    model = FakeMessagesListChatModel(responses=replies)
    if family == "sync":
        factory = history_factory(store=store, title="Lisbon", user_id="u1", tags=["travel"])
    else:
        factory = history_factory(
            async_store=request.getfixturevalue("astore"), title="Lisbon", user_id="u1",
            tags=["travel"],
        )  # fmt: skip
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(spy) | model,
        factory,
        input_messages_key="question",
        history_messages_key="history",
    )
    config: Any = {"configurable": {"session_id": "trip"}}
    questions = ["Three days in Lisbon?", "Weather?", "And then?"]
    answers = []
    for question in questions:
        if family == "sync":
            answers.append(chain.invoke({"question": question}, config))
        else:
            answers.append(run(chain.ainvoke({"question": question}, config)))

    # the model saw the history of the earlier turns
    assert seen[2] == [
        SystemMessage("You plan trips."),
        HumanMessage(questions[0]),
        answers[0],
        HumanMessage(questions[1]),
        answers[1],
        HumanMessage(questions[2]),
    ]
    expected: list[BaseMessage] = []
    for question, answer in zip(questions, answers, strict=True):
        expected += [HumanMessage(question), answer]
    assert_same(SessionGraphChatMessageHistory("trip", store=store).messages, expected)
    assert answers[1].tool_calls[0]["id"] == "call_7" and answers[0].id is not None

    session = store.get_session("trip")
    assert (session.title, session.user_id, session.tags) == ("Lisbon", "u1", ("travel",))
    stored = store.messages("trip")
    assert [(m.role, m.content) for m in stored] == [
        ("user", questions[0]), ("assistant", "Day 1: Alfama."),
        ("user", questions[1]), ("assistant", ""),
        ("user", questions[2]), ("assistant", "Sunny, 24C."),
    ]  # fmt: skip
    call = ToolCall(id="call_7", name="weather", arguments={"city": "Lisbon"})
    assert stored[3].tool_calls == (call,)
    rows = tenant_query(store, HISTORY, sid="trip")
    assert rows is not None
    assert [
        (r["role"], r["content"], r["tool_names"], r["input_tokens"], r["output_tokens"],
         r["model"], r["provider"], r["native_format"])
        for r in rows
    ] == [
        ("user", questions[0], None, None, None, None, None, "langchain"),
        ("assistant", "Day 1: Alfama.", None, 20, 180, "fake-4o", "fake", "langchain"),
        ("user", questions[1], None, None, None, None, None, "langchain"),
        ("assistant", "", ["weather"], 210, 12, "fake-4o", "fake", "langchain"),
        ("user", questions[2], None, None, None, None, None, "langchain"),
        ("assistant", "Sunny, 24C.", None, None, None, None, None, "langchain"),
    ]  # fmt: skip


def test_fork_at_a_message_then_both_branches_go_on(store: SessionStore) -> None:
    model = FakeMessagesListChatModel(responses=[AIMessage(f"answer {i}") for i in range(6)])
    chain = RunnableWithMessageHistory(model, history_factory(store=store))
    main = SessionGraphChatMessageHistory("main", store=store)

    def ask(session_id: str, text: str) -> None:
        chain.invoke([HumanMessage(text)], {"configurable": {"session_id": session_id}})

    ask("main", "q1")
    ask("main", "q2")
    before = main.messages
    first_answer = before[1]
    assert first_answer.id is not None and first_answer.id.startswith("lc_run--")

    branch = main.fork(at=first_answer, reason="try again", title="alt")
    assert_same(branch.messages, before[:2])
    assert store.get_session(branch.session_id).fork.position == 1  # type: ignore[union-attr]
    assert tenant_query(store, MESSAGE_NODES) == [{"n": 4}]  # the fork copied nothing

    ask(branch.session_id, "q2 again")
    ask("main", "q3")
    main_says = ["q1", "answer 0", "q2", "answer 1", "q3", "answer 3"]
    assert [m.content for m in main.messages] == main_says
    assert [m.content for m in branch.messages] == ["q1", "answer 0", "q2 again", "answer 2"]
    assert tenant_query(store, MESSAGE_NODES) == [{"n": 8}]
    assert store.parent(branch.session_id) == "main"
    assert main.branches() == [branch.session_id]
    assert_same(main.open_branch(branch.session_id).messages, branch.messages)

    # the other ways to name the fork point: an index, a stored id, a LangChain id
    by_index = main.fork(at=-3)
    by_stored_id = main.fork(at=store.messages("main")[2].id)
    by_langchain_id = branch.fork(at=branch.messages[3].id)
    assert [len(h.messages) for h in (by_index, by_stored_id, by_langchain_id)] == [4, 3, 4]
    assert by_langchain_id.messages[-1].content == "answer 2"
    assert main.branches() == [branch.session_id, by_index.session_id, by_stored_id.session_id]

    with pytest.raises(ValidationError, match="no id"):
        main.fork(at=main.messages[0])  # the chain's input messages carry no id
    with pytest.raises(ForkPointError, match="no message with id"):
        main.fork(at="lc_run--nowhere")
    with pytest.raises(ForkPointError):
        main.fork(at=99)


def test_clear_on_a_fork_leaves_the_parent_whole(store: SessionStore) -> None:
    parent = SessionGraphChatMessageHistory("p", store=store)
    parent.add_messages([HumanMessage("hi"), AIMessage("hello", id="a-1")])
    branch = parent.fork(at="a-1")
    branch.add_messages([HumanMessage("branch q"), AIMessage("branch a")])
    assert tenant_query(store, MESSAGE_NODES) == [{"n": 4}]

    branch.clear()
    assert branch.messages == []
    assert parent.messages == [HumanMessage("hi"), AIMessage("hello", id="a-1")]
    assert tenant_query(store, MESSAGE_NODES) == [{"n": 2}]  # only the branch's own went
    assert store.parent(branch.session_id) == "p"  # the branch and its lineage stay
    branch.add_messages([HumanMessage("fresh start")])
    assert branch.messages == [HumanMessage("fresh start")]

    kept = parent.fork(at=1)
    parent.clear()
    assert parent.messages == []
    assert kept.messages == [HumanMessage("hi"), AIMessage("hello", id="a-1")]
    assert tenant_query(store, MESSAGE_NODES) == [{"n": 3}]


def test_messages_other_writers_stored_read_back(store: SessionStore) -> None:
    store.create_session("plain")
    stored = store.append(
        "plain",
        [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "name": "ann",
                "parts": [
                    {"type": "text", "text": "Look: "},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    ToolCall(id="c1", name="weather", arguments={"city": "Lisbon"}),
                    ToolCall(id="c2", name="clock", arguments='{"tz": "WET"}'),
                    ToolCall(id="c3", name="broken", arguments="{oops"),
                    ToolCall(id="c4", name="noargs"),
                ],
                "model": "gpt-4o",
                "provider": "openai",
                "input_tokens": 12,
                "output_tokens": 7,
            },
            {"role": "tool", "content": "18C", "tool_call_id": "c1", "tool_name": "weather"},
            {"role": "tool", "content": "12:00", "tool_name": "clock"},
            {"role": "tool", "content": "?"},
            # a native form under our name that LangChain cannot read, and another writer's
            {
                "role": "assistant",
                "content": "Sunny.",
                "native": {"x": 1},
                "native_format": "langchain",
            },
            {"role": "user", "content": "Thanks", "native": {"x": 1}, "native_format": "openai"},
        ],
    )
    ids = [m.id for m in stored]
    want: list[BaseMessage] = [
        SystemMessage("Be brief.", id=ids[0]),
        HumanMessage(
            [
                {"type": "text", "text": "Look: "},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
            id=ids[1],
            name="ann",
        ),
        AIMessage(
            "",
            id=ids[2],
            tool_calls=[
                tool_call(name="weather", args={"city": "Lisbon"}, id="c1"),
                tool_call(name="clock", args={"tz": "WET"}, id="c2"),
                tool_call(name="noargs", args={}, id="c4"),
            ],
            invalid_tool_calls=[
                invalid_tool_call(
                    name="broken", args="{oops", id="c3", error="arguments are not a JSON object"
                )
            ],
            usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
            response_metadata={"model_name": "gpt-4o", "model_provider": "openai"},
        ),
        ToolMessage("18C", tool_call_id="c1", name="weather", id=ids[3]),
        FunctionMessage(content="12:00", name="clock", id=ids[4]),
        ChatMessage(content="?", role="tool", id=ids[5]),
        AIMessage("Sunny.", id=ids[6]),
        HumanMessage("Thanks", id=ids[7]),
    ]
    history = SessionGraphChatMessageHistory("plain", store=store)
    assert_same(history.messages, want)
    assert_same([to_langchain(m) for m in stored], want)

    # LangChain writes after them; copying them into another history keeps their ids
    history.add_messages([HumanMessage("more")])
    copy = SessionGraphChatMessageHistory("copy", store=store)
    copy.add_messages(history.messages)
    assert_same(copy.messages, [*want, HumanMessage("more")])
    assert_same(copy.fork(at=want[3]).messages, want[:4])


def test_bad_input_is_refused_and_nothing_is_stored(store: SessionStore) -> None:
    history = SessionGraphChatMessageHistory("bad", store=store)
    assert history.messages == []
    assert graph_state(store) == []  # reading a session not made yet wrote nothing
    history.add_messages([AIMessage("twice", id="dup"), AIMessage("twice", id="dup")])
    before = fingerprint(store)

    class Custom(BaseMessage):
        type: str = "custom"

    refused: list[tuple[Any, str]] = [
        ([{"role": "user", "content": "hi"}], "message 0 is a dict"),
        ("hello", "not str"),
        (HumanMessage("one"), "not HumanMessage"),
        ([HumanMessage("ok"), RemoveMessage(id="dup")], "RemoveMessage"),
        ([AIMessage("x", additional_kwargs={"parsed": object()})], r"additional_kwargs\.parsed"),
        ([ToolMessage("x", tool_call_id="c", artifact=("a", "b"))], "artifact is a tuple"),
        ([AIMessage("x", response_metadata={"p": float("nan")})], "nan"),
        ([HumanMessage("x", additional_kwargs={1: "a"})], "key 1"),
        ([Custom(content="x")], "'custom'"),
        ([HumanMessage("x" * 2_000_000)], "limit"),
    ]
    fresh = SessionGraphChatMessageHistory("fresh", store=store)  # not made yet: stays so
    for messages, match in refused:
        for target in (history, fresh):
            with pytest.raises(ValidationError, match=match):
                target.add_messages(messages)
            with pytest.raises(ValidationError, match=match):
                asyncio.run(target.aadd_messages(messages))

    with pytest.raises(ValidationError, match="store="):
        SessionGraphChatMessageHistory("x")
    with pytest.raises(ValidationError, match="SessionStore"):
        SessionGraphChatMessageHistory("x", store="bolt://localhost")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="U\\+202E"):
        SessionGraphChatMessageHistory("a\u202eb", store=store)
    with pytest.raises(ValidationError, match="tags"):
        history_factory(store=store, tags="travel")
    with pytest.raises(ValidationError, match="create"):
        SessionGraphChatMessageHistory("x", store=store, create="yes")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="read-only"):
        history.messages = []
    for at in (True, 1.5, ["dup"]):
        with pytest.raises(ValidationError, match="fork point"):
            history.fork(at=at)  # type: ignore[arg-type]
    with pytest.raises(ForkPointError, match="2 messages have the id 'dup'"):
        history.fork(at="dup")

    missing = SessionGraphChatMessageHistory("missing", store=store, create=False)
    for call in (lambda: missing.messages, missing.clear, missing.branches):
        with pytest.raises(SessionNotFoundError):
            call()
    with pytest.raises(SessionNotFoundError):
        missing.add_messages([HumanMessage("x")])
    assert fingerprint(store) == before


def test_importing_without_langchain_core_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "langchain_core" or name.startswith("langchain_core."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "session_graph.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'session-graph\[langchain\]'"):
        importlib.import_module("session_graph.integrations.langchain")
