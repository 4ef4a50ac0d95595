"""The same contract for every file store: local folder and S3 (moto server)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from partnercenter.config import Settings
from partnercenter.storage import (
    CHUNK_SIZE,
    InvalidStorageKey,
    LocalStorage,
    S3Storage,
    Storage,
    StoredObjectNotFound,
    get_storage,
    storage_from_url,
    validate_key,
)


class _Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like an upload body."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _payload(size: int) -> bytes:
    return os.urandom(size)


def test_put_then_stat_gives_size_sha256_and_etag(storage: Storage) -> None:
    data = _payload(300_000)
    stored = storage.put("products/office/setup.iso", io.BytesIO(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.etag.startswith('"') and stored.etag.endswith('"')
    assert stored.last_modified.tzinfo is not None
    assert stored.last_modified.microsecond == 0
    again = storage.stat("products/office/setup.iso")
    assert (again.size, again.sha256, again.etag) == (stored.size, stored.sha256, stored.etag)


def test_open_range_yields_exactly_the_requested_bytes_in_chunks(storage: Storage) -> None:
    data = _payload(CHUNK_SIZE * 2 + 12_345)
    storage.put("f.bin", io.BytesIO(data))
    whole = list(storage.open_range("f.bin", 0, len(data)))
    assert b"".join(whole) == data
    assert len(whole) >= 3
    assert all(len(chunk) <= CHUNK_SIZE for chunk in whole)
    assert b"".join(storage.open_range("f.bin", 10, 20)) == data[10:20]
    tail_start = len(data) - 7
    assert b"".join(storage.open_range("f.bin", tail_start, len(data))) == data[tail_start:]
    assert b"".join(storage.open_range("f.bin", 5, 5)) == b""


def test_open_range_outside_the_file_is_refused(storage: Storage) -> None:
    storage.put("f.bin", io.BytesIO(b"0123456789"))
    with pytest.raises(ValueError):
        list(storage.open_range("f.bin", 5, 11))
    with pytest.raises(ValueError):
        list(storage.open_range("f.bin", 6, 5))


def test_put_replaces_and_the_etag_changes(storage: Storage) -> None:
    first = storage.put("f.bin", io.BytesIO(b"first version"))
    second = storage.put("f.bin", io.BytesIO(b"second version, longer"))
    assert second.etag != first.etag
    assert second.sha256 == hashlib.sha256(b"second version, longer").hexdigest()
    assert b"".join(storage.open_range("f.bin", 0, second.size)) == b"second version, longer"


def test_put_reads_from_an_unseekable_stream(storage: Storage) -> None:
    data = _payload(CHUNK_SIZE + 99)
    stored = storage.put("stream.bin", io.BufferedReader(_Unseekable(data)))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(storage.open_range("stream.bin", 0, len(data))) == data


def test_empty_file(storage: Storage) -> None:
    stored = storage.put("empty.txt", io.BytesIO(b""))
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert b"".join(storage.open_range("empty.txt", 0, 0)) == b""


def test_exists_and_delete(storage: Storage) -> None:
    assert not storage.exists("a/b.bin")
    storage.put("a/b.bin", io.BytesIO(b"x"))
    assert storage.exists("a/b.bin")
    storage.delete("a/b.bin")
    assert not storage.exists("a/b.bin")
    storage.delete("a/b.bin")  # deleting twice is fine
    with pytest.raises(StoredObjectNotFound):
        storage.stat("a/b.bin")
    with pytest.raises(StoredObjectNotFound):
        list(storage.open_range("a/b.bin", 0, 0))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../outside",
        "a/./b",
        "a//b",
        ".meta/x.json",
        ".tmp/x",
        "a/.hidden",
        "a\\b",
        "a/b/",
        "naïve.bin",
        "x" * 2000,
    ],
)
def test_unsafe_keys_are_refused_everywhere(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidStorageKey):
        validate_key(key)
    with pytest.raises(InvalidStorageKey):
        storage.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidStorageKey):
        storage.stat(key)
    with pytest.raises(InvalidStorageKey):
        storage.exists(key)
    with pytest.raises(InvalidStorageKey):
        storage.local_path(key)


def test_local_path_only_for_the_local_folder(
    local_storage: LocalStorage, s3_storage: S3Storage
) -> None:
    local_storage.put("k.bin", io.BytesIO(b"abc"))
    path = local_storage.local_path("k.bin")
    assert path is not None and path.read_bytes() == b"abc"
    assert path.is_relative_to(local_storage.root)
    assert local_storage.local_path("missing.bin") is None
    s3_storage.put("k.bin", io.BytesIO(b"abc"))
    assert s3_storage.local_path("k.bin") is None


def test_local_write_is_atomic_and_leaves_no_temporary_file(local_storage: LocalStorage) -> None:
    local_storage.put("k.bin", io.BytesIO(b"old"))

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise OSError("connection reset while uploading")

    with pytest.raises(OSError):
        local_storage.put("k.bin", io.BufferedReader(Failing()))
    assert b"".join(local_storage.open_range("k.bin", 0, 3)) == b"old"
    assert list((local_storage.root / ".tmp").iterdir()) == []


def test_local_symlink_out_of_the_folder_is_refused(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (local_storage.root / "link.txt").symlink_to(secret)
    with pytest.raises(InvalidStorageKey):
        local_storage.stat("link.txt")


def test_local_file_copied_in_by_hand_gets_its_checksum(local_storage: LocalStorage) -> None:
    data = _payload(50_000)
    (local_storage.root / "dropped.iso").write_bytes(data)
    first = local_storage.stat("dropped.iso")
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    # Changed behind the store's back: the record is recomputed, not trusted.
    (local_storage.root / "dropped.iso").write_bytes(data + b"more")
    assert local_storage.stat("dropped.iso").sha256 == hashlib.sha256(data + b"more").hexdigest()


def test_s3_object_uploaded_by_other_means_gets_its_checksum(s3_storage: S3Storage) -> None:
    data = _payload(40_000)
    s3_storage.client.put_object(Bucket=s3_storage.bucket, Key="files/raw.bin", Body=data)
    stored = s3_storage.stat("raw.bin")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key="files/raw.bin")
    assert head["Metadata"]["sha256"] == stored.sha256


def test_s3_large_file_goes_up_in_parts(s3_storage: S3Storage, monkeypatch) -> None:
    from boto3.s3.transfer import TransferConfig

    small_parts = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
    monkeypatch.setattr(s3_storage, "_transfer", small_parts)
    data = _payload(11 * 2**20)
    stored = s3_storage.put("big.bin", io.BytesIO(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.etag.rstrip('"').endswith("-3")  # S3 marks multipart objects by part count
    assert (
        b"".join(s3_storage.open_range("big.bin", 7 * 2**20, 7 * 2**20 + 100))
        == data[7 * 2**20 : 7 * 2**20 + 100]
    )


def test_s3_keys_live_under_the_prefix(s3_storage: S3Storage) -> None:
    s3_storage.put("a/b.bin", io.BytesIO(b"x"))
    listed = s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["files/a/b.bin"]


def test_get_storage_follows_the_storage_url(tmp_path: Path, monkeypatch) -> None:
    default = get_storage(Settings(data_dir=tmp_path))
    assert isinstance(default, LocalStorage)
    assert default.root == (tmp_path / "storage").resolve()
    assert get_storage(Settings(data_dir=tmp_path)) is default
    explicit = get_storage(Settings(storage_url=(tmp_path / "elsewhere").as_uri()))
    assert isinstance(explicit, LocalStorage)
    assert explicit.root == (tmp_path / "elsewhere").resolve()

    monkeypatch.setenv("PARTNERCENTER_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = get_storage(Settings(storage_url="s3://my-bucket/some/prefix/"))
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "some/prefix")
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["ftp://host/x", "s3:///no-bucket", "file://otherhost/x"])
def test_unsupported_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        storage_from_url(url)
