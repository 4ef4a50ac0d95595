"""Key inventory: CSV import (all or nothing, row numbers), encryption at rest, reservation
(distinct keys, also concurrently), the generator, stock and low-stock warnings."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.errors import KeyDecryptionFailed, KeyImportInvalid, OutOfKeys
from partnercenter.catalog.keys import KeyCipher, generate_key, normalise_key
from partnercenter.catalog.models import (
    CreditRule,
    KeySource,
    KeyStatus,
    Product,
    ProductKey,
    ProductType,
    Sku,
)
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_session_factory

KEYS = ["VK7JG-NPHTM-C97JM-9MPGT-3V66T", "W269N-WFGWX-YVC9B-4J6C9-T83GX",
        "N69G4-B89J2-4G8F4-WWYCC-J464C"]  # fmt: skip


def _import(session: Session, settings: Settings, clock: FrozenClock, csv_text: str) -> Any:
    return catalog.import_keys(
        session,
        settings=settings,
        product_id="WINSRV",
        sku_id="0001",
        csv_text=csv_text,
        now=clock.now(),
        actor=None,
    )


def _stock(session: Session, version: str) -> int:
    return catalog.available_keys(session, product_id="WINSRV", sku_id="0001", version=version)


def test_keys_import_and_are_counted_per_version(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    result = _import(
        session, settings, clock, f"version,key\n2022,{KEYS[0]}\n2022,{KEYS[1]}\n2019,{KEYS[2]}\n"
    )
    assert result.imported == 3
    assert result.by_version == {"2022": 2, "2019": 1}
    assert (_stock(session, "2022"), _stock(session, "2019")) == (2, 1)


def test_bad_and_duplicate_rows_are_refused_with_row_numbers_and_nothing_is_imported(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    _import(session, settings, clock, f"2022,{KEYS[0]}\n")
    csv_text = "\n".join(
        [
            "version,key",  # row 1: header
            f"2022,{KEYS[1]}",  # row 2: fine
            f"2019,{KEYS[1].lower()}",  # row 3: same key as row 2 (case and dashes ignored)
            f"2022,{KEYS[0].replace('-', '')}",  # row 4: already in the inventory
            "2022",  # row 5: one column
            f"2025,{KEYS[2]}",  # row 6: unknown version
            "2022,NOT A KEY!",  # row 7: malformed
            "2022,",  # row 8: empty key
            "2019,AB",  # row 9: too short
        ]
    )
    with pytest.raises(KeyImportInvalid) as caught:
        _import(session, settings, clock, csv_text)
    rows = {e["row"]: e["message"] for e in caught.value.errors}
    assert rows == {
        3: "duplicate of row 2",
        4: "the key is already in the inventory",
        5: "expected 2 columns (version,key), found 1",
        6: "unknown version '2025' (the SKU has 2022, 2019)",
        7: "a key holds letters and digits in groups separated by single dashes",
        8: "the key is empty",
        9: "the key is shorter than 5 characters",
    }
    assert caught.value.code == 13004
    assert (_stock(session, "2022"), _stock(session, "2019")) == (1, 0)


def test_keys_are_encrypted_at_rest(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    _import(session, settings, clock, f"2022,{KEYS[0]}\n")
    session.flush()
    row = (
        session.execute(text("SELECT * FROM catalog_product_keys WHERE status = 'available'"))
        .mappings()
        .one()
    )
    raw = b"".join(
        v if isinstance(v, bytes) else str(v).encode() for v in row.values() if v is not None
    )
    for form in (KEYS[0], normalise_key(KEYS[0]), KEYS[0].lower()):
        assert form.encode() not in raw
        assert form.encode().hex().encode() not in raw
    # The same key gives the same fingerprint without decrypting; the ciphertext differs.
    cipher = KeyCipher.from_settings(settings)
    assert row["fingerprint"] == cipher.fingerprint(KEYS[0].lower())
    assert cipher.encrypt(KEYS[0], context="x") != cipher.encrypt(KEYS[0], context="x")
    key_id = catalog.reserve_key(
        session,
        settings=settings,
        product_id="WINSRV",
        sku_id="0001",
        version="2022",
        order_line_ref="order-1:0",
        now=clock.now(),
    )
    assert catalog.reveal_key(session, settings=settings, key_id=key_id) == KEYS[0]


def test_a_key_cannot_be_decrypted_with_another_key_or_moved_to_another_sku(
    settings: Settings,
) -> None:
    cipher = KeyCipher.from_settings(settings)
    blob = cipher.encrypt(KEYS[0], context="sku-a:2022")
    with pytest.raises(KeyDecryptionFailed):
        cipher.decrypt(blob, context="sku-b:2022")
    other = KeyCipher(encryption_key=b"\x01" * 32, signing_secret=b"s")
    with pytest.raises(KeyDecryptionFailed):
        other.decrypt(blob, context="sku-a:2022")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyDecryptionFailed):
        cipher.decrypt(tampered, context="sku-a:2022")


def test_reserving_takes_distinct_keys_then_reports_empty_stock(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    _import(session, settings, clock, "\n".join(f"2022,{k}" for k in KEYS[:2]))
    taken = [
        catalog.reserve_key(
            session,
            settings=settings,
            product_id="WINSRV",
            sku_id="0001",
            version=None,  # the newest version
            order_line_ref=f"order-1:{i}",
            now=clock.now(),
        )
        for i in range(2)
    ]
    assert len(set(taken)) == 2
    revealed = {catalog.reveal_key(session, settings=settings, key_id=k) for k in taken}
    assert revealed == set(KEYS[:2])
    with pytest.raises(OutOfKeys) as caught:
        catalog.reserve_key(
            session,
            settings=settings,
            product_id="WINSRV",
            sku_id="0001",
            version="2022",
            order_line_ref="order-2:0",
            now=clock.now(),
        )
    assert caught.value.code == 13005 and caught.value.status == 409
    assert "WINSRV:0001 version 2022" in caught.value.description
    assert catalog.revoke_keys(session, order_line_ref="order-1:0", now=clock.now()) == 1
    assert catalog.key_status(session, key_id=taken[0]) == KeyStatus.REVOKED


def test_the_generator_mints_unique_keys_in_five_groups_of_five(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    sku = catalog.get_sku(session, product_id="WINSRV", sku_id="0001")
    sku.key_source = KeySource.GENERATOR
    ids = [
        catalog.reserve_key(
            session,
            settings=settings,
            product_id="WINSRV",
            sku_id="0001",
            version="2019",
            order_line_ref=f"gen:{i}",
            now=clock.now(),
        )
        for i in range(20)
    ]
    keys = [catalog.reveal_key(session, settings=settings, key_id=i) for i in ids]
    assert len(set(keys)) == 20
    assert all(re.fullmatch(r"[A-Z0-9]{5}(-[A-Z0-9]{5}){4}", k) for k in keys)
    assert len({generate_key() for _ in range(1000)}) == 1000


def test_stock_per_sku_and_version_warns_when_low(
    session: Session, settings: Settings, clock: FrozenClock, small_catalog: None
) -> None:
    sku = catalog.get_sku(session, product_id="WINSRV", sku_id="0001")
    sku.low_stock_threshold = 1
    _import(session, settings, clock, "\n".join(f"2022,{k}" for k in KEYS))
    rows = {r.version: r for r in catalog.key_stock(session) if r.product_id == "WINSRV"}
    assert (rows["2022"].available, rows["2022"].low) == (3, False)
    assert (rows["2019"].available, rows["2019"].low) == (0, True)


def test_concurrent_reservations_never_hand_out_the_same_key(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    """Committing sessions on the real database, 8 threads, 30 orders for 20 keys."""
    factory = make_session_factory(engine)
    product_id = f"CONC{uuid.uuid4().hex[:8].upper()}"
    now: datetime = clock.now()
    cipher = KeyCipher.from_settings(settings)
    with factory() as s:
        product = Product(
            id=product_id,
            title="Concurrency",
            product_type=ProductType.PERPETUAL_SOFTWARE,
            cancel_credit_rule=CreditRule.FULL,
            created_at=now,
            updated_at=now,
        )
        sku = Sku(sku_id="0001", title="Std", key_source=KeySource.INVENTORY, versions=["1"])
        product.skus.append(sku)
        s.add(product)
        s.flush()
        for _ in range(20):
            value = generate_key()
            s.add(
                ProductKey(
                    sku_pk=sku.id,
                    version="1",
                    ciphertext=cipher.encrypt(value, context=catalog.key_context(sku, "1")),
                    fingerprint=cipher.fingerprint(value),
                    status=KeyStatus.AVAILABLE,
                    imported_at=now,
                )
            )
        s.commit()
        sku_pk = sku.id

    def take(i: int) -> uuid.UUID | None:
        with factory() as s:
            try:
                key_id = catalog.reserve_key(
                    s,
                    settings=settings,
                    product_id=product_id,
                    sku_id="0001",
                    version="1",
                    order_line_ref=f"line-{i}",
                    now=now,
                )
            except OutOfKeys:
                s.rollback()
                return None
            s.commit()
            return key_id

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(take, range(30)))
        taken = [r for r in results if r is not None]
        assert len(taken) == 20
        assert len(set(taken)) == 20
        assert results.count(None) == 10
        with factory() as s:
            refs = s.execute(
                select(func.count(func.distinct(ProductKey.order_line_ref))).where(
                    ProductKey.sku_pk == sku_pk, ProductKey.status == KeyStatus.RESERVED
                )
            ).scalar_one()
            assert refs == 20
    finally:
        with factory() as s:
            s.execute(delete(ProductKey).where(ProductKey.sku_pk == sku_pk))
            s.execute(delete(Sku).where(Sku.id == sku_pk))
            s.execute(delete(Product).where(Product.id == product_id))
            s.commit()
