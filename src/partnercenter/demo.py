"""Demo tenants and users: one user per role, per portal (development only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role, TenantKind

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - the documented demo sign-in
PROVIDER_NAME = "Northwind Software"
PROVIDER_ADMIN_EMAIL = "admin@northwind.example"


@dataclass(frozen=True)
class DemoUser:
    portal: str
    tenant: str
    role: Role
    email: str


@dataclass(frozen=True)
class DemoTenant:
    kind: TenantKind
    name: str
    country: str
    domain: str | None
    parent: str | None
    users: tuple[tuple[Role, str], ...]


TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant(
        TenantKind.PROVIDER,
        PROVIDER_NAME,
        "US",
        None,
        None,
        (
            (Role.PROVIDER_ADMIN, PROVIDER_ADMIN_EMAIL),
            (Role.SUPPORT_AGENT, "support@northwind.example"),
        ),
    ),
    DemoTenant(
        TenantKind.PARTNER,
        "Fabrikam Cloud Reseller",
        "US",
        None,
        None,
        (
            (Role.GLOBAL_ADMIN, "global.admin@fabrikam.example"),
            (Role.ADMIN_AGENT, "admin.agent@fabrikam.example"),
            (Role.SALES_AGENT, "sales.agent@fabrikam.example"),
            (Role.HELPDESK_AGENT, "helpdesk.agent@fabrikam.example"),
            (Role.BILLING_ADMIN, "billing.admin@fabrikam.example"),
            (Role.ACCOUNT_ADMIN, "account.admin@fabrikam.example"),
            (Role.REFERRAL_ADMIN, "referral.admin@fabrikam.example"),
            (Role.MARKETING_CONTENT_ADMIN, "marketing.admin@fabrikam.example"),
        ),
    ),
    DemoTenant(
        TenantKind.PARTNER,
        "Tailspin Partners",
        "AU",
        None,
        None,
        (
            (Role.GLOBAL_ADMIN, "global.admin@tailspin.example"),
            (Role.ADMIN_AGENT, "admin.agent@tailspin.example"),
        ),
    ),
    DemoTenant(
        TenantKind.CUSTOMER,
        "Contoso Ltd",
        "US",
        "contoso.onmicrosoft.com",
        "Fabrikam Cloud Reseller",
        (
            (Role.GLOBAL_ADMIN, "global.admin@contoso.example"),
            (Role.BILLING_ADMIN, "billing.admin@contoso.example"),
            (Role.USER, "user@contoso.example"),
        ),
    ),
    DemoTenant(
        TenantKind.CUSTOMER,
        "Wingtip Toys Pty",
        "AU",
        "wingtiptoys.onmicrosoft.com",
        "Fabrikam Cloud Reseller",
        ((Role.GLOBAL_ADMIN, "global.admin@wingtiptoys.example"),),
    ),
    DemoTenant(
        TenantKind.CUSTOMER,
        "Litware Brasil",
        "BR",
        "litwarebr.onmicrosoft.com",
        "Tailspin Partners",
        ((Role.GLOBAL_ADMIN, "global.admin@litware.example"),),
    ),
)

PORTAL = {
    TenantKind.PROVIDER: "/provider",
    TenantKind.PARTNER: "/partner",
    TenantKind.CUSTOMER: "/admin",
}


def ensure_provider(session: Session, *, email: str, password: str, now: datetime) -> User:
    """Create the provider tenant and its first Provider admin, once (idempotent)."""
    provider = identity.get_provider(session)
    if provider is None:
        provider = identity.create_tenant(
            session, kind=TenantKind.PROVIDER, name=PROVIDER_NAME, country="US", now=now
        )
        session.flush()  # the provider must exist before its first user
    existing = session.execute(
        select(User).where(User.email == identity.normalise_email(email))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    return identity.create_user(
        session,
        tenant=provider,
        email=email,
        display_name="Provider admin",
        password=password,
        roles=[Role.PROVIDER_ADMIN.value],
        now=now,
    )


def load(session: Session, *, now: datetime) -> list[DemoUser]:
    """Create the demo tenants and users that are missing; returns every demo sign-in."""
    by_name: dict[str, Tenant] = {
        t.name: t for t in session.execute(select(Tenant)).scalars().all()
    }
    provider = identity.get_provider(session)
    if provider is not None:
        by_name[PROVIDER_NAME] = provider
    result: list[DemoUser] = []
    # Every demo user has the same published password: hash it once (argon2 takes a
    # noticeable fraction of a second per hash, most of a first run's wait).
    shared_hash: str | None = None
    for spec in TENANTS:
        tenant = by_name.get(spec.name)
        if tenant is None:
            parent = by_name[spec.parent] if spec.parent else None
            tenant = identity.create_tenant(
                session,
                kind=spec.kind,
                name=spec.name,
                country=spec.country,
                domain=spec.domain,
                parent_id=parent.id if parent else None,
                now=now,
            )
            session.flush()  # later tenants and users point at this one
            by_name[spec.name] = tenant
        for role, email in spec.users:
            exists = session.execute(select(User.id).where(User.email == email)).first()
            if exists is None:
                user = identity.create_user(
                    session,
                    tenant=tenant,
                    email=email,
                    display_name=f"{role.value.replace('_', ' ').capitalize()} ({spec.name})",
                    password=DEMO_PASSWORD,
                    roles=[role.value],
                    now=now,
                    password_hash=shared_hash,
                )
                shared_hash = user.password_hash
            result.append(DemoUser(PORTAL[spec.kind], spec.name, role, email))
    session.flush()  # make the demo visible to later loaders in the same transaction
    return result
