"""Commands about the database: ``init`` (schema) and ``neo4j start|stop|status`` (local server)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from session_graph.cli.common import (
    ErrorHandlingGroup,
    JsonOpt,
    Waiting,
    app,
    connect,
    err,
    load_settings,
    out,
    print_json,
    runtime_console,
    start_local,
)
from session_graph.runtime import LocalNeo4j

neo4j_app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Manage the local Neo4j server session_graph runs when SESSION_GRAPH_NEO4J_URI is unset.",
    no_args_is_help=True,
)
app.add_typer(neo4j_app, name="neo4j")

InstanceOpt = Annotated[
    str, typer.Option(help="Name of the local server instance (one data directory each).")
]
NOT_RUNNING = 3  # `neo4j status` exit code when the server is not running (as systemctl's)


@app.command()
def init() -> None:
    """Apply the schema (constraints, indexes) to the database; safe to repeat."""
    with connect(setup=True) as c:
        applied = c.applied
        versions = c.store.backend.applied_migrations()
    if applied:
        for version in applied:
            out().print(Text.assemble(("applied ", "green"), version))
    else:
        out().print("schema up to date: nothing to apply")
    out().print(f"schema versions at {c.uri}: {', '.join(versions)}", style="dim")


def _uri_note() -> None:
    uri = load_settings().neo4j_uri
    if uri:
        err().print(
            f"note: SESSION_GRAPH_NEO4J_URI is set, so other commands use {uri}, "
            "not this local server",
            style="yellow",
        )


@neo4j_app.command()
def start(instance: InstanceOpt = "default", json_: JsonOpt = False) -> None:
    """Start the local server (downloads Neo4j's jars with Maven on first use).

    While the server starts, progress goes to stderr: a spinner on a terminal, else a line
    every few seconds.
    """
    local, info, started = start_local(load_settings(), instance)
    _uri_note()
    if json_:
        print_json(
            {
                "instance": instance,
                "started": started,
                "uri": info.uri,
                "user": info.user,
                "password_file": str(local.password_file),
            }
        )
        return
    state = "started" if started else "already running"
    out().print(Text.assemble(f"local Neo4j {state} at ", (info.uri, "bold")))
    out().print(f"user neo4j, password in {local.password_file}", style="dim")
    out().print("stop it with: session-graph neo4j stop", style="dim")


@neo4j_app.command()
def stop(instance: InstanceOpt = "default") -> None:
    """Stop the local server cleanly; its data stays for the next start."""
    local = LocalNeo4j(load_settings(), instance, console=runtime_console())
    if not local.status().running:
        out().print(f"local Neo4j (instance {instance!r}) is not running")
        return
    with Waiting("stopping the local Neo4j server") as waiting:
        local.stop(progress=waiting.tick)
    out().print(f"stopped local Neo4j (instance {instance!r})")


@neo4j_app.command()
def status(instance: InstanceOpt = "default", json_: JsonOpt = False) -> None:
    """Show whether the local server runs, and where (never the password).

    Exit code 0 when it runs, 3 when it does not (as `systemctl status`), 1 on errors; so
    `session-graph neo4j status >/dev/null && ...` tests for a running server.
    """
    local = LocalNeo4j(load_settings(), instance, console=runtime_console())
    st = local.status()
    _uri_note()
    password = (
        f"stored in {local.password_file}"
        if local.password_file.exists()
        else "created on first start"
    )
    if json_:
        print_json(
            {
                "instance": instance,
                "running": st.running,
                "pid": st.pid,
                "port": st.port,
                "uri": st.uri,
                "version": st.version,
                "started_at": st.started_at,
                "home": str(st.home),
                "user": "neo4j",
                "password_file": str(local.password_file),
            }
        )
    else:
        table = Table(show_header=False, box=box.SIMPLE, title=f"local Neo4j ({instance})")
        table.add_column(style="bold")
        table.add_column()
        running = Text("yes", style="green") if st.running else Text("no", style="red")
        rows: list[tuple[str, str | Text]] = [
            ("running", running),
            ("pid", "-" if st.pid is None else str(st.pid)),
            ("port", "-" if st.port is None else str(st.port)),
            ("uri", st.uri or "-"),
            ("version", st.version),
            ("started", st.started_at or "-"),
            ("home", str(st.home)),
            ("user", "neo4j"),
            ("password", password),
        ]
        for key, value in rows:
            table.add_row(key, value)
        out().print(table)
    if not st.running:
        raise typer.Exit(NOT_RUNNING)
