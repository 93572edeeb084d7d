"""A Neo4j community server that session_graph runs itself, from jars fetched with Maven.

Layout under ``settings.home``::

    cache/neo4j-<version>/lib/*.jar     jars, shared by all instances (COMPLETE.json marks done)
    instances/<instance>/conf/neo4j.conf
    instances/<instance>/{data,logs,run,import}
    instances/<instance>/password       generated once, mode 0600
    instances/<instance>/server.json    pid, port, version, started_at while running
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError
from rich.console import Console

from session_graph.config import Settings
from session_graph.runtime import process
from session_graph.runtime.bolt import wait_for_bolt
from session_graph.runtime.conf import java_command, port_from_conf, render_conf
from session_graph.runtime.errors import RuntimeSetupError, ServerUnavailableError
from session_graph.runtime.files import file_lock, file_size, tail, write_atomic
from session_graph.runtime.info import ConnectionInfo, LocalStatus
from session_graph.runtime.jars import JarCache
from session_graph.runtime.tools import find_java

USER = "neo4j"
INITIAL_PASSWORD = "neo4j"
NEO4J_LOG = "neo4j.log"
CONSOLE_LOG = "console.log"

_INSTANCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PORT_WAIT = 15.0


class LocalNeo4j:
    """One named local server instance: start, reuse, stop, kill, inspect, destroy.

    The server runs detached (its own session), so it outlives the process that started it;
    any process with the same ``home`` and instance name finds and reuses it.
    """

    def __init__(
        self, settings: Settings, instance: str = "default", *, console: Console | None = None
    ) -> None:
        """Describe an instance; nothing is touched on disk until :meth:`start`.

        Raises:
            RuntimeSetupError: the instance name is not a plain file name.
        """
        if not _INSTANCE_RE.match(instance):
            raise RuntimeSetupError(
                f"instance name {instance!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        self.settings = settings
        self.instance = instance
        self.console = console or Console(stderr=True)
        self.jars = JarCache(settings.home, settings.neo4j_version)
        self.dir = settings.home / "instances" / instance
        self.conf_dir = self.dir / "conf"
        self.logs_dir = self.dir / "logs"
        self.password_file = self.dir / "password"
        self.state_file = self.dir / "server.json"
        self._lock_file = self.dir / ".lock"

    def __repr__(self) -> str:
        return f"LocalNeo4j(instance={self.instance!r}, dir={str(self.dir)!r})"

    def start(
        self, timeout: float | None = None, *, progress: Callable[[float], None] | None = None
    ) -> ConnectionInfo:
        """Start the server, or reuse it if it is already running; return how to connect.

        The first start downloads the jars (progress on stderr) and sets a generated password.
        A start after :meth:`kill` comes back on the same port with the same data.

        Args:
            timeout: seconds to wait for Bolt to answer (default ``settings.connect_timeout``);
                the one-time jar download is not counted.
            progress: called often while waiting for the server to answer, with the seconds
                waited so far (to show progress; raise from it to stop waiting).

        Raises:
            RuntimeSetupError: java or mvn missing, download failed, or the server exited or
                did not answer in time (the message ends with the server log).
        """
        wait = self.settings.connect_timeout if timeout is None else timeout
        with file_lock(self._lock_file, timeout=wait, what=f"instance {self.instance!r} lock"):
            state = self._read_state()
            if state is not None and self._owns(state["pid"]):
                info = self._info(state["port"])
                self._await_ready(
                    info,
                    state["pid"],
                    wait,
                    since=self._log_sizes(),
                    fresh=False,
                    progress=progress,
                )
                return info
            java = find_java()
            self.jars.ensure(console=self.console)
            return self._launch(java, state, wait, progress)

    def stop(
        self, timeout: float = 60.0, *, progress: Callable[[float], None] | None = None
    ) -> None:
        """Shut the server down cleanly (SIGTERM; SIGKILL after ``timeout`` seconds).

        ``progress`` is called often while the server shuts down, with the seconds waited.
        """
        with file_lock(self._lock_file, timeout=timeout, what=f"instance {self.instance!r} lock"):
            state = self._read_state()
            if state is not None and self._owns(state["pid"]):
                pid = state["pid"]
                process.signal_pid(pid, signal.SIGTERM)
                if not process.wait_exit(pid, timeout, progress):
                    process.signal_pid(pid, signal.SIGKILL)
                    process.wait_exit(pid, 30.0)
            self.state_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (``server.json`` stays: the port is reused)."""
        state = self._read_state()
        if state is not None and self._owns(state["pid"]):
            process.signal_pid(state["pid"], signal.SIGKILL)
            process.wait_exit(state["pid"], 30.0)

    def status(self) -> LocalStatus:
        """Whether the server runs, with its pid, port and URI."""
        state = self._read_state()
        running = state is not None and self._owns(state["pid"])
        port = state["port"] if state else port_from_conf(self.conf_dir / "neo4j.conf")
        return LocalStatus(
            running=running,
            pid=state["pid"] if state and running else None,
            port=port,
            uri=None if port is None else _uri(port),
            version=str(state["version"]) if state and running else self.settings.neo4j_version,
            home=self.dir,
            started_at=str(state["started_at"]) if state and running else None,
        )

    def destroy(self) -> None:
        """Stop the server and delete the instance directory (data, logs, password)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _launch(
        self,
        java: str,
        state: dict[str, Any] | None,
        wait: float,
        progress: Callable[[float], None] | None = None,
    ) -> ConnectionInfo:
        port = self._choose_port(state)
        for sub in ("conf", "data", "logs", "run", "import", "plugins"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        info = self._info(port, password=self._password())
        write_atomic(
            self.conf_dir / "neo4j.conf",
            render_conf(
                instance_dir=self.dir,
                port=port,
                heap=self.settings.local_heap,
                pagecache=self.settings.local_pagecache,
                database=self.settings.neo4j_database,
            ),
        )
        fresh = not (self.dir / "data" / "databases" / "system").exists()
        since = self._log_sizes()
        argv = java_command(
            java,
            classpath=self.jars.classpath,
            instance_dir=self.dir,
            conf_dir=self.conf_dir,
            heap=self.settings.local_heap,
        )
        pid = process.spawn(argv, cwd=self.dir, log=self.logs_dir / CONSOLE_LOG)
        state = {
            "pid": pid,
            "port": port,
            "version": self.settings.neo4j_version,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_atomic(self.state_file, json.dumps(state, indent=1))
        try:
            self._await_ready(info, pid, wait, since=since, fresh=fresh, progress=progress)
        except BaseException:
            process.signal_pid(pid, signal.SIGKILL)
            process.wait_exit(pid, 30.0)
            self.state_file.unlink(missing_ok=True)
            raise
        return info

    def _await_ready(
        self,
        info: ConnectionInfo,
        pid: int,
        wait: float,
        *,
        since: dict[str, int],
        fresh: bool,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        began = time.monotonic()
        deadline = began + wait

        def alive() -> None:
            if progress is not None:
                progress(time.monotonic() - began)
            if not process.is_alive(pid):
                code = process.exit_code(pid)
                raise RuntimeSetupError(
                    f"the local Neo4j server (instance {self.instance!r}) exited"
                    f"{'' if code is None else f' with code {code}'} before it answered on "
                    f"{info.uri}.{self._log_tail(since)}"
                )

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.1)

        try:
            if fresh:
                initial = self._info(_port_of(info), password=INITIAL_PASSWORD)
                wait_for_bolt(initial, remaining(), check=alive)
                self._set_password(info)
            try:
                wait_for_bolt(info, remaining(), check=alive, query=True)
            except AuthError:
                # A crash between creating the system database and changing the password.
                self._set_password(info)
                wait_for_bolt(info, remaining(), check=alive, query=True)
        except ServerUnavailableError as exc:
            raise RuntimeSetupError(
                f"the local Neo4j server (instance {self.instance!r}, pid {pid}) did not answer "
                f"on {info.uri} within {wait:.0f}s: {exc}.{self._log_tail(since)}"
            ) from exc
        except AuthError as exc:
            raise RuntimeSetupError(
                f"the local Neo4j server refused the password in {self.password_file}: {exc}; "
                f"destroy the instance ({self.dir}) to start over"
            ) from exc

    def _set_password(self, info: ConnectionInfo) -> None:
        with (
            GraphDatabase.driver(info.uri, auth=(USER, INITIAL_PASSWORD)) as driver,
            driver.session(database="system") as session,
        ):
            session.run(
                "ALTER CURRENT USER SET PASSWORD FROM $old TO $new",
                old=INITIAL_PASSWORD,
                new=info.password,
            ).consume()

    def _choose_port(self, state: dict[str, Any] | None) -> int:
        if self.settings.local_port is not None:
            return self._claim(self.settings.local_port, "SESSION_GRAPH_LOCAL_PORT")
        if state is not None:
            # Killed, not stopped: clients still hold this URI, so insist on the same port.
            return self._claim(int(state["port"]), "the port this instance was running on")
        previous = port_from_conf(self.conf_dir / "neo4j.conf")
        if previous is not None and process.port_is_free(previous):
            return previous
        return process.free_port()

    def _claim(self, port: int, what: str) -> int:
        deadline = time.monotonic() + _PORT_WAIT
        while not process.port_is_free(port):
            if time.monotonic() >= deadline:
                raise RuntimeSetupError(
                    f"127.0.0.1:{port} ({what}) is in use by another program; free it, or "
                    f"stop() the instance and start it again to get a new port"
                )
            time.sleep(0.2)
        return port

    def _password(self) -> str:
        if self.password_file.exists():
            self.password_file.chmod(0o600)
            return self.password_file.read_text(encoding="utf-8").strip()
        password = secrets.token_urlsafe(24)
        write_atomic(self.password_file, password + "\n", mode=0o600)
        return password

    def _info(self, port: int, *, password: str | None = None) -> ConnectionInfo:
        return ConnectionInfo(
            uri=_uri(port),
            user=USER,
            password=self._password() if password is None else password,
            database=self.settings.neo4j_database,
            source="local",
        )

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
            state["pid"], state["port"] = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state

    def _owns(self, pid: int) -> bool:
        """True if ``pid`` is alive and is this instance's server (not a reused pid)."""
        if not process.is_alive(pid):
            return False
        cmdline = process.command_line(pid)
        return cmdline is None or f"--config-dir={self.conf_dir}" in cmdline

    def _log_sizes(self) -> dict[str, int]:
        return {name: file_size(self.logs_dir / name) for name in (NEO4J_LOG, CONSOLE_LOG)}

    def _log_tail(self, since: dict[str, int]) -> str:
        """What the server logged since ``since`` (sizes before this start), for errors."""
        parts = []
        for name, offset in since.items():
            text = tail(self.logs_dir / name, since=offset, lines=30)
            if text:
                parts.append(f"\n--- {self.logs_dir / name} (last lines) ---\n{text}")
        return "".join(parts) or f"\n(no server log in {self.logs_dir})"


def _uri(port: int) -> str:
    return f"bolt://127.0.0.1:{port}"


def _port_of(info: ConnectionInfo) -> int:
    return int(info.uri.rsplit(":", 1)[1])
