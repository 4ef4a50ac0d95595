"""The Software page's behaviour: purchases, Get Key, Download, Copy Link, revocation.

Every access (a key shown, a download started directly or through a copied link, a link
made) writes exactly one activity record in the caller's transaction, **before** the key is
decrypted or the first byte is sent; the route commits, then answers. If the record cannot
be written the transaction fails and nothing is shown.

Whether a purchase still grants anything is read at every access from its entitlement and
order line, so a cancellation (whichever code performs it) stops keys, downloads and copied
links at once. :func:`revoke_purchase` is what a cancellation calls to also revoke the keys
in inventory and mark the links.

Services never commit.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, or_, select, update
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.customers import services as customers
from partnercenter.customers.errors import CustomerNotFound
from partnercenter.envelopes import link
from partnercenter.errors import InvalidInput
from partnercenter.identity.models import Tenant
from partnercenter.licensing.errors import (
    LinkInvalid,
    LinkRevoked,
    NoProductKey,
    PurchaseCancelled,
    SoftwareItemNotFound,
)
from partnercenter.licensing.links import (
    LinkExpired,
    issue_token,
    link_key,
    link_lifetime,
    verify_token,
)
from partnercenter.licensing.models import DownloadLink, KeyReveal
from partnercenter.orders.models import (
    Entitlement,
    EntitlementStatus,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
)
from partnercenter.permissions import TenantKind
from partnercenter.storage import Storage, StoredObject, get_storage

LINK_PATH = "/downloads/"
"""Where copied links point: ``{base_url}/downloads/{token}``."""


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SoftwareItem:
    """One software purchase of a customer, as the Software page lists it."""

    entitlement: Entitlement
    line: OrderLine
    order: Order
    versions: list[dict[str, Any]]

    @property
    def id(self) -> uuid.UUID:
        return self.entitlement.id

    @property
    def active(self) -> bool:
        return (
            self.entitlement.status == EntitlementStatus.ACTIVE
            and self.line.status == LineStatus.ACTIVE
            and self.order.status != OrderStatus.CANCELLED
        )

    @property
    def has_key(self) -> bool:
        return self.entitlement.product_key_id is not None

    @property
    def product_name(self) -> str:
        product, sku = self.line.product_title.strip(), self.line.sku_title.strip()
        if sku.startswith(product):  # "Windows Server 2022" + "Windows Server 2022 Standard"
            return sku
        return f"{product} {sku}".strip()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "productId": self.line.product_id,
            "skuId": self.line.sku_id,
            "productName": self.product_name,
            "productType": self.line.product_type,
            "orderId": str(self.order.id),
            "lineItemNumber": self.line.line_number,
            "quantity": self.line.quantity,
            "purchaseDate": _iso(self.line.purchased_at),
            "status": "active" if self.active else "cancelled",
            "hasProductKey": self.has_key,
            "versions": self.versions,
            "attributes": {"objectType": "SoftwarePurchase"},
        }

    @property
    def expiry(self) -> datetime | None:
        """When the term ends (purchase date plus the term duration); None if perpetual."""
        return term_end(self.line.purchased_at, self.line.term_duration)

    def entitlement_json(self, *, show_expiry: bool = False) -> dict[str, Any]:
        """Partner Center's Entitlement resource (never the key itself).

        Documented: ``referenceOrder{id, lineItemId, alternateId}``, ``entitledArtifacts
        [{artifactType, dynamicAttributes}]`` and, with ``showExpiry=true``, ``expiryDate``.
        ``referenceOrder.lineItemNumber`` and an artifact's ``type`` are kept beside them.
        """
        base = f"/v1/customers/{self.order.customer_id}"
        artifacts: list[dict[str, Any]] = []
        if self.has_key:
            artifacts.append(
                {
                    "artifactType": "Key",
                    "type": "Key",
                    "link": link(f"{base}/software/{self.id}/key", "POST"),
                    "dynamicAttributes": {"revealedBy": "POST key"},
                }
            )
        if any(v["languages"] for v in self.versions):
            artifacts.append(
                {
                    "artifactType": "Download",
                    "type": "Download",
                    "link": link(f"{base}/software/{self.id}/downloadlink", "POST"),
                    "dynamicAttributes": {},
                }
            )
        body: dict[str, Any] = {
            "id": str(self.id),
            "entitlementType": "software",
            "fulfillmentState": "fulfilled" if self.active else "cancelled",
            "productId": self.line.product_id,
            "skuId": self.line.sku_id,
            "quantity": self.line.quantity,
            "quantityDetails": [
                {"quantity": self.line.quantity, "status": "Active" if self.active else "Cancelled"}
            ],
            "referenceOrder": {
                "id": str(self.order.id),
                "lineItemId": str(self.line.line_number),
                "alternateId": self.order.id.hex[:12],
                "lineItemNumber": self.line.line_number,
            },
            "includedEntitlements": [],
            "entitledArtifacts": artifacts,
            "attributes": {"objectType": "Entitlement"},
        }
        if show_expiry:
            expiry = self.expiry
            body["expiryDate"] = _iso(expiry) if expiry is not None else None
        return body

    def subscription_json(self) -> dict[str, Any]:
        """Partner Center's Subscription resource for this software purchase.

        Partner Center: "Subscription resources". A cancelled purchase is ``suspended`` (the
        documented status for a subscription that no longer grants use).
        """
        base = f"/v1/customers/{self.order.customer_id}"
        expiry = self.expiry
        return {
            "id": str(self.id),
            "entitlementId": str(self.id),
            "offerId": self.line.catalog_item_id,
            "offerName": self.product_name,
            "friendlyName": self.product_name,
            "productType": {"id": self.line.product_type, "displayName": self.line.product_type},
            "quantity": self.line.quantity,
            "unitType": "Licenses",
            "hasPurchasableAddons": False,
            "creationDate": _iso(self.line.purchased_at),
            "effectiveStartDate": _iso(self.line.purchased_at),
            "commitmentEndDate": _iso(expiry) if expiry is not None else None,
            "status": "active" if self.active else "suspended",
            "autoRenewEnabled": False,
            "isTrial": False,
            "billingType": "license",
            "billingCycle": self.line.billing_cycle,
            "termDuration": self.line.term_duration,
            "contractType": "subscription",
            "orderId": str(self.order.id),
            "links": {
                "offer": link(f"/v1/offers/{self.line.catalog_item_id}"),
                "entitlement": link(f"{base}/entitlements"),
                "self": link(f"{base}/subscriptions/{self.id}"),
            },
            "attributes": {"objectType": "Subscription"},
        }


def term_end(start: datetime, term_duration: str | None) -> datetime | None:
    """The end of an ISO 8601 term (``P1Y``, ``P3Y``, ``P1M``) from ``start``; None if none."""
    match = re.fullmatch(r"P(\d{1,3})([YM])", (term_duration or "").strip().upper())
    if match is None:
        return None
    months = int(match.group(1)) * (12 if match.group(2) == "Y" else 1)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _items(session: Session, *rows: Sequence[Any]) -> list[SoftwareItem]:
    """Items from rows of :func:`_query`: entitlement, line, order, the SKU's versions and
    files (``catalog.software_versions_columns``), and whatever columns follow."""
    items = []
    for entitlement, line, order, sku_versions, files, *_ in rows:
        versions = catalog.offered_versions(sku_versions, files)
        if versions is None:  # the SKU is gone from the catalog: its own 404
            versions = catalog.software_versions(
                session, product_id=line.product_id, sku_id=line.sku_id
            )
        items.append(SoftwareItem(entitlement, line, order, versions))
    return items


def _query() -> Any:
    """The purchases with their lines, orders and SKUs' versions and files: one statement."""
    return (
        select(
            Entitlement,
            OrderLine,
            Order,
            *catalog.software_versions_columns(OrderLine.product_id, OrderLine.sku_id),
        )
        .join(OrderLine, OrderLine.id == Entitlement.order_line_id)
        .join(Order, Order.id == Entitlement.order_id)
    )


def _is_active() -> ColumnElement[bool]:
    """:attr:`SoftwareItem.active` as SQL on the rows of :func:`_query`."""
    return and_(
        Entitlement.status == EntitlementStatus.ACTIVE,
        OrderLine.status == LineStatus.ACTIVE,
        Order.status != OrderStatus.CANCELLED,
    )


def list_software(session: Session, *, customer: Tenant) -> list[SoftwareItem]:
    """Every software purchase of the customer, cancelled ones too: the live ones first
    (those with keys and downloads), then the cancelled ones, each newest first.

    The first item a reader sees is one they can use, however recently something else was
    cancelled; cancelled purchases stay listed, below, marked as such.
    """
    rows = session.execute(
        _query()
        .where(Entitlement.customer_id == customer.id)
        .order_by(
            case((_is_active(), 0), else_=1),
            OrderLine.purchased_at.desc(),
            Order.id,
            OrderLine.line_number,
        )
    ).all()
    return _items(session, *rows)


def get_item(
    session: Session, *, customer: Tenant, item_id: str | uuid.UUID, hold: bool = False
) -> SoftwareItem:
    """One purchase of the customer, by its id or its order line's (the subscription id
    orders show); another customer's is not found.

    ``hold``: read it as ``_require_active`` re-reads it, in the same statement: under a
    shared row lock (PostgreSQL ``FOR SHARE`` of the entitlement) until the transaction ends,
    so a cancellation that committed first is seen and one that comes later waits.
    """
    return _held_purchase(session, customer=customer, item_id=item_id, hold=hold).item


def software_customer(session: Session, *, actor: Actor, customer_id: uuid.UUID) -> Tenant:
    """The customer whose software ``actor`` reaches by this tenant id, else not found.

    A partner user reaches its partner's customers (``customers.get_customer``); a customer
    user only its own tenant. :func:`get_key` applies the same rule in the statement that
    reads the purchase (:func:`_customer_scope`).
    """
    if actor.tenant_kind == TenantKind.CUSTOMER:
        own = session.get(Tenant, actor.tenant_id) if customer_id == actor.tenant_id else None
        if own is None:
            raise CustomerNotFound()
        return own
    return customers.get_customer(session, partner_id=actor.tenant_id, customer_id=customer_id)


def _customer_scope(actor: Actor, customer_id: uuid.UUID) -> ColumnElement[bool]:
    """:func:`software_customer`'s rule as a WHERE clause on ``Tenant``."""
    if actor.tenant_kind == TenantKind.CUSTOMER:
        return and_(Tenant.id == customer_id, Tenant.id == actor.tenant_id)
    return customers.is_partner_customer(actor.tenant_id, customer_id)


@dataclass(frozen=True)
class _Held:
    """A purchase as Get Key reads it: the item, its customer and the entitlement's key."""

    item: SoftwareItem
    customer: Tenant
    key: catalog.HeldKey | None


def _held_purchase(
    session: Session,
    *,
    customer: Tenant | uuid.UUID,
    item_id: str | uuid.UUID,
    hold: bool,
    actor: Actor | None = None,
    with_key: bool = False,
) -> _Held:
    """The purchase of :func:`get_item`, in one statement with what else is asked for.

    ``customer`` given by id (with ``actor``): the customer is read with the purchase,
    scoped as :func:`software_customer` scopes it (a foreign or unknown customer is 404
    ``CustomerNotFound`` before the purchase's own 404, as when it is looked up alone).
    ``with_key``: the entitlement's key, still encrypted, comes with it (outer join).
    """
    by_id = not isinstance(customer, Tenant)
    try:
        eid = item_id if isinstance(item_id, uuid.UUID) else uuid.UUID(item_id)
    except ValueError:
        if isinstance(customer, uuid.UUID):
            assert actor is not None, "a customer given by id needs the actor"
            software_customer(session, actor=actor, customer_id=customer)
        raise SoftwareItemNotFound() from None
    stmt = _query().where(or_(Entitlement.id == eid, Entitlement.order_line_id == eid))
    if isinstance(customer, Tenant):
        stmt = stmt.where(Entitlement.customer_id == customer.id)
    else:
        assert actor is not None, "a customer given by id needs the actor"
        stmt = stmt.add_columns(Tenant).join(Tenant, Tenant.id == Entitlement.customer_id)
        stmt = stmt.where(_customer_scope(actor, customer))
    if with_key:
        stmt = stmt.add_columns(*catalog.held_key_columns()).outerjoin(
            ProductKey, ProductKey.id == Entitlement.product_key_id
        )
    if hold:
        stmt = stmt.with_for_update(read=True, of=Entitlement).execution_options(
            populate_existing=True
        )
    row = session.execute(stmt).first()
    if row is None:
        if isinstance(customer, uuid.UUID):
            assert actor is not None
            software_customer(session, actor=actor, customer_id=customer)
        raise SoftwareItemNotFound()
    extra = list(row[5:])  # after the item's columns: the customer, then the key
    found = extra.pop(0) if by_id else customer
    assert isinstance(found, Tenant)
    key = catalog.HeldKey(*extra) if with_key and extra[0] is not None else None
    return _Held(_items(session, row)[0], found, key)


def _entitlement_item(session: Session, entitlement_id: uuid.UUID) -> SoftwareItem | None:
    row = session.execute(_query().where(Entitlement.id == entitlement_id)).first()
    return _items(session, row)[0] if row is not None else None


def _require_active(item: SoftwareItem, session: Session | None = None) -> None:
    """Refuse a cancelled purchase; with ``session``, hold it against a racing cancellation.

    The entitlement is re-read under a shared row lock (PostgreSQL ``FOR SHARE``; SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers): a cancellation that committed meanwhile
    is seen, and one that has not started yet waits until this transaction ends. The lock is
    taken before the activity log's chain, in the same order as cancellation takes them.
    """
    if session is not None:
        # One statement: the entitlement locked, its line and order re-read with it (the
        # hot paths read the purchase this way at once: ``get_item(..., hold=True)``).
        session.execute(
            select(Entitlement, OrderLine, Order)
            .join(OrderLine, OrderLine.id == Entitlement.order_line_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Entitlement.id == item.entitlement.id)
            .with_for_update(read=True, of=Entitlement)
            .execution_options(populate_existing=True)
        )
    if not item.active:
        raise PurchaseCancelled(data=[{"orderId": str(item.order.id)}])


def _check_choice(item: SoftwareItem, version: str, language: str, bitness: str) -> None:
    offered = {v["version"]: v for v in item.versions}
    if version not in offered:
        raise InvalidInput(
            f"The version '{version}' is not offered for {item.product_name} "
            f"({', '.join(offered) or 'none'}).",
            source="version",
        )
    if language not in offered[version]["languages"]:
        raise InvalidInput(
            f"The language '{language}' is not offered for version {version} "
            f"({', '.join(offered[version]['languages']) or 'none'}).",
            source="language",
        )
    if bitness not in offered[version]["bitness"]:
        raise InvalidInput(
            f"The bitness '{bitness}' is not offered for version {version} "
            f"({', '.join(offered[version]['bitness']) or 'none'}).",
            source="bitness",
        )


def _record(
    session: Session,
    *,
    item: SoftwareItem,
    customer_name: str,
    tenant_id: uuid.UUID,
    resource_type: str,
    operation_type: str,
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None,
    user_principal_name: str | None = None,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        at=now,
        resource_type=resource_type,
        operation_type=operation_type,
        tenant_id=tenant_id,
        actor=actor,
        request=request,
        user_principal_name=user_principal_name,
        customer_id=item.entitlement.customer_id,
        customer_name=customer_name,
        details={
            "entitlementId": str(item.id),
            "orderId": str(item.order.id),
            "lineItemNumber": item.line.line_number,
            "productId": item.line.product_id,
            "skuId": item.line.sku_id,
            "product": item.product_name,
            **details,
        },
    )
    # Written now: a failure here aborts before any key is decrypted or byte is sent.
    session.flush()


def _audit_tenant(actor: Actor, item: SoftwareItem) -> uuid.UUID:
    """Partner users' accesses go to the partner's log; a customer's to the customer's."""
    return actor.tenant_id


# --- Get Key -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RevealedKey:
    """A decrypted product key; ``key_id`` is its inventory row, ``customer`` the purchase's."""

    key: str
    version: str
    item: SoftwareItem
    key_id: uuid.UUID | None = None
    customer: Tenant | None = None

    def __repr__(self) -> str:  # never let the key reach a log or a traceback
        return f"RevealedKey(version={self.version!r}, item={self.item.id})"


def _key_for_version(
    session: Session,
    *,
    settings: Settings,
    item: SoftwareItem,
    version: str,
    now: datetime,
    held: catalog.HeldKey | None = None,
) -> tuple[uuid.UUID, catalog.HeldKey | None]:
    """The line's key for ``version`` (reserving one on first use: then no ``HeldKey``).

    The entitlement's own key is preferred; ``held`` is that key when the purchase was read
    with it, so the common case (the version the purchase was sold with) reads no more. A
    revoked key for the version refuses the reveal (the purchase was cancelled).
    """
    ref = str(item.line.id)
    if held is None or held.version != version or held.order_line_ref != ref:
        keys = catalog.line_keys(session, order_line_ref=ref)
        ordered = sorted(keys, key=lambda k: k.id != item.entitlement.product_key_id)
        held = next((k for k in ordered if k.version == version), None)
    if held is not None:
        if held.status != KeyStatus.RESERVED:
            raise PurchaseCancelled()
        return held.id, held
    key_id = catalog.reserve_key(
        session,
        settings=settings,
        product_id=item.line.product_id,
        sku_id=item.line.sku_id,
        version=version,
        order_line_ref=ref,
        now=now,
    )
    return key_id, None


def get_key(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    customer: Tenant | uuid.UUID,
    item_id: str | uuid.UUID,
    version: str | None,
    now: datetime,
    request: RequestInfo | None = None,
) -> RevealedKey:
    """Decrypt the purchase's product key for ``version`` (newest when None). Audited.

    ``customer``: the customer, or its tenant id: then it is read with the purchase, scoped
    to what ``actor`` may reach (:func:`software_customer`; 404 ``CustomerNotFound`` else).
    Every reveal, the first or a later one, writes one activity record before the key is
    decrypted: the caller commits it before showing the key.
    """
    held = _held_purchase(
        session, customer=customer, item_id=item_id, hold=True, actor=actor, with_key=True
    )
    item = held.item
    _require_active(item)
    if not item.has_key:
        raise NoProductKey()
    offered = [v["version"] for v in item.versions]
    chosen = version or (offered[0] if offered else "")
    if chosen not in offered:
        raise InvalidInput(
            f"The version '{chosen}' is not offered for {item.product_name} "
            f"({', '.join(offered) or 'none'}).",
            source="version",
        )
    key_id, key = _key_for_version(
        session, settings=settings, item=item, version=chosen, now=now, held=held.key
    )
    _record(
        session,
        item=item,
        customer_name=held.customer.name,
        tenant_id=_audit_tenant(actor, item),
        resource_type="software_key",
        operation_type="get_software_key",
        now=now,
        actor=actor,
        request=request,
        details={"version": chosen, "productKeyId": str(key_id), "keyReserved": key is None},
    )
    if key is None:  # reserved just now: read it back
        value = catalog.reveal_key(session, settings=settings, key_id=key_id)
    else:
        value = catalog.decrypt_key(settings, key)
    return RevealedKey(key=value, version=chosen, item=item, key_id=key_id, customer=held.customer)


KEY_REVEAL_SECONDS = 300
"""How long a Get Key result waits for its one showing (real time)."""


def hold_for_reveal(
    session: Session,
    *,
    revealed: RevealedKey,
    customer: Tenant,
    web_session_id: uuid.UUID,
    real_now: datetime,
) -> uuid.UUID:
    """Remember ``revealed`` for one showing to this browser session; return the reveal id.

    Called in Get Key's POST, in the same transaction as its audit record. The id goes in
    the redirect's query string; :func:`take_reveal` shows it once.
    """
    assert revealed.key_id is not None
    # Holds nobody came back for (a closed tab) are dropped; the table stays tiny.
    session.execute(
        delete(KeyReveal).where(
            KeyReveal.created_at < real_now - timedelta(seconds=KEY_REVEAL_SECONDS)
        )
    )
    row = KeyReveal(
        web_session_id=web_session_id,
        customer_id=customer.id,
        item_id=str(revealed.item.id),
        product_key_id=revealed.key_id,
        version=revealed.version,
        created_at=real_now,
    )
    session.add(row)
    session.flush()
    return row.id


def take_reveal(
    session: Session,
    *,
    settings: Settings,
    customer: Tenant,
    reveal_id: str,
    web_session_id: uuid.UUID,
    real_now: datetime,
) -> RevealedKey | None:
    """The key held by :func:`hold_for_reveal`, deleting the hold: None the second time.

    None too when the id is malformed, belongs to another browser session or customer, is
    older than :data:`KEY_REVEAL_SECONDS`, or the purchase was cancelled meanwhile. Not
    audited again: the POST that revealed it wrote the one "Get key" record.
    """
    try:
        rid = uuid.UUID(reveal_id)
    except ValueError:
        return None
    row = session.get(KeyReveal, rid)
    if row is None or row.web_session_id != web_session_id or row.customer_id != customer.id:
        return None
    taken = session.execute(delete(KeyReveal).where(KeyReveal.id == rid))
    if getattr(taken, "rowcount", 0) != 1:  # another request showed it first
        return None
    if (real_now - row.created_at).total_seconds() > KEY_REVEAL_SECONDS:
        return None
    item = get_item(session, customer=customer, item_id=row.item_id)
    if not item.active or catalog.key_status(session, key_id=row.product_key_id) not in (
        KeyStatus.RESERVED,
    ):
        return None
    value = catalog.reveal_key(session, settings=settings, key_id=row.product_key_id)
    return RevealedKey(key=value, version=row.version, item=item, key_id=row.product_key_id)


# --- Download ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """What a route needs to stream one file: the store, the object and its name."""

    storage: Storage
    obj: StoredObject
    file_name: str
    item: SoftwareItem


def _file(
    session: Session,
    *,
    settings: Settings,
    item: SoftwareItem,
    version: str,
    language: str,
    bitness: str,
) -> tuple[Storage, StoredObject, str]:
    _check_choice(item, version, language, bitness)
    artifact = catalog.get_artifact(
        session,
        product_id=item.line.product_id,
        sku_id=item.line.sku_id,
        version=version,
        language=language,
        bitness=bitness,
    )
    storage = get_storage(settings)
    return storage, storage.stat(artifact.storage_key), artifact.file_name


def start_download(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    customer: Tenant | uuid.UUID,
    item_id: str | uuid.UUID,
    version: str,
    language: str,
    bitness: str,
    now: datetime,
    request: RequestInfo | None = None,
) -> Download:
    """Check the purchase and the file, and record the download. The route streams it.

    ``customer``: the customer, or its tenant id (read with the purchase, as :func:`get_key`).
    """
    held = _held_purchase(session, customer=customer, item_id=item_id, hold=True, actor=actor)
    item = held.item
    _require_active(item)
    storage, obj, name = _file(
        session, settings=settings, item=item, version=version, language=language, bitness=bitness
    )
    _record(
        session,
        item=item,
        customer_name=held.customer.name,
        tenant_id=_audit_tenant(actor, item),
        resource_type="software_download",
        operation_type="download_software",
        now=now,
        actor=actor,
        request=request,
        details={
            "version": version,
            "language": language,
            "bitness": bitness,
            "fileName": name,
            "size": obj.size,
            "sha256": obj.sha256,
            "via": "direct",
        },
    )
    return Download(storage=storage, obj=obj, file_name=name, item=item)


# --- Copy Link ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedLink:
    link: DownloadLink
    uri: str
    file_name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.link.id),
            "uri": self.uri,
            "expiresAt": _iso(self.link.expires_at),
            "sha256": self.sha256,
            "size": self.size,
            "fileName": self.file_name,
            "version": self.link.version,
            "language": self.link.language,
            "bitness": self.link.bitness,
            "attributes": {"objectType": "SoftwareDownloadLink"},
        }


def create_link(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    customer: Tenant,
    item_id: str | uuid.UUID,
    version: str,
    language: str,
    bitness: str,
    now: datetime,
    lifetime_minutes: int | None = None,
    request: RequestInfo | None = None,
    security_now: datetime | None = None,
) -> CreatedLink:
    """Make a signed link to one file of the purchase, usable without signing in. Audited.

    The record is dated ``now`` (business time); the link expires its lifetime after
    ``security_now`` (real time, so the sandbox clock never ages it; ``now`` when not given).
    """
    item = get_item(session, customer=customer, item_id=item_id, hold=True)
    _require_active(item)
    lifetime = link_lifetime(settings, lifetime_minutes)
    _, obj, name = _file(
        session, settings=settings, item=item, version=version, language=language, bitness=bitness
    )
    link_id = uuid.uuid4()
    issued = issue_token(
        link_id.hex, key=link_key(settings), now=security_now or now, lifetime=lifetime
    )
    link = DownloadLink(
        id=link_id,
        entitlement_id=item.id,
        partner_id=item.entitlement.partner_id,
        customer_id=item.entitlement.customer_id,
        order_id=item.order.id,
        version=version,
        language=language,
        bitness=bitness,
        created_by=actor.user_id,
        created_by_email=actor.email,
        created_at=now,
        expires_at=issued.expires_at,
        use_count=0,
    )
    session.add(link)
    _record(
        session,
        item=item,
        customer_name=customer.name,
        tenant_id=_audit_tenant(actor, item),
        resource_type="software_download_link",
        operation_type="get_software_download_link",
        now=now,
        actor=actor,
        request=request,
        details={
            "version": version,
            "language": language,
            "bitness": bitness,
            "fileName": name,
            "linkId": str(link_id),
            "expiresAt": _iso(issued.expires_at),
        },
    )
    uri = settings.base_url.rstrip("/") + LINK_PATH + issued.token
    return CreatedLink(link=link, uri=uri, file_name=name, size=obj.size, sha256=obj.sha256)


def use_link(
    session: Session,
    *,
    settings: Settings,
    token: str,
    now: datetime,
    request: RequestInfo | None = None,
    security_now: datetime | None = None,
) -> Download:
    """Open a copied link: 403 when tampered, 410 when expired or its purchase cancelled.

    Expiry is checked on ``security_now`` (real time; ``now`` when not given); the record is
    dated ``now``.
    """
    wall = security_now or now
    verified = verify_token(token, key=link_key(settings), now=wall)
    try:
        link = session.get(DownloadLink, uuid.UUID(hex=verified.link_id))
    except ValueError:
        raise LinkInvalid() from None
    if link is None:
        raise LinkInvalid()
    if link.revoked_at is not None:
        raise LinkRevoked()
    if wall >= link.expires_at:
        raise LinkExpired(data=[_iso(link.expires_at)])
    item = _entitlement_item(session, link.entitlement_id)
    if item is None:
        raise LinkRevoked()
    try:
        _require_active(item, session)
    except PurchaseCancelled:
        raise LinkRevoked() from None
    storage, obj, name = _file(
        session,
        settings=settings,
        item=item,
        version=link.version,
        language=link.language,
        bitness=link.bitness,
    )
    link.use_count += 1
    link.last_used_at = now
    customer = session.get(Tenant, link.customer_id)
    _record(
        session,
        item=item,
        customer_name=customer.name if customer else "",
        tenant_id=link.partner_id,
        resource_type="software_download",
        operation_type="download_software",
        now=now,
        actor=None,
        request=request,
        user_principal_name="anonymous (copied link)",
        details={
            "version": link.version,
            "language": link.language,
            "bitness": link.bitness,
            "fileName": name,
            "size": obj.size,
            "sha256": obj.sha256,
            "via": "copied_link",
            "linkId": str(link.id),
            "linkCreatedBy": link.created_by_email,
            "linkCreatedByUserId": str(link.created_by) if link.created_by else None,
        },
    )
    return Download(storage=storage, obj=obj, file_name=name, item=item)


# --- Revocation --------------------------------------------------------------------------


def revoke_purchase(
    session: Session, *, order_line_id: uuid.UUID, now: datetime, reason: str = "cancelled"
) -> int:
    """Cancel the line's entitlement, revoke its keys and links; returns links revoked.

    Called by cancellation in its transaction. Idempotent.
    """
    entitlement = session.execute(
        select(Entitlement).where(Entitlement.order_line_id == order_line_id)
    ).scalar_one_or_none()
    if entitlement is None:
        return 0
    entitlement.status = EntitlementStatus.CANCELLED
    catalog.revoke_keys(session, order_line_ref=str(order_line_id), now=now)
    result = session.execute(
        update(DownloadLink)
        .where(DownloadLink.entitlement_id == entitlement.id, DownloadLink.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def list_links(
    session: Session, *, customer: Tenant, item_id: str | uuid.UUID
) -> list[DownloadLink]:
    """The links made for a purchase, newest first (who made them, until when)."""
    item = get_item(session, customer=customer, item_id=item_id)
    return list(
        session.execute(
            select(DownloadLink)
            .where(DownloadLink.entitlement_id == item.id)
            .order_by(DownloadLink.created_at.desc(), DownloadLink.id)
        ).scalars()
    )
