"""Two Global admins removing each other at the same moment leave one of them (PostgreSQL).

Each removal counts the administrators left after it; without a lock both counts saw the
other admin still there and both committed, leaving the partner with none. The second
removal now waits for the first and is refused with 409 ``last_global_admin``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from partnercenter.db import make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.errors import LastGlobalAdmin
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.conftest import START
from tests.live import committed_pg_engine
from tests.seed import committed_partner

FIRST, SECOND = "g1@tailspin.example", "g2@tailspin.example"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with committed_pg_engine() as engine:
        committed_partner(
            engine, "Tailspin", [(FIRST, Role.GLOBAL_ADMIN), (SECOND, Role.GLOBAL_ADMIN)], now=START
        )
        yield engine


def _user(session: Session, email: str) -> User:
    return session.execute(select(User).where(User.email == email)).scalar_one()


def _demote(session: Session, target: str, by: str) -> None:
    identity.update_user(
        session,
        user=_user(session, target),
        actor=identity.actor_for(_user(session, by)),
        now=START,
        roles=[Role.SALES_AGENT.value],
    )


def _remove(session: Session, target: str, by: str) -> None:
    identity.delete_user(
        session,
        user=_user(session, target),
        actor=identity.actor_for(_user(session, by)),
        now=START,
        request=None,
    )


@pytest.mark.parametrize("change", [_demote, _remove], ids=["demote", "remove"])
def test_two_admins_removing_each_other_at_once_leave_one(
    pg_engine: Engine, change: Callable[[Session, str, str], None]
) -> None:
    sessions = make_session_factory(pg_engine)
    first = sessions()
    change(first, SECOND, FIRST)  # done, not yet committed: it holds the tenant's lock
    outcome: list[BaseException | None] = []

    def other() -> None:
        with sessions() as second:
            try:
                change(second, FIRST, SECOND)
                second.commit()
                outcome.append(None)
            except BaseException as error:  # reported below, whatever it is
                second.rollback()
                outcome.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), f"the second removal did not wait for the first: {outcome}"
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], LastGlobalAdmin), outcome

    with sessions() as check:
        admins = [
            u.email
            for u in check.execute(select(User).where(User.is_active.is_(True))).scalars()
            if Role.GLOBAL_ADMIN in u.roles
        ]
    assert admins == [FIRST]  # the first removal stands; the second was refused
