"""The catalog's version stamp changes with every write of what pricing reads, and checkout's
process cache of priced items (keyed on it) never serves a catalog that has changed."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import CatalogVersion
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.orders import services as orders
from tests.conftest import PG_ENABLED, PG_SKIP_MESSAGE, START
from tests.live import committed_database
from tests.orders import catalog_data
from tests.orders.catalog_data import AZURE, WINDOWS
from tests.seed import AGENT, partner_world


def _stamp(session: Session) -> str:
    return session.execute(select(CatalogVersion.stamp).where(CatalogVersion.id == 1)).scalar_one()


# Each write of a priced table, as any writer might send it (plain SQL: the triggers catch it).
TAX_ROW = (
    "INSERT INTO catalog_tax_rates (country, rate_ppm, updated_at) VALUES ('ZZ', 1, '2026-11-02')"
)
PRICED_WRITES = [
    (None, "UPDATE catalog_availabilities SET list_price_minor = list_price_minor + 1"),
    (None, "UPDATE catalog_products SET title = title || ' '"),
    (None, "UPDATE catalog_skus SET max_quantity = max_quantity + 1"),
    (None, "DELETE FROM catalog_availability_markets WHERE market = 'AU'"),
    (None, TAX_ROW),
    (TAX_ROW, "UPDATE catalog_tax_rates SET rate_ppm = 2 WHERE country = 'ZZ'"),
    (TAX_ROW, "DELETE FROM catalog_tax_rates WHERE country = 'ZZ'"),
]


@pytest.mark.parametrize(("setup", "write"), PRICED_WRITES)
def test_every_write_of_a_priced_table_changes_the_stamp(
    session: Session, settings: Settings, setup: str | None, write: str
) -> None:
    catalog_data.load(session, settings=settings, now=START)
    if setup is not None:
        session.execute(text(setup))
    before = _stamp(session)
    session.execute(text(write))
    assert _stamp(session) != before


def test_orm_writes_change_the_stamp_and_key_reservations_do_not(
    session: Session, settings: Settings
) -> None:
    before = _stamp(session)
    catalog_data.load(session, settings=settings, now=START, keys=2)
    loaded = _stamp(session)
    assert loaded != before
    # Taking a key (every checkout does) and importing keys leave the priced catalog alone.
    catalog.reserve_key(
        session,
        settings=settings,
        product_id="DG7GMGF0D3SJ",
        sku_id="0001",
        version=None,
        order_line_ref="line",
        now=START,
    )
    assert _stamp(session) == loaded
    product = catalog.get_product(session, product_id="DG7GMGF0D3SJ")
    product.skus[0].availabilities[0].is_active = False
    session.flush()
    assert _stamp(session) != loaded


def _seed(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The shared test world (``tests.seed``); Contoso's id and Fabrikam's agent's id."""
    with make_session_factory(engine)() as session:
        customer = partner_world(
            session,
            settings=settings,
            now=START,
            keys=5,
            domain="contoso-stamp.onmicrosoft.com",
            provider_people=(),
        )
        user = session.execute(select(User).where(User.email == AGENT)).scalar_one()
        return {"customer": uuid.UUID(customer), "user": user.id}


def _checkout(engine: Engine, settings: Settings, ids: dict[str, Any]) -> dict[str, Any]:
    """A new 2-line cart checked out in a session of ``engine``, committed; the first order."""
    with make_session_factory(engine)() as session:
        user = session.get(User, ids["user"])
        customer = session.get(Tenant, ids["customer"])
        assert user is not None and customer is not None
        actor = identity.actor_for(user)
        lines = [{"catalogItemId": WINDOWS, "quantity": 1}, {"catalogItemId": AZURE, "quantity": 2}]
        cart = orders.create_cart(session, actor=actor, customer=customer, lines=lines, now=START)
        session.commit()
    with make_session_factory(engine)() as session:
        user = session.get(User, ids["user"])
        assert user is not None
        result = orders.checkout(
            session,
            settings=settings,
            actor=identity.actor_for(user),
            customer=ids["customer"],
            cart_id=cart.id,
            now=START,
        )
        session.commit()
    order: dict[str, Any] = result["orders"][0]
    return order


def _unit_net(order: dict[str, Any], offer: str) -> Decimal:
    line = next(x for x in order["lineItems"] if x["offerId"] == offer)
    return Decimal(line["pricing"]["unitNet"])


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_a_price_changed_on_another_node_is_used_by_the_next_checkout(
    tmp_path: Path, settings: Settings, backend_name: str
) -> None:
    if backend_name == "postgresql" and not PG_ENABLED:
        pytest.skip(PG_SKIP_MESSAGE)
    catalog.pricing_cache.clear()
    with committed_database(backend_name, tmp_path, f"stamp-{uuid.uuid4().hex}.db") as url:
        # Two engines, two connection pools: this process's checkouts, and another node (or
        # the CLI, or psql) that changes the catalog.
        here, elsewhere = make_engine(url), make_engine(url)
        try:
            ids = _seed(here, settings)
            first = _checkout(here, settings, ids)
            with Session(here) as session:
                stamp = _stamp(session)
            assert catalog.pricing_cache.get(stamp, "US", WINDOWS) is not None
            # The cached price serves the next checkout while the catalog is unchanged.
            assert _unit_net(_checkout(here, settings, ids), WINDOWS) == _unit_net(first, WINDOWS)
            with elsewhere.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE catalog_availabilities SET list_price_minor = "
                        "list_price_minor + 10000 WHERE availability_id = 'US01'"
                    )
                )
            after = _checkout(here, settings, ids)
            assert _unit_net(after, WINDOWS) == _unit_net(first, WINDOWS) + Decimal("100.00")
            assert _unit_net(after, AZURE) == _unit_net(first, AZURE)
            # A tax rate set elsewhere is priced by the next checkout too.
            with elsewhere.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO catalog_tax_rates (country, rate_ppm, updated_at) "
                        "VALUES ('US', 100000, CURRENT_TIMESTAMP)"
                    )
                )
            taxed = next(x for x in _checkout(here, settings, ids)["lineItems"])
            assert Decimal(taxed["pricing"]["tax"]) != Decimal(0)
        finally:
            here.dispose()
            elsewhere.dispose()
            catalog.pricing_cache.clear()
