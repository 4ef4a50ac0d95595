"""JSON routes: support topics, filing and reading support requests, working them, files."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from partnercenter import i18n
from partnercenter.clock import Clock
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.customers.api import customer_for
from partnercenter.deps import (
    ActorDep,
    NowDep,
    RequestInfoDep,
    SessionDep,
    SettingsDep,
    parse_uuid,
    require,
)
from partnercenter.downloads import file_response
from partnercenter.envelopes import collection
from partnercenter.errors import Forbidden, InvalidInput
from partnercenter.identity.models import Tenant
from partnercenter.money import from_minor
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.storage import get_storage
from partnercenter.support import mail, services
from partnercenter.support.errors import SupportRequestNotFound
from partnercenter.support.files import IncomingFile, read_limited
from partnercenter.support.models import SupportRequest
from partnercenter.support.schemas import ServiceRequestIn, ServiceRequestPatch

router = APIRouter(route_class=Route, prefix="/v1", tags=["support"])

Filer = Annotated[Actor, Depends(require(Action.FILE_SUPPORT_REQUEST))]
MAX_PAGE = 500


def reader(actor: ActorDep) -> Actor:
    """Partners who see their requests, or provider support who works the queue."""
    if not (actor.can(Action.VIEW_SUPPORT_REQUESTS) or actor.can(Action.WORK_SUPPORT_QUEUE)):
        raise Forbidden(
            data=[
                {"action": Action.VIEW_SUPPORT_REQUESTS.value},
                {"action": Action.WORK_SUPPORT_QUEUE.value},
            ]
        )
    return actor


Reader = Annotated[Actor, Depends(reader)]


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def request_json(
    req: SupportRequest, names: dict[uuid.UUID, Tenant], *, full: bool = True
) -> dict[str, Any]:
    """Partner Center's ServiceRequest, with the refund and our conversation fields."""
    topic = services.TOPICS_BY_ID.get(req.topic_id)
    partner = names.get(req.partner_id)
    customer = names.get(req.customer_id) if req.customer_id else None
    body: dict[str, Any] = {
        "id": str(req.id),
        "title": req.title,
        "description": req.description,
        "severity": req.severity.value,
        "supportTopicId": str(topic.number) if topic else req.topic_id,
        "supportTopicName": topic.name if topic else req.topic_id,
        "supportTopicCode": req.topic_id,
        "status": req.status.value,
        "organization": {
            "id": str(req.partner_id),
            "name": partner.name if partner else None,
        },
        "productName": None,
        "productId": None,
        "countryCode": partner.country if partner else None,
        "partnerId": str(req.partner_id),
        "partnerName": partner.name if partner else None,
        "primaryContact": {
            "firstName": req.contact_first_name,
            "lastName": req.contact_last_name,
            "email": req.contact_email,
            "phoneNumber": req.contact_phone,
        },
        "createdBy": req.created_by_email,
        "assignedTo": req.assigned_to_email,
        "createdDate": _iso(req.created_at),
        "lastModifiedDate": _iso(req.updated_at),
        "lastClosedDate": _iso(req.resolved_at),
        "customerId": str(req.customer_id) if req.customer_id else None,
        "refund": None,
        "attributes": {"objectType": "ServiceRequest"},
    }
    if req.refund_status is not None and req.currency:
        cur = req.currency

        def amount(minor: int | None) -> str | None:
            return str(from_minor(minor, cur)) if minor is not None else None

        body["refund"] = {
            "customerTenantId": str(req.customer_id),
            "domain": customer.domain if customer else None,
            "customerName": customer.name if customer else None,
            "orderId": str(req.order_id),
            "subscriptionId": str(req.entitlement_id) if req.entitlement_id else None,
            "reason": req.refund_reason,
            "currency": cur,
            "amountRequested": amount(req.amount_requested_minor),
            "amountApproved": amount(req.amount_approved_minor),
            "status": req.refund_status.value,
            "decisionReason": req.refund_decision_reason,
            "decisionDate": _iso(req.refund_decided_at),
            "cancelPurchase": req.cancel_purchase,
            "creditChargeIds": list(req.credit_charge_ids or []),
        }
    if full:
        body["notes"] = [
            {
                "text": n.body,
                "createdByName": n.author_name,
                "createdBy": n.author_email,
                "side": n.author_side.value,
                "statusChange": n.status_change,
                "createdDate": _iso(n.created_at),
            }
            for n in req.notes
        ]
        body["fileLinks"] = [_file_json(req, a) for a in req.attachments]
    return body


def _file_json(req: SupportRequest, a: Any) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "fileName": a.file_name,
        "contentType": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "uri": f"/v1/servicerequests/{req.id}/attachments/{a.id}",
        "uploadedBy": a.uploaded_by_email,
        "uploadedDate": _iso(a.uploaded_at),
    }


def names_for(session: Session, reqs: list[SupportRequest]) -> dict[uuid.UUID, Tenant]:
    ids: list[uuid.UUID | None] = [r.partner_id for r in reqs]
    ids += [r.customer_id for r in reqs]
    return services.tenant_names(session, ids)


def send_mail_after_commit(request: Request, session: Session, background: BackgroundTasks) -> None:
    """Hand the committed mail to the job runner, or deliver it once the response is sent.

    The request's session is closed first: it holds no transaction while the mail goes out.
    """
    session.close()
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None and jobs.mail_written():
        return  # a background job sends it within seconds (partnercenter.jobs)
    settings: Settings = request.app.state.settings
    clock: Clock = request.app.state.clock
    background.add_task(_deliver, request.app.state.session_factory, settings, clock)


def _deliver(factory: Any, settings: Settings, clock: Clock) -> None:
    mail.deliver_pending(factory, settings, now=clock.now())


def new_request_from(
    body: ServiceRequestIn, actor: Actor, language: str = i18n.DEFAULT
) -> services.NewRequest:
    """The service's request from the API body; ``language`` (``en``/``es``) is the filer's,
    in which mail to the contact is written."""
    refund = None
    if body.refund is not None:
        r = body.refund
        refund = services.RefundDetails(
            customer=(r.customerTenantId or r.domain or ""),
            order_id=r.orderId or "",
            subscription_id=r.subscriptionId or "",
            reason=r.reason,
            amount=str(r.amountRequested),
        )
    c = body.primaryContact
    if c is None:
        first, _, last = actor.display_name.strip().partition(" ")
        contact = services.Contact(first, last, actor.email, "")
    else:
        contact = services.Contact(c.firstName, c.lastName, c.email, c.phoneNumber)
    return services.NewRequest(
        topic_id=str(body.supportTopicId),
        severity=body.severity.lower(),
        title=body.title,
        description=body.description,
        contact=contact,
        contact_is_caller=c is None,
        refund=refund,
        cancel_purchase=bool(body.refund and body.refund.cancelPurchase),
        language=language,
    )


@router.get("/servicerequests/supporttopics")
def support_topics(actor: Reader) -> dict[str, Any]:
    """The types of problem a support request can be filed under."""
    return collection([t.to_json() for t in services.TOPICS])


@router.post("/servicerequests", status_code=201)
def file_request(
    body: ServiceRequestIn,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Filer,
) -> dict[str, Any]:
    """Report a problem; the refund topic needs the customer, order, reason and amount.

    Partner Center: "Create a service request" (``POST /v1/servicerequests/{agent-locale}``).
    Mail to the contact is written in the caller's ``Accept-Language`` (English or Spanish).
    """
    language = i18n.choose(None, request.headers.get("accept-language"))
    return _file(body, request, background, session, settings, now, info, actor, language)


@router.post("/servicerequests/{agent_locale}", status_code=201)
def file_request_in_locale(
    agent_locale: str,
    body: ServiceRequestIn,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Filer,
) -> dict[str, Any]:
    """Report a problem, Partner Center's documented way: the path names the agent's locale.

    Partner Center: "Create a service request". The locale (``en-US``) names the language
    of the organisation filing: mail to the contact is written in it (Spanish for ``es-*``,
    English otherwise).
    """
    if not _LOCALE.match(agent_locale):
        raise InvalidInput(
            f"{agent_locale!r} is not a locale such as en-US.", source="agent-locale"
        )
    language = i18n.choose(None, agent_locale)
    return _file(body, request, background, session, settings, now, info, actor, language)


_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,2}$")


def _file(
    body: ServiceRequestIn,
    request: Request,
    background: BackgroundTasks,
    session: Session,
    settings: Settings,
    now: datetime,
    info: RequestInfo,
    actor: Actor,
    language: str,
) -> dict[str, Any]:
    req = services.file_request(
        session,
        actor=actor,
        data=new_request_from(body, actor, language),
        storage=get_storage(settings),
        now=now,
        info=info,
        base_url=settings.base_url,
    )
    out = request_json(req, names_for(session, [req]))
    session.commit()
    send_mail_after_commit(request, session, background)
    return out


@router.get("/servicerequests")
def list_requests(
    session: SessionDep,
    now: NowDep,
    actor: Reader,
    status: Annotated[str | None, Query(description="e.g. open,in_progress")] = None,
    supportTopicId: Annotated[str | None, Query()] = None,
    partnerId: Annotated[str | None, Query(description="Provider: one partner's requests")] = None,
    minAgeDays: Annotated[
        int | None, Query(ge=0, le=36500, description="Filed at least N days ago")
    ] = None,
    maxAgeDays: Annotated[int | None, Query(description="Filed at most N days ago")] = None,
    assignedTo: Annotated[str | None, Query(description="me, none or a user id")] = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The partner's requests, or (provider support) the queue with its filters."""
    partner_id = None
    if partnerId:
        try:
            partner_id = uuid.UUID(partnerId)
        except ValueError:
            raise InvalidInput("partnerId must be a GUID.", source="partnerId") from None
    items, total = services.list_requests(
        session,
        actor=actor,
        filters=services.QueueFilter(
            status=status,
            topic_id=supportTopicId,
            partner_id=partner_id,
            min_age_days=minAgeDays,
            max_age_days=maxAgeDays,
            assigned=assignedTo,
        ),
        now=now,
        offset=offset,
        limit=size,
    )
    names = names_for(session, list(items))
    return collection([request_json(r, names, full=False) for r in items], total=total)


@router.get("/servicerequests/{request_id}")
def get_request(request_id: str, session: SessionDep, actor: Reader) -> dict[str, Any]:
    """One request with its conversation and files."""
    req = services.get_request(
        session, actor=actor, request_id=parse_uuid(request_id, "support request")
    )
    return request_json(req, names_for(session, [req]))


@dataclass(frozen=True)
class UpdateCall:
    """What both update routes hand to :func:`_update`: the request and its dependencies."""

    request: Request
    background: BackgroundTasks
    session: Session
    settings: Settings
    now: datetime
    info: RequestInfo
    actor: Actor


def _update_call(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Reader,
) -> UpdateCall:
    return UpdateCall(request, background, session, settings, now, info, actor)


UpdateCallDep = Annotated[UpdateCall, Depends(_update_call)]


@router.patch("/servicerequests/{request_id}")
def update_request(
    request_id: str, body: ServiceRequestPatch, call: UpdateCallDep
) -> dict[str, Any]:
    """Add a note, change the status; provider support also assigns and decides refunds.

    Partner Center: "Update a service request" (``newNote``, ``status``).
    """
    return _update(parse_uuid(request_id, "support request"), body, call)


def _update(rid: uuid.UUID, body: ServiceRequestPatch, call: UpdateCall) -> dict[str, Any]:
    """Apply a patch to one request, commit, and send its mail after the commit."""
    session, actor = call.session, call.actor
    assign = "assignedTo" in body.model_fields_set
    assignee: uuid.UUID | None = None
    if assign and body.assignedTo:
        if body.assignedTo == "me":
            assignee = actor.user_id
        else:
            try:
                assignee = uuid.UUID(body.assignedTo)
            except ValueError:
                raise InvalidInput(
                    "assignedTo must be a user id, 'me', or empty.", source="assignedTo"
                ) from None
    decision = None
    if body.refund is not None:
        if body.refund.decision not in {"approve", "reject"}:
            raise InvalidInput(
                "refund.decision must be approve or reject.", source="refund.decision"
            )
        decision = services.RefundDecision(
            approve=body.refund.decision == "approve",
            amount=str(body.refund.amountApproved)
            if body.refund.amountApproved is not None
            else None,
            reason=body.refund.reason,
        )
    req = services.update_request(
        session,
        actor=actor,
        request_id=rid,
        changes=services.Changes(
            status=body.status.lower() if body.status else body.status,
            note=body.newNote.text if body.newNote else None,
            assign=assign,
            assignee_id=assignee,
            refund=decision,
        ),
        now=call.now,
        info=call.info,
        base_url=call.settings.base_url,
    )
    out = request_json(req, names_for(session, [req]))
    session.commit()
    send_mail_after_commit(call.request, session, call.background)
    return out


@router.post("/servicerequests/{request_id}/attachments", status_code=201)
def add_attachments(
    request_id: str,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Reader,
    files: Annotated[
        list[UploadFile] | None, File(description="Up to 5 files, 10 MiB each")
    ] = None,
) -> dict[str, Any]:
    """Attach files (PDF, PNG, JPEG, text, CSV, ZIP; checked by their content)."""
    if not (actor.can(Action.FILE_SUPPORT_REQUEST) or actor.can(Action.WORK_SUPPORT_QUEUE)):
        raise Forbidden()
    # Missing files are the service's to refuse, after it has found the request (404 first).
    incoming: list[IncomingFile] = [read_limited(f.filename or "", f.file) for f in files or []]
    rid = parse_uuid(request_id, "support request")
    added = services.add_attachments(
        session,
        actor=actor,
        request_id=rid,
        files=incoming,
        storage=get_storage(settings),
        now=now,
        info=info,
    )
    session.commit()
    req = services.get_request(session, actor=actor, request_id=rid)
    return collection([_file_json(req, a) for a in added])


@router.get("/servicerequests/{request_id}/attachments/{attachment_id}")
def download_attachment(
    request_id: str,
    attachment_id: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: Reader,
) -> Response:
    """One attached file, as stored."""
    attachment = services.get_attachment(
        session,
        actor=actor,
        request_id=parse_uuid(request_id, "support request"),
        attachment_id=parse_uuid(attachment_id, "file"),
    )
    storage = get_storage(settings)
    return file_response(
        settings,
        storage,
        storage.stat(attachment.storage_key),
        filename=attachment.file_name,
        media_type=attachment.content_type,
        headers={"x-content-type-options": "nosniff"},
    )


def _customer_request(
    session: Session, actor: Actor, customer_id: str, request_id: str
) -> SupportRequest:
    customer = customer_for(session, actor, customer_id)
    req = services.get_request(
        session, actor=actor, request_id=parse_uuid(request_id, "support request")
    )
    if req.customer_id != customer.id:
        raise SupportRequestNotFound()
    return req


@router.get("/customers/{customer_id}/servicerequests")
def list_customer_requests(
    customer_id: str,
    session: SessionDep,
    now: NowDep,
    actor: Reader,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The support requests filed about one customer (refunds name the customer).

    Partner Center: "Get all service requests for a customer".
    """
    customer = customer_for(session, actor, customer_id)
    items, total = services.list_requests(
        session,
        actor=actor,
        filters=services.QueueFilter(customer_id=customer.id),
        now=now,
        offset=offset,
        limit=size,
    )
    names = names_for(session, list(items))
    return collection([request_json(r, names, full=False) for r in items], total=total)


@router.get("/customers/{customer_id}/servicerequests/{request_id}")
def get_customer_request(
    customer_id: str, request_id: str, session: SessionDep, actor: Reader
) -> dict[str, Any]:
    """One support request about the customer. Partner Center: "Get a service request by ID"."""
    req = _customer_request(session, actor, customer_id, request_id)
    return request_json(req, names_for(session, [req]))


@router.patch("/customers/{customer_id}/servicerequests/{request_id}")
def update_customer_request(
    customer_id: str,
    request_id: str,
    body: ServiceRequestPatch,
    call: UpdateCallDep,
) -> dict[str, Any]:
    """Add a note or change the status of a request about the customer.

    Partner Center: "Update a service request" (customer form).
    """
    req = _customer_request(call.session, call.actor, customer_id, request_id)
    return _update(req.id, body, call)
