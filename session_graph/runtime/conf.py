"""What a local server is launched with: its ``neo4j.conf`` and its ``java`` command line."""

from __future__ import annotations

import re
from pathlib import Path

from session_graph.runtime.errors import RuntimeSetupError

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"

_SIZE_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
_DATABASE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{2,62}$")

# The bin/neo4j launcher applies server.jvm.additional; we start java ourselves, so these go on
# the command line.
_JVM_FLAGS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
)


def check_size(value: str, *, what: str) -> str:
    """Validate a memory size such as ``512m`` (it is written into config and argv)."""
    if not _SIZE_RE.match(value):
        raise RuntimeSetupError(f"{what} must look like 512m or 2g, got {value!r}")
    return value


def render_conf(*, instance_dir: Path, port: int, heap: str, pagecache: str, database: str) -> str:
    """The ``neo4j.conf`` of one instance: loopback Bolt only, auth on, no HTTP."""
    check_size(heap, what="local_heap")
    check_size(pagecache, what="local_pagecache")
    if not _DATABASE_RE.match(database):
        raise RuntimeSetupError(
            f"neo4j_database {database!r} is not a valid Neo4j database name "
            "(3-63 characters: letters, digits, dots, dashes; starting with a letter)"
        )
    if "\n" in str(instance_dir) or "\r" in str(instance_dir):
        raise RuntimeSetupError(f"the instance directory has a line break in it: {instance_dir!r}")
    settings = {
        "server.directories.data": instance_dir / "data",
        "server.directories.logs": instance_dir / "logs",
        "server.directories.run": instance_dir / "run",
        "server.directories.import": instance_dir / "import",
        "server.directories.plugins": instance_dir / "plugins",
        "server.default_listen_address": "127.0.0.1",
        "server.default_advertised_address": "127.0.0.1",
        "server.bolt.enabled": "true",
        "server.bolt.listen_address": f"127.0.0.1:{port}",
        "server.http.enabled": "false",
        "server.https.enabled": "false",
        "server.memory.heap.initial_size": heap,
        "server.memory.heap.max_size": heap,
        "server.memory.pagecache.size": pagecache,
        "initial.dbms.default_database": database,
        "dbms.usage_report.enabled": "false",
        "dbms.security.auth_enabled": "true",
        # Netty's default 5 s quiet period, paid twice, made every clean stop take 10 s.
        "internal.dbms.bolt.netty_server_shutdown_quiet_period": "1",
    }
    lines = ["# Written by session_graph on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def java_command(
    java: str, *, classpath: str, instance_dir: Path, conf_dir: Path, heap: str
) -> list[str]:
    """The argv that runs the server in the foreground of its own process."""
    check_size(heap, what="local_heap")
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *_JVM_FLAGS,
        "-cp",
        classpath,
        MAIN_CLASS,
        f"--home-dir={instance_dir}",
        f"--config-dir={conf_dir}",
    ]


def port_from_conf(conf_file: Path) -> int | None:
    """The Bolt port a previous start wrote into ``neo4j.conf``, if any."""
    try:
        text = conf_file.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^server\.bolt\.listen_address=[^:\n]*:(\d+)\s*$", text, re.MULTILINE)
    return int(match.group(1)) if match else None
