"""Response shapes of the activity log API (Partner Center's AuditRecord, camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class KeyValue(BaseModel):
    key: str
    value: str | None


class AuditRecordOut(BaseModel):
    """One activity log record."""

    id: uuid.UUID
    partnerId: uuid.UUID | None = Field(
        description="The partner whose log holds the record (null for provider actions)."
    )
    tenantId: uuid.UUID | None = Field(description="The tenant whose action it was.")
    customerId: uuid.UUID | None
    customerName: str | None
    userId: uuid.UUID | None
    userPrincipalName: str | None
    resourceType: str
    resourceNewValue: str | None = None
    operationType: str
    operationDate: datetime
    operationStatus: str
    applicationId: str | None = None
    customizedData: list[KeyValue]
    sessionId: str | None
    correlationId: str | None
    clientAddress: str | None
    userAgent: str | None


class NextLink(BaseModel):
    uri: str
    method: str = "GET"
    headers: list[KeyValue]


class Links(BaseModel):
    next: NextLink | None = None


class AuditRecordPage(BaseModel):
    """A page of records, newest first; ask for the next with ``links.next``'s header."""

    totalCount: int = Field(description="Records on this page.")
    items: list[AuditRecordOut]
    links: Links
    attributes: dict[str, Any]
