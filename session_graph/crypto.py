"""Optional encryption of message content at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from ``SESSION_GRAPH_ENCRYPTION_KEYS``, comma-separated. The first key encrypts;
every key decrypts, so rotation is: put a new key first, keep the old ones, run
``session-graph maintenance rotate-keys`` (re-encrypts with the first key), then drop the old
keys. Encrypted content cannot be searched in the database: ``search`` refuses instead of
returning wrong answers.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from session_graph.errors import EncryptionError, ValidationError


def generate_key() -> str:
    """A new random key for ``SESSION_GRAPH_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode("ascii")


class ContentCodec:
    """Turns message content into stored properties and back."""

    def __init__(self, keys: list[str] | None = None) -> None:
        self._fernet: MultiFernet | None = None
        if keys:
            try:
                self._fernet = MultiFernet([Fernet(k.strip().encode("ascii")) for k in keys])
            except (ValueError, UnicodeEncodeError) as exc:
                raise ValidationError(
                    "SESSION_GRAPH_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys"
                ) from exc

    @classmethod
    def from_secret(cls, secret: str | None) -> ContentCodec:
        keys = [k for k in (secret or "").split(",") if k.strip()]
        return cls(keys)

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def encode(self, content: str) -> dict[str, str | None]:
        if self._fernet is None:
            return {"content": content, "content_enc": None}
        token = self._fernet.encrypt(content.encode("utf-8")).decode("ascii")
        return {"content": None, "content_enc": token}

    def encode_body(self, body: str) -> dict[str, str]:
        """A message's structured body (parts, tool calls, native form; JSON text) as stored:
        encrypted with the content, since it holds the same words."""
        if self._fernet is None:
            return {"body": body}
        return {"body_enc": self._fernet.encrypt(body.encode("utf-8")).decode("ascii")}

    def encrypt_bytes(self, data: bytes) -> bytes:
        """``data`` encrypted with the first key (for stored values other than messages)."""
        if self._fernet is None:
            raise EncryptionError("no encryption keys are configured")
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        """What ``encrypt_bytes`` encrypted, with whichever configured key made it."""
        if self._fernet is None:
            raise EncryptionError(
                "this value is encrypted; set SESSION_GRAPH_ENCRYPTION_KEYS to read it"
            )
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise EncryptionError("no configured key decrypts this value") from exc

    def decode(self, props: dict[str, object]) -> str:
        content = props.get("content")
        return self.decode_pair(None if content is None else str(content), props.get("content_enc"))

    def decode_pair(self, content: str | None, token: object) -> str:
        """Stored ``content`` / ``content_enc`` back to the text."""
        if token is None:
            return "" if content is None else content
        if self._fernet is None:
            raise EncryptionError(
                "message content is encrypted; set SESSION_GRAPH_ENCRYPTION_KEYS to read it"
            )
        try:
            return self._fernet.decrypt(str(token).encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise EncryptionError("no configured key decrypts this message content") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored token with the first key."""
        if self._fernet is None:
            raise EncryptionError("no encryption keys are configured")
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise EncryptionError("no configured key decrypts this message content") from exc
