"""The catalog document: one YAML or JSON file with products, SKUs, availabilities, prices,
cancellation policies and tax rates.

:func:`validate` checks everything and lists every error with its path (and line, for YAML):
``products[3].skus[0].availabilities[2].price: JPY has no decimals``. :func:`apply` imports a
valid document in the caller's transaction; importing the same document again changes
nothing. :func:`export` writes the catalog back as the same kind of document.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from partnercenter.audit import services as audit
from partnercenter.catalog.errors import CatalogDocumentInvalid
from partnercenter.catalog.models import (
    Availability,
    AvailabilityMarket,
    BillingCycle,
    CreditRule,
    KeySource,
    Product,
    ProductType,
    Sku,
    TaxRate,
)
from partnercenter.catalog.services import (
    CURRENCY_SELECTOR,
    SOFTWARE_TYPES,
    TERMS,
    cancellation_policy,
    ppm_to_percent,
)
from partnercenter.context import Actor, RequestInfo
from partnercenter.i18n import DEFAULT as DEFAULT_LANGUAGE
from partnercenter.i18n import N_, Lines, Market, Message, Verbatim, localize
from partnercenter.markets import (
    BILLING_CURRENCIES,
    all_countries,
    azure_reservations_unavailable,
    market_currency,
)
from partnercenter.money import from_minor, is_exact, minor_units, to_minor

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


# Amounts are checked after the structure (see _amount), so one bad amount does not hide
# the other errors of its availability.
Amount = Any


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


_M = TypeVar("_M", bound=_Doc)


class CapDoc(_Doc):
    amount: Amount
    currency: StrictStr
    periodDays: StrictInt = 365


class SupportRequestDoc(_Doc):
    amount: Amount
    currency: StrictStr


class PolicyDoc(_Doc):
    windowDays: StrictInt | None = None
    fullCreditDays: StrictInt = 0
    creditRule: CreditRule
    feePercent: Amount = "0"
    cap: CapDoc | None = None
    supportRequestAbove: SupportRequestDoc | None = None


class AvailabilityDoc(_Doc):
    id: StrictStr
    markets: list[StrictStr] = Field(min_length=1)
    currency: StrictStr
    term: StrictStr | None = None
    billingCycle: BillingCycle
    price: Amount


class SkuDoc(_Doc):
    id: StrictStr
    title: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = ""
    unit: StrictStr = Field("", max_length=60)
    minQuantity: StrictInt = 1
    maxQuantity: StrictInt = 1
    keySource: KeySource | None = None
    lowStockThreshold: StrictInt = 10
    versions: list[StrictStr] = Field(default_factory=list)
    availabilities: list[AvailabilityDoc] = Field(default_factory=list)


class ProductDoc(_Doc):
    id: StrictStr
    title: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = ""
    productType: ProductType
    publisher: StrictStr = Field("", max_length=200)
    cancellationPolicy: PolicyDoc | None = None
    skus: list[SkuDoc] = Field(default_factory=list)


class CatalogDoc(_Doc):
    version: Literal[1] = 1
    taxRates: dict[StrictStr, Amount] | None = None
    products: list[ProductDoc] | None = None


# ---------------------------------------------------------------------------------------------
# Parsing, with a line number for every path of a YAML document


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads decimals exactly (never as binary floats)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Decimal(str(value).replace("_", ""))


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _lines(node: yaml.Node | None, path: str = "") -> Iterator[tuple[str, int]]:
    if node is None:
        return
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            yield from _lines(value, f"{path}.{name}" if path else name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _lines(item, f"{path}[{index}]")


@dataclass
class Parsed:
    data: Any
    lines: dict[str, int] = field(default_factory=dict)


def parse(text: str, *, filename: str = "") -> Parsed:
    """Read a YAML or JSON document; a syntax error is reported with its line."""
    stripped = text.lstrip()
    if filename.endswith(".json") or (stripped.startswith("{") and not filename.endswith(".yaml")):
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise CatalogDocumentInvalid(
                [
                    {
                        "path": "",
                        "line": exc.lineno,
                        "column": exc.colno,
                        "message": N_(
                            "invalid JSON: %(problem)s at line %(line)s, column %(column)s",
                            problem=Verbatim(exc.msg),
                            line=exc.lineno,
                            column=exc.colno,
                        ),
                        "summary": N_("invalid JSON"),
                        "detail": exc.msg,
                    }
                ]
            ) from None
    else:
        try:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise CatalogDocumentInvalid(
                [
                    {
                        "path": "",
                        "line": mark.line + 1 if mark else None,
                        "message": N_("invalid YAML: %(problem)s", problem=Verbatim(problem)),
                        "summary": N_("invalid YAML"),
                        "detail": problem,
                    }
                ]
            ) from None
    lines: dict[str, int] = {}
    with contextlib.suppress(yaml.YAMLError):
        lines = dict(_lines(yaml.compose(text, Loader=_Loader)))
    return Parsed(data=data, lines=lines)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class _Errors:
    lines: dict[str, int]
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        probe = path
        line = self.lines.get(probe)
        while line is None and probe:
            probe = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
            line = self.lines.get(probe)
        self.items.append({"path": path, "line": line, "message": message})


def _amount(errors: _Errors, path: str, value: Any, currency: str | None) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        errors.add(path, N_('expected a decimal amount such as "12.50"'))
        return None
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        errors.add(path, N_("'%(value)s' is not a decimal amount", value=str(value)))
        return None
    if not amount.is_finite():
        errors.add(path, N_("'%(value)s' is not a decimal amount", value=str(value)))
        return None
    if amount < 0:
        errors.add(path, N_("an amount cannot be negative"))
        return None
    if currency and currency in BILLING_CURRENCIES and not is_exact(amount, currency):
        places = minor_units(currency)
        errors.add(
            path,
            N_("%(currency)s has no decimals", currency=currency)
            if places == 0
            else N_("%(currency)s has %(places)s decimals", currency=currency, places=str(places)),
        )
        return None
    return amount


def _currency(errors: _Errors, path: str, value: str) -> bool:
    if value not in BILLING_CURRENCIES:
        errors.add(
            path,
            N_(
                "'%(value)s' is not a currency any market is billed in (%(currencies)s)",
                value=str(value),
                currencies=", ".join(sorted(BILLING_CURRENCIES)),
            ),
        )
        return False
    return True


def _percent(errors: _Errors, path: str, value: Any) -> Decimal | None:
    amount = _amount(errors, path, value, None)
    if amount is None:
        return None
    if amount > 100:
        errors.add(path, N_("a percentage is at most 100"))
        return None
    if amount * 10_000 != (amount * 10_000).to_integral_value():
        errors.add(path, N_("a percentage has at most four decimals"))
        return None
    return amount


def _allowed_terms(product_type: ProductType) -> set[tuple[str | None, BillingCycle]]:
    if product_type == ProductType.PERPETUAL_SOFTWARE:
        return {(None, BillingCycle.ONE_TIME)}
    combos: set[tuple[str | None, BillingCycle]] = set()
    for term in ("P1Y", "P3Y"):
        combos.add((term, BillingCycle.ONE_TIME))
        combos.add((term, BillingCycle.MONTHLY))
        if product_type == ProductType.SERVER_SUBSCRIPTION:
            combos.add((term, BillingCycle.ANNUAL))
    if product_type == ProductType.SERVER_SUBSCRIPTION:
        combos.add(("P1M", BillingCycle.MONTHLY))
    return combos


BAD_ID = N_("ids are 1-40 letters, digits, '-' or '_'")


def _describe_combo(term: str | None, cycle: BillingCycle) -> str:
    """``P1Y billed monthly`` (the document's own codes), translated around the codes."""
    if term is None:
        return N_("no term billed '%(cycle)s'", cycle=cycle.value)
    return N_("'%(term)s' billed '%(cycle)s'", term=term, cycle=cycle.value)


def _check_markets(
    errors: _Errors, path: str, a: AvailabilityDoc, product_type: ProductType | None
) -> None:
    countries = all_countries()
    blocked = azure_reservations_unavailable()
    seen: set[str] = set()
    for i, market in enumerate(a.markets):
        mpath = f"{path}.markets[{i}]"
        if market in seen:
            errors.add(mpath, N_("'%(value)s' is listed twice", value=market))
            continue
        seen.add(market)
        if market.startswith(CURRENCY_SELECTOR):
            cur = market[len(CURRENCY_SELECTOR) :]
            if cur not in BILLING_CURRENCIES:
                errors.add(
                    mpath, N_("'%(value)s' is not a currency any market is billed in", value=cur)
                )
            elif cur != a.currency:
                errors.add(
                    mpath,
                    N_(
                        "the selector names %(named)s but the price is in %(currency)s",
                        named=cur,
                        currency=a.currency,
                    ),
                )
            continue
        if market not in countries:
            errors.add(
                mpath,
                N_(
                    "'%(value)s' is not an ISO 3166-1 alpha-2 country code "
                    "(or a selector such as currency:EUR)",
                    value=market,
                ),
            )
            continue
        if market_currency(market) != a.currency:
            errors.add(
                mpath,
                N_(
                    "%(market)s is billed in %(billed)s, not %(currency)s",
                    market=Market(market),
                    billed=market_currency(market),
                    currency=a.currency,
                ),
            )
        if product_type == ProductType.AZURE_RESERVATION and market in blocked:
            errors.add(
                mpath,
                N_(
                    "Azure reservations are not available in market %(market)s",
                    market=Market(market),
                ),
            )


# Pydantic's messages by error type, for readers of another language: the English stays
# pydantic's own (what the API has always said), the Spanish is the catalogue's.
_VALIDATION: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("Input should have at least %(min_length)s characters"),
    "string_too_long": N_("Input should have at most %(max_length)s characters"),
    "string_pattern_mismatch": N_("Input should match the pattern %(pattern)s"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer"),
    "int_from_float": N_("Input should be a valid integer"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean"),
    "decimal_type": N_("Input should be a valid decimal"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary"),
    "enum": N_("Input should be %(expected)s"),
    "literal_error": N_("Input should be %(expected)s"),
    "greater_than_equal": N_("Input should be greater than or equal to %(ge)s"),
    "less_than_equal": N_("Input should be less than or equal to %(le)s"),
    "greater_than": N_("Input should be greater than %(gt)s"),
    "less_than": N_("Input should be less than %(lt)s"),
}
_QUOTES_HINT = N_('write it in quotes, e.g. "0001": YAML reads 0001 as the number 1')


class _Validation(str):
    """One of pydantic's messages: its English as pydantic wrote it, translated by error type
    (:data:`_VALIDATION`) with the values pydantic names; an unknown type reads generically."""

    kind: str
    values: dict[str, object]
    hint: str

    def __new__(cls, english: str, kind: str, values: dict[str, object], hint: str) -> _Validation:
        obj = super().__new__(cls, f"{english} ({hint})" if hint else english)
        obj.kind, obj.values, obj.hint = kind, values, hint
        return obj

    def localize(self, lang: str) -> str:
        if lang == DEFAULT_LANGUAGE:
            return str(self)
        template = _VALIDATION.get(self.kind, N_("This value is not valid here."))
        values = dict(self.values)
        if "expected" in values:  # pydantic lists the choices as "'a', 'b' or 'c'"
            values["expected"] = Verbatim(
                str(values["expected"]).replace(" or ", " " + localize(N_("or"), lang) + " ")
            )
        text = localize(Message(template, values) if values else template, lang)
        return f"{text} ({localize(self.hint, lang)})" if self.hint else text


def _model_errors(errors: _Errors, path: str, exc: ValidationError) -> None:
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        # Constrained types add the validator's name to the location: drop it.
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        english = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        kind = str(err.get("type", ""))
        values: dict[str, object] = {k: Verbatim(str(v)) for k, v in (err.get("ctx") or {}).items()}
        hint = ""
        if kind == "string_type" and isinstance(err.get("input"), (int, Decimal)):
            # YAML reads 0001 as the number 1: say how to keep it text.
            hint = _QUOTES_HINT
        sub = _path(loc)
        if sub and not sub.startswith("["):
            sub = "." + sub
        message = _Validation(english, kind, values, hint)
        errors.add(f"{path}{sub}" if path else sub.lstrip("."), message)


def _part(
    errors: _Errors, model: type[_M], data: Any, path: str, children: str | None = None
) -> _M | None:
    """One level of the document, validated on its own so every level reports its errors."""
    if not isinstance(data, dict):
        errors.add(path, N_("expected a mapping (key: value pairs)"))
        return None
    body = dict(data)
    if children is not None:
        body[children] = []
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        _model_errors(errors, path, exc)
        return None


def _children(errors: _Errors, data: Any, key: str, path: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add(f"{path}.{key}" if path else key, N_("expected a list"))
        return []
    return value


def _unique_id(
    errors: _Errors, seen: dict[str, int], data: Any, path: str, collection: str
) -> None:
    """Ids are unique at their level; checked on the raw data so broken entries count too."""
    value = data.get("id") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return
    if value in seen:
        errors.add(
            f"{path}.id",
            N_(
                "'%(value)s' is also '%(other)s'", value=value, other=f"{collection}[{seen[value]}]"
            ),
        )
    else:
        seen[value] = int(path.rsplit("[", 1)[1].rstrip("]"))


def validate(data: Any, *, lines: dict[str, int] | None = None) -> CatalogDoc:
    """The document if it is valid; otherwise :class:`CatalogDocumentInvalid` listing every
    error with its path (and line)."""
    errors = _Errors(lines or {})
    if not isinstance(data, dict):
        errors.add("", N_("the document must be a mapping with 'products' and/or 'taxRates'"))
        raise CatalogDocumentInvalid(errors.items)
    head = _part(errors, CatalogDoc, {k: v for k, v in data.items() if k != "products"}, "")
    parts: list[
        tuple[int, ProductDoc | None, list[tuple[int, SkuDoc, list[tuple[int, AvailabilityDoc]]]]]
    ] = []
    product_ids: dict[str, int] = {}
    for p_index, p_data in enumerate(_children(errors, data, "products", "")):
        ppath = f"products[{p_index}]"
        product = _part(errors, ProductDoc, p_data, ppath, "skus")
        _unique_id(errors, product_ids, p_data, ppath, "products")
        skus = []
        sku_ids: dict[str, int] = {}
        for s_index, s_data in enumerate(_children(errors, p_data, "skus", ppath)):
            spath = f"{ppath}.skus[{s_index}]"
            sku = _part(errors, SkuDoc, s_data, spath, "availabilities")
            _unique_id(errors, sku_ids, s_data, spath, "skus")
            avails = []
            avail_ids: dict[str, int] = {}
            for a_index, a_data in enumerate(_children(errors, s_data, "availabilities", spath)):
                apath = f"{spath}.availabilities[{a_index}]"
                a = _part(errors, AvailabilityDoc, a_data, apath)
                _unique_id(errors, avail_ids, a_data, apath, "availabilities")
                if a is not None:
                    avails.append((a_index, a))
            if sku is not None:
                skus.append((s_index, sku, avails))
        # A product that failed still has its SKUs checked, so their errors show too.
        parts.append((p_index, product, skus))
    doc = head or CatalogDoc()

    if doc.taxRates is not None:
        countries = all_countries()
        for code, value in doc.taxRates.items():
            path = f"taxRates.{code}"
            if code not in countries:
                errors.add(
                    path, N_("'%(value)s' is not an ISO 3166-1 alpha-2 country code", value=code)
                )
            _percent(errors, path, value)

    for p_index, product, skus in parts:
        ppath = f"products[{p_index}]"
        product_type = product.productType if product is not None else None
        if product is not None:
            if not _ID.match(product.id):
                errors.add(f"{ppath}.id", BAD_ID)
            _check_policy(errors, f"{ppath}.cancellationPolicy", product)
        for s_index, sku, avails in skus:
            spath = f"{ppath}.skus[{s_index}]"
            if not _ID.match(sku.id):
                errors.add(f"{spath}.id", BAD_ID)
            _check_sku(errors, spath, sku, product_type)
            claimed: dict[tuple[str | None, BillingCycle, str], int] = {}
            allowed = _allowed_terms(product_type) if product_type else None
            for a_index, a in avails:
                apath = f"{spath}.availabilities[{a_index}]"
                if not _ID.match(a.id):
                    errors.add(f"{apath}.id", BAD_ID)
                currency_ok = _currency(errors, f"{apath}.currency", a.currency)
                if a.term is not None and a.term not in TERMS:
                    errors.add(
                        f"{apath}.term",
                        N_(
                            "'%(value)s' is not one of %(terms)s",
                            value=a.term,
                            terms=", ".join(f"'{t}'" for t in TERMS),
                        ),
                    )
                elif allowed is not None and (a.term, a.billingCycle) not in allowed:
                    offered = Lines(
                        sorted((_describe_combo(t, c) for t, c in allowed), key=str), "; "
                    )
                    errors.add(
                        f"{apath}.billingCycle",
                        N_(
                            "%(combo)s is not allowed for '%(type)s' (allowed: %(offered)s)",
                            combo=_describe_combo(a.term, a.billingCycle),
                            type=product_type.value if product_type else "",
                            offered=offered,
                        ),
                    )
                _amount(errors, f"{apath}.price", a.price, a.currency if currency_ok else None)
                if currency_ok:
                    _check_markets(errors, apath, a, product_type)
                for market in a.markets:
                    slot = (a.term, a.billingCycle, market)
                    if slot in claimed and claimed[slot] != a_index:
                        errors.add(
                            f"{apath}.markets",
                            N_(
                                "'%(market)s' already has '%(other)s' for %(combo)s",
                                market=market,
                                other=f"availabilities[{claimed[slot]}]",
                                combo=_describe_combo(a.term, a.billingCycle),
                            ),
                        )
                    claimed.setdefault(slot, a_index)
    if errors.items:
        ordered = sorted(_dedupe(errors.items), key=lambda e: e["line"] or 10**9)
        raise CatalogDocumentInvalid(ordered)
    if "products" in data:
        doc.products = [
            product.model_copy(
                update={
                    "skus": [
                        sku.model_copy(update={"availabilities": [a for _, a in avails]})
                        for _, sku, avails in skus
                    ]
                }
            )
            for _, product, skus in parts
            if product is not None
        ]
    return doc


def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item["path"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _check_policy(errors: _Errors, path: str, product: ProductDoc) -> None:
    policy = product.cancellationPolicy
    if policy is None:
        return
    if policy.windowDays is not None and policy.windowDays < 0:
        errors.add(f"{path}.windowDays", N_("the window cannot be negative"))
    if policy.fullCreditDays < 0:
        errors.add(f"{path}.fullCreditDays", N_("cannot be negative"))
    _percent(errors, f"{path}.feePercent", policy.feePercent)
    if policy.creditRule == CreditRule.NONE and policy.windowDays not in (None, 0):
        errors.add(f"{path}.creditRule", N_("'none' credits nothing: set windowDays to 0"))
    for name, money in (("cap", policy.cap), ("supportRequestAbove", policy.supportRequestAbove)):
        if money is None:
            continue
        ok = _currency(errors, f"{path}.{name}.currency", money.currency)
        _amount(errors, f"{path}.{name}.amount", money.amount, money.currency if ok else None)
    if policy.cap is not None and policy.cap.periodDays < 1:
        errors.add(f"{path}.cap.periodDays", N_("must be at least 1 day"))


def _check_sku(errors: _Errors, spath: str, sku: SkuDoc, product_type: ProductType | None) -> None:
    if sku.minQuantity < 1:
        errors.add(f"{spath}.minQuantity", N_("must be at least 1"))
    if sku.maxQuantity < sku.minQuantity:
        errors.add(
            f"{spath}.maxQuantity",
            N_("must be at least minQuantity (%(min)s)", min=str(sku.minQuantity)),
        )
    if sku.maxQuantity > 100_000:
        errors.add(f"{spath}.maxQuantity", N_("must be at most 100000"))
    if sku.lowStockThreshold < 0:
        errors.add(f"{spath}.lowStockThreshold", N_("cannot be negative"))
    seen: set[str] = set()
    for i, v in enumerate(sku.versions):
        if not _VERSION.match(v):
            errors.add(f"{spath}.versions[{i}]", N_("versions are 1-40 letters, digits, '.', '-'"))
        elif v in seen:
            errors.add(f"{spath}.versions[{i}]", N_("'%(value)s' is listed twice", value=v))
        seen.add(v)
    if product_type is None:
        return
    source = sku.keySource or _default_key_source(product_type)
    if source != KeySource.NONE and not sku.versions:
        errors.add(
            f"{spath}.versions",
            N_("a SKU with keySource '%(source)s' needs a version", source=source.value),
        )
    if source != KeySource.NONE and product_type not in SOFTWARE_TYPES:
        errors.add(
            f"{spath}.keySource",
            N_("'%(type)s' products have no keys", type=product_type.value),
        )


def _default_key_source(product_type: ProductType) -> KeySource:
    if product_type in (ProductType.PERPETUAL_SOFTWARE, ProductType.SERVER_SUBSCRIPTION):
        return KeySource.INVENTORY
    return KeySource.NONE


def default_policy(product_type: ProductType) -> PolicyDoc:
    """The seed's rules, and Partner Center's own for Azure reservations."""
    if product_type == ProductType.PERPETUAL_SOFTWARE:
        return PolicyDoc(windowDays=30, fullCreditDays=30, creditRule=CreditRule.FULL)
    if product_type == ProductType.SERVER_SUBSCRIPTION:
        return PolicyDoc(windowDays=30, creditRule=CreditRule.PRORATED)
    if product_type == ProductType.SOFTWARE_PLAN:
        return PolicyDoc(windowDays=0, creditRule=CreditRule.NONE)
    return PolicyDoc(
        windowDays=None,
        fullCreditDays=5,
        creditRule=CreditRule.PRORATED_LESS_FEE,
        feePercent="12",
        cap=CapDoc(amount="50000", currency="USD", periodDays=365),
    )


# ---------------------------------------------------------------------------------------------
# Applying


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    retired: int = 0
    tax_rates: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.retired + self.tax_rates

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "created": self.created,
            "updated": self.updated,
            "retired": self.retired,
            "taxRatesChanged": self.tax_rates,
            "details": self.details,
            "summary": f"{self.changed} changed",
        }


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _policy_columns(policy: PolicyDoc) -> dict[str, Any]:
    cap, sr = policy.cap, policy.supportRequestAbove
    return {
        "cancel_window_days": policy.windowDays,
        "cancel_full_credit_days": policy.fullCreditDays,
        "cancel_credit_rule": policy.creditRule,
        "cancel_fee_ppm": int(Decimal(str(policy.feePercent)) * 10_000),
        "cancel_cap_minor": to_minor(Decimal(str(cap.amount)), cap.currency) if cap else None,
        "cancel_cap_currency": cap.currency if cap else None,
        "cancel_cap_period_days": cap.periodDays if cap else None,
        "support_request_above_minor": (
            to_minor(Decimal(str(sr.amount)), sr.currency) if sr else None
        ),
        "support_request_above_currency": sr.currency if sr else None,
    }


def apply(
    session: Session,
    *,
    doc: CatalogDoc,
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None = None,
) -> ImportReport:
    """Import a validated document in the caller's transaction; returns what changed."""
    report = ImportReport()
    if doc.taxRates is not None:
        _apply_tax_rates(session, doc.taxRates, now, report)
    if doc.products is not None:
        _apply_products(session, doc.products, now, report)
    if report.changed:
        audit.record(
            session,
            at=now,
            resource_type="catalog",
            operation_type="import_catalog",
            tenant_id=actor.tenant_id if actor else None,
            actor=actor,
            request=request,
            user_principal_name=None if actor else "cli",
            details={k: v for k, v in report.to_json().items() if k != "details"},
        )
    return report


def _apply_tax_rates(
    session: Session, rates: dict[str, Any], now: datetime, report: ImportReport
) -> None:
    existing = {r.country: r for r in session.execute(select(TaxRate)).scalars()}
    for code, value in rates.items():
        ppm = int(Decimal(str(value)) * 10_000)
        row = existing.pop(code, None)
        if row is None:
            session.add(TaxRate(country=code, rate_ppm=ppm, updated_at=now))
        elif row.rate_ppm != ppm:
            row.rate_ppm = ppm
            row.updated_at = now
        else:
            continue
        report.tax_rates += 1
        report.details.append(N_("tax rate %(code)s: %(value)s %%", code=code, value=str(value)))
    for code, row in existing.items():
        session.delete(row)
        report.tax_rates += 1
        report.details.append(N_("tax rate %(code)s removed", code=code))


def _apply_products(
    session: Session, products: list[ProductDoc], now: datetime, report: ImportReport
) -> None:
    existing = {
        p.id: p
        for p in session.execute(
            select(Product).options(
                selectinload(Product.skus)
                .selectinload(Sku.availabilities)
                .selectinload(Availability.market_rows)
            )
        ).scalars()
    }
    for position, pdoc in enumerate(products):
        policy = pdoc.cancellationPolicy or default_policy(pdoc.productType)
        values = {
            "title": pdoc.title,
            "description": pdoc.description,
            "product_type": pdoc.productType,
            "publisher": pdoc.publisher,
            "position": position,
            "is_active": True,
            **_policy_columns(policy),
        }
        product = existing.pop(pdoc.id, None)
        if product is None:
            product = Product(id=pdoc.id, created_at=now, updated_at=now, **values)
            session.add(product)
            report.created += 1
            report.details.append(N_("product %(id)s created", id=pdoc.id))
        elif _assign(product, values):
            product.updated_at = now
            report.updated += 1
            report.details.append(N_("product %(id)s updated", id=pdoc.id))
        _apply_skus(product, pdoc, report)
    for product in existing.values():
        if product.is_active:
            product.is_active = False
            product.updated_at = now
            report.retired += 1
            report.details.append(N_("product %(id)s retired", id=product.id))


def _apply_skus(product: Product, pdoc: ProductDoc, report: ImportReport) -> None:
    existing = {s.sku_id: s for s in product.skus}
    for position, sdoc in enumerate(pdoc.skus):
        values = {
            "title": sdoc.title,
            "description": sdoc.description,
            "position": position,
            "unit": sdoc.unit,
            "min_quantity": sdoc.minQuantity,
            "max_quantity": sdoc.maxQuantity,
            "key_source": sdoc.keySource or _default_key_source(pdoc.productType),
            "low_stock_threshold": sdoc.lowStockThreshold,
            "versions": list(sdoc.versions),
            "is_active": True,
        }
        sku = existing.pop(sdoc.id, None)
        label = f"{pdoc.id}:{sdoc.id}"
        if sku is None:
            sku = Sku(sku_id=sdoc.id, **values)
            product.skus.append(sku)
            report.created += 1
            report.details.append(N_("SKU %(id)s created", id=label))
        elif _assign(sku, values):
            report.updated += 1
            report.details.append(N_("SKU %(id)s updated", id=label))
        _apply_availabilities(sku, sdoc, label, report)
    for sku in existing.values():
        if sku.is_active:
            sku.is_active = False
            report.retired += 1
            report.details.append(N_("SKU %(id)s retired", id=f"{product.id}:{sku.sku_id}"))


def _apply_availabilities(sku: Sku, sdoc: SkuDoc, label: str, report: ImportReport) -> None:
    existing = {a.availability_id: a for a in sku.availabilities}
    for position, adoc in enumerate(sdoc.availabilities):
        values = {
            "position": position,
            "currency": adoc.currency,
            "term_duration": adoc.term,
            "billing_cycle": adoc.billingCycle,
            "list_price_minor": to_minor(Decimal(str(adoc.price)), adoc.currency),
            "is_active": True,
        }
        availability = existing.pop(adoc.id, None)
        if availability is None:
            availability = Availability(availability_id=adoc.id, **values)
            availability.market_rows = [AvailabilityMarket(market=m) for m in adoc.markets]
            sku.availabilities.append(availability)
            report.created += 1
            report.details.append(N_("availability %(id)s created", id=f"{label}:{adoc.id}"))
            continue
        changed = _assign(availability, values)
        if set(availability.markets) != set(adoc.markets):
            keep = {m.market: m for m in availability.market_rows if m.market in adoc.markets}
            availability.market_rows = [
                keep.get(m) or AvailabilityMarket(market=m) for m in adoc.markets
            ]
            changed = True
        if changed:
            report.updated += 1
            report.details.append(N_("availability %(id)s updated", id=f"{label}:{adoc.id}"))
    for availability in existing.values():
        if availability.is_active:
            availability.is_active = False
            report.retired += 1
            report.details.append(
                N_("availability %(id)s retired", id=f"{label}:{availability.availability_id}")
            )


def import_text(
    session: Session,
    *,
    text: str,
    filename: str = "",
    now: datetime,
    actor: Actor | None,
    request: RequestInfo | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Parse, validate and (unless ``dry_run``) apply a document; errors change nothing."""
    parsed = parse(text, filename=filename)
    doc = validate(parsed.data, lines=parsed.lines)
    if dry_run:
        return ImportReport()
    return apply(session, doc=doc, now=now, actor=actor, request=request)


# ---------------------------------------------------------------------------------------------
# Exporting


def _money(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return str(from_minor(minor, currency))


def export(session: Session) -> dict[str, Any]:
    """The active catalog and the tax rates as a document :func:`apply` accepts."""
    rates = {
        r.country: str(ppm_to_percent(r.rate_ppm))
        for r in session.execute(select(TaxRate).order_by(TaxRate.country)).scalars()
    }
    products = session.execute(
        select(Product)
        .where(Product.is_active.is_(True))
        .options(
            selectinload(Product.skus)
            .selectinload(Sku.availabilities)
            .selectinload(Availability.market_rows)
        )
        .order_by(Product.position, Product.id)
    ).scalars()
    out: list[dict[str, Any]] = []
    for p in products:
        policy = cancellation_policy(p)
        policy_doc: dict[str, Any] = {
            "windowDays": policy.window_days,
            "fullCreditDays": policy.full_credit_days,
            "creditRule": policy.credit_rule.value,
            "feePercent": str(policy.fee_percent),
        }
        if policy.cap_amount is not None:
            policy_doc["cap"] = {
                "amount": str(policy.cap_amount),
                "currency": policy.cap_currency,
                "periodDays": policy.cap_period_days,
            }
        if policy.support_request_above is not None:
            policy_doc["supportRequestAbove"] = {
                "amount": str(policy.support_request_above),
                "currency": policy.support_request_currency,
            }
        skus = []
        for s in p.skus:
            if not s.is_active:
                continue
            skus.append(
                {
                    "id": s.sku_id,
                    "title": s.title,
                    "description": s.description,
                    "unit": s.unit,
                    "minQuantity": s.min_quantity,
                    "maxQuantity": s.max_quantity,
                    "keySource": s.key_source.value,
                    "lowStockThreshold": s.low_stock_threshold,
                    "versions": list(s.versions),
                    "availabilities": [
                        {
                            "id": a.availability_id,
                            "markets": a.markets,
                            "currency": a.currency,
                            "term": a.term_duration,
                            "billingCycle": a.billing_cycle.value,
                            "price": _money(a.list_price_minor, a.currency),
                        }
                        for a in s.availabilities
                        if a.is_active
                    ],
                }
            )
        out.append(
            {
                "id": p.id,
                "title": p.title,
                "description": p.description,
                "productType": p.product_type.value,
                "publisher": p.publisher,
                "cancellationPolicy": policy_doc,
                "skus": skus,
            }
        )
    return {"version": 1, "taxRates": rates, "products": out}


def dump(document: dict[str, Any], *, fmt: Literal["yaml", "json"] = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
