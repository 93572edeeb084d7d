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

from session_graph.cli.common import SessionArg, app, connect, load_settings, out, resolve
from session_graph.errors import ValidationError

STDOUT = "-"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
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


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"--param takes name=value (or name:=JSON), got {pair!r}")
        if name.endswith(":"):
            name = name[:-1]
            try:
                params[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"--param {name}:= needs JSON: {exc}") from None
        else:
            params[name] = value
        if name == "tenant":
            raise ValidationError("tenant is set by SESSION_GRAPH_TENANT, not --param")
        if not name.isidentifier():
            raise ValidationError(f"--param name {name!r} is not a parameter name")
    return params


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
        typer.Option("--param", "-p", help="Parameter as name=value (text) or name:=JSON."),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", "-l", help="List the saved queries.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="With --list: the writing ones too.")] = False,
) -> None:
    """Run a saved read-only Cypher query from cypher/*.cypher, scoped to the tenant."""
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
        rows = c.store.backend.run_saved(name, **params)
    columns = list(rows[0]) if rows else []
    table = Table(*columns, box=box.SIMPLE_HEAD, title=Text(name, style="bold"))
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in columns))
    if columns:
        out().print(table)
    out().print(f"{len(rows)} row{'s' * (len(rows) != 1)}", style="dim")
