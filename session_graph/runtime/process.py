"""Server processes: spawn detached, tell if alive, stop, free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# Children started by this process, kept so they are reaped (a killed child would otherwise stay
# a zombie that still "exists") and never garbage-collected with a ResourceWarning.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: list[str], *, cwd: Path, log: Path) -> int:
    """Start ``argv`` in a new session with output appended to ``log``; returns its pid.

    The new session keeps the server out of the caller's process group and terminal, so it
    outlives the command that started it.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def exit_code(pid: int) -> int | None:
    """Exit status of a child of this process that has exited, else None."""
    proc = _children.get(pid)
    return None if proc is None else proc.poll()


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (zombies count as dead)."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def command_line(pid: int) -> str | None:
    """The command line of ``pid`` where ``/proc`` exists (Linux), else None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def signal_pid(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_exit(
    pid: int, timeout: float, progress: Callable[[float], None] | None = None
) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True if it did.

    ``progress`` is called every 0.1 s with the seconds waited so far.
    """
    began = time.monotonic()
    deadline = began + timeout
    proc = _children.get(pid)
    while True:
        if proc is not None:
            try:
                proc.wait(timeout=0.1)
                _children.pop(pid, None)
                return True
            except subprocess.TimeoutExpired:
                pass
        elif not is_alive(pid):
            return True
        else:
            time.sleep(0.1)
        if time.monotonic() >= deadline:
            return False
        if progress is not None:
            progress(time.monotonic() - began)


def port_is_free(port: int) -> bool:
    """True if a server socket could listen on 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The JVM listens with SO_REUSEADDR, so connections in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
