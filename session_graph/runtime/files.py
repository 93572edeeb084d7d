"""Small file helpers: inter-process locks, atomic writes, log tails."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from session_graph.runtime.errors import RuntimeSetupError


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None, what: str = "lock") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); released on exit.

    Args:
        path: the lock file.
        timeout: seconds to wait for another holder; None waits forever.
        what: what the lock guards, for the error message.

    Raises:
        RuntimeSetupError: the lock was not free within ``timeout``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeSetupError(
                        f"another process holds the {what} ({path}) for more than {timeout:.0f}s"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new content, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, *, since: int = 0, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path`` written after byte offset ``since`` ('' if none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(since if since <= file_size(path) else 0)
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])
