"""HTML routes: partners report problems and follow them; provider support works the queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, SettingsDep
from partnercenter.errors import DomainError, Forbidden, NotFound
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.models import User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.storage import get_storage
from partnercenter.support import services
from partnercenter.support.api import names_for, request_json, send_mail_after_commit
from partnercenter.support.errors import InvalidSupportRequest
from partnercenter.support.files import ALLOWED_EXTENSIONS, IncomingFile, read_limited
from partnercenter.support.models import RequestStatus, Severity, SupportRequest
from partnercenter.web import check_csrf, gettext_for, language, render

router = APIRouter(route_class=Route, include_in_schema=False)

REFUND_TITLE = N_("Refund for a cancelled purchase")

FORM_FIELDS = (
    "topic",
    "severity",
    "title",
    "description",
    "customer",
    "order",
    "subscription",
    "reason",
    "amount",
    "first_name",
    "last_name",
    "email",
    "phone",
)
# API field names -> form field names, so each problem shows beside its field.
FIELD_OF = {
    "supportTopicId": "topic",
    "severity": "severity",
    "title": "title",
    "description": "description",
    "refund": "topic",
    "refund.customerTenantId": "customer",
    "refund.orderId": "order",
    "refund.subscriptionId": "subscription",
    "refund.reason": "reason",
    "refund.amountRequested": "amount",
    "primaryContact.firstName": "first_name",
    "primaryContact.lastName": "last_name",
    "primaryContact.email": "email",
    "primaryContact.phoneNumber": "phone",
    "attachments": "files",
    "files": "files",
    "newNote.text": "note",
    "status": "status",
    "refund.amountApproved": "amount_approved",
    "refund.reason_reject": "reason",
    "assignedTo": "assignee",
}


def field_problems(exc: DomainError) -> dict[str, str]:
    """The error's problems keyed by form field (the whole message when it names none)."""
    if isinstance(exc, InvalidSupportRequest):
        out: dict[str, str] = {}
        for name, message in exc.problems.items():
            out.setdefault(FIELD_OF.get(name, name.split("[")[0]), message)
        if "topic" in out:  # the form offers a list; the API's message names the topic ids
            out["topic"] = N_("Choose a type of problem from the list.")
        return out
    if exc.source in FIELD_OF:
        return {FIELD_OF[exc.source]: exc.description}
    return {"_": exc.description}


def _partner(request: Request, user: User | None, action: Action) -> User:
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(action, me)
    return me


def _provider(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(Action.WORK_SUPPORT_QUEUE, me)
    return me


def _rid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("The support request was not found.") from None


def _incoming(files: list[UploadFile]) -> list[IncomingFile]:
    # A form without a chosen file still sends one empty, nameless part.
    return [read_limited(f.filename or "", f.file) for f in files if f.filename]


def _labels() -> dict[str, Any]:
    return {
        "topics": services.TOPICS,
        "severities": [(s.value, services.SEVERITY_LABELS[s]) for s in Severity],
        "status_labels": {s.value: label for s, label in services.STATUS_LABELS.items()},
        "refund_labels": {s.value: label for s, label in services.REFUND_STATUS_LABELS.items()},
        "topic_names": {t.id: t.name for t in services.TOPICS},
        "allowed_extensions": ", ".join(ALLOWED_EXTENSIONS),
        "max_files": services.MAX_FILES,
    }


# --- partner ---------------------------------------------------------------------------------


@router.get("/partner/support")
def partner_requests(
    request: Request, user: OptionalUser, session: SessionDep, now: NowDep
) -> Response:
    me = _partner(request, user, Action.VIEW_SUPPORT_REQUESTS)
    actor = identity.actor_for(me)
    items, total = services.list_requests(session, actor=actor, now=now, limit=200)
    names = names_for(session, list(items))
    return render(
        request,
        "partner/support/list.html",
        {
            "portal": "partner",
            "me": me,
            "items": [request_json(r, names, full=False) for r in items],
            "total": total,
            **_labels(),
        },
    )


def _new_page(
    request: Request,
    me: User,
    form: dict[str, str],
    *,
    cancel_purchase: bool,
    cancellable: bool | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "partner/support/new.html",
        {
            "portal": "partner",
            "me": me,
            "form": form,
            # Never offered for a purchase that can never be cancelled (SUSE, Red Hat).
            "offer_cancel": cancellable is not False,
            "cancel_purchase": cancel_purchase and cancellable is not False,
            "problems": problems or {},
            **_labels(),
        },
        status=status,
    )


@router.get("/partner/support/new")
def new_request_page(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    topic: str = "",
    customer: str = "",
    order: str = "",
    amount: str = "",
    currency: str = "",
    subscription: str = "",
) -> Response:
    """Report a problem; the cancel dialog's link fills the customer, order and amount."""
    me = _partner(request, user, Action.FILE_SUPPORT_REQUEST)
    form = {name: "" for name in FORM_FIELDS}
    form.update(
        topic=topic if topic in services.TOPICS_BY_ID else "",
        customer=customer[:300],
        order=order[:100],
        subscription=subscription[:100],
        amount=amount[:40],
        currency=currency[:3].upper(),
        first_name=me.display_name.split(" ", 1)[0] if me.display_name else "",
        last_name=me.display_name.split(" ", 1)[1] if " " in me.display_name else "",
        email=me.email,
    )
    cancellable = None
    if customer and (order or subscription):
        cancellable = services.purchase_can_be_cancelled(
            session,
            partner_id=me.tenant_id,
            customer=form["customer"],
            order_id=form["order"],
            subscription_id=form["subscription"],
        )
    # "Refund for a cancelled purchase" only where the purchase can be cancelled at all.
    if form["topic"] == services.REFUND_TOPIC and order and cancellable is not False:
        form["title"] = gettext_for(request)(REFUND_TITLE)
    return _new_page(
        request,
        me,
        form,
        cancel_purchase=bool(order and topic == services.REFUND_TOPIC and cancellable),
        cancellable=cancellable,
    )


@router.post("/partner/support/new")
def new_request_submit(
    request: Request,
    background: BackgroundTasks,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    topic: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    customer: Annotated[str, Form()] = "",
    order: Annotated[str, Form()] = "",
    subscription: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "",
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    cancel_purchase: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - FastAPI reads the default
) -> Response:
    me = _partner(request, user, Action.FILE_SUPPORT_REQUEST)
    check_csrf(request, csrf_token)
    refund = services.RefundDetails(customer, order, subscription, reason, amount)
    data = services.NewRequest(
        topic_id=topic,
        severity=severity,
        title=title,
        description=description,
        contact=services.Contact(first_name, last_name, email, phone),
        refund=refund if topic == services.REFUND_TOPIC else None,
        cancel_purchase=cancel_purchase == "1",
        language=language(request),
    )
    try:
        req = services.file_request(
            session,
            actor=identity.actor_for(me),
            data=data,
            files=_incoming(files),
            storage=get_storage(settings),
            now=now,
            info=info,
            base_url=settings.base_url,
        )
    except DomainError as exc:
        session.rollback()
        form = {
            "topic": topic,
            "severity": severity,
            "title": title,
            "description": description,
            "customer": customer,
            "order": order,
            "subscription": subscription,
            "reason": reason,
            "amount": amount,
            "currency": currency,
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "phone": phone,
        }
        cancellable = services.purchase_can_be_cancelled(
            session,
            partner_id=me.tenant_id,
            customer=customer,
            order_id=order,
            subscription_id=subscription,
        )
        return _new_page(
            request,
            me,
            form,
            cancel_purchase=cancel_purchase == "1",
            cancellable=cancellable,
            problems=field_problems(exc),
            status=exc.status,
        )
    rid = req.id
    session.commit()
    send_mail_after_commit(request, session, background)
    return RedirectResponse(f"/partner/support/{rid}?done=filed", status_code=303)


def _detail(
    request: Request,
    session: SessionDep,
    me: User,
    req: SupportRequest,
    template: str,
    *,
    problems: dict[str, str] | None = None,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> Response:
    names = names_for(session, [req])
    return render(
        request,
        template,
        {
            "portal": "partner" if template.startswith("partner") else "provider",
            "me": me,
            "sr": request_json(req, names),
            "written_description": services.written_description(req),
            "problems": problems or {},
            "statuses": [s.value for s in RequestStatus],
            "next_statuses": [s.value for s in services.TRANSITIONS[req.status]],
            **_labels(),
            **(extra or {}),
        },
        status=status,
    )


@router.get("/partner/support/{request_id}")
def partner_request_page(
    request_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me = _partner(request, user, Action.VIEW_SUPPORT_REQUESTS)
    req = services.get_request(session, actor=identity.actor_for(me), request_id=_rid(request_id))
    return _detail(request, session, me, req, "partner/support/detail.html")


@router.post("/partner/support/{request_id}")
def partner_request_update(
    request_id: str,
    request: Request,
    background: BackgroundTasks,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    note: Annotated[str, Form()] = "",
    close: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - FastAPI reads the default
) -> Response:
    """Answer support, add files, or close the request."""
    me = _partner(request, user, Action.VIEW_SUPPORT_REQUESTS)
    check_csrf(request, csrf_token)
    actor = identity.actor_for(me)
    rid = _rid(request_id)
    incoming = _incoming(files)
    try:
        if incoming:
            if not actor.can(Action.FILE_SUPPORT_REQUEST):
                raise Forbidden()
            services.add_attachments(
                session,
                actor=actor,
                request_id=rid,
                files=incoming,
                storage=get_storage(settings),
                now=now,
                info=info,
            )
        if note.strip() or close == "1" or not incoming:
            services.update_request(
                session,
                actor=actor,
                request_id=rid,
                changes=services.Changes(
                    note=note if note.strip() or close != "1" else None,
                    status=RequestStatus.CLOSED.value if close == "1" else None,
                ),
                now=now,
                info=info,
                base_url=settings.base_url,
            )
    except DomainError as exc:
        session.rollback()
        req = services.get_request(session, actor=actor, request_id=rid)
        problems = field_problems(exc)
        if "files" in problems or "note" in problems:
            pass
        elif "_" not in problems:
            problems = {"_": exc.description}
        return _detail(
            request,
            session,
            me,
            req,
            "partner/support/detail.html",
            problems=problems,
            status=exc.status,
            extra={"note": note},
        )
    session.commit()
    send_mail_after_commit(request, session, background)
    return RedirectResponse(f"/partner/support/{rid}?done=updated", status_code=303)


# --- provider --------------------------------------------------------------------------------


@router.get("/provider/support")
def provider_queue(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    status: str = "open,in_progress,attention_needed",
    topic: str = "",
    partner: str = "",
    min_age: str = "",
    max_age: str = "",
    assigned: str = "",
) -> Response:
    me = _provider(request, user)
    actor = identity.actor_for(me)
    problems: dict[str, str] = {}

    def days(value: str, name: str) -> int | None:
        if not value.strip():
            return None
        try:
            return int(value)
        except ValueError:
            problems[name] = N_("A whole number of days.")
            return None

    partner_id = None
    if partner:
        try:
            partner_id = uuid.UUID(partner)
        except ValueError:
            problems["partner"] = N_("Choose a partner from the list.")
    filters = services.QueueFilter(
        status=status or None,
        topic_id=topic or None,
        partner_id=partner_id,
        min_age_days=days(min_age, "min_age"),
        max_age_days=days(max_age, "max_age"),
        assigned=assigned or None,
    )
    items: list[dict[str, Any]] = []
    total = 0
    if not problems:
        try:
            rows, total = services.list_requests(
                session, actor=actor, filters=filters, now=now, limit=200
            )
            names = names_for(session, list(rows))
            items = [request_json(r, names, full=False) for r in rows]
        except InvalidSupportRequest as exc:
            problems = dict(exc.problems)
    return render(
        request,
        "provider/support/queue.html",
        {
            "portal": "provider",
            "me": me,
            "items": items,
            "total": total,
            "problems": problems,
            "partners": identity.list_partners(session),
            "f": {
                "status": status,
                "topic": topic,
                "partner": partner,
                "min_age": min_age,
                "max_age": max_age,
                "assigned": assigned,
            },
            "status_choices": [
                ("open,in_progress,attention_needed", N_("Active")),
                ("", N_("All")),
                *((s.value, services.STATUS_LABELS[s]) for s in RequestStatus),
            ],
            **_labels(),
        },
        status=400 if problems else 200,
    )


def _support_staff(session: SessionDep, me: User) -> list[User]:
    users = identity.list_users(session, tenant_id=me.tenant_id)
    return [u for u in users if identity.actor_for(u).can(Action.WORK_SUPPORT_QUEUE)]


@router.get("/provider/support/{request_id}")
def provider_request_page(
    request_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me = _provider(request, user)
    req = services.get_request(session, actor=identity.actor_for(me), request_id=_rid(request_id))
    return _detail(
        request,
        session,
        me,
        req,
        "provider/support/detail.html",
        extra={"staff": _support_staff(session, me)},
    )


@router.post("/provider/support/{request_id}")
def provider_request_update(
    request_id: str,
    request: Request,
    background: BackgroundTasks,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    action: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    amount_approved: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """One form per task: reply or change status, assign, approve or reject the refund."""
    me = _provider(request, user)
    check_csrf(request, csrf_token)
    actor = identity.actor_for(me)
    rid = _rid(request_id)
    changes: services.Changes
    if action == "assign":
        assignee_id = None
        if assignee == "me":
            assignee_id = me.id
        elif assignee:
            try:
                assignee_id = uuid.UUID(assignee)
            except ValueError:
                assignee_id = uuid.UUID(int=0)
        changes = services.Changes(assign=True, assignee_id=assignee_id)
    elif action == "approve":
        changes = services.Changes(
            refund=services.RefundDecision(True, amount_approved or None, reason)
        )
    elif action == "reject":
        changes = services.Changes(refund=services.RefundDecision(False, None, reason))
    else:
        changes = services.Changes(note=note if note.strip() else None, status=status or None)
    try:
        services.update_request(
            session,
            actor=actor,
            request_id=rid,
            changes=changes,
            now=now,
            info=info,
            base_url=settings.base_url,
        )
    except DomainError as exc:
        session.rollback()
        req = services.get_request(session, actor=actor, request_id=rid)
        problems = field_problems(exc)
        if action == "reject" and "reason" in problems:
            problems["reject_reason"] = problems.pop("reason")
        if not any(k in problems for k in ("note", "amount_approved", "reject_reason", "assignee")):
            problems = {"_": exc.description}
        return _detail(
            request,
            session,
            me,
            req,
            "provider/support/detail.html",
            problems=problems,
            status=exc.status,
            extra={
                "staff": _support_staff(session, me),
                "note": note,
                "amount_approved": amount_approved,
                "reason": reason,
            },
        )
    session.commit()
    send_mail_after_commit(request, session, background)
    return RedirectResponse(f"/provider/support/{rid}?done=updated", status_code=303)
