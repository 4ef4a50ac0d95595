"""Catalog behaviour: what is offered in a market, at what price and tax, and key inventory.

Other areas (orders, licensing, billing) call the functions here, never the tables:

- :func:`resolve_availability` and :func:`quote` check a ``PRODUCT:SKU:AVAIL`` item against a
  customer's market and price it (net, tax, gross);
- :func:`cancellation_policy` gives a product's cancellation rules;
- :func:`reserve_key`, :func:`reveal_key` (or :func:`line_keys` and :func:`decrypt_key`),
  :func:`revoke_keys` hand out product keys;
- :func:`get_artifact` / :func:`list_artifacts` describe the downloadable files.

Services never commit; the route or command that calls them does.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, TypeVar, cast

from sqlalchemy import ScalarSelect, String, Table, bindparam, func, inspect, or_, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.functions import aggregate_strings

from partnercenter import labels
from partnercenter.audit import services as audit
from partnercenter.catalog.errors import (
    ArtifactNotFound,
    AvailabilityNotFound,
    InvalidArtifact,
    InvalidCatalogItemId,
    InvalidQuantity,
    InvalidTaxRate,
    InvalidTerm,
    KeyImportInvalid,
    KeyNotFound,
    MarketUnavailable,
    OutOfKeys,
    ProductNotFound,
    SkuNotFound,
)
from partnercenter.catalog.keys import KeyCipher, generate_key, key_format_problem
from partnercenter.catalog.models import (
    Artifact,
    Availability,
    AvailabilityMarket,
    BillingCycle,
    Bitness,
    CatalogVersion,
    CreditRule,
    KeySource,
    KeyStatus,
    Product,
    ProductKey,
    ProductType,
    Sku,
    TaxRate,
)
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.errors import InvalidInput
from partnercenter.i18n import N_, Market, Message
from partnercenter.markets import (
    azure_reservations_unavailable,
    market_currency,
    normalise_country,
)
from partnercenter.money import (
    Price,
    from_minor,
    line_price,
    price_from_list,
    tax_inclusive,
)

PPM = Decimal(1_000_000)
TERMS = ("P1M", "P1Y", "P3Y")
TERM_DAYS = {"P1M": 30, "P1Y": 365, "P3Y": 1095}
CURRENCY_SELECTOR = "currency:"

# Partner Center's targetView values and the product types each shows.
TARGET_VIEWS: dict[str, frozenset[ProductType]] = {
    "Software": frozenset(
        {
            ProductType.PERPETUAL_SOFTWARE,
            ProductType.SERVER_SUBSCRIPTION,
            ProductType.SOFTWARE_PLAN,
        }
    ),
    "SoftwarePerpetual": frozenset({ProductType.PERPETUAL_SOFTWARE}),
    "SoftwareSubscriptions": frozenset({ProductType.SERVER_SUBSCRIPTION}),
    "SoftwareSUSELinux": frozenset({ProductType.SOFTWARE_PLAN}),
    "AzureReservations": frozenset({ProductType.AZURE_RESERVATION}),
}

TARGET_VIEW_OF_TYPE = {
    ProductType.PERPETUAL_SOFTWARE: "SoftwarePerpetual",
    ProductType.SERVER_SUBSCRIPTION: "SoftwareSubscriptions",
    ProductType.SOFTWARE_PLAN: "SoftwareSUSELinux",
    ProductType.AZURE_RESERVATION: "AzureReservations",
}

SOFTWARE_TYPES = TARGET_VIEWS["Software"]


# ---------------------------------------------------------------------------------------------
# Value objects handed to other areas


@dataclass(frozen=True)
class CancellationPolicy:
    """When a purchase of the product may be cancelled and what it credits.

    ``window_days`` None means any time during the term. Inside ``full_credit_days`` the
    credit is 100 %; after that ``credit_rule`` applies (``prorated_less_fee`` keeps
    ``fee_percent`` of the prorated amount). ``cap_amount`` limits the credits per customer
    in a rolling ``cap_period_days``. Above ``support_request_above`` a cancellation needs a
    customer support request instead.
    """

    window_days: int | None
    full_credit_days: int
    credit_rule: CreditRule
    fee_percent: Decimal
    cap_amount: Decimal | None
    cap_currency: str | None
    cap_period_days: int | None
    support_request_above: Decimal | None
    support_request_currency: str | None

    @property
    def cancellable(self) -> bool:
        return self.credit_rule != CreditRule.NONE and self.window_days != 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "windowDays": self.window_days,
            "fullCreditDays": self.full_credit_days,
            "creditRule": self.credit_rule.value,
            "feePercent": str(self.fee_percent),
            "cancellable": self.cancellable,
        }
        if self.cap_amount is not None:
            body["cap"] = {
                "amount": str(self.cap_amount),
                "currency": self.cap_currency,
                "periodDays": self.cap_period_days,
            }
        if self.support_request_above is not None:
            body["supportRequestAbove"] = {
                "amount": str(self.support_request_above),
                "currency": self.support_request_currency,
            }
        return body


@dataclass(frozen=True)
class ResolvedAvailability:
    """A catalog item as offered in one market, with its unit price there."""

    product: Product
    sku: Sku
    availability: Availability
    country: str
    currency: str
    tax_rate: Decimal
    """A fraction: 0.20 for 20 %."""
    tax_inclusive: bool
    list_price: Decimal
    unit_price: Price

    @property
    def catalog_item_id(self) -> str:
        return catalog_item_id(self.product.id, self.sku.sku_id, self.availability.availability_id)

    @property
    def term_duration(self) -> str | None:
        return self.availability.term_duration

    @property
    def billing_cycle(self) -> BillingCycle:
        return self.availability.billing_cycle

    @property
    def product_type(self) -> ProductType:
        return self.product.product_type


@dataclass(frozen=True)
class LineQuote:
    """The price of one cart line: the unit price and the line total (rounded once)."""

    item: ResolvedAvailability
    quantity: int
    term_duration: str | None
    billing_cycle: BillingCycle
    unit_price: Price
    line_price: Price

    def to_json(self) -> dict[str, Any]:
        return {
            "catalogItemId": self.item.catalog_item_id,
            "quantity": self.quantity,
            "termDuration": self.term_duration,
            "billingCycle": self.billing_cycle.value,
            "unitPrice": self.unit_price.to_json(),
            "linePrice": self.line_price.to_json(),
            "taxInclusive": self.item.tax_inclusive,
            "taxRate": str(self.item.tax_rate),
        }


# ---------------------------------------------------------------------------------------------
# Ids


def catalog_item_id(product_id: str, sku_id: str, availability_id: str) -> str:
    return f"{product_id}:{sku_id}:{availability_id}"


def parse_catalog_item_id(value: str) -> tuple[str, str, str]:
    parts = value.strip().split(":") if isinstance(value, str) else []
    if len(parts) != 3 or not all(parts):
        raise InvalidCatalogItemId(
            f"'{value}' is not a catalog item id (PRODUCT:SKU:AVAILABILITY).",
            source="catalogItemId",
        )
    return parts[0], parts[1], parts[2]


# ---------------------------------------------------------------------------------------------
# Tax rates


def percent_to_ppm(percent: Decimal) -> int:
    if not percent.is_finite() or percent < 0 or percent > 100:
        raise InvalidTaxRate(
            N_("“%(value)s” is not a percentage from 0 to 100.", value=str(percent))
        )
    ppm = percent * 10_000
    if ppm != ppm.to_integral_value():
        raise InvalidTaxRate(N_("“%(value)s” has more than four decimals.", value=str(percent)))
    return int(ppm)


def ppm_to_percent(ppm: int) -> Decimal:
    """A rate in parts per million as a percentage without trailing zeros (``20``, not ``2E+1``)."""
    if not ppm:
        return Decimal(0)
    percent = (Decimal(ppm) / 10_000).normalize()
    # normalize() writes whole tens as 2E+1, which documents and pages would show as is.
    return percent.quantize(Decimal(1)) if percent == percent.to_integral_value() else percent


def tax_rate(session: Session, *, country: str) -> Decimal:
    """The market's tax rate as a fraction (0.2 for 20 %); 0 for a market without a rate."""
    row = session.get(TaxRate, normalise_country(country))
    return Decimal(row.rate_ppm) / PPM if row else Decimal(0)


def list_tax_rates(session: Session) -> dict[str, Decimal]:
    """Every market with a rate: country -> percent."""
    rows = session.execute(select(TaxRate).order_by(TaxRate.country)).scalars()
    return {r.country: ppm_to_percent(r.rate_ppm) for r in rows}


def set_tax_rate(
    session: Session,
    *,
    country: str,
    percent: Decimal,
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None = None,
) -> bool:
    """Set a market's tax rate (percent); returns whether anything changed. Audited."""
    code = normalise_country(country)
    ppm = percent_to_ppm(percent)
    row = session.get(TaxRate, code)
    before = row.rate_ppm if row else None
    if before == ppm:
        return False
    if row is None:
        session.add(TaxRate(country=code, rate_ppm=ppm, updated_at=now))
    else:
        row.rate_ppm = ppm
        row.updated_at = now
    audit.record(
        session,
        at=now,
        resource_type="tax_rate",
        operation_type="update_tax_rate",
        tenant_id=actor.tenant_id if actor else None,
        actor=actor,
        request=request,
        user_principal_name=None if actor else "cli",
        details={
            "country": code,
            "before": str(ppm_to_percent(before)) if before is not None else None,
            "after": str(ppm_to_percent(ppm)),
        },
    )
    return True


@dataclass(frozen=True)
class MarketInfo:
    country: str
    name: str
    currency: str
    tax_percent: Decimal
    tax_inclusive: bool
    azure_reservations: bool


def markets(session: Session) -> list[MarketInfo]:
    """Every market with its currency, tax rate and whether Azure reservations are sold."""
    from partnercenter.markets import all_countries

    rates = list_tax_rates(session)
    blocked = azure_reservations_unavailable()
    return [
        MarketInfo(
            country=c.code,
            name=c.name,
            currency=market_currency(c.code),
            tax_percent=rates.get(c.code, Decimal(0)),
            tax_inclusive=tax_inclusive(c.code),
            azure_reservations=c.code not in blocked,
        )
        for c in all_countries().values()
    ]


# ---------------------------------------------------------------------------------------------
# Browsing


def parse_target_view(value: str | None) -> frozenset[ProductType] | None:
    if value is None or value == "":
        return None
    for name, types in TARGET_VIEWS.items():
        if name.lower() == value.lower():
            return types
    raise InvalidInput(
        N_(
            "targetView '%(value)s' is not one of %(views)s.",
            value=value,
            views=", ".join(TARGET_VIEWS),
        ),
        source="targetView",
    )


def offered_in_market(product: Product, country: str) -> bool:
    """Whether the product type may be sold in the market (Azure reservations are not
    sold in the seed's unavailable markets)."""
    return not (
        product.product_type == ProductType.AZURE_RESERVATION
        and country in azure_reservations_unavailable()
    )


def _market_selectors(country: str) -> tuple[str, str]:
    return country, f"{CURRENCY_SELECTOR}{market_currency(country)}"


def _offered(availabilities: Iterable[Availability], country: str) -> list[Availability]:
    """The active availabilities that apply in ``country``; a country named explicitly wins
    over a currency selector for the same term and billing cycle."""
    currency_selector = f"{CURRENCY_SELECTOR}{market_currency(country)}"
    explicit: list[Availability] = []
    by_currency: list[Availability] = []
    for a in availabilities:
        if not a.is_active:
            continue
        markets = a.markets
        if country in markets:
            explicit.append(a)
        elif currency_selector in markets:
            by_currency.append(a)
    taken = {(a.term_duration, a.billing_cycle) for a in explicit}
    offered = explicit + [a for a in by_currency if (a.term_duration, a.billing_cycle) not in taken]
    return sorted(offered, key=lambda a: (a.position, a.availability_id))


def list_products(
    session: Session, *, country: str, target_view: str | None = None
) -> list[Product]:
    """Active products with something on sale in the market, in catalog order."""
    country = normalise_country(country)
    types = parse_target_view(target_view)
    stmt = (
        select(Product)
        .join(Sku, Sku.product_id == Product.id)
        .join(Availability, Availability.sku_pk == Sku.id)
        .join(AvailabilityMarket, AvailabilityMarket.availability_pk == Availability.id)
        .where(
            Product.is_active.is_(True),
            Sku.is_active.is_(True),
            Availability.is_active.is_(True),
            AvailabilityMarket.market.in_(_market_selectors(country)),
        )
        .distinct()
        .options(selectinload(Product.skus).selectinload(Sku.availabilities))
    )
    if types is not None:
        stmt = stmt.where(Product.product_type.in_(sorted(types)))
    products = session.execute(stmt).scalars().all()
    return sorted(
        (p for p in products if offered_in_market(p, country)), key=lambda p: (p.position, p.id)
    )


def list_all_products(session: Session, *, include_inactive: bool = False) -> list[Product]:
    """Every product, for the provider (no market filter)."""
    stmt = select(Product).options(selectinload(Product.skus).selectinload(Sku.availabilities))
    if not include_inactive:
        stmt = stmt.where(Product.is_active.is_(True))
    return list(session.execute(stmt.order_by(Product.position, Product.id)).scalars())


def get_product(session: Session, *, product_id: str, include_inactive: bool = False) -> Product:
    # The SKUs come in the same statement: nearly every caller goes on to them.
    product = session.get(Product, product_id, options=[joinedload(Product.skus)])
    if product is None or (not product.is_active and not include_inactive):
        raise ProductNotFound(
            N_("The product “%(product)s” was not found.", product=product_id), source="productId"
        )
    return product


def get_product_in_market(session: Session, *, product_id: str, country: str) -> Product:
    """The product if it is on sale in the market; a hidden one answers 800070."""
    country = normalise_country(country)
    product = get_product(session, product_id=product_id)
    _check_market(product, country)
    return product


def get_sku(
    session: Session, *, product_id: str, sku_id: str, include_inactive: bool = False
) -> Sku:
    product = get_product(session, product_id=product_id, include_inactive=include_inactive)
    for sku in product.skus:
        if sku.sku_id == sku_id and (sku.is_active or include_inactive):
            return sku
    raise SkuNotFound(
        f"The SKU '{sku_id}' of product '{product_id}' was not found.", source="skuId"
    )


def _check_market(product: Product, country: str) -> None:
    if not offered_in_market(product, country):
        raise MarketUnavailable(
            N_(
                "The offer “%(offer)s” is not available in market %(market)s: Azure reservations "
                "are not sold there.",
                offer=product.title,
                market=Market(country),
            ),
            data=[{"country": country, "productId": product.id}],
            source="country",
        )


def list_skus(session: Session, *, product_id: str, country: str) -> list[Sku]:
    """The product's SKUs on sale in the market."""
    country = normalise_country(country)
    product = get_product_in_market(session, product_id=product_id, country=country)
    return [s for s in product.skus if s.is_active and _offered(s.availabilities, country)]


def list_availabilities(
    session: Session, *, product_id: str, sku_id: str, country: str
) -> list[ResolvedAvailability]:
    """The SKU's availabilities in the market, each priced there."""
    country = normalise_country(country)
    product = get_product_in_market(session, product_id=product_id, country=country)
    sku = get_sku(session, product_id=product.id, sku_id=sku_id)
    rate = tax_rate(session, country=country)
    return [
        _resolved(product, sku, a, country, rate) for a in _offered(sku.availabilities, country)
    ]


def _resolved(
    product: Product, sku: Sku, availability: Availability, country: str, rate: Decimal
) -> ResolvedAvailability:
    currency = availability.currency
    amount = from_minor(availability.list_price_minor, currency)
    inclusive = tax_inclusive(country)
    return ResolvedAvailability(
        product=product,
        sku=sku,
        availability=availability,
        country=country,
        currency=currency,
        tax_rate=rate,
        tax_inclusive=inclusive,
        list_price=amount,
        unit_price=price_from_list(amount, currency, rate, inclusive),
    )


def resolve_availability(
    session: Session, *, catalog_item_id: str, country: str, rate: Decimal | None = None
) -> ResolvedAvailability:
    """The catalog item as offered in the customer's market, priced there.

    ``rate`` is the market's tax rate when the caller read it already (see
    :func:`load_for_pricing`); None reads it. Raises 400013 (product), 400018 (SKU), 400019
    (availability) when an id is unknown and 800070 naming the market when the item is not
    offered there.
    """
    product_id, sku_id, availability_id = parse_catalog_item_id(catalog_item_id)
    country = normalise_country(country)
    product = get_product(session, product_id=product_id)
    sku = get_sku(session, product_id=product_id, sku_id=sku_id)
    availability = next(
        (a for a in sku.availabilities if a.availability_id == availability_id and a.is_active),
        None,
    )
    if availability is None:
        raise AvailabilityNotFound(
            f"The availability '{availability_id}' of {product_id}:{sku_id} was not found.",
            source="catalogItemId",
        )
    _check_market(product, country)
    if availability not in _offered(sku.availabilities, country):
        raise MarketUnavailable(
            N_(
                "The offer “%(offer)s” (%(product)s, %(sku)s) is not available in market "
                "%(market)s.",
                offer=catalog_item_id,
                product=product.title,
                sku=sku.title,
                market=Market(country),
            ),
            data=[{"country": country, "catalogItemId": catalog_item_id}],
            source="catalogItemId",
        )
    if rate is None:
        rate = tax_rate(session, country=country)
    return _resolved(product, sku, availability, country, rate)


def quote(
    session: Session,
    *,
    catalog_item_id: str,
    country: str,
    quantity: int,
    term_duration: str | None = None,
    billing_cycle: str | BillingCycle | None = None,
    rate: Decimal | None = None,
) -> LineQuote:
    """Price one cart line in the customer's market, checking quantity, term and cycle.

    ``rate``: the market's tax rate when already read (:func:`load_for_pricing`).
    """
    item = resolve_availability(
        session, catalog_item_id=catalog_item_id, country=country, rate=rate
    )
    return quote_item(
        item,
        catalog_item_id=catalog_item_id,
        quantity=quantity,
        term_duration=term_duration,
        billing_cycle=billing_cycle,
    )


def quote_item(
    item: ResolvedAvailability,
    *,
    catalog_item_id: str,
    quantity: int,
    term_duration: str | None = None,
    billing_cycle: str | BillingCycle | None = None,
) -> LineQuote:
    """Price one cart line of an item already resolved in its market (:func:`quote`'s checks:
    quantity 10010, term and billing cycle 13001); reads nothing."""
    sku = item.sku
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantity("The quantity must be a whole number.", source="quantity")
    if not sku.min_quantity <= quantity <= sku.max_quantity:
        raise InvalidQuantity(
            N_(
                "The quantity %(quantity)s is outside %(low)s to %(high)s for %(product)s, "
                "%(sku)s.",
                quantity=quantity,
                low=sku.min_quantity,
                high=sku.max_quantity,
                product=item.product.title,
                sku=sku.title,
            ),
            data=[{"minimum": sku.min_quantity, "maximum": sku.max_quantity}],
            source="quantity",
        )
    offered_term = item.availability.term_duration
    if term_duration not in (None, "") and term_duration != offered_term:
        raise InvalidTerm(
            N_(
                "The term “%(term)s” is not offered for %(offer)s; it is %(offered)s.",
                term=term_duration,
                offer=catalog_item_id,
                offered=Message(labels.label("term", offered_term), {}),
            ),
            source="termDuration",
        )
    offered_cycle = item.availability.billing_cycle
    if billing_cycle not in (None, ""):
        try:
            cycle = BillingCycle(_normalise_cycle(str(billing_cycle)))
        except ValueError:
            cycle = None
        if cycle != offered_cycle:
            raise InvalidTerm(
                N_(
                    "The billing cycle “%(cycle)s” is not offered for %(offer)s; "
                    "it is %(offered)s.",
                    cycle=str(billing_cycle),
                    offer=catalog_item_id,
                    offered=Message(labels.label("cycle", offered_cycle), {}),
                ),
                source="billingCycle",
            )
    line = line_price(item.list_price, quantity, item.currency, item.tax_rate, item.tax_inclusive)
    return LineQuote(
        item=item,
        quantity=quantity,
        term_duration=offered_term,
        billing_cycle=offered_cycle,
        unit_price=item.unit_price,
        line_price=line,
    )


def _normalise_cycle(value: str) -> str:
    # Partner Center spells them OneTime / Monthly / Annual; ours are one_time / monthly.
    value = value.strip()
    if "_" in value or value.isupper() or value.islower():
        return value.lower()
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).lower()


def cancellation_policy(product: Product) -> CancellationPolicy:
    """The product's cancellation rules (see :class:`CancellationPolicy`)."""
    cap_currency = product.cancel_cap_currency
    sr_currency = product.support_request_above_currency
    return CancellationPolicy(
        window_days=product.cancel_window_days,
        full_credit_days=product.cancel_full_credit_days,
        credit_rule=product.cancel_credit_rule,
        fee_percent=ppm_to_percent(product.cancel_fee_ppm),
        cap_amount=(
            from_minor(product.cancel_cap_minor, cap_currency)
            if product.cancel_cap_minor is not None and cap_currency
            else None
        ),
        cap_currency=cap_currency,
        cap_period_days=product.cancel_cap_period_days,
        support_request_above=(
            from_minor(product.support_request_above_minor, sr_currency)
            if product.support_request_above_minor is not None and sr_currency
            else None
        ),
        support_request_currency=sr_currency,
    )


def cancellation_policy_for(session: Session, *, product_id: str) -> CancellationPolicy:
    return cancellation_policy(get_product(session, product_id=product_id, include_inactive=True))


# ---------------------------------------------------------------------------------------------
# Key inventory


@dataclass(frozen=True)
class KeyImportResult:
    imported: int
    by_version: dict[str, int]


def key_context(sku: Sku, version: str) -> str:
    return f"{sku.id}:{version}"


def parse_key_csv(
    text: str, *, versions: Sequence[str]
) -> tuple[list[tuple[int, str, str]], list[dict[str, Any]]]:
    """Rows (row number, version, key) and the errors, one per bad row (row 1 is the header)."""
    rows: list[tuple[int, str, str]] = []
    errors: list[dict[str, Any]] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, fields in enumerate(reader, start=1):
        cells = [c.strip() for c in fields]
        if not any(cells):
            continue
        if number == 1 and [c.lower() for c in cells] == ["version", "key"]:
            continue
        if len(cells) != 2:
            errors.append(
                {"row": number, "message": f"expected 2 columns (version,key), found {len(cells)}"}
            )
            continue
        version, key = cells
        if version not in versions:
            allowed = ", ".join(versions) or "none"
            errors.append(
                {"row": number, "message": f"unknown version '{version}' (the SKU has {allowed})"}
            )
            continue
        problem = key_format_problem(key)
        if problem:
            errors.append({"row": number, "message": problem})
            continue
        rows.append((number, version, key))
    return rows, errors


def import_keys(
    session: Session,
    *,
    settings: Settings,
    product_id: str,
    sku_id: str,
    csv_text: str,
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None = None,
) -> KeyImportResult:
    """Import product keys (CSV ``version,key``), encrypted; all rows or none.

    Malformed rows and duplicates (inside the file or already in inventory, compared by
    fingerprint) are refused with their row numbers, and then nothing is imported.
    """
    sku = get_sku(session, product_id=product_id, sku_id=sku_id)
    if sku.key_source == KeySource.NONE:
        raise InvalidInput(
            N_("The SKU %(sku)s has no product keys.", sku=f"{product_id}:{sku_id}"),
            source="skuId",
        )
    rows, errors = parse_key_csv(csv_text, versions=sku.versions)
    cipher = KeyCipher.from_settings(settings)
    seen: dict[str, int] = {}
    fingerprints: list[tuple[int, str, str, str]] = []
    for number, version, key in rows:
        fp = cipher.fingerprint(key)
        if fp in seen:
            errors.append({"row": number, "message": f"duplicate of row {seen[fp]}"})
            continue
        seen[fp] = number
        fingerprints.append((number, version, key, fp))
    existing: set[str] = set()
    all_fps = [fp for *_, fp in fingerprints]
    for start in range(0, len(all_fps), 500):
        chunk = all_fps[start : start + 500]
        existing.update(
            session.execute(
                select(ProductKey.fingerprint).where(ProductKey.fingerprint.in_(chunk))
            ).scalars()
        )
    for number, _version, _key, fp in fingerprints:
        if fp in existing:
            errors.append({"row": number, "message": "the key is already in the inventory"})
    if not rows and not errors:
        errors.append({"row": 0, "message": "the file holds no keys"})
    if errors:
        raise KeyImportInvalid(sorted(errors, key=lambda e: int(e["row"])))
    by_version: dict[str, int] = {}
    try:
        # A savepoint, so a key imported by a concurrent request at the same moment turns
        # into the same clear refusal instead of a failed transaction.
        with session.begin_nested():
            for _number, version, key, fp in fingerprints:
                session.add(
                    ProductKey(
                        id=uuid.uuid4(),
                        sku_pk=sku.id,
                        version=version,
                        ciphertext=cipher.encrypt(key, context=key_context(sku, version)),
                        fingerprint=fp,
                        status=KeyStatus.AVAILABLE,
                        generated=False,
                        imported_at=now,
                    )
                )
                by_version[version] = by_version.get(version, 0) + 1
    except IntegrityError:
        raise KeyImportInvalid(
            [{"row": 0, "message": "another import added some of these keys just now"}]
        ) from None
    audit.record(
        session,
        at=now,
        resource_type="product_key_inventory",
        operation_type="import_product_keys",
        tenant_id=actor.tenant_id if actor else None,
        actor=actor,
        request=request,
        user_principal_name=None if actor else "cli",
        details={
            "productId": product_id,
            "skuId": sku_id,
            "imported": len(fingerprints),
            "byVersion": by_version,
        },
    )
    return KeyImportResult(imported=len(fingerprints), by_version=by_version)


@dataclass(frozen=True)
class StockRow:
    product_id: str
    product_title: str
    sku_id: str
    sku_title: str
    key_source: KeySource
    version: str
    available: int
    reserved: int
    threshold: int

    @property
    def low(self) -> bool:
        return self.key_source == KeySource.INVENTORY and self.available <= self.threshold


def key_stock(session: Session) -> list[StockRow]:
    """Available and handed-out keys per SKU and version, with the low-stock flag."""
    counts: dict[tuple[uuid.UUID, str, KeyStatus], int] = {}
    for sku_pk, version, status, n in session.execute(
        select(ProductKey.sku_pk, ProductKey.version, ProductKey.status, func.count()).group_by(
            ProductKey.sku_pk, ProductKey.version, ProductKey.status
        )
    ):
        counts[(sku_pk, version, status)] = int(n)
    rows: list[StockRow] = []
    for product in list_all_products(session):
        for sku in product.skus:
            if not sku.is_active or sku.key_source == KeySource.NONE:
                continue
            for version in sku.versions:
                rows.append(
                    StockRow(
                        product_id=product.id,
                        product_title=product.title,
                        sku_id=sku.sku_id,
                        sku_title=sku.title,
                        key_source=sku.key_source,
                        version=version,
                        available=counts.get((sku.id, version, KeyStatus.AVAILABLE), 0),
                        reserved=counts.get((sku.id, version, KeyStatus.RESERVED), 0),
                        threshold=sku.low_stock_threshold,
                    )
                )
    return rows


def available_keys(session: Session, *, product_id: str, sku_id: str, version: str) -> int:
    sku = get_sku(session, product_id=product_id, sku_id=sku_id, include_inactive=True)
    return int(
        session.execute(
            select(func.count()).where(
                ProductKey.sku_pk == sku.id,
                ProductKey.version == version,
                ProductKey.status == KeyStatus.AVAILABLE,
            )
        ).scalar_one()
    )


def _reserve_key_statement() -> Any:
    """The oldest available key of a SKU's version taken for an order line, returning its id.

    Parameters ``of_sku``, ``key_version``, ``at`` (reserved at) and ``line_ref``. Built once
    (module level): building it and its cache key cost more CPU than running it.
    """
    keys = cast(Table, ProductKey.__table__)
    oldest = (
        select(keys.c.id)
        .where(
            keys.c.sku_pk == bindparam("of_sku", type_=keys.c.sku_pk.type),
            keys.c.version == bindparam("key_version", type_=keys.c.version.type),
            keys.c.status == KeyStatus.AVAILABLE,
        )
        .order_by(keys.c.imported_at, keys.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(keys)
        .where(keys.c.id == oldest)
        .values(
            status=KeyStatus.RESERVED,
            reserved_at=bindparam("at", type_=keys.c.reserved_at.type),
            order_line_ref=bindparam("line_ref", type_=keys.c.order_line_ref.type),
        )
        .returning(keys.c.id)
    )


_RESERVE_KEY = _reserve_key_statement()


def reserve_key(
    session: Session,
    *,
    settings: Settings,
    product_id: str,
    sku_id: str,
    version: str | None,
    order_line_ref: str,
    now: datetime,
    sku: Sku | None = None,
) -> uuid.UUID:
    """Take one key for an order line and return its id; never the same key twice.

    Inventory SKUs take an available key (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
    concurrent checkouts take different keys; SQLite's ``BEGIN IMMEDIATE`` serialises
    writers). Generator SKUs mint a fresh unique key. ``version`` None is the newest.
    ``sku``: that SKU when the caller holds it already (checkout: priced from the catalog or
    ``pricing_cache`` in this transaction), else it is looked up.
    Raises :class:`OutOfKeys` when the inventory is empty.
    """
    if sku is None or sku.product_id != product_id or sku.sku_id != sku_id:
        sku = get_sku(session, product_id=product_id, sku_id=sku_id, include_inactive=True)
    if sku.key_source == KeySource.NONE:
        raise InvalidInput(
            N_("The SKU %(sku)s has no product keys.", sku=f"{product_id}:{sku_id}"),
            source="skuId",
        )
    chosen = version or (sku.versions[0] if sku.versions else "")
    if chosen not in sku.versions:
        raise InvalidInput(
            N_(
                "The version '%(version)s' is not offered for %(sku)s.",
                version=chosen,
                sku=f"{product_id}:{sku_id}",
            ),
            source="version",
        )
    if sku.key_source == KeySource.GENERATOR:
        return _generate_key(
            session,
            settings=settings,
            sku=sku,
            version=chosen,
            order_line_ref=order_line_ref,
            now=now,
        )
    # One statement, one index probe: the oldest available key through the partial index
    # on available keys (migration 0018), skipping keys other checkouts hold, taken at once.
    key_id = session.execute(
        _RESERVE_KEY,
        {"of_sku": sku.id, "key_version": chosen, "at": now, "line_ref": order_line_ref},
    ).scalar_one_or_none()
    if key_id is None:
        raise OutOfKeys(
            N_(
                "No product key is left in inventory for %(sku)s version %(version)s.",
                sku=f"{product_id}:{sku_id}",
                version=chosen,
            ),
            data=[{"productId": product_id, "skuId": sku_id, "version": chosen}],
        )
    reserved: uuid.UUID = key_id
    return reserved


def _generate_key(
    session: Session,
    *,
    settings: Settings,
    sku: Sku,
    version: str,
    order_line_ref: str,
    now: datetime,
) -> uuid.UUID:
    cipher = KeyCipher.from_settings(settings)
    for _attempt in range(5):
        value = generate_key()
        fp = cipher.fingerprint(value)
        exists = session.execute(select(ProductKey.id).where(ProductKey.fingerprint == fp)).first()
        if exists:
            continue
        key = ProductKey(
            id=uuid.uuid4(),
            sku_pk=sku.id,
            version=version,
            ciphertext=cipher.encrypt(value, context=key_context(sku, version)),
            fingerprint=fp,
            status=KeyStatus.RESERVED,
            generated=True,
            imported_at=now,
            reserved_at=now,
            order_line_ref=order_line_ref,
        )
        try:
            with session.begin_nested():
                session.add(key)
        except IntegrityError:  # a concurrent transaction minted the same key
            continue
        return key.id
    raise OutOfKeys("No unique product key could be generated; try again.")


@dataclass(frozen=True)
class HeldKey:
    """A key handed out to an order line, read still encrypted (decrypted by
    :func:`decrypt_key` once the caller has audited the access)."""

    id: uuid.UUID
    version: str
    status: KeyStatus
    order_line_ref: str | None
    sku_pk: uuid.UUID
    ciphertext: bytes = field(repr=False)


def held_key_columns() -> tuple[Any, ...]:
    """The columns of a :class:`HeldKey`, in its fields' order, for a statement that reads a
    key together with other rows (Get Key reads the purchase's key with the purchase)."""
    return (
        ProductKey.id,
        ProductKey.version,
        ProductKey.status,
        ProductKey.order_line_ref,
        ProductKey.sku_pk,
        ProductKey.ciphertext,
    )


def line_keys(session: Session, *, order_line_ref: str) -> list[HeldKey]:
    """Every key handed out to an order line (any status), with its ciphertext; one statement."""
    rows = session.execute(
        select(*held_key_columns()).where(ProductKey.order_line_ref == order_line_ref)
    ).all()
    return [HeldKey(*row) for row in rows]


def decrypt_key(settings: Settings, key: HeldKey) -> str:
    """The plain product key (the caller audits the access and checks revocation first).

    Raises :class:`KeyDecryptionFailed` when the ciphertext does not open with the configured
    key encryption key and the key's SKU and version.
    """
    return KeyCipher.from_settings(settings).decrypt(
        key.ciphertext, context=f"{key.sku_pk}:{key.version}"
    )


def reveal_key(session: Session, *, settings: Settings, key_id: uuid.UUID) -> str:
    """Decrypt a handed-out key (the caller audits the access and checks revocation)."""
    row = session.execute(select(*held_key_columns()).where(ProductKey.id == key_id)).first()
    if row is None:
        raise KeyNotFound()
    return decrypt_key(settings, HeldKey(*row))


def key_status(session: Session, *, key_id: uuid.UUID) -> KeyStatus:
    key = session.get(ProductKey, key_id)
    if key is None:
        raise KeyNotFound()
    return key.status


def revoke_keys(session: Session, *, order_line_ref: str, now: datetime) -> int:
    """Revoke every key handed out to an order line (cancellation); returns how many."""
    keys = (
        session.execute(
            select(ProductKey).where(
                ProductKey.order_line_ref == order_line_ref,
                ProductKey.status == KeyStatus.RESERVED,
            )
        )
        .scalars()
        .all()
    )
    for key in keys:
        key.status = KeyStatus.REVOKED
        key.revoked_at = now
    return len(keys)


# ---------------------------------------------------------------------------------------------
# Artifacts

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """A file name the storage keys accept: other characters become '_'."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = _UNSAFE_FILE_CHARS.sub("_", base).lstrip("._") or "file"
    return cleaned[:200]


def upload_artifact(
    session: Session,
    *,
    settings: Settings,
    product_id: str,
    sku_id: str,
    version: str,
    language: str,
    bitness: str,
    file_name: str,
    fileobj: IO[bytes],
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None = None,
) -> Artifact:
    """Store a downloadable file for a software SKU (replacing the same version, language and
    bitness) and record its size and SHA-256. Audited."""
    from partnercenter.storage import get_storage

    sku = get_sku(session, product_id=product_id, sku_id=sku_id)
    if sku.product.product_type not in SOFTWARE_TYPES:
        raise InvalidArtifact(
            N_("%(sku)s is not software and has no downloads.", sku=f"{product_id}:{sku_id}"),
            source="skuId",
        )
    if version not in sku.versions:
        raise InvalidArtifact(
            N_(
                "The version '%(version)s' is not one of the SKU's versions (%(versions)s).",
                version=version,
                versions=", ".join(sku.versions) or "—",
            ),
            source="version",
        )
    if not _LANGUAGE.match(language or ""):
        raise InvalidArtifact(
            N_("'%(value)s' is not a language tag such as en-US or es-ES.", value=language),
            source="language",
        )
    try:
        bits = Bitness(bitness)
    except ValueError:
        raise InvalidArtifact(
            N_("'%(value)s' is not one of x64, x86, arm64.", value=bitness), source="bitness"
        ) from None
    name = safe_file_name(file_name)
    # A fresh key per upload: a download in flight keeps reading the file it started with.
    storage_key = (
        f"artifacts/{_segment(product_id)}/{_segment(sku_id)}/{_segment(version)}/"
        f"{language}/{bits.value}/{uuid.uuid4().hex}/{name}"
    )
    stored = get_storage(settings).put(storage_key, fileobj)
    existing = session.execute(
        select(Artifact).where(
            Artifact.sku_pk == sku.id,
            Artifact.version == version,
            Artifact.language == language,
            Artifact.bitness == bits,
        )
    ).scalar_one_or_none()
    if existing is None:
        artifact = Artifact(
            id=uuid.uuid4(),
            sku_pk=sku.id,
            version=version,
            language=language,
            bitness=bits,
            file_name=name,
            size=stored.size,
            sha256=stored.sha256,
            storage_key=storage_key,
            uploaded_at=now,
        )
        session.add(artifact)
    else:
        artifact = existing
        artifact.file_name = name
        artifact.size = stored.size
        artifact.sha256 = stored.sha256
        artifact.storage_key = storage_key
        artifact.uploaded_at = now
    audit.record(
        session,
        at=now,
        resource_type="software_artifact",
        operation_type="upload_software_artifact",
        tenant_id=actor.tenant_id if actor else None,
        actor=actor,
        request=request,
        user_principal_name=None if actor else "cli",
        details={
            "productId": product_id,
            "skuId": sku_id,
            "version": version,
            "language": language,
            "bitness": bits.value,
            "fileName": name,
            "size": stored.size,
            "sha256": stored.sha256,
        },
    )
    return artifact


def _segment(value: str) -> str:
    return _UNSAFE_FILE_CHARS.sub("_", value).lstrip("._") or "x"


def list_artifacts(
    session: Session, *, product_id: str, sku_id: str, include_inactive: bool = True
) -> list[Artifact]:
    sku = get_sku(session, product_id=product_id, sku_id=sku_id, include_inactive=include_inactive)
    return list(
        session.execute(
            select(Artifact)
            .where(Artifact.sku_pk == sku.id)
            .order_by(Artifact.version.desc(), Artifact.language, Artifact.bitness)
        ).scalars()
    )


def get_artifact(
    session: Session, *, product_id: str, sku_id: str, version: str, language: str, bitness: str
) -> Artifact:
    """The SKU's file for one version, language and bitness (one statement when it exists)."""
    artifact = session.execute(
        select(Artifact)
        .join(Sku, Sku.id == Artifact.sku_pk)
        .where(
            Sku.product_id == product_id,
            Sku.sku_id == sku_id,
            Artifact.version == version,
            Artifact.language == language,
            Artifact.bitness == bitness,
        )
    ).scalar_one_or_none()
    if artifact is None:
        # Say which part is unknown: the product, the SKU, or only the file.
        get_sku(session, product_id=product_id, sku_id=sku_id, include_inactive=True)
        raise ArtifactNotFound(
            N_(
                "No file for version %(version)s, language %(language)s, bitness %(bitness)s.",
                version=version,
                language=language,
                bitness=bitness,
            )
        )
    return artifact


# Separators of a SKU's files read as one string (``software_versions_columns``): control
# characters, which no version, language tag or bitness contains (``upload_artifact``).
_FIELD, _RECORD = "\x1f", "\x1e"


def software_versions_columns(product_id: Any, sku_id: Any) -> tuple[Any, Any]:
    """A SKU's versions and files as two scalar subqueries, for a statement that reads them
    with other rows (licensing reads them with each purchase); :func:`offered_versions` turns
    their values into :func:`software_versions`' list.

    ``product_id`` and ``sku_id``: columns of the enclosing statement (an order line's), or
    values. The first subquery is the SKU's ``versions`` (NULL: no such SKU), the second its
    files' version, language and bitness in one string (NULL: no file).
    """
    of_sku = (Sku.product_id == product_id, Sku.sku_id == sku_id)
    versions = select(Sku.versions).where(*of_sku).scalar_subquery()
    record = (
        Artifact.version.concat(_FIELD)
        .concat(Artifact.language)
        .concat(_FIELD)
        .concat(cast_(Artifact.bitness, String))
    )
    files = (
        select(aggregate_strings(record, _RECORD))
        .join(Sku, Sku.id == Artifact.sku_pk)
        .where(*of_sku)
        .scalar_subquery()
    )
    return versions, files


def offered_versions(
    sku_versions: list[str] | None, files: str | None
) -> list[dict[str, Any]] | None:
    """``[{version, languages, bitness}]`` from :func:`software_versions_columns`' values: the
    SKU's versions in its order, then versions only files have, newest first; None when
    there is no such SKU."""
    if sku_versions is None:
        return None
    found: dict[str, tuple[set[str], set[str]]] = {v: (set(), set()) for v in sku_versions}
    records = [r.split(_FIELD) for r in files.split(_RECORD)] if files else []
    for version, language, bitness in sorted(records, key=lambda r: r[0], reverse=True):
        langs, bits = found.setdefault(version, (set(), set()))
        langs.add(language)
        bits.add(bitness)
    return [
        {"version": v, "languages": sorted(langs), "bitness": sorted(bits)}
        for v, (langs, bits) in found.items()
    ]


def software_versions(session: Session, *, product_id: str, sku_id: str) -> list[dict[str, Any]]:
    """``[{version, languages, bitness}]`` the SKU offers for download, newest version first.

    One statement (:func:`software_versions_columns`). Raises :class:`ProductNotFound` or
    :class:`SkuNotFound` when there is no such SKU (inactive ones count).
    """
    row = session.execute(select(*software_versions_columns(product_id, sku_id))).one()
    versions = offered_versions(row[0], row[1])
    if versions is None:  # say which is unknown, the product or the SKU
        get_sku(session, product_id=product_id, sku_id=sku_id, include_inactive=True)
        raise SkuNotFound(  # pragma: no cover - get_sku raised
            f"The SKU '{sku_id}' of product '{product_id}' was not found.", source="skuId"
        )
    return versions


def find_keys_by_ref(session: Session, *, order_line_ref: str) -> list[uuid.UUID]:
    """Ids of the keys handed out to an order line (any status)."""
    return list(
        session.execute(
            select(ProductKey.id)
            .where(ProductKey.order_line_ref == order_line_ref)
            .order_by(ProductKey.reserved_at)
        ).scalars()
    )


def products_by_ids(session: Session, ids: Iterable[str]) -> dict[str, Product]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.execute(select(Product).where(Product.id.in_(wanted))).scalars()
    return {p.id: p for p in rows}


@dataclass(frozen=True)
class PricingCatalog:
    """What pricing a cart reads, loaded once: products (with SKUs, availabilities, markets)
    and the market's tax row (None: the market has no rate, 0 %)."""

    products: dict[str, Product]
    tax: TaxRate | None
    stamp: str | None = None
    """The catalog's version stamp read with them (:class:`CatalogVersion`); None when the
    cart named no product (nothing to cache)."""

    @property
    def rate(self) -> Decimal:
        """The market's tax rate as a fraction (0.2 for 20 %)."""
        return Decimal(self.tax.rate_ppm) / PPM if self.tax else Decimal(0)


def load_for_pricing(
    session: Session,
    *,
    product_ids: Iterable[str],
    country: str,
    sku_ids: Iterable[str] | None = None,
    availability_ids: Iterable[str] | None = None,
) -> PricingCatalog:
    """Read every product of a cart and the market's tax rate at once.

    While the caller holds the result, :func:`quote` finds all of it in the session's
    identity map and reads nothing more, however many lines the cart has: two statements
    (products with SKUs and availabilities, then their markets).

    With ``sku_ids`` (checkout: nothing else of the catalog is read in that session) it is one
    statement: a product's ``skus`` hold only those SKUs (each with all its availabilities)
    and the availabilities' ``markets`` only ``country`` and its currency selector, all that
    pricing in that market reads. Do not list the catalog from such a session.
    ``availability_ids`` as well: a SKU's ``availabilities`` hold only those named and those
    offered in the market (the others never count in ``_offered``), not all of them.
    """
    wanted = sorted({p for p in product_ids if p})
    code = normalise_country(country)
    if sku_ids is None:
        loads = (
            joinedload(Product.skus)
            .joinedload(Sku.availabilities)
            .selectinload(Availability.market_rows)
        )
    else:
        selectors = _market_selectors(code)
        availabilities: Any = Sku.availabilities
        if availability_ids is not None:
            in_market = select(AvailabilityMarket.availability_pk).where(
                AvailabilityMarket.market.in_(selectors)
            )
            availabilities = Sku.availabilities.and_(
                or_(
                    Availability.availability_id.in_(sorted(set(availability_ids)) or [""]),
                    Availability.id.in_(in_market),
                )
            )
        loads = (
            joinedload(Product.skus.and_(Sku.sku_id.in_(sorted(set(sku_ids)) or [""])))
            .joinedload(availabilities)
            .joinedload(Availability.market_rows.and_(AvailabilityMarket.market.in_(selectors)))
        )
    stmt = (
        select(Product, TaxRate, version_stamp())
        .outerjoin(TaxRate, TaxRate.country == code)
        .options(loads)
        .where(Product.id.in_(wanted or [""]))
    )
    products: dict[str, Product] = {}
    tax: TaxRate | None = None
    stamp: str | None = None
    for product, rate, read_stamp in session.execute(stmt).unique().all():
        products[product.id] = product
        tax, stamp = rate, read_stamp
    if not products:
        tax = session.get(TaxRate, code)
    return PricingCatalog(products, tax, stamp)


def version_stamp() -> ScalarSelect[str]:
    """The catalog's version stamp as a scalar subquery, to read beside another statement's
    rows (:class:`CatalogVersion`: it changes with every write of what pricing reads)."""
    return select(CatalogVersion.stamp).where(CatalogVersion.id == 1).scalar_subquery()


_Row = TypeVar("_Row", Product, Sku, Availability)


def _transient_copy(obj: _Row) -> _Row:
    """A copy of a loaded catalog row's columns, in no session (its relationships unset)."""
    columns = inspect(obj).mapper.column_attrs
    return type(obj)(**{c.key: getattr(obj, c.key) for c in columns})


class PricingCache:
    """Catalog items resolved in a market, kept across requests in this process.

    Keyed on the catalog's version stamp (:class:`CatalogVersion`), the market and the
    catalog item id as the cart names it: a write of products, SKUs, availabilities, their
    markets or tax rates, on any node, changes the stamp in its own transaction, so the next
    checkout that reads the new stamp misses and reads the catalog again. Only items that
    resolved are kept (an error is worked out again each time). The entries hold copies of
    the rows in no session, read by any thread and never changed. Entries of an older stamp
    are dropped when a newer one is stored; at most ``limit`` entries.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._stamp: str | None = None
        self._items: dict[tuple[str, str, str], ResolvedAvailability] = {}

    def get(self, stamp: str, country: str, catalog_item_id: str) -> ResolvedAvailability | None:
        """The item stored under this stamp, market and id, or None."""
        return self._items.get((stamp, country, catalog_item_id))

    def put(
        self, stamp: str, country: str, catalog_item_id: str, item: ResolvedAvailability
    ) -> None:
        """Keep a copy of ``item`` (resolved from the catalog as of ``stamp``)."""
        items = self._items
        if stamp != self._stamp or len(items) >= self._limit:
            # A new catalog (or a full cache): start again; a request still on the old stamp
            # misses and reads the catalog as before.
            items = {}
            self._items, self._stamp = items, stamp
        items[(stamp, country, catalog_item_id)] = ResolvedAvailability(
            product=_transient_copy(item.product),
            sku=_transient_copy(item.sku),
            availability=_transient_copy(item.availability),
            country=item.country,
            currency=item.currency,
            tax_rate=item.tax_rate,
            tax_inclusive=item.tax_inclusive,
            list_price=item.list_price,
            unit_price=item.unit_price,
        )

    def clear(self) -> None:
        """Forget every entry."""
        self._items, self._stamp = {}, None


pricing_cache = PricingCache()
