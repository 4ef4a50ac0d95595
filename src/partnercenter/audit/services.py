"""Write and verify the activity log.

Records are appended in the caller's transaction, so an action and its record commit or roll
back together. Each record's hash covers its content and the previous record's hash in the
same chain (one chain per tenant), so a changed or removed row breaks the chain.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from partnercenter.audit import partitions
from partnercenter.audit.errors import (
    DateRangeReversed,
    InvalidContinuationToken,
    InvalidDate,
    InvalidFilter,
    InvalidPageSize,
)
from partnercenter.audit.models import AuditChainHead, AuditRecord
from partnercenter.clock import utc
from partnercenter.context import Actor, RequestInfo
from partnercenter.errors import Forbidden
from partnercenter.i18n import N_
from partnercenter.identity.models import Tenant
from partnercenter.permissions import Action, TenantKind

if TYPE_CHECKING:
    from partnercenter.storage import Storage

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"


def _payload(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "tenant_id": str(record.tenant_id) if record.tenant_id else None,
        "seq": record.seq,
        "occurred_at": record.occurred_at.isoformat(),
        "user_id": str(record.user_id) if record.user_id else None,
        "user_principal_name": record.user_principal_name,
        "customer_id": str(record.customer_id) if record.customer_id else None,
        "customer_name": record.customer_name,
        "resource_type": record.resource_type,
        "operation_type": record.operation_type,
        "status": record.status,
        "client_address": record.client_address,
        "user_agent": record.user_agent,
        "correlation_id": record.correlation_id,
        "details": record.details,
        "prev_hash": record.prev_hash,
    }


def _dumps(payload: dict[str, Any]) -> str:
    # ASCII only (json's default), so the text and its UTF-8 bytes are the same in SQL.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _canonical(record: AuditRecord) -> bytes:
    return _dumps(_payload(record)).encode()


def compute_hash(record: AuditRecord) -> str:
    return hashlib.sha256(_canonical(record)).hexdigest()


def _canonical_around_chain(record: AuditRecord) -> tuple[str, str, str]:
    """The canonical text cut where the previous hash and the sequence number go.

    Returns ``(before, between, after)`` such that ``before + prev_hash + between + str(seq)
    + after`` is ``_canonical`` of the record with that ``prev_hash`` and ``seq``; the
    database joins them with the chain head's values in the statement that appends.
    """
    mark = uuid.uuid4().hex  # fresh per record: no content can contain it
    prev_mark, seq_mark = f"prev-{mark}", f"seq-{mark}"
    text = _dumps({**_payload(record), "prev_hash": prev_mark, "seq": seq_mark})
    before, rest = text.split(prev_mark)  # the hash keeps the quotes around it
    between, after = rest.split(f'"{seq_mark}"')  # the sequence number is a bare number
    return before, between, after


def _sha256_hex(dialect: str, text: ColumnElement[str]) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.encode(func.sha256(func.convert_to(text, "UTF8")), "hex")
    # SQLite: db.py registers pc_sha256_hex on every connection (hashlib's SHA-256).
    return func.pc_sha256_hex(text)


_RECORD_COLUMNS = (
    "id",
    "tenant_id",
    "chain_key",
    "occurred_at",
    "user_id",
    "user_principal_name",
    "customer_id",
    "customer_name",
    "resource_type",
    "operation_type",
    "status",
    "client_address",
    "user_agent",
    "correlation_id",
    "details",
)


_APPEND_STATEMENTS: dict[str, Any] = {}


def _append_statement(dialect: str) -> Any:
    """``INSERT INTO audit_records ... SELECT`` from the chain head, built once per dialect.

    Parameters: ``v_<column>`` for each of ``_RECORD_COLUMNS``, ``chain`` and the canonical
    text's ``before``, ``between`` and ``after`` (``_canonical_around_chain``).
    """
    stmt = _APPEND_STATEMENTS.get(dialect)
    if stmt is not None:
        return stmt
    records = cast(Table, AuditRecord.__table__)
    head = cast(Table, AuditChainHead.__table__)
    seq = head.c.seq + 1
    text_ = (
        bindparam("before", type_=String)
        .concat(head.c.last_hash)
        .concat(bindparam("between", type_=String))
        .concat(cast_(seq, String))
        .concat(bindparam("after", type_=String))
    )
    values: list[ColumnElement[Any]] = [
        bindparam(f"v_{name}", type_=records.c[name].type) for name in _RECORD_COLUMNS
    ]
    if dialect == "postgresql":
        # A parameter in a SELECT list has no type of its own there: name each column's.
        values = [
            cast_(v, records.c[name].type) for v, name in zip(values, _RECORD_COLUMNS, strict=True)
        ]
    source = select(*values, seq, head.c.last_hash, _sha256_hex(dialect, text_)).where(
        head.c.chain_key == bindparam("chain", type_=String)
    )
    if dialect == "postgresql":
        source = source.with_for_update(of=head)
    stmt = (
        insert(records)
        .from_select([*_RECORD_COLUMNS, "seq", "prev_hash", "hash"], source)
        .returning(records.c.seq, records.c.prev_hash, records.c.hash)
    )
    if dialect == "postgresql":
        # The head moves in the same statement: ``WITH appended AS (INSERT ... RETURNING)
        # UPDATE audit_chain_heads ... FROM appended``. The insert's SELECT has locked the
        # head and read its newest version; the update, should its snapshot hold an older
        # one, re-reads the row (READ COMMITTED's recheck) and writes the values appended.
        appended = stmt.returning(records.c.chain_key).cte("appended")
        stmt = (
            update(head)
            .where(head.c.chain_key == appended.c.chain_key)
            .values(seq=appended.c.seq, last_hash=appended.c.hash)
            .returning(appended.c.seq, appended.c.prev_hash, appended.c.hash)
        )
    _APPEND_STATEMENTS[dialect] = stmt
    return stmt


_HEADS = cast(Table, AuditChainHead.__table__)
# Moves the chain head to the record just appended where the append could not (SQLite):
# built once, a Core statement, so no unit of work or autoflush runs for it.
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.chain_key == bindparam("chain", type_=String))
    .values(seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)


def _append_moves_head(dialect: str) -> bool:
    """Whether ``_append_statement`` also moves the chain head (PostgreSQL: SQLite has no
    data-modifying ``WITH``, so there the head is moved by a second statement)."""
    return dialect == "postgresql"


def _append(session: Session, entry: AuditRecord) -> tuple[int, str, str] | None:
    """Insert the record after its chain's head; returns (seq, prev_hash, hash).

    One statement: ``INSERT INTO audit_records ... SELECT`` from the head row (locked FOR
    UPDATE on PostgreSQL: appends to one chain take turns, and a waiting append reads the
    head as the writer before it left it), the hash computed by the database from the
    head's hash and number; on PostgreSQL the same statement moves the head
    (``_append_moves_head``). None when the chain has no head yet.
    """
    stmt = _append_statement(session.get_bind().dialect.name)
    before, between, after = _canonical_around_chain(entry)
    params = {f"v_{name}": getattr(entry, name) for name in _RECORD_COLUMNS}
    params.update(chain=entry.chain_key, before=before, between=between, after=after)
    row = session.execute(stmt, params).first()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def _create_chain_head(session: Session, chain_key: str) -> None:
    """The chain's head before its first record (seq 0, the genesis hash), if none exists."""
    dialect = session.get_bind().dialect.name
    table = cast(Table, AuditChainHead.__table__)
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - only the two supported databases
        raise NotImplementedError(dialect)
    session.execute(
        stmt.values(chain_key=chain_key, seq=0, last_hash=GENESIS).on_conflict_do_nothing()
    )


def record(
    session: Session,
    *,
    at: datetime,
    resource_type: str,
    operation_type: str,
    tenant_id: uuid.UUID | None,
    actor: Actor | None = None,
    request: RequestInfo | None = None,
    user_principal_name: str | None = None,
    customer_id: uuid.UUID | None = None,
    customer_name: str | None = None,
    status: str = "succeeded",
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the tenant's activity log in the caller's transaction.

    Two statements on SQLite, one on PostgreSQL: the record inserted from its chain's head
    (number, previous hash and its own hash worked out in the database, the head row
    locked), then the head moved to it (on PostgreSQL in the same statement). The record
    is written at once, not at the session's next flush; the returned object is not
    attached to the session. Webhook events for it are queued here.
    """
    request = request or RequestInfo()
    chain_key = str(tenant_id) if tenant_id else SYSTEM_CHAIN
    partitions.ensure_for(session, at)
    entry = AuditRecord(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        chain_key=chain_key,
        occurred_at=at,
        user_id=actor.user_id if actor else None,
        user_principal_name=actor.email if actor else user_principal_name,
        customer_id=customer_id,
        customer_name=customer_name,
        resource_type=resource_type,
        operation_type=operation_type,
        status=status,
        client_address=request.client_address,
        user_agent=(request.user_agent or "")[:500] or None,
        correlation_id=request.correlation_id,
        details=details or {},
    )
    appended = _append(session, entry)
    if appended is None:  # the chain's first record: create its head, then append
        _create_chain_head(session, chain_key)
        appended = _append(session, entry)
        assert appended is not None, "the chain head was just created"
    entry.seq, entry.prev_hash, entry.hash = appended
    if not _append_moves_head(session.get_bind().dialect.name):
        session.execute(
            _MOVE_HEAD, {"chain": chain_key, "new_seq": entry.seq, "new_hash": entry.hash}
        )
    # The head row may be in the identity map (a verification in this session): stale now.
    head = session.identity_map.get(session.identity_key(AuditChainHead, chain_key))
    if head is not None:
        session.expunge(head)
    from partnercenter.webhooks import services as webhooks

    webhooks.queue_events(session, [entry])
    return entry


@dataclass(frozen=True)
class BrokenLink:
    """The first record of a chain that does not hold: which chain, where, and why."""

    chain_key: str
    seq: int
    record_id: uuid.UUID | None
    reason: str


def verify(
    session: Session, *, storage: Storage | None = None, batch: int = 5000
) -> Iterator[BrokenLink]:
    """Walk every chain in order, archived months first; yield the first broken link of each.

    ``storage`` is the artifact store holding the archived months (``audit/archive.py``);
    it is needed once the retention has archived any. A missing or altered archive yields a
    link whose chain key is ``archive:YYYY-MM``.
    """
    from partnercenter.audit import archive

    return archive.verify(session, storage=storage, batch=batch)


# --- reading the log -------------------------------------------------------------------
#
# Pages are read newest first by keyset on (occurred_at DESC, id DESC), never by offset, so
# records written while someone pages neither repeat nor hide rows. Every query is bounded
# by a date range and, for partners, by their tenant: the indexes (tenant_id, occurred_at,
# id), (tenant_id, customer_id, occurred_at) and (tenant_id, user_id, occurred_at) answer
# the first page of any range by reading only that page.

DEFAULT_RANGE = timedelta(days=30)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
EXPORT_BATCH = 1000

# What a customer's Global admin sees of its own tenant: key and download records only.
KEY_AND_DOWNLOAD_OPERATIONS: tuple[str, ...] = (
    "get_software_key",
    "get_software_download_link",
    "download_software",
)

# Operation types the pages offer in the "action" filter, in menu order.
KNOWN_OPERATIONS: tuple[str, ...] = (
    "get_software_key",
    "get_software_download_link",
    "download_software",
    "create_order",
    "cancel_order",
    "credit",
    "create_support_request",
    "update_support_request",
    "add_support_request_note",
    "add_support_request_attachment",
    "assign_support_request",
    "approve_refund",
    "reject_refund",
    "sign_in_succeeded",
    "sign_in_failed",
    "sign_in_throttled",
    "sign_in_unlocked",
    "create_user",
    "update_user_roles",
    "create_api_token",
    "revoke_api_token",
    "create_partner",
)


NO_ACTIVITY_ROLE = N_(
    "Reading the activity log needs the Global admin, Account admin, Referral admin or "
    "Marketing content admin role."
)


class ScopeKind(StrEnum):
    PARTNER = "partner"
    CUSTOMER = "customer"
    PROVIDER = "provider"


@dataclass(frozen=True)
class Visibility:
    """Which records a reader may see: its partner's, its customer's key records, or all."""

    kind: ScopeKind
    tenant_id: uuid.UUID
    # For a customer: the partner it belongs to (whose log holds its keys and downloads).
    partner_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.tenant_id}"


def visibility_for(session: Session, *, actor: Actor) -> Visibility:
    """The records ``actor`` may read; Forbidden (403) without an activity-log role."""
    if actor.can(Action.READ_ALL_ACTIVITY):
        return Visibility(ScopeKind.PROVIDER, actor.tenant_id)
    if actor.can(Action.READ_ACTIVITY_LOG):
        return Visibility(ScopeKind.PARTNER, actor.tenant_id)
    if actor.can(Action.READ_OWN_ACTIVITY):
        tenant = session.get(Tenant, actor.tenant_id)
        return Visibility(ScopeKind.CUSTOMER, actor.tenant_id, tenant.parent_id if tenant else None)
    raise Forbidden(NO_ACTIVITY_ROLE)


class FilterField(StrEnum):
    CUSTOMER_ID = "CustomerId"
    COMPANY_NAME = "CompanyName"
    USER_ID = "UserId"
    USER_PRINCIPAL_NAME = "UserPrincipalName"
    RESOURCE_TYPE = "ResourceType"
    OPERATION_TYPE = "OperationType"


OPERATORS: dict[FilterField, tuple[str, ...]] = {
    FilterField.CUSTOMER_ID: ("equals",),
    FilterField.COMPANY_NAME: ("substring", "starts_with", "equals"),
    FilterField.USER_ID: ("equals",),
    FilterField.USER_PRINCIPAL_NAME: ("equals",),
    FilterField.RESOURCE_TYPE: ("equals",),
    FilterField.OPERATION_TYPE: ("equals",),
}
_FIELDS_BY_LOWER = {f.value.lower(): f for f in FilterField}


@dataclass(frozen=True, order=True)
class Filter:
    """One condition of Partner Center's filter JSON, validated and normalised."""

    field: FilterField
    operator: str
    value: str


@dataclass(frozen=True)
class ActivityQuery:
    """A date range [start, end) and filters; the same object drives pages and the CSV."""

    start: datetime
    end: datetime
    filters: tuple[Filter, ...] = ()

    def canonical(self) -> dict[str, Any]:
        return {
            "s": self.start.isoformat(),
            "e": self.end.isoformat(),
            "f": [[f.field.value, f.operator, f.value] for f in self.filters],
        }

    def filter_value(self, field: FilterField) -> str | None:
        for f in self.filters:
            if f.field == field:
                return f.value
        return None


def parse_date(text: str, *, source: str, end: bool) -> datetime:
    """A date or ISO 8601 date-time; a bare date as an end means the whole of that day.

    Partner Center's documented form ``6/1/2017 12:00:00 AM`` (month/day/year, 12-hour
    clock) and ``6/1/2017`` are read too. Returns the inclusive start, or the exclusive end,
    of the range it names (UTC; a date-time without an offset is taken as UTC).
    """
    value = text.strip()
    if not value:
        raise InvalidDate(f"{source} is empty: give a date such as 2026-11-01.", source=source)
    us = _us_date(value, source)
    if us is not None:
        at, has_time = us
        return at + timedelta(days=1) if end and not has_time else at
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return at + timedelta(days=1) if end else at
        moment = utc(datetime.fromisoformat(value.replace("z", "Z")))
    except ValueError:
        raise InvalidDate(
            f"{source} '{value[:40]}' is not a date: use YYYY-MM-DD or an ISO 8601 date-time "
            "such as 2026-11-01T00:00:00Z.",
            source=source,
        ) from None
    return moment + timedelta(microseconds=1) if end else moment


_US_FORMATS = (
    ("%m/%d/%Y %I:%M:%S %p", True),
    ("%m/%d/%Y %I:%M %p", True),
    ("%m/%d/%Y %H:%M:%S", True),
    ("%m/%d/%Y", False),
)


def _us_date(value: str, source: str) -> tuple[datetime, bool] | None:
    """``6/1/2017 12:00:00 AM`` as UTC, and whether it named a time; None if not that form."""
    if "/" not in value:
        return None
    for pattern, has_time in _US_FORMATS:
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC), has_time
        except ValueError:
            continue
    raise InvalidDate(
        N_(
            "%(field)s “%(value)s” is not a date: use M/D/YYYY h:mm:ss AM "
            "(6/1/2017 12:00:00 AM), YYYY-MM-DD or an ISO 8601 date-time.",
            field=source,
            value=value[:40],
        ),
        source=source,
    )


def date_range(
    *, now: datetime, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """Fill in a missing end (now) or start (30 days before the end); refuse reversed ranges."""
    end = end if end is not None else now + timedelta(microseconds=1)
    start = start if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise DateRangeReversed(
            f"startDate ({start.isoformat()}) is after endDate "
            f"({(end - timedelta(microseconds=1)).isoformat()}): the start must come first.",
            source="startDate",
        )
    return start, end


def _filter_from_json(item: Any, index: int) -> Filter:
    where = "filter" if index < 0 else f"filter[{index}]"
    if not isinstance(item, dict):
        raise InvalidFilter(
            f'{where} must be an object like {{"Field": "CustomerId", "Value": "...", '
            '"Operator": "equals"}.',
            source="filter",
        )
    keys = {str(k).lower(): v for k, v in item.items()}
    unknown = sorted(set(keys) - {"field", "value", "operator"})
    if unknown:
        raise InvalidFilter(
            f"{where} has unknown key(s) {', '.join(unknown)}: only Field, Value and Operator.",
            source="filter",
        )
    raw_field = keys.get("field")
    if not isinstance(raw_field, str) or raw_field.lower() not in _FIELDS_BY_LOWER:
        raise InvalidFilter(
            f"{where}: unknown Field {raw_field!r}; supported fields are "
            + ", ".join(f.value for f in FilterField)
            + ".",
            source="filter",
        )
    field = _FIELDS_BY_LOWER[raw_field.lower()]
    allowed_ops = OPERATORS[field]
    raw_op = keys.get("operator", "equals")
    if not isinstance(raw_op, str) or raw_op.lower() not in allowed_ops:
        raise InvalidFilter(
            f"{where}: Operator {raw_op!r} is not supported for {field.value}; use "
            + " or ".join(allowed_ops)
            + ".",
            source="filter",
        )
    return make_filter(field, str(raw_op).lower(), keys.get("value"), where=where)


# What no database stores (db.UnstorableText): NUL and unpaired surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def make_filter(field: FilterField, operator: str, raw: Any, *, where: str = "filter") -> Filter:
    """Validate one filter's value (ids must be GUIDs, text not empty, nothing unstorable)."""
    if not isinstance(raw, str | int) or isinstance(raw, bool) or not str(raw).strip():
        raise InvalidFilter(
            f"{where}: Value for {field.value} must be a non-empty string.", source="filter"
        )
    value = str(raw).strip()
    if len(value) > 320:
        raise InvalidFilter(
            f"{where}: Value for {field.value} is longer than 320 characters.", source="filter"
        )
    if _UNSTORABLE.search(value):
        # JSON escapes (\u0000) get past the edge's check of the query string. No record
        # holds such text; and a CompanyName value is written into the customer lookup's SQL
        # text (_customers_named), where it must not arrive.
        raise InvalidFilter(
            f"{where}: Value for {field.value} may not contain NUL characters or lone surrogates.",
            source="filter",
        )
    if field in (FilterField.CUSTOMER_ID, FilterField.USER_ID):
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise InvalidFilter(
                f"{where}: Value for {field.value} must be a GUID, not {value[:40]!r}.",
                source="filter",
            ) from None
    elif field == FilterField.USER_PRINCIPAL_NAME:
        value = value.lower()
    elif field in (FilterField.RESOURCE_TYPE, FilterField.OPERATION_TYPE):
        # Values are matched without regard to case: "Order" and "order" name one type, and
        # "SoftwareKey" names software_key.
        if "_" not in value and not value.islower():
            value = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value)
        value = value.lower()
    return Filter(field, operator, value)


def parse_filter(text: str | None) -> tuple[Filter, ...]:
    """Partner Center's filter JSON: one object, or a list of them that must all hold."""
    if text is None or not text.strip():
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFilter(
            f"filter is not valid JSON ({exc.msg} at character {exc.pos}); expected "
            '{"Field": "CustomerId", "Value": "...", "Operator": "equals"}.',
            source="filter",
        ) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        return ()
    filters = [
        _filter_from_json(item, i if isinstance(data, list) else -1) for i, item in enumerate(items)
    ]
    return normalise_filters(filters)


def normalise_filters(filters: list[Filter]) -> tuple[Filter, ...]:
    seen: set[FilterField] = set()
    for f in filters:
        if f.field in seen:
            raise InvalidFilter(
                f"filter names {f.field.value} more than once; give each field once.",
                source="filter",
            )
        seen.add(f.field)
    return tuple(sorted(filters))


def parse_size(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE or not text.strip().isdigit():
        raise InvalidPageSize(
            f"size '{text[:20]}' is not valid: give a whole number from 1 to {MAX_PAGE_SIZE}.",
            source="size",
        )
    return size


# --- continuation tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the (occurred_at, id) of its edge row, and which way to read on."""

    occurred_at: datetime
    record_id: uuid.UUID
    backwards: bool = False


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"auditrecords-continuation\x00" + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(
    secret: bytes, *, visibility: Visibility, query: ActivityQuery, cursor: Cursor
) -> str:
    """An opaque, signed token: the cursor plus the query and reader it belongs to."""
    payload = json.dumps(
        {
            "v": 1,
            "r": visibility.key,
            "q": query.canonical(),
            "t": cursor.occurred_at.isoformat(),
            "i": cursor.record_id.hex,
            "b": 1 if cursor.backwards else 0,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def decode_token(
    secret: bytes, token: str, *, visibility: Visibility
) -> tuple[ActivityQuery, Cursor]:
    """The query and cursor of a token this reader was given; 400 for anything else."""
    bad = InvalidContinuationToken(
        "MS-ContinuationToken is not a token this service issued (malformed or altered); "
        "start again without it.",
        source="MS-ContinuationToken",
    )
    body, _, signature = token.strip().partition(".")
    try:
        payload = _unb64(body)
        given = _unb64(signature)
    except (ValueError, binascii.Error):
        raise bad from None
    if not hmac.compare_digest(_sign(secret, payload), given):
        raise bad
    try:
        data = json.loads(payload)
        if data.get("v") != 1:
            raise bad
        if data["r"] != visibility.key:
            raise InvalidContinuationToken(
                "MS-ContinuationToken was issued to another reader; start again without it.",
                source="MS-ContinuationToken",
            )
        q = data["q"]
        query = ActivityQuery(
            start=datetime.fromisoformat(q["s"]),
            end=datetime.fromisoformat(q["e"]),
            filters=tuple(Filter(FilterField(f), op, v) for f, op, v in q["f"]),
        )
        cursor = Cursor(
            datetime.fromisoformat(data["t"]), uuid.UUID(hex=data["i"]), bool(data["b"])
        )
    except (KeyError, TypeError, ValueError):
        raise bad from None
    return query, cursor


def continue_query(
    token_query: ActivityQuery,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    filters: tuple[Filter, ...] | None = None,
) -> ActivityQuery:
    """The token's query; parameters repeated beside the token must be the same ones."""
    mismatched = [
        name
        for name, given, held in (
            ("startDate", start, token_query.start),
            ("endDate", end, token_query.end),
            ("filter", filters, token_query.filters),
        )
        if given is not None and given != held
    ]
    if mismatched:
        raise InvalidContinuationToken(
            N_(
                "MS-ContinuationToken belongs to a query with a different %(fields)s; send the "
                "same parameters as the first page, or start again without the token.",
                fields=" and ".join(mismatched),
            ),
            source="MS-ContinuationToken",
        )
    return token_query


# --- queries ---------------------------------------------------------------------------


class LogEntry(NamedTuple):
    """One record as readers see it.

    A named tuple: a page's database rows become entries at the cost of a tuple (a frozen
    dataclass cost about 4 µs a record to build, a third of the bare query's time per row).
    """

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    occurred_at: datetime
    user_id: uuid.UUID | None
    user_principal_name: str | None
    customer_id: uuid.UUID | None
    customer_name: str | None
    resource_type: str
    operation_type: str
    status: str
    client_address: str | None
    user_agent: str | None
    correlation_id: str | None
    details: dict[str, Any]


_RECORDS = cast(Table, AuditRecord.__table__)
_TENANTS = cast(Table, Tenant.__table__)
# Table columns, not ORM attributes: the page is a Core statement (no ORM compile step).
_COLUMNS = tuple(_RECORDS.c[name] for name in LogEntry._fields)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A query's shape decides its SQL: the reader's kind, whether a customer reader has a partner,
# and each filter's field and operator. Its values (dates, ids, names) are parameters, so a
# statement is built once per shape and then only executed (building and hashing a statement
# cost more than a short page's query).
_Shape = tuple[Any, ...]


def _shape_and_values(
    visibility: Visibility, query: ActivityQuery
) -> tuple[_Shape, dict[str, Any]]:
    """The shape of what ``visibility`` may read of ``query``, and its parameter values."""
    values: dict[str, Any] = {
        "start": query.start,
        "end": query.end,
        "reader": visibility.tenant_id,
    }
    has_partner = visibility.kind == ScopeKind.CUSTOMER and visibility.partner_id is not None
    if has_partner:
        values["reader_partner"] = visibility.partner_id
    fields: list[tuple[FilterField, str]] = []
    for f in query.filters:
        fields.append((f.field, f.operator))
        if f.field in (FilterField.CUSTOMER_ID, FilterField.USER_ID):
            values[f.field.name] = uuid.UUID(f.value)
        elif f.field == FilterField.COMPANY_NAME:
            values["name"] = _name_value(f)
            values["name_like"] = _name_value(f, equals_as_like=True)
            values["named_reader"] = visibility.tenant_id
        else:
            values[f.field.name] = f.value
    return (visibility.kind, has_partner, tuple(fields), False), values


def _name_value(f: Filter, *, equals_as_like: bool = False) -> str:
    """The CompanyName filter's parameter: the lower-cased name, or its LIKE pattern.

    ``equals_as_like`` writes an equality as a LIKE without wildcards (the same rows), which
    a trigram index answers.
    """
    if f.operator == "equals" and not equals_as_like:
        return f.value.lower()
    needle = _like_escape(f.value.lower())
    if f.operator == "starts_with":
        return needle + "%"
    if f.operator == "substring":
        return "%" + needle + "%"
    return needle


def _name_condition(
    column: Any, param: str, *, like: bool, literal: bool = False
) -> ColumnElement[bool]:
    """The CompanyName condition: ``lower(column)`` equal to, or LIKE, the parameter.

    ``literal`` writes the value into the SQL text when the statement runs (SQLAlchemy's
    ``literal_execute``, quoted by the dialect), so PostgreSQL plans it for that pattern.
    """
    name = func.lower(column)
    value = bindparam(param, type_=String, literal_execute=literal)
    if like:
        return name.like(value, escape="\\")
    return name == value


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a shape, with its values as named parameters.

    A CompanyName filter limits the records to the reader's customers of that name: found by
    a subquery, or (``named_id`` in the shape) the one given as the parameter ``named_id``.
    """
    kind, has_partner, fields, named_id = shape
    r = _RECORDS.c
    conds: list[ColumnElement[bool]] = [
        r.occurred_at >= bindparam("start"),
        r.occurred_at < bindparam("end"),
    ]
    if kind == ScopeKind.PARTNER:
        conds.append(r.tenant_id == bindparam("reader"))
    elif kind == ScopeKind.CUSTOMER:
        own = r.tenant_id == bindparam("reader")
        if has_partner:
            own = or_(
                and_(
                    r.tenant_id == bindparam("reader_partner"), r.customer_id == bindparam("reader")
                ),
                own,
            )
        conds.append(own)
        conds.append(r.operation_type.in_(KEY_AND_DOWNLOAD_OPERATIONS))
    for field, operator in fields:
        if field == FilterField.CUSTOMER_ID:
            conds.append(r.customer_id == bindparam(field.name))
        elif field == FilterField.USER_ID:
            conds.append(r.user_id == bindparam(field.name))
        elif field == FilterField.USER_PRINCIPAL_NAME:
            conds.append(r.user_principal_name == bindparam(field.name))
        elif field == FilterField.RESOURCE_TYPE:
            conds.append(r.resource_type == bindparam(field.name))
        elif field == FilterField.OPERATION_TYPE:
            conds.append(r.operation_type == bindparam(field.name))
        elif field == FilterField.COMPANY_NAME:
            conds.append(_name_condition(r.customer_name, "name", like=operator != "equals"))
            if named_id:
                conds.append(r.customer_id == bindparam("named_id"))
            elif kind != ScopeKind.CUSTOMER:
                conds.append(r.customer_id.in_(_customers_named(kind)))
    return conds


def conditions(
    visibility: Visibility, query: ActivityQuery
) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """The WHERE conditions of what ``visibility`` may read of ``query`` (pages and export),
    with named parameters, and the parameters' values."""
    shape, values = _shape_and_values(visibility, query)
    return _conditions(shape), values


def _customers_named(kind: ScopeKind, *, literal: bool = False) -> Select[Any]:
    """The reader's customers whose name matches a CompanyName filter.

    A record's ``customer_name`` is its customer's name (customers are not renamed), so the
    records whose name matches are among these customers' records: with the customer ids in
    hand the database probes the customer index ``(tenant_id, customer_id, occurred_at)``
    instead of scanning the date range. PostgreSQL finds the customers through a trigram
    index on ``lower(name)`` (migration 0021); a name that matches most customers makes the
    planner scan the time index instead, which then fills a page at once.

    ``literal`` writes its values (the pattern, the partner) into the statement's text when
    it runs, so the statement run alone has no parameters: with them as parameters,
    PostgreSQL's plan cache settles on a generic plan that does not use the trigram index
    (3 to 5 ms against 0.6 ms for a partner's 5,000 customers, planning included).
    """
    t = _TENANTS.c
    stmt = select(t.id).where(
        t.kind == bindparam("customer_kind", TenantKind.CUSTOMER, literal_execute=literal),
        _name_condition(t.name, "name_like", like=True, literal=literal),
    )
    if kind == ScopeKind.PARTNER:
        stmt = stmt.where(t.parent_id == bindparam("named_reader", literal_execute=literal))
    return stmt


class _Direction(StrEnum):
    FIRST = "first"  # newest first, from the range's end
    OLDER = "older"  # newest first, older than the cursor
    NEWER = "newer"  # oldest first, newer than the cursor (read backwards)


@functools.lru_cache(maxsize=512)
def _page_statement(shape: _Shape, direction: _Direction) -> Select[Any]:
    """The page query of a shape, built once: parameters ``start``, ``end``, ``reader``, ...
    (``_shape_and_values``), ``cursor_at`` and ``cursor_id`` (after the first page) and
    ``limit``."""
    r = _RECORDS.c
    stmt = select(*_COLUMNS).where(*_conditions(shape))
    if direction == _Direction.NEWER:
        stmt = stmt.where(
            r.occurred_at >= bindparam("cursor_at"),
            or_(r.occurred_at > bindparam("cursor_at"), r.id > bindparam("cursor_id")),
        )
        order = (r.occurred_at.asc(), r.id.asc())
    else:
        if direction == _Direction.OLDER:
            # The first condition bounds the index range; the second breaks timestamp ties.
            stmt = stmt.where(
                r.occurred_at <= bindparam("cursor_at"),
                or_(r.occurred_at < bindparam("cursor_at"), r.id < bindparam("cursor_id")),
            )
        order = (r.occurred_at.desc(), r.id.desc())
    return stmt.order_by(*order).limit(bindparam("limit", type_=Integer))


@functools.lru_cache(maxsize=8)
def _named_customers_statement(kind: ScopeKind) -> Select[Any]:
    """The first two of the reader's customers a CompanyName filter names (one is enough to
    tell a single customer from several)."""
    limit: BindParameter[int] = bindparam("named_limit", 2, literal_execute=True)
    return _customers_named(kind, literal=True).limit(limit)


def _with_named_customers(
    session: Session, shape: _Shape, values: dict[str, Any]
) -> tuple[_Shape, dict[str, Any]] | None:
    """The shape reading a CompanyName filter's records by the one customer it names.

    PostgreSQL plans the one-statement form (records ``IN`` the customers found by the
    trigram index) afresh on every execution: its generic plan looks dearer to the planner,
    and planning a join over every monthly partition costs several times the query itself
    (7 to 13 ms against 0.6 to 1 ms on 1 M records). So the reader's customers the name
    names are looked up first (one small indexed statement); when it is one customer, the
    page reads ``customer_id = that id`` as the CustomerId filter does: newest first from the
    customer index, stopping when the page is full. None when the name names no customer
    (no records can match); the shape unchanged when it names several (the planner's choice
    between customers and time, as before: an ``IN`` list of their ids reads every record of
    theirs and sorts them, slower still).
    """
    kind, _has_partner, fields, _named = shape
    if kind == ScopeKind.CUSTOMER or not any(f == FilterField.COMPANY_NAME for f, _ in fields):
        return shape, values
    params = {"name_like": values["name_like"], "named_reader": values["named_reader"]}
    ids = list(session.connection().execute(_named_customers_statement(kind), params).scalars())
    if not ids:
        return None
    if len(ids) > 1:
        return shape, values
    return (*shape[:3], True), {**values, "named_id": ids[0]}


def _page_query(
    visibility: Visibility,
    query: ActivityQuery,
    *,
    limit: int,
    cursor: Cursor | None,
    session: Session | None = None,
) -> tuple[Select[Any], dict[str, Any]] | None:
    """The page statement and its values; None when no record can match. With ``session``
    a CompanyName filter's customers are resolved first (``_with_named_customers``)."""
    shape, values = _shape_and_values(visibility, query)
    if session is not None:
        named = _with_named_customers(session, shape, values)
        if named is None:
            return None
        shape, values = named
    values["limit"] = limit
    if cursor is None:
        direction = _Direction.FIRST
    else:
        direction = _Direction.NEWER if cursor.backwards else _Direction.OLDER
        values["cursor_at"] = cursor.occurred_at
        values["cursor_id"] = cursor.record_id
    return _page_statement(shape, direction), values


def select_page(
    visibility: Visibility, query: ActivityQuery, *, limit: int, cursor: Cursor | None = None
) -> Select[Any]:
    """The page query with its values bound: newest first, after (or, going back, before)
    the cursor. :func:`read_page` executes the shape's shared statement with the values
    instead (the same SQL, but for a CompanyName filter naming one customer, which it
    reads by its id: ``_with_named_customers``)."""
    page_query = _page_query(visibility, query, limit=limit, cursor=cursor)
    assert page_query is not None, "without a session no filter is resolved to nothing"
    stmt, values = page_query
    return stmt.params(values)


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    next_cursor: Cursor | None
    previous_cursor: Cursor | None


def _entries(
    session: Session,
    visibility: Visibility,
    query: ActivityQuery,
    *,
    limit: int,
    cursor: Cursor | None,
) -> list[LogEntry]:
    page_query = _page_query(visibility, query, limit=limit, cursor=cursor, session=session)
    if page_query is None:
        return []
    stmt, values = page_query
    make = LogEntry._make
    return [make(row) for row in session.connection().execute(stmt, values)]


def read_page(
    session: Session,
    *,
    visibility: Visibility,
    query: ActivityQuery,
    size: int = DEFAULT_PAGE_SIZE,
    cursor: Cursor | None = None,
) -> LogPage:
    """One page, newest first, with cursors for the older and (after the first) newer pages.

    One statement, the shape's shared one (``_page_statement``), executed on the session's
    connection (a CompanyName filter's customers are found first by one more, small one);
    its rows become :class:`LogEntry` tuples.
    """
    entries = _entries(session, visibility, query, limit=size + 1, cursor=cursor)
    more = len(entries) > size
    del entries[size:]
    if cursor is not None and cursor.backwards:
        entries.reverse()
        newer, older = more, True
    else:
        newer, older = cursor is not None, more
    next_cursor = Cursor(entries[-1].occurred_at, entries[-1].id) if older and entries else None
    previous_cursor = (
        Cursor(entries[0].occurred_at, entries[0].id, backwards=True) if newer and entries else None
    )
    return LogPage(entries, next_cursor, previous_cursor)


def iterate(
    session: Session,
    *,
    visibility: Visibility,
    query: ActivityQuery,
    batch: int = EXPORT_BATCH,
    between_batches: Callable[[], None] | None = None,
) -> Iterator[LogEntry]:
    """Every record of the selection, newest first, read in keyset batches.

    ``between_batches`` runs after each batch is read; the export ends its read transaction
    there, so a long export never holds a transaction (SQLite: the write lock) for long.
    """
    cursor: Cursor | None = None
    while True:
        entries = _entries(session, visibility, query, limit=batch, cursor=cursor)
        if between_batches is not None:
            between_batches()
        yield from entries
        if len(entries) < batch:
            return
        last = entries[-1]
        cursor = Cursor(last.occurred_at, last.id)


def partner_ids(session: Session, entries: Iterable[LogEntry]) -> dict[uuid.UUID, uuid.UUID]:
    """The partner behind each record's tenant (a partner itself, or a customer's partner)."""
    tenant_ids = {e.tenant_id for e in entries if e.tenant_id is not None}
    if not tenant_ids:
        return {}
    rows = session.execute(
        select(Tenant.id, Tenant.kind, Tenant.parent_id).where(Tenant.id.in_(tenant_ids))
    ).all()
    out: dict[uuid.UUID, uuid.UUID] = {}
    for tid, kind, parent in rows:
        if kind == TenantKind.PARTNER:
            out[tid] = tid
        elif kind == TenantKind.CUSTOMER and parent is not None:
            out[tid] = parent
    return out


# Webhook events are written from the records above, in the same transaction: every process
# that records activity has the hook (partnercenter.webhooks.services).
import partnercenter.webhooks.services  # noqa: E402, F401
