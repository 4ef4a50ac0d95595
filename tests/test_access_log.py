"""The access log never carries the secret of a copied download link."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient


def test_copied_link_tokens_are_redacted_from_the_access_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "abc.def-very-secret-token"
    logger = logging.getLogger("partnercenter.http")
    logger.addHandler(caplog.handler)
    try:
        client.get(f"/downloads/{secret}")
    finally:
        logger.removeHandler(caplog.handler)
    paths = [getattr(r, "path", "") for r in caplog.records if r.name == "partnercenter.http"]
    assert paths and set(paths) == {"/downloads/[redacted]"}
    assert all(secret not in r.getMessage() for r in caplog.records)
