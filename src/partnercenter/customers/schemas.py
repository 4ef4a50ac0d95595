"""Request and response shapes of the customers API (Partner Center's field names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from partnercenter.schemas import RequestModel


class Model(RequestModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class AddressIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    country: str | None = Field(default=None, max_length=2)
    firstName: str | None = Field(default=None, max_length=200)
    lastName: str | None = Field(default=None, max_length=200)
    addressLine1: str | None = Field(default=None, max_length=200)
    addressLine2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    postalCode: str | None = Field(default=None, max_length=40)
    phoneNumber: str | None = Field(default=None, max_length=40)


class BillingProfileIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    email: str | None = Field(default=None, max_length=320)
    culture: str | None = Field(default=None, max_length=20)
    language: str | None = Field(default=None, max_length=20)
    companyName: str | None = Field(default=None, max_length=200)
    defaultAddress: AddressIn | None = None


class CompanyProfileIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    tenantId: uuid.UUID | None = None
    domain: str = Field(min_length=1, max_length=253)
    companyName: str | None = Field(default=None, max_length=200)


class CustomerIn(RequestModel):
    """Partner Center's create-customer body; the market is ``defaultAddress.country``."""

    model_config = ConfigDict(extra="ignore")

    companyProfile: CompanyProfileIn
    billingProfile: BillingProfileIn


class CompanyProfileOut(BaseModel):
    tenantId: uuid.UUID
    domain: str | None
    companyName: str
    attributes: dict[str, str] = {"objectType": "CustomerCompanyProfile"}


class UserCredentialsOut(BaseModel):
    """The new customer tenant's first Global admin, shown once (Partner Center's shape)."""

    userName: str
    password: str
    attributes: dict[str, str] = {"objectType": "UserCredentials"}


class CustomerOut(BaseModel):
    id: uuid.UUID
    commerceId: uuid.UUID = Field(description="The customer's id in commerce (stable)")
    companyProfile: CompanyProfileOut
    billingProfile: dict[str, Any]
    market: str | None
    relationshipToPartner: str = "reseller"
    allowDelegatedAccess: bool = True
    customDomains: list[str] = []
    createdAt: datetime
    userCredentials: UserCredentialsOut | None = Field(
        default=None, description="Only in the answer to create: the tenant's Global admin"
    )
    attributes: dict[str, str] = {"objectType": "Customer"}


class PasswordProfileIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    password: str = Field(min_length=1, max_length=500)
    forceChangePassword: bool | None = None


class CustomerUserIn(RequestModel):
    """Partner Center's CustomerUser (``userPrincipalName``, ``passwordProfile.password``);
    ``email`` and ``password`` are accepted for them."""

    model_config = ConfigDict(extra="ignore")

    userPrincipalName: str | None = Field(default=None, min_length=3, max_length=320)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    firstName: str | None = Field(default=None, max_length=100)
    lastName: str | None = Field(default=None, max_length=100)
    displayName: str = Field(default="", max_length=200)
    usageLocation: str | None = Field(default=None, max_length=2)
    passwordProfile: PasswordProfileIn | None = None
    password: str | None = Field(default=None, min_length=1, max_length=500)
    roles: list[str] = Field(default_factory=list)


class CustomerUserOut(BaseModel):
    """Partner Center's CustomerUser, with our roles and state beside it."""

    id: uuid.UUID
    userPrincipalName: str
    email: str
    firstName: str
    lastName: str
    displayName: str
    usageLocation: str | None
    userDomainType: str = "none"
    state: str
    roles: list[str]
    isActive: bool
    tenantId: uuid.UUID
    createdAt: datetime
    attributes: dict[str, str] = {"objectType": "CustomerUser"}


class DirectoryRoleOut(BaseModel):
    id: str
    name: str
    attributes: dict[str, str] = {"objectType": "DirectoryRole"}


class DirectoryRoleIn(Model):
    id: str = Field(min_length=1, max_length=40)
