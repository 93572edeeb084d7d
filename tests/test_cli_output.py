"""What the command line prints: ``--json`` documents, dates, search snippets, short ids.

Against the real Neo4j server (the ``cli`` fixture, tests/cli_support.py); every JSON
document is parsed and compared with what the library returns for the same tenant.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from session_graph import SessionStore
from session_graph.compare import compare
from session_graph.export import short_id
from tests.cli_support import Run, build_tree

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def times_in(document: Any) -> list[str]:
    """Every ``*_at`` value of a JSON document."""
    found: list[str] = []
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found += [v for k, v in item.items() if k.endswith("_at") and isinstance(v, str)]
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return found


def assert_one_document(stdout: str) -> Any:
    document = json.loads(stdout)  # one document, nothing else on stdout
    stamps = times_in(document)
    assert all(ISO_UTC.match(s) for s in stamps), stamps
    return document


# -- --json ------------------------------------------------------------------------------------


def test_sessions_json_is_the_page(cli: Run, neo4j_store: SessionStore) -> None:
    build_tree(neo4j_store)

    everything = assert_one_document(cli("sessions", "--json").stdout)
    limited = assert_one_document(cli("sessions", "--json", "--limit", "2").stdout)

    assert everything == neo4j_store.list_sessions(limit=50).model_dump(mode="json")
    assert len(everything["items"]) == 3 and everything["next_cursor"] is None
    assert len(limited["items"]) == 2 and limited["next_cursor"]
    assert times_in(everything)  # created_at, updated_at, the forks' created_at


def test_show_json(cli: Run, neo4j_store: SessionStore) -> None:
    _, a, _ = build_tree(neo4j_store)

    document = assert_one_document(cli("show", a, "--json").stdout)

    assert document == {
        "session": neo4j_store.get_session(a).model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in neo4j_store.messages(a)],
    }


def test_tree_json_is_nested(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, b = build_tree(neo4j_store)
    deeper = neo4j_store.fork(a, 2, title="deeper").id

    document = assert_one_document(cli("tree", short_id(deeper), "--json").stdout)

    def shape(node: dict[str, Any]) -> tuple[Any, ...]:
        return (node["id"], node["fork_position"], node["message_count"],
                node["own_message_count"], [shape(c) for c in node["children"]])  # fmt: skip

    assert shape(document) == (
        root, None, 4, 4, [(a, 1, 4, 2, [(deeper, 2, 3, 0, [])]), (b, 1, 3, 1, [])],
    )  # fmt: skip
    assert document["title"] == "root" and document["status"] == "active"
    branch_a = document["children"][0]
    assert branch_a["fork_reason"] == "try a" and branch_a["parent_id"] == root
    assert (
        branch_a["created_at"] == neo4j_store.get_session(a).model_dump(mode="json")["created_at"]
    )


def test_compare_json_is_the_comparison(cli: Run, neo4j_store: SessionStore) -> None:
    _, a, b = build_tree(neo4j_store)

    plain = assert_one_document(cli("compare", a, b, "--json").stdout)
    best = assert_one_document(cli("compare", a[-8:], b[-8:], "--best-by", "cost", "--json").stdout)

    expected = compare(neo4j_store, [a, b]).model_dump(mode="json")
    assert plain == expected and "best" not in plain
    assert best == {**expected, "best": {"by": "cost", "session_id": b, "value": 0.0005}}
    assert plain["fork_point"]["position"] == 1
    assert plain["branches"][1]["diff"].startswith(f"--- {a}")


@pytest.mark.parametrize("command", ["fork", "explore", "merge", "delete", "purge"])
def test_writing_commands_print_json_too(cli: Run, neo4j_store: SessionStore, command: str) -> None:
    root, a, b = build_tree(neo4j_store)
    args = {
        "fork": ("fork", root, "--at", "2", "--reason", "r"),
        "explore": ("explore", root, "--at", "0", "-s", "x", "-s", "y"),
        "merge": ("merge", a),
        "delete": ("delete", b, "--purge"),
        "purge": ("purge",),
    }[command]

    document = assert_one_document(cli(*args, "--json").stdout)

    neo4j_store.refresh()
    if command == "fork":
        assert document == neo4j_store.get_session(document["id"]).model_dump(mode="json")
        assert document["fork"]["position"] == 2 and document["fork"]["reason"] == "r"
    elif command == "explore":
        assert [s["fork"]["reason"] for s in document] == ["x", "y"]
        assert document == [neo4j_store.get_session(s["id"]).model_dump(mode="json")
                            for s in document]  # fmt: skip
    elif command == "merge":
        assert document == {"mode": "copy", "fork_id": a, "into_id": root,
                            "common_position": 1, "copied": list(document["copied"])}  # fmt: skip
        assert len(document["copied"]) == 2 and neo4j_store.message_count(root) == 6
    elif command == "delete":
        assert document == {"deleted": b, "purged": {"messages": 1, "sessions": 1}}
    else:
        assert document == {"messages": 0, "sessions": 0}


# -- dates -------------------------------------------------------------------------------------


def test_sessions_prints_dates_with_the_year(cli: Run, neo4j_store: SessionStore) -> None:
    session = neo4j_store.create_session(title="dated")

    listed = cli("sessions").stdout

    local = session.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    assert re.search(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", listed)
    assert local in listed


# -- search ------------------------------------------------------------------------------------


def test_search_shows_the_match_in_context(cli: Run, neo4j_store: SessionStore) -> None:
    sid = neo4j_store.create_session().id
    long = "A" * 200 + " the needle is HERE in the middle " + "B" * 200
    two_lines = "line one\nneedle on line two"
    neo4j_store.append(sid, [{"role": "user", "content": long},
                             {"role": "assistant", "content": two_lines}])  # fmt: skip

    result = cli("search", "needle")

    rows = [line for line in result.stdout.splitlines() if short_id(sid) in line]
    assert len(rows) == 2
    middle = next(r for r in rows if "HERE" in r)
    # 30 characters either side of the match, … where cut
    assert "…" + "A" * 25 + " the needle is HERE in the middle " + "B" * 7 + "…" in middle
    two = next(r for r in rows if "line two" in r)
    assert "line one needle on line two" in two  # on one line, nothing cut
    assert "2 messages" in result.stdout


def test_search_leaves_out_deleted_sessions_unless_asked(
    cli: Run, neo4j_store: SessionStore
) -> None:
    root, a, b = build_tree(neo4j_store)  # Paris: a's own messages twice, root's, b's
    neo4j_store.delete_session(a)

    live = cli("search", "paris")
    everything = cli("search", "paris", "--include-deleted")
    as_json = assert_one_document(cli("search", "paris", "--include-deleted", "--json").stdout)

    assert short_id(a) not in live.stdout and "2 messages" in live.stdout
    assert short_id(root) in live.stdout and short_id(b) in live.stdout
    assert "(deleted)" not in live.stdout
    assert "4 messages" in everything.stdout
    marked = [line for line in everything.stdout.splitlines() if short_id(a) in line]
    assert len(marked) == 2 and all(f"{short_id(a)} (deleted)" in line for line in marked)
    assert everything.stdout.count("(deleted)") == 2
    assert sorted((m["session_id"], m["session_deleted"]) for m in as_json) == sorted(
        [(a, True), (a, True), (root, False), (b, False)]
    )
    expected = neo4j_store.search("paris", limit=20, include_deleted=True)
    assert [m["id"] for m in as_json] == [m.id for m in expected]


# -- short ids ---------------------------------------------------------------------------------

SHORT_IDS = {
    "s1": "abcdef-111111-xyz001",
    "s2": "abcdef-222222-xyz002",
    "ab": "ab",  # a full id shorter than 6 characters
    "pre": "abcdef-1",  # a full id that is also the start of s1
}


@pytest.mark.parametrize(
    ("ref", "outcome"),
    [
        ("abcdef-111111-xyz001", "s1"),  # a full id
        ("ab", "ab"),  # a short full id
        ("abcdef-1", "pre"),  # a full id wins over being the start of another
        ("xyz001", "s1"),  # a unique end
        ("…xyz002", "s2"),  # as `tree` prints it
        ("...xyz002", "s2"),
        ("222222-xyz002", "s2"),
        ("abcdef-11", "s1"),  # a unique start
        ("abcdef", "ambiguous"),
        ("abcdef-", "ambiguous"),
        ("xyz00", "too short"),  # 5 characters that are no full id
        ("abc", "too short"),
        ("…xyz0", "too short"),
        ("zzzzzz", "no match"),
        ("111111", "no match"),  # the middle names nothing
    ],
)
def test_the_short_id_rule(cli: Run, neo4j_store: SessionStore, ref: str, outcome: str) -> None:
    for sid in SHORT_IDS.values():
        neo4j_store.create_session(sid, title=f"title of {sid}")

    result = cli("show", ref, "--json", code=0 if outcome in SHORT_IDS else 1)

    if outcome in SHORT_IDS:
        assert json.loads(result.stdout)["session"]["id"] == SHORT_IDS[outcome]
        return
    message = result.stderr.strip()
    assert len(result.stderr.splitlines()) == 1
    if outcome == "ambiguous":
        assert message.startswith(f"error: {ref!r} matches 3 sessions: ")
        for sid in ("abcdef-1 ", SHORT_IDS["s1"], SHORT_IDS["s2"]):
            assert sid in message
        assert "(title of abcdef-111111-xyz001)" in message
    elif outcome == "too short":
        assert "give at least 6 characters of the id (as `tree` shows them, …1a2b3c4d)" in message
    else:
        assert message.startswith(f"error: no session matches {ref!r}")


def test_uuid_prefixes_rarely_name_one_session_but_ends_do(
    cli: Run, neo4j_store: SessionStore
) -> None:
    root, a, b = build_tree(neo4j_store)  # made together: same time prefix

    prefix = cli("show", root[:6], code=1)
    for sid in (root, a, b):
        assert json.loads(cli("show", short_id(sid), "--json").stdout)["session"]["id"] == sid

    assert "matches 3 sessions" in prefix.stderr


def test_every_place_that_takes_a_session_takes_a_short_id(
    cli: Run, neo4j_store: SessionStore
) -> None:
    root, a, b = build_tree(neo4j_store)
    ra, rb = a[-8:], "…" + b[-7:]

    compared = json.loads(cli("compare", ra, rb, "--json").stdout)
    ancestors = cli("query", "session_ancestors", "-p", f"id={ra}").stdout
    common = cli("query", "common_ancestor_message", "-p", f"a={ra}", "-p", f"b={rb}").stdout
    short = cli("query", "session_ancestors", "-p", "id=abc", code=1)
    merged = json.loads(cli("merge", rb, "--into", ra, "--json").stdout)

    assert [br["session_id"] for br in compared["branches"]] == [a, b]
    assert root in ancestors and "1 row" in ancestors
    assert neo4j_store.history_ids(root)[1] in common
    assert "give at least 6 characters" in short.stderr
    assert (merged["fork_id"], merged["into_id"]) == (b, a)


def test_query_help_documents_the_session_parameters(cli: Run) -> None:
    shown = " ".join(cli("query", "--help").stdout.split())

    assert "name a session" in shown and "at least 6 characters" in shown


def test_snippet_highlights_every_match_in_the_window() -> None:
    from session_graph.render import snippet

    text = snippet("x" * 50 + "Needle and needle\tand NEEDLE" + "y" * 50, "needle")

    plain = text.plain
    assert plain == "…" + "x" * 30 + "Needle and needle and NEEDLE" + "y" * 8 + "…"
    marked = [plain[s.start : s.end] for s in text.spans if s.style == "bold yellow"]
    assert marked == ["Needle", "needle", "NEEDLE"]
    assert snippet("no match at all", "zzz").plain == "no match at all"
