"""Commands on sessions: list, show, tree, fork, explore, compare, merge, delete, purge, search."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from session_graph.cli.common import (
    SESSION_HELP,
    SessionArg,
    app,
    connect,
    money,
    out,
    parse_at,
    resolve,
    when,
)
from session_graph.models import Session

AT_HELP = "Fork point: a position in the history (0 = first, -1 = newest) or a message id."


def _short(session_id: str | None) -> str:
    from session_graph.export import short_id

    return "-" if session_id is None else short_id(session_id)


@app.command("sessions")
def list_sessions(
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="Only sessions with this tag (repeat: all)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's sessions.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status (active, merged, deleted, ...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 50,
) -> None:
    """List sessions, oldest first."""
    with connect() as c:
        page = c.store.list_sessions(
            tags=tag or (),
            user_id=user,
            status=status,
            include_deleted=status == "deleted",
            limit=limit,
        )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("title / tags", min_width=12)
    table.add_column("msgs", justify="right")
    table.add_column("parent", no_wrap=True)
    table.add_column("status")
    table.add_column("created", no_wrap=True)
    for s in page.items:
        title = Text(s.title or "(untitled)", style="" if s.title else "dim")
        if s.tags:
            title.append("\n" + ", ".join(s.tags), style="dim")
        table.add_row(
            s.id,
            title,
            str(s.message_count),
            _short(s.parent_id),
            s.status,
            when(s.created_at, short=True),
        )
    out().print(table)
    more = " (more exist: raise --limit)" if page.next_cursor else ""
    out().print(f"{len(page.items)} session{'s' * (len(page.items) != 1)}{more}", style="dim")


def _describe(s: Session) -> Text:
    text = Text.assemble(("session ", "dim"), (s.id, "bold"), ("  status ", "dim"), s.status)
    if s.fork is not None:
        text.append("\nforked from ", style="dim")
        text.append(s.fork.parent_id)
        text.append(f" at #{s.fork.position}", style="cyan")
        if s.fork.reason:
            text.append(f" ({s.fork.reason})")
    if s.tags:
        text.append("\ntags ", style="dim")
        text.append(", ".join(s.tags))
    if s.metadata:
        text.append("\nmetadata ", style="dim")
        text.append(", ".join(f"{k}={v}" for k, v in s.metadata.items()))
    return text


@app.command()
def show(session: SessionArg) -> None:
    """Print a session's details and history (messages it shares with its parent dimmed)."""
    from session_graph import render

    with connect() as c:
        sid = resolve(c.store, session)
        out().print(_describe(c.store.get_session(sid)))
        out().print(render.history(c.store, sid))


@app.command()
def tree(session: SessionArg) -> None:
    """Print the fork tree that holds a session, from its root."""
    from session_graph import render

    with connect() as c:
        out().print(render.tree(c.store, resolve(c.store, session)))


@app.command()
def fork(
    session: SessionArg,
    at: Annotated[str | None, typer.Option(help=AT_HELP + " Default: newest.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why: kept on the fork edge.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the new session.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Id of the new session.")] = None,
) -> None:
    """Fork a session at a message: a new session sharing its history up to there."""
    with connect() as c:
        parent = resolve(c.store, session)
        new = c.store.fork(parent, parse_at(at), id=id, reason=reason, title=title)
    position = new.fork.position if new.fork else -1
    out().print(
        Text.assemble("forked ", (_short(parent), "bold"), f" at #{position}: ", (new.id, "green")),
        soft_wrap=True,
    )


@app.command()
def explore(
    session: SessionArg,
    strategy: Annotated[
        list[str], typer.Option("--strategy", "-s", help="A strategy name (repeat: one fork each).")
    ],
    at: Annotated[str | None, typer.Option(help=AT_HELP + " Default: newest.")] = None,
) -> None:
    """Fork a session once per strategy at the same message, in one transaction."""
    with connect() as c:
        parent = resolve(c.store, session)
        created = c.store.explore(parent, parse_at(at), list(strategy))
    table = Table("strategy", "session", box=box.SIMPLE_HEAD)
    for s in created:
        table.add_row(Text(s.fork.reason or "" if s.fork else ""), s.id)
    position = created[0].fork.position if created and created[0].fork else -1
    out().print(f"explored {_short(parent)} at #{position}:")
    out().print(table)


@app.command()
def compare(
    sessions: Annotated[
        list[str], typer.Argument(help="Two or more sessions of one tree. " + SESSION_HELP)
    ],
    best_by: Annotated[
        str | None,
        typer.Option(help="Name the best branch by a metric (cost, tokens, ...) or score."),
    ] = None,
) -> None:
    """Compare sessions of one tree: metrics side by side, then each one's diff to the first."""
    from session_graph import render
    from session_graph.compare import compare as compare_sessions

    with connect() as c:
        ids = [resolve(c.store, s) for s in sessions]
        result = compare_sessions(c.store, ids)
    out().print(render.comparison_table(result))
    if len(result.branches) > 1:
        out().print(render.diff_panel(result))
    if best_by is not None:
        best = result.best(best_by)
        out().print(
            Text.assemble(
                f"best by {best_by}: ",
                (best.session_id, "bold green"),
                f" ({best.title})" if best.title else "",
                f" = {best.metric(best_by)}",
            )
        )


@app.command()
def merge(
    fork_session: Annotated[str, typer.Argument(help="The fork. " + SESSION_HELP, metavar="FORK")],
    into: Annotated[
        str | None, typer.Option(help="Target session of the same tree (default: the parent).")
    ] = None,
) -> None:
    """Bring a fork's new messages into its parent (or another session of its tree)."""
    with connect() as c:
        fid = resolve(c.store, fork_session)
        target = None if into is None else resolve(c.store, into)
        result = c.store.merge(fid, target)
    what = {
        "fast-forward": "fast-forward: the target now ends where the fork ends",
        "copy": f"copied {len(result.copied)} message(s) onto the target",
        "up-to-date": "nothing to merge: the target holds the fork's messages already",
    }.get(result.mode, result.mode)
    out().print(
        Text.assemble(
            "merged ", (_short(result.fork_id), "bold"), " into ", (_short(result.into_id), "bold")
        )
    )
    out().print(what)


@app.command()
def delete(
    session: SessionArg,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also purge what nothing needs now.")
    ] = False,
) -> None:
    """Delete a session: it leaves listings and takes no writes; forks keep their history."""
    with connect() as c:
        sid = resolve(c.store, session)
        c.store.delete_session(sid)
        report = c.store.purge() if purge else None
    out().print(Text.assemble("deleted ", (sid, "bold")))
    if report is not None:
        out().print(f"purged {report.messages} message(s), {report.sessions} session node(s)")


@app.command()
def purge() -> None:
    """Remove messages and deleted sessions that no live session's history needs."""
    with connect() as c:
        report = c.store.purge()
    out().print(f"purged {report.messages} message(s), {report.sessions} session node(s)")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Text to look for (case-insensitive).")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
) -> None:
    """Find messages whose content contains TEXT, newest first."""
    from session_graph.render import ROLE_STYLES

    with connect() as c:
        found = c.store.search(text, limit=limit)
    table = Table("session", "#", "role", "content", "model", "cost", box=box.SIMPLE_HEAD)
    for m in found:
        content = Text(m.content.replace("\n", " "), overflow="ellipsis", no_wrap=True)
        content.highlight_words([text], style="bold yellow", case_sensitive=False)
        table.add_row(
            _short(m.session_id),
            str(m.position),
            Text(m.role, style=ROLE_STYLES.get(m.role, "")),
            content,
            m.model or "",
            "" if m.cost is None else money(m.cost),
        )
    out().print(table)
    out().print(f"{len(found)} message{'s' * (len(found) != 1)}", style="dim")
