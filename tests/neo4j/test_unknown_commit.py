"""Every write call survives a connection cut after the server committed it.

A loopback proxy (``tests/bolt_proxy.py``) lets the server commit the call's write and then
cuts the connection before the answer reaches the client: the outcome is unknown to the store,
which retries. Each call must then have exactly the effect of one call and return what one
call returns. The same calls run on a control tenant without any cut; the two tenants' graphs
(every node and relationship, every property but times and generated ids) must be equal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from neo4j import Driver

from session_graph import SessionStore, Settings
from session_graph.runtime import ConnectionInfo
from tests.bolt_proxy import BoltProxy

Call = Callable[[SessionStore], Any]


def seed(store: SessionStore) -> None:
    """The same starting tree in every tenant: root r (4 messages), fork f at 1 (+1 own)."""
    store.create_session("r", title="root")
    store.append("r", [{"role": "user", "content": f"r{i}"} for i in range(4)])
    store.fork("r", at=1, id="f")
    store.append("f", {"role": "assistant", "content": "f-own"})


def _nothing(store: SessionStore) -> None:
    return None


def _held(store: SessionStore) -> None:
    store.fork("r", id="h")  # holds r's newest message: pop_last must keep it


def _diverged(store: SessionStore) -> None:
    store.fork("f", id="g")
    store.append("g", {"role": "user", "content": "g-own"})


# name: (what is written before, untouched; the one call whose commit is cut)
CALLS: dict[str, tuple[Call, Call]] = {
    "create_session with id": (_nothing, lambda s: s.create_session("new", title="t")),
    "create_session": (_nothing, lambda s: s.create_session(title="generated id")),
    "append one": (_nothing, lambda s: s.append("r", {"role": "user", "content": "one"})),
    "append two": (
        _nothing,
        lambda s: s.append("r", [{"role": "user", "content": f"x{i}"} for i in range(2)]),
    ),
    **{
        f"append in chunks, cut at step {step}": (
            _nothing,
            lambda s: s.append("r", [{"role": "user", "content": f"x{i}"} for i in range(5)]),
        )
        for step in range(5)  # reserve, three chunks of at most 2, finish
    },
    "pop_last": (_nothing, lambda s: s.pop_last("r")),
    "pop_last of a held message": (_held, lambda s: s.pop_last("r")),
    "clear_history": (_nothing, lambda s: s.clear_history("f")),
    "fork": (_nothing, lambda s: s.fork("r", at=2, id="k", reason="why")),
    "fork, generated id": (_nothing, lambda s: s.fork("r", at=-1)),
    "explore": (
        _nothing,
        lambda s: s.explore("r", 1, [{"name": "a", "id": "ea"}, {"name": "b", "id": "eb"}]),
    ),
    "edit": (_nothing, lambda s: s.edit("r", 2, {"role": "user", "content": "e"}, id="ed")),
    "merge (copy)": (_nothing, lambda s: s.merge("f")),
    "merge (fast-forward)": (_diverged, lambda s: s.merge("g", into="f")),
    "delete_session": (_nothing, lambda s: s.delete_session("f")),
    "update_session": (_nothing, lambda s: s.update_session("r", title="renamed", tags=["x"])),
}

STABLE = (
    "MATCH (n {tenant: $t}) "
    "RETURN 0 AS kind, labels(n) AS what, properties(n) AS props, null AS a, null AS b "
    "UNION ALL "
    "MATCH (n {tenant: $t})-[r]->(m) "
    "RETURN 1 AS kind, [type(r)] AS what, properties(r) AS props, "
    "coalesce(n.pos, n.id) AS a, coalesce(m.pos, m.id) AS b"
)
VOLATILE = {"created_at", "updated_at", "deleted_at", "ops", "op_results", "id", "at",
            "merged_head", "copied_from", "run_owner", "tenant"}  # fmt: skip


def shape(driver: Driver, tenant: str) -> list[str]:
    """The tenant's graph without what differs between two runs of the same calls."""
    records = driver.execute_query(STABLE, t=tenant).records
    out = []
    for r in records:
        props = {k: _named(v) for k, v in r["props"].items() if k not in VOLATILE}
        if "SGSession" in r["what"]:
            props["id"] = _named(r["props"]["id"])
        out.append(
            repr([r["kind"], r["what"], sorted(props.items()), _named(r["a"]), _named(r["b"])])
        )
    return sorted(out)


def _named(value: Any) -> Any:
    """Generated ids (UUIDs) differ from run to run; names given by the test do not."""
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return value
        return "<generated>"
    return value


def summary(result: Any) -> Any:
    """What a call returned, without generated ids and times."""
    if isinstance(result, list | tuple):
        return [summary(x) for x in result]
    if hasattr(result, "model_dump"):
        data = result.model_dump()
        generated = ("created_at", "updated_at", "head_id", "fork", "id", "session_id", "root_id")
        return {k: v for k, v in data.items() if k not in generated}
    if hasattr(result, "mode"):
        return (result.mode, result.common_position, len(result.copied))
    return result


@pytest.fixture(scope="module")
def proxy(neo4j_info: ConnectionInfo) -> Iterator[BoltProxy]:
    with BoltProxy.for_uri(neo4j_info.uri) as p:
        yield p


def open_at(uri: str, info: ConnectionInfo, tenant: str) -> SessionStore:
    at = ConnectionInfo(uri=uri, user=info.user, password=info.password, database=info.database)
    # chunks of 2: appends of three or more go the large-append way (reserve, chunks, finish)
    store = SessionStore.connect_to(at, Settings(tenant=tenant, mirror_max_lag=0, append_chunk=2))
    store.connect()
    return store


@pytest.mark.parametrize("name", list(CALLS))
def test_write_call_has_one_effect_after_a_cut_commit(
    name: str, proxy: BoltProxy, neo4j_info: ConnectionInfo, neo4j_driver: Driver
) -> None:
    run = uuid.uuid4().hex[:8]
    cut_tenant, control_tenant = f"cut-{run}", f"ctl-{run}"
    with (
        open_at(proxy.uri, neo4j_info, cut_tenant) as cut,
        open_at(neo4j_info.uri, neo4j_info, control_tenant) as control,
    ):
        prepare, call = CALLS[name]
        for store in (cut, control):
            seed(store)
            prepare(store)
        expected = summary(call(control))
        before = proxy.cuts
        step = int(name.rsplit(" ", 1)[1]) if "cut at step" in name else 0
        proxy.cut_after_commits(1, writes_only=True, skip=step)
        try:
            got = summary(call(cut))
        finally:
            proxy.disarm()
        assert proxy.cuts == before + 1, "the proxy did not cut a commit"
        assert got == expected
        assert shape(neo4j_driver, cut_tenant) == shape(neo4j_driver, control_tenant)
