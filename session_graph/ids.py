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


BYTES_TYPES = (bytes, bytearray, memoryview)

# Categories a name entering the store must not hold: control, format (bidi overrides and
# isolates, zero-width characters, BOM, soft hyphen...), surrogate, private use, unassigned,
# line and paragraph separators.
REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character (invisible)",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
LOOKUP_REFUSED = ("Cc", "Cs")


def not_text(value: object, what: str) -> str:
    """The message for ``value`` given where text is expected (with a hint for bytes)."""
    kind = type(value).__name__
    if isinstance(value, BYTES_TYPES):
        return f"{what} must be str, not {kind}; decode it first, e.g. data.decode('utf-8')"
    return f"{what} must be str, not {kind}"


def _char(ch: str, index: int) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}{f' ({name})' if name else ''} at index {index}"


def validate_name(value: str, *, what: str = "id", lookup: bool = False) -> str:
    """Check a caller-given name: a session id, tag, user_id, status, strategy name or tenant.

    Names are data, always passed to Cypher as parameters, so any visible text is allowed;
    what would be invisible or ambiguous in logs, terminals and listings is refused. A name
    entering the store (the default) is refused when it

    - is not a ``str`` (bytes must be decoded first), is empty or blank, or is longer than
      256 characters;
    - holds a character of Unicode category Cc (control), Cf (format: bidirectional
      overrides and isolates, zero-width characters, BOM, soft hyphen...), Cs (lone
      surrogate), Co (private use), Cn (unassigned in this Python's Unicode database),
      Zl or Zp (line or paragraph separator);
    - has leading or trailing whitespace;
    - is not in NFC normal form. Names are never changed silently: normalise with
      ``unicodedata.normalize('NFC', name)`` before passing it.

    The message names the offending character as U+XXXX and its index. With ``lookup=True``
    (reads of what is stored: ``get_session``, filters) only the type, emptiness, length,
    control characters and lone surrogates are checked, so ids stored by older releases
    stay reachable; an id that could not have been created is then simply not found.

    Raises:
        ValidationError: (a ValueError) the name breaks one of the rules above.
    """
    if not isinstance(value, str):
        raise ValidationError(not_text(value, what))
    if not value or not value.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    refused = LOOKUP_REFUSED if lookup else REFUSED_CATEGORIES
    for index, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category in refused:
            raise ValidationError(
                f"{what} holds {REFUSED_CATEGORIES[category]}: {_char(ch, index)}"
            )
    if lookup:
        return value
    if value[0].isspace() or value[-1].isspace():
        index = 0 if value[0].isspace() else len(value) - 1
        raise ValidationError(
            f"{what} has leading or trailing whitespace: {_char(value[index], index)}"
        )
    if not unicodedata.is_normalized("NFC", value):
        index = next(
            i
            for i in range(1, len(value) + 1)
            if not unicodedata.is_normalized("NFC", value[:i])
        )
        raise ValidationError(
            f"{what} is not in NFC normal form (from {_char(value[index - 1], index - 1)}); "
            "normalise it first with unicodedata.normalize('NFC', value)"
        )
    return value


def validate_message_id(value: str) -> str:
    """Check a caller-given message id: it must be a UUID; returned in canonical form.

    Raises:
        ValidationError: (a ValueError) not a string, or not a UUID.
    """
    if not isinstance(value, str):
        raise ValidationError(not_text(value, "message id"))
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ValidationError(f"message id must be a UUID, got {value!r}") from exc
