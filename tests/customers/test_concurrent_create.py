"""Two customers created at once with the same tenant id: the loser hears which value was
taken (409 ``tenant_id_taken``), not ``domain_taken`` for a domain nobody has (PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from partnercenter.context import Actor
from partnercenter.customers import services as customers
from partnercenter.customers.errors import TenantIdTaken
from partnercenter.db import make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.conftest import START
from tests.live import committed_pg_engine
from tests.seed import committed_partner

AGENT = "agent@tailspin.example"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with committed_pg_engine() as engine:
        committed_partner(engine, "Tailspin", [(AGENT, Role.ADMIN_AGENT)], now=START)
        yield engine


def _actor(session: Session) -> Actor:
    return identity.actor_for(session.execute(select(User).where(User.email == AGENT)).scalar_one())


def _create(session: Session, tenant_id: uuid.UUID, domain: str) -> None:
    customers.create_customer(
        session,
        actor=_actor(session),
        company_name="Contoso",
        domain=domain,
        country="US",
        now=START,
        tenant_id=tenant_id,
    )


def test_the_same_tenant_id_at_once_is_refused_as_a_taken_tenant_id(pg_engine: Engine) -> None:
    sessions = make_session_factory(pg_engine)
    tenant_id = uuid.uuid4()
    first = sessions()
    _create(first, tenant_id, "first-race.onmicrosoft.com")  # inserted, not yet committed
    outcome: list[BaseException | None] = []

    def other() -> None:
        with sessions() as second:
            try:
                _create(second, tenant_id, "second-race.onmicrosoft.com")
                second.commit()
                outcome.append(None)
            except BaseException as error:  # reported below, whatever it is
                second.rollback()
                outcome.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), outcome  # its insert waits on the first one's key
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], TenantIdTaken), outcome
