"""Downloads of stored files: Range, If-Range, checksums, streaming without memory growth."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import tracemalloc
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from partnercenter import downloads
from partnercenter.config import Settings
from partnercenter.downloads import (
    ByteRange,
    LocalFileRange,
    RangeNotSatisfiable,
    StoredObjectResponse,
    content_disposition,
    file_response,
    if_range_allows,
    parse_range,
)
from partnercenter.errors import DomainError
from partnercenter.storage import (
    CHUNK_SIZE,
    LocalStorage,
    Storage,
    StorageError,
    StoredObject,
    StoredObjectNotFound,
)


def _app(storage: Storage) -> Starlette:
    async def download(request: Request) -> StoredObjectResponse:
        obj = await anyio.to_thread.run_sync(storage.stat, request.path_params["key"])
        name = request.query_params.get("name", "setup.iso")
        return StoredObjectResponse(storage, obj, filename=name)

    async def domain_error(request: Request, exc: Exception) -> PlainTextResponse:
        assert isinstance(exc, DomainError)
        return PlainTextResponse(exc.name, status_code=exc.status)

    return Starlette(
        routes=[Route("/files/{key:path}", download, methods=["GET", "HEAD"])],
        exception_handlers={DomainError: domain_error},
    )


@pytest.fixture
def data() -> bytes:
    return os.urandom(3 * CHUNK_SIZE + 1234)


@pytest.fixture
def stored(storage: Storage, data: bytes) -> StoredObject:
    return storage.put("products/setup.iso", io.BytesIO(data))


@pytest.fixture
def http(storage: Storage, stored: StoredObject) -> TestClient:
    return TestClient(_app(storage))


URL = "/files/products/setup.iso"
T = TypeVar("T")


# --- the pure pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 10)),
        ("bytes=90-", 100, ByteRange(90, 100)),
        ("bytes=90-1000", 100, ByteRange(90, 100)),
        ("bytes=-10", 100, ByteRange(90, 100)),
        ("bytes=-1000", 100, ByteRange(0, 100)),
        ("bytes=99-99", 100, ByteRange(99, 100)),
        ("BYTES = 5 - 6", 100, ByteRange(5, 7)),
        ("bytes=5368709000-", 5 * 2**30, ByteRange(5368709000, 5 * 2**30)),
        ("bytes=9-3", 100, None),  # invalid: ignored
        ("bytes=0-1,5-6", 100, None),  # several ranges: whole file
        ("items=0-9", 100, None),  # another unit: ignored
        ("bytes=abc", 100, None),
        ("bytes=-", 100, None),
        ("", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-5", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_if_range(local_storage: LocalStorage) -> None:
    obj = local_storage.put("a.bin", io.BytesIO(b"abc"))
    date = format_datetime(obj.last_modified, usegmt=True)
    assert if_range_allows(None, obj)
    assert if_range_allows(obj.etag, obj)
    assert not if_range_allows(f"W/{obj.etag}", obj)
    assert not if_range_allows('"something-else"', obj)
    assert if_range_allows(date, obj)
    assert not if_range_allows(
        format_datetime(obj.last_modified - timedelta(seconds=1), usegmt=True), obj
    )
    assert not if_range_allows("not a date", obj)


def test_content_disposition_carries_unicode_names_safely() -> None:
    value = content_disposition('Office 2024 «Pro» "x64".iso')
    assert value.startswith('attachment; filename="Office 2024 _Pro_ _x64_.iso"; ')
    assert value.endswith("filename*=UTF-8''" + quote('Office 2024 «Pro» "x64".iso', safe=""))
    assert "\n" not in content_disposition("a\r\nSet-Cookie: x")


# --- over HTTP, for both stores ----------------------------------------------------------


def test_full_download_has_length_etag_and_checksums(
    http: TestClient, stored: StoredObject, data: bytes
) -> None:
    response = http.get(URL, params={"name": "Ofimática Pro Plus 2024.iso"})
    assert response.status_code == 200
    assert response.content == data
    h = response.headers
    assert h["content-length"] == str(len(data))
    assert h["etag"] == stored.etag
    assert h["accept-ranges"] == "bytes"
    assert h["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert h["digest"] == f"sha-256={b64}"
    assert h["repr-digest"] == f"sha-256=:{b64}:"
    assert h["last-modified"] == format_datetime(stored.last_modified, usegmt=True)
    assert h["content-disposition"].endswith(
        "filename*=UTF-8''" + quote("Ofimática Pro Plus 2024.iso", safe="")
    )
    assert "content-range" not in h


def test_range_answers_206_with_content_range(http: TestClient, data: bytes) -> None:
    size = len(data)
    response = http.get(URL, headers={"Range": "bytes=1000-2999999"})
    assert response.status_code == 206
    assert response.content == data[1000:3000000]
    assert response.headers["content-range"] == f"bytes 1000-2999999/{size}"
    assert response.headers["content-length"] == str(3000000 - 1000)

    tail = http.get(URL, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == data[-100:]
    assert tail.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"


def test_broken_download_resumes_to_the_same_checksum(http: TestClient, data: bytes) -> None:
    first = http.get(URL, headers={"Range": "bytes=0-1048575"})
    etag = first.headers["etag"]
    rest = http.get(URL, headers={"Range": f"bytes={len(first.content)}-", "If-Range": etag})
    assert rest.status_code == 206
    whole = first.content + rest.content
    assert hashlib.sha256(whole).hexdigest() == rest.headers["x-checksum-sha256"]
    assert whole == data


def test_range_past_the_end_answers_416(http: TestClient, data: bytes) -> None:
    response = http.get(URL, headers={"Range": f"bytes={len(data)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_if_range_with_another_etag_sends_the_whole_file(http: TestClient, data: bytes) -> None:
    response = http.get(URL, headers={"Range": "bytes=10-19", "If-Range": '"old-version"'})
    assert response.status_code == 200
    assert response.content == data
    weak = http.get(
        URL, headers={"Range": "bytes=10-19", "If-Range": "W/" + response.headers["etag"]}
    )
    assert weak.status_code == 200


def test_if_range_with_dates(http: TestClient, stored: StoredObject, data: bytes) -> None:
    same = format_datetime(stored.last_modified, usegmt=True)
    older = format_datetime(stored.last_modified - timedelta(hours=1), usegmt=True)
    kept = http.get(URL, headers={"Range": "bytes=10-19", "If-Range": same})
    assert (kept.status_code, kept.content) == (206, data[10:20])
    dropped = http.get(URL, headers={"Range": "bytes=10-19", "If-Range": older})
    assert (dropped.status_code, len(dropped.content)) == (200, len(data))


def test_changed_file_breaks_the_if_range(storage: Storage, http: TestClient) -> None:
    etag = http.get(URL, headers={"Range": "bytes=0-9"}).headers["etag"]
    storage.put("products/setup.iso", io.BytesIO(b"a new build of the product"))
    response = http.get(URL, headers={"Range": "bytes=10-", "If-Range": etag})
    assert response.status_code == 200
    assert response.content == b"a new build of the product"


def test_several_ranges_or_other_units_send_the_whole_file(http: TestClient, data: bytes) -> None:
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=9-3"):
        response = http.get(URL, headers={"Range": header})
        assert (response.status_code, len(response.content)) == (200, len(data)), header


def test_head_and_if_none_match(http: TestClient, stored: StoredObject, data: bytes) -> None:
    head = http.head(URL, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206
    assert head.headers["content-length"] == "100"
    assert head.content == b""
    not_modified = http.get(URL, headers={"If-None-Match": stored.etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert http.get(URL, headers={"If-None-Match": '"other"'}).status_code == 200


def test_empty_file(storage: Storage) -> None:
    storage.put("empty.bin", io.BytesIO(b""))
    client = TestClient(_app(storage))
    full = client.get("/files/empty.bin")
    assert (full.status_code, full.content, full.headers["content-length"]) == (200, b"", "0")
    assert client.get("/files/empty.bin", headers={"Range": "bytes=0-"}).status_code == 416


# --- ASGI level: server file hand-off, client going away ---------------------------------


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run`` in a thread of its own: another test's event loop (the browser tests'
    Playwright) may already be running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn).result()


async def _call(
    app: Any,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    extensions: dict[str, Any] | None = None,
    disconnect: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Run one GET through the ASGI app; returns the non-body messages and body byte count."""
    messages: list[dict[str, Any]] = []
    received = 0
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if disconnect:
            await anyio.sleep(0.05)
            return {"type": "http.disconnect"}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal received
        if message["type"] == "http.response.body":
            received += len(message.get("body", b""))
            await anyio.sleep(0.001)  # a slow client
        else:
            messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": extensions or {},
    }
    await app(scope, receive, send)
    return messages, received


def test_local_full_download_is_handed_to_the_server(local_storage: LocalStorage) -> None:
    local_storage.put("f.bin", io.BytesIO(b"x" * 1000))
    app = _app(local_storage)
    ext = {"http.response.pathsend": {}}
    messages, received = run(lambda: _call(app, "/files/f.bin", extensions=ext))
    assert messages[-1] == {
        "type": "http.response.pathsend",
        "path": str(local_storage.root / "f.bin"),
    }
    assert received == 0
    # A range is streamed even then: pathsend sends whole files only.
    messages, received = run(
        lambda: _call(app, "/files/f.bin", [(b"range", b"bytes=0-9")], extensions=ext)
    )
    assert messages[0]["status"] == 206 and received == 10


def test_range_of_every_byte_is_handed_to_the_server_as_206(local_storage: LocalStorage) -> None:
    data = os.urandom(5000)
    local_storage.put("f.bin", io.BytesIO(data))
    app = _app(local_storage)
    ext = {"http.response.pathsend": {}}
    for header in (b"bytes=0-", b"bytes=0-4999", b"bytes=0-99999", b"bytes=-5000", b"bytes=-9999"):
        messages, received = run(
            lambda h=header: _call(app, "/files/f.bin", [(b"range", h)], extensions=ext)
        )
        start = dict(messages[0]["headers"])
        assert messages[0]["status"] == 206, header
        assert start[b"content-range"] == b"bytes 0-4999/5000"
        assert start[b"content-length"] == b"5000"
        assert messages[-1] == {
            "type": "http.response.pathsend",
            "path": str(local_storage.root / "f.bin"),
        }
        assert received == 0
    # Every byte but the first: streamed, since the server sends whole files only.
    messages, received = run(
        lambda: _call(app, "/files/f.bin", [(b"range", b"bytes=1-")], extensions=ext)
    )
    assert (messages[0]["status"], messages[-1]["type"], received) == (
        206,
        "http.response.start",
        4999,
    )


def test_file_response_finds_the_local_file_before_the_body_is_sent(
    local_storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = local_storage.put("f.bin", io.BytesIO(b"z" * 100))
    response = file_response(Settings(), local_storage, obj, filename="f.bin")
    asked: list[str] = []
    monkeypatch.setattr(local_storage, "local_path", lambda key: asked.append(key))
    messages, _ = run(lambda: _call(response, "/f.bin", extensions={"http.response.pathsend": {}}))
    assert messages[-1]["path"] == str(local_storage.root / "f.bin")
    assert asked == []


def test_s3_download_is_streamed_even_when_the_server_offers_file_hand_off(
    storage: Storage,
) -> None:
    storage.put("f.bin", io.BytesIO(b"y" * 5000))
    ext = {"http.response.pathsend": {}}
    messages, received = run(lambda: _call(_app(storage), "/files/f.bin", extensions=ext))
    if isinstance(storage, LocalStorage):
        assert messages[-1]["type"] == "http.response.pathsend"
    else:
        assert [m["type"] for m in messages] == ["http.response.start"]
        assert received == 5000


def _sparse_file(storage: LocalStorage, key: str, size: int) -> bytes:
    """A file of ``size`` bytes taking almost no disk: a hole, then 1 MiB of data."""
    tail = os.urandom(2**20)
    path = storage.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size - len(tail))
        f.seek(size - len(tail))
        f.write(tail)
    assert path.stat().st_size == size
    return tail


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStorage, int, bytes]:
    """A 5 GiB sparse file, checksummed once (the store hashes it on first ``stat``)."""
    storage = LocalStorage(tmp_path_factory.mktemp("sparse"))
    size = 5 * 2**30
    tail = _sparse_file(storage, "big/image.iso", size)
    storage.stat("big/image.iso")
    return storage, size, tail


def test_client_going_away_stops_the_stream(local_storage: LocalStorage) -> None:
    size = 512 * 2**20
    _sparse_file(local_storage, "big/image.iso", size)
    storage = local_storage
    messages, received = run(lambda: _call(_app(storage), "/files/big/image.iso", disconnect=True))
    assert messages[0]["status"] == 200
    assert 0 < received < size // 2


def test_several_gib_file_range_near_the_end_with_flat_memory(
    sparse: tuple[LocalStorage, int, bytes],
) -> None:
    storage, size, tail = sparse
    obj = storage.stat("big/image.iso")
    assert obj.size == size
    app = _app(storage)

    response = TestClient(app).get("/files/big/image.iso", headers={"Range": "bytes=-65536"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {size - 65536}-{size - 1}/{size}"
    assert response.content == tail[-65536:]
    assert response.headers["x-checksum-sha256"] == obj.sha256

    # The last 600 MiB, crossing the 4 GiB and 5 GiB marks, streamed to a counting client.
    start = size - 600 * 2**20
    tracemalloc.start()
    try:
        messages, received = run(
            lambda: _call(app, "/files/big/image.iso", [(b"range", f"bytes={start}-".encode())])
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert messages[0]["status"] == 206
    assert received == size - start
    assert peak < 32 * 2**20, f"peak {peak} bytes while streaming {received} bytes"


def test_storage_root_is_not_served_by_key_tricks(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    client = TestClient(_app(local_storage))
    assert client.get("/files/%2e%2e/outside.txt").status_code == 400
    assert client.get("/files/.meta/x.json").status_code == 400
    assert client.get("/files/missing.iso").status_code == 404


# --- reading a local file from the event loop ----------------------------------------------


async def _read_all(reader: LocalFileRange) -> list[bytes]:
    chunks = []
    try:
        while chunk := await reader.read():
            chunks.append(chunk)
    finally:
        reader.close()
    return chunks


def _count_thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., T], *args: object) -> T:
        hops.append(func)
        return await real(func, *args)

    monkeypatch.setattr(downloads.anyio.to_thread, "run_sync", counted)
    return hops


def test_local_range_reads_the_exact_bytes_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 777)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for start, end in [(0, len(data)), (5, CHUNK_SIZE + 9), (len(data) - 10, len(data)), (7, 7)]:
        chunks = run(lambda s=start, e=end: _read_all(LocalFileRange.open(path, s, e)))
        assert b"".join(chunks) == data[start:end]
        assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)


def test_page_cached_chunks_are_read_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if downloads._RWF_NOWAIT is None:
        pytest.skip("no RWF_NOWAIT on this system: every chunk is read in a thread")
    data = os.urandom(2 * CHUNK_SIZE + 1)
    path = tmp_path / "f.bin"
    path.write_bytes(data)  # just written: in the page cache
    hops = _count_thread_hops(monkeypatch)
    reader = LocalFileRange.open(path, 0, len(data))
    chunks = run(lambda: _read_all(reader))
    assert b"".join(chunks) == data
    if not reader._nowait:
        pytest.skip("this file system refuses RWF_NOWAIT: every chunk is read in a thread")
    assert hops == []
    # Each chunk a new object: the server may hold one until it is written.
    assert len({id(chunk) for chunk in chunks}) == len(chunks) == 3


def test_without_the_no_wait_flag_every_chunk_is_read_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def refused(*args: object) -> int:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(downloads.os, "preadv", refused, raising=False)
    monkeypatch.setattr(downloads, "_RWF_NOWAIT", 8)
    hops = _count_thread_hops(monkeypatch)
    chunks = run(lambda: _read_all(LocalFileRange.open(path, 0, len(data))))
    assert b"".join(chunks) == data
    assert hops == [os.pread] * 3


def test_a_file_cut_short_during_the_download_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(3 * CHUNK_SIZE))
    reader = LocalFileRange.open(path, 0, 3 * CHUNK_SIZE)
    os.truncate(path, CHUNK_SIZE + 5)
    with pytest.raises(StorageError):
        run(lambda: _read_all(reader))
    with pytest.raises(StorageError):
        LocalFileRange.open(path, 0, 3 * CHUNK_SIZE)
    with pytest.raises(StoredObjectNotFound):
        LocalFileRange.open(tmp_path / "missing.bin", 0, 1)
