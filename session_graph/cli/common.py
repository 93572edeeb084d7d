"""What every command shares: the typer app, consoles, settings, opening the store, ids, errors."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn

import pydantic
import typer
from neo4j.exceptions import AuthError, DriverError, Neo4jError
from pydantic import SecretStr
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from session_graph.config import ENV_PREFIX, Settings
from session_graph.errors import (
    RuntimeSetupError,
    SessionGraphError,
    SessionNotFoundError,
    ValidationError,
)
from session_graph.ids import validate_name
from session_graph.runtime import ConnectionInfo, LocalNeo4j
from session_graph.store import SessionStore

_consoles: dict[str, tuple[object, Console]] = {}


def _console(kind: str) -> Console:
    # One console per stream object, made on first use: terminal and colour detection then
    # follow the streams and environment a command actually runs with (tests run many
    # commands in one process, each with swapped streams).
    stream = sys.stdout if kind == "out" else sys.stderr
    cached = _consoles.get(kind)
    if cached is None or cached[0] is not stream:
        # No markup, emoji codes or highlighting for our output: ids, titles and content are
        # user data and print as they are ("[bold]" stays "[bold]"); styles go through Text.
        # The runtime's own messages do use markup.
        plain = kind != "runtime"
        cached = (
            stream,
            Console(stderr=kind != "out", highlight=False, markup=not plain, emoji=not plain),
        )
        _consoles[kind] = cached
    return cached[1]


def out() -> Console:
    """The console for results (stdout)."""
    return _console("out")


def err() -> Console:
    """The console for progress, notes and errors (stderr)."""
    return _console("err")


def runtime_console() -> Console:
    """The stderr console handed to the runtime (its messages use rich markup)."""
    return _console("runtime")


ENV_HELP = (
    "Configuration comes from SESSION_GRAPH_* environment variables: with "
    "SESSION_GRAPH_NEO4J_URI (and _USER, _PASSWORD, _DATABASE) commands use that server, "
    "without it a local Neo4j server is started and kept running. SESSION_GRAPH_TENANT "
    "picks the tenant (default: default). Errors are one line; SESSION_GRAPH_DEBUG=1 adds "
    "their traceback."
)
SHORT_MIN = 6  # characters of an id that may name a session (a unique start or end)
SESSION_HELP = (
    "Session id, or a unique start or end of one, at least 6 characters "
    "(as `tree` shows it: …1a2b3c4d)."
)

SessionArg = Annotated[
    str, typer.Argument(help=SESSION_HELP, metavar="SESSION", show_default=False)
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON document to stdout (UTC ISO-8601 times, full ids)."
    ),
]


def parse_json(text: str, where: str) -> Any:
    """``text`` as JSON; bad or too deeply nested JSON is a ValidationError naming ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: not JSON ({exc.msg})") from None
    except RecursionError:
        raise ValidationError(f"{where}: nests too deeply") from None


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (error messages are one line)."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def fail(message: str, *, detail: bool = False) -> NoReturn:
    """Print ``error: <message>`` in red on one line and exit with 1.

    ``detail``: keep further lines (a server log tail), printed plain and dimmed.
    """
    first, _, rest = message.strip().partition("\n")
    if not detail:
        first, rest = one_line(message), ""
    err().print(Text.assemble(("error:", "bold red"), " ", (first, "red")), soft_wrap=True)
    if rest:
        err().print(Text(rest), style="dim", soft_wrap=True)
    raise typer.Exit(1)


def debug_enabled() -> bool:
    """``SESSION_GRAPH_DEBUG``: tracebacks for errors (read even when other settings are bad)."""
    try:
        return Settings().debug
    except Exception:
        value = os.environ.get(f"{ENV_PREFIX}DEBUG", "")
        return value.strip().lower() in {"1", "true", "yes", "on"}


def _passing() -> tuple[type[BaseException], ...]:
    """What the command line framework raises on purpose (exits, usage errors): not ours."""
    kinds: list[type[BaseException]] = [typer.Exit, typer.Abort, typer.TyperException]
    try:  # typer < 0.20 raises click's own
        import click

        kinds += [click.exceptions.Exit, click.exceptions.Abort, click.ClickException]
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


_PASSING = _passing()


def os_error_message(exc: OSError) -> str:
    """``<path>: <reason>`` for a failed file operation, naming SESSION_GRAPH_HOME when the
    path lies under it."""
    reason = exc.strerror or one_line(str(exc)) or type(exc).__name__
    paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return reason
    message = f"{' -> '.join(paths)}: {reason}"
    home = os.environ.get(f"{ENV_PREFIX}HOME")
    if home and any(p == home or p.startswith(home.rstrip("/") + "/") for p in paths):
        message += f" ({ENV_PREFIX}HOME is {home})"
    return message


def report(exc: BaseException) -> NoReturn:
    """End a command that raised ``exc``: one ``error:`` line on stderr, exit code 1.

    With ``SESSION_GRAPH_DEBUG=1`` the traceback is printed first.
    """
    if debug_enabled():
        sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        sys.stderr.flush()
    if isinstance(exc, SessionGraphError):
        if isinstance(exc.__cause__, pydantic.ValidationError):  # input checked by a model
            fail(pydantic_problems(exc.__cause__))
        fail(str(exc), detail=isinstance(exc, RuntimeSetupError))
    if isinstance(exc, AuthError):
        fail(
            f"Neo4j refused the login: {exc.message}; check {ENV_PREFIX}NEO4J_USER and "
            f"{ENV_PREFIX}NEO4J_PASSWORD"
        )
    if isinstance(exc, Neo4jError):
        # Raised outside the backend's wrapping (for example while connecting).
        hint = ""
        if exc.code and exc.code.endswith("DatabaseNotFound"):
            hint = f"; check {ENV_PREFIX}NEO4J_DATABASE"
        fail(f"Neo4j: {exc.message or exc} ({exc.code}){hint}")
    if isinstance(exc, DriverError):
        fail(f"Neo4j: {exc}")
    if isinstance(exc, OSError):
        fail(os_error_message(exc))
    fail(
        f"internal error ({type(exc).__name__}): {one_line(str(exc)) or '-'}; "
        f"run with {ENV_PREFIX}DEBUG=1 for the traceback"
    )


class ErrorHandlingGroup(TyperGroup):
    """No command ends in a traceback.

    Expected errors (ours, Neo4j's, a file that cannot be used) end a command with one red
    ``error:`` line and exit code 1; anything else is a bug and ends the same way, as
    ``error: internal error (<type>): ...`` (``SESSION_GRAPH_DEBUG=1`` prints its
    traceback). Usage errors stay click's (exit code 2).
    """

    # ``Any``: typer >= 0.20 passes its vendored click's Context, older ones click's own.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSING:
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # stdout closed early (`| head`): click's to handle
                raise
            report(exc)
        except Exception as exc:
            report(exc)


app = typer.Typer(
    cls=ErrorHandlingGroup,
    name="session-graph",
    help="Sessions, shared-history forks and comparisons for LLM agents, stored in Neo4j.\n\n"
    + ENV_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
    pretty_exceptions_enable=False,  # ErrorHandlingGroup reports every error itself
)


def pydantic_problems(exc: pydantic.ValidationError) -> str:
    """A model's validation errors on one line: ``field: problem; ...`` (the field is left
    out where the problem names it first)."""
    problems = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = one_line(e["msg"].removeprefix("Value error, "))
        named = (
            not where or message.startswith(where.replace("_", " ")) or message.startswith(where)
        )
        problems.append(message if named else f"{where}: {message}")
    return "; ".join(problems)


def load_settings() -> Settings:
    """``Settings()`` from the environment; a bad variable raises ``ConfigError`` (one line)."""
    return Settings()


@dataclass
class Connected:
    """An open store and how it was reached."""

    store: SessionStore
    uri: str
    local: LocalNeo4j | None  # the local server, when no URI is configured
    started_local: bool  # this command started the local server
    applied: list[str]  # schema migrations applied now
    connect_seconds: float


class Waiting:
    """Shows that a wait goes on: on a terminal a spinner with the seconds waited, elsewhere
    (a pipe, a log file) a line every few seconds, so a script's log never goes silent."""

    EVERY = 5.0  # seconds between lines where no spinner can show

    def __init__(self, what: str) -> None:
        self.what = what
        self.every = self.EVERY
        self.began = time.monotonic()
        self._next = self.every
        self._stack = contextlib.ExitStack()
        self._status: Any = None

    def __enter__(self) -> Waiting:
        if err().is_terminal:
            self._status = self._stack.enter_context(err().status(Text(f"{self.what}...")))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def tick(self, elapsed: float | None = None) -> None:
        """Called while waiting (often); ``elapsed``: seconds since the wait began."""
        seconds = time.monotonic() - self.began if elapsed is None else elapsed
        if self._status is not None:
            self._status.update(Text(f"{self.what} ({seconds:.0f} s)..."))
        elif seconds >= self._next:
            err().print(Text(f"{self.what} ({seconds:.0f} s)..."), soft_wrap=True)
            self._next = (seconds // self.every + 1) * self.every


def start_local(
    settings: Settings, instance: str = "default"
) -> tuple[LocalNeo4j, ConnectionInfo, bool]:
    """Start the local server (or find it running); returns it, how to connect, and whether
    this call started it."""
    local = LocalNeo4j(settings, instance, console=runtime_console())
    running = local.status().running
    if not running:
        # The one-time jar download shows its own progress, so it runs outside our spinner.
        local.jars.ensure(console=runtime_console())
        err().print(
            Text.assemble(
                ("session_graph: ", "bold"),
                f"starting the local Neo4j server (instance {instance!r} in {local.dir}); "
                "it keeps running afterwards",
            ),
            soft_wrap=True,
        )
    what = "waiting for Neo4j to accept Bolt connections" if not running else "connecting"
    with Waiting(what) as waiting:
        info = local.start(progress=waiting.tick)
    return local, info, not running


@contextlib.contextmanager
def connect(*, setup: bool = False) -> Iterator[Connected]:
    """Open the store as configured: ``SESSION_GRAPH_NEO4J_URI``, else the local server.

    Args:
        setup: apply pending schema migrations first (``init`` and ``demo``); otherwise a
            database without the schema is an error that says to run ``init``.
    """
    from session_graph.connection import ready_connection

    settings = load_settings()
    began = time.monotonic()
    local: LocalNeo4j | None = None
    started = False
    if not settings.neo4j_uri:
        local, info, started = start_local(settings)
        # From here on the local server is just a URI, so the store is opened one way.
        settings = settings.model_copy(
            update={
                "neo4j_uri": info.uri,
                "neo4j_user": info.user,
                "neo4j_password": None if info.password is None else SecretStr(info.password),
            }
        )
    uri = str(settings.neo4j_uri)
    with Waiting(f"connecting to Neo4j at {uri}") as waiting:
        info = ready_connection(settings, check=waiting.tick)
    store = SessionStore.connect_to(info, settings)
    try:
        applied = store.setup() if setup else []
        store.connect()
        yield Connected(store, uri, local, started, applied, time.monotonic() - began)
    finally:
        store.close()


def _matching(store: SessionStore, part: str, limit: int) -> list[dict[str, Any]]:
    return store.backend.run_saved("sessions_matching", part=part, limit=limit)


def resolve(store: SessionStore, ref: str) -> str:
    """The session id ``ref`` names: a full id, or a unique start or end of at least 6
    characters of one (``tree`` and ``search`` print ``…1a2b3c4d``; the ``…`` may be left out).

    Session ids made together share their first characters (a UUIDv7 starts with its
    time), so the end is what usually tells them apart.

    Raises:
        ValidationError: ``ref`` is shorter than 6 characters and no full id, or it names
            several sessions (they are listed).
        SessionNotFoundError: no session matches.
    """
    try:
        validate_name(ref, what="session id", lookup=True)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    try:
        store.get_session(ref)
        return ref
    except SessionNotFoundError:
        pass
    core = ref.strip()
    for mark in ("…", "..."):
        core = core.removeprefix(mark).removesuffix(mark)
    if len(core) < SHORT_MIN:
        raise ValidationError(
            f"no session {ref!r}; to name one by part of its id, give at least {SHORT_MIN} "
            "characters of the id (as `tree` shows them, …1a2b3c4d)"
        )
    rows = _matching(store, core, 6)
    hits = [(str(r["id"]), r.get("title")) for r in rows]
    if not hits:
        raise SessionNotFoundError(
            f"no session matches {ref!r} (give a full id, or a unique start or end of one)"
        )
    if len(hits) > 1:
        shown = ", ".join(f"{sid} ({title})" if title else sid for sid, title in hits[:5])
        more = ", ..." if len(hits) > 5 else ""
        raise ValidationError(
            f"{ref!r} matches {'more than 5' if more else len(hits)} sessions: {shown}{more}; "
            "give more of the id"
        )
    return hits[0][0]


def parse_at(value: str | None) -> int | str | None:
    """A fork point from the command line: a position (negative from the end) or a message id."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value.strip()


def when(stamp: datetime | None) -> str:
    """A timestamp in local time, to the minute: ``YYYY-MM-DD HH:MM``."""
    if stamp is None:
        return "-"
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def print_json(document: Any) -> None:
    """``document`` as JSON on stdout, the only thing a ``--json`` command prints there."""
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def money(value: float | None) -> str:
    """Dollars with up to six decimals, trailing zeros dropped."""
    if value is None:
        return "-"
    return "$" + (f"{value:,.6f}".rstrip("0").rstrip(".") or "0")
