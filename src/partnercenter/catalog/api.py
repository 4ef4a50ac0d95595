"""JSON routes: the country-scoped catalog, catalog import/export, tax rates, key inventory
and artifact uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from partnercenter.catalog import document
from partnercenter.catalog import services as catalog
from partnercenter.catalog.errors import ProductNotFound
from partnercenter.catalog.schemas import (
    ArtifactOut,
    AvailabilityOut,
    ProductOut,
    SkuOut,
    TaxRateIn,
    TaxRateOut,
    artifact_out,
    availability_out,
    product_out,
    sku_out,
    tax_rate_out,
)
from partnercenter.context import Actor
from partnercenter.customers import services as customers
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, SettingsDep, require
from partnercenter.envelopes import collection, link
from partnercenter.errors import InvalidInput
from partnercenter.identity.models import Tenant
from partnercenter.markets import normalise_country
from partnercenter.permissions import Action
from partnercenter.routing import Route

router = APIRouter(route_class=Route, prefix="/v1", tags=["catalog"])

Browser = Annotated[Actor, Depends(require(Action.BROWSE_CATALOG))]
CatalogManager = Annotated[Actor, Depends(require(Action.MANAGE_CATALOG))]
KeyManager = Annotated[Actor, Depends(require(Action.MANAGE_KEY_INVENTORY))]
TaxManager = Annotated[Actor, Depends(require(Action.MANAGE_TAX_RATES))]

MAX_UPLOAD_DOCUMENT = 20 * 1024 * 1024
MAX_KEY_FILE = 10 * 1024 * 1024


def _country(session: Session, actor: Actor, country: str | None) -> str:
    """The market asked for; without one, the caller organisation's country."""
    if country:
        return normalise_country(country)
    tenant = session.get(Tenant, actor.tenant_id)
    if tenant is None or not tenant.country:
        raise InvalidInput("Give the market: ?country=US.", source="country")
    return tenant.country


@router.get("/products")
def list_products(
    session: SessionDep,
    actor: Browser,
    country: str | None = None,
    targetView: str | None = None,
) -> dict[str, Any]:
    """Products on sale in the market, optionally of one target view."""
    code = _country(session, actor, country)
    products = catalog.list_products(session, country=code, target_view=targetView)
    return collection([product_out(p, code).model_dump(mode="json") for p in products])


@router.get("/customers/{customer_id}/products")
def list_customer_products(
    customer_id: str,
    session: SessionDep,
    actor: Browser,
    targetView: str | None = None,
) -> dict[str, Any]:
    """The catalog in the customer's market."""
    customer = customers.resolve_customer(session, partner_id=actor.tenant_id, ref=customer_id)
    code = normalise_country(customer.country or "")
    products = catalog.list_products(session, country=code, target_view=targetView)
    return collection([product_out(p, code).model_dump(mode="json") for p in products])


@router.get("/products/{product_id}", response_model=ProductOut)
def get_product(
    product_id: str, session: SessionDep, actor: Browser, country: str | None = None
) -> ProductOut:
    """One product, if it is on sale in the market (800070 names the market otherwise)."""
    code = _country(session, actor, country)
    return product_out(
        catalog.get_product_in_market(session, product_id=product_id, country=code), code
    )


@router.get("/products/{product_id}/skus")
def list_skus(
    product_id: str, session: SessionDep, actor: Browser, country: str | None = None
) -> dict[str, Any]:
    """The product's SKUs on sale in the market."""
    code = _country(session, actor, country)
    skus = catalog.list_skus(session, product_id=product_id, country=code)
    return collection([sku_out(s, code).model_dump(mode="json") for s in skus])


@router.get("/products/{product_id}/skus/{sku_id}", response_model=SkuOut)
def get_sku(
    product_id: str, sku_id: str, session: SessionDep, actor: Browser, country: str | None = None
) -> SkuOut:
    code = _country(session, actor, country)
    catalog.get_product_in_market(session, product_id=product_id, country=code)
    return sku_out(catalog.get_sku(session, product_id=product_id, sku_id=sku_id), code)


@router.get("/products/{product_id}/skus/{sku_id}/availabilities")
def list_availabilities(
    product_id: str, sku_id: str, session: SessionDep, actor: Browser, country: str | None = None
) -> dict[str, Any]:
    """The SKU's availabilities in the market, each with its terms and price (net, tax,
    gross)."""
    code = _country(session, actor, country)
    items = catalog.list_availabilities(session, product_id=product_id, sku_id=sku_id, country=code)
    return collection([availability_out(i).model_dump(mode="json") for i in items])


@router.get(
    "/products/{product_id}/skus/{sku_id}/availabilities/{availability_id}",
    response_model=AvailabilityOut,
)
def get_availability(
    product_id: str,
    sku_id: str,
    availability_id: str,
    session: SessionDep,
    actor: Browser,
    country: str | None = None,
) -> AvailabilityOut:
    code = _country(session, actor, country)
    item = catalog.resolve_availability(
        session,
        catalog_item_id=catalog.catalog_item_id(product_id, sku_id, availability_id),
        country=code,
    )
    return availability_out(item)


# --- catalog document ---------------------------------------------------------------------


async def _body_text(request: Request, limit: int) -> str:
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"The document is larger than {limit // (1024 * 1024)} MiB.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The document must be UTF-8 text.") from None


def _filename_for(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return "catalog.json"
    if kind in {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}:
        return "catalog.yaml"
    return ""


@router.post("/catalog/import")
async def import_catalog(
    request: Request,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: CatalogManager,
    dryRun: bool = False,
) -> dict[str, Any]:
    """Import the catalog document (JSON or YAML body). Every error is reported with its path
    and nothing changes; otherwise everything is applied in one transaction."""
    text = await _body_text(request, MAX_UPLOAD_DOCUMENT)
    report = document.import_text(
        session,
        text=text,
        filename=_filename_for(request),
        now=now,
        actor=actor,
        request=info,
        dry_run=dryRun,
    )
    session.commit()
    body = report.to_json()
    body["dryRun"] = dryRun
    if dryRun:
        body["summary"] = "valid"
    return body


@router.post("/catalog/validate")
async def validate_catalog(request: Request, actor: CatalogManager) -> dict[str, Any]:
    """Validate a catalog document without importing it."""
    text = await _body_text(request, MAX_UPLOAD_DOCUMENT)
    parsed = document.parse(text, filename=_filename_for(request))
    doc = document.validate(parsed.data, lines=parsed.lines)
    return {"valid": True, "products": len(doc.products or [])}


@router.get(
    "/catalog/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}, "application/yaml": {}},
            "description": "The catalog document (`format=json` or `yaml`)",
        }
    },
)
def export_catalog(
    session: SessionDep,
    actor: CatalogManager,
    format: str = Query("json", pattern="^(json|yaml)$"),
) -> Response:
    """The active catalog and tax rates as an importable document."""
    text = document.dump(document.export(session), fmt="yaml" if format == "yaml" else "json")
    media = "application/yaml" if format == "yaml" else "application/json"
    return Response(text, media_type=media)


# --- tax rates ---------------------------------------------------------------------------------


@router.get("/taxrates")
def list_tax_rates(session: SessionDep, actor: Browser) -> dict[str, Any]:
    """Every market with its currency, tax rate and whether prices include tax."""
    return collection([tax_rate_out(m).model_dump(mode="json") for m in catalog.markets(session)])


@router.put("/taxrates/{country}", response_model=TaxRateOut)
def set_tax_rate(
    country: str,
    body: TaxRateIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: TaxManager,
) -> TaxRateOut:
    """Set one market's tax rate (percent)."""
    code = normalise_country(country)
    catalog.set_tax_rate(
        session, country=code, percent=body.percent, now=now, actor=actor, request=info
    )
    session.commit()
    market = next(m for m in catalog.markets(session) if m.country == code)
    return tax_rate_out(market)


# --- key inventory -----------------------------------------------------------------------------


@router.post("/products/{product_id}/skus/{sku_id}/keys/import")
async def import_keys(
    product_id: str,
    sku_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: KeyManager,
) -> dict[str, Any]:
    """Import product keys from CSV (``version,key``), as the body or a multipart ``file``.
    A bad or duplicate row refuses the whole file, naming every such row."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("Send the CSV as the form field 'file'.", source="file")
        raw = await upload.read(MAX_KEY_FILE + 1)
    else:
        raw = await request.body()
    if len(raw) > MAX_KEY_FILE:
        raise InvalidInput("The key file is larger than 10 MiB.", source="file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The key file must be UTF-8 text.", source="file") from None
    result = catalog.import_keys(
        session,
        settings=settings,
        product_id=product_id,
        sku_id=sku_id,
        csv_text=text,
        now=now,
        actor=actor,
        request=info,
    )
    session.commit()
    return {"imported": result.imported, "byVersion": result.by_version}


@router.get("/keyinventory")
def key_inventory(session: SessionDep, actor: KeyManager) -> dict[str, Any]:
    """Key stock per SKU and version, with the low-stock flag."""
    return collection(
        [
            {
                "productId": r.product_id,
                "productTitle": r.product_title,
                "skuId": r.sku_id,
                "skuTitle": r.sku_title,
                "keySource": r.key_source.value,
                "version": r.version,
                "available": r.available,
                "reserved": r.reserved,
                "lowStockThreshold": r.threshold,
                "lowStock": r.low,
            }
            for r in catalog.key_stock(session)
        ]
    )


# --- artifacts ---------------------------------------------------------------------------------


@router.post(
    "/products/{product_id}/skus/{sku_id}/artifacts", status_code=201, response_model=ArtifactOut
)
def upload_artifact(
    product_id: str,
    sku_id: str,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: CatalogManager,
    version: Annotated[str, Form()],
    language: Annotated[str, Form()],
    bitness: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
) -> ArtifactOut:
    """Upload a downloadable file for one version, language and bitness of a software SKU."""
    artifact = catalog.upload_artifact(
        session,
        settings=settings,
        product_id=product_id,
        sku_id=sku_id,
        version=version,
        language=language,
        bitness=bitness,
        file_name=file.filename or "file",
        fileobj=file.file,
        now=now,
        actor=actor,
        request=info,
    )
    session.commit()
    return artifact_out(artifact)


@router.get("/products/{product_id}/skus/{sku_id}/artifacts")
def list_artifacts(
    product_id: str, sku_id: str, session: SessionDep, actor: CatalogManager
) -> dict[str, Any]:
    """The SKU's files: version, language, bitness, size and SHA-256."""
    artifacts = catalog.list_artifacts(session, product_id=product_id, sku_id=sku_id)
    return collection([artifact_out(a).model_dump(mode="json") for a in artifacts])


# --- Partner Center's legacy offers: one offer per availability --------------------------


def offer_json(item: catalog.ResolvedAvailability) -> dict[str, Any]:
    """Partner Center's (legacy) Offer for one availability; its id is the catalog item id.

    Partner Center: "Offer resources". ``billing`` is ``license`` (software is sold per
    licence); prices are not part of a legacy offer (the availability carries them).
    """
    product, sku, availability = item.product, item.sku, item.availability
    offer_id = catalog.catalog_item_id(product.id, sku.sku_id, availability.availability_id)
    category = product.product_type.value
    return {
        "id": offer_id,
        "name": f"{product.title} {sku.title}",
        "description": sku.description or product.description,
        "minimumQuantity": sku.min_quantity,
        "maximumQuantity": sku.max_quantity,
        "rank": availability.position,
        "uri": f"/offers/{offer_id}",
        "locale": "en-US",
        "country": item.country,
        "category": {
            "id": category,
            "name": category,
            "rank": 0,
            "locale": "en-US",
            "country": item.country,
            "attributes": {"objectType": "OfferCategory"},
        },
        "prerequisiteOffers": [],
        "isAddOn": False,
        "hasAddOns": False,
        "isAvailableForPurchase": True,
        "billing": "license",
        "supportedBillingCycles": [availability.billing_cycle.value],
        "isAutoRenewable": False,
        "isTrial": False,
        "acquisitionType": "Purchase",
        "product": {"id": product.id, "name": product.title, "unit": sku.unit or "Licenses"},
        "unitType": sku.unit or "Licenses",
        "termDuration": availability.term_duration,
        "links": {"self": link(f"/v1/offers/{offer_id}")},
        "attributes": {"objectType": "Offer"},
    }


def _offers_in(session: Session, country: str) -> list[dict[str, Any]]:
    offers: list[dict[str, Any]] = []
    for product in catalog.list_products(session, country=country, target_view=None):
        for sku in catalog.list_skus(session, product_id=product.id, country=country):
            items = catalog.list_availabilities(
                session, product_id=product.id, sku_id=sku.sku_id, country=country
            )
            offers += [offer_json(i) for i in items]
    return offers


def _offer_page(offers: list[dict[str, Any]], offset: int, size: int | None) -> dict[str, Any]:
    page = offers[offset : offset + size] if size else offers[offset:]
    return collection(page, total=len(offers))


@router.get("/offers")
def list_offers(
    session: SessionDep,
    actor: Browser,
    country: Annotated[str | None, Query(description="The market: US")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    size: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> dict[str, Any]:
    """Every availability on sale in the market, as Partner Center's legacy offers.

    Partner Center: "Get a list of offers for a market".
    """
    return _offer_page(_offers_in(session, _country(session, actor, country)), offset, size)


@router.get("/offers/{offer_id}")
def get_offer(
    offer_id: str,
    session: SessionDep,
    actor: Browser,
    country: Annotated[str | None, Query(description="The market: US")] = None,
) -> dict[str, Any]:
    """One offer (a catalog item id) in the market. Partner Center: "Get an offer by ID"."""
    code = _country(session, actor, country)
    if offer_id.count(":") != 2:
        # Not PRODUCT:SKU:AVAILABILITY, so no offer has this id: not found, as for any id.
        raise ProductNotFound(f"The offer '{offer_id[:60]}' was not found.", source="offerId")
    return offer_json(catalog.resolve_availability(session, catalog_item_id=offer_id, country=code))


@router.get("/customers/{customer_id}/offers")
def list_customer_offers(
    customer_id: str,
    session: SessionDep,
    actor: Browser,
    offset: Annotated[int, Query(ge=0)] = 0,
    size: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> dict[str, Any]:
    """The offers of the customer's market. Partner Center: "Get offers for a customer"."""
    customer = customers.resolve_customer(session, partner_id=actor.tenant_id, ref=customer_id)
    code = normalise_country(customer.country or "")
    return _offer_page(_offers_in(session, code), offset, size)
