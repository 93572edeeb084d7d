"""The OpenAI Agents SDK's session memory on session_graph, with branches that are forks.

``SessionGraphSession`` implements the SDK's ``Session`` protocol (``get_items``,
``add_items``, ``pop_item``, ``clear_session``), so ``Runner.run(agent, ..., session=...)``
keeps its history in Neo4j, and the branching API of the SDK's ``AdvancedSQLiteSession``
(turns, ``create_branch_from_turn``, ``switch_to_branch``, ``list_branches``,
``delete_branch``, usage per turn), where each branch is a session_graph fork: it shares the
history before its branch point and copies nothing.

Every Responses item is stored verbatim as the message's ``native`` form (format
``openai.responses``) and comes back exactly as given; the first-class fields (role,
content, parts, tool calls, kind) are filled too, for dashboards and other integrations.
Messages other writers appended come back as easy input messages or function call items.

Branch ``main`` is the session ``session_id`` itself; branch ``NAME`` is the session
``f"{session_id}:{NAME}"``, a fork in its tree. Usage per turn lives in the metadata of the
branch session that ran the turn, keyed by the id of the turn's user message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

try:
    from agents.items import TResponseInputItem
    from agents.memory.session import SessionABC
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
    from agents.result import RunResultBase
    from agents.usage import Usage
except ImportError as exc:
    raise ImportError(
        "session_graph.integrations.openai_agents needs openai-agents: "
        "pip install 'session-graph[openai-agents]'"
    ) from exc

from session_graph import AsyncSessionStore
from session_graph.core import (
    check_bool,
    check_instance,
    check_int,
    check_optional_int,
    check_str,
)
from session_graph.errors import (
    MessageNotFoundError,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.ids import new_id, validate_name
from session_graph.integrations._openai_items import (
    NATIVE_FORMAT,
    content_text,
    item_to_message,
    items_to_messages,
    message_items,
)
from session_graph.models import Message, Session

__all__ = [
    "MAIN",
    "NATIVE_FORMAT",
    "USAGE_KEY",
    "SessionGraphSession",
    "item_to_message",
    "message_items",
]

MAIN = "main"
"""The branch that is the session itself."""

USAGE_KEY = "openai_agents_usage"
"""Session metadata key holding usage per turn: ``{user message id: usage}``."""

_PREVIEW = 100


def _is_turn(message: Message) -> bool:
    """A turn starts at each user message (not at tool outputs or approvals)."""
    return message.role == "user" and message.kind == "message"


def _turn_content(message: Message) -> Any:
    native = message.native if message.native_format == NATIVE_FORMAT else None
    return native.get("content", message.content) if native is not None else message.content


_DETAILS = ("input_tokens_details", "output_tokens_details")


def _usage_record(usage: Usage) -> dict[str, Any]:
    """A run's usage as kept in metadata: token details only when one is non-zero, so a
    turn costs about 100 bytes of the session's metadata."""
    record: dict[str, Any] = {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    for key in _DETAILS:
        dump = getattr(getattr(usage, key, None), "model_dump", None)
        dumped = dump(mode="json") if callable(dump) else None
        if isinstance(dumped, dict) and any(dumped.values()):
            record[key] = dumped
    return record


def _usage_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record in the shape ``AdvancedSQLiteSession.get_turn_usage`` answers."""
    return {**record, **{key: record.get(key) for key in _DETAILS}}


# -- the session --------------------------------------------------------------------------


class SessionGraphSession(SessionABC):
    """The SDK's ``Session`` on an ``AsyncSessionStore``, with branches as forks.

    A drop-in for ``AdvancedSQLiteSession``: the same method names and signatures for
    history, turns, branches and usage. Nothing touches the database in the constructor; the
    session is created on its first ``add_items``.

    Args:
        session_id: the session (branch ``main``); created when first written to.
        store: an open ``AsyncSessionStore`` (the caller's: this session never closes it).
        session_settings: the SDK's settings; ``limit`` is the default of ``get_items``.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        store: AsyncSessionStore,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
    ) -> None:
        self.session_id = validate_name(session_id, what="session id")
        self.store: AsyncSessionStore = check_instance(store, AsyncSessionStore, "store")
        try:
            self.session_settings = (
                SessionSettings()
                if session_settings is None
                else coerce_session_settings(cast(Any, session_settings))
            )
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"session_settings: {exc}") from None
        check_optional_int(self.session_settings.limit, "session_settings.limit", minimum=0)
        self._branch = MAIN
        self._branch_session = self.session_id
        # The newest user message this object appended to the current branch: the turn
        # `store_run_usage` records (read from the history when unknown).
        self._turn_id: str | None = None

    def _goto(self, branch_id: str, session_id: str) -> None:
        self._branch, self._branch_session, self._turn_id = branch_id, session_id, None

    @property
    def current_branch_id(self) -> str:
        """The branch reads and writes go to (``main`` until a switch)."""
        return self._branch

    @property
    def current_session_id(self) -> str:
        """The session_graph session of the current branch."""
        return self._branch_session

    def branch_session_id(self, branch_id: str) -> str:
        """The session_graph session id branch ``branch_id`` maps to (it may not exist)."""
        name = check_str(branch_id, "branch_id")
        return self.session_id if name == MAIN else f"{self.session_id}:{name}"

    # -- the Session protocol -----------------------------------------------------------

    async def get_items(
        self, limit: int | None = None, branch_id: str | None = None
    ) -> list[TResponseInputItem]:
        """The newest ``limit`` items in order (all when None: ``session_settings.limit``),
        of the current branch or ``branch_id``. Reads only the window asked for.

        Raises:
            ValidationError: ``limit`` is not a non-negative int.
            SessionNotFoundError: no branch ``branch_id``.
        """
        check_optional_int(limit, "limit", minimum=0)
        wanted = resolve_session_limit(limit, self.session_settings)
        check_optional_int(wanted, "session_settings.limit", minimum=0)
        sid = self._branch_session if branch_id is None else await self._resolve(branch_id)
        if wanted == 0:
            return []
        messages = await self._messages(sid, None if wanted is None else -wanted)
        items = [item for m in messages for item in message_items(m)]
        return cast(list[TResponseInputItem], items if wanted is None else items[-wanted:])

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append items to the current branch in one write (the session is created on the
        first one). Nothing is written when an item is refused.

        Raises:
            ValidationError: an item is not a dict of JSON values or not a Responses item.
        """
        if not isinstance(items, list | tuple):
            raise ValidationError(f"items must be a list of items, not {type(items).__name__}")
        if not items:
            return
        messages = items_to_messages(items)
        sid = self._branch_session
        try:
            stored = await self.store.append(sid, messages)
        except SessionNotFoundError:
            if sid != self.session_id:
                raise
            await self.store.create_session(sid, get_or_create=True)
            stored = await self.store.append(sid, messages)
        turns = [m.id for m in stored if _is_turn(m)]
        if turns and sid == self._branch_session:
            self._turn_id = turns[-1]

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item of the current branch and return it (None when empty).

        Messages a fork shares stay for the fork. A message of another writer that stands
        for several items (text and tool calls) is removed whole; the last of them is returned.
        """
        self._turn_id = None
        try:
            message = await self.store.pop_last(self._branch_session)
        except MessageNotFoundError:
            return None
        except SessionNotFoundError:
            if self._branch_session != self.session_id:
                raise
            return None
        return cast(TResponseInputItem, message_items(message)[-1])

    async def clear_session(self) -> None:
        """Clear the session as ``AdvancedSQLiteSession`` does: every branch goes (branch
        sessions are deleted, so their names stay taken), ``main``'s history and usage are
        emptied and the current branch becomes ``main``. Forks made by others stay."""
        self._goto(MAIN, self.session_id)
        try:
            branches = await self._branches()
        except SessionNotFoundError:
            return
        for _, branch in branches[1:]:
            await self.store.delete_session(branch.id)
        await self.store.clear_history(self.session_id)
        await self._set_usage(self.session_id, {}, branches[0][1].metadata)

    def close(self) -> None:
        """Nothing to close: the store belongs to the caller (kept for drop-in use)."""

    # -- turns --------------------------------------------------------------------------

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of a branch: ``turn`` (1-based), ``content`` (a preview),
        ``full_content``, ``timestamp`` (a datetime), ``can_branch`` and ``message_id``."""
        sid = await self._branch_or_current(branch_id)
        return [_turn(n, m) for n, m in enumerate(await self._turns(sid), start=1)]

    async def find_turns_by_content(
        self, search_term: str, branch_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The turns whose user message contains ``search_term`` (case-insensitive)."""
        term = check_str(search_term, "search_term").casefold()
        return [
            turn
            for turn in await self.get_conversation_turns(branch_id)
            if term in content_text(turn["full_content"]).casefold()
        ]

    # -- branches -----------------------------------------------------------------------

    async def create_branch_from_turn(
        self, turn_number: int, branch_name: str | None = None
    ) -> str:
        """A new branch of the current one just before turn ``turn_number``'s user message
        (a fork: it shares everything before and copies nothing); switches to it.

        Returns:
            The branch id (``branch_name``, or ``branch_from_turn_N_...`` when omitted).

        Raises:
            ValidationError: no such turn on the current branch, or a bad branch name.
            SessionExistsError: the branch name is taken (names stay taken once used).
        """
        check_int(turn_number, "turn_number", minimum=1)
        if branch_name is None:
            branch_name = f"branch_from_turn_{turn_number}_{new_id()[-8:]}"
        name = validate_name(branch_name, what="branch name")
        if name == MAIN:
            raise ValidationError("branch name 'main' is the session itself; choose another")
        turns = await self._turns(self._branch_session)
        if turn_number > len(turns):
            raise ValidationError(
                f"turn {turn_number} does not exist on branch {self._branch!r} "
                f"(it has {len(turns)} turns)"
            )
        sid = self.branch_session_id(name)
        taken = SessionExistsError(
            f"branch {name!r} exists or existed (session {sid!r}); names stay taken, choose another"
        )
        try:
            await self.store.get_session(sid)
        except SessionNotFoundError:
            pass
        else:
            raise taken
        try:
            # `before`: the fork ends just before the turn's user message (turn 1: empty).
            await self.store.fork(
                self._branch_session,
                turns[turn_number - 1].id,
                id=sid,
                title=name,
                reason=f"openai-agents branch {name!r} from turn {turn_number}",
                fork_metadata={"branch": name, "turn": turn_number},
                before=True,
            )
        except SessionExistsError:
            raise taken from None
        self._goto(name, sid)
        return name

    async def create_branch_from_content(
        self, search_term: str, branch_name: str | None = None
    ) -> str:
        """A branch from the first turn whose user message contains ``search_term``."""
        found = await self.find_turns_by_content(search_term)
        if not found:
            raise ValidationError(f"no user turn contains {search_term!r}")
        return await self.create_branch_from_turn(found[0]["turn"], branch_name)

    async def switch_to_branch(self, branch_id: str) -> None:
        """Make ``branch_id`` the branch reads and writes go to.

        Raises:
            SessionNotFoundError: no such (live) branch of this session.
        """
        sid = await self._resolve(branch_id)
        self._goto(branch_id, sid)

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every live branch, ``main`` first: ``branch_id``, ``session_id``,
        ``message_count``, ``user_turns``, ``is_current`` and ``created_at``."""
        try:
            branches = await self._branches()
        except SessionNotFoundError:
            return []
        return [
            {
                "branch_id": name,
                "session_id": session.id,
                "message_count": session.message_count,
                "user_turns": len(await self._turns(session.id)),
                "is_current": session.id == self._branch_session,
                "created_at": session.created_at,
            }
            for name, session in branches
        ]

    async def delete_branch(self, branch_id: str, force: bool = False) -> None:
        """Delete a branch's session (its name stays taken; what it shares stays for others).

        Raises:
            ValidationError: ``main``, or the current branch without ``force`` (with
                ``force`` the current branch becomes ``main`` first).
            SessionNotFoundError: no such branch.
        """
        check_bool(force, "force")
        if check_str(branch_id, "branch_id") == MAIN:
            raise ValidationError("the 'main' branch cannot be deleted")
        sid = await self._resolve(branch_id)
        if sid == self._branch_session:
            if not force:
                raise ValidationError(
                    f"branch {branch_id!r} is the current branch: switch first or force=True"
                )
            self._goto(MAIN, self.session_id)
        await self.store.delete_session(sid)

    # -- usage --------------------------------------------------------------------------

    async def store_run_usage(self, result: RunResultBase) -> None:
        """Record a run's usage (``result.context_wrapper.usage``) for the current turn of
        the current branch: the user message this object added last, or else the branch's
        newest one. A second call for the same turn replaces the first. Call it after
        ``Runner.run``. A history without a user message has no turn: nothing is recorded.

        Raises:
            LimitExceededError: the branch's metadata would pass ``max_metadata_bytes``
                (about 100 bytes a turn: some 500 turns a branch at the default 64 KB).
        """
        usage = getattr(getattr(result, "context_wrapper", None), "usage", None)
        if not isinstance(usage, Usage):
            raise ValidationError(
                "store_run_usage takes a RunResult (result.context_wrapper.usage)"
            )
        sid = self._branch_session
        turn_id = self._turn_id
        if turn_id is None:
            turn = await self._last_turn(sid)
            if turn is None:
                return
            turn_id = turn.id
        session = await self.store.get_session(sid)
        stored = dict(_usage_of(session.metadata))
        stored[turn_id] = _usage_record(usage)
        await self._set_usage(sid, stored, session.metadata)

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Usage per turn of a branch (the current one by default), turns it shares with
        the branch it came from included: a list of ``{user_turn_number, requests,
        input_tokens, output_tokens, total_tokens, ..._details}``, or for one turn its dict
        (``{}`` when none was recorded)."""
        check_optional_int(user_turn_number, "user_turn_number", minimum=1)
        sid = await self._branch_or_current(branch_id)
        turns = await self._turns(sid)
        recorded = await self._usage_along(sid)
        rows = [
            {"user_turn_number": n, **_usage_row(recorded[m.id])}
            for n, m in enumerate(turns, start=1)
            if m.id in recorded
        ]
        if user_turn_number is None:
            return rows
        for row in rows:
            if row["user_turn_number"] == user_turn_number:
                return {k: v for k, v in row.items() if k != "user_turn_number"}
        return {}

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """Usage summed: over every turn of every branch (each recorded once), or over the
        turns of ``branch_id``'s conversation. None when nothing was recorded."""
        if branch_id is not None:
            found = await self.get_turn_usage(branch_id=branch_id)
            records = list(found) if isinstance(found, list) else []
        else:
            try:
                branches = await self._branches()
            except SessionNotFoundError:
                return None
            records = [r for _, session in branches for r in _usage_of(session.metadata).values()]
        if not records:
            return None
        keys = ("requests", "input_tokens", "output_tokens", "total_tokens")
        total = {k: sum(int(r.get(k) or 0) for r in records) for k in keys}
        return {**total, "total_turns": len(records)}

    # -- helpers ------------------------------------------------------------------------

    async def _messages(self, sid: str, start: int | None = None) -> list[Message]:
        """A window of a branch's history; main before its first write is empty."""
        try:
            return await self.store.messages(sid, start)
        except SessionNotFoundError:
            if sid == self.session_id:
                return []
            raise

    async def _turns(self, sid: str) -> list[Message]:
        """The user messages of a branch's history, oldest first (turn n is [n - 1])."""
        return [m for m in await self._messages(sid) if _is_turn(m)]

    async def _last_turn(self, sid: str) -> Message | None:
        """The newest user message, read in growing windows from the end (a turn is short)."""
        size = 16
        while True:
            window = await self._messages(sid, -size)
            for message in reversed(window):
                if _is_turn(message):
                    return message
            if len(window) < size:
                return None
            size *= 4

    async def _branch_or_current(self, branch_id: str | None) -> str:
        return self._branch_session if branch_id is None else await self._resolve(branch_id)

    async def _resolve(self, branch_id: str) -> str:
        """The session of a live branch of this session."""
        sid = self.branch_session_id(branch_id)
        if sid == self.session_id:
            return sid
        missing = SessionNotFoundError(f"no branch {branch_id!r} in session {self.session_id!r}")
        try:
            session = await self.store.get_session(sid)
        except SessionNotFoundError:
            raise missing from None
        if session.deleted or self.session_id not in await self.store.ancestors(sid):
            raise missing
        return sid

    async def _branches(self) -> list[tuple[str, Session]]:
        """(branch id, session) of main and each live branch below it, main first (one
        read of the fork tree)."""
        tree = {s.id: s for s in await self.store.tree(self.session_id)}
        prefix = f"{self.session_id}:"
        found = [(MAIN, tree[self.session_id])]
        for sid, session in tree.items():
            below = self.session_id in _lineage(tree, sid)[1:]
            if sid.startswith(prefix) and not session.deleted and below:
                found.append((sid[len(prefix) :], session))
        return found

    async def _usage_along(self, sid: str) -> dict[str, dict[str, Any]]:
        """Usage recorded by the branch and the sessions it was forked from (nearest wins)."""
        recorded: dict[str, dict[str, Any]] = {}
        try:
            tree = {s.id: s for s in await self.store.tree(sid)}
        except SessionNotFoundError:
            return recorded
        for owner in _lineage(tree, sid):
            for key, value in _usage_of(tree[owner].metadata).items():
                recorded.setdefault(key, value)
        return recorded

    async def _set_usage(
        self, sid: str, usage: dict[str, Any], metadata: Mapping[str, Any]
    ) -> None:
        """Replace the usage map in a session's metadata (other keys kept)."""
        if not usage and USAGE_KEY not in metadata:
            return
        merged = {k: v for k, v in metadata.items() if k != USAGE_KEY}
        if usage:
            merged[USAGE_KEY] = usage
        await self.store.update_session(sid, metadata=merged)


def _lineage(tree: Mapping[str, Session], sid: str) -> list[str]:
    """``sid`` and the sessions it was forked from, nearest first."""
    out = []
    current: str | None = sid
    while current is not None and current in tree:
        out.append(current)
        current = tree[current].parent_id
    return out


def _usage_of(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = metadata.get(USAGE_KEY)
    return (
        {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}
    )


def _turn(number: int, message: Message) -> dict[str, Any]:
    content = _turn_content(message)
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return {
        "turn": number,
        "content": text if len(text) <= _PREVIEW else text[:_PREVIEW] + "...",
        "full_content": content,
        "timestamp": message.created_at,
        "can_branch": True,
        "message_id": message.id,
    }
