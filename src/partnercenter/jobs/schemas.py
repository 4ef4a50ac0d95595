"""API shapes of the background jobs: unsent mail and scheduled runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class UnsentMail(BaseModel):
    id: uuid.UUID
    recipient: str
    subject: str
    createdAt: datetime
    attempts: int
    lastError: str | None
    nextAttemptAt: datetime | None
    failedAt: datetime | None
    # "unconfirmed" (handed to the SMTP server, answer never heard: not resent by itself),
    # "failed" (gave up; retry it), "sending", "retrying" or "pending"
    status: str


class ScheduledRunOut(BaseModel):
    job: str
    key: str
    startedAt: datetime
    finishedAt: datetime | None
    outcome: str | None
