"""A loopback TCP proxy that understands just enough Bolt to cut a connection at a chosen message.

Purpose: reproduce the failure whose outcome a client cannot know, "the server received COMMIT and
committed, but the connection died before the client saw the answer", against a real Neo4j
server, deterministically::

    with BoltProxy.for_uri(info.uri) as proxy:
        driver = GraphDatabase.driver(proxy.uri, auth=info.auth)
        proxy.cut_after_commits(1)  # the next commit's answer is swallowed, both sockets closed
        ...                         # client work: the server commits, the client gets an error
        assert proxy.cuts == 1

How a commit is recognised: the proxy parses the server->client stream as Bolt messages (after
the handshake, each message is a run of ``uint16 length + bytes`` chunks ended by an empty chunk;
a lone empty chunk between messages is a NOOP). A SUCCESS message (PackStream struct, signature
``0x70``) whose metadata map holds ``"bookmark"`` ends a committed transaction: it answers an
explicit COMMIT (client signature ``0x12``) or the last PULL of an auto-commit query. That covers
every committed transaction, read-only ones included (Neo4j 5 hands out a bookmark for those too).
When armed, that message is not forwarded: everything before it is, then both sockets (client side
and server side) are closed at once. Only complete messages are inspected; partial ones are held
back until complete, so messages spanning TCP reads and reads holding several messages are fine.

What the Python driver (``neo4j`` 6.x, direct ``bolt://`` driver) raises at such a cut, as shown by
``tests/test_bolt_proxy.py``:

* ``tx.commit()`` of an explicit transaction: :class:`neo4j.exceptions.IncompleteCommit`.
* ``session.execute_write`` / ``driver.execute_query``: :class:`~neo4j.exceptions.IncompleteCommit`
  after one attempt; the driver does not retry it (``IncompleteCommit.is_retryable()`` is False),
  so the write is applied exactly once. But ``IncompleteCommit`` subclasses ``ServiceUnavailable``:
  a caller that retries on ``ServiceUnavailable`` applies the write a second time.
* auto-commit ``session.run(...)`` + ``consume()``: plain
  :class:`~neo4j.exceptions.ServiceUnavailable` (the driver only knows it lost the connection; the
  write did commit).
* ``cut_after_client_message(COMMIT)`` (no answer at all): ``IncompleteCommit`` as well, and the
  server sometimes committed, sometimes not (about 2 in 3 committed in a 30-try sample).
* Not exercised: per the driver's source, a routing driver (``neo4j://``) would raise
  ``SessionExpired`` instead of the plain ``ServiceUnavailable``. Give drivers :attr:`uri`
  (``bolt://``): a routing table would send a ``neo4j://`` driver around the proxy.

The connection after a cut is dead; the driver drops it and later work through the same driver
opens a new one. Arming is global (all connections) and counts down: after ``n`` cuts the proxy
is a plain pipe again.

Bytes that do not start with the Bolt magic (TLS, HTTP) are piped through untouched and never cut
by the message triggers (:meth:`BoltProxy.drop_all` still works). Standard library only.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

BOLT_MAGIC = b"\x60\x60\xb0\x17"

# Message signatures (client -> server).
BEGIN = 0x11
COMMIT = 0x12
ROLLBACK = 0x13
RUN = 0x10
PULL = 0x3F
RESET = 0x0F
GOODBYE = 0x02
# Message signatures (server -> client).
SUCCESS = 0x70
RECORD = 0x71
IGNORED = 0x7E
FAILURE = 0x7F

_BOOKMARK_KEY = b"\x88bookmark"  # PackStream tiny string "bookmark"
_READ_MODE = b"\x84mode\x81r"  # the extra-map entry "mode": "r" of a read transaction
_RECV_SIZE = 65536

Side = Literal["client", "server"]


@dataclass(frozen=True)
class BoltMessage:
    """One complete Bolt message as it crossed the proxy.

    Attributes:
        signature: the PackStream struct signature (``0x12`` COMMIT, ``0x70`` SUCCESS...), or -1
            when the body is not a struct.
        body: the message without chunk framing.
        metadata: for a SUCCESS, its decoded metadata map (None when it could not be decoded).
    """

    signature: int
    body: bytes
    metadata: dict[str, object] | None = None

    @property
    def ends_commit(self) -> bool:
        """True for the SUCCESS that confirms a committed transaction (it carries a bookmark)."""
        if self.signature != SUCCESS:
            return False
        if self.metadata is not None:
            return "bookmark" in self.metadata
        return _BOOKMARK_KEY in self.body


class BoltProxy:
    """Forwards ``127.0.0.1:<free port>`` to a Bolt server and cuts connections on demand.

    Use as a context manager (or :meth:`start` / :meth:`close`). Thread-safe: arm and inspect it
    from the test thread while drivers talk through it.

    Attributes:
        target: ``(host, port)`` of the real server.
    """

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listen_host = listen_host
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._commit_cuts_left = 0
        self._writes_only = False
        self._skip_left = 0
        self._client_cut: tuple[int, int] | None = None  # (signature, cuts left)
        self._cuts = 0
        self._commits = 0
        self._withheld: list[dict[str, object] | None] = []

    @classmethod
    def for_uri(cls, uri: str) -> BoltProxy:
        """A proxy in front of the server of a ``bolt://`` (or ``neo4j://``) URI, not started yet.

        Whatever the scheme, clients reach the proxy with :attr:`uri`, a direct ``bolt://`` URI.
        TLS schemes (``+s``, ``+ssc``) are refused: the proxy's URI is plain Bolt.
        """
        parts = urlsplit(uri)
        if parts.scheme not in ("bolt", "neo4j") or not parts.hostname:
            raise ValueError(f"BoltProxy needs a plain bolt://host:port URI, got {uri!r}")
        return cls(parts.hostname, parts.port or 7687)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> BoltProxy:
        """Listen on a free port and start accepting; returns self."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._listen_host, 0))
        listener.listen(64)
        listener.settimeout(0.1)  # the accept loop polls _closing
        self._listener = listener
        self._spawn(self._accept_loop, "bolt-proxy-accept")
        return self

    def close(self) -> None:
        """Stop accepting, cut every open connection and wait for the proxy's threads."""
        self._closing.set()
        self.drop_all()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> BoltProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests use --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The local port the proxy listens on."""
        if self._listener is None:
            raise RuntimeError("BoltProxy is not started")
        return int(self._listener.getsockname()[1])

    @property
    def uri(self) -> str:
        """``bolt://127.0.0.1:<port>``: give this to the driver."""
        return f"bolt://{self._listen_host}:{self.port}"

    def cut_after_commits(self, n: int = 1, *, writes_only: bool = False, skip: int = 0) -> None:
        """Arm: the next ``n`` commit confirmations are swallowed and their connection is cut.

        The server has committed when the proxy sees the confirmation, so each cut is a commit
        the client cannot know about. With ``writes_only``, transactions the client began in
        read mode (``mode: "r"`` on BEGIN or on an auto-commit RUN) pass untouched. The first
        ``skip`` commits that qualify pass too (to cut a later step of a multi-step call).
        Replaces any earlier commit arming; ``0`` disarms.
        """
        with self._lock:
            self._commit_cuts_left = n
            self._writes_only = writes_only
            self._skip_left = skip

    def cut_after_client_message(self, signature: int, n: int = 1) -> None:
        """Arm: cut right after forwarding the next ``n`` client messages with ``signature``.

        E.g. ``cut_after_client_message(COMMIT)``: the server gets COMMIT, the client never gets
        an answer. Unlike :meth:`cut_after_commits` the outcome is itself unknown: the server may
        commit or roll back depending on whether it noticed the closed socket first.
        """
        with self._lock:
            self._client_cut = (signature, n) if n > 0 else None

    def disarm(self) -> None:
        """Forget every pending cut: the proxy is a plain pipe."""
        with self._lock:
            self._commit_cuts_left = 0
            self._client_cut = None

    def drop_all(self) -> int:
        """Cut every open connection now; returns how many there were."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut()
        return len(links)

    @property
    def cuts(self) -> int:
        """How many connections the armed triggers cut so far (``drop_all`` not counted)."""
        with self._lock:
            return self._cuts

    @property
    def commits(self) -> int:
        """How many commit confirmations the server sent, forwarded or swallowed."""
        with self._lock:
            return self._commits

    @property
    def withheld(self) -> list[dict[str, object] | None]:
        """Metadata of the swallowed commit confirmations (``"bookmark"`` among its keys)."""
        with self._lock:
            return list(self._withheld)

    @property
    def open_connections(self) -> int:
        """How many client connections are currently proxied."""
        with self._lock:
            return len(self._links)

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, server)
            with self._lock:
                if self._closing.is_set():
                    link.cut()
                    return
                self._links.add(link)
            self._spawn(self._pump, "bolt-proxy-c2s", link, "client")
            self._spawn(self._pump, "bolt-proxy-s2c", link, "server")

    def _cut_before(self, message: BoltMessage, link: _Link) -> bool:
        """Server side: count a commit and decide whether to swallow it."""
        if not message.ends_commit:
            return False
        with self._lock:
            self._commits += 1
            if self._commit_cuts_left <= 0 or (self._writes_only and link.reading):
                return False
            if self._skip_left > 0:
                self._skip_left -= 1
                return False
            self._commit_cuts_left -= 1
            self._cuts += 1
            self._withheld.append(message.metadata)
            return True

    def _cut_after(self, message: BoltMessage) -> bool:
        """Client side: decide whether to cut after forwarding this message."""
        with self._lock:
            if self._client_cut is None or self._client_cut[0] != message.signature:
                return False
            left = self._client_cut[1] - 1
            self._client_cut = (message.signature, left) if left > 0 else None
            self._cuts += 1
            return True

    def _pump(self, link: _Link, side: Side) -> None:
        src, dst = (link.client, link.server) if side == "client" else (link.server, link.client)
        parser = _Parser(side, link)
        try:
            while True:
                data = src.recv(_RECV_SIZE)
                if not data:
                    break
                if link.cutting:
                    continue  # a cut is under way in the other pump: forward nothing more
                out = bytearray()
                for raw, message in parser.feed(data):
                    if side == "client" and message is not None:
                        link.observe(message)
                    if side == "server" and message is not None and self._cut_before(message, link):
                        if out:
                            dst.sendall(out)
                        return
                    out += raw
                    if side == "client" and message is not None and self._cut_after(message):
                        link.cutting = True  # the server pump forwards nothing from now on
                        dst.sendall(out)
                        return
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            link.cut()
            with self._lock:
                self._links.discard(link)


class _Link:
    """The two sockets of one proxied connection."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.manifest = False  # server chose the manifest handshake (Bolt 5.7+ style)
        self.raw = False  # not Bolt (TLS...): pipe bytes, parse nothing
        self.cutting = False
        self.reading = False  # the open transaction was begun in read mode
        self.in_tx = False  # an explicit transaction (BEGIN) is open
        self._cut_lock = threading.Lock()
        self._cut = False

    def observe(self, message: BoltMessage) -> None:
        """Follow the client's transactions: which mode the current one was begun in."""
        if message.signature == BEGIN:
            self.in_tx, self.reading = True, _READ_MODE in message.body
        elif message.signature == RUN and not self.in_tx:
            self.reading = _READ_MODE in message.body
        elif message.signature in (COMMIT, ROLLBACK, RESET):
            self.in_tx = False

    def cut(self) -> None:
        """Close both sides at once; idempotent."""
        with self._cut_lock:
            if self._cut:
                return
            self._cut = True
            self.cutting = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class _Parser:
    """Splits one direction of a Bolt connection into forwardable units.

    :meth:`feed` returns ``(raw bytes, message or None)`` pairs in stream order; handshake bytes,
    NOOP chunks and non-Bolt bytes come with None. Incomplete units stay buffered.
    """

    def __init__(self, side: Side, link: _Link) -> None:
        self.side = side
        self.link = link
        self.buf = bytearray()
        self.pos = 0  # start of the unconsumed bytes in buf (compacted once per feed)
        self.state = "handshake"

    def feed(self, data: bytes) -> list[tuple[bytes, BoltMessage | None]]:
        self.buf += data
        units: list[tuple[bytes, BoltMessage | None]] = []
        while self.pos < len(self.buf):
            if self.link.raw:
                units.append((self._take(len(self.buf) - self.pos), None))
                break
            unit = self._next()
            if unit is None:
                break
            units.append(unit)
        del self.buf[: self.pos]
        self.pos = 0
        return units

    @property
    def available(self) -> int:
        return len(self.buf) - self.pos

    def _take(self, n: int) -> bytes:
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw

    def _next(self) -> tuple[bytes, BoltMessage | None] | None:
        if self.state == "handshake":
            return self._client_handshake() if self.side == "client" else self._server_handshake()
        if self.state == "client-choice":  # manifest handshake: the client's chosen version
            if not self.link.manifest:
                self.state = "messages"
                return self._message()
            size = _varint_size(self.buf, self.pos + 4)
            if size is None:
                return None
            self.state = "messages"
            return self._take(4 + size), None
        if self.state == "server-manifest":  # manifest handshake: offered versions, capabilities
            count = _varint(self.buf, self.pos)
            if count is None:
                return None
            offers, used = count
            caps = _varint_size(self.buf, self.pos + used + 4 * offers)
            if caps is None:
                return None
            self.state = "messages"
            return self._take(used + 4 * offers + caps), None
        return self._message()

    def _client_handshake(self) -> tuple[bytes, BoltMessage | None] | None:
        head = bytes(self.buf[self.pos : self.pos + 4])
        if head != BOLT_MAGIC[: len(head)]:
            # TLS or anything else. The client speaks first, so the server side sees the flag
            # before the server answers.
            self.link.raw = True
            return self._take(self.available), None
        if self.available < 20:
            return None
        self.state = "client-choice"
        return self._take(20), None

    def _server_handshake(self) -> tuple[bytes, BoltMessage | None] | None:
        if self.available < 4:
            return None
        answer = self._take(4)
        if answer[3] == 0xFF and answer[2] == 0x01:
            # Set before the answer is forwarded: the client sends its choice only after it.
            self.link.manifest = True
            self.state = "server-manifest"
        elif answer in (b"HTTP", b"\x00\x00\x00\x00"):
            self.link.raw = True
        else:
            self.state = "messages"
        return answer, None

    def _message(self) -> tuple[bytes, BoltMessage | None] | None:
        buf = self.buf
        start = pos = self.pos
        spans: list[tuple[int, int]] = []
        while True:
            if len(buf) < pos + 2:
                return None
            size = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
            if size == 0:
                break
            if len(buf) < pos + size:
                return None
            spans.append((pos, pos + size))
            pos += size
        raw = self._take(pos - start)
        if not spans:
            return raw, None  # NOOP
        body = b"".join(raw[a - start : b - start] for a, b in spans)
        return raw, _decode(body)


def _varint(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """Decode a handshake varint at ``pos``: ``(value, bytes used)``, None if incomplete."""
    value = 0
    for i in range(pos, len(buf)):
        value |= (buf[i] & 0x7F) << (7 * (i - pos))
        if not buf[i] & 0x80:
            return value, i - pos + 1
    return None


def _varint_size(buf: bytearray, pos: int) -> int | None:
    """How many bytes the varint at ``pos`` takes, None if incomplete."""
    found = _varint(buf, pos)
    return None if found is None else found[1]


def _decode(body: bytes) -> BoltMessage:
    if len(body) < 2 or body[0] & 0xF0 != 0xB0:
        return BoltMessage(-1, body)
    signature = body[1]
    metadata = None
    if signature == SUCCESS and body[0] == 0xB1:
        with contextlib.suppress(IndexError, ValueError, struct.error, UnicodeDecodeError):
            value, end = _unpack(body, 2)
            if isinstance(value, dict) and end == len(body):
                metadata = value
    return BoltMessage(signature, body, metadata)


@dataclass(frozen=True)
class PackStreamStruct:
    """A PackStream structure inside decoded metadata (nodes, temporal values...)."""

    signature: int
    fields: tuple[object, ...]


_FIXED = {0xC1: ">d", 0xC8: ">b", 0xC9: ">h", 0xCA: ">i", 0xCB: ">q"}
_SIZES = {0: ">B", 1: ">H", 2: ">I"}


def _unpack(data: bytes, pos: int) -> tuple[object, int]:
    """Decode one PackStream value at ``pos``: ``(value, position after it)``."""
    marker = data[pos]
    pos += 1
    if marker < 0x80:
        return marker, pos
    if marker >= 0xF0:
        return marker - 0x100, pos
    if marker == 0xC0:
        return None, pos
    if marker in (0xC2, 0xC3):
        return marker == 0xC3, pos
    if marker in _FIXED:
        fmt = _FIXED[marker]
        end = pos + struct.calcsize(fmt)
        if end > len(data):
            raise ValueError("truncated")
        return struct.unpack(fmt, data[pos:end])[0], end
    high = marker & 0xF0
    if high in (0x80, 0x90, 0xA0, 0xB0):
        size = marker & 0x0F
        kind = {0x80: "str", 0x90: "list", 0xA0: "map", 0xB0: "struct"}[high]
    elif marker in (0xCC, 0xCD, 0xCE, 0xD0, 0xD1, 0xD2, 0xD4, 0xD5, 0xD6, 0xD8, 0xD9, 0xDA):
        fmt = _SIZES[marker & 0x03]
        end = pos + struct.calcsize(fmt)
        size = struct.unpack(fmt, data[pos:end])[0]
        pos = end
        kind = {0xC0: "bytes", 0xD0: "str", 0xD4: "list", 0xD8: "map"}[marker & 0xFC]
    else:
        raise ValueError(f"unknown PackStream marker 0x{marker:02X}")
    if kind in ("str", "bytes"):
        end = pos + size
        if end > len(data):
            raise ValueError("truncated")
        chunk = data[pos:end]
        return (chunk.decode() if kind == "str" else bytes(chunk)), end
    if kind == "struct":
        signature = data[pos]
        pos += 1
        fields = []
        for _ in range(size):
            value, pos = _unpack(data, pos)
            fields.append(value)
        return PackStreamStruct(signature, tuple(fields)), pos
    if kind == "list":
        items = []
        for _ in range(size):
            value, pos = _unpack(data, pos)
            items.append(value)
        return items, pos
    mapping: dict[str, object] = {}
    for _ in range(size):
        key, pos = _unpack(data, pos)
        value, pos = _unpack(data, pos)
        mapping[str(key)] = value
    return mapping, pos


def iter_chunks(body: bytes, max_chunk: int = 0xFFFF) -> Iterator[bytes]:
    """Frame a message body as Bolt chunks ending with the empty chunk (for parser tests)."""
    for start in range(0, len(body), max_chunk):
        piece = body[start : start + max_chunk]
        yield len(piece).to_bytes(2, "big") + piece
    yield b"\x00\x00"
