"""Demo billing profiles for the demo customers (development only, idempotent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.customers.services import normalise_billing_profile
from partnercenter.identity.models import Tenant
from partnercenter.permissions import TenantKind

PROFILES: dict[str, dict[str, Any]] = {
    "contoso.onmicrosoft.com": {
        "email": "billing@contoso.example",
        "culture": "en-US",
        "language": "en",
        "defaultAddress": {
            "addressLine1": "1 Microsoft Way",
            "city": "Redmond",
            "state": "WA",
            "postalCode": "98052",
            "firstName": "Megan",
            "lastName": "Bowen",
        },
    },
    "wingtiptoys.onmicrosoft.com": {
        "email": "accounts@wingtiptoys.example",
        "culture": "en-AU",
        "language": "en",
        "defaultAddress": {
            "addressLine1": "100 George Street",
            "city": "Sydney",
            "state": "NSW",
            "postalCode": "2000",
        },
    },
    "litwarebr.onmicrosoft.com": {
        "email": "financeiro@litware.example",
        "culture": "pt-BR",
        "language": "pt",
        "defaultAddress": {
            "addressLine1": "Avenida Paulista 1000",
            "city": "São Paulo",
            "state": "SP",
            "postalCode": "01310-100",
        },
    },
}


def load(session: Session, *, now: datetime, **_: Any) -> None:
    """Give the demo customers a billing profile where they have none."""
    customers = session.execute(
        select(Tenant).where(Tenant.kind == TenantKind.CUSTOMER, Tenant.domain.in_(list(PROFILES)))
    ).scalars()
    for tenant in customers:
        if tenant.billing_profile:
            continue
        tenant.billing_profile = normalise_billing_profile(
            PROFILES[tenant.domain or ""], company_name=tenant.name, country=tenant.country or "US"
        )
    session.flush()  # later demo loaders read the profiles
