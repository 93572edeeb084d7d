"""``session-graph demo``: a fork tree written end to end, printed, and how to look further."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from session_graph.cli.common import Connected, app, connect, money, out
from session_graph.demo import DemoResult, run_demo


def _summary(c: Connected, r: DemoResult, server_seconds: float, total: float) -> Table:
    table = Table(show_header=False, box=box.SIMPLE, title="Summary", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    deepest = max(c.store.depth(sid) for sid in r.session_ids)
    table.add_row("sessions", f"{len(r.session_ids)} (1 root, {r.forks} forks, depth {deepest})")
    table.add_row(
        "messages",
        f"{r.messages_written} stored, {r.history_messages} across the histories "
        "(forks share their parent's messages: nothing is copied)",
    )
    table.add_row(
        "tokens",
        f"{r.tokens:,} ({r.input_tokens:,} in, {r.output_tokens:,} out; estimated from text)",
    )
    table.add_row("cost", f"{money(r.cost)} (at list prices)")
    server = "started now" if c.started_local else "already running"
    if c.local is None:
        server = "connected"
    table.add_row(
        "time",
        f"{total:.1f}s: Neo4j {server} in {server_seconds:.1f}s, demo writes {r.seconds:.1f}s",
    )
    if r.cleaned:
        table.add_row("cleaned", f"{r.cleaned} session(s) of earlier demo runs deleted and purged")
    table.add_row("tree root", r.root_id)
    return table


def _hints(c: Connected, result: DemoResult) -> None:
    from session_graph.export import short_id

    root = short_id(result.root_id).lstrip("…")
    strategies = " ".join(short_id(s).lstrip("…") for s in result.strategies.values())
    hotfix = short_id(result.strategies["config-hotfix"]).lstrip("…")
    out().print(Text("Look around (ids may be shortened to a unique start or end):", style="bold"))
    hints = [
        (f"session-graph tree {root}", "this tree again"),
        (f"session-graph show {hotfix}", "the config-hotfix branch, message by message"),
        (f"session-graph compare {strategies} --best-by eval_score", "the three strategies"),
        (f"session-graph export {root} --format html", "a page to browse the tree"),
        ("session-graph sessions --tag demo", "every demo session"),
    ]
    width = max(len(command) for command, _ in hints)
    for command, what in hints:
        out().print(
            Text.assemble("  ", (command.ljust(width), "cyan"), ("  # " + what, "dim")),
            soft_wrap=True,
        )
    out().print(Text("\nIn Neo4j Browser or Desktop:", style="bold"))
    if c.local is not None:
        where = f"connect to {c.uri} as neo4j, password in {c.local.password_file}"
    else:
        where = f"connect to {c.uri} (SESSION_GRAPH_NEO4J_USER / _PASSWORD)"
    out().print(Text("  " + where), soft_wrap=True)
    cypher = (
        f"MATCH (s:SGSession)-[:FORKED_FROM*0..]->(:SGSession {{id: '{result.root_id}'}}) "
        "MATCH p = (s)-[:HEAD]->(:SGMessage)-[:PREVIOUS*0..]->(:SGMessage) RETURN s, p"
    )
    out().print(Text.assemble("  ", (cypher, "cyan")), soft_wrap=True)
    if c.local is not None:
        out().print(
            Text.assemble(
                "\nThe local Neo4j server keeps running, so the next command starts fast; "
                "stop it with ",
                ("session-graph neo4j stop", "cyan"),
                ".",
            ),
            soft_wrap=True,
        )


@app.command()
def demo(
    clean: Annotated[
        bool, typer.Option("--clean", help="First delete the trees of earlier demo runs.")
    ] = False,
) -> None:
    """Write a demo fork tree (an agent debugging an outage, explored three ways) and print it.

    Needs no configuration: without SESSION_GRAPH_NEO4J_URI a local Neo4j server is started
    (the first time downloads its jars, ~30 s) and left running. Every run adds a new tree
    tagged demo.
    """
    from session_graph import render

    began = time.monotonic()
    with connect(setup=True) as c:
        result = run_demo(c.store, clean=clean)
        out().print(render.tree(c.store, result.root_id))
        out().print()
        out().print(_summary(c, result, c.connect_seconds, time.monotonic() - began))
        _hints(c, result)
