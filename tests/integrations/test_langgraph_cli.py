"""``session-graph checkpoints THREAD`` on checkpoints a real LangGraph graph wrote.

The tree (terminal, ``--json``, ``--mermaid``) shows every checkpoint under its parent, a
branch made with ``update_state`` as siblings and a copy's inherited checkpoints with the
thread that wrote them; a missing thread or a session that is no thread is one ``error:``
line with exit code 1.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from session_graph import SessionStore
from session_graph.integrations.langgraph import Neo4jSaver
from tests.cli_support import Run
from tests.integrations.test_langgraph import build_graph, cfg


def branched_thread(store: SessionStore) -> tuple[Neo4jSaver, str, list[str]]:
    """A thread run to its interrupt (5 checkpoints) and branched after plan (one more)."""
    saver = Neo4jSaver(store)
    graph = build_graph(saver)
    thread = str(uuid.uuid4())
    graph.invoke({"topic": "cli", "notes": [], "count": 0}, cfg(thread))
    after_plan = next(s for s in graph.get_state_history(cfg(thread)) if s.metadata["step"] == 1)
    graph.update_state(after_plan.config, {"notes": ["edited"]})
    ids = [t.checkpoint["id"] for t in saver.list(cfg(thread))]
    return saver, thread, ids


def nodes(roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for node in roots:
        found.append(node)
        found.extend(nodes(node["children"]))
    return found


def test_checkpoints_shows_the_tree_three_ways(cli: Run, neo4j_store: SessionStore) -> None:
    saver, thread, ids = branched_thread(neo4j_store)

    shown = cli("checkpoints", thread[-8:]).stdout  # a short id, as `tree` prints them
    doc = json.loads(cli("checkpoints", thread, "--json").stdout)
    chart = cli("checkpoints", thread, "--mermaid").stdout

    assert f"thread {thread}" in shown and "6 checkpoints" in shown
    assert all(f"…{cid[-8:]}" in shown for cid in ids)
    assert "step -1  input" in shown and "update" in shown
    assert doc["thread_id"] == thread and doc["checkpoint_count"] == 6
    assert len(doc["roots"]) == 1 and doc["roots"][0]["parent_id"] is None
    listed = nodes(doc["roots"])
    assert sorted(n["id"] for n in listed) == sorted(ids)
    assert set(listed[0]) == {
        "id", "namespace", "parent_id", "step", "source", "run_id", "created_at", "thread_id",
        "children",
    }  # fmt: skip
    branch_point = [n for n in listed if len(n["children"]) == 2]
    assert len(branch_point) == 1 and branch_point[0]["step"] == 1
    assert {n["thread_id"] for n in listed} == {thread}
    assert chart.startswith("graph TD\n")
    assert chart.count(" --> ") == 6  # five parent edges and the thread's edge to its root

    saver.copy_thread(thread, "cli-copy")
    copied = cli("checkpoints", "cli-copy").stdout
    assert f"(from thread {thread})" in copied and "6 checkpoints" in copied


def test_checkpoints_errors_are_one_line(cli: Run, neo4j_store: SessionStore) -> None:
    neo4j_store.create_session("plain session")
    saver, thread, _ = branched_thread(neo4j_store)
    saver.delete_thread(thread)

    missing = cli("checkpoints", "no-such-thread", code=1)
    plain = cli("checkpoints", "plain session", code=1)
    both = cli("checkpoints", thread, "--json", "--mermaid", code=1)
    empty = cli("checkpoints", thread)
    empty_doc = json.loads(cli("checkpoints", thread, "--json").stdout)

    for result in (missing, plain, both):
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
    assert "no-such-thread" in missing.stderr
    assert "is not a LangGraph thread" in plain.stderr
    assert "exclude each other" in both.stderr
    assert "has no checkpoints" in empty.stdout
    assert empty_doc == {"thread_id": thread, "checkpoint_count": 0, "roots": []}
