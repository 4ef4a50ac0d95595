"""JSON routes of the activity log: Partner Center's auditrecords, and a CSV export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import literal_column, select
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session

from partnercenter.audit import services
from partnercenter.audit.models import AuditRecord
from partnercenter.audit.schemas import AuditRecordPage
from partnercenter.audit.services import (
    ActivityQuery,
    Cursor,
    Filter,
    LogEntry,
    ScopeKind,
    Visibility,
)
from partnercenter.config import Settings
from partnercenter.deps import ActorDep, NowDep, SessionDep, SettingsDep
from partnercenter.envelopes import FastJSONResponse, collection, continuation_or_none
from partnercenter.routing import Route

router = APIRouter(route_class=Route, prefix="/v1", tags=["activity log"])

_BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A malformed or reversed date, a bad filter, size or continuation "
        "token (code 10010; errorName and description say which)."
    },
    403: {"description": "The caller's roles do not include reading the activity log."},
}

StartDate = Annotated[
    str | None,
    Query(
        alias="startDate",
        description="First day (YYYY-MM-DD) or instant (ISO 8601) to include; "
        "default 30 days before endDate. Any range works.",
    ),
]
EndDate = Annotated[
    str | None,
    Query(
        alias="endDate",
        description="Last day (whole day included) or instant to include; default now.",
    ),
]
FilterParam = Annotated[
    str | None,
    Query(
        description='Partner Center filter JSON, e.g. {"Field": "CustomerId", "Value": '
        '"<guid>", "Operator": "equals"}; fields CustomerId, UserId, UserPrincipalName, '
        "ResourceType, OperationType (equals) and CompanyName (substring, starts_with, "
        "equals). A JSON list of such objects must all hold.",
    ),
]


def record_json(entry: LogEntry, partner_id: uuid.UUID | None) -> dict[str, Any]:
    """A record in Partner Center's AuditRecord shape, every value JSON text or null (the
    CSV's cells; :func:`page_items` builds the API's pages, the same JSON)."""
    details = entry.details or {}
    return {
        "id": str(entry.id),
        "partnerId": str(partner_id) if partner_id else None,
        "tenantId": str(entry.tenant_id) if entry.tenant_id else None,
        "customerId": str(entry.customer_id) if entry.customer_id else None,
        "customerName": entry.customer_name,
        "userId": str(entry.user_id) if entry.user_id else None,
        "userPrincipalName": entry.user_principal_name,
        "resourceType": entry.resource_type,
        "resourceNewValue": _text(details["resourceNewValue"])
        if "resourceNewValue" in details
        else None,
        "operationType": entry.operation_type,
        "operationDate": entry.occurred_at.isoformat().replace("+00:00", "Z"),
        "operationStatus": entry.status,
        "applicationId": _text(details["applicationId"]) if "applicationId" in details else None,
        "customizedData": [{"key": k, "value": _text(v)} for k, v in details.items()],
        "sessionId": entry.correlation_id,
        "correlationId": entry.correlation_id,
        "clientAddress": entry.client_address,
        "userAgent": entry.user_agent,
        "attributes": {"objectType": "AuditRecord"},
    }


_RECORD_ATTRIBUTES = {"objectType": "AuditRecord"}


def page_items(
    entries: list[LogEntry], partners: dict[uuid.UUID, uuid.UUID]
) -> list[dict[str, Any]]:
    """The records of a page in Partner Center's AuditRecord shape, for pydantic-core.

    The same JSON as :func:`record_json` once written by ``pydantic_core.to_json``
    (``FastJSONResponse``), in half the time (rows to bytes): ids stay ``UUID`` and the instant a
    UTC ``datetime``, which pydantic-core writes as ``str(uuid)`` and as ``isoformat()`` with
    ``Z`` itself, and text values of customizedData are passed as they are. ``partners`` maps
    a record's tenant to its partner (:func:`partner_resolver`).
    """
    items: list[dict[str, Any]] = []
    append = items.append
    get_partner = partners.get
    for e in entries:
        details = e.details or {}
        tenant_id = e.tenant_id
        append(
            {
                "id": e.id,
                "partnerId": get_partner(tenant_id) if tenant_id else None,
                "tenantId": tenant_id,
                "customerId": e.customer_id,
                "customerName": e.customer_name,
                "userId": e.user_id,
                "userPrincipalName": e.user_principal_name,
                "resourceType": e.resource_type,
                "resourceNewValue": _text(details["resourceNewValue"])
                if "resourceNewValue" in details
                else None,
                "operationType": e.operation_type,
                "operationDate": e.occurred_at,
                "operationStatus": e.status,
                "applicationId": _text(details["applicationId"])
                if "applicationId" in details
                else None,
                "customizedData": [
                    {"key": k, "value": v if v.__class__ is str else _text(v)}
                    for k, v in details.items()
                ],
                "sessionId": e.correlation_id,
                "correlationId": e.correlation_id,
                "clientAddress": e.client_address,
                "userAgent": e.user_agent,
                "attributes": _RECORD_ATTRIBUTES,
            }
        )
    return items


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def partner_resolver(
    session: Session, visibility: Visibility, entries: list[LogEntry]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each record tenant's partner; known without a query except for provider readers."""
    if visibility.kind == ScopeKind.PARTNER:
        return {visibility.tenant_id: visibility.tenant_id}
    if visibility.kind == ScopeKind.CUSTOMER:
        if visibility.partner_id is None:
            return {}
        return {
            visibility.tenant_id: visibility.partner_id,
            visibility.partner_id: visibility.partner_id,
        }
    return services.partner_ids(session, entries)


def resolve_query(
    *,
    settings: Settings,
    now: datetime,
    visibility: Visibility,
    start_date: str | None,
    end_date: str | None,
    filter_text: str | None,
    token: str | None,
) -> tuple[ActivityQuery, Cursor | None]:
    """The query and cursor of a request: from its parameters, or from its token."""
    start = (
        services.parse_date(start_date, source="startDate", end=False)
        if start_date is not None
        else None
    )
    end = (
        services.parse_date(end_date, source="endDate", end=True) if end_date is not None else None
    )
    filters: tuple[Filter, ...] | None = (
        services.parse_filter(filter_text) if filter_text is not None else None
    )
    if token:
        token_query, cursor = services.decode_token(
            settings.signing_secret, token, visibility=visibility
        )
        query = services.continue_query(token_query, start=start, end=end, filters=filters)
        return query, cursor
    start, end = services.date_range(now=now, start=start, end=end)
    return ActivityQuery(start, end, filters or ()), None


@router.get(
    "/auditrecords",
    response_model=None,
    responses={200: {"model": AuditRecordPage}, **_BAD_REQUEST},
)
def list_audit_records(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    actor: ActorDep,
    start_date: StartDate = None,
    end_date: EndDate = None,
    filter: FilterParam = None,
    size: Annotated[
        str | None, Query(description="Records per page, 1 to 500; default 100.")
    ] = None,
    continuation: Annotated[
        str | None,
        Header(
            alias="MS-ContinuationToken",
            description="The token of links.next of the previous page.",
        ),
    ] = None,
    seek_operation: Annotated[
        str | None,
        Query(alias="seekOperation", description="Next, with MS-ContinuationToken"),
    ] = None,
) -> JSONResponse:
    """The activity log, newest first; the next page comes with ``MS-ContinuationToken``.

    Partner Center: "Get a partner's activity log" (``startDate=6/1/2017 12:00:00 AM``
    works; ``continuationToken`` at the top level and ``links.next`` for the next page).
    """
    continuation = continuation_or_none(seek_operation, continuation)
    visibility = services.visibility_for(session, actor=actor)
    page_size = services.parse_size(size)
    query, cursor = resolve_query(
        settings=settings,
        now=now,
        visibility=visibility,
        start_date=start_date,
        end_date=end_date,
        filter_text=filter,
        token=continuation,
    )
    page = services.read_page(
        session, visibility=visibility, query=query, size=page_size, cursor=cursor
    )
    partners = partner_resolver(session, visibility, page.entries)
    items = page_items(page.entries, partners)
    token = (
        services.encode_token(
            settings.signing_secret, visibility=visibility, query=query, cursor=page.next_cursor
        )
        if page.next_cursor
        else None
    )
    next_uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # The body is plain JSON types, UUIDs and UTC datetimes: skip the generic encoder, and
    # write it with pydantic-core (a third of json.dumps's time; it writes the ids and the
    # instants itself, faster than str() and isoformat() per record).
    return FastJSONResponse(collection(items, continuation=token, next_uri=next_uri))


CSV_COLUMNS = (
    "operationDate",
    "userPrincipalName",
    "userId",
    "customerId",
    "customerName",
    "resourceType",
    "operationType",
    "operationStatus",
    "customizedData",
    "clientAddress",
    "userAgent",
    "correlationId",
    "tenantId",
    "id",
)


FORMULA_STARTS = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"


def _cell(value: str | None) -> str:
    """A CSV cell a spreadsheet will not run as a formula (user-typed text lands here)."""
    if not value:
        return ""
    return "'" + value if value[0] in FORMULA_STARTS else value


def _csv_value(value: Any) -> str:
    """A customizedData value in the CSV: text as is, anything else as its recorded JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return json.dumps(value)


def csv_row(entry: LogEntry) -> list[str]:
    """One record's CSV cells, in ``CSV_COLUMNS`` order, every one formula-safe."""
    data = record_json(entry, None)
    details = "; ".join(f"{k}={_csv_value(v)}" for k, v in (entry.details or {}).items())
    return [_cell(data[c]) if c != "customizedData" else _cell(details) for c in CSV_COLUMNS]


def _csv_prelude() -> str:
    buf = io.StringIO()
    # A byte-order mark: spreadsheets then read the file as UTF-8 (accented names intact).
    buf.write("\ufeff")
    csv.writer(buf, lineterminator="\r\n").writerow(CSV_COLUMNS)
    return buf.getvalue()


def csv_stream(
    session: Session, *, visibility: Visibility, query: ActivityQuery, batch: int
) -> Iterator[str | bytes]:
    """The selection as CSV, produced piece by piece in constant memory.

    PostgreSQL: one ``COPY (SELECT ...) TO STDOUT`` whose SELECT already formats every cell
    as :func:`csv_row` does (formula-safe), passed on in 64 KiB pieces. SQLite: keyset
    batches of ``batch`` records, the read transaction ended between batches.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _copy_stream(session, visibility=visibility, query=query)
    return _batched_stream(session, visibility=visibility, query=query, batch=batch)


def _batched_stream(
    session: Session, *, visibility: Visibility, query: ActivityQuery, batch: int
) -> Iterator[str]:
    buf = io.StringIO()
    buf.write(_csv_prelude())
    writer = csv.writer(buf, lineterminator="\r\n")
    count = 0
    try:
        for entry in services.iterate(
            session,
            visibility=visibility,
            query=query,
            batch=batch,
            between_batches=session.rollback,
        ):
            writer.writerow(csv_row(entry))
            count += 1
            if count % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
    finally:
        session.close()


def _sql_literal(char: str) -> str:
    return {"\t": "E'\\t'", "\r": "E'\\r'"}.get(char, f"'{char}'")


_FORMULA_SQL = ", ".join(_sql_literal(c) for c in FORMULA_STARTS)


def _sql_cell(expr: str) -> str:
    """SQL of a formula-safe cell of the text ``expr`` (NULL and '' give an empty cell)."""
    quote = "''''"
    return (
        f"CASE WHEN left({expr}, 1) IN ({_FORMULA_SQL}) THEN {quote} || {expr} "
        f"ELSE nullif({expr}, '') END"
    )


# The CSV columns as PostgreSQL computes them, matching csv_row cell for cell: the instant
# as Python's isoformat with Z (no fraction when it is whole seconds), each customizedData
# value as text, its recorded JSON, or None. The inner query (fenced by OFFSET 0, so it is
# not merged into the outer one) computes the customizedData text once per record.
_DETAILS_SQL = (
    "(SELECT string_agg(key || '=' || coalesce(value, 'None'), '; ') "
    "FROM json_each_text(audit_records.details))"
)
_COPY_COLUMNS = (
    "replace(to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "'.000000', '') || 'Z'",
    _sql_cell("r.user_principal_name"),
    "r.user_id::text",
    "r.customer_id::text",
    _sql_cell("r.customer_name"),
    # Written by the application from its own names, never typed by a person.
    "r.resource_type",
    "r.operation_type",
    "r.status",
    _sql_cell("r.custom_data"),
    _sql_cell("r.client_address"),
    _sql_cell("r.user_agent"),
    _sql_cell("r.correlation_id"),
    "r.tenant_id::text",
    "r.id::text",
)
COPY_PIECE = 64 * 1024


def copy_statement(visibility: Visibility, query: ActivityQuery) -> tuple[str, dict[str, Any]]:
    """The export's ``COPY ... TO STDOUT`` (psycopg placeholders) and its parameters."""
    r = AuditRecord
    where, values = services.conditions(visibility, query)
    inner = (
        select(
            r.occurred_at,
            r.id,
            r.tenant_id,
            r.user_id,
            r.user_principal_name,
            r.customer_id,
            r.customer_name,
            r.resource_type,
            r.operation_type,
            r.status,
            r.client_address,
            r.user_agent,
            r.correlation_id,
            literal_column(_DETAILS_SQL).label("custom_data"),
        )
        .where(*where)
        .order_by(AuditRecord.occurred_at.desc(), AuditRecord.id.desc())
        .offset(0)
        .subquery("r")
    )
    columns: list[Any] = [literal_column(c) for c in _COPY_COLUMNS]
    stmt = (
        select(*columns).select_from(inner).order_by(inner.c.occurred_at.desc(), inner.c.id.desc())
    )
    compiled = stmt.compile(dialect=psycopg_dialect())  # type: ignore[no-untyped-call]
    # The values go in here, and IN lists are written out (COPY takes no array parameters).
    expanded = compiled.construct_expanded_state(values)
    return f"COPY ({expanded.statement}) TO STDOUT WITH (FORMAT csv)", dict(expanded.parameters)


def _copy_stream(
    session: Session, *, visibility: Visibility, query: ActivityQuery
) -> Iterator[bytes]:
    try:
        sql, params = copy_statement(visibility, query)
        raw = session.connection().connection.driver_connection
        assert raw is not None
        yield _csv_prelude().encode()
        piece = bytearray()
        with raw.cursor() as cur, cur.copy(sql, params) as copy:
            for data in copy:
                piece += data
                if len(piece) >= COPY_PIECE:
                    yield bytes(piece)
                    piece.clear()
        yield bytes(piece)
    finally:
        session.close()


def export_filename(query: ActivityQuery) -> str:
    last = query.end - timedelta(microseconds=1)
    return f"activity-log-{query.start:%Y%m%d}-{last:%Y%m%d}.csv"


def csv_response(
    session: Session, *, visibility: Visibility, query: ActivityQuery, batch: int
) -> StreamingResponse:
    return StreamingResponse(
        csv_stream(session, visibility=visibility, query=query, batch=batch),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export_filename(query)}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/auditrecords/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **_BAD_REQUEST},
)
def export_audit_records(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    actor: ActorDep,
    start_date: StartDate = None,
    end_date: EndDate = None,
    filter: FilterParam = None,
) -> StreamingResponse:
    """The whole selection as CSV, newest first, streamed in keyset batches."""
    visibility = services.visibility_for(session, actor=actor)
    query, _ = resolve_query(
        settings=settings,
        now=now,
        visibility=visibility,
        start_date=start_date,
        end_date=end_date,
        filter_text=filter,
        token=None,
    )
    return csv_response(session, visibility=visibility, query=query, batch=services.EXPORT_BATCH)
