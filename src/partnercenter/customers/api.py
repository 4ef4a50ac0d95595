"""JSON routes: a partner's customers and the customers' users and directory roles."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.orm import Session

from partnercenter.context import Actor
from partnercenter.customers import services
from partnercenter.customers.errors import CustomerNotFound, InvalidFilter
from partnercenter.customers.schemas import (
    CompanyProfileOut,
    CustomerIn,
    CustomerOut,
    CustomerUserIn,
    DirectoryRoleIn,
    DirectoryRoleOut,
)
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, parse_uuid, require
from partnercenter.envelopes import collection
from partnercenter.errors import InvalidInput
from partnercenter.identity.api import user_out
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.schemas import UserOut
from partnercenter.permissions import ROLE_LABELS, Action, Role

router = APIRouter(prefix="/v1", tags=["customers"])

Viewer = Annotated[Actor, Depends(require(Action.VIEW_CUSTOMERS))]
Creator = Annotated[Actor, Depends(require(Action.CREATE_CUSTOMER))]
UserManager = Annotated[Actor, Depends(require(Action.MANAGE_CUSTOMER_USERS))]

MAX_PAGE = 500


def customer_out(tenant: Tenant) -> CustomerOut:
    return CustomerOut(
        id=tenant.id,
        companyProfile=CompanyProfileOut(
            tenantId=tenant.id, domain=tenant.domain, companyName=tenant.name
        ),
        billingProfile=tenant.billing_profile
        or {"companyName": tenant.name, "defaultAddress": {"country": tenant.country}},
        market=tenant.country,
        createdAt=tenant.created_at,
    )


def customer_for(session: Session, actor: Actor, customer_id: str) -> Tenant:
    """The actor's partner's customer named in the path: tenant GUID, primary domain or
    exact company name (SPEC: anywhere a customer is looked up, all three work)."""
    try:
        cid = uuid.UUID(customer_id)
    except ValueError:
        return services.resolve_customer(session, partner_id=actor.tenant_id, ref=customer_id)
    return services.get_customer(session, partner_id=actor.tenant_id, customer_id=cid)


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(
    body: CustomerIn, session: SessionDep, now: NowDep, info: RequestInfoDep, actor: Creator
) -> CustomerOut:
    """Create a customer: company and billing profile; the market is the address's country."""
    company_name = body.billingProfile.companyName or body.companyProfile.companyName or ""
    address = body.billingProfile.defaultAddress
    country = address.country if address else None
    if not country:
        raise InvalidInput(
            "The customer's market is required: billingProfile.defaultAddress.country.",
            source="billingProfile.defaultAddress.country",
        )
    tenant = services.create_customer(
        session,
        actor=actor,
        company_name=company_name,
        domain=body.companyProfile.domain,
        country=country,
        billing_profile=body.billingProfile.model_dump(exclude_none=True),
        tenant_id=body.companyProfile.tenantId,
        now=now,
        request=info,
    )
    session.commit()
    return customer_out(tenant)


@router.get("/customers")
def list_customers(
    request: Request,
    session: SessionDep,
    actor: Viewer,
    filter: Annotated[
        str | None,
        Query(description='JSON: {"Field": "Domain"|"CompanyName", "Value", "Operator"}'),
    ] = None,
    domain: Annotated[str | None, Query(description="Exact primary domain")] = None,
    tenantId: Annotated[str | None, Query(description="Exact tenant GUID")] = None,
    q: Annotated[str | None, Query(description="Name, tenant GUID or domain")] = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    continuation: Annotated[str | None, Header(alias="MS-ContinuationToken")] = None,
) -> dict[str, Any]:
    """The partner's customers; filter by domain or company name prefix, or look one up."""
    if domain is not None or tenantId is not None:
        try:
            found = [
                services.resolve_customer(
                    session, partner_id=actor.tenant_id, ref=(tenantId or domain or "")
                )
            ]
        except CustomerNotFound:
            found = []
        return collection([customer_out(t).model_dump(mode="json") for t in found])
    parsed = None
    if filter is not None:
        try:
            raw = json.loads(filter)
        except ValueError:
            raise InvalidFilter(source="filter") from None
        if not isinstance(raw, dict):
            raise InvalidFilter(source="filter")
        parsed = services.parse_filter(raw)
    offset = 0
    if continuation:
        try:
            offset = max(0, int(continuation))
        except ValueError:
            raise InvalidInput(
                "The continuation token is not valid.", source="MS-ContinuationToken"
            ) from None
    items, total = services.list_customers(
        session, partner_id=actor.tenant_id, filter=parsed, text=q, offset=offset, limit=size
    )
    following = offset + len(items)
    return collection(
        [customer_out(t).model_dump(mode="json") for t in items],
        total=total,
        continuation=str(following) if following < total else None,
        next_uri=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: str, session: SessionDep, actor: Viewer) -> CustomerOut:
    """One customer, by tenant GUID (or primary domain)."""
    return customer_out(customer_for(session, actor, customer_id))


# --- customer users ----------------------------------------------------------------------


def _role_out(role: Role) -> DirectoryRoleOut:
    return DirectoryRoleOut(id=role.value, name=ROLE_LABELS[role])


@router.post("/customers/{customer_id}/users", status_code=201, response_model=UserOut)
def create_customer_user(
    customer_id: str,
    body: CustomerUserIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: UserManager,
) -> UserOut:
    """Add a user to the customer's tenant (roles: global_admin, billing_admin, user)."""
    customer = customer_for(session, actor, customer_id)
    user = services.create_customer_user(
        session,
        actor=actor,
        customer=customer,
        email=body.email,
        display_name=body.displayName,
        password=body.password,
        roles=body.roles or [Role.USER.value],
        now=now,
        request=info,
    )
    session.commit()
    return user_out(user)


@router.get("/customers/{customer_id}/users")
def list_customer_users(customer_id: str, session: SessionDep, actor: Viewer) -> dict[str, Any]:
    """The customer's users."""
    customer = customer_for(session, actor, customer_id)
    users = services.list_customer_users(session, customer=customer)
    return collection([user_out(u).model_dump(mode="json") for u in users])


def _customer_user(session: Session, actor: Actor, customer_id: str, user_id: str) -> User:
    customer = customer_for(session, actor, customer_id)
    return services.get_customer_user(
        session, customer=customer, user_id=parse_uuid(user_id, "user")
    )


@router.get("/customers/{customer_id}/users/{user_id}", response_model=UserOut)
def get_customer_user(
    customer_id: str, user_id: str, session: SessionDep, actor: Viewer
) -> UserOut:
    """One user of the customer."""
    return user_out(_customer_user(session, actor, customer_id, user_id))


@router.get("/customers/{customer_id}/users/{user_id}/directoryroles")
def list_directory_roles(
    customer_id: str, user_id: str, session: SessionDep, actor: Viewer
) -> dict[str, Any]:
    """The directory roles the customer user holds."""
    user = _customer_user(session, actor, customer_id, user_id)
    return collection([_role_out(r).model_dump() for r in user.roles])


@router.post(
    "/customers/{customer_id}/users/{user_id}/directoryroles",
    status_code=201,
    response_model=DirectoryRoleOut,
)
def add_directory_role(
    customer_id: str,
    user_id: str,
    body: DirectoryRoleIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: UserManager,
) -> DirectoryRoleOut:
    """Give the customer user a role."""
    customer = customer_for(session, actor, customer_id)
    user = services.get_customer_user(
        session, customer=customer, user_id=parse_uuid(user_id, "user")
    )
    roles = [r.value for r in user.roles]
    services.set_customer_user_roles(
        session,
        actor=actor,
        customer=customer,
        user=user,
        roles=[*roles, body.id],
        now=now,
        request=info,
    )
    session.commit()
    return _role_out(Role(body.id))


@router.delete("/customers/{customer_id}/users/{user_id}/directoryroles/{role_id}", status_code=204)
def remove_directory_role(
    customer_id: str,
    user_id: str,
    role_id: str,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: UserManager,
) -> Response:
    """Take a role away from the customer user."""
    customer = customer_for(session, actor, customer_id)
    user = services.get_customer_user(
        session, customer=customer, user_id=parse_uuid(user_id, "user")
    )
    services.set_customer_user_roles(
        session,
        actor=actor,
        customer=customer,
        user=user,
        roles=[r.value for r in user.roles if r.value != role_id],
        now=now,
        request=info,
    )
    session.commit()
    return Response(status_code=204)
