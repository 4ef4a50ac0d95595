"""Serve a stored file over HTTP: streamed, resumable, with its checksum.

:class:`StoredObjectResponse` is an ASGI response for one stored file:

- ``Content-Length``, a strong ``ETag``, ``Last-Modified``, ``Accept-Ranges: bytes``,
  ``Content-Disposition: attachment`` (with an RFC 8187 ``filename*``) and the SHA-256 as
  ``X-Checksum-SHA256`` (hex), ``Digest`` (RFC 3230) and ``Repr-Digest`` (RFC 9530);
- a single ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answers 206 with
  ``Content-Range``; a range that starts past the end answers 416 with ``bytes */size``;
  a Range in another unit, malformed, or naming several ranges is ignored (full 200), as
  RFC 9110 allows;
- ``If-Range`` with the current strong ETag or exactly the ``Last-Modified`` date keeps the
  range; anything else (another ETag, a weak one, an older date) answers the whole file;
- ``If-None-Match`` with the current ETag answers 304; ``HEAD`` answers the headers only.

The body is never loaded in memory. A local file is handed to the server (ASGI
``http.response.pathsend``) when the server offers it and the answer is the whole file (a 200,
or a 206 whose range is every byte). Otherwise the bytes are sent in chunks of
:data:`~partnercenter.storage.CHUNK_SIZE`, stopping as soon as the client goes away. A chunk of a
local file that is already in the page cache is read on the event loop (``preadv`` with
``RWF_NOWAIT``: the kernel copies it or says it would wait); only a chunk that needs the disk
costs a worker thread. A file in S3 is read in a worker thread.

Starlette's ``FileResponse`` also honours Range and If-Range (1.x), but only for local files;
it answers 400 to a Range in an unknown unit (RFC 9110 says ignore it), compares If-Range
dates as text, sends several ranges as ``multipart/byteranges`` and reads 64 KiB per thread
hop. One class for both stores keeps the behaviour identical whichever store serves the file.
"""

from __future__ import annotations

import base64
import errno
import mimetypes
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.responses import RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from partnercenter.config import Settings
from partnercenter.i18n import N_
from partnercenter.storage import (
    CHUNK_SIZE,
    Storage,
    StorageError,
    StoredObject,
    StoredObjectNotFound,
)

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_UNSAFE_FALLBACK = re.compile(r"[^A-Za-z0-9 ._()\-\[\]+,;=!#$&\'~@^`{}]")


class RangeNotSatisfiable(Exception):
    """The Range names no byte of the file (answered 416)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int
    """Exclusive."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for, or ``None`` to send the whole file.

    Raises :class:`RangeNotSatisfiable` when the range is well formed but names no byte.
    """
    if header is None:
        return None
    match = _RANGE.match(header)
    if match is None:
        # Another unit, several ranges, or not a range at all: ignored (RFC 9110, 14.2).
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last) + 1, size) if last else size
    return ByteRange(start, end)


def if_range_allows(if_range: str | None, obj: StoredObject) -> bool:
    """Whether an ``If-Range`` condition lets a Range apply (no condition: yes)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(("W/", '"')):
        # Only a strong comparison will do: a weak tag never matches.
        return value == obj.etag
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return when.astimezone(UTC) == obj.last_modified


def _if_none_match(header: str | None, obj: StoredObject) -> bool:
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == obj.etag for tag in tags)


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded``."""
    fallback = _UNSAFE_FALLBACK.sub("_", filename).strip() or "download"
    encoded = quote(filename, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def checksum_headers(sha256_hex: str) -> dict[str, str]:
    b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    return {
        "x-checksum-sha256": sha256_hex,
        "digest": f"sha-256={b64}",
        "repr-digest": f"sha-256=:{b64}:",
    }


_RWF_NOWAIT: Final[int | None] = getattr(os, "RWF_NOWAIT", None)


class LocalFileRange:
    """Bytes ``start`` to ``end`` (exclusive) of a local file, read in chunks from async code.

    A chunk in the page cache is copied on the event loop: ``preadv`` with ``RWF_NOWAIT``
    (Linux 4.14+) copies what is cached and refuses to wait for the disk. Only a chunk that
    needs the disk, or every chunk where the flag is missing or refused (another system or
    file system), is read in a worker thread: a thread hop per 1 MiB chunk costs CPU of the
    order of one more copy of the chunk (docs/dev/performance.md, "Downloads").

    A chunk read on the loop is a new ``bytearray`` the kernel filled, handed to the server
    as the ASGI body and never touched again (the server may hold it until it is written):
    no second copy into ``bytes``, as servers take any bytes-like body (Starlette's own
    ``StreamingResponse`` sends ``memoryview`` chunks).

    The file is opened once (:meth:`open`, blocking): a file replaced in the middle of the
    download keeps sending the version it started with. Raises :class:`StoredObjectNotFound`
    when the file is missing, :class:`StorageError` when it is shorter than ``end``.
    """

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._position = start
        self._end = end
        self._nowait = _RWF_NOWAIT is not None

    @classmethod
    def open(cls, path: Path, start: int, end: int) -> LocalFileRange:
        """Open ``path`` for the bytes ``start`` to ``end`` (blocking: call it in a thread)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise StoredObjectNotFound(data=[path.name]) from None
        try:
            if not 0 <= start <= end <= os.fstat(fd).st_size:
                raise StorageError(N_("The stored file is shorter than recorded."))
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, start, end)

    async def read(self) -> bytes | bytearray:
        """The next chunk, at most :data:`CHUNK_SIZE` bytes; ``b""`` once ``end`` is reached."""
        want = min(CHUNK_SIZE, self._end - self._position)
        if want <= 0:
            return b""
        data: bytes | bytearray = self._read_cached(want) if self._nowait else b""
        if not data:
            data = await anyio.to_thread.run_sync(os.pread, self._fd, want, self._position)
            if not data:
                raise StorageError(N_("The stored file is shorter than recorded."))
        self._position += len(data)
        return data

    def _read_cached(self, want: int) -> bytearray:
        """What the page cache holds of the next ``want`` bytes (maybe fewer, maybe none)."""
        assert _RWF_NOWAIT is not None
        chunk = bytearray(want)
        try:
            n = os.preadv(self._fd, [chunk], self._position, _RWF_NOWAIT)
        except BlockingIOError:
            return bytearray()
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            self._nowait = False  # not on this kernel or file system: threads from now on
            return bytearray()
        if n < want:
            del chunk[n:]  # part of it cached: the rest comes with the next chunk
        return chunk

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _AskTheStore:
    """Where a local file is found out when the body is sent (the default)."""


_ASK_THE_STORE: Final = _AskTheStore()


class StoredObjectResponse(Response):
    """Send one stored file, honouring Range, If-Range and If-None-Match."""

    def __init__(
        self,
        storage: Storage,
        obj: StoredObject,
        *,
        filename: str,
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
        local_path: Path | _AskTheStore | None = _ASK_THE_STORE,
    ) -> None:
        """``local_path``: the file on this machine (``storage.local_path``), ``None`` when it
        has none (S3); by default the store is asked when the body is sent (a thread hop)."""
        self.storage = storage
        self.obj = obj
        self._local_path = local_path
        self.filename = filename
        self.status_code = 200
        self.media_type = (
            media_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        )
        self.background = background
        # True when a front proxy sends the bytes (X-Accel-Redirect / X-Sendfile).
        self.offloaded = False
        base = {
            "accept-ranges": "bytes",
            "etag": obj.etag,
            "last-modified": format_datetime(obj.last_modified, usegmt=True),
            "content-disposition": content_disposition(filename),
            "cache-control": "private, no-cache",
            **checksum_headers(obj.sha256),
            "content-length": str(obj.size),
        }
        base.update({k.lower(): v for k, v in (headers or {}).items()})
        self.init_headers(base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = Headers(scope=scope)
        method = str(scope.get("method", "GET")).upper()
        head_only = method == "HEAD"
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        size = self.obj.size

        if method in ("GET", "HEAD") and _if_none_match(
            request_headers.get("if-none-match"), self.obj
        ):
            await self._start(send, 304, headers)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        if self.offloaded and method == "GET":
            # The front proxy sends the body, and answers any Range, from the header we set.
            await self._start(send, 200, headers)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        byte_range: ByteRange | None = None
        if method in ("GET", "HEAD") and if_range_allows(request_headers.get("if-range"), self.obj):
            try:
                byte_range = parse_range(request_headers.get("range"), size)
            except RangeNotSatisfiable:
                headers = [
                    (k, v) for k, v in headers if k not in (b"content-type", b"content-disposition")
                ]
                headers += [
                    (b"content-range", f"bytes */{size}".encode()),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ]
                body = b"" if head_only else b"Requested range not satisfiable\n"
                headers.append((b"content-length", str(len(body)).encode()))
                await self._start(send, 416, headers)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return

        if byte_range is None:
            status, start, end = 200, 0, size
        else:
            status, start, end = 206, byte_range.start, byte_range.end
            headers.append((b"content-range", f"bytes {start}-{end - 1}/{size}".encode()))
        headers.append((b"content-length", str(end - start).encode()))
        await self._start(send, status, headers)

        if head_only or start == end:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif start == 0 and end == size and "http.response.pathsend" in scope.get("extensions", {}):
            # The whole file (a 200, or a 206 naming every byte): the server sends it.
            path = await self._path()
            if path is not None:
                await send({"type": "http.response.pathsend", "path": str(path)})
            else:
                await self._stream(scope, receive, send, start, end)
        else:
            await self._stream(scope, receive, send, start, end)

        if self.background is not None:
            await self.background()

    async def _start(self, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _path(self) -> Path | None:
        if isinstance(self._local_path, _AskTheStore):
            self._local_path = await anyio.to_thread.run_sync(self.storage.local_path, self.obj.key)
        return self._local_path

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, start: int, end: int
    ) -> None:
        read: Callable[[], Awaitable[bytes | bytearray]]
        path = await self._path()
        if path is not None:
            local = await anyio.to_thread.run_sync(LocalFileRange.open, path, start, end)
            read, close = local.read, local.close
        else:
            chunks = await anyio.to_thread.run_sync(
                self.storage.open_range, self.obj.key, start, end
            )

            async def read() -> bytes | bytearray:
                chunk = await anyio.to_thread.run_sync(next, chunks, b"")
                assert isinstance(chunk, bytes)
                return chunk

            def close() -> None:
                closer = getattr(chunks, "close", None)
                if closer is not None:
                    closer()

        try:
            spec = str(scope.get("asgi", {}).get("spec_version", "2.0"))
            if tuple(int(part) for part in spec.split(".")[:2]) >= (2, 4):
                # The server raises OSError from send() once the client is gone.
                await self._send_chunks(read, send)
                return
            async with anyio.create_task_group() as group:

                async def send_all() -> None:
                    await self._send_chunks(read, send)
                    group.cancel_scope.cancel()

                async def watch_disconnect() -> None:
                    while True:
                        message: Message = await receive()
                        if message["type"] == "http.disconnect":
                            group.cancel_scope.cancel()
                            return

                group.start_soon(send_all)
                group.start_soon(watch_disconnect)
        finally:
            if path is not None:
                close()
            else:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(close)

    @staticmethod
    async def _send_chunks(read: Callable[[], Awaitable[bytes | bytearray]], send: Send) -> None:
        while chunk := await read():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def file_response(
    settings: Settings,
    storage: Storage,
    obj: StoredObject,
    *,
    filename: str,
    media_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The response that delivers a stored file once every check has passed.

    Call it after the audit record is committed. By ``settings``:

    - ``download_offload = "x-accel-redirect"``: an empty answer whose ``X-Accel-Redirect``
      names the file under ``download_offload_prefix``; nginx then sends it (sendfile, Range,
      HEAD) from an ``internal`` location aliased to the storage folder;
    - ``"x-sendfile"``: the same hand-off with the file's absolute path (Apache, lighttpd);
    - ``download_redirect_seconds > 0`` and a store that can presign (S3): a 302 to a URL
      that lives that many seconds;
    - otherwise :class:`StoredObjectResponse` (pathsend under granian; Range; HEAD).
    """
    # Here, in the route's worker thread: the response then needs no thread hop to find it.
    path = storage.local_path(obj.key)
    if settings.download_offload != "app" and path is not None:
        response = StoredObjectResponse(
            storage,
            obj,
            filename=filename,
            media_type=media_type,
            headers=headers,
            local_path=path,
        )
        if settings.download_offload == "x-accel-redirect":
            prefix = "/" + settings.download_offload_prefix.strip("/") + "/"
            target = prefix + quote(obj.key)
            response.headers["x-accel-redirect"] = target
        else:
            response.headers["x-sendfile"] = str(path)
        response.offloaded = True
        return response
    if settings.download_redirect_seconds > 0:
        url = storage.presigned_url(
            obj.key, filename=filename, seconds=settings.download_redirect_seconds
        )
        if url is not None:
            return RedirectResponse(
                url, status_code=302, headers={"cache-control": "private, no-store"}
            )
    return StoredObjectResponse(
        storage, obj, filename=filename, media_type=media_type, headers=headers, local_path=path
    )
