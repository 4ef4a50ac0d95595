"""The demo catalog: products and prices from ``data/demo-catalog.yaml``, small generated
files as artifacts (English and Spanish, x64 and x86) and product keys in inventory."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.catalog import document
from partnercenter.catalog import services as catalog
from partnercenter.catalog.keys import KeyCipher, generate_key
from partnercenter.catalog.models import Artifact, KeySource, KeyStatus, ProductKey, Sku
from partnercenter.config import Settings

DEMO_LANGUAGES = ("en-US", "es-ES")
DEMO_BITNESS = ("x64", "x86")
DEMO_FILE_SIZE = 256 * 1024
KEYS_PER_VERSION = 40
# One SKU/version gets only a few keys, so the console's low-stock warning shows.
LOW_STOCK = ("DG7GMGF0D7FV", "0002", "2016", 3)


def catalog_text() -> str:
    return (
        resources.files("partnercenter")
        .joinpath("data/demo-catalog.yaml")
        .read_text(encoding="utf-8")
    )


def demo_file(name: str, size: int = DEMO_FILE_SIZE) -> bytes:
    """Deterministic bytes standing in for an installation image."""
    header = f"Demo installation image {name}\n".encode()
    block = hashlib.sha256(name.encode()).digest() * 64
    body = (header + block * (size // len(block) + 1))[:size]
    return body


def load(session: Session, *, now: datetime, settings: Settings) -> None:
    """Import the demo catalog, upload its demo files and fill the key inventory (idempotent)."""
    document.import_text(
        session, text=catalog_text(), filename="demo-catalog.yaml", now=now, actor=None
    )
    session.flush()  # the SKUs must exist before their files and keys are added
    for product in catalog.list_all_products(session):
        if product.product_type not in catalog.SOFTWARE_TYPES:
            continue
        for sku in product.skus:
            if not sku.versions or sku.key_source == KeySource.NONE:
                continue
            _artifacts(session, settings=settings, sku=sku, now=now)
            if sku.key_source == KeySource.INVENTORY:
                _keys(session, settings=settings, sku=sku, now=now)


def _artifacts(session: Session, *, settings: Settings, sku: Sku, now: datetime) -> None:
    have = {
        (a.version, a.language, a.bitness.value)
        for a in session.execute(select(Artifact).where(Artifact.sku_pk == sku.id)).scalars()
    }
    short = sku.product.title.lower().replace(" ", "_")
    for version in sku.versions:
        for language in DEMO_LANGUAGES:
            for bits in DEMO_BITNESS:
                if (version, language, bits) in have:
                    continue
                name = f"{language.lower()}_{short}_{version}_{sku.sku_id}_{bits}.iso"
                catalog.upload_artifact(
                    session,
                    settings=settings,
                    product_id=sku.product_id,
                    sku_id=sku.sku_id,
                    version=version,
                    language=language,
                    bitness=bits,
                    file_name=name,
                    fileobj=io.BytesIO(demo_file(name)),
                    now=now,
                    actor=None,
                )


def _keys(session: Session, *, settings: Settings, sku: Sku, now: datetime) -> None:
    cipher = KeyCipher.from_settings(settings)
    for version in sku.versions:
        count = session.execute(
            select(func.count()).where(ProductKey.sku_pk == sku.id, ProductKey.version == version)
        ).scalar_one()
        if count:
            continue
        wanted = KEYS_PER_VERSION
        if (sku.product_id, sku.sku_id, version) == LOW_STOCK[:3]:
            wanted = LOW_STOCK[3]
        for _ in range(wanted):
            value = generate_key()
            session.add(
                ProductKey(
                    sku_pk=sku.id,
                    version=version,
                    ciphertext=cipher.encrypt(value, context=catalog.key_context(sku, version)),
                    fingerprint=cipher.fingerprint(value),
                    status=KeyStatus.AVAILABLE,
                    generated=False,
                    imported_at=now,
                )
            )
