"""JSON routes: a partner's customers and the customers' users and directory roles."""

from __future__ import annotations

import json
import secrets
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
    CustomerUserOut,
    DirectoryRoleIn,
    DirectoryRoleOut,
    UserCredentialsOut,
)
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, parse_uuid, require
from partnercenter.envelopes import collection, continuation_or_none
from partnercenter.errors import InvalidInput
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import ROLE_LABELS, Action, Role
from partnercenter.routing import Route

router = APIRouter(route_class=Route, prefix="/v1", tags=["customers"])

Viewer = Annotated[Actor, Depends(require(Action.VIEW_CUSTOMERS))]
Creator = Annotated[Actor, Depends(require(Action.CREATE_CUSTOMER))]
UserManager = Annotated[Actor, Depends(require(Action.MANAGE_CUSTOMER_USERS))]

MAX_PAGE = 500


def customer_out(tenant: Tenant) -> CustomerOut:
    return CustomerOut(
        id=tenant.id,
        commerceId=uuid.uuid5(tenant.id, "commerce"),
        companyProfile=CompanyProfileOut(
            tenantId=tenant.id, domain=tenant.domain, companyName=tenant.name
        ),
        billingProfile={
            "id": str(uuid.uuid5(tenant.id, "billing-profile")),
            **(
                tenant.billing_profile
                or {"companyName": tenant.name, "defaultAddress": {"country": tenant.country}}
            ),
            "attributes": {"objectType": "CustomerBillingProfile"},
        },
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
    # Partner Center answers a new customer with its tenant's first Global admin; the
    # password is generated here, shown once in this answer and stored only as a hash.
    password = secrets.token_urlsafe(18)
    services.create_customer_user(
        session,
        actor=actor,
        customer=tenant,
        email=f"admin@{tenant.domain}",
        display_name="admin",
        password=password,
        roles=[Role.GLOBAL_ADMIN.value],
        now=now,
        request=info,
    )
    session.commit()
    out = customer_out(tenant)
    out.userCredentials = UserCredentialsOut(userName="admin", password=password)
    return out


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
    size: Annotated[
        int, Query(ge=0, le=MAX_PAGE, description="Page size; 0 means the default, 100")
    ] = 100,
    continuation: Annotated[str | None, Header(alias="MS-ContinuationToken")] = None,
    seek_operation: Annotated[
        str | None, Query(alias="seekOperation", description="Next, with MS-ContinuationToken")
    ] = None,
) -> dict[str, Any]:
    """The partner's customers; filter by domain or company name prefix, or look one up.

    Partner Center: "Get a list of customers" and "Get a list of customers using a filter"
    (``size=0`` with a filter, as documented, means the default page size).
    """
    continuation = continuation_or_none(seek_operation, continuation)
    size = size or 100
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


def customer_user_out(user: User) -> CustomerUserOut:
    """Partner Center's CustomerUser for one of the customer's users."""
    first, _, last = user.display_name.strip().partition(" ")
    return CustomerUserOut(
        id=user.id,
        userPrincipalName=user.email,
        email=user.email,
        firstName=first,
        lastName=last,
        displayName=user.display_name,
        usageLocation=user.tenant.country if user.tenant else None,
        state="active" if user.is_active else "inactive",
        roles=sorted(r.value for r in user.roles),
        isActive=user.is_active,
        tenantId=user.tenant_id,
        createdAt=user.created_at,
    )


@router.post("/customers/{customer_id}/users", status_code=201, response_model=CustomerUserOut)
def create_customer_user(
    customer_id: str,
    body: CustomerUserIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: UserManager,
) -> CustomerUserOut:
    """Add a user to the customer's tenant (roles: global_admin, billing_admin, user).

    Partner Center: "Create user accounts for a customer".
    """
    customer = customer_for(session, actor, customer_id)
    email = body.userPrincipalName or body.email
    password = body.passwordProfile.password if body.passwordProfile else body.password
    if not email:
        raise InvalidInput("userPrincipalName is required.", source="userPrincipalName")
    if not password:
        raise InvalidInput(
            "passwordProfile.password is required.", source="passwordProfile.password"
        )
    display = body.displayName or " ".join(p for p in (body.firstName, body.lastName) if p)
    user = services.create_customer_user(
        session,
        actor=actor,
        customer=customer,
        email=email,
        display_name=display,
        password=password,
        roles=body.roles or [Role.USER.value],
        now=now,
        request=info,
    )
    session.commit()
    return customer_user_out(user)


@router.get("/customers/{customer_id}/users")
def list_customer_users(customer_id: str, session: SessionDep, actor: Viewer) -> dict[str, Any]:
    """The customer's users."""
    customer = customer_for(session, actor, customer_id)
    users = services.list_customer_users(session, customer=customer)
    return collection([customer_user_out(u).model_dump(mode="json") for u in users])


def _customer_user(session: Session, actor: Actor, customer_id: str, user_id: str) -> User:
    customer = customer_for(session, actor, customer_id)
    return services.get_customer_user(
        session, customer=customer, user_id=parse_uuid(user_id, "user")
    )


@router.get("/customers/{customer_id}/users/{user_id}", response_model=CustomerUserOut)
def get_customer_user(
    customer_id: str, user_id: str, session: SessionDep, actor: Viewer
) -> CustomerUserOut:
    """One user of the customer."""
    return customer_user_out(_customer_user(session, actor, customer_id, user_id))


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
