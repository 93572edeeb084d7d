"""Commands that get data out: ``export`` (files) and ``query`` (saved Cypher)."""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from session_graph.cli.common import (
    SessionArg,
    app,
    connect,
    load_settings,
    out,
    parse_json,
    resolve,
)
from session_graph.errors import ValidationError
from session_graph.models import MAX_INT
from session_graph.store import SessionStore

STDOUT = "-"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Parameters that name a session: a short id given to them is resolved as for SESSION
# arguments. By name, and any the query matches as a session node's id ({id: $x}).
_SESSION_PARAMS = frozenset({"id", "session_id", "session", "root", "parent_id", "fork_id"})
_SESSION_ID_PARAM = re.compile(r"\(\s*\w*\s*:\s*\w*Session\s*\{[^}]*\bid\s*:\s*\$(\w+)")
_MAX_DEPTH = 32
# Saved queries the library runs in write transactions; `query` only reads.
_WRITES = re.compile(r"\b(CREATE|MERGE|DELETE|SET|REMOVE|FOREACH)\b", re.IGNORECASE)


class Format(str, Enum):
    mermaid = "mermaid"
    graphml = "graphml"
    html = "html"
    json = "json"


SUFFIXES = {
    Format.mermaid: ".mmd",
    Format.graphml: ".graphml",
    Format.html: ".html",
    Format.json: ".json",
}


@app.command()
def export(
    session: SessionArg,
    format: Annotated[Format, typer.Option("--format", "-f", help="What to write.")] = Format.html,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory for the file (default: SESSION_GRAPH_HOME/exports); - for stdout.",
        ),
    ] = None,
) -> None:
    """Export a session: its fork tree as Mermaid, GraphML or HTML, or its messages as JSON."""
    from session_graph import export as exports

    with connect() as c:
        sid = resolve(c.store, session)
        text: str | None = None
        if format is Format.mermaid:
            text = exports.to_mermaid(c.store, sid)
        elif format is Format.html:
            text = exports.to_html(c.store, sid)
        elif format is Format.json:
            messages = [m.model_dump(mode="json") for m in c.store.messages(sid)]
            text = json.dumps(messages, ensure_ascii=False, indent=2) + "\n"
        if out_dir == STDOUT:
            if text is None:  # graphml: networkx writes files only
                with tempfile.TemporaryDirectory() as tmp:
                    text = exports.to_graphml(c.store, sid, Path(tmp) / "tree.graphml").read_text(
                        encoding="utf-8"
                    )
            typer.echo(text, nl=not text.endswith("\n"))
            return
        directory = Path(out_dir) if out_dir else load_settings().home / "exports"
        directory.mkdir(parents=True, exist_ok=True)
        path = exports.safe_export_path(directory, sid, SUFFIXES[format])
        if text is None:
            exports.to_graphml(c.store, sid, path)
        else:
            path.write_text(text, encoding="utf-8")
    out().print(
        Text.assemble("wrote ", (str(path), "green"), f" ({format.value} of {sid})"),
        soft_wrap=True,
    )


def _check_json(name: str, value: Any) -> None:
    """What Neo4j can take as a parameter: integers within signed 64 bits, text that encodes
    as UTF-8, nesting at most 32 levels."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        if isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                raise ValidationError(
                    f"--param {name}: {item} is outside the signed 64-bit integers Neo4j stores"
                )
        elif isinstance(item, str):
            _check_text(name, item)
        elif isinstance(item, (list, dict)):
            if depth >= _MAX_DEPTH:
                raise ValidationError(f"--param {name}: nests deeper than {_MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _check_text(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"--param {name}: not valid UTF-8 text") from None


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"--param takes name=value (or name:=JSON), got {pair!r}")
        if name.endswith(":"):
            name = name[:-1]
            params[name] = parse_json(value, f"--param {name}:=")
        else:
            params[name] = value
        if name == "tenant":
            raise ValidationError("tenant is set by SESSION_GRAPH_TENANT, not --param")
        if not name.isidentifier():
            raise ValidationError(f"--param name {name!r} is not a parameter name")
        _check_json(name, params[name])
    return params


def session_params(text: str) -> set[str]:
    """The parameters of a saved query that name a session (their short ids are resolved)."""
    names = set(_PARAM.findall(text))
    named = {n for n in names if n in _SESSION_PARAMS or n.endswith("_session")}
    return named | set(_SESSION_ID_PARAM.findall(text))


def _resolve_params(store: SessionStore, params: dict[str, Any], names: set[str]) -> None:
    for name in sorted(names & set(params)):
        if isinstance(params[name], str):
            params[name] = resolve(store, params[name])


def _cell(value: Any) -> Text:
    if isinstance(value, (dict, list)):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    return Text("null" if value is None else str(value))


def _list_queries(show_all: bool) -> None:
    from session_graph import queries

    table = Table("name", "parameters", "description", "file", box=box.SIMPLE_HEAD)
    hidden = 0
    for name, q in sorted(queries.load_all().items()):
        writes = bool(_WRITES.search(q.text))
        if writes and not show_all:
            hidden += 1
            continue
        params = sorted(set(_PARAM.findall(q.text)) - {"tenant"})
        doc = Text.assemble(("(writes: library only) ", "dim") if writes else "", q.doc or "")
        table.add_row(Text(name, style="bold"), ", ".join(params), doc, q.file)
    out().print(table)
    if hidden:
        out().print(
            f"{hidden} writing queries the library uses are not listed (--all)", style="dim"
        )


@app.command()
def query(
    name: Annotated[
        str | None, typer.Argument(help="Saved query name (see --list).", metavar="NAME")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Parameter as name=value (text) or name:=JSON (integers: signed 64-bit).",
        ),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", "-l", help="List the saved queries.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="With --list: the writing ones too.")] = False,
) -> None:
    """Run a saved read-only Cypher query from cypher/*.cypher, scoped to the tenant.

    Parameters that name a session (id, session_id, session, root, parent_id, fork_id,
    *_session, and any the query matches as a Session's id) take what SESSION arguments
    take: a full id, or a unique start or end of one of at least 6 characters (…1a2b3c4d).
    """
    from session_graph import queries

    if list_:
        _list_queries(all_)
        return
    if name is None:
        raise typer.BadParameter("give a query name, or --list to see them", param_hint="NAME")
    known = queries.load_all()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValidationError(f"no saved query {name!r}; {hint}(`session-graph query --list`)")
    saved = known[name]
    if _WRITES.search(saved.text):
        raise ValidationError(f"query {name!r} writes; the library runs it, `query` only reads")
    params = _parse_params(param or [])
    missing = sorted(set(_PARAM.findall(saved.text)) - {"tenant"} - set(params))
    if missing:
        raise ValidationError(
            f"query {name!r} needs " + ", ".join(f"--param {m}=..." for m in missing)
        )
    with connect() as c:
        _resolve_params(c.store, params, session_params(saved.text))
        rows = c.store.backend.run_saved(name, **params)
    columns = list(rows[0]) if rows else []
    table = Table(*columns, box=box.SIMPLE_HEAD, title=Text(name, style="bold"))
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in columns))
    if columns:
        out().print(table)
    out().print(f"{len(rows)} row{'s' * (len(rows) != 1)}", style="dim")
