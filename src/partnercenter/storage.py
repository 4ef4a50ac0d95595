"""Where product files live: a local folder by default, or an S3-compatible bucket.

Every backend answers the same :class:`Storage` protocol, so the rest of the application
never knows which one it talks to:

- ``put(key, fileobj)`` stores a file and returns its :class:`StoredObject` (size, SHA-256,
  ETag); ``stat(key)`` answers the same for a stored file.
- ``open_range(key, start, end)`` yields the bytes ``start`` (inclusive) to ``end``
  (exclusive) in chunks, never the whole file at once.
- ``local_path(key)`` gives the file's path when the server may send it itself (the local
  folder), ``None`` otherwise (S3).

The backend is chosen by ``settings.resolved_storage_url`` through :func:`get_storage`:
``file:///srv/partnercenter/storage`` or ``s3://bucket/optional/prefix``. For S3 the endpoint
of an S3-compatible service comes from ``PARTNERCENTER_S3_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL`` and the credentials from boto3's usual sources (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, profiles, instance roles).

Keys are relative paths of ``/``-separated segments made of letters, digits, ``.``, ``_``
and ``-``; no segment may be empty or start with a dot, so a key can never leave the storage
folder (``..``) nor reach its bookkeeping folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from partnercenter.config import Settings
from partnercenter.errors import DomainError
from partnercenter.i18n import N_

CHUNK_SIZE = 1024 * 1024
"""Bytes per chunk when reading or hashing; large enough that per-chunk costs vanish."""

MULTIPART_THRESHOLD = 64 * 1024 * 1024
"""Files larger than this go to S3 as multipart uploads."""

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,254}$")
_MAX_KEY_LENGTH = 1024


class StorageError(DomainError):
    code = 16001
    name = "storage_error"
    status = 500
    default_description = N_("The file store could not complete the operation.")


class InvalidStorageKey(DomainError):
    code = 16002
    name = "invalid_storage_key"
    status = 400
    default_description = N_("The file name is not valid in the file store.")


class StoredObjectNotFound(DomainError):
    code = 16003
    name = "stored_object_not_found"
    status = 404
    default_description = N_("The file was not found in the file store.")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the store knows about one file."""

    key: str
    size: int
    sha256: str
    """Lower-case hex SHA-256 of the whole content."""
    etag: str
    """A strong HTTP entity tag, quoted (``"..."``); changes whenever the content does."""
    last_modified: datetime
    """Aware UTC, whole seconds (what an HTTP date can carry)."""


@runtime_checkable
class Storage(Protocol):
    """The interface every file store implements."""

    def put(self, key: str, fileobj: IO[bytes]) -> StoredObject:
        """Store ``fileobj`` (read from its current position to its end) under ``key``."""
        ...

    def stat(self, key: str) -> StoredObject:
        """Describe the stored file; raises :class:`StoredObjectNotFound`."""
        ...

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` (exclusive) in chunks."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the file; removing a missing file is not an error."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk, when the server may send it itself."""
        ...

    def presigned_url(self, key: str, *, filename: str, seconds: int) -> str | None:
        """A URL that fetches the file without credentials for ``seconds``, or None."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`InvalidStorageKey`."""
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidStorageKey(data=[key])
    segments = key.split("/")
    if not all(_KEY_SEGMENT.match(segment) for segment in segments):
        raise InvalidStorageKey(data=[key])
    return key


def _check_range(start: int, end: int, size: int) -> None:
    if not (0 <= start <= end <= size):
        raise ValueError(f"range {start}-{end} is outside 0-{size}")


def _http_time(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


class LocalStorage:
    """Files in a folder; writes are atomic (temporary file, fsync, rename).

    Beside each file the store keeps its size, modification time and SHA-256 in
    ``.meta/<key>.json``; a file copied into the folder by hand gets its record computed the
    first time it is asked about, and again whenever its size or time changed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root
        self._meta = self.root / ".meta"
        self._tmp = self.root / ".tmp"
        for folder in (self.root, self._meta, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = (self._objects / validate_key(key)).resolve()
        # validate_key already forbids "..": this guards against symlinks leading out.
        if not path.is_relative_to(self.root):
            raise InvalidStorageKey(data=[key])
        return path

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    def put(self, key: str, fileobj: IO[bytes]) -> StoredObject:
        path = self._path(key)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := fileobj.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return self._record(key, path, digest.hexdigest())

    def _record(self, key: str, path: Path, sha256: str) -> StoredObject:
        st = path.stat()
        meta = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
        meta_path = self._meta_path(key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"meta-{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        return self._object(key, st, sha256)

    @staticmethod
    def _object(key: str, st: os.stat_result, sha256: str) -> StoredObject:
        return StoredObject(
            key=key,
            size=st.st_size,
            sha256=sha256,
            etag=f'"{sha256}"',
            last_modified=_http_time(datetime.fromtimestamp(st.st_mtime, UTC)),
        )

    def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise StoredObjectNotFound(data=[key]) from None
        if not path.is_file():
            raise StoredObjectNotFound(data=[key])
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except (FileNotFoundError, ValueError):
            meta = None
        if meta and meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns:
            return self._object(key, st, str(meta["sha256"]))
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        return self._record(key, path, digest.hexdigest())

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise StoredObjectNotFound(data=[key]) from None
        size = os.fstat(f.fileno()).st_size
        try:
            _check_range(start, end, size)
        except ValueError:
            f.close()
            raise
        return _read_file_range(f, start, end)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def presigned_url(self, key: str, *, filename: str, seconds: int) -> str | None:
        """None: a local file is sent by the server (pathsend) or the front proxy."""
        validate_key(key)
        return None


def _read_file_range(f: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    with f:
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = f.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise StorageError(N_("The stored file is shorter than recorded."))
            remaining -= len(chunk)
            yield chunk


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class S3Storage:
    """Files in an S3 bucket (or any S3-compatible service), under an optional prefix.

    The SHA-256 travels with each object as the user metadata ``sha256``; reads are ranged
    ``GetObject`` calls pinned to the ETag seen by :meth:`stat`, so a file replaced in the
    middle of a download fails loudly instead of mixing two versions.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region_name,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        self.client = client
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD // 4,
            use_threads=True,
            max_concurrency=4,
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _is_missing(self, error: Exception) -> bool:
        from botocore.exceptions import ClientError

        if not isinstance(error, ClientError):
            return False
        code = str(error.response.get("Error", {}).get("Code", ""))
        return code in {"404", "NoSuchKey", "NotFound"}

    def put(self, key: str, fileobj: IO[bytes]) -> StoredObject:
        s3_key = self._key(key)
        with _SeekableCopy(fileobj) as (source, start):
            digest = hashlib.sha256()
            while chunk := source.read(CHUNK_SIZE):
                digest.update(chunk)
            source.seek(start)
            sha256 = digest.hexdigest()
            self.client.upload_fileobj(
                source,
                self.bucket,
                s3_key,
                ExtraArgs={
                    "Metadata": {"sha256": sha256},
                    "ContentType": "application/octet-stream",
                },
                Config=self._transfer,
            )
        return self.stat(key)

    def stat(self, key: str) -> StoredObject:
        s3_key = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=s3_key)
        except Exception as error:
            if self._is_missing(error):
                raise StoredObjectNotFound(data=[key]) from None
            raise
        sha256 = head.get("Metadata", {}).get("sha256")
        if not sha256:
            # An object uploaded by other means: hash it once and keep the result on it.
            digest = hashlib.sha256()
            for chunk in self._get_range(s3_key, 0, int(head["ContentLength"]), head["ETag"]):
                digest.update(chunk)
            sha256 = digest.hexdigest()
            self.client.copy(
                {"Bucket": self.bucket, "Key": s3_key},
                self.bucket,
                s3_key,
                ExtraArgs={"Metadata": {"sha256": sha256}, "MetadataDirective": "REPLACE"},
                Config=self._transfer,
            )
            head = self.client.head_object(Bucket=self.bucket, Key=s3_key)
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            sha256=sha256,
            etag=str(head["ETag"]),
            last_modified=_http_time(head["LastModified"]),
        )

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        obj = self.stat(key)
        _check_range(start, end, obj.size)
        return self._get_range(self._key(key), start, end, obj.etag)

    def _get_range(self, s3_key: str, start: int, end: int, etag: str) -> Iterator[bytes]:
        if start == end:
            return iter(())
        response = self.client.get_object(
            Bucket=self.bucket, Key=s3_key, Range=f"bytes={start}-{end - 1}", IfMatch=etag
        )
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                remaining = end - start
                while remaining > 0:
                    chunk = body.read(min(CHUNK_SIZE, remaining))
                    if not chunk:
                        raise StorageError(N_("The stored file is shorter than recorded."))
                    remaining -= len(chunk)
                    yield chunk
            finally:
                body.close()

        return chunks()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as error:
            if self._is_missing(error):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    def presigned_url(self, key: str, *, filename: str, seconds: int) -> str | None:
        """A presigned ``GetObject`` URL valid ``seconds``, naming the file for the browser.

        Pinned to nothing but the key: the caller has just checked the purchase and written
        the audit record, and the URL lives only for ``seconds``.
        """
        from partnercenter.downloads import content_disposition

        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": content_disposition(filename),
            },
            ExpiresIn=seconds,
        )
        return url


class _SeekableCopy:
    """Give a seekable stream for ``fileobj``: itself when it can seek, else a spooled copy."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._fileobj = fileobj
        self._spool: IO[bytes] | None = None

    def __enter__(self) -> tuple[IO[bytes], int]:
        try:
            if self._fileobj.seekable():
                return self._fileobj, self._fileobj.tell()
        except (AttributeError, OSError):
            pass
        self._spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8)
        shutil.copyfileobj(self._fileobj, self._spool, CHUNK_SIZE)
        self._spool.seek(0)
        return self._spool, 0

    def __exit__(self, *exc: object) -> None:
        if self._spool is not None:
            self._spool.close()


_cache: dict[tuple[str, str | None], Storage] = {}
_cache_lock = threading.Lock()


def storage_from_url(url: str, *, endpoint_url: str | None = None) -> Storage:
    """Build the store a ``file://`` or ``s3://`` URL names."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must name a local folder: {url}")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 storage URL must name a bucket: {url}")
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=endpoint_url)
    raise ValueError(f"unsupported storage URL (use file:// or s3://): {url}")


def get_storage(settings: Settings) -> Storage:
    """The store the settings name; one instance per URL and endpoint in a process."""
    url = settings.resolved_storage_url
    endpoint = (
        os.environ.get("PARTNERCENTER_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        if url.startswith("s3:")
        else None
    )
    with _cache_lock:
        storage = _cache.get((url, endpoint))
        if storage is None:
            storage = storage_from_url(url, endpoint_url=endpoint)
            _cache[(url, endpoint)] = storage
        return storage
