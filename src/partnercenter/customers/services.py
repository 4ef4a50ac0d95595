"""Customers of a partner: create, list, find by name, tenant GUID or domain; their users."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.context import Actor, RequestInfo
from partnercenter.customers.errors import (
    CustomerNotFound,
    DomainTaken,
    InvalidDomain,
    InvalidFilter,
    TenantIdTaken,
)
from partnercenter.errors import InvalidInput
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.markets import normalise_country
from partnercenter.permissions import Role, TenantKind

DEFAULT_DOMAIN_SUFFIX = ".onmicrosoft.com"
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDRESS_FIELDS = (
    "firstName",
    "lastName",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "postalCode",
    "phoneNumber",
)
FILTER_FIELDS = {"domain": "Domain", "companyname": "CompanyName"}


def normalise_domain(domain: str) -> str:
    """Lower-case the domain and check it; a bare prefix gets ``.onmicrosoft.com``."""
    value = domain.strip().lower().rstrip(".")
    if value and "." not in value:
        value += DEFAULT_DOMAIN_SUFFIX
    labels = value.split(".")
    if (
        not value
        or len(value) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidDomain(
            f"'{domain}' is not a valid primary domain; use a name such as "
            "contoso.onmicrosoft.com.",
            source="companyProfile.domain",
        )
    return value


def normalise_billing_profile(
    profile: dict[str, Any] | None, *, company_name: str, country: str
) -> dict[str, Any]:
    """The stored billing profile: email, culture, language, companyName, defaultAddress."""
    profile = dict(profile or {})
    email = str(profile.get("email") or "").strip()
    if email and not _EMAIL.match(email):
        raise InvalidInput(
            f"'{email}' is not a valid email address.", source="billingProfile.email"
        )
    address_in = profile.get("defaultAddress") or {}
    if not isinstance(address_in, dict):
        raise InvalidInput(
            "defaultAddress must be an object.", source="billingProfile.defaultAddress"
        )
    address: dict[str, Any] = {"country": country}
    for key in _ADDRESS_FIELDS:
        value = address_in.get(key)
        if value is not None and str(value).strip():
            address[key] = str(value).strip()[:200]
    return {
        "email": email or None,
        "culture": str(profile.get("culture") or "en-US")[:20],
        "language": str(profile.get("language") or "en")[:20],
        "companyName": company_name,
        "defaultAddress": address,
    }


def create_customer(
    session: Session,
    *,
    actor: Actor,
    company_name: str,
    domain: str,
    country: str,
    now: datetime,
    request: RequestInfo | None = None,
    billing_profile: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> Tenant:
    """Create a customer of the actor's partner; audited as ``customer``/``create_customer``."""
    company_name = company_name.strip()
    if not company_name or len(company_name) > 200:
        raise InvalidInput(
            "The company name is required (at most 200 characters).",
            source="billingProfile.companyName",
        )
    domain = normalise_domain(domain)
    market = normalise_country(country)
    if session.execute(select(Tenant.id).where(Tenant.domain == domain)).first() is not None:
        raise DomainTaken(N_("Another customer already uses the domain %(domain)s.", domain=domain))
    if tenant_id is not None and session.get(Tenant, tenant_id) is not None:
        raise TenantIdTaken()
    profile = normalise_billing_profile(billing_profile, company_name=company_name, country=market)
    try:
        with session.begin_nested():
            tenant = identity.create_tenant(
                session,
                kind=TenantKind.CUSTOMER,
                name=company_name,
                parent_id=actor.tenant_id,
                country=market,
                domain=domain,
                billing_profile=profile,
                tenant_id=tenant_id,
                now=now,
            )
            # Flushed inside a savepoint so a concurrent insert of the same domain or tenant
            # id becomes a clear conflict instead of a failed transaction.
            session.flush()
    except IntegrityError:
        # Which of the two the concurrent customer took: the row that won is committed
        # (that is when the insert here failed), so it is there to be read.
        if tenant_id is not None and session.get(Tenant, tenant_id) is not None:
            raise TenantIdTaken() from None
        raise DomainTaken(
            N_("Another customer already uses the domain %(domain)s.", domain=domain)
        ) from None
    audit.record(
        session,
        at=now,
        resource_type="customer",
        operation_type="create_customer",
        tenant_id=actor.tenant_id,
        actor=actor,
        request=request,
        customer_id=tenant.id,
        customer_name=tenant.name,
        details={"customerId": str(tenant.id), "domain": domain, "country": market},
    )
    return tenant


def _partner_customers(partner_id: uuid.UUID) -> Any:
    return select(Tenant).where(Tenant.kind == TenantKind.CUSTOMER, Tenant.parent_id == partner_id)


def _like_prefix(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@dataclass(frozen=True)
class CustomerFilter:
    """Partner Center's ``{"Field", "Value", "Operator"}`` customer filter."""

    field: str
    value: str


def parse_filter(raw: dict[str, Any]) -> CustomerFilter:
    field = str(raw.get("Field") or raw.get("field") or "").strip()
    value = str(raw.get("Value") or raw.get("value") or "").strip()
    operator = str(raw.get("Operator") or raw.get("operator") or "starts_with").strip().lower()
    if field.lower() not in FILTER_FIELDS or operator != "starts_with" or not value:
        raise InvalidFilter(source="filter")
    return CustomerFilter(FILTER_FIELDS[field.lower()], value)


def list_customers(
    session: Session,
    *,
    partner_id: uuid.UUID,
    filter: CustomerFilter | None = None,
    text: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[Sequence[Tenant], int]:
    """The partner's customers, optionally filtered; returns one page and the total count."""
    stmt = _partner_customers(partner_id)
    if filter is not None:
        column = Tenant.domain if filter.field == "Domain" else Tenant.name
        stmt = stmt.where(func.lower(column).like(_like_prefix(filter.value), escape="\\"))
    if text and text.strip():
        stmt = stmt.where(_text_match(text.strip()))
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    stmt = stmt.order_by(func.lower(Tenant.name), Tenant.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.execute(stmt).scalars().all(), total


_GUID_PREFIX = re.compile(r"^[0-9a-fA-F-]{4,36}$")


def _text_match(text: str) -> Any:
    """Name or domain contains the text (case-insensitive), or the tenant GUID starts with it
    (at least 4 hex digits, dashes optional) or equals it."""
    lowered = text.lower()
    escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    conditions: list[ColumnElement[bool]] = [
        func.lower(Tenant.name).like(f"%{escaped}%", escape="\\"),
        func.lower(Tenant.domain).like(f"%{escaped}%", escape="\\"),
    ]
    with contextlib.suppress(ValueError):
        conditions.append(Tenant.id == uuid.UUID(text))
    if _GUID_PREFIX.match(text):
        # PostgreSQL renders a uuid with dashes, SQLite stores 32 hex digits: compare both
        # without dashes.
        hex_id = func.replace(func.lower(cast(Tenant.id, String)), "-", "")
        conditions.append(hex_id.like(lowered.replace("-", "") + "%"))
    return or_(*conditions)


def get_customer(session: Session, *, partner_id: uuid.UUID, customer_id: uuid.UUID) -> Tenant:
    """One of the partner's customers; another partner's customer is not found."""
    tenant = session.get(Tenant, customer_id)
    if tenant is None or tenant.kind != TenantKind.CUSTOMER or tenant.parent_id != partner_id:
        raise CustomerNotFound()
    return tenant


def is_partner_customer(
    partner_id: uuid.UUID | ColumnElement[uuid.UUID],
    customer_id: uuid.UUID | ColumnElement[uuid.UUID],
) -> ColumnElement[bool]:
    """``get_customer``'s rule as a WHERE clause on ``Tenant``, for a statement that reads the
    customer together with rows of its own (checkout reads it with the cart). The ids may be
    bound parameters (a statement built once, given them when run)."""
    return and_(
        Tenant.id == customer_id,
        Tenant.kind == TenantKind.CUSTOMER,
        Tenant.parent_id == partner_id,
    )


def resolve_customer(session: Session, *, partner_id: uuid.UUID, ref: str) -> Tenant:
    """The partner's customer named by tenant GUID, primary domain or exact company name."""
    ref = ref.strip()
    try:
        return get_customer(session, partner_id=partner_id, customer_id=uuid.UUID(ref))
    except ValueError:
        pass
    found: Sequence[Tenant] = (
        session.execute(
            _partner_customers(partner_id).where(
                or_(
                    Tenant.domain == ref.lower(),
                    func.lower(Tenant.name) == ref.lower(),
                )
            )
        )
        .scalars()
        .all()
    )
    if len(found) != 1:
        raise CustomerNotFound(
            N_("No single customer has this name, tenant id or domain.")
            if found
            else N_("The customer was not found.")
        )
    return found[0]


def customer_by_ids(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Tenant]:
    """Customers by id (for lists that show customer names)."""
    id_list = list(ids)
    if not id_list:
        return {}
    rows = session.execute(select(Tenant).where(Tenant.id.in_(id_list))).scalars().all()
    return {t.id: t for t in rows}


# --- customer users ----------------------------------------------------------------------


def create_customer_user(
    session: Session,
    *,
    actor: Actor,
    customer: Tenant,
    email: str,
    display_name: str,
    password: str,
    roles: Iterable[str],
    now: datetime,
    request: RequestInfo | None = None,
) -> User:
    """Add a user to the customer's tenant with the given roles; audited."""
    user = identity.create_user(
        session,
        tenant=customer,
        email=email,
        display_name=display_name,
        password=password,
        roles=roles,
        now=now,
    )
    session.flush()  # the user id goes into the audit record
    audit.record(
        session,
        at=now,
        resource_type="user",
        operation_type="create_customer_user",
        tenant_id=actor.tenant_id,
        actor=actor,
        request=request,
        customer_id=customer.id,
        customer_name=customer.name,
        details={
            "userId": str(user.id),
            "userPrincipalName": user.email,
            "newRoles": sorted(r.value for r in user.roles),
        },
    )
    return user


def list_customer_users(session: Session, *, customer: Tenant) -> Sequence[User]:
    return identity.list_users(session, tenant_id=customer.id)


def get_customer_user(session: Session, *, customer: Tenant, user_id: uuid.UUID) -> User:
    return identity.get_user_in_tenant(session, tenant_id=customer.id, user_id=user_id)


def set_customer_user_roles(
    session: Session,
    *,
    actor: Actor,
    customer: Tenant,
    user: User,
    roles: Iterable[str],
    now: datetime,
    request: RequestInfo | None = None,
) -> User:
    """Replace the roles of a customer user (the change is audited by identity)."""
    return identity.update_user(
        session, user=user, actor=actor, now=now, request=request, roles=list(roles)
    )


def customer_roles() -> tuple[Role, ...]:
    from partnercenter.permissions import valid_roles

    return valid_roles(TenantKind.CUSTOMER)
