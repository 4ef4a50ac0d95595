"""Fixtures for the file stores: a local folder, and a real S3-protocol server (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from partnercenter.storage import LocalStorage, S3Storage, Storage


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread on a free loopback port, for the whole run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    """A fresh bucket on the S3 server, under a prefix."""
    bucket = f"pc-test-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(
        bucket,
        "files",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    storage.client.create_bucket(Bucket=bucket)
    return storage


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each contract test runs once per backend."""
    name = "local_storage" if request.param == "local" else "s3_storage"
    store: Storage = request.getfixturevalue(name)
    return store
