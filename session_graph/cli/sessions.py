"""Commands on sessions: list, show, tree, fork, explore, compare, merge, delete, purge, search."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from session_graph.cli.common import (
    SESSION_HELP,
    JsonOpt,
    SessionArg,
    app,
    connect,
    money,
    out,
    parse_at,
    print_json,
    resolve,
    when,
)
from session_graph.errors import ValidationError
from session_graph.models import Session
from session_graph.store import SessionStore

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
    json_: JsonOpt = False,
) -> None:
    """List sessions, oldest first (times in local time; --json: UTC)."""
    with connect() as c:
        page = c.store.list_sessions(
            tags=tag or (),
            user_id=user,
            status=status,
            include_deleted=status == "deleted",
            limit=limit,
        )
    if json_:
        print_json(page.model_dump(mode="json"))
        return
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
            when(s.created_at),
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
def show(session: SessionArg, json_: JsonOpt = False) -> None:
    """Print a session's details and history (messages it shares with its parent dimmed).

    --json prints {"session": ..., "messages": [...]}.
    """
    from session_graph import render

    with connect() as c:
        sid = resolve(c.store, session)
        if json_:
            print_json(
                {
                    "session": c.store.get_session(sid).model_dump(mode="json"),
                    "messages": [m.model_dump(mode="json") for m in c.store.messages(sid)],
                }
            )
            return
        out().print(_describe(c.store.get_session(sid)))
        out().print(render.history(c.store, sid))


def tree_document(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The fork tree holding a session as nested objects, from its root."""
    nodes: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] | None = None
    for s in store.tree(session_id):
        position = s.fork.position if s.fork else None
        node = {
            "id": s.id,
            "title": s.title,
            "status": s.status,
            "tags": list(s.tags),
            "created_at": s.model_dump(mode="json")["created_at"],
            "parent_id": s.parent_id,
            "fork_position": position,
            "fork_reason": s.fork.reason if s.fork else None,
            "message_count": s.message_count,
            "own_message_count": s.message_count - (0 if position is None else position + 1),
            "children": [],
        }
        nodes[s.id] = node
        parent = nodes.get(s.parent_id) if s.parent_id else None
        if parent is not None:
            parent["children"].append(node)
        elif top is None:
            top = node
        else:  # its parent is no longer stored: under the root, keeping its parent_id
            top["children"].append(node)
    assert top is not None  # a tree always holds its root
    return top


@app.command()
def tree(session: SessionArg, json_: JsonOpt = False) -> None:
    """Print the fork tree that holds a session, from its root.

    --json prints the root as {"id", "title", "status", "fork_position", "message_count",
    ..., "children": [...]}, nested.
    """
    from session_graph import render

    with connect() as c:
        sid = resolve(c.store, session)
        if json_:
            print_json(tree_document(c.store, sid))
            return
        out().print(render.tree(c.store, sid))


@app.command()
def fork(
    session: SessionArg,
    at: Annotated[str | None, typer.Option(help=AT_HELP + " Default: newest.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why: kept on the fork edge.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the new session.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Id of the new session.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Fork a session at a message: a new session sharing its history up to there."""
    with connect() as c:
        parent = resolve(c.store, session)
        new = c.store.fork(parent, parse_at(at), id=id, reason=reason, title=title)
    if json_:
        print_json(new.model_dump(mode="json"))
        return
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
    json_: JsonOpt = False,
) -> None:
    """Fork a session once per strategy at the same message, in one transaction."""
    with connect() as c:
        parent = resolve(c.store, session)
        created = c.store.explore(parent, parse_at(at), list(strategy))
    if json_:
        print_json([s.model_dump(mode="json") for s in created])
        return
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
    json_: JsonOpt = False,
) -> None:
    """Compare sessions of one tree: metrics side by side, then each one's diff to the first.

    --json prints the comparison (fork_point, branches with their metrics, messages and
    diff) and, with --best-by, "best": {"by", "session_id", "value"}.
    """
    from session_graph import render
    from session_graph.compare import compare as compare_sessions

    with connect() as c:
        ids = [resolve(c.store, s) for s in sessions]
        result = compare_sessions(c.store, ids)
    best = None if best_by is None else result.best(best_by)  # a bad metric: before output
    if json_:
        document = result.model_dump(mode="json")
        if best_by is not None and best is not None:
            document["best"] = {
                "by": best_by,
                "session_id": best.session_id,
                "value": best.metric(best_by),
            }
        print_json(document)
        return
    out().print(render.comparison_table(result))
    if len(result.branches) > 1:
        out().print(render.diff_panel(result))
    if best_by is not None and best is not None:
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
        str | None,
        typer.Option(
            help="Target session of the same tree (default: the parent); id or a unique "
            "start or end of one, at least 6 characters."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Bring a fork's new messages into its parent (or another session of its tree)."""
    with connect() as c:
        fid = resolve(c.store, fork_session)
        target = None if into is None else resolve(c.store, into)
        result = c.store.merge(fid, target)
    if json_:
        print_json(dataclasses.asdict(result))
        return
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
    json_: JsonOpt = False,
) -> None:
    """Delete a session: it leaves listings and takes no writes; forks keep their history."""
    with connect() as c:
        sid = resolve(c.store, session)
        c.store.delete_session(sid)
        report = c.store.purge() if purge else None
    if json_:
        purged = None if report is None else dataclasses.asdict(report)
        print_json({"deleted": sid, "purged": purged})
        return
    out().print(Text.assemble("deleted ", (sid, "bold")))
    if report is not None:
        out().print(f"purged {report.messages} message(s), {report.sessions} session node(s)")


@app.command()
def purge(json_: JsonOpt = False) -> None:
    """Remove messages and deleted sessions that no live session's history needs."""
    with connect() as c:
        report = c.store.purge()
    if json_:
        print_json(dataclasses.asdict(report))
        return
    out().print(f"purged {report.messages} message(s), {report.sessions} session node(s)")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Text to look for (case-insensitive).")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 20,
    include_deleted: Annotated[
        bool,
        typer.Option(
            "--include-deleted", help="Also messages of deleted sessions (marked deleted)."
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Find messages whose content contains TEXT, newest first, each shown around its match.

    A message shows under the session that wrote it (forks made after it share it). --json
    prints a list of messages, each with "session_deleted".
    """
    from session_graph.render import ROLE_STYLES, snippet

    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("search text is not valid UTF-8") from None
    with connect() as c:
        found = c.store.search(text, limit=limit, include_deleted=include_deleted)
        deleted = _deleted_sessions(c.store, found) if include_deleted else set()
    if json_:
        print_json(
            [
                {**m.model_dump(mode="json"), "session_deleted": m.session_id in deleted}
                for m in found
            ]
        )
        return
    table = Table("session", "#", "role", "content", "model", "cost", box=box.SIMPLE_HEAD)
    for m in found:
        owner = Text(_short(m.session_id), no_wrap=True)
        if m.session_id in deleted:
            owner.append(" (deleted)", style="red")
        table.add_row(
            owner,
            str(m.position),
            Text(m.role, style=ROLE_STYLES.get(m.role, "")),
            snippet(m.content, text),
            m.model or "",
            "" if m.cost is None else money(m.cost),
        )
    out().print(table)
    out().print(f"{len(found)} message{'s' * (len(found) != 1)}", style="dim")


def _deleted_sessions(store: SessionStore, found: list[Any]) -> set[str]:
    """The deleted sessions among the hits' owners (one read per session, not per hit)."""
    from session_graph.errors import SessionNotFoundError

    status: dict[str, bool] = {}
    for m in found:
        if m.session_id not in status:
            try:
                status[m.session_id] = store.get_session(m.session_id).deleted
            except SessionNotFoundError:  # purged meanwhile
                status[m.session_id] = True
    return {sid for sid, gone in status.items() if gone}
