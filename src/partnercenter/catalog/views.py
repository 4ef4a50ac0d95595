"""HTML routes: the provider console's catalog, import/export, tax rates and key inventory,
and the partner's catalog browser."""

from __future__ import annotations

import io
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from partnercenter.catalog import document
from partnercenter.catalog import services as catalog
from partnercenter.catalog.errors import CatalogDocumentInvalid, InvalidTaxRate, KeyImportInvalid
from partnercenter.catalog.models import KeySource
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, SettingsDep
from partnercenter.errors import DomainError, InvalidInput
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.models import User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.markets import (
    all_countries,
    azure_reservations_unavailable,
    market_currency,
    market_label,
    normalise_country,
)
from partnercenter.money import from_minor, tax_inclusive
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.web import check_csrf, render

router = APIRouter(route_class=Route, include_in_schema=False)


def _render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    return render(request, template, context, status=status)


MAX_FORM_FILE = 20 * 1024 * 1024


def _provider(request: Request, user: User | None, action: Action) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(action, me)
    return me


def _market(country: str, fallback: str | None) -> str:
    try:
        return normalise_country(country or fallback or "US")
    except InvalidInput:
        return "US"


def _catalog_rows(session: SessionDep, country: str, view: str) -> list[dict[str, Any]]:
    rows = []
    for product in catalog.list_products(session, country=country, target_view=view or None):
        skus = []
        for sku in catalog.list_skus(session, product_id=product.id, country=country):
            items = catalog.list_availabilities(
                session, product_id=product.id, sku_id=sku.sku_id, country=country
            )
            skus.append({"sku": sku, "items": items})
        rows.append({"product": product, "skus": skus})
    return rows


def _catalog_page(
    request: Request, session: SessionDep, me: User, portal: str, country: str, view: str
) -> Response:
    try:
        rows = _catalog_rows(session, country, view)
        error = None
    except DomainError as exc:
        rows, error = [], exc
    blocked = azure_reservations_unavailable()
    return _render(
        request,
        "catalog/browse.html",
        {
            "portal": portal,
            "me": me,
            "rows": rows,
            "country": country,
            "view": view,
            "views": list(catalog.TARGET_VIEWS),
            "countries": all_countries().values(),
            "currency": market_currency(country),
            "tax_percent": catalog.tax_rate(session, country=country) * 100,
            "inclusive": tax_inclusive(country),
            "azure_blocked": country in blocked,
            "market_label": market_label(country),
            "error": error,
            "base": f"/{portal}/catalog",
        },
    )


@router.get("/provider/catalog")
def provider_catalog(
    request: Request, user: OptionalUser, session: SessionDep, country: str = "", view: str = ""
) -> Response:
    me = _provider(request, user, Action.MANAGE_CATALOG)
    return _catalog_page(request, session, me, "provider", _market(country, "US"), view)


@router.get("/partner/catalog")
def partner_catalog(
    request: Request, user: OptionalUser, session: SessionDep, country: str = "", view: str = ""
) -> Response:
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(Action.BROWSE_CATALOG, me)
    return _catalog_page(request, session, me, "partner", _market(country, me.tenant.country), view)


@router.get("/provider/catalog/products/{product_id}")
def provider_product(
    product_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me = _provider(request, user, Action.MANAGE_CATALOG)
    product = catalog.get_product(session, product_id=product_id, include_inactive=True)
    skus = []
    for sku in product.skus:
        skus.append(
            {
                "sku": sku,
                "availabilities": list(sku.availabilities),
                "artifacts": catalog.list_artifacts(
                    session, product_id=product.id, sku_id=sku.sku_id
                ),
            }
        )
    return _render(
        request,
        "catalog/product.html",
        {
            "portal": "provider",
            "me": me,
            "product": product,
            "policy": catalog.cancellation_policy(product),
            "skus": skus,
            "from_minor": from_minor,
            "software": product.product_type in catalog.SOFTWARE_TYPES,
        },
    )


@router.post("/provider/catalog/products/{product_id}/skus/{sku_id}/artifacts")
def provider_upload_artifact(
    product_id: str,
    sku_id: str,
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
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    me = _provider(request, user, Action.MANAGE_CATALOG)
    check_csrf(request, csrf_token)
    if file is None or not file.filename:
        raise InvalidInput("Choose a file to upload.", source="file")
    catalog.upload_artifact(
        session,
        settings=settings,
        product_id=product_id,
        sku_id=sku_id,
        version=version,
        language=language,
        bitness=bitness,
        file_name=file.filename,
        fileobj=file.file,
        now=now,
        actor=identity.actor_for(me),
        request=info,
    )
    session.commit()
    return RedirectResponse(
        f"/provider/catalog/products/{product_id}?flash=uploaded", status_code=303
    )


# --- import / export ---------------------------------------------------------------------


@router.get("/provider/catalog/import")
def provider_import_page(
    request: Request, user: OptionalUser, session: SessionDep, edit: bool = False
) -> Response:
    """Upload or paste a catalog document; ``?edit=1`` starts from the current catalog."""
    me = _provider(request, user, Action.MANAGE_CATALOG)
    text = document.dump(document.export(session), fmt="yaml") if edit else ""
    return _render(request, "catalog/import.html", {"portal": "provider", "me": me, "text": text})


@router.post("/provider/catalog/import")
async def provider_import(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
) -> Response:
    me = _provider(request, user, Action.MANAGE_CATALOG)
    form = await request.form()
    check_csrf(request, str(form.get("csrf_token") or ""))
    upload = form.get("file")
    text = str(form.get("text") or "")
    filename = ""
    if upload is not None and not isinstance(upload, str) and upload.filename:
        raw = await upload.read(MAX_FORM_FILE + 1)
        if len(raw) > MAX_FORM_FILE:
            raise InvalidInput("The document is larger than 20 MiB.")
        text = raw.decode("utf-8", errors="replace")
        filename = upload.filename
    dry_run = form.get("action") != "import"
    context: dict[str, Any] = {"portal": "provider", "me": me, "dry_run": dry_run}
    try:
        report = document.import_text(
            session,
            text=text,
            filename=filename,
            now=now,
            actor=identity.actor_for(me),
            request=info,
            dry_run=dry_run,
        )
    except CatalogDocumentInvalid as exc:
        session.rollback()
        context["errors"] = exc.errors
        context["text"] = text if not filename else ""
        return _render(request, "catalog/import.html", context, status=400)
    session.commit()
    context["report"] = report
    context["valid"] = True
    return _render(request, "catalog/import.html", context)


@router.get("/provider/catalog/export")
def provider_export(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    _provider(request, user, Action.MANAGE_CATALOG)
    text = document.dump(document.export(session), fmt="yaml")
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="catalog.yaml"'},
    )


# --- tax rates -----------------------------------------------------------------------------


def _tax_page(
    request: Request, session: SessionDep, me: User, error: DomainError | None = None
) -> Response:
    return _render(
        request,
        "catalog/tax_rates.html",
        {
            "portal": "provider",
            "me": me,
            "markets": catalog.markets(session),
            "error": error,
            "can_edit": identity.actor_for(me).can(Action.MANAGE_TAX_RATES),
        },
        status=error.status if error else 200,
    )


@router.get("/provider/tax-rates")
def provider_tax_rates(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    me = _provider(request, user, Action.MANAGE_TAX_RATES)
    return _tax_page(request, session, me)


@router.post("/provider/tax-rates")
def provider_set_tax_rate(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    country: Annotated[str, Form()] = "",
    percent: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = _provider(request, user, Action.MANAGE_TAX_RATES)
    check_csrf(request, csrf_token)
    try:
        try:
            value = Decimal(percent.strip().replace(",", "."))
        except InvalidOperation:
            raise InvalidTaxRate(N_("“%(value)s” is not a number.", value=percent)) from None
        catalog.set_tax_rate(
            session,
            country=country,
            percent=value,
            now=now,
            actor=identity.actor_for(me),
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        return _tax_page(request, session, me, exc)
    session.commit()
    return RedirectResponse("/provider/tax-rates?flash=saved", status_code=303)


# --- key inventory -------------------------------------------------------------------------


def _keys_page(
    request: Request,
    session: SessionDep,
    me: User,
    *,
    errors: list[dict[str, Any]] | None = None,
    error: DomainError | None = None,
    imported: int | None = None,
    status: int = 200,
) -> Response:
    stock = catalog.key_stock(session)
    skus = sorted(
        {
            (r.product_id, r.sku_id, f"{r.product_title} · {r.sku_title}")
            for r in stock
            if r.key_source == KeySource.INVENTORY
        }
    )
    return _render(
        request,
        "catalog/keys.html",
        {
            "portal": "provider",
            "me": me,
            "stock": stock,
            "low": [r for r in stock if r.low],
            "skus": skus,
            "errors": errors or [],
            "error": error,
            "imported": imported,
        },
        status=status,
    )


@router.get("/provider/keys")
def provider_keys(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    me = _provider(request, user, Action.MANAGE_KEY_INVENTORY)
    return _keys_page(request, session, me)


@router.post("/provider/keys/import")
def provider_import_keys(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    sku: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    me = _provider(request, user, Action.MANAGE_KEY_INVENTORY)
    check_csrf(request, csrf_token)
    product_id, _, sku_id = sku.partition(":")
    try:
        if file is None or not file.filename:
            raise InvalidInput("Choose a CSV file (columns version,key).", source="file")
        raw = file.file.read(MAX_FORM_FILE + 1)
        text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="replace").read()
        result = catalog.import_keys(
            session,
            settings=settings,
            product_id=product_id,
            sku_id=sku_id,
            csv_text=text,
            now=now,
            actor=identity.actor_for(me),
            request=info,
        )
    except KeyImportInvalid as exc:
        session.rollback()
        return _keys_page(request, session, me, errors=exc.errors, status=400)
    except DomainError as exc:
        session.rollback()
        return _keys_page(request, session, me, error=exc, status=exc.status)
    session.commit()
    return _keys_page(request, session, me, imported=result.imported)
