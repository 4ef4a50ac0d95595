"""Appends to one chain from many transactions at once on PostgreSQL: no gap, no fork."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from sqlalchemy import select

from partnercenter.audit import services as audit
from partnercenter.audit.models import AuditChainHead, AuditRecord
from partnercenter.db import make_engine, make_session_factory
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.live import committed_postgres

pytestmark = pytest.mark.postgres_only
WRITERS = 6
EACH = 20


def test_concurrent_appends_to_one_chain_number_in_a_row_and_verify() -> None:
    # One statement inserts the record from the head and moves the head (WITH ... UPDATE):
    # a writer that waited for the head's lock must chain to the record committed meanwhile.
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions() as session:  # the chain's head exists before the race
            first = audit.record(
                session,
                at=datetime.now(UTC),
                resource_type="order",
                operation_type="create_order",
                tenant_id=None,  # the system chain: no tenant row needed
                user_principal_name="agent@example.com",
            )
            session.commit()
        start = threading.Barrier(WRITERS)
        failures: list[BaseException] = []

        def write(writer: int) -> None:
            start.wait()
            for n in range(EACH):
                try:
                    with sessions() as session:
                        audit.record(
                            session,
                            at=datetime.now(UTC),
                            resource_type="order",
                            operation_type="create_order",
                            tenant_id=None,
                            user_principal_name="agent@example.com",
                            details={"writer": writer, "n": n},
                        )
                        session.commit()
                except BaseException as exc:  # reported below, with the others
                    failures.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert failures == []
            with sessions() as session:
                rows = session.execute(
                    select(AuditRecord.seq, AuditRecord.prev_hash, AuditRecord.hash)
                    .where(AuditRecord.chain_key == audit.SYSTEM_CHAIN)
                    .where(AuditRecord.seq >= first.seq)
                    .order_by(AuditRecord.seq)
                ).all()
                total = first.seq + WRITERS * EACH
                assert [r.seq for r in rows] == list(range(first.seq, total + 1))
                assert all(b.prev_hash == a.hash for a, b in pairwise(rows))
                head = session.get(AuditChainHead, audit.SYSTEM_CHAIN)
                assert head is not None and (head.seq, head.last_hash) == (total, rows[-1].hash)
                assert list(audit.verify(session)) == []
        finally:
            engine.dispose()
