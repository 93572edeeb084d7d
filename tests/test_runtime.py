"""The local server runtime against a real Neo4j: start, reuse, stop, kill, jar cache."""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from session_graph.config import Settings
from session_graph.runtime import (
    ConnectionInfo,
    JarCache,
    LocalNeo4j,
    RuntimeSetupError,
    docker_available,
    resolve_connection,
)
from session_graph.runtime.tools import INSTALL_HINT
from tests.neo4j_server import INSTANCE_PREFIX, settings_for_tests


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalNeo4j]:
    """An instance of its own, so the session's shared server is never disturbed."""
    local = LocalNeo4j(settings_for_tests(), f"{INSTANCE_PREFIX}runtime-{os.getpid()}")
    yield local
    local.destroy()


@pytest.fixture
def no_tools_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with neither java nor mvn on it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def query_one(info: ConnectionInfo, cypher: str, **params: object) -> object:
    with GraphDatabase.driver(info.uri, auth=info.auth) as driver:
        records = driver.execute_query(cypher, params, database_=info.database).records
    return records[0][0] if records else None


def test_start_returns_a_working_connection(runtime: LocalNeo4j) -> None:
    waited: list[float] = []

    info = runtime.start(progress=waited.append)

    assert info.source == "local"
    assert info.uri.startswith("bolt://127.0.0.1:")
    assert query_one(info, "RETURN 1") == 1
    assert waited and waited == sorted(waited) and waited[0] >= 0  # seconds waited, reported


def test_second_start_reuses_the_running_server(runtime: LocalNeo4j) -> None:
    info = runtime.start()
    before = runtime.status()

    started = time.monotonic()
    again = LocalNeo4j(runtime.settings, runtime.instance).start()  # as another process would

    assert again == info
    assert runtime.status().pid == before.pid
    assert time.monotonic() - started < 5


def test_password_is_private_and_never_in_repr(runtime: LocalNeo4j) -> None:
    info = runtime.start()

    assert stat.S_IMODE(runtime.password_file.stat().st_mode) == 0o600
    assert info.password == runtime.password_file.read_text().strip()
    assert info.password is not None and len(info.password) >= 24
    for text in (repr(info), str(info), repr(runtime.status()), repr(runtime)):
        assert info.password not in text


def test_status_reports_running_then_stopped(runtime: LocalNeo4j) -> None:
    info = runtime.start()
    running = runtime.status()
    assert running.running and running.pid is not None
    assert running.uri == info.uri
    assert running.home == runtime.dir

    runtime.stop()

    stopped = runtime.status()
    assert not stopped.running and stopped.pid is None
    assert not runtime.state_file.exists()
    assert runtime.start() == info  # a clean restart keeps the free port too


def test_kill_then_start_comes_back_on_the_same_port_with_the_data(runtime: LocalNeo4j) -> None:
    info = runtime.start()
    marker = str(uuid.uuid4())
    query_one(info, "CREATE (n:RuntimeProbe {id: $id}) RETURN n.id", id=marker)

    runtime.kill()
    assert not runtime.status().running

    back = runtime.start()
    assert back == info
    assert query_one(back, "MATCH (n:RuntimeProbe {id: $id}) RETURN count(n)", id=marker) == 1


@pytest.mark.usefixtures("no_tools_on_path")
def test_complete_jar_cache_needs_no_maven(runtime: LocalNeo4j) -> None:
    runtime.jars.ensure()
    cache = JarCache(runtime.settings.home, runtime.settings.neo4j_version)

    assert cache.is_complete()
    assert cache.ensure() is False  # mvn is not on PATH, so it was not needed


@pytest.mark.usefixtures("no_tools_on_path")
def test_interrupted_download_is_done_again(tmp_path: Path) -> None:
    cache = JarCache(tmp_path / "home", "5.26.30")
    cache.lib_dir.mkdir(parents=True)
    (cache.lib_dir / "neo4j-kernel-5.26.30.jar").write_bytes(b"half")
    assert not cache.is_complete()

    with pytest.raises(RuntimeSetupError, match="Maven") as failure:
        cache.ensure()
    assert INSTALL_HINT in str(failure.value)


@pytest.mark.usefixtures("no_tools_on_path")
def test_missing_java_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(RuntimeSetupError, match="Java") as failure:
        LocalNeo4j(Settings(home=tmp_path), "nojava").start()
    assert "apt-get install -y openjdk-17-jre-headless maven" in str(failure.value)


def test_server_that_exits_fails_with_its_log(runtime: LocalNeo4j) -> None:
    settings = runtime.settings.model_copy(update={"local_heap": "1k"})
    broken = LocalNeo4j(settings, f"{INSTANCE_PREFIX}broken-{os.getpid()}")
    try:
        with pytest.raises(RuntimeSetupError, match="exited") as failure:
            broken.start(timeout=60)
        assert "heap" in str(failure.value)
        assert not broken.status().running
    finally:
        broken.destroy()


def test_explicit_uri_is_used_as_given() -> None:
    settings = Settings(
        neo4j_uri="bolt://127.0.0.1:1", neo4j_password="not-in-repr-123", neo4j_database="db1"
    )
    info = resolve_connection(settings)

    assert (info.uri, info.database, info.source) == ("bolt://127.0.0.1:1", "db1", "uri")
    assert info.auth == ("neo4j", "not-in-repr-123")
    assert "not-in-repr-123" not in repr(info)


def test_docker_check_is_fast_and_never_raises() -> None:
    started = time.monotonic()
    assert docker_available(timeout=2.0) in (True, False)
    assert time.monotonic() - started < 3


def test_wait_exit_reports_progress_until_the_process_exits() -> None:
    """``neo4j stop`` shows progress through this callback while the server shuts down."""
    import subprocess

    from session_graph.runtime import process

    # A grandchild, as the server is: not ours to reap, so it never lingers as a zombie.
    pid = int(subprocess.check_output(["sh", "-c", "sleep 1 >/dev/null & echo $!"]))
    seen: list[float] = []
    assert process.wait_exit(pid, 0.3, seen.append) is False  # still running
    assert seen and seen == sorted(seen) and seen[-1] < 0.3
    seen.clear()
    assert process.wait_exit(pid, 30.0, seen.append) is True
    assert seen and seen[-1] < 30.0
