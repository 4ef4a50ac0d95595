"""Structured JSON logs, each line carrying the request's correlation id."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


# What must never reach a log line, whatever logged it (a traceback included).
_SECRETS = re.compile(
    r"\$argon2(?:id|i|d)\$[A-Za-z0-9+/=$,.\-]+"  # password hashes
    r"|\bpc_[A-Za-z0-9_\-]{16,}"  # API tokens (their public prefix, then the secret)
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization header values
    r"|(?i:pc_session|pc_csrf)=[^;\s'\"]+"  # cookies
    r"|\b[0-9a-f]{64}\b"  # SHA-256 token hashes (and digests, which lose nothing by it)
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text with password hashes, tokens, token hashes and session cookies replaced."""
    return _SECRETS.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Scrub secrets from a record's message and traceback before any handler formats it."""

    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_secrets = tuple(s for s in extra_secrets if s and len(s) >= 8)

    def _scrub(self, text: str) -> str:
        text = redact(text)
        for secret in self.extra_secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text
            message = str(record.msg)
        record.msg, record.args = self._scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self._scrub(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            payload["requestId"] = cid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """One readable line for a console: time, level, logger, message, then the request id
    and the extras as ``key=value`` (what :class:`JsonFormatter` would put in fields), so a
    line such as a failed mail's carries its reason and its ids in either format."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = []
        cid = correlation_id.get()
        if cid:
            fields.append(f"requestId={cid}")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                fields.append(f"{key}={value}")
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # a traceback goes below the fields
        return f"{head} [{' '.join(fields)}]{newline}{rest}"


def configure(
    json_lines: bool = True, level: int = logging.INFO, secrets: tuple[str, ...] = ()
) -> None:
    """Our handler for ``partnercenter.*``; every handler in the process gets the redactor.

    ``secrets`` are exact values (the signing and encryption keys) scrubbed as well.
    """
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(redactor)
    root = logging.getLogger("partnercenter")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The server's and the libraries' handlers too (uvicorn's error log prints tracebacks).
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy"):
        for other in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in other.filters):
                other.addFilter(redactor)
