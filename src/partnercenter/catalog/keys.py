"""Product keys at rest: AES-GCM encryption, HMAC fingerprints, format checks, the generator."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from partnercenter.catalog.errors import KeyDecryptionFailed
from partnercenter.config import Settings

NONCE_BYTES = 12
_FORMAT_VERSION = b"\x01"
# Letters and digits that cannot be mistaken for one another when read aloud or retyped
# (no A E I O U L S Z 0 1 5), as retail product keys do.
GENERATOR_ALPHABET = "BCDFGHJKMNPQRTVWXY2346789"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$")
MIN_KEY_LENGTH = 5
MAX_KEY_LENGTH = 64


def normalise_key(value: str) -> str:
    """The form duplicates are judged on: upper case, without spaces and dashes."""
    return re.sub(r"[\s-]", "", value).upper()


def key_format_problem(value: str) -> str | None:
    """Why ``value`` is not a product key, or None when it is one (kept as given)."""
    if not value:
        return "the key is empty"
    if len(value) > MAX_KEY_LENGTH:
        return f"the key is longer than {MAX_KEY_LENGTH} characters"
    if not _KEY_PATTERN.match(value):
        return "a key holds letters and digits in groups separated by single dashes"
    if len(normalise_key(value)) < MIN_KEY_LENGTH:
        return f"the key is shorter than {MIN_KEY_LENGTH} characters"
    return None


class KeyCipher:
    """Encrypts product keys with AES-256-GCM; the fingerprint key derives from the secret key."""

    def __init__(self, *, encryption_key: bytes, signing_secret: bytes) -> None:
        if len(encryption_key) != 32:
            raise ValueError("the key encryption key must be 32 bytes")
        self._aead = AESGCM(encryption_key)
        self._fingerprint_key = hmac.new(
            signing_secret, b"partnercenter product-key fingerprint v1", hashlib.sha256
        ).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyCipher:
        return cls(encryption_key=settings.encryption_key, signing_secret=settings.signing_secret)

    def fingerprint(self, key: str) -> str:
        """HMAC-SHA256 of the normalised key: equal keys match without decrypting anything."""
        return hmac.new(
            self._fingerprint_key, normalise_key(key).encode(), hashlib.sha256
        ).hexdigest()

    def encrypt(self, key: str, *, context: str) -> bytes:
        """``version || nonce || ciphertext+tag``; ``context`` (SKU and version) is bound in."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key.encode(), context.encode())
        return _FORMAT_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        if blob[:1] != _FORMAT_VERSION:
            raise KeyDecryptionFailed()
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, context.encode()).decode()
        except InvalidTag:
            raise KeyDecryptionFailed() from None


def generate_key() -> str:
    """A random key of 25 characters in 5 groups of 5 (about 116 bits)."""
    chars = [secrets.choice(GENERATOR_ALPHABET) for _ in range(25)]
    return "-".join("".join(chars[i : i + 5]) for i in range(0, 25, 5))
