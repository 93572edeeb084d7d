"""LangChain chat message history on session_graph, with forks as branches.

``SessionGraphChatMessageHistory`` is a LangChain ``BaseChatMessageHistory`` (usable with
``RunnableWithMessageHistory``) for one session of a ``SessionStore`` and/or an
``AsyncSessionStore``. Every LangChain message type (and chunk type) is kept exactly: a
message reads back ``==`` to the one added, with its tool calls, invalid tool calls, tool
call id, artifact, status, ``additional_kwargs``, ``response_metadata``, ``usage_metadata``,
name, id and any extra fields. The store's first-class fields are filled too (role, content
or parts, tool calls, tool name and call id, name, tokens from ``usage_metadata``, model and
provider from ``response_metadata``), so Cypher dashboards and other integrations read the
messages; LangChain's own form (``message_to_dict``) is kept as ``native`` with
``native_format="langchain"``. Messages written by anything else (``store.append``, other
integrations) are built from the first-class fields.

Ids: the store gives every message an id of its own (a UUID); a LangChain message keeps its
own ``id`` (``None`` stays ``None``). Messages written by others read back with the stored
id as their LangChain id.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic

from session_graph.core import (
    check_bool,
    check_instance,
    check_mapping,
    check_str,
    prepare_messages,
    validated,
)
from session_graph.errors import ForkPointError, SessionNotFoundError, ValidationError
from session_graph.ids import validate_name
from session_graph.integrations._exact import check_exact_json
from session_graph.models import (
    MAX_INT,
    MAX_NAME,
    Message,
    NewMessage,
    NewSession,
    Role,
    ToolCall,
)
from session_graph.store import AsyncSessionStore, SessionStore

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
        message_to_dict,
        messages_from_dict,
    )
    from langchain_core.messages.tool import invalid_tool_call, tool_call
    from langchain_core.runnables.config import run_in_executor
except ImportError as exc:
    raise ImportError(
        "session_graph.integrations.langchain needs langchain-core: "
        "pip install 'session-graph[langchain]'"
    ) from exc

__all__ = [
    "NATIVE_FORMAT",
    "SessionGraphChatMessageHistory",
    "history_factory",
    "to_langchain",
    "to_session_graph",
]

NATIVE_FORMAT = "langchain"
"""``native_format`` of the messages this module writes."""

_ROLE_OF_TYPE: dict[str, Role] = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "tool",
    "FunctionMessageChunk": "tool",
}
_CHAT_TYPES = ("chat", "ChatMessageChunk")
# ChatMessage roles the store's roles cover; any other role is a participant speaking,
# stored as "user" (its own role stays in the native form).
_ROLE_OF_CHAT_ROLE: dict[str, Role] = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}


# -- LangChain message -> NewMessage ---------------------------------------------------------


def to_session_graph(message: BaseMessage) -> NewMessage:
    """The ``NewMessage`` that stores ``message`` exactly (first-class fields + native form).

    Raises:
        ValidationError: not a LangChain message, a ``RemoveMessage`` (an instruction, not a
            message), a message type LangChain cannot read back, or a value JSON cannot hold
            exactly (an object in ``additional_kwargs`` or ``artifact``, a tuple, NaN, a
            non-string key): the error names where it is.
    """
    if not isinstance(message, BaseMessage):
        raise ValidationError(
            f"a LangChain message (BaseMessage) was expected, not {type(message).__name__}"
        )
    kind = message.type
    if kind == "remove":
        raise ValidationError(
            "RemoveMessage is an instruction to remove a message, not a message to store; "
            "this history changes by add_messages, clear and fork"
        )
    if kind in _CHAT_TYPES:
        role = _ROLE_OF_CHAT_ROLE.get(str(getattr(message, "role", "")).lower(), "user")
    elif kind in _ROLE_OF_TYPE:
        role = _ROLE_OF_TYPE[kind]
    else:
        raise ValidationError(
            f"LangChain message type {kind!r} ({type(message).__name__}) cannot be read back "
            "by LangChain (messages_from_dict); use one of its message classes"
        )
    native = message_to_dict(message)
    check_exact_json(native["data"], type(message).__name__)
    fields: dict[str, Any] = {
        "role": role,
        "native": native,
        "native_format": NATIVE_FORMAT,
        "name": _fits(message.name),
    }
    if isinstance(message.content, str):
        fields["content"] = message.content
    else:
        fields["parts"] = [_part(item) for item in message.content]
    if isinstance(message, AIMessage):
        fields["tool_calls"] = _tool_calls(message)
        usage: Mapping[str, Any] = message.usage_metadata or {}
        fields["input_tokens"] = _count(usage.get("input_tokens"))
        fields["output_tokens"] = _count(usage.get("output_tokens"))
        meta = message.response_metadata
        fields["provider"] = _fits(meta.get("model_provider"))
        fields["model"] = _fits(meta.get("model_name")) or _fits(meta.get("model"))
    elif isinstance(message, ToolMessage):
        fields["tool_call_id"] = _fits(message.tool_call_id)
        fields["tool_name"] = _fits(message.name)
    elif isinstance(message, FunctionMessage):
        fields["tool_name"] = _fits(message.name)
    return validated(NewMessage, fields)


def _part(item: Any) -> dict[str, Any]:
    """One item of list content as a part: strings are text, untyped dicts are wrapped as
    LangChain's ``content_blocks`` does (``non_standard``)."""
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"]:
        return item
    return {"type": "non_standard", "value": item}


def _tool_calls(message: AIMessage) -> list[ToolCall]:
    calls = []
    for call in message.tool_calls:
        try:
            calls.append(ToolCall(id=call.get("id"), name=call["name"], arguments=call["args"]))
        except pydantic.ValidationError:
            continue  # e.g. a streamed chunk's nameless call: it stays in the native form
    return calls


def _fits(value: Any) -> str | None:
    """``value`` for a first-class text field, or None when it cannot be one (the native
    form keeps it either way)."""
    if isinstance(value, str) and value and len(value) <= MAX_NAME:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    return None


# -- stored Message -> LangChain message -----------------------------------------------------


def to_langchain(message: Message) -> BaseMessage:
    """The LangChain message a stored message stands for.

    Written by this module: exactly the message added. Written by anything else: built from
    the first-class fields (system/user/assistant/tool roles; parts as list content; tool
    calls, tokens, model and provider on assistant messages; a tool result with a call id is
    a ``ToolMessage``, one with only a tool name a ``FunctionMessage``).
    """
    if message.native_format == NATIVE_FORMAT and message.native is not None:
        try:
            return messages_from_dict([message.native])[0]
        except (KeyError, TypeError, ValueError):
            pass  # not a form LangChain wrote after all: read the first-class fields
    return _from_fields(message)


def _from_fields(message: Message) -> BaseMessage:
    content: str | list[str | dict[Any, Any]] = (
        [dict(p) for p in message.parts] if message.parts else message.content
    )
    common: dict[str, Any] = {"content": content, "id": message.id}
    if message.name is not None:
        common["name"] = message.name
    if message.role == "system":
        return SystemMessage(**common)
    if message.role == "user":
        return HumanMessage(**common)
    if message.role == "assistant":
        return _assistant(message, common)
    name = message.tool_name or message.name
    if message.tool_call_id is not None:
        return ToolMessage(**{**common, "name": name}, tool_call_id=message.tool_call_id)
    if name is not None:
        return FunctionMessage(**{**common, "name": name})
    return ChatMessage(**common, role="tool")


def _assistant(message: Message, common: dict[str, Any]) -> AIMessage:
    calls, invalid = [], []
    for call in message.tool_calls:
        args = call.arguments
        if isinstance(args, str):  # JSON text (OpenAI's form)
            with contextlib.suppress(ValueError):
                args = json.loads(args)
        if args is None:
            args = {}
        if isinstance(args, dict):
            calls.append(tool_call(name=call.name, args=args, id=call.id))
        else:
            text = call.arguments if isinstance(call.arguments, str) else json.dumps(args)
            invalid.append(
                invalid_tool_call(
                    name=call.name, args=text, id=call.id, error="arguments are not a JSON object"
                )
            )
    extra: dict[str, Any] = {"tool_calls": calls, "invalid_tool_calls": invalid}
    if message.input_tokens is not None or message.output_tokens is not None:
        tokens_in, tokens_out = message.input_tokens or 0, message.output_tokens or 0
        extra["usage_metadata"] = {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
    meta = {
        key: value
        for key, value in (("model_name", message.model), ("model_provider", message.provider))
        if value is not None
    }
    if meta:
        extra["response_metadata"] = meta
    return AIMessage(**common, **extra)


# -- the history -----------------------------------------------------------------------------


class SessionGraphChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat message history for one session_graph session.

    Args:
        session_id: the session. With ``create`` it is made on the first write (with the
            session fields below) when it does not exist; reading a missing session then
            gives ``[]`` and writes nothing.
        store: a ``SessionStore`` for the sync methods (``messages``, ``add_messages``,
            ``clear``, ``fork``, ``branches``); the async methods run them in a thread when
            no ``async_store`` is given.
        async_store: an ``AsyncSessionStore`` for the native async methods (``aget_messages``,
            ``aadd_messages``, ``aclear``, ``afork``, ``abranches``). Given alone, the sync
            methods raise ``ValidationError``: an async store belongs to its event loop.
        create: create a missing session on the first write; when false a missing session
            raises ``SessionNotFoundError``.
        title, user_id, tags, metadata: fields of the session when this history creates it.

    Nothing touches the database here. ``add_messages`` writes a whole batch in one
    transaction (the store's ``append``). ``clear`` empties this session's history only:
    a parent's messages, and the messages forks of this session share, stay for them.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: SessionStore | None = None,
        async_store: AsyncSessionStore | None = None,
        create: bool = True,
        title: str | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_stores(store, async_store)
        check_bool(create, "create")
        self._session_fields = _session_fields(title, user_id, tags, metadata)
        self.session_id = validate_name(
            check_str(session_id, "session id"), what="session id", lookup=not create
        )
        self.store = store
        self.async_store = async_store
        self.create = create

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r})"

    # -- BaseChatMessageHistory ------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:
        """The session's history as LangChain messages, oldest first (one read)."""
        store = self._sync("messages")
        try:
            stored = store.messages(self.session_id)
        except SessionNotFoundError:
            if self.create:
                return []
            raise
        return [to_langchain(m) for m in stored]

    @messages.setter
    def messages(self, value: list[BaseMessage]) -> None:
        raise AttributeError("messages is read-only: use add_messages, clear or fork")

    async def aget_messages(self) -> list[BaseMessage]:
        """``messages``, on the async store when there is one."""
        if self.async_store is None:
            return await super().aget_messages()
        try:
            stored = await self.async_store.messages(self.session_id)
        except SessionNotFoundError:
            if self.create:
                return []
            raise
        return [to_langchain(m) for m in stored]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in order, in one transaction (all or none)."""
        items = _new_messages(messages)
        if items:
            self._append(self._sync("add_messages"), items)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """``add_messages``, on the async store when there is one."""
        items = _new_messages(messages)
        if not items:
            return
        if self.async_store is None:
            await run_in_executor(None, self._append, self._sync("aadd_messages"), items)
            return
        prepare_messages(items, self.async_store.settings)  # the store's limits, before any I/O
        try:
            await self.async_store.append(self.session_id, items)
        except SessionNotFoundError:
            if not self.create:
                raise
            await self.async_store.create_session(
                self.session_id, get_or_create=True, **self._session_fields
            )
            await self.async_store.append(self.session_id, items)

    def _append(self, store: SessionStore, items: list[NewMessage]) -> None:
        # One round trip while the session exists; creating it is the first write's detour.
        prepare_messages(items, store.settings)  # the store's limits, before any I/O
        try:
            store.append(self.session_id, items)
        except SessionNotFoundError:
            if not self.create:
                raise
            store.create_session(self.session_id, get_or_create=True, **self._session_fields)
            store.append(self.session_id, items)

    def clear(self) -> None:
        """Empty this session's history (the session and its lineage stay).

        Messages another session's history holds stay for it: clearing a fork leaves its
        parent whole, and clearing a parent leaves its forks their shared messages. Only
        messages no other history holds are deleted.
        """
        store = self._sync("clear")
        try:
            store.clear_history(self.session_id)
        except SessionNotFoundError:
            if not self.create:
                raise

    async def aclear(self) -> None:
        """``clear``, on the async store when there is one."""
        if self.async_store is None:
            await super().aclear()
            return
        try:
            await self.async_store.clear_history(self.session_id)
        except SessionNotFoundError:
            if not self.create:
                raise

    # -- branches --------------------------------------------------------------------------

    def fork(
        self,
        at: int | str | BaseMessage | None = None,
        *,
        id: str | None = None,
        reason: str | None = None,
        title: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        fork_metadata: Mapping[str, Any] | None = None,
    ) -> SessionGraphChatMessageHistory:
        """Branch this history at a message; returns the history of the new branch.

        The branch holds this history up to and including the message, and copies nothing
        (a session_graph fork). Both then go on independently.

        Args:
            at: an index into ``messages`` (negative counts from the end), a message id
                (LangChain's, as ``messages`` shows it, or the stored one), a message of
                ``messages`` (by its id), or None for the newest message.
            id, reason, title, tags, metadata, fork_metadata: as ``SessionStore.fork``.

        Raises:
            ForkPointError: no message of this history has that index or id, or several
                have that id. ValidationError: a message without an id, or a bad argument.
        """
        store = self._sync("fork")
        point = _fork_point(at)
        if isinstance(point, str):
            point = _stored_id(store.messages(self.session_id), point, self.session_id)
        fork = store.fork(
            self.session_id,
            point,
            id=id,
            reason=reason,
            title=title,
            tags=tags,
            metadata=metadata,
            fork_metadata=fork_metadata,
        )
        return self.open_branch(fork.id)

    async def afork(
        self,
        at: int | str | BaseMessage | None = None,
        *,
        id: str | None = None,
        reason: str | None = None,
        title: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        fork_metadata: Mapping[str, Any] | None = None,
    ) -> SessionGraphChatMessageHistory:
        """``fork``, on the async store when there is one."""
        fields: dict[str, Any] = {
            "id": id,
            "reason": reason,
            "title": title,
            "tags": tags,
            "metadata": metadata,
            "fork_metadata": fork_metadata,
        }
        if self.async_store is None:
            return await run_in_executor(None, lambda: self.fork(at, **fields))
        point = _fork_point(at)
        if isinstance(point, str):
            stored = await self.async_store.messages(self.session_id)
            point = _stored_id(stored, point, self.session_id)
        fork = await self.async_store.fork(self.session_id, point, **fields)
        return self.open_branch(fork.id)

    def branches(self) -> list[str]:
        """Ids of the sessions forked from this one (direct forks, oldest first)."""
        store = self._sync("branches")
        try:
            return store.children(self.session_id)
        except SessionNotFoundError:
            if self.create:
                return []
            raise

    async def abranches(self) -> list[str]:
        """``branches``, on the async store when there is one."""
        if self.async_store is None:
            return await run_in_executor(None, self.branches)
        try:
            return await self.async_store.children(self.session_id)
        except SessionNotFoundError:
            if self.create:
                return []
            raise

    def open_branch(self, session_id: str) -> SessionGraphChatMessageHistory:
        """The history of another session of the same stores (a branch from ``fork`` or
        ``branches``); it must exist (``create=False``). Touches nothing."""
        return type(self)(session_id, store=self.store, async_store=self.async_store, create=False)

    def _sync(self, method: str) -> SessionStore:
        if self.store is None:
            raise ValidationError(
                f"{method} needs a SessionStore, and this history has only an async_store: "
                "use the async methods (aget_messages, aadd_messages, aclear, afork; "
                "ainvoke a RunnableWithMessageHistory), or give store= as well"
            )
        return self.store


def history_factory(
    *,
    store: SessionStore | None = None,
    async_store: AsyncSessionStore | None = None,
    create: bool = True,
    title: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Callable[[str], SessionGraphChatMessageHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory``: session id -> history.

    Arguments are checked now, once; each call then makes a history (no I/O).
    """
    _check_stores(store, async_store)
    check_bool(create, "create")
    fields = _session_fields(title, user_id, tags, metadata)

    def get_session_history(session_id: str) -> SessionGraphChatMessageHistory:
        return SessionGraphChatMessageHistory(
            session_id, store=store, async_store=async_store, create=create, **fields
        )

    return get_session_history


def _check_stores(store: Any, async_store: Any) -> None:
    check_instance(store, SessionStore, "store", optional=True)
    check_instance(async_store, AsyncSessionStore, "async_store", optional=True)
    if store is None and async_store is None:
        raise ValidationError("a history needs store= (SessionStore) or async_store= (or both)")


def _session_fields(title: Any, user_id: Any, tags: Any, metadata: Any) -> dict[str, Any]:
    """The session fields, checked now (as ``create_session`` would) and kept as given."""
    fields = {
        "title": title,
        "user_id": user_id,
        "tags": tags,
        "metadata": check_mapping(metadata, "metadata", optional=True),
    }
    validated(NewSession, fields)
    return fields


def _new_messages(messages: Any) -> list[NewMessage]:
    """``messages`` as stored messages, every one checked before anything is written."""
    if isinstance(messages, (str, bytes, bytearray, memoryview, Mapping, BaseMessage)) or (
        not isinstance(messages, Iterable)
    ):
        raise ValidationError(
            f"add_messages takes a list of LangChain messages, not {type(messages).__name__}"
        )
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise ValidationError(
                f"message {i} is a {type(message).__name__}, not a LangChain message "
                "(BaseMessage); convert it first, e.g. with convert_to_messages"
            )
        out.append(to_session_graph(message))
    return out


def _fork_point(at: Any) -> int | str | None:
    """``at`` as the store takes it (an index or None) or an id still to find."""
    if isinstance(at, BaseMessage):
        if at.id is None:
            raise ValidationError("this message has no id: fork at its index in messages instead")
        return str(at.id)
    if at is None or isinstance(at, str) or (isinstance(at, int) and not isinstance(at, bool)):
        return at
    raise ValidationError(
        f"fork point must be an index, a message id or a message, not {type(at).__name__}"
    )


def _stored_id(stored: list[Message], wanted: str, session_id: str) -> str:
    """The stored id of the one message of ``stored`` whose stored or LangChain id is
    ``wanted``."""
    found = {m.id: m.position for m in stored if m.id == wanted or to_langchain(m).id == wanted}
    if len(found) == 1:
        return next(iter(found))
    if not found:
        raise ForkPointError(f"no message with id {wanted!r} in the history of {session_id!r}")
    raise ForkPointError(
        f"{len(found)} messages have the id {wanted!r} in the history of {session_id!r} "
        f"(positions {sorted(found.values())}); fork at an index"
    )
