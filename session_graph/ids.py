"""Identifiers: time-ordered UUIDs for messages and sessions, and validation of caller-given ids."""

from __future__ import annotations

import os
import threading
import time
import unicodedata
import uuid

from session_graph.errors import ValidationError

MAX_ID_LENGTH = 256

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): millisecond time prefix, then a counter and random bits.

    Ids made in the same millisecond by one process still sort in creation order and never
    collide, so many forks of one message created at once get distinct ids.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted inside one millisecond: borrow the next one
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_id() -> str:
    """A new id as its canonical string."""
    return str(uuid7())


def validate_name(value: str, *, what: str = "id") -> str:
    """Check a caller-given id (session id, tenant): 1-256 characters, no control characters.

    Ids are data, always passed to Cypher as parameters, so any printable text is allowed;
    only what would be invisible or ambiguous in logs and terminals is refused.

    Raises:
        ValidationError: (a ValueError) the id is empty, too long or holds control characters
            or lone surrogates.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value or not value.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc":
            raise ValidationError(f"{what} contains a control character (U+{ord(ch):04X})")
        if category == "Cs":
            raise ValidationError(f"{what} contains a lone surrogate (U+{ord(ch):04X})")
    return value


def validate_message_id(value: str) -> str:
    """Check a caller-given message id: it must be a UUID; returned in canonical form.

    Raises:
        ValueError: not a UUID.
    """
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValidationError(f"message id must be a UUID, got {value!r}") from exc
