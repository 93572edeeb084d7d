"""Exports of the fork tree that holds a session: Mermaid, GraphML and a self-contained HTML page.

Session ids and titles are arbitrary printable text (quotes, markup, Cypher, unicode), so
every format escapes them its own way: Mermaid gets generated node ids and entity-coded
labels, GraphML gets XML-safe text, and the HTML page carries all user data as escaped JSON
that its script renders with ``textContent`` only. ``safe_export_path`` turns an id into a
file name that stays inside a directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx

from session_graph.errors import ValidationError
from session_graph.ids import validate_name
from session_graph.models import DELETED, Message
from session_graph.store import SessionStore


@dataclass(frozen=True)
class TreeNode:
    """A session of a tree as the exports see it; ``own_start`` is where its own part begins."""

    session_id: str
    parent_id: str | None
    depth: int
    title: str | None
    status: str
    created_at: datetime | None
    length: int
    fork_position: int | None
    placeholder: bool  # a parent no longer stored (kept for exports of older data)
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    fork_message_id: str | None = None
    fork_reason: str | None = None
    fork_created_at: datetime | None = None

    @property
    def own_start(self) -> int:
        return 0 if self.fork_position is None else self.fork_position + 1

    @property
    def own_count(self) -> int:
        return max(0, self.length - self.own_start)


def walk_tree(store: SessionStore, session_id: str) -> list[TreeNode]:
    """The tree holding ``session_id``, from its root, depth first, children oldest first."""
    sessions = store.tree(session_id)
    depth: dict[str, int] = {}
    out: list[TreeNode] = []
    for s in sessions:
        parent = s.fork.parent_id if s.fork else None
        depth[s.id] = 0 if parent is None else depth.get(parent, 0) + 1
        out.append(TreeNode(
            session_id=s.id, parent_id=parent, depth=depth[s.id], title=s.title,
            status=s.status, created_at=s.created_at, length=s.message_count,
            fork_position=None if s.fork is None else s.fork.position,
            placeholder=False, user_id=s.user_id, tags=s.tags,
            fork_message_id=s.fork.message_id if s.fork else None,
            fork_reason=s.fork.reason if s.fork else None,
            fork_created_at=s.fork.created_at if s.fork else None,
        ))  # fmt: skip
    return out


def own_messages(store: SessionStore, node: TreeNode) -> list[Message]:
    """The messages of a session after its fork point (all of them for a root)."""
    if node.placeholder or node.own_count == 0:
        return []
    return store.messages(node.session_id, node.own_start, node.length)


def short_id(session_id: str) -> str:
    """The first 8 characters of a UUID; other ids as they are (capped at 40 characters).

    A UUIDv7 (what session_graph generates) starts with its timestamp, so sessions made in
    the same minute share their first 8 characters: for those the last 8 (random) are shown.
    """
    try:
        parsed = uuid.UUID(session_id)
    except ValueError:
        return session_id if len(session_id) <= 40 else session_id[:39] + "…"
    canonical = str(parsed)  # also for the braced and urn: spellings UUID() accepts
    return "…" + canonical[-8:] if parsed.version == 7 else canonical[:8]


# -- Mermaid ---------------------------------------------------------------------------------

# Left as they are in labels; everything else becomes a Mermaid entity code (#NNN;), so no
# id or title can close the quoted label, start a comment, or inject markup.
_MERMAID_SAFE = frozenset(" .,:-_()/'+=?!*")


def mermaid_text(text: str) -> str:
    """``text`` made safe inside a double-quoted Mermaid label."""
    return "".join(
        ch if (ch.isalnum() and ch.isprintable()) or ch in _MERMAID_SAFE else f"#{ord(ch)};"
        for ch in text
    )


def to_mermaid(store: SessionStore, session_id: str) -> str:
    """A ``flowchart TD`` of the tree holding the session (the session itself outlined).

    Nodes are named ``s0, s1, ...`` in tree order, because any session id (spaces, quotes,
    ``end``, unicode) would otherwise need escaping Mermaid does not offer for node ids.
    """
    nodes = walk_tree(store, session_id)
    names = {n.session_id: f"s{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart TD"]
    for n in nodes:
        title = n.title if n.title is not None else "(untitled)"
        if len(title) > 60:
            title = title[:59] + "…"
        counts = f"{n.length} msgs" + ("" if n.parent_id is None else f", {n.own_count} own")
        detail = f"{short_id(n.session_id)} · {counts}"
        if n.status != "active":
            detail += f" · {n.status}"
        lines.append(
            f'    {names[n.session_id]}["{mermaid_text(title)}<br/>{mermaid_text(detail)}"]'
        )
    for n in nodes:
        if n.parent_id is not None:
            lines.append(
                f'    {names[n.parent_id]} -->|"@{n.fork_position}"| {names[n.session_id]}'
            )
    lines += [
        "    classDef deleted stroke-dasharray: 5 5,color:#888888",
        "    classDef merged fill:#efe6ff,stroke:#7a4fd6",
        "    classDef focus stroke:#d97706,stroke-width:3px",
    ]
    for status in (DELETED, "merged"):
        marked = [names[n.session_id] for n in nodes if n.status == status]
        if marked:
            lines.append(f"    class {','.join(marked)} {status}")
    lines.append(f"    class {names[session_id]} focus")
    return "\n".join(lines) + "\n"


# -- GraphML ---------------------------------------------------------------------------------

_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """Characters XML 1.0 cannot hold (controls in titles, U+FFFE) become U+FFFD."""
    return _XML_BAD.sub("\ufffd", text)


def _plain(attrs: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """Only GraphML-safe values; None is left out, datetimes become ISO text."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in attrs.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        if isinstance(value, str):
            out[key] = _xml_text(value)
        elif isinstance(value, (bool, int, float)):
            out[key] = value
    return out


def to_graphml(store: SessionStore, session_id: str, path: str | Path) -> Path:
    """Write the tree holding the session as GraphML (nodes: sessions, edges: parent -> fork).

    Raises:
        ValidationError: a session id holds a character XML cannot represent (U+FFFE/U+FFFF).
    """
    graph = nx.DiGraph()
    for n in walk_tree(store, session_id):
        if _XML_BAD.search(n.session_id):
            raise ValidationError(f"session id {n.session_id!r} cannot be written as XML")
        graph.add_node(n.session_id, **_plain({
            "title": n.title, "status": n.status, "created_at": n.created_at,
            "messages": n.length, "own_messages": n.own_count, "depth": n.depth,
            "user_id": n.user_id, "tags": json.dumps(list(n.tags), ensure_ascii=False),
            "focus": n.session_id == session_id,
        }))  # fmt: skip
        if n.parent_id is not None:
            graph.add_edge(n.parent_id, n.session_id, **_plain({
                "position": n.fork_position, "message_id": n.fork_message_id,
                "reason": n.fork_reason, "created_at": n.fork_created_at,
            }))  # fmt: skip
    target = Path(path)
    nx.write_graphml(graph, target)
    return target


# -- HTML ------------------------------------------------------------------------------------

_DATA_MARK = "__SESSION_GRAPH_DATA__"


def _json_for_script(payload: Any) -> str:
    """JSON that cannot end its <script> element: no raw ``<``, ``>`` or ``&`` at all."""
    text = json.dumps(payload, ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "position": m.position, "role": m.role, "content": m.content,
        "created_at": m.created_at.isoformat(), "provider": m.provider, "model": m.model,
        "input_tokens": m.input_tokens, "output_tokens": m.output_tokens, "cost": m.cost,
        "tool_name": m.tool_name, "kind": m.kind,
        "tool_calls": [c.name for c in m.tool_calls],
    }  # fmt: skip


def tree_payload(store: SessionStore, session_id: str) -> dict[str, Any]:
    """What the HTML page shows: every session of the tree with its own messages.

    A fork's shared history is normally shown by the sessions above it. Where it is not (the
    parent was deleted and purged, or popped or cleared those messages since the fork), the
    fork carries them as ``inherited``, so every message of every history is on the page once
    along its path.
    """
    nodes = []
    shown: dict[str, set[str]] = {}  # message ids shown in a session's box
    parents: dict[str, str | None] = {}
    for n in walk_tree(store, session_id):
        messages = own_messages(store, n)
        inherited: list[Message] = []
        if n.parent_id is not None and n.own_start > 0:
            above = _shown_above(n.parent_id, shown, parents)
            inherited = [
                m for m in store.messages(n.session_id, 0, n.own_start) if m.id not in above
            ]
        parents[n.session_id] = n.parent_id
        shown[n.session_id] = {m.id for m in (*inherited, *messages)}
        tokens = [(m.input_tokens or 0) + (m.output_tokens or 0) for m in messages
                  if m.input_tokens is not None or m.output_tokens is not None]  # fmt: skip
        nodes.append({
            "id": n.session_id, "short": short_id(n.session_id), "parent": n.parent_id,
            "title": n.title, "status": n.status, "length": n.length,
            "fork_position": n.fork_position, "own_start": n.own_start,
            "created_at": n.created_at.isoformat() if n.created_at else None,
            "tokens": sum(tokens) if tokens else None,
            "messages": [_message_json(m) for m in messages],
            "inherited": [_message_json(m) for m in inherited],
        })  # fmt: skip
    return {"focus": session_id, "nodes": nodes}


def _shown_above(
    parent: str | None, shown: dict[str, set[str]], parents: dict[str, str | None]
) -> set[str]:
    """Message ids shown by ``parent`` and the sessions above it."""
    ids: set[str] = set()
    while parent is not None and parent in shown:
        ids |= shown[parent]
        parent = parents[parent]
    return ids


def to_html(store: SessionStore, session_id: str) -> str:
    """One self-contained HTML page (inline CSS and JS, no network) to browse the tree.

    Open it with ``#expand-all`` in the URL to have every node expanded on load.
    """
    template = resources.files("session_graph").joinpath("templates/tree.html").read_text("utf-8")
    if template.count(_DATA_MARK) != 1:
        raise RuntimeError("templates/tree.html must hold the data marker exactly once")
    return template.replace(_DATA_MARK, _json_for_script(tree_payload(store, session_id)))


# -- file names ------------------------------------------------------------------------------

_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"(?:\.[A-Za-z0-9]{1,16}){1,3}")
MAX_STEM = 64


def safe_export_path(directory: str | Path, session_id: str, suffix: str) -> Path:
    """A file in ``directory`` named after a session id, that cannot land anywhere else.

    The name keeps only ASCII letters, digits, ``.``, ``_`` and ``-`` of the id (capped at
    64 characters, no leading dots) and ends in a hash of the whole id, so distinct ids never
    share a file. ``suffix`` is an extension such as ``.html`` (the dot is optional).

    Raises:
        ValidationError: a bad id or suffix, or a path that would leave ``directory``
            (possible only through a symlink planted at the file name).
    """
    try:
        validate_name(session_id, what="session id", lookup=True)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    if not suffix.startswith("."):
        suffix = "." + suffix
    if not _SUFFIX.fullmatch(suffix):
        raise ValidationError(f"export suffix must look like '.html', got {suffix!r}")
    ascii_id = unicodedata.normalize("NFKD", session_id).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"\.{2,}", ".", _NOT_NAME.sub("_", ascii_id)).strip("._-")
    stem = stem[:MAX_STEM].rstrip("._-") or "session"
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]
    base = Path(directory).resolve()
    target = (base / f"{stem}-{digest}{suffix}").resolve()
    if target.parent != base:
        raise ValidationError(f"export path for {session_id!r} would leave {base}")
    return target


__all__ = [
    "TreeNode",
    "mermaid_text",
    "own_messages",
    "safe_export_path",
    "short_id",
    "to_graphml",
    "to_html",
    "to_mermaid",
    "tree_payload",
    "walk_tree",
]
