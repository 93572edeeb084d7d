"""What every command shares: the typer app, consoles, settings, opening the store, ids, errors."""

from __future__ import annotations

import contextlib
import sys
import time
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
from session_graph.errors import SessionGraphError, ValidationError
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
    "picks the tenant (default: default)."
)
SESSION_HELP = "Session id, or a unique start or end of one (as `tree` shows it: …1a2b3c4d)."

SessionArg = Annotated[
    str, typer.Argument(help=SESSION_HELP, metavar="SESSION", show_default=False)
]


def fail(message: str) -> NoReturn:
    """Print ``error: <first line>`` in red (further lines plain, dimmed) and exit with 1."""
    first, _, rest = message.strip().partition("\n")
    err().print(Text.assemble(("error:", "bold red"), " ", (first, "red")), soft_wrap=True)
    if rest:
        err().print(Text(rest), style="dim", soft_wrap=True)
    raise typer.Exit(1)


class ErrorHandlingGroup(TyperGroup):
    """Expected errors end a command with one red line and exit code 1, never a traceback.

    Usage errors stay click's (exit code 2); anything else is a bug and keeps its traceback.
    """

    # ``Any``: typer >= 0.20 passes its vendored click's Context, older ones click's own.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SessionGraphError as exc:
            fail(str(exc))
        except AuthError as exc:
            fail(
                f"Neo4j refused the login: {exc.message}; check {ENV_PREFIX}NEO4J_USER and "
                f"{ENV_PREFIX}NEO4J_PASSWORD"
            )
        except (Neo4jError, DriverError) as exc:
            # Raised outside the backend's wrapping (for example while connecting).
            fail(f"Neo4j: {exc}")


app = typer.Typer(
    cls=ErrorHandlingGroup,
    name="session-graph",
    help="Sessions, shared-history forks and comparisons for LLM agents, stored in Neo4j.\n\n"
    + ENV_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)


def load_settings() -> Settings:
    """``Settings()`` from the environment; a bad variable is a one-line error."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ValidationError(f"bad configuration: {problems}") from None


@dataclass
class Connected:
    """An open store and how it was reached."""

    store: SessionStore
    uri: str
    local: LocalNeo4j | None  # the local server, when no URI is configured
    started_local: bool  # this command started the local server
    applied: list[str]  # schema migrations applied now
    connect_seconds: float


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
    with err().status("Starting the local Neo4j server..." if not running else "Connecting..."):
        info = local.start()
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
    with err().status(Text(f"Connecting to Neo4j at {uri}...")):
        info = ready_connection(settings)
    store = SessionStore.connect_to(info, settings)
    try:
        applied = store.setup() if setup else []
        store.connect()
        yield Connected(store, uri, local, started, applied, time.monotonic() - began)
    finally:
        store.close()


def resolve(store: SessionStore, ref: str) -> str:
    """The session id ``ref`` names: an id, or a unique start or end of one.

    Short forms are what ``tree`` and ``search`` print (``…1a2b3c4d``); the ``…`` may be
    left out. An unknown ``ref`` comes back as it is, so the store reports it.
    """
    try:
        validate_name(ref, what="session id")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    try:
        store.get_session(ref)
        return ref
    except SessionGraphError:
        pass
    core = ref.strip().strip("…").strip(".")
    if len(core) < 6:
        return ref
    rows = store.backend.run_saved("sessions_matching", part=core, limit=4)
    hits = sorted(str(r["id"]) for r in rows)
    if len(hits) > 1:
        shown = ", ".join(hits[:3]) + (", ..." if len(hits) > 3 else "")
        raise ValidationError(f"{ref!r} matches {len(hits)} sessions ({shown}); give more of it")
    return hits[0] if hits else ref


def parse_at(value: str | None) -> int | str | None:
    """A fork point from the command line: a position (negative from the end) or a message id."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value.strip()


def when(stamp: datetime | None, *, short: bool = False) -> str:
    """A timestamp in local time, to the minute (``short``: without the year if it is this one)."""
    if stamp is None:
        return "-"
    local = stamp.astimezone()
    if short and local.year == datetime.now().year:
        return local.strftime("%m-%d %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def money(value: float | None) -> str:
    """Dollars with up to six decimals, trailing zeros dropped."""
    if value is None:
        return "-"
    return "$" + (f"{value:,.6f}".rstrip("0").rstrip(".") or "0")
