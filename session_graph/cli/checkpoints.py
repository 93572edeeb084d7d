"""``session-graph checkpoints THREAD``: the checkpoint tree of a LangGraph thread.

A thread written by ``session_graph.integrations.langgraph`` is a session whose checkpoints
form a tree: each checkpoint under the one it continued from, so a branch made with
``update_state`` from an earlier checkpoint shows as a second child. A copy
(``copy_thread``) shows its source's checkpoints up to the copy, marked with the thread that
wrote them. Needs no LangGraph: what is shown is stored in plain properties.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from session_graph._sync.checkpoints import CheckpointNode, CheckpointRepository
from session_graph.cli.common import JsonOpt, app, connect, out, print_json, resolve
from session_graph.errors import ValidationError
from session_graph.export import mermaid_text

THREAD_HELP = (
    "LangGraph thread id (its session id), or a unique start or end of at least 6 characters of it."
)


def short(checkpoint_id: str) -> str:
    """The last 8 characters of a time-ordered UUID (v6/v7 ids share their first ones)."""
    try:
        parsed = uuid.UUID(checkpoint_id)
    except ValueError:
        return checkpoint_id if len(checkpoint_id) <= 40 else checkpoint_id[:39] + "…"
    return "…" + str(parsed)[-8:] if parsed.version in (1, 6, 7) else str(parsed)[:8]


def _walk(nodes: Iterable[CheckpointNode]) -> Iterable[CheckpointNode]:
    for node in nodes:
        yield node
        yield from _walk(node["children"])


def _when(stamp: str | None) -> str:
    if not stamp:
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def _label(node: CheckpointNode, thread_id: str) -> Text:
    label = Text()
    label.append(short(node["id"]), style="bold")
    if node["step"] is not None:
        label.append(f"  step {node['step']}", style="cyan")
    if node["source"]:
        label.append(f"  {node['source']}")
    label.append(f"  {_when(node['created_at'])}", style="dim")
    if node["thread_id"] != thread_id:
        label.append(f"  (from thread {node['thread_id']})", style="magenta")
    return label


def rich_tree(thread_id: str, roots: list[CheckpointNode]) -> Tree:
    """The checkpoint tree for a terminal: one branch per namespace when there are several."""
    count = sum(1 for _ in _walk(roots))
    top = Tree(
        Text.assemble(("thread ", "dim"), (thread_id, "bold"), (f"  {count} checkpoints", "dim")),
        guide_style="bright_black",
    )
    namespaces = sorted({r["namespace"] for r in roots})

    def add(parent: Tree, node: CheckpointNode) -> None:
        branch = parent.add(_label(node, thread_id))
        for child in node["children"]:
            add(branch, child)

    for ns in namespaces:
        parent = top if namespaces == [""] else top.add(Text(f"namespace {ns!r}", style="italic"))
        for root in roots:
            if root["namespace"] == ns:
                add(parent, root)
    return top


def mermaid(thread_id: str, roots: list[CheckpointNode]) -> str:
    """The checkpoint tree as a Mermaid flowchart, parents above their children."""
    lines = ["graph TD", f'    thread["thread {mermaid_text(thread_id)}"]']
    names: dict[tuple[str, str], str] = {}
    for node in _walk(roots):
        name = names[(node["namespace"], node["id"])] = f"c{len(names)}"
        text = f"{short(node['id'])} step {node['step']} {node['source'] or ''}".strip()
        if node["namespace"]:
            text += f" ns {node['namespace']}"
        if node["thread_id"] != thread_id:
            text += f" from {node['thread_id']}"
        lines.append(f'    {name}["{mermaid_text(text)}"]')
    for node in _walk(roots):
        name = names[(node["namespace"], node["id"])]
        for child in node["children"]:
            lines.append(f"    {name} --> {names[(child['namespace'], child['id'])]}")
    lines.extend(f"    thread --> {names[(r['namespace'], r['id'])]}" for r in roots)
    return "\n".join(lines)


@app.command()
def checkpoints(
    thread: Annotated[str, typer.Argument(help=THREAD_HELP, metavar="THREAD", show_default=False)],
    json_: JsonOpt = False,
    mermaid_: Annotated[
        bool, typer.Option("--mermaid", help="Print the tree as a Mermaid flowchart.")
    ] = False,
) -> None:
    """Print the checkpoint tree of a LangGraph thread: each checkpoint under its parent,
    with its step, source and time; branches (update_state from an earlier checkpoint) show
    as siblings, a copy's inherited checkpoints name the thread that wrote them.

    --json prints {"thread_id", "checkpoint_count", "roots": [{"id", "namespace",
    "parent_id", "step", "source", "run_id", "created_at", "thread_id", "children": [...]}]}.
    """
    if json_ and mermaid_:
        raise ValidationError("--json and --mermaid exclude each other: pick one")
    with connect() as c:
        thread_id = resolve(c.store, thread)
        roots = CheckpointRepository(c.store).tree(thread_id)
    if json_:
        count = sum(1 for _ in _walk(roots))
        print_json({"thread_id": thread_id, "checkpoint_count": count, "roots": roots})
    elif mermaid_:
        typer.echo(mermaid(thread_id, roots))
    elif not roots:
        out().print(Text.assemble("thread ", (thread_id, "bold"), " has no checkpoints"))
    else:
        out().print(rich_tree(thread_id, roots))
