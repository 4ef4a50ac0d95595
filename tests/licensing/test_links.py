"""Signed copied-link tokens: tamper-proof, expiring, URL-safe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnercenter.config import Settings
from partnercenter.licensing.links import (
    DEFAULT_LIFETIME,
    InvalidLinkLifetime,
    LinkExpired,
    LinkInvalid,
    issue_token,
    link_key,
    link_lifetime,
    validate_lifetime,
    verify_token,
)

NOW = datetime(2026, 11, 2, 10, 0, 30, 500000, tzinfo=UTC)
KEY = hashlib.sha256(b"test signing key").digest()
URL_SAFE = set(string.ascii_letters + string.digits + "-_.")


def test_a_fresh_token_verifies_and_is_url_safe() -> None:
    issued = issue_token("lnk_01HZX", key=KEY, now=NOW, lifetime=DEFAULT_LIFETIME)
    assert set(issued.token) <= URL_SAFE
    assert issued.expires_at == datetime(2026, 11, 3, 10, 0, 30, tzinfo=UTC)
    verified = verify_token(issued.token, key=KEY, now=NOW + timedelta(hours=23, minutes=59))
    assert verified.link_id == "lnk_01HZX"
    assert verified.expires_at == issued.expires_at


def test_expired_token_answers_410_from_the_second_it_expires() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=timedelta(minutes=1))
    verify_token(issued.token, key=KEY, now=issued.expires_at - timedelta(microseconds=1))
    with pytest.raises(LinkExpired) as caught:
        verify_token(issued.token, key=KEY, now=issued.expires_at)
    assert caught.value.status == 410


def test_token_signed_with_another_key_is_refused() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=DEFAULT_LIFETIME)
    with pytest.raises(LinkInvalid) as caught:
        verify_token(issued.token, key=b"another key" * 3, now=NOW)
    assert caught.value.status == 403


def test_extending_the_expiry_breaks_the_signature() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=DEFAULT_LIFETIME)
    link_id, expiry, signature = issued.token.split(".")
    later = f"{link_id}.{int(expiry) + 86400}.{signature}"
    with pytest.raises(LinkInvalid):
        verify_token(later, key=KEY, now=NOW)


def test_another_link_id_breaks_the_signature() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=DEFAULT_LIFETIME)
    _, expiry, signature = issued.token.split(".")
    with pytest.raises(LinkInvalid):
        verify_token(f"abd.{expiry}.{signature}", key=KEY, now=NOW)


def test_tampered_and_expired_is_still_a_403() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=timedelta(minutes=1))
    link_id, expiry, signature = issued.token.split(".")
    forged = f"{link_id}.{expiry}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"
    with pytest.raises(LinkInvalid):
        verify_token(forged, key=KEY, now=NOW + timedelta(days=30))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "abc.123",
        "abc.123.sig.extra",
        "a/b.123." + "A" * 43,
        "abc.-5." + "A" * 43,
        "abc.12x." + "A" * 43,
        "abc.123." + "A" * 42,
        "abc.123." + "A" * 42 + "=",
        "abc.123." + "!" * 43,
        "x" * 500,
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(LinkInvalid):
        verify_token(token, key=KEY, now=NOW)


@given(st.text(max_size=200))
def test_arbitrary_text_never_verifies_nor_crashes(token: str) -> None:
    with pytest.raises(LinkInvalid):
        verify_token(token, key=KEY, now=NOW)


@given(position=st.integers(min_value=0), replacement=st.sampled_from(sorted(URL_SAFE)))
def test_any_single_character_change_is_refused(position: int, replacement: str) -> None:
    token = issue_token("lnk_42", key=KEY, now=NOW, lifetime=DEFAULT_LIFETIME).token
    index = position % len(token)
    if token[index] == replacement:
        return
    changed = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(LinkInvalid):
        verify_token(changed, key=KEY, now=NOW)


def test_signature_is_hmac_sha256_over_id_and_expiry() -> None:
    issued = issue_token("abc", key=KEY, now=NOW, lifetime=timedelta(hours=1))
    expiry = int(issued.expires_at.timestamp())
    mac = hmac.new(KEY, f"v1|abc|{expiry}".encode(), hashlib.sha256).digest()
    assert issued.token == f"abc.{expiry}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "lifetime",
    [timedelta(seconds=59), timedelta(0), timedelta(days=7, seconds=1), timedelta(days=-1)],
)
def test_lifetime_outside_one_minute_to_seven_days_is_refused(lifetime: timedelta) -> None:
    with pytest.raises(InvalidLinkLifetime):
        validate_lifetime(lifetime)
    with pytest.raises(InvalidLinkLifetime):
        issue_token("abc", key=KEY, now=NOW, lifetime=lifetime)


def test_lifetime_from_settings_and_requests(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 40)
    assert link_lifetime(settings) == timedelta(hours=24)
    assert link_lifetime(settings, minutes=1) == timedelta(minutes=1)
    assert link_lifetime(settings, minutes=7 * 24 * 60) == timedelta(days=7)
    with pytest.raises(InvalidLinkLifetime):
        link_lifetime(settings, minutes=0)
    assert link_lifetime(Settings(data_dir=tmp_path, download_link_hours=0.5)) == timedelta(
        minutes=30
    )
    with pytest.raises(InvalidLinkLifetime):
        link_lifetime(Settings(data_dir=tmp_path, download_link_hours=24 * 8))


def test_link_key_is_derived_from_the_signing_secret(tmp_path: Path) -> None:
    one = link_key(Settings(data_dir=tmp_path, secret_key="a" * 40))
    two = link_key(Settings(data_dir=tmp_path, secret_key="b" * 40))
    assert len(one) == 32 and one != two
    assert one != b"a" * 40
    assert link_key(Settings(data_dir=tmp_path, secret_key="a" * 40)) == one
