"""HTML routes: the customer's Software page in Partner Center, and *Billing > Your products >
Software* in the Admin Center. Both call the same services as the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from partnercenter.context import Actor
from partnercenter.customers.views import page_customer
from partnercenter.deps import NowDep, RequestInfoDep, SecurityNowDep, SessionDep, SettingsDep
from partnercenter.downloads import file_response
from partnercenter.errors import DomainError
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.licensing import services
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.web import check_csrf, render

router = APIRouter(route_class=Route, include_in_schema=False)

ADMIN_BASE = "/admin/billing/products/software"


@dataclass(frozen=True)
class Portal:
    """What differs between Partner Center and the Admin Center."""

    name: str
    template: str
    view: Action
    get_key: Action
    download: Action
    copy_link: Action | None


PARTNER = Portal(
    "partner",
    "partner/software.html",
    Action.VIEW_SOFTWARE,
    Action.GET_SOFTWARE_KEY,
    Action.DOWNLOAD_SOFTWARE,
    Action.COPY_DOWNLOAD_LINK,
)
ADMIN = Portal(
    "admin",
    "admin/software.html",
    Action.VIEW_OWN_SOFTWARE,
    Action.GET_OWN_SOFTWARE_KEY,
    Action.DOWNLOAD_OWN_SOFTWARE,
    None,
)


def _partner(
    request: Request, user: User | None, session: Session, customer_id: str, action: Action
) -> tuple[User, Actor, Tenant]:
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(action, me)
    return me, identity.actor_for(me), page_customer(session, me, customer_id)


def _admin(request: Request, user: User | None, action: Action) -> tuple[User, Actor, Tenant]:
    me = portal_user(request, user, TenantKind.CUSTOMER)
    require_page(action, me)
    return me, identity.actor_for(me), me.tenant


def _page(
    request: Request,
    session: Session,
    *,
    portal: Portal,
    me: User,
    customer: Tenant,
    base: str,
    selection: dict[str, str],
    key: services.RevealedKey | None = None,
    link: services.CreatedLink | None = None,
    error: DomainError | None = None,
    reveal_gone: bool = False,
    now: datetime | None = None,
) -> Response:
    items = services.list_software(session, customer=customer)
    never_cancellable = (
        _never_cancellable(session, customer, items, now) if portal is PARTNER else set()
    )
    selected = next((i for i in items if str(i.id) == selection.get("item")), None)
    if selected is not None and not selection.get("version") and selected.versions:
        selection = {**selection, "version": selected.versions[0]["version"]}
    response = render(
        request,
        portal.template,
        {
            "portal": portal.name,
            "me": me,
            "customer": customer,
            "tab": "software",
            "items": items,
            "base": base,
            "selection": selection,
            "selected": selected,
            "key": key,
            "link": link,
            "error": error,
            "reveal_gone": reveal_gone,
            "never_cancellable": never_cancellable,
            "can_key": identity.actor_for(me).can(portal.get_key),
            "can_download": identity.actor_for(me).can(portal.download),
            "can_link": portal.copy_link is not None
            and identity.actor_for(me).can(portal.copy_link),
        },
        status=error.status if error else 200,
    )
    if key is not None or link is not None or reveal_gone:
        response.headers["Cache-Control"] = "no-store"
    return response


def _never_cancellable(
    session: Session, customer: Tenant, items: list[Any], now: datetime | None
) -> set[Any]:
    """Ids of the active items whose product can never be cancelled (software plans such as
    SUSE and Red Hat, whose policy gives no credit): the page offers no Cancel purchase."""
    from partnercenter.orders import cancellation

    ids: set[Any] = set()
    for item in items:
        if not item.active:
            continue
        try:
            preview = cancellation.preview(
                session, customer=customer, order_id=item.order.id, now=now or datetime.now(UTC)
            )
        except DomainError:
            continue
        if preview.reason == "product_not_cancellable":
            ids.add(item.id)
    return ids


def _wants_json(request: Request) -> bool:
    """Whether the page's script (fetch, Accept: application/json) sent the form."""
    return request.headers.get("accept", "").startswith("application/json")


def _selection(item: str, version: str, language: str, bitness: str) -> dict[str, str]:
    return {"item": item, "version": version, "language": language, "bitness": bitness}


def _reveal(
    session: Session,
    request: Request,
    *,
    portal: Portal,
    me: User,
    actor: Actor,
    customer: Tenant | uuid.UUID,
    base: str,
    settings: Any,
    now: Any,
    info: Any,
    selection: dict[str, str],
) -> Response:
    """Get Key's POST: reveal (audited once), hold it for one showing, redirect to the GET.

    ``customer`` by tenant id is read with the purchase (``services.get_key``); a page
    answering an error reads it alone (a foreign one is a 404, as before the reveal).
    """
    try:
        key = services.get_key(
            session,
            settings=settings,
            actor=actor,
            customer=customer,
            item_id=selection["item"],
            version=selection["version"] or None,
            now=now,
            request=info,
        )
        assert key.customer is not None, "get_key names the purchase's customer"
        reveal_id = services.hold_for_reveal(
            session,
            revealed=key,
            customer=key.customer,
            web_session_id=request.state.web_session.id,
            real_now=datetime.now(UTC),
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        if not isinstance(customer, Tenant):
            customer = page_customer(session, me, str(customer))
        return _page(
            request,
            session,
            portal=portal,
            me=me,
            customer=customer,
            base=base,
            selection=selection,
            error=exc,
            now=now,
        )
    query = urlencode({**selection, "version": key.version, "reveal": str(reveal_id)})
    return RedirectResponse(f"{base}?{query}", status_code=303)


def _show(
    request: Request,
    session: Session,
    *,
    portal: Portal,
    me: User,
    customer: Tenant,
    base: str,
    selection: dict[str, str],
    settings: Any,
    reveal: str,
    now: datetime | None = None,
) -> Response:
    """The Software page (GET); with ``reveal``, the key held by Get Key, shown this once."""
    key: services.RevealedKey | None = None
    if reveal:
        key = services.take_reveal(
            session,
            settings=settings,
            customer=customer,
            reveal_id=reveal,
            web_session_id=request.state.web_session.id,
            real_now=datetime.now(UTC),
        )
        session.commit()
    return _page(
        request,
        session,
        portal=portal,
        me=me,
        customer=customer,
        base=base,
        selection=selection,
        key=key,
        reveal_gone=bool(reveal) and key is None,
        now=now,
    )


def _download(
    session: Session,
    *,
    actor: Actor,
    customer: Tenant,
    settings: Any,
    now: Any,
    info: Any,
    selection: dict[str, str],
) -> Response:
    plan = services.start_download(
        session,
        settings=settings,
        actor=actor,
        customer=customer,
        item_id=selection["item"],
        version=selection["version"],
        language=selection["language"],
        bitness=selection["bitness"],
        now=now,
        request=info,
    )
    session.commit()
    return file_response(settings, plan.storage, plan.obj, filename=plan.file_name)


# --- Partner Center ----------------------------------------------------------------------


@router.get("/partner/customers/{customer_id}/software")
def partner_software(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    item: str = "",
    version: str = "",
    language: str = "",
    bitness: str = "",
    reveal: str = "",
) -> Response:
    me, _, customer = _partner(request, user, session, customer_id, PARTNER.view)
    return _show(
        request,
        session,
        portal=PARTNER,
        me=me,
        customer=customer,
        base=f"/partner/customers/{customer.id}/software",
        selection=_selection(item, version, language, bitness),
        settings=settings,
        reveal=reveal,
        now=now,
    )


@router.post("/partner/customers/{customer_id}/software/{item_id}/key")
def partner_key(
    customer_id: str,
    item_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    version: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    bitness: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(PARTNER.get_key, me)
    try:
        cid = uuid.UUID(customer_id)
        check_csrf(request, csrf_token)
    except (ValueError, DomainError):
        page_customer(session, me, customer_id)  # an unknown customer's 404 comes first
        raise
    return _reveal(
        session,
        request,
        portal=PARTNER,
        me=me,
        actor=identity.actor_for(me),
        customer=cid,
        base=f"/partner/customers/{cid}/software",
        settings=settings,
        now=now,
        info=info,
        selection=_selection(item_id, version, language, bitness),
    )


@router.get("/partner/customers/{customer_id}/software/{item_id}/download")
def partner_download(
    customer_id: str,
    item_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    version: str = "",
    language: str = "",
    bitness: str = "",
) -> Response:
    _, actor, customer = _partner(request, user, session, customer_id, PARTNER.download)
    return _download(
        session,
        actor=actor,
        customer=customer,
        settings=settings,
        now=now,
        info=info,
        selection=_selection(item_id, version, language, bitness),
    )


@router.post("/partner/customers/{customer_id}/software/{item_id}/link")
def partner_link(
    customer_id: str,
    item_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    version: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    bitness: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    assert PARTNER.copy_link is not None
    me, actor, customer = _partner(request, user, session, customer_id, PARTNER.copy_link)
    check_csrf(request, csrf_token)
    selection = _selection(item_id, version, language, bitness)
    base = f"/partner/customers/{customer.id}/software"
    try:
        link = services.create_link(
            session,
            settings=settings,
            actor=actor,
            customer=customer,
            item_id=item_id,
            version=version,
            language=language,
            bitness=bitness,
            now=now,
            request=info,
            security_now=security_now,
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        if _wants_json(request):
            return JSONResponse(exc.body(), status_code=exc.status)
        return _page(
            request,
            session,
            portal=PARTNER,
            me=me,
            customer=customer,
            base=base,
            selection=selection,
            error=exc,
            now=now,
        )
    if _wants_json(request):  # the page's script copies the link at once
        return JSONResponse(
            {
                "uri": link.uri,
                "expiresAt": link.link.expires_at.isoformat(),
                "fileName": link.file_name,
            },
            headers={"Cache-Control": "no-store"},
        )
    return _page(
        request,
        session,
        portal=PARTNER,
        me=me,
        customer=customer,
        base=base,
        selection=selection,
        link=link,
        now=now,
    )


# --- Admin Center ------------------------------------------------------------------------


@router.get(ADMIN_BASE)
def admin_software(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    item: str = "",
    version: str = "",
    language: str = "",
    bitness: str = "",
    reveal: str = "",
) -> Response:
    me, _, customer = _admin(request, user, ADMIN.view)
    return _show(
        request,
        session,
        portal=ADMIN,
        me=me,
        customer=customer,
        base=ADMIN_BASE,
        selection=_selection(item, version, language, bitness),
        settings=settings,
        reveal=reveal,
        now=now,
    )


@router.post(ADMIN_BASE + "/{item_id}/key")
def admin_key(
    item_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    version: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    bitness: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me, actor, customer = _admin(request, user, ADMIN.get_key)
    check_csrf(request, csrf_token)
    return _reveal(
        session,
        request,
        portal=ADMIN,
        me=me,
        actor=actor,
        customer=customer,
        base=ADMIN_BASE,
        settings=settings,
        now=now,
        info=info,
        selection=_selection(item_id, version, language, bitness),
    )


@router.get(ADMIN_BASE + "/{item_id}/download")
def admin_download(
    item_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    version: str = "",
    language: str = "",
    bitness: str = "",
) -> Response:
    _, actor, customer = _admin(request, user, ADMIN.download)
    return _download(
        session,
        actor=actor,
        customer=customer,
        settings=settings,
        now=now,
        info=info,
        selection=_selection(item_id, version, language, bitness),
    )
