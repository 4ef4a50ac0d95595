"""Fixtures: the file stores (a local folder, a real S3-protocol server) and software
purchases built row by row (catalog product, keys, files, order, entitlement)."""

from __future__ import annotations

import io
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.keys import GENERATOR_ALPHABET
from partnercenter.catalog.models import CreditRule, KeySource, Product, ProductType, Sku
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import Tenant, User
from partnercenter.orders.models import (
    Cart,
    CartStatus,
    Entitlement,
    EntitlementStatus,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
)
from partnercenter.permissions import Role
from partnercenter.storage import LocalStorage, S3Storage, Storage
from tests.factories import Factory


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread on a free loopback port, for the whole run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    """A fresh bucket on the S3 server, under a prefix."""
    bucket = f"pc-test-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(
        bucket,
        "files",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    storage.client.create_bucket(Bucket=bucket)
    return storage


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each contract test runs once per backend."""
    name = "local_storage" if request.param == "local" else "s3_storage"
    store: Storage = request.getfixturevalue(name)
    return store

    # --- software purchases


PRODUCT_ID = "DG7GMGF0TEST"
SKU_ID = "0001"
VERSIONS = ["2024", "2021"]


def random_key() -> str:
    chars = [secrets.choice(GENERATOR_ALPHABET) for _ in range(25)]
    return "-".join("".join(chars[i : i + 5]) for i in range(0, 25, 5))


@dataclass
class Purchase:
    partner: Tenant
    customer: Tenant
    agent: User
    order: Order
    line: OrderLine
    entitlement: Entitlement

    @property
    def item_id(self) -> str:
        return str(self.entitlement.id)

    def url(self, suffix: str = "") -> str:
        return f"/v1/customers/{self.customer.id}/software/{self.item_id}{suffix}"


class Software:
    """A software product with keys and files, and purchases of it built row by row."""

    def __init__(
        self, session: Session, settings: Settings, clock: FrozenClock, factory: Factory
    ) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock
        self.factory = factory
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.sku = self._product()

    def _product(self) -> Sku:
        now = self.clock.now()
        product = self.session.get(Product, PRODUCT_ID)
        if product is None:
            product = Product(
                id=PRODUCT_ID,
                title="Windows Server",
                description="",
                product_type=ProductType.PERPETUAL_SOFTWARE,
                publisher="Provider",
                position=0,
                is_active=True,
                cancel_window_days=30,
                cancel_full_credit_days=30,
                cancel_credit_rule=CreditRule.FULL,
                cancel_fee_ppm=0,
                created_at=now,
                updated_at=now,
            )
            product.skus.append(
                Sku(
                    sku_id=SKU_ID,
                    title="Standard",
                    description="",
                    position=0,
                    unit="core pack",
                    min_quantity=1,
                    max_quantity=10,
                    key_source=KeySource.INVENTORY,
                    low_stock_threshold=1,
                    versions=list(VERSIONS),
                    is_active=True,
                )
            )
            self.session.add(product)
            self.session.flush()
        csv = "version,key\n" + "".join(f"{v},{random_key()}\n" for v in VERSIONS for _ in range(3))
        catalog.import_keys(
            self.session,
            settings=self.settings,
            product_id=PRODUCT_ID,
            sku_id=SKU_ID,
            csv_text=csv,
            now=now,
            actor=None,
        )
        for version, language, bitness, size in [
            ("2024", "en-US", "x64", 300_000),
            ("2024", "es-ES", "x64", 1000),
            ("2021", "en-US", "x86", 2000),
        ]:
            data = os.urandom(size)
            catalog.upload_artifact(
                self.session,
                settings=self.settings,
                product_id=PRODUCT_ID,
                sku_id=SKU_ID,
                version=version,
                language=language,
                bitness=bitness,
                file_name=f"WindowsServer_{version}_{language}_{bitness}.iso",
                fileobj=io.BytesIO(data),
                now=now,
                actor=None,
            )
            self.files[(version, language, bitness)] = data
        self.session.flush()
        return catalog.get_sku(self.session, product_id=PRODUCT_ID, sku_id=SKU_ID)

    def purchase(self, partner: Tenant | None = None, customer: Tenant | None = None) -> Purchase:
        """A completed order of one line with its entitlement and reserved key."""
        now = self.clock.now()
        partner = partner or self.factory.partner()
        customer = customer or self.factory.customer(partner)
        agent = self.factory.user(partner, Role.ADMIN_AGENT)
        cart = Cart(
            partner_id=partner.id,
            customer_id=customer.id,
            created_by=agent.id,
            status=CartStatus.ORDERED,
            line_items=[],
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(days=7),
        )
        self.session.add(cart)
        self.session.flush()
        order = Order(
            partner_id=partner.id,
            customer_id=customer.id,
            cart_id=cart.id,
            created_by=agent.id,
            status=OrderStatus.COMPLETED,
            currency="USD",
            market="US",
            tax_included=False,
            net_minor=100000,
            tax_minor=0,
            gross_minor=100000,
            created_at=now,
        )
        line = OrderLine(
            line_number=0,
            catalog_item_id=f"{PRODUCT_ID}:{SKU_ID}:0001",
            product_id=PRODUCT_ID,
            sku_id=SKU_ID,
            availability_id="0001",
            sku_pk=self.sku.id,
            product_type=ProductType.PERPETUAL_SOFTWARE.value,
            product_title="Windows Server",
            sku_title="Standard",
            quantity=1,
            term_duration=None,
            billing_cycle="one_time",
            currency="USD",
            unit_net_minor=100000,
            unit_tax_minor=0,
            unit_gross_minor=100000,
            net_minor=100000,
            tax_minor=0,
            gross_minor=100000,
            status=LineStatus.ACTIVE,
            purchased_at=now,
            cancellation_policy={},
        )
        order.lines = [line]
        self.session.add(order)
        self.session.flush()
        key_id = catalog.reserve_key(
            self.session,
            settings=self.settings,
            product_id=PRODUCT_ID,
            sku_id=SKU_ID,
            version=None,
            order_line_ref=str(line.id),
            now=now,
        )
        entitlement = Entitlement(
            partner_id=partner.id,
            customer_id=customer.id,
            order_id=order.id,
            order_line_id=line.id,
            product_id=PRODUCT_ID,
            sku_pk=self.sku.id,
            product_key_id=key_id,
            status=EntitlementStatus.ACTIVE,
            created_at=now,
        )
        self.session.add(entitlement)
        self.session.flush()
        return Purchase(partner, customer, agent, order, line, entitlement)

    def cancel(self, purchase: Purchase) -> None:
        """What a cancellation does to the purchase's line and entitlement."""
        from partnercenter.licensing import services

        purchase.line.status = LineStatus.CANCELLED
        purchase.line.cancelled_at = self.clock.now()
        purchase.order.status = OrderStatus.CANCELLED
        services.revoke_purchase(self.session, order_line_id=purchase.line.id, now=self.clock.now())
        self.session.flush()


@pytest.fixture
def software(
    session: Session, settings: Settings, clock: FrozenClock, factory: Factory
) -> Software:
    return Software(session, settings, clock, factory)
