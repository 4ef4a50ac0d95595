"""API shapes of the webhooks, after Partner Center's ``/webhooks/registration``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    WebhookUrl: str = Field(max_length=2000, description="Absolute http(s) URL to POST to")
    WebhookEvents: list[str] = Field(
        max_length=50, description="Event names (GET /v1/webhooks/registration/events)"
    )


class RegistrationOut(BaseModel):
    SubscriberId: uuid.UUID
    WebhookUrl: str
    WebhookEvents: list[str]
    # Shown only when the registration is created or replaced.
    SigningSecret: str | None = None


class ValidationEventOut(BaseModel):
    correlationId: uuid.UUID
    status: str  # "pending", "delivered" or "failed"
    lastStatusCode: int | None = None
    lastError: str | None = None


class AttemptOut(BaseModel):
    attemptedAt: datetime
    statusCode: int | None
    error: str | None
    durationMs: int


class DeliveryOut(BaseModel):
    id: uuid.UUID
    eventName: str
    createdAt: datetime
    status: str  # "pending", "delivered" or "failed"
    attempts: list[AttemptOut]
    nextAttemptAt: datetime | None
