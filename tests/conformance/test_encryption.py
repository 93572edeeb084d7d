"""Content encryption at rest: round trip, ciphertext stored, rotation, search refused."""

from __future__ import annotations

import pytest

from session_graph import EncryptionError, ValidationError
from session_graph.crypto import generate_key
from session_graph.records import MESSAGE_FIELDS
from tests.stores import StoreFactory, backend_read


def test_encrypted_round_trip_and_rotation(open_store: StoreFactory) -> None:
    old, new = generate_key(), generate_key()
    store = open_store(encryption_keys=old)
    store.create_session("s")
    [msg] = store.append("s", {"role": "user", "content": "the launch code is 1234"})
    row = backend_read(store, lambda ops: ops.message_rows([msg.id]))[0]
    stored = dict(zip(MESSAGE_FIELDS, row, strict=True))
    assert stored.get("content") is None
    assert "1234" not in str(stored["content_enc"])
    assert store.get_message(msg.id).content == "the launch code is 1234"
    with pytest.raises(EncryptionError):
        store.search("launch")

    rotated = open_store(encryption_keys=f"{new},{old}")  # new key first, old still decrypts
    rotated.append("s", {"role": "assistant", "content": "noted"})
    assert [m.content for m in rotated.messages("s")] == ["the launch code is 1234", "noted"]
    only_new = open_store(encryption_keys=new)
    with pytest.raises(EncryptionError):
        only_new.messages("s")
    with pytest.raises(EncryptionError):
        open_store().get_message(msg.id)  # no keys configured: refused, not garbage


def test_search_without_the_key_says_the_content_is_encrypted(open_store: StoreFactory) -> None:
    keyed = open_store(encryption_keys=generate_key())
    keyed.create_session("s")
    keyed.append("s", {"role": "user", "content": "the launch code is 1234"})
    plain = open_store()
    plain.create_session("p")
    plain.append("p", {"role": "user", "content": "plain launch notes"})
    # The ciphertext cannot match: an empty answer would pass for "no such text".
    with pytest.raises(EncryptionError, match="encrypted"):
        plain.search("code is 1234")
    with pytest.raises(EncryptionError, match="encrypted"):
        plain.search("launch")  # a short page may hide encrypted hits
    assert [m.content for m in plain.search("launch", limit=1)] == ["plain launch notes"]


def test_bad_key_is_refused(open_store: StoreFactory) -> None:
    with pytest.raises(ValidationError):
        open_store(encryption_keys="not-a-key")
