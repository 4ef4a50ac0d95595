"""One typed settings object, read from the environment (prefix ``PARTNERCENTER_``)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development"}


class Settings(BaseSettings):
    """Deployment settings; production refuses placeholder secrets."""

    model_config = SettingsConfigDict(env_prefix="PARTNERCENTER_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PARTNERCENTER_DATABASE_URL")
    )
    secret_key: str | None = None
    key_encryption_key: str | None = None
    sandbox: bool = False
    storage_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    session_hours: int = 12
    access_token_minutes: int = 60
    sign_in_max_failures_per_account: int = 5
    sign_in_max_failures_per_address: int = 20
    sign_in_failure_window_minutes: int = 15
    download_link_hours: float = 24.0
    # Who sends a download's bytes once the checks and the audit record are done (see
    # docs/dev/licensing.md): "app" (the server: pathsend under granian, else streamed),
    # "x-accel-redirect" (nginx: an internal location under download_offload_prefix mapped
    # to the storage folder) or "x-sendfile" (Apache mod_xsendfile, lighttpd: the file path).
    download_offload: Literal["app", "x-accel-redirect", "x-sendfile"] = "app"
    download_offload_prefix: str = "/_stored/"
    # S3 storage: answer a download with a redirect to a presigned URL living this many
    # seconds (0: the application streams the object itself).
    download_redirect_seconds: int = 0
    log_json: bool = True
    # Outgoing mail (support request notices): a plain SMTP relay, e.g. the local MTA.
    smtp_host: str = "localhost"
    smtp_port: int = 25
    mail_from: str = "Partner Center <partnercenter@localhost>"
    # Background jobs (docs/dev/jobs.md): "in-process" runs them in this process (the SQLite
    # default of `partnercenter serve`); "worker" leaves them to `partnercenter worker`
    # processes; "off" runs none (tests, one-off commands).
    jobs: Literal["off", "in-process", "worker"] = "off"
    jobs_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    # How often the scheduled work (month close, low stock, clean-up) checks whether it is due.
    # A sandbox whose clock is moved by hand (or a test) shortens it.
    jobs_schedule_seconds: int = Field(default=60, ge=1, le=60)
    # The previous month is closed automatically from this day and hour (UTC) of a month on.
    month_close_auto: bool = True
    month_close_day: int = Field(default=1, ge=1, le=28)
    month_close_hour: int = Field(default=2, ge=0, le=23)
    # Stored MS-RequestId responses are kept this long, then cleaned up.
    idempotency_retention_hours: int = Field(default=48, ge=1)
    # The activity log (docs/dev/activity-log.md): months that ended more than this many
    # months before the current one are archived to the artifact store as gzip CSV with their
    # hash-chain anchors, then removed from the database; unset keeps every month.
    audit_retention_months: int | None = Field(default=None, ge=1)
    # PostgreSQL: monthly partitions of the activity log made ahead of time (this month and
    # this many after it).
    audit_partitions_ahead: int = Field(default=3, ge=1, le=24)
    # Hardening at the edge (docs/dev/security.md says what each one guards).
    max_body_bytes: int = 2 * 1024 * 1024  # any request body, before it is read
    max_upload_bytes: int = 512 * 1024 * 1024  # routes that take files; they stream to disk
    max_url_bytes: int = 8 * 1024  # path plus query string: 414 beyond
    max_header_bytes: int = 32 * 1024  # all header names and values together: 431 beyond
    workers: int = Field(default=1, ge=1)  # server processes; `partnercenter serve` sets it
    db_pool_size: int | None = Field(default=None, ge=1)  # default from the worker count
    db_max_overflow: int | None = Field(default=None, ge=0)
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0)  # then 503 with Retry-After
    # Test each pooled connection with a round trip before every request (docs/dev/
    # performance.md): off, a database restart costs each worker one 503, then a new pool.
    db_pool_pre_ping: bool = False
    db_busy_timeout_ms: int = Field(default=5000, ge=0)  # SQLite: wait for the write lock
    log_sql_parameters: bool = False  # never honoured in production
    trusted_proxies: str = ""  # comma-separated addresses or networks of reverse proxies
    docs_enabled: bool | None = None  # /docs and /openapi.json; default: development only
    metrics_token: str | None = None  # production: /metrics needs this bearer token
    hsts_seconds: int = 63072000

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.env == "production":
            for name in ("secret_key", "key_encryption_key"):
                value = getattr(self, name)
                if value is None or value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 32:
                    raise ValueError(
                        f"PARTNERCENTER_{name.upper()} must be set to a strong secret "
                        "(32 characters or more) in production"
                    )
            if self.database_url is None:
                raise ValueError("DATABASE_URL must be set in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'partnercenter.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "storage").resolve().as_uri()

    @cached_property
    def _development_secrets(self) -> dict[str, str]:
        """Secrets generated once per data folder, so development needs no setup."""
        path = self.data_dir / "secrets.json"
        if path.exists():
            stored: dict[str, str] = json.loads(path.read_text())
            return stored
        self.data_dir.mkdir(parents=True, exist_ok=True)
        generated = {
            "secret_key": secrets.token_urlsafe(48),
            "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(generated, f)
        return generated

    @property
    def signing_secret(self) -> bytes:
        return (self.secret_key or self._development_secrets["secret_key"]).encode()

    @property
    def encryption_key(self) -> bytes:
        """The 256-bit key that encrypts product keys at rest."""
        raw = self.key_encryption_key or self._development_secrets["key_encryption_key"]
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        if len(key) != 32:
            raise ValueError("PARTNERCENTER_KEY_ENCRYPTION_KEY must be 32 bytes, base64url-encoded")
        return key

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def configured_secrets(self) -> tuple[str, ...]:
        """Secret values given in the environment, for the log redactor."""
        values = (self.secret_key, self.key_encryption_key, self.metrics_token)
        return tuple(v for v in values if v)

    @property
    def trusted_proxy_list(self) -> list[str]:
        """Addresses or networks (CIDR) whose X-Forwarded-For is believed."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def docs_visible(self) -> bool:
        """Whether /docs, /redoc and /openapi.json are served (development by default)."""
        return self.docs_enabled if self.docs_enabled is not None else not self.production

    def engine_options(self) -> dict[str, Any]:
        """Pool and logging options for the application's engine.

        PostgreSQL allows 100 connections by default; each worker process gets an equal share
        of 80 (the rest is left for the CLI and administrators): at most 10 kept open and 10
        more under load per worker, fewer when there are many workers.
        """
        share = max(2, 80 // self.workers)
        pool_size = self.db_pool_size or max(1, min(10, share // 2))
        overflow = self.db_max_overflow
        if overflow is None:
            overflow = max(0, min(10, share - pool_size))
        return {
            "pool_size": pool_size,
            "max_overflow": overflow,
            "pool_timeout": self.db_pool_timeout_seconds,
            "pool_pre_ping": self.db_pool_pre_ping,
            "hide_parameters": self.production or not self.log_sql_parameters,
            "sqlite_busy_timeout_ms": self.db_busy_timeout_ms,
        }

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://") or self.env == "production"
