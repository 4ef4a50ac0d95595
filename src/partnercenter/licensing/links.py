"""Signed download links: who holds the URL may download until it expires.

A token is ``<link id>.<expiry, Unix seconds>.<signature>`` where the signature is
HMAC-SHA256 over a version tag, the link id and the expiry, keyed by a key derived from
``settings.signing_secret`` for this one purpose, base64url without padding. Everything is
URL-safe; verification is constant-time and checks the signature before the expiry, so a
tampered token is refused (403) even when it also claims an expiry in the past, and an
authentic token past its expiry answers 410.

The token proves only that we issued it; whether the link still works (its purchase not
cancelled, the link not revoked) is for the caller to check against the stored link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from partnercenter.config import Settings
from partnercenter.errors import DomainError
from partnercenter.i18n import N_

MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=7)
DEFAULT_LIFETIME = timedelta(hours=24)

_VERSION = b"v1"
_PURPOSE = b"partnercenter/download-link/v1"
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EXPIRY = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_LENGTH = 43  # 32 bytes, base64url without padding
_MAX_TOKEN_LENGTH = 64 + 1 + 12 + 1 + _SIGNATURE_LENGTH


class LinkInvalid(DomainError):
    code = 16010
    name = "download_link_invalid"
    status = 403
    default_description = N_("This download link is not valid: it was changed or is incomplete.")


class LinkExpired(DomainError):
    code = 16011
    name = "download_link_expired"
    status = 410
    default_description = N_("This download link has expired. Ask for a new link.")


class InvalidLinkLifetime(DomainError):
    code = 16012
    name = "invalid_download_link_lifetime"
    status = 400
    default_description = N_("A download link must last at least 1 minute and at most 7 days.")


@dataclass(frozen=True, slots=True)
class IssuedLink:
    token: str
    expires_at: datetime
    """Aware UTC, whole seconds: exactly the expiry the token carries."""


def link_key(settings: Settings) -> bytes:
    """The HMAC key for links, derived from the application's signing secret."""
    return hmac.new(settings.signing_secret, _PURPOSE, hashlib.sha256).digest()


def validate_lifetime(lifetime: timedelta) -> timedelta:
    """Return ``lifetime`` if it lies between 1 minute and 7 days, else raise."""
    if not (MIN_LIFETIME <= lifetime <= MAX_LIFETIME):
        raise InvalidLinkLifetime(data=[lifetime.total_seconds()])
    return lifetime


def link_lifetime(settings: Settings, minutes: int | None = None) -> timedelta:
    """The lifetime of a new link: ``minutes`` when given, else the configured default."""
    if minutes is not None:
        if not MIN_LIFETIME.total_seconds() <= minutes * 60 <= MAX_LIFETIME.total_seconds():
            raise InvalidLinkLifetime(data=[minutes * 60])  # before timedelta() overflows
        return validate_lifetime(timedelta(minutes=minutes))
    return validate_lifetime(timedelta(hours=settings.download_link_hours))


def _sign(key: bytes, link_id: str, expiry: int) -> str:
    message = b"|".join((_VERSION, link_id.encode("ascii"), str(expiry).encode("ascii")))
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def issue_token(link_id: str, *, key: bytes, now: datetime, lifetime: timedelta) -> IssuedLink:
    """Sign a token for ``link_id`` that expires ``lifetime`` after ``now``."""
    if not _LINK_ID.match(link_id):
        raise ValueError(f"link id must be 1-64 URL-safe characters: {link_id!r}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    validate_lifetime(lifetime)
    expiry = int((now + lifetime).timestamp())
    return IssuedLink(
        token=f"{link_id}.{expiry}.{_sign(key, link_id, expiry)}",
        expires_at=datetime.fromtimestamp(expiry, UTC),
    )


@dataclass(frozen=True, slots=True)
class VerifiedLink:
    link_id: str
    expires_at: datetime


def verify_token(token: str, *, key: bytes, now: datetime) -> VerifiedLink:
    """The link a token names; raises :class:`LinkInvalid` (403) or :class:`LinkExpired` (410)."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        raise LinkInvalid
    parts = token.split(".")
    if len(parts) != 3:
        raise LinkInvalid
    link_id, expiry_text, signature = parts
    if (
        not _LINK_ID.match(link_id)
        or not _EXPIRY.match(expiry_text)
        or len(signature) != _SIGNATURE_LENGTH
    ):
        raise LinkInvalid
    try:
        base64.urlsafe_b64decode(signature + "=")
    except (binascii.Error, ValueError):
        raise LinkInvalid from None
    expiry = int(expiry_text)
    expected = _sign(key, link_id, expiry)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise LinkInvalid
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise LinkExpired(data=[expires_at.isoformat()])
    return VerifiedLink(link_id=link_id, expires_at=expires_at)
