"""JSON routes of the Software page, and the public route copied links point at.

Partner users reach a customer's software as ``/v1/customers/{id}/software...``; a customer's
Global admin reaches its own tenant's the same way (``{id}`` = its own tenant id or domain).
Who may do what comes from the permissions table: Admin agents (partner) and the customer's
Global admin get keys and downloads; only Admin agents copy links.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from partnercenter.context import Actor
from partnercenter.customers.api import customer_for
from partnercenter.customers.errors import CustomerNotFound
from partnercenter.deps import (
    ActorDep,
    NowDep,
    RequestInfoDep,
    SecurityNowDep,
    SessionDep,
    SettingsDep,
    require,
)
from partnercenter.downloads import file_response
from partnercenter.envelopes import collection
from partnercenter.errors import DomainError, Forbidden, InvalidInput
from partnercenter.identity.models import Tenant
from partnercenter.licensing import services
from partnercenter.orders import cancellation
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.schemas import RequestModel

router = APIRouter(route_class=Route, prefix="/v1", tags=["software"])
public_router = APIRouter(route_class=Route, tags=["software"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid version, language, bitness or link lifetime (10010, 16012)"},
    403: {"description": "The caller's roles do not allow this"},
    404: {"description": "Unknown or foreign customer, purchase or file (16020, 13008)"},
    409: {"description": "Get Key: software sold without keys (16023), or no key left (13005)"},
    410: {"description": "The purchase was cancelled (16021)"},
}


def software_actor(partner: Action, customer: Action | None) -> Callable[[Actor], Actor]:
    """Allow partner users holding ``partner`` and customer users holding ``customer``."""

    def _check(actor: ActorDep) -> Actor:
        action = customer if actor.tenant_kind == TenantKind.CUSTOMER else partner
        if action is None or not actor.can(action):
            needed = partner if action is None else action
            raise Forbidden(data=[{"action": needed.value}])
        return actor

    _check.__name__ = f"require_software_{partner.name.lower()}"
    return _check


Viewer = Annotated[Actor, Depends(software_actor(Action.VIEW_SOFTWARE, Action.VIEW_OWN_SOFTWARE))]
KeyGetter = Annotated[
    Actor, Depends(software_actor(Action.GET_SOFTWARE_KEY, Action.GET_OWN_SOFTWARE_KEY))
]
Downloader = Annotated[
    Actor, Depends(software_actor(Action.DOWNLOAD_SOFTWARE, Action.DOWNLOAD_OWN_SOFTWARE))
]
Canceller = Annotated[Actor, Depends(require(Action.CANCEL_PURCHASE))]
LinkMaker = Annotated[Actor, Depends(software_actor(Action.COPY_DOWNLOAD_LINK, None))]


def software_customer(session: Session, actor: Actor, customer_id: str) -> Tenant:
    """The partner's customer, or for a customer user its own tenant; else not found."""
    if actor.tenant_kind == TenantKind.CUSTOMER:
        own = session.get(Tenant, actor.tenant_id)
        if own is None or customer_id.strip().lower() not in {str(own.id), own.domain or ""}:
            raise CustomerNotFound()
        return own
    return customer_for(session, actor, customer_id)


def _customer_ref(session: Session, actor: Actor, customer_id: str) -> Tenant | uuid.UUID:
    """The customer of the path, or for a partner user naming it by tenant id that id: the
    service then reads the customer with the purchase under the same rule (one statement
    fewer). A customer user's own tenant came with its authentication (no statement)."""
    if actor.tenant_kind != TenantKind.CUSTOMER:
        try:
            return uuid.UUID(customer_id)
        except ValueError:
            pass
    return software_customer(session, actor, customer_id)


class KeyIn(RequestModel):
    version: str | None = Field(default=None, max_length=40, description="Newest when absent.")


class KeyOut(BaseModel):
    itemId: str
    version: str
    productKey: str


class FileChoice(RequestModel):
    version: str = Field(max_length=40)
    language: str = Field(max_length=16)
    bitness: str = Field(max_length=8)


class LinkIn(FileChoice):
    expiresInMinutes: int | None = Field(
        default=None, description="Lifetime, 1 minute to 7 days; the configured default else."
    )


class LinkOut(BaseModel):
    id: str
    uri: str
    expiresAt: str
    sha256: str
    size: int
    fileName: str
    version: str
    language: str
    bitness: str


@router.get("/customers/{customer_id}/software", responses=_ERRORS)
def list_software(customer_id: str, session: SessionDep, actor: Viewer) -> dict[str, Any]:
    """The Software page: each purchase with product, order, status and its versions."""
    customer = software_customer(session, actor, customer_id)
    items = services.list_software(session, customer=customer)
    return collection([item.to_json() for item in items])


@router.get("/customers/{customer_id}/entitlements", responses=_ERRORS)
def list_entitlements(
    customer_id: str,
    session: SessionDep,
    actor: Viewer,
    entitlementType: Annotated[str | None, Query(max_length=40)] = None,
    showExpiry: Annotated[bool, Query(description="Add each entitlement's expiryDate")] = False,
) -> dict[str, Any]:
    """Partner Center's entitlements; keys are never listed (``POST .../key`` reveals one).

    Partner Center: "Get entitlements" (``entitlementType``, ``showExpiry``).
    """
    customer = software_customer(session, actor, customer_id)
    if (entitlementType or "").strip().lower() not in ("", "software"):
        return collection([])
    items = services.list_software(session, customer=customer)
    return collection([item.entitlement_json(show_expiry=showExpiry) for item in items])


# --- Partner Center's subscriptions: each software purchase is one ----------------------


class SubscriptionPatchIn(RequestModel):
    """Partner Center's subscription update; ``status: suspended`` cancels the purchase."""

    model_config = ConfigDict(extra="ignore")

    status: str | None = Field(
        default=None, max_length=20, description="suspended (or cancelled) cancels the purchase"
    )


@router.get("/customers/{customer_id}/subscriptions", responses=_ERRORS)
def list_subscriptions(
    customer_id: str,
    session: SessionDep,
    actor: Viewer,
    order_id: Annotated[str | None, Query(alias="order_id", description="One order's")] = None,
) -> dict[str, Any]:
    """The customer's software purchases as Partner Center subscriptions, newest first.

    Partner Center: "Get all of a customer's subscriptions" (and "by order": ``order_id``).
    """
    customer = software_customer(session, actor, customer_id)
    items = services.list_software(session, customer=customer)
    if order_id:
        items = [i for i in items if str(i.order.id) == order_id.strip().lower()]
    return collection([item.subscription_json() for item in items])


@router.get("/customers/{customer_id}/subscriptions/{subscription_id}", responses=_ERRORS)
def get_subscription(
    customer_id: str, subscription_id: str, session: SessionDep, actor: Viewer
) -> dict[str, Any]:
    """One subscription. Partner Center: "Get a subscription by ID"."""
    customer = software_customer(session, actor, customer_id)
    return services.get_item(
        session, customer=customer, item_id=subscription_id
    ).subscription_json()


@router.patch("/customers/{customer_id}/subscriptions/{subscription_id}", responses=_ERRORS)
def update_subscription(
    customer_id: str,
    subscription_id: str,
    body: SubscriptionPatchIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Canceller,
) -> dict[str, Any]:
    """Cancel a software purchase the way scripts suspend a subscription.

    Partner Center: "Suspend a subscription" / "Cancel a subscription" (``status``). The
    purchase's order line is cancelled with the cancellation rules (window, credit, keys and
    links revoked); cancelling an already cancelled one answers it unchanged.
    """
    customer = customer_for(session, actor, customer_id)
    item = services.get_item(session, customer=customer, item_id=subscription_id)
    wanted = (body.status or "").strip().lower()
    if wanted in ("", "active") and item.active:
        return item.subscription_json()
    if wanted not in {"suspended", "cancelled", "canceled", "deleted"}:
        raise InvalidInput(
            "status must be suspended (or cancelled) to cancel the subscription.",
            source="status",
        )
    if item.active:
        cancellation.cancel_order(
            session,
            actor=actor,
            customer=customer,
            order_id=item.order.id,
            line_numbers=[item.line.line_number],
            now=now,
            request=info,
        )
        session.commit()
        session.expire_all()
        item = services.get_item(session, customer=customer, item_id=item.id)
    return item.subscription_json()


@router.post(
    "/customers/{customer_id}/software/{item_id}/key", response_model=KeyOut, responses=_ERRORS
)
def get_key(
    customer_id: str,
    item_id: str,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: KeyGetter,
    body: KeyIn | None = None,
) -> JSONResponse:
    """Reveal the product key (audited; the record is committed before the key is sent).

    Every reveal is an access on the activity log, a repeated one too, so every one commits.
    """
    revealed = services.get_key(
        session,
        settings=settings,
        actor=actor,
        customer=_customer_ref(session, actor, customer_id),
        item_id=item_id,
        version=body.version if body else None,
        now=now,
        request=info,
    )
    session.commit()
    return JSONResponse(
        {"itemId": str(revealed.item.id), "version": revealed.version, "productKey": revealed.key},
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/customers/{customer_id}/software/{item_id}/downloadlink",
    status_code=201,
    response_model=LinkOut,
    responses=_ERRORS,
)
def create_link(
    customer_id: str,
    item_id: str,
    body: LinkIn,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    actor: LinkMaker,
) -> JSONResponse:
    """A signed link to one file that works without signing in until it expires or the
    purchase is cancelled (audited)."""
    customer = software_customer(session, actor, customer_id)
    created = services.create_link(
        session,
        settings=settings,
        actor=actor,
        customer=customer,
        item_id=item_id,
        version=body.version,
        language=body.language,
        bitness=body.bitness,
        lifetime_minutes=body.expiresInMinutes,
        now=now,
        request=info,
        security_now=security_now,
    )
    session.commit()
    return JSONResponse(created.to_json(), status_code=201, headers={"Cache-Control": "no-store"})


@router.head(
    "/customers/{customer_id}/software/{item_id}/download",
    include_in_schema=False,
    response_class=Response,
)
@router.get(
    "/customers/{customer_id}/software/{item_id}/download",
    responses={
        **_ERRORS,
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        206: {"description": "The requested byte range (Range, If-Range)"},
        416: {"description": "Range not satisfiable"},
    },
    response_class=Response,
)
def download(
    customer_id: str,
    item_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Downloader,
    version: Annotated[str, Query(max_length=40)],
    language: Annotated[str, Query(max_length=16)],
    bitness: Annotated[str, Query(max_length=8)],
) -> Response:
    """Stream the file (Range and If-Range resume a broken download); audited per request.

    The record is committed before the first byte; the session holds no transaction while
    the file streams, however long that takes. ``HEAD`` makes every check a download makes
    and answers the same headers without the body; it records nothing (no byte was sent).
    """
    plan = services.start_download(
        session,
        settings=settings,
        actor=actor,
        customer=_customer_ref(session, actor, customer_id),
        item_id=item_id,
        version=version,
        language=language,
        bitness=bitness,
        now=now,
        request=info,
    )
    _commit_unless_head(request, session)
    return file_response(settings, plan.storage, plan.obj, filename=plan.file_name)


def _commit_unless_head(request: Request, session: Session) -> None:
    """Commit the download's audit record; a ``HEAD`` sends no byte, so it records nothing."""
    if request.method == "HEAD":
        session.rollback()
    else:
        session.commit()


_PAGE: dict[str, Any] = {"text/html": {}}


@public_router.head("/downloads/{token}", include_in_schema=False, response_class=Response)
@public_router.get(
    "/downloads/{token}",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        400: {"content": _PAGE, "description": "Control characters or non-UTF-8 in the link"},
        403: {"content": _PAGE, "description": "The link was changed (16010)"},
        404: {"content": _PAGE, "description": "No such link"},
        410: {
            "content": _PAGE,
            "description": "The link expired (16011) or its purchase was cancelled (16022)",
        },
    },
    response_class=Response,
)
def download_by_link(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
) -> Response:
    """A copied link: no sign-in; refused with a plain page saying why (403 or 410)."""
    try:
        plan = services.use_link(
            session,
            settings=settings,
            token=token,
            now=now,
            request=info,
            security_now=security_now,
        )
    except DomainError as exc:
        from partnercenter.web import render_error_page

        session.rollback()
        return render_error_page(request, exc.status, exc.body())
    _commit_unless_head(request, session)
    return file_response(settings, plan.storage, plan.obj, filename=plan.file_name)
