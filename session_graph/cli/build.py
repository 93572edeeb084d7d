"""Building sessions without Python: ``new``, ``append``, ``pop``, ``clear``, ``edit``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, BinaryIO

import pydantic
import typer
from rich.text import Text

from session_graph.cli.common import (
    JsonOpt,
    SessionArg,
    app,
    connect,
    one_line,
    out,
    parse_json,
    print_json,
    pydantic_problems,
    resolve,
)
from session_graph.errors import LimitExceededError, ValidationError
from session_graph.models import Message, NewMessage
from session_graph.render import ROLE_STYLES
from session_graph.store import SessionStore

STDIN = "-"
MESSAGE_FIELDS = (
    "role, content, and optionally id, created_at, provider, model, input_tokens, "
    "output_tokens, cost, tool_name, tool_call_id, metadata"
)


class Role(str, Enum):
    system = "system"
    user = "user"
    assistant = "assistant"
    tool = "tool"


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if text is None:
        return {}
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise ValidationError(f"{what} needs a JSON object, got {type(value).__name__}")
    return value


@app.command()
def new(
    title: Annotated[
        str | None, typer.Argument(help="Title of the session.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat for more).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="The user's id.")] = None,
    id: Annotated[
        str | None, typer.Option("--id", help="Id of the session (default: a new UUIDv7).")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option("--metadata", "-m", help="Metadata as a JSON object.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a session (the root of a new fork tree) and print its id."""
    meta = _json_object(metadata, "--metadata")
    with connect() as c:
        session = c.store.create_session(
            id, title=title, user_id=user, tags=tag or (), metadata=meta
        )
    if json_:
        print_json(session.model_dump(mode="json"))
    else:
        typer.echo(session.id)  # the id alone: `sid=$(session-graph new)`


# -- append ------------------------------------------------------------------------------------


def _message(value: Any, where: str, max_bytes: int) -> NewMessage:
    if not isinstance(value, dict):
        raise ValidationError(
            f"{where}: a message is a JSON object ({MESSAGE_FIELDS}), got {type(value).__name__}"
        )
    stamp = value.get("created_at")
    if isinstance(stamp, str):  # JSON has no times: ISO-8601 text, with its offset
        text = stamp.strip()
        try:  # (Python 3.10's fromisoformat does not read a Z)
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise ValidationError(
                f"{where}: created_at: {stamp!r} is not an ISO-8601 time "
                "(like 2024-05-01T12:00:00Z)"
            ) from None
        value = {**value, "created_at": parsed}  # a time without an offset: the model refuses
    try:
        message = NewMessage.model_validate(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"{where}: {pydantic_problems(exc)}") from None
    except ValidationError as exc:  # checks that raise the project's own error directly
        raise ValidationError(f"{where}: {one_line(str(exc))}") from None
    size = len(message.content.encode("utf-8"))
    if size > max_bytes:
        raise LimitExceededError(
            f"{where}: content is {size} bytes; the limit is {max_bytes} "
            "(SESSION_GRAPH_MAX_MESSAGE_BYTES)"
        )
    return message


def _numbered(stream: Iterable[bytes], source: str) -> Iterator[tuple[int, str]]:
    """The lines of ``stream`` decoded, with their numbers (from 1); bad UTF-8 names its line."""
    for number, raw in enumerate(stream, 1):
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{source} line {number}: not UTF-8 text (byte {exc.start + 1})"
            ) from None


def read_messages(stream: Iterable[bytes], source: str, max_bytes: int) -> Iterator[NewMessage]:
    """Messages from JSON (one object or a list of them) or JSONL (one object per line).

    JSONL is read as it streams, one line at a time. Every problem is a ValidationError that
    names the line (JSONL) or the message's place in the list (JSON).
    """
    lines = _numbered(stream, source)
    first_no, first = next(((n, line) for n, line in lines if line.strip()), (0, ""))
    if not first:
        return
    try:
        value: Any = json.loads(first)
        whole = isinstance(value, list)
    except json.JSONDecodeError:
        value, whole = None, True  # a document over several lines
    except RecursionError:
        raise ValidationError(f"{source} line {first_no}: nests too deeply") from None
    if whole:
        rest = "".join(line for _, line in lines)
        if value is None:
            try:
                value = json.loads(first + rest)
            except json.JSONDecodeError as exc:
                bad = first_no + exc.lineno - 1
                raise ValidationError(f"{source} line {bad}: not JSON ({exc.msg})") from None
            except RecursionError:
                raise ValidationError(f"{source}: nests too deeply") from None
        elif rest.strip():
            raise ValidationError(f"{source}: more after the JSON list of line {first_no}")
        if isinstance(value, list):
            for n, item in enumerate(value, 1):
                yield _message(item, f"{source} message {n}", max_bytes)
        else:
            yield _message(value, source, max_bytes)
        return
    yield _message(value, f"{source} line {first_no}", max_bytes)
    for n, line in lines:
        if not line.strip():
            continue
        yield _message(parse_json(line, f"{source} line {n}"), f"{source} line {n}", max_bytes)


def _from_arguments(roles: list[Role], contents: list[str]) -> list[dict[str, Any]]:
    if not contents:
        raise ValidationError("--role needs --content (the message text)")
    if not roles:
        raise ValidationError("--content needs --role (system, user, assistant or tool)")
    if len(roles) == 1:
        roles = roles * len(contents)
    if len(roles) != len(contents):
        raise ValidationError(
            f"got {len(roles)} --role and {len(contents)} --content: give one --role for "
            "all, or one per --content"
        )
    return [{"role": r.value, "content": c} for r, c in zip(roles, contents, strict=True)]


@app.command()
def append(
    session: SessionArg,
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", "-r", help="Role of the message (one for all, or one each)."),
    ] = None,
    content: Annotated[
        list[str] | None,
        typer.Option("--content", "-c", help="Text of a message (repeat: several messages)."),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="Messages from a file (- for stdin): a JSON object, a JSON list of them, or "
            "JSONL (one object per line; streamed). Each object: " + MESSAGE_FIELDS + ".",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Append messages to a session's history, all or none.

    From arguments (--role user --content "...", repeatable) or from --file PATH / --file -
    (stdin): JSON or JSONL. A bad message stops everything with its line number; a file is
    streamed in chunks that become visible together.
    """
    if file is not None and (role or content):
        raise ValidationError("give messages as --role/--content or as --file, not both")
    if file is None and not (role or content):
        raise ValidationError("nothing to append: give --role and --content, or --file PATH or -")
    given = None if file is not None else _from_arguments(role or [], content or [])
    with connect() as c:
        sid = resolve(c.store, session)
        appended: list[Message] | None = None
        if given is not None:
            appended = c.store.append(sid, given)
            count = len(appended)
        else:
            assert file is not None
            count = _append_file(c.store, sid, file, c.store.settings.max_message_bytes)
        total = c.store.message_count(sid)
    if json_:
        document: dict[str, Any] = {"session_id": sid, "appended": count, "message_count": total}
        if appended is not None:
            document["messages"] = [m.model_dump(mode="json") for m in appended]
        print_json(document)
        return
    out().print(
        Text.assemble(
            f"appended {count} message{'s' * (count != 1)} to ", (sid, "bold"), f" (now {total})"
        ),
        soft_wrap=True,
    )


def _append_file(store: SessionStore, session_id: str, path: str, max_bytes: int) -> int:
    def stream(handle: BinaryIO, source: str) -> int:
        messages: Iterable[NewMessage] = read_messages(handle, source, max_bytes)
        return store.extend(session_id, messages)

    if path == STDIN:
        return stream(typer.get_binary_stream("stdin"), "stdin")
    with open(path, "rb") as handle:
        return stream(handle, path)


# -- pop, clear, edit ----------------------------------------------------------------------------


def _message_line(verb: str, m: Message) -> Text:
    return Text.assemble(
        f"{verb} ",
        (f"#{m.position}", "cyan"),
        " ",
        (m.role, ROLE_STYLES.get(m.role, "")),
        ": ",
        m.content,
    )


@app.command()
def pop(session: SessionArg, json_: JsonOpt = False) -> None:
    """Remove the newest message from a session's history and print it.

    A message a fork shares stays for the fork; only this session's history loses it.
    """
    with connect() as c:
        sid = resolve(c.store, session)
        removed = c.store.pop_last(sid)
    if json_:
        print_json(removed.model_dump(mode="json"))
        return
    out().print(_message_line("removed", removed), soft_wrap=True)


def _interactive() -> bool:
    return sys.stdin.isatty()


@app.command()
def clear(
    session: SessionArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Empty a session's history (forks keep the messages they share); asks first.

    Without a terminal to ask on (a script, a pipe), --yes is required.
    """
    if not yes and not _interactive():
        raise ValidationError("clear asks for confirmation; not on a terminal, give --yes")
    with connect() as c:
        sid = resolve(c.store, session)
        if not yes:
            count = c.store.message_count(sid)
            typer.confirm(
                f"Remove all {count} message(s) from the history of {sid}?",
                abort=True,
                err=True,
            )
        cleared = c.store.clear_history(sid)
    if json_:
        print_json({"session_id": sid, "cleared": cleared})
        return
    out().print(
        Text.assemble(f"cleared {cleared} message{'s' * (cleared != 1)} from ", (sid, "bold")),
        soft_wrap=True,
    )


@app.command()
def edit(
    session: SessionArg,
    at: Annotated[
        int,
        typer.Option(
            "--at",
            help="Position of the message to replace (0 = first, -1 = newest).",
            min=-(2**62),
            max=2**62,
        ),
    ],
    content: Annotated[str, typer.Option("--content", "-c", help="The new text.")],
    role: Annotated[
        Role | None, typer.Option("--role", "-r", help="Role (default: the replaced one's).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Kept on the fork edge.")] = "edit",
    id: Annotated[str | None, typer.Option("--id", help="Id of the new fork.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Edit as a branch: a new fork whose history is this one's up to --at, then the edited
    message. The session itself is unchanged; prints the new fork's id."""
    with connect() as c:
        sid = resolve(c.store, session)
        if role is None:
            window = c.store.messages(sid, at, None if at == -1 else at + 1)[:1]
            if not window:
                raise ValidationError(
                    f"session {sid!r} has no message #{at} to take the role from; give --role"
                )
            kind = window[0].role
        else:
            kind = role.value
        fork = c.store.edit(sid, at, {"role": kind, "content": content}, id=id, reason=reason)
    if json_:
        print_json(fork.model_dump(mode="json"))
        return
    out().print(Text.assemble(f"edited #{at} as a new fork: ", (fork.id, "green")), soft_wrap=True)
