"""Rich renderables for terminals: the fork tree, a comparison table, its diff, a history.

User data (ids, titles, content) always goes into ``rich.text.Text`` as plain text, never
through console markup, so a title such as ``[bold]`` or ``[/]`` prints as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from session_graph.compare import ALIASES, METRICS, BranchMetrics, Comparison
from session_graph.export import TreeNode, own_messages, short_id, walk_tree
from session_graph.models import DELETED, Message
from session_graph.store import SessionStore

ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green", "tool": "yellow"}
NONE = "-"  # shown for a metric a branch lacks
STATUS_STYLES = {"active": "green", DELETED: "red strike", "merged": "magenta", "purged": "dim"}


def tree(store: SessionStore, session_id: str, *, with_metrics: bool = True) -> Tree:
    """The whole fork tree holding ``session_id``, from its root; that session is highlighted.

    Each node shows its id, title, history length and own (post-fork) message count, status
    and, for forks, the position it left its parent at (``@3``). ``with_metrics`` also
    fetches each session's own messages to show their tokens (a few reads per session).
    """
    nodes = walk_tree(store, session_id)
    built: dict[str, Tree] = {}
    top: Tree | None = None
    for node in nodes:
        tokens = _own_tokens(store, node) if with_metrics else None
        label = _node_label(node, tokens, focus=node.session_id == session_id)
        if node.parent_id is None or node.parent_id not in built:
            built[node.session_id] = top = Tree(label, guide_style="bright_black")
        else:
            built[node.session_id] = built[node.parent_id].add(label)
    assert top is not None  # walk_tree always yields the root
    return top


def _own_tokens(store: SessionStore, node: TreeNode) -> int | None:
    counted = [
        (m.input_tokens or 0) + (m.output_tokens or 0)
        for m in own_messages(store, node)
        if m.input_tokens is not None or m.output_tokens is not None
    ]
    return sum(counted) if counted else None


def _node_label(node: TreeNode, tokens: int | None, *, focus: bool) -> Text:
    label = Text()
    if node.fork_position is not None:
        label.append(f"@{node.fork_position} ", style="cyan")
    label.append(short_id(node.session_id), style="bold reverse" if focus else "bold")
    label.append(" ")
    label.append(node.title if node.title is not None else "(untitled)", style="italic")
    counts = f"  {node.length} msgs"
    if node.parent_id is not None:
        counts += f" (+{node.own_count} own)"
    label.append(counts, style="dim")
    if tokens is not None:
        label.append(f"  {tokens:,} tok", style="dim")
    label.append("  ")
    label.append(node.status, style=STATUS_STYLES.get(node.status, "yellow"))
    if focus:
        label.append("  ◀", style="bold yellow")
    return label


# -- comparisons -----------------------------------------------------------------------------


def _count(value: int | float | None) -> str:
    return NONE if value is None else f"{value:,}"


def _money(value: int | float | None) -> str:
    if value is None:
        return NONE
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"${text}"


def _seconds(value: int | float | None) -> str:
    if value is None:
        return NONE
    minutes, seconds = divmod(float(value), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}h {minutes}m {seconds:.0f}s"
    return f"{minutes}m {seconds:.1f}s" if minutes else f"{seconds:.3g}s"


def _score(value: int | float | None) -> str:
    return NONE if value is None else f"{value:g}"


# (row label, metric name for BranchMetrics.metric, formatter)
_ROWS: list[tuple[str, str, Callable[[int | float | None], str]]] = [
    ("messages (history)", "history_messages", _count),
    ("messages (diverging)", "messages", _count),
    ("input tokens", "input_tokens", _count),
    ("output tokens", "output_tokens", _count),
    ("tokens", "tokens", _count),
    ("tokens (history)", "history_tokens", _count),
    ("cost", "cost", _money),
    ("cost (history)", "history_cost", _money),
    ("wall time", "wall_time", _seconds),
]


def _cells(cmp: Comparison, by: str, fmt: Callable[[int | float | None], str]) -> list[Text]:
    """One row; the best value(s) in bold green when at least two branches differ."""
    values = [b.metric(by) for b in cmp.branches]
    present = [v for v in values if v is not None]
    best: int | float | None = None
    if len(present) >= 2 and len(set(present)) > 1:
        name = ALIASES.get(by, by)
        highest = METRICS[name][1] if name in METRICS else True
        best = max(present) if highest else min(present)
    return [Text(fmt(v), style="bold green" if v is not None and v == best else "") for v in values]


def _header(b: BranchMetrics) -> Text:
    text = Text(short_id(b.session_id), style="bold")
    if b.title:
        text.append("\n" + b.title, style="italic")
    return text


def comparison_table(cmp: Comparison) -> Table:
    """Branches side by side (a column each), one row per metric; best values in green."""
    point = cmp.fork_point
    caption = (
        "no shared messages" if point is None else f"shared history: messages 0-{point.position}"
    )
    table = Table(title="Comparison", caption=caption, box=box.SIMPLE_HEAVY, show_lines=False)
    table.add_column("metric", style="bold")
    for b in cmp.branches:
        table.add_column(_header(b), justify="right")
    table.add_row(
        "status", *[Text(b.status, style=STATUS_STYLES.get(b.status, "")) for b in cmp.branches]
    )
    for label, by, fmt in _ROWS:
        table.add_row(label, *_cells(cmp, by, fmt))
    table.add_row("providers", *[Text(", ".join(b.providers) or NONE) for b in cmp.branches])
    table.add_row("models", *[Text(", ".join(b.models) or NONE) for b in cmp.branches])
    for key in cmp.score_keys:
        table.add_row(Text(key, style="bold blue"), *_cells(cmp, "score:" + key, _score))
    return table


_DIFF_STYLES = (
    ("+++", "bold green"),
    ("---", "bold red"),
    ("@@", "cyan"),
    ("+", "green"),
    ("-", "red"),
)


def diff_panel(cmp: Comparison) -> Panel:
    """The unified diff of the first branch's diverging part against each other branch."""
    first = cmp.branches[0].session_id
    parts: list[RenderableType] = []
    for b in cmp.branches[1:]:
        if not b.diff:
            parts.append(Text(f"{short_id(b.session_id)}: same diverging messages", style="dim"))
            continue
        lines = [
            Text(line, style=next((s for pre, s in _DIFF_STYLES if line.startswith(pre)), ""))
            for line in b.diff.split("\n")
        ]
        parts.append(Text("\n").join(lines))
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [Text(""), part] if spaced else [part]
    return Panel(Group(*spaced), title=Text(f"diff against {short_id(first)}"), border_style="blue")


# -- histories -------------------------------------------------------------------------------


def history(store: SessionStore, session_id: str) -> Table:
    """A session's messages, role-coloured; those shared with an ancestor are dimmed."""
    session = store.get_session(session_id)
    messages = store.messages(session_id)
    title = Text(short_id(session_id), style="bold")
    if session.title:
        title.append(f"  {session.title}", style="italic")
    table = Table(title=title, box=box.SIMPLE, expand=True, show_header=True)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("content", ratio=1)
    table.add_column("info", style="dim")
    for m in messages:
        shared = m.session_id != session_id
        table.add_row(
            str(m.position),
            Text(m.role, style=ROLE_STYLES.get(m.role, "") + (" dim" if shared else " bold")),
            Text(m.content, style="dim" if shared else ""),
            Text(_info(m, session_id)),
        )
    return table


def snippet(content: str, needle: str, *, around: int = 30) -> Text:
    """``content`` on one line, cut to ``around`` characters either side of the first match of
    ``needle`` (case-insensitive; ``…`` marks a cut), every match in it highlighted.

    Without a match (the database folds case a little differently) it shows the start.
    """
    flat = re.sub(r"\s", " ", content)  # one character for one: match offsets stay valid
    pattern = re.compile(re.escape(needle), re.IGNORECASE) if needle else None
    found = pattern.search(content) if pattern else None
    lo, hi = (found.start(), found.end()) if found else (0, 0)
    start = max(0, lo - around)
    stop = min(len(flat), (hi if found else 0) + around * (1 if found else 2))
    text = Text(no_wrap=False)
    if start > 0:
        text.append("…", style="dim")
    text.append(flat[start:stop])
    if stop < len(flat):
        text.append("…", style="dim")
    if pattern is not None and found:
        flat_pattern = re.compile(re.escape(re.sub(r"\s", " ", needle)), re.IGNORECASE)
        text.highlight_regex(flat_pattern, style="bold yellow")
    return text


def _info(m: Message, session_id: str) -> str:
    bits = [b for b in (m.model, m.tool_name) if b]
    if m.kind != "message":
        bits.insert(0, m.kind)
    if m.tool_calls:
        bits.append("calls " + ", ".join(c.name for c in m.tool_calls))
    if m.input_tokens is not None or m.output_tokens is not None:
        bits.append(f"{m.input_tokens or 0}/{m.output_tokens or 0} tok")
    if m.cost is not None:
        bits.append(_money(m.cost))
    if m.session_id != session_id:
        bits.append(f"from {short_id(m.session_id)}")
    return " · ".join(bits)


__all__ = ["comparison_table", "diff_panel", "history", "snippet", "tree"]
