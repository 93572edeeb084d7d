"""Rich rendering, Mermaid/GraphML/HTML exports and export file names, with hostile ids.

The HTML page is checked in a real headless Chromium: the test fails (never skips) when no
Chromium is installed. On Debian: ``apt-get install -y chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import networkx as nx
import pytest
from rich.console import Console

from session_graph import SessionStore, ValidationError
from session_graph.compare import compare
from session_graph.export import (
    safe_export_path,
    short_id,
    to_graphml,
    to_html,
    to_mermaid,
    tree_payload,
    walk_tree,
)
from session_graph.render import comparison_table, diff_panel, history, tree

HOSTILE_IDS = [
    'say "hi"',
    "</script><b>x</b>",
    "MATCH (n) DETACH DELETE n //",
    "spaced  id\u3000x",  # ids enter without whitespace at either end (test_arguments)
    "end",
    "x]-->y;%%",
    "ünï😀",
    "a\u00a0b",  # a line separator (U+2028) is refused in ids now (test_arguments)
    "#quot;&amp;",
    "../../etc/passwd",
]
HOSTILE_CONTENT = '</script><b id="pwned">x</b>'


def console_text(renderable: object, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def build(store: SessionStore) -> None:
    """root -> a (at 1) -> a2 (at 3); root -> b (at 1, deleted); every id a plain word."""
    store.create_session("root", title="Root [bold]x[/]")
    store.append("root", [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello", "input_tokens": 3, "output_tokens": 0},
    ])  # fmt: skip
    store.fork("root", at=1, id="a", title="A")
    store.append("a", [{"role": "assistant", "content": "hi from a", "input_tokens": 10,
                        "output_tokens": 5, "model": "m1"},
                       {"role": "user", "content": HOSTILE_CONTENT}])  # fmt: skip
    store.fork("a", at=3, id="a2", title="A2")
    store.append("a2", {"role": "tool", "content": "tool says", "tool_name": "search"})
    store.fork("root", at=1, id="b", title="B")
    store.append("b", {"role": "assistant", "content": "hi from b", "output_tokens": 7})
    store.delete_session("b")


def build_hostile(store: SessionStore) -> None:
    """A chain and fan of sessions whose ids and titles are all hostile."""
    store.create_session("hroot", title='t "<i>root</i>"')
    store.append("hroot", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    for i, sid in enumerate(HOSTILE_IDS):
        parent = "hroot" if i % 2 == 0 else HOSTILE_IDS[i - 1]
        store.fork(parent, at=1, id=sid, title=f"{sid} title")
        store.append(sid, {"role": "user", "content": f"{sid} says {HOSTILE_CONTENT}"})


# -- rich ------------------------------------------------------------------------------------


def test_tree_shows_the_whole_tree_with_metrics(store: SessionStore) -> None:
    build(store)
    text = console_text(tree(store, "a2"))
    lines = text.splitlines()
    assert lines[0].startswith("root Root [bold]x[/]  2 msgs  3 tok  active")
    assert any("@1 a A  4 msgs (+2 own)  15 tok  active" in line for line in lines)
    assert any("@3 a2 A2  5 msgs (+1 own)  active  ◀" in line for line in lines)
    assert any("@1 b B  3 msgs (+1 own)  7 tok  deleted" in line for line in lines)
    plain = console_text(tree(store, "b", with_metrics=False))
    assert "tok" not in plain and "@1 b B  3 msgs (+1 own)  deleted  ◀" in plain


def test_short_ids() -> None:
    assert short_id("1b4e28ba-2fa1-41d2-883f-0016d3cca427") == "1b4e28ba"
    assert short_id("01a204a2-b27b-7306-bb5b-7dcd34b4f740") == "…34b4f740"  # v7: time prefix
    assert short_id("plain id") == "plain id"
    assert short_id("x" * 100) == "x" * 39 + "…"


def test_comparison_table_diff_and_history(store: SessionStore) -> None:
    build(store)
    store.update_session("a", metadata={"score": 0.5})
    cmp = compare(store, ["a", "b"])
    table = console_text(comparison_table(cmp))
    assert re.search(r"tokens\s+15\s+7", table)
    assert re.search(r"messages \(history\)\s+4\s+3", table)
    assert re.search(r"score\s+0\.5\s+-", table)
    assert "shared history: messages 0-1" in table
    diff = console_text(diff_panel(cmp))
    assert "-assistant: hi from a" in diff and "+assistant: hi from b" in diff
    hist = console_text(history(store, "a"), width=160)
    assert "hi from a" in hist and HOSTILE_CONTENT in hist and "from root" in hist


# -- Mermaid ---------------------------------------------------------------------------------

_NODE = re.compile(r'    (s\d+)\["([^"]*)"\]')
_EDGE = re.compile(r'    (s\d+) -->\|"@(-?\d+)"\| (s\d+)')
_OTHER = re.compile(r"    (classDef [a-z]+ [a-z0-9:#,. -]+|class s\d+(,s\d+)* [a-z]+)")
_SAFE_LABEL = re.compile(r"[\w .,:\-()/'+=?!*<>#;…]*")


def _unlabel(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label.replace("<br/>", "\n"))


def test_mermaid_is_valid_for_hostile_ids(store: SessionStore) -> None:
    build_hostile(store)
    text = to_mermaid(store, HOSTILE_IDS[1])
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := _NODE.fullmatch(line):
            # labels hold only plain characters and entity codes: no quote, bracket or pipe
            assert _SAFE_LABEL.fullmatch(m.group(2)) and "<" not in m.group(2).replace("<br/>", "")
            nodes[m.group(1)] = _unlabel(m.group(2))
        elif m := _EDGE.fullmatch(line):
            edges.append((m.group(1), int(m.group(2)), m.group(3)))
        else:
            assert _OTHER.fullmatch(line), line
    assert len(nodes) == len(HOSTILE_IDS) + 1 and len(edges) == len(HOSTILE_IDS)
    for sid in HOSTILE_IDS:  # every id is shown, decoded, in exactly one label
        assert sum(label.startswith(f"{sid} title\n{sid} ") for label in nodes.values()) == 1
    assert all(pos == 1 for _, pos, _ in edges)
    focus = [n for n, label in nodes.items() if label.startswith(HOSTILE_IDS[1] + " title")]
    assert f"    class {focus[0]} focus" in lines


# -- GraphML ---------------------------------------------------------------------------------


def test_graphml_round_trip(store: SessionStore, tmp_path: Path) -> None:
    build_hostile(store)
    store.update_session(HOSTILE_IDS[0], title="control \x01 char \ufffe")
    path = to_graphml(store, HOSTILE_IDS[3], tmp_path / "tree.graphml")
    back = nx.read_graphml(path)
    assert set(back.nodes) == {"hroot", *HOSTILE_IDS}
    expected = {(n.parent_id, n.session_id) for n in walk_tree(store, "hroot") if n.parent_id}
    assert set(back.edges) == expected
    assert back.nodes[HOSTILE_IDS[1]]["title"] == f"{HOSTILE_IDS[1]} title"
    assert back.nodes[HOSTILE_IDS[0]]["title"] == "control \ufffd char \ufffd"
    assert back.nodes[HOSTILE_IDS[3]]["focus"] is True
    assert back.nodes["hroot"]["messages"] == 2 and back.nodes[HOSTILE_IDS[1]]["messages"] == 3
    assert back.edges["hroot", HOSTILE_IDS[0]]["position"] == 1


# -- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "session_id",
    ["../../etc/passwd", "/abs", "/abs/../../x", "a/b", "a\\b", "..", ".", "...", "~root",
     "x" * 256, "ünï😀", "CON", ".hidden", "-", "a:b", "NUL.txt"],
)  # fmt: skip
def test_safe_export_path_stays_inside(tmp_path: Path, session_id: str) -> None:
    path = safe_export_path(tmp_path, session_id, ".html")
    assert path.parent == tmp_path.resolve()
    assert path.suffix == ".html" and not path.name.startswith(".")
    assert "/" not in path.name and "\\" not in path.name and ".." not in path.name
    assert len(path.name) <= 64 + 1 + 16 + len(".html")
    assert path == safe_export_path(tmp_path, session_id, "html")  # stable, dot optional


def test_safe_export_path_never_collides(tmp_path: Path) -> None:
    ids = ["a/b", "a\\b", "a b", "a_b", "a?b", "x" * 256, "x" * 255 + "y", "ünï", "uni"]
    assert len({safe_export_path(tmp_path, i, ".svg") for i in ids}) == len(ids)


def test_safe_export_path_refusals(tmp_path: Path) -> None:
    for bad in ("", " ", "a\x00b", "a\nb", "x" * 257):
        with pytest.raises(ValidationError):
            safe_export_path(tmp_path, bad, ".html")
    for suffix in ("/html", "../x", ".ht/ml", ".", "", ".a b"):
        with pytest.raises(ValidationError):
            safe_export_path(tmp_path, "ok", suffix)
    planted = safe_export_path(tmp_path, "evil", ".html")
    planted.symlink_to("/etc/passwd")  # a symlink at the name must not be followed out
    with pytest.raises(ValidationError):
        safe_export_path(tmp_path, "evil", ".html")


# -- HTML in a real browser ------------------------------------------------------------------

INSTALL = "apt-get update && apt-get install -y chromium"


def chromium() -> str:
    for name in (os.environ.get("SESSION_GRAPH_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):  # fmt: skip
        if name and (found := shutil.which(name)):
            return found
    pytest.fail(f"no Chromium to check the HTML export in a browser; install it: {INSTALL}")


def browse(page: Path, profile: Path, *args: str, fragment: str = "") -> str:
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", *args, page.as_uri() + fragment,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class DomScan(HTMLParser):
    """Collects element ids and the text of message bodies (<pre class="content">)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.contents: list[str] = []
        self.summaries: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "pre" and found.get("class") == "content":
            self._in = "content"
            self.contents.append("")
        elif tag == "summary":
            self._in = "summary"
            self.summaries.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "summary"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "content":
            self.contents[-1] += data
        elif self._in == "summary":
            self.summaries[-1] += data


def test_html_page_in_headless_chromium(store: SessionStore, tmp_path: Path) -> None:
    build(store)
    build_hostile(store)
    page = to_html(store, HOSTILE_IDS[1])
    assert "</script><b" not in page and HOSTILE_CONTENT not in page
    assert not re.search(r"""(src|href)\s*=|url\(|@import""", page)  # nothing to fetch
    target = tmp_path / "tree.html"
    target.write_text(page, encoding="utf-8")

    dom = DomScan()
    dom.feed(browse(target, tmp_path / "profile", "--dump-dom", fragment="#expand-all"))
    assert "pwned" not in dom.ids and "b" not in dom.tags and "i" not in dom.tags
    for sid in HOSTILE_IDS:  # every session's own message, rendered as text
        assert f"{sid} says {HOSTILE_CONTENT}" in dom.contents
    assert dom.contents[:2] == ["q", "a"]  # the root's messages come first
    titles = " | ".join(dom.summaries)
    assert 't "<i>root</i>"' in titles and "</script><b>x</b> title" in titles
    assert "deleted" not in titles  # the hostile tree has no deleted session

    # without the hook only the path to the focused session is open and rendered
    dom = DomScan()
    dom.feed(browse(target, tmp_path / "profile", "--dump-dom"))
    assert f"{HOSTILE_IDS[1]} says {HOSTILE_CONTENT}" in dom.contents
    assert f"{HOSTILE_IDS[2]} says {HOSTILE_CONTENT}" not in dom.contents

    plain = tmp_path / "plain.html"
    plain.write_text(to_html(store, "a2"), encoding="utf-8")
    dom = DomScan()
    dom.feed(browse(plain, tmp_path / "profile", "--dump-dom", fragment="#expand-all"))
    assert HOSTILE_CONTENT in dom.contents and "hi from b" in dom.contents
    assert any("deleted" in s and "B" in s for s in dom.summaries)
    shot = tmp_path / "tree.png"  # looked at by hand while developing; kept out of git
    browse(plain, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,900",
           fragment="#expand-all")  # fmt: skip
    assert shot.stat().st_size > 10_000


def test_html_template_ships_inside_the_package() -> None:
    template = resources.files("session_graph").joinpath("templates/tree.html")
    assert template.is_file()
    text = template.read_text("utf-8")
    assert text.count("__SESSION_GRAPH_DATA__") == 1 and "innerHTML" not in text


def _positions(node: dict[str, object], key: str) -> list[int]:
    return [int(m["position"]) for m in node[key]]  # type: ignore[attr-defined, index]


def test_html_shows_shared_history_no_session_above_shows(store: SessionStore) -> None:
    """After the parent is deleted and purged (or pops), its fork carries the shared part."""
    store.create_session("p", title="parent")
    store.append("p", [{"role": "user", "content": f"m{i}"} for i in range(9)])
    store.fork("p", at=4, id="f")  # shares 0-4
    store.fork("f", at=4, id="g")  # shares the same 0-4 through f
    store.append("f", {"role": "assistant", "content": "f's own"})
    payload = {n["id"]: n for n in tree_payload(store, "f")["nodes"]}
    assert payload["f"]["inherited"] == [] and payload["g"]["inherited"] == []

    store.delete_session("p")
    assert store.purge().messages == 4  # p's 5-8; p stays as a node, with an empty history
    payload = {n["id"]: n for n in tree_payload(store, "f")["nodes"]}
    assert payload["p"]["messages"] == []
    assert _positions(payload["f"], "inherited") == list(range(5))  # shown once, in f...
    assert payload["g"]["inherited"] == []  # ...so g, below f, shares what f shows

    store.pop_last("f")  # a pop on f leaves g's shared part shown in f still
    store.create_session("q")
    store.append("q", [{"role": "user", "content": f"q{i}"} for i in range(3)])
    store.fork("q", at=2, id="q1")
    store.pop_last("q")  # q no longer shows position 2, which q1 still holds
    payload = {n["id"]: n for n in tree_payload(store, "q1")["nodes"]}
    assert _positions(payload["q1"], "inherited") == [2]


def test_html_strikes_through_deleted_sessions_only(store: SessionStore, tmp_path: Path) -> None:
    store.create_session("p", title="parent title")
    store.append("p", [{"role": "user", "content": "hi"}, {"role": "user", "content": "bye"}])
    store.fork("p", at=0, id="f", title="live fork")
    store.fork("f", at=0, id="g", title="deleted fork")
    store.delete_session("p")
    store.purge()  # p's history empties: f now shows the message it shares
    store.delete_session("g")
    page = to_html(store, "f")
    # Ask the browser itself how each title is drawn: a probe appended to a copy of the page.
    probe = (
        "<script>document.querySelectorAll('summary .title').forEach(function (t) {"
        "t.setAttribute('data-line', getComputedStyle(t).textDecorationLine); });</script>"
    )
    target = tmp_path / "probe.html"
    target.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = browse(target, tmp_path / "profile", "--dump-dom")
    drawn = {
        title: line
        for line, title in re.findall(
            r'<span class="title" data-line="([^"]*)">([^<]*)</span>', dom
        )
    }
    assert drawn == {
        "parent title": "line-through",
        "live fork": "none",
        "deleted fork": "line-through",
    }
    inherited = re.findall(r'"msg user inherited">.*?<pre class="content">(.*?)</pre>', dom)
    assert inherited == ["hi"]
