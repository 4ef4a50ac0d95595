"""HTML routes: Customers list with search and Add customer, customer detail, its users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from partnercenter.customers import services
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep
from partnercenter.errors import DomainError
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.markets import all_countries
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.web import check_csrf, render

router = APIRouter(route_class=Route, include_in_schema=False)

PAGE_SIZE = 200


def partner_page_user(request: Request, user: User | None, action: Action) -> User:
    """The signed-in partner user allowed ``action``, or a redirect / refusal."""
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(action, me)
    return me


def page_customer(session: SessionDep, me: User, customer_id: str) -> Tenant:
    """The partner's customer of the path; anything else is not found."""
    try:
        cid = uuid.UUID(customer_id)
    except ValueError:
        from partnercenter.customers.errors import CustomerNotFound

        raise CustomerNotFound() from None
    return services.get_customer(session, partner_id=me.tenant_id, customer_id=cid)


def _list_page(
    request: Request,
    session: SessionDep,
    me: User,
    q: str,
    *,
    error: DomainError | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    customers, total = services.list_customers(
        session, partner_id=me.tenant_id, text=q or None, limit=PAGE_SIZE
    )
    return render(
        request,
        "partner/customers.html",
        {
            "portal": "partner",
            "me": me,
            "customers": customers,
            "total": total,
            "q": q,
            "countries": all_countries().values(),
            "error": error,
            "form": form or {},
        },
        status=error.status if error else 200,
    )


@router.get("/partner/customers")
def customers_page(
    request: Request, user: OptionalUser, session: SessionDep, q: str = ""
) -> Response:
    me = partner_page_user(request, user, Action.VIEW_CUSTOMERS)
    return _list_page(request, session, me, q.strip())


@router.post("/partner/customers")
def customers_create(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    company_name: Annotated[str, Form()] = "",
    domain: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "en",
    address_line1: Annotated[str, Form()] = "",
    city: Annotated[str, Form()] = "",
    postal_code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.CREATE_CUSTOMER)
    check_csrf(request, csrf_token)
    culture = {"es": "es-ES"}.get(language, "en-US")
    try:
        tenant = services.create_customer(
            session,
            actor=identity.actor_for(me),
            company_name=company_name,
            domain=domain,
            country=country,
            billing_profile={
                "email": email,
                "culture": culture,
                "language": language,
                "defaultAddress": {
                    "addressLine1": address_line1,
                    "city": city,
                    "postalCode": postal_code,
                },
            },
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        form = {
            "company_name": company_name,
            "domain": domain,
            "country": country,
            "email": email,
            "address_line1": address_line1,
            "city": city,
            "postal_code": postal_code,
        }
        return _list_page(request, session, me, "", error=exc, form=form)
    session.commit()
    return RedirectResponse(f"/partner/customers/{tenant.id}?flash=created", status_code=303)


@router.get("/partner/customers/{customer_id}")
def customer_page(
    customer_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me = partner_page_user(request, user, Action.VIEW_CUSTOMERS)
    customer = page_customer(session, me, customer_id)
    return render(
        request,
        "partner/customer.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "account",
        },
    )


def _users_page(
    request: Request,
    session: SessionDep,
    me: User,
    customer: Tenant,
    *,
    error: DomainError | None = None,
    form: dict[str, object] | None = None,
) -> Response:
    return render(
        request,
        "partner/customer_users.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "users",
            "users": services.list_customer_users(session, customer=customer),
            "roles": services.customer_roles(),
            "error": error,
            "form": form or {},
        },
        status=error.status if error else 200,
    )


@router.get("/partner/customers/{customer_id}/users")
def customer_users_page(
    customer_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me = partner_page_user(request, user, Action.VIEW_CUSTOMERS)
    customer = page_customer(session, me, customer_id)
    return _users_page(request, session, me, customer)


@router.post("/partner/customers/{customer_id}/users")
def customer_users_create(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    email: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.MANAGE_CUSTOMER_USERS)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    try:
        services.create_customer_user(
            session,
            actor=identity.actor_for(me),
            customer=customer,
            email=email,
            display_name=display_name,
            password=password,
            roles=roles or ["user"],
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        form: dict[str, object] = {
            "email": email,
            "display_name": display_name,
            "roles": roles or [],
        }
        return _users_page(request, session, me, customer, error=exc, form=form)
    session.commit()
    return RedirectResponse(
        f"/partner/customers/{customer.id}/users?flash=created", status_code=303
    )


@router.post("/partner/customers/{customer_id}/users/{user_id}/roles")
def customer_users_set_roles(
    customer_id: str,
    user_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    roles: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.MANAGE_CUSTOMER_USERS)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        from partnercenter.errors import NotFound

        raise NotFound("The user was not found.") from None
    target = services.get_customer_user(session, customer=customer, user_id=uid)
    try:
        services.set_customer_user_roles(
            session,
            actor=identity.actor_for(me),
            customer=customer,
            user=target,
            roles=roles or [],
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        return _users_page(request, session, me, customer, error=exc)
    session.commit()
    return RedirectResponse(f"/partner/customers/{customer.id}/users?flash=saved", status_code=303)
