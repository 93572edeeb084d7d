"""Building sessions from the command line: ``new``, ``append``, ``pop``, ``clear``, ``edit``.

Each command runs against the real Neo4j server (the ``cli`` fixture, tests/cli_support.py)
and what it did is read back through the library in the same tenant.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from session_graph import SessionStore
from session_graph.cli import build
from tests.cli_support import Run, build_tree


def messages_json(store: SessionStore, sid: str) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in store.messages(sid)]


# -- new ---------------------------------------------------------------------------------------


def test_new_prints_only_the_id(cli: Run, neo4j_store: SessionStore) -> None:
    result = cli(
        "new", "Trip planner", "--tag", "travel", "-t", "eu", "--user", "u1",
        "--metadata", '{"budget": 1200, "nested": {"a": [1, 2]}}',
    )  # fmt: skip

    sid = result.stdout.strip()
    assert result.stdout == sid + "\n"  # `sid=$(session-graph new ...)`
    session = neo4j_store.get_session(sid)
    assert session.title == "Trip planner" and session.tags == ("travel", "eu")
    assert session.user_id == "u1" and session.fork is None and session.message_count == 0
    assert session.metadata == {"budget": 1200, "nested": {"a": [1, 2]}}


def test_new_with_an_id_and_json(cli: Run, neo4j_store: SessionStore) -> None:
    result = cli("new", "--id", "my-own-id", "--json")

    document = json.loads(result.stdout)
    assert document == neo4j_store.get_session("my-own-id").model_dump(mode="json")
    assert document["title"] is None and document["created_at"].endswith("Z")
    assert cli("new", "--id", "my-own-id", code=1).stderr.startswith("error:")


# -- append ------------------------------------------------------------------------------------


def test_append_from_arguments(cli: Run, neo4j_store: SessionStore) -> None:
    sid = neo4j_store.create_session().id

    one = cli("append", sid, "--role", "system", "--content", "be brief")
    pairs = cli("append", sid, "-r", "user", "-c", "hi", "-r", "assistant", "-c", "hello")
    same_role = cli("append", sid, "-r", "user", "-c", "a", "-c", "b", "--json")

    assert f"appended 1 message to {sid} (now 1)" in one.stdout
    assert f"appended 2 messages to {sid} (now 3)" in pairs.stdout
    document = json.loads(same_role.stdout)
    stored = messages_json(neo4j_store, sid)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("system", "be brief"), ("user", "hi"), ("assistant", "hello"), ("user", "a"),
        ("user", "b"),
    ]  # fmt: skip
    assert document == {
        "session_id": sid, "appended": 2, "message_count": 5, "messages": stored[-2:],
    }  # fmt: skip


def test_append_takes_a_short_id(cli: Run, neo4j_store: SessionStore) -> None:
    sid = neo4j_store.create_session().id

    cli("append", sid[-8:], "-r", "user", "-c", "by the end of the id")

    assert neo4j_store.messages(sid)[0].content == "by the end of the id"


def test_append_streams_many_jsonl_messages_from_stdin(
    cli: Run, neo4j_store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_GRAPH_APPEND_CHUNK", "500")  # so the input spans 7 chunks
    sid = neo4j_store.create_session().id
    neo4j_store.append(sid, {"role": "system", "content": "already there"})
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    lines = [
        json.dumps({
            "role": "user" if i % 2 else "assistant", "content": f"message {i}\nline two",
            "model": "m1", "input_tokens": i, "output_tokens": 2 * i, "cost": i / 1000,
            "metadata": {"i": i}, "created_at": (start + timedelta(seconds=i)).isoformat(),
        })
        for i in range(3210)
    ]  # fmt: skip
    lines.insert(7, "")  # blank lines are skipped
    last_id = "01890a5d-ac96-774b-bcce-b302099a8057"
    lines.append(json.dumps({"role": "tool", "content": "ok", "tool_name": "geo",
                             "tool_call_id": "c9", "id": last_id,
                             "created_at": "2024-02-01T12:00:00.5Z"}))  # fmt: skip

    result = cli("append", sid, "--file", "-", "--json", input="\n".join(lines) + "\n")

    assert json.loads(result.stdout) == {"session_id": sid, "appended": 3211, "message_count": 3212}
    stored = neo4j_store.messages(sid)
    assert len(stored) == 3212 and stored[0].content == "already there"
    m = stored[1001]
    assert (m.content, m.role, m.model, m.input_tokens, m.output_tokens) == (
        "message 1000\nline two", "assistant", "m1", 1000, 2000,
    )  # fmt: skip
    assert m.cost == 1.0 and m.metadata == {"i": 1000}
    assert m.created_at == start + timedelta(seconds=1000)
    last = stored[-1]
    assert (last.role, last.tool_name, last.tool_call_id) == ("tool", "geo", "c9")
    assert last.id == last_id
    assert last.created_at == datetime(2024, 2, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)


def test_append_from_json_files(cli: Run, neo4j_store: SessionStore, tmp_path: Path) -> None:
    sid = neo4j_store.create_session().id
    listed = tmp_path / "list.json"
    listed.write_text(
        json.dumps([{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
                   indent=2),
        encoding="utf-8",
    )  # fmt: skip
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"role": "user", "content": "three"}, indent=2), encoding="utf-8")
    oneline = tmp_path / "line.json"
    oneline.write_text('[{"role": "user", "content": "four"}]', encoding="utf-8")
    bom = tmp_path / "bom.jsonl"  # as some Windows editors save it
    bom.write_text('{"role": "user", "content": "five"}\r\n', encoding="utf-8-sig")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")

    for path in (listed, single, oneline, bom):
        cli("append", sid, "--file", str(path))
    nothing = cli("append", sid, "-f", str(empty))

    contents = [m.content for m in neo4j_store.messages(sid)]
    assert contents == ["one", "two", "three", "four", "five"]
    assert "appended 0 messages" in nothing.stdout


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"role": "user", "content": "a"}\n\n{"role": "user", "content": "b"}\n{oops\n',
         "stdin line 4: not JSON"),
        ('{"role": "user", "content": "a"}\n{"role": "robot", "content": "b"}\n',
         "stdin line 2: role"),
        ('{"role": "user", "content": "a"}\n[1]\n', "stdin line 2: a message is a JSON object"),
        ('{"role": "user", "content": "a"}\n{"content": "b"}\n', "stdin line 2: role"),
        ('{"role": "user", "cost": -1}\n', "stdin line 1: cost"),
        ('[{"role": "user"},\n {"role": "user", "extra": 1}]', "stdin message 2: extra"),
        ('[\n {"role": "user"},\n {"role": "user"\n]', "stdin line 4: not JSON"),
        ('{\n "role": "user",\n "content": 7\n}', "stdin: content"),
        ('[{"role": "user"}]\n[{"role": "user"}]\n', "stdin: more after the JSON list"),
        ('{"role": "user", "created_at": "2024-01-01T00:00:00"}', "stdin line 1: created_at"),
        ('{"role": "user", "created_at": "soon"}', "stdin line 1: created_at: 'soon' is not"),
        ('{"role": "user", "input_tokens": 1.5}', "stdin line 1: input_tokens"),
    ],
    ids=["not-json", "bad-role", "not-an-object", "no-role", "negative-cost",
         "extra-field", "broken-document", "content-type", "two-lists", "naive-time",
         "not-a-time", "fractional-tokens"],
)  # fmt: skip
def test_append_names_the_bad_line_and_appends_nothing(
    cli: Run, neo4j_store: SessionStore, text: str, where: str
) -> None:
    sid = neo4j_store.create_session().id
    neo4j_store.append(sid, {"role": "system", "content": "kept"})

    result = cli("append", sid, "--file", "-", input=text, code=1)

    assert result.stderr.startswith(f"error: {where}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert [m.content for m in neo4j_store.messages(sid)] == ["kept"]


def test_a_bad_line_after_whole_chunks_appends_nothing(
    cli: Run, neo4j_store: SessionStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SESSION_GRAPH_APPEND_CHUNK", "100")
    sid = neo4j_store.create_session().id
    path = tmp_path / "big.jsonl"
    good = [json.dumps({"role": "user", "content": f"m{i}"}) for i in range(450)]
    path.write_text("\n".join([*good, '{"role": "user", "content": 1}', *good]), encoding="utf-8")

    result = cli("append", sid, "--file", str(path), code=1)

    assert result.stderr.startswith(f"error: {path} line 451: content")
    assert neo4j_store.message_count(sid) == 0  # the four chunks written before are gone
    assert neo4j_store.purge().messages == 0  # and left nothing behind


def test_append_refuses_bad_utf8(cli: Run, neo4j_store: SessionStore, tmp_path: Path) -> None:
    sid = neo4j_store.create_session().id
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"role": "user", "content": "ok"}\n{"role": "user", "content": "caf\xe9"}\n')

    result = cli("append", sid, "--file", str(path), code=1)

    assert result.stderr.startswith(f"error: {path} line 2: not UTF-8 text (byte 33)")
    assert neo4j_store.message_count(sid) == 0


# -- pop, clear --------------------------------------------------------------------------------


def test_pop_prints_what_it_removed(cli: Run, neo4j_store: SessionStore) -> None:
    root, a, _ = build_tree(neo4j_store)

    popped = cli("pop", a)
    as_json = cli("pop", a, "--json")

    assert popped.stdout.strip() == "removed #3 tool: lookup: Paris"
    document = json.loads(as_json.stdout)
    assert document["content"] == "The capital of France is Paris." and document["position"] == 2
    assert document["session_id"] == a
    assert [m.content for m in neo4j_store.messages(a)] == [
        "be brief", "What is the capital of France?",
    ]  # fmt: skip
    assert neo4j_store.message_count(root) == 4  # the parent is untouched


def test_clear_asks_first(
    cli: Run, neo4j_store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, a, _ = build_tree(neo4j_store)

    refused = cli("clear", a, code=1)  # no terminal to ask on
    assert "give --yes" in refused.stderr and neo4j_store.message_count(a) == 4

    monkeypatch.setattr(build, "_interactive", lambda: True)
    declined = cli("clear", a, input="n\n", code=1)
    assert "Remove all 4 message(s)" in declined.stderr
    assert neo4j_store.message_count(a) == 4
    accepted = cli("clear", a, input="y\n")
    assert f"cleared 4 messages from {a}" in accepted.stdout
    assert neo4j_store.message_count(a) == 0
    assert neo4j_store.message_count(root) == 4  # the shared messages stay for the parent


def test_clear_yes_and_json(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)

    result = cli("clear", root, "--yes", "--json")

    assert json.loads(result.stdout) == {"session_id": root, "cleared": 4}
    assert neo4j_store.message_count(root) == 0


# -- edit --------------------------------------------------------------------------------------


def test_edit_makes_a_fork_with_the_message_replaced(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)
    before = neo4j_store.history_ids(root)

    kept_role = cli("edit", root, "--at", "2", "--content", "Paris, of course.")
    new_role = cli("edit", root, "--at", "-1", "--content", "Rome?", "--role", "assistant",
                   "--json")  # fmt: skip

    first = kept_role.stdout.split(": ")[-1].strip()
    assert kept_role.stdout.startswith("edited #2 as a new fork: ")
    history = neo4j_store.messages(first)
    assert [(m.role, m.content) for m in history] == [
        ("system", "be brief"), ("user", "What is the capital of France?"),
        ("assistant", "Paris, of course."),
    ]  # fmt: skip
    fork = neo4j_store.get_session(first).fork
    assert fork is not None and fork.parent_id == root and fork.position == 1
    document = json.loads(new_role.stdout)
    assert document == neo4j_store.get_session(document["id"]).model_dump(mode="json")
    edited = neo4j_store.messages(document["id"])
    assert len(edited) == 4 and (edited[-1].role, edited[-1].content) == ("assistant", "Rome?")
    assert neo4j_store.history_ids(root) == before  # the original is unchanged


def test_edit_with_id_and_reason(cli: Run, neo4j_store: SessionStore) -> None:
    root, _, _ = build_tree(neo4j_store)

    cli("edit", root[-6:], "--at", "1", "-c", "Spain?", "--id", "my-edit", "--reason", "typo")

    fork = neo4j_store.get_session("my-edit").fork
    assert fork is not None and fork.reason == "typo" and fork.parent_id == root
