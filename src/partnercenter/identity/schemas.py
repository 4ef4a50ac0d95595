"""Request and response shapes of the identity API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from partnercenter.schemas import RequestModel


class Model(RequestModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type
    expires_in: int


class TenantOut(BaseModel):
    id: uuid.UUID
    kind: str
    companyName: str
    country: str | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    displayName: str
    roles: list[str]
    isActive: bool
    tenantId: uuid.UUID
    createdAt: datetime


class MeOut(UserOut):
    tenant: TenantOut


class PartnerIn(Model):
    companyName: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2)


class PartnerOut(BaseModel):
    id: uuid.UUID
    companyName: str
    country: str | None
    createdAt: datetime


class UserIn(Model):
    email: str = Field(min_length=3, max_length=320)
    displayName: str = Field(default="", max_length=200)
    password: str = Field(min_length=1, max_length=500)
    roles: list[str] = Field(default_factory=list)


class UserPatch(Model):
    displayName: str | None = Field(default=None, max_length=200)
    roles: list[str] | None = None
    isActive: bool | None = None
    password: str | None = Field(default=None, max_length=500)


class NamedTokenIn(Model):
    name: str = Field(min_length=1, max_length=100)
    days: int | None = Field(default=None, ge=1, le=730)


class NamedTokenOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    createdAt: datetime
    expiresAt: datetime | None
    revokedAt: datetime | None
    lastUsedAt: datetime | None


class NamedTokenCreated(NamedTokenOut):
    token: str = Field(description="The secret; shown only in this response.")
