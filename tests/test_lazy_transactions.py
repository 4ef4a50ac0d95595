"""On PostgreSQL a request's transaction begins at its first write (``db.lazy_transactions``).

A read then costs no BEGIN and no ROLLBACK; every write of a unit of work is still in one
transaction, a locking read opens it (and holds its lock to the end), and a statement marked
``db.ALONE`` commits on its own. Checked on a real PostgreSQL server, through the driver's own
transaction status and through a second connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import (
    ALONE,
    holds_transaction,
    is_plain_read,
    lazy_transactions,
    make_engine,
    make_session_factory,
)
from partnercenter.identity.models import ApiToken
from tests.conftest import START
from tests.factories import PASSWORD
from tests.live import committed_pg_engine
from tests.orders.catalog_data import WINDOWS
from tests.seed import AGENT, partner_world


@pytest.mark.parametrize(
    ("statement", "plain"),
    [
        ("SELECT 1", True),
        ("  select a.id FROM a JOIN b ON a.id = b.id WHERE a.x = %(x)s", True),
        ("SELECT a.id FROM a FOR UPDATE", False),
        ("SELECT a.id FROM a FOR UPDATE OF a SKIP LOCKED", False),
        ("SELECT a.id FROM a FOR SHARE", False),
        ("SELECT a.id FROM a FOR NO KEY UPDATE", False),
        ("SELECT a.id FROM a FOR KEY SHARE", False),
        ("SELECT pg_advisory_xact_lock(%(k)s)", False),
        ("SELECT set_config('lock_timeout', '100', true)", False),
        ("SELECT nextval('s')", False),
        ("SELECT pg_notify('c', 'x')", False),
        ("INSERT INTO a (id) VALUES (1)", False),
        ("UPDATE a SET x = 1", False),
        ("DELETE FROM a", False),
        ("WITH h AS (UPDATE a SET x = 1 RETURNING x) SELECT x FROM h", False),
        ("WITH h AS (SELECT 1) SELECT * FROM h", False),  # any WITH: a BEGIN too many at worst
        ("SAVEPOINT sa_savepoint_1", False),
        ("SET LOCAL lock_timeout = '1s'", False),
    ],
)
def test_only_a_select_without_lock_or_effect_runs_outside_the_transaction(
    statement: str, plain: bool
) -> None:
    assert is_plain_read(statement) is plain


def test_sqlite_and_a_test_connection_keep_their_transactions(tmp_path: Path) -> None:
    sqlite = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'lazy.db'}"))
    assert lazy_transactions(sqlite) is sqlite
    with sqlite.kw["bind"].connect() as connection:
        bound = make_session_factory(connection)
        assert lazy_transactions(bound) is bound


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with committed_pg_engine() as engine:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE lazy_probe (id integer PRIMARY KEY, note text)"))
            conn.execute(text("INSERT INTO lazy_probe VALUES (1, 'one')"))
        yield engine


def _statuses(engine: Engine) -> list[tuple[str, str]]:
    """(first word of each statement, the driver's transaction status when it ran), live."""
    seen: list[tuple[str, str]] = []

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((statement.split()[0].upper(), cursor.connection.info.transaction_status.name))

    event.listen(engine, "after_cursor_execute", after)
    return seen


def _lazy(engine: Engine) -> sessionmaker[Session]:
    return lazy_transactions(make_session_factory(engine))


def _notes(engine: Engine) -> list[tuple[int, str]]:
    """The probe's rows as another node sees them (its own engine: not in ``_statuses``)."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with other.connect() as conn:
            rows = conn.execute(text("SELECT id, note FROM lazy_probe ORDER BY id")).all()
    finally:
        other.dispose()
    return [(row[0], row[1]) for row in rows]


def test_reads_run_alone_and_writes_share_one_transaction(pg_engine: Engine) -> None:
    seen = _statuses(pg_engine)
    with _lazy(pg_engine)() as session:
        session.execute(text("SELECT count(*) FROM lazy_probe")).scalar_one()
        assert not holds_transaction(session)  # a read leaves nothing to end
        session.execute(text("INSERT INTO lazy_probe VALUES (2, 'two')"))
        session.execute(text("SELECT count(*) FROM lazy_probe")).scalar_one()
        assert holds_transaction(session)
        session.execute(text("UPDATE lazy_probe SET note = 'uno' WHERE id = 1"))
        assert _notes(pg_engine) == [(1, "one")]  # nothing is visible before the commit
        session.commit()
    assert seen == [
        ("SELECT", "IDLE"),
        ("INSERT", "INTRANS"),
        ("SELECT", "INTRANS"),
        ("UPDATE", "INTRANS"),
    ]
    assert _notes(pg_engine) == [(1, "uno"), (2, "two")]


def test_a_failed_write_undoes_the_writes_before_it(pg_engine: Engine) -> None:
    with _lazy(pg_engine)() as session:
        session.execute(text("SELECT note FROM lazy_probe")).all()
        session.execute(text("INSERT INTO lazy_probe VALUES (3, 'three')"))
        with pytest.raises(IntegrityError):
            session.execute(text("INSERT INTO lazy_probe VALUES (1, 'again')"))
        session.rollback()
    assert _notes(pg_engine) == [(1, "one")]


def test_a_locking_read_opens_the_transaction_and_keeps_its_lock(pg_engine: Engine) -> None:
    with _lazy(pg_engine)() as session:
        session.execute(text("SELECT note FROM lazy_probe WHERE id = 1 FOR UPDATE")).one()
        assert holds_transaction(session)
        with pg_engine.connect() as other, pytest.raises(OperationalError, match="lock"):
            other.execute(text("SELECT note FROM lazy_probe WHERE id = 1 FOR UPDATE NOWAIT"))
        session.commit()
    with pg_engine.connect() as other:
        other.execute(text("SELECT note FROM lazy_probe WHERE id = 1 FOR UPDATE NOWAIT")).one()


def test_a_statement_marked_alone_commits_by_itself(pg_engine: Engine) -> None:
    with _lazy(pg_engine)() as session:
        update = text("UPDATE lazy_probe SET note = 'touched' WHERE id = 1")
        session.execute(update, execution_options={ALONE: True})
        assert not holds_transaction(session)
        session.rollback()
    assert _notes(pg_engine) == [(1, "touched")]


def test_alone_inside_an_open_transaction_stays_in_it(pg_engine: Engine) -> None:
    with _lazy(pg_engine)() as session:
        session.execute(text("INSERT INTO lazy_probe VALUES (4, 'four')"))
        update = text("UPDATE lazy_probe SET note = 'touched' WHERE id = 1")
        session.execute(update, execution_options={ALONE: True})
        session.rollback()
    assert _notes(pg_engine) == [(1, "one")]


def test_through_the_api_a_read_sends_no_begin_and_a_write_commits_whole(
    pg_engine: Engine, settings: Settings
) -> None:
    with make_session_factory(pg_engine)() as session:
        customer = partner_world(
            session,
            settings=settings,
            now=START,
            keys=1,
            domain=f"lazy-{uuid.uuid4().hex[:8]}.onmicrosoft.com",
            provider_people=(),
        )
    app = create_app(
        settings, session_factory=make_session_factory(pg_engine), clock=FrozenClock(START)
    )
    with TestClient(app) as client:
        sign_in = {"grant_type": "password", "username": AGENT, "password": PASSWORD}
        token = client.post("/v1/auth/token", data=sign_in).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        named = client.post("/v1/users/me/tokens", json={"name": "lazy"}, headers=auth)
        assert named.status_code == 201, named.text
        seen = _statuses(pg_engine)

        # A read: the token, then the customer; no transaction at any point.
        named_auth = {"Authorization": f"Bearer {named.json()['token']}"}
        assert client.get(f"/v1/customers/{customer}", headers=named_auth).status_code == 200
        assert seen and all(status == "IDLE" for _word, status in seen), seen
        # The named token's first use is an UPDATE of its own, committed by itself.
        assert [word for word, _status in seen] == ["SELECT", "UPDATE", "SELECT"]
        with make_session_factory(pg_engine)() as check:
            stored = check.query(ApiToken).filter(ApiToken.name == "lazy").one()
            assert stored.last_used_at is not None

        # A write: everything after the first write in one transaction, committed.
        seen.clear()
        cart = client.post(
            f"/v1/customers/{customer}/carts",
            json={"lineItems": [{"id": 0, "catalogItemId": WINDOWS, "quantity": 1}]},
            headers=auth,
        )
        assert cart.status_code == 201, cart.text
        first_write = next(i for i, (word, _s) in enumerate(seen) if word != "SELECT")
        assert all(status == "INTRANS" for _word, status in seen[first_write:]), seen
        cart_id = cart.json()["id"]
        again = client.get(f"/v1/customers/{customer}/carts/{cart_id}", headers=auth)
        assert again.status_code == 200, again.text
