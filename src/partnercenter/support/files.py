"""Attachment checks: size, count and an allow-list of types recognised by their content.

A file's name says what it claims to be; its first bytes say what it is. Both must agree with
one of the allowed types, so an executable renamed ``invoice.pdf`` or a PDF renamed
``photo.png`` is refused. The stored content type is the detected one, never the browser's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

from partnercenter.i18n import N_, Message
from partnercenter.support.errors import AttachmentTooLarge, AttachmentTypeNotAllowed

MAX_FILE_BYTES = 10 * 1024 * 1024
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FileType:
    content_type: str
    extensions: tuple[str, ...]


PDF = FileType("application/pdf", (".pdf",))
PNG = FileType("image/png", (".png",))
JPEG = FileType("image/jpeg", (".jpg", ".jpeg"))
ZIP = FileType("application/zip", (".zip",))
TEXT = FileType("text/plain", (".txt", ".log"))
CSV = FileType("text/csv", (".csv",))
ALLOWED = (PDF, PNG, JPEG, ZIP, TEXT, CSV)
ALLOWED_EXTENSIONS = tuple(ext for t in ALLOWED for ext in t.extensions)


@dataclass(frozen=True)
class IncomingFile:
    """A file as uploaded: its name and its bytes (already cut off past the size limit)."""

    file_name: str
    content: bytes
    too_large: bool = False


@dataclass(frozen=True)
class CheckedFile:
    file_name: str
    content_type: str
    content: bytes


def read_limited(name: str, stream: IO[bytes], limit: int = MAX_FILE_BYTES) -> IncomingFile:
    """Read at most ``limit`` + 1 bytes: enough to know a file is too large, never all of it."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return IncomingFile(name or "", b"".join(parts)[:limit], too_large=size > limit)


def _sniff(content: bytes) -> FileType | None:
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP
    if _is_text(content):
        return TEXT
    return None


def _is_text(content: bytes) -> bool:
    """UTF-8 (or ASCII) text without NUL or other control bytes than tab, CR, LF, FF."""
    if b"\x00" in content:
        return False
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 32 and ch not in "\t\r\n\f" for ch in text)


_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()\-]+")


def clean_name(name: str) -> str:
    """The file's base name, without folders or characters that trouble other systems."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).strip(". ") or "file"
    return base[-150:]


def check_file(incoming: IncomingFile) -> CheckedFile:
    """The file with its detected type, or the reason it cannot be attached."""
    name = clean_name(incoming.file_name)
    if incoming.too_large or len(incoming.content) > MAX_FILE_BYTES:
        raise AttachmentTooLarge(
            N_(
                "%(name)s is larger than 10 MiB (%(bytes)s bytes).", name=name, bytes=MAX_FILE_BYTES
            ),
            source="files",
        )
    if not incoming.content:
        raise AttachmentTypeNotAllowed(N_("%(name)s is empty.", name=name), source="files")
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise AttachmentTypeNotAllowed(
            N_(
                "%(name)s: only %(types)s files can be attached.",
                name=name,
                types=", ".join(ALLOWED_EXTENSIONS),
            ),
            source="files",
        )
    detected = _sniff(incoming.content)
    if detected is TEXT and extension in CSV.extensions:
        detected = CSV
    if detected is None or extension not in detected.extensions:
        what = detected.content_type if detected else N_("not an allowed type")
        raise AttachmentTypeNotAllowed(
            N_(
                "%(name)s: the content (%(type)s) does not match the file name.",
                name=name,
                type=Message(what, {}) if detected is None else what,
            ),
            source="files",
        )
    return CheckedFile(name, detected.content_type, incoming.content)
