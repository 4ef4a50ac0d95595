"""The activity log is append-only and hash-chained per tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from tests.factories import Factory


def _write(session: Session, clock: FrozenClock, tenant_id: object, n: int) -> list[AuditRecord]:
    out = []
    for i in range(n):
        out.append(
            audit.record(
                session,
                at=clock.now(),
                resource_type="order",
                operation_type="create_order",
                tenant_id=tenant_id,  # type: ignore[arg-type]
                user_principal_name="agent@example.com",
                details={"orderId": f"o-{i}"},
            )
        )
        clock.advance(seconds=1)
    session.flush()
    return out


def test_records_chain_to_the_previous_record_of_their_tenant(
    session: Session, clock: FrozenClock, factory: Factory
) -> None:
    a, b = factory.partner(), factory.partner()
    ra = _write(session, clock, a.id, 3)
    rb = _write(session, clock, b.id, 2)
    assert [r.seq for r in ra] == [1, 2, 3] and [r.seq for r in rb] == [1, 2]
    assert ra[1].prev_hash == ra[0].hash and ra[2].prev_hash == ra[1].hash
    assert rb[0].prev_hash == audit.GENESIS
    assert list(audit.verify(session)) == []


def test_verify_reports_the_first_tampered_record(
    session: Session, clock: FrozenClock, factory: Factory, backend: str
) -> None:
    partner = factory.partner()
    records = _write(session, clock, partner.id, 4)
    if backend == "postgresql":
        session.execute(text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_change"))
    session.execute(
        update(AuditRecord)
        .where(AuditRecord.id == records[2].id)
        .values(details={"orderId": "forged"})
    )
    session.expire_all()
    broken = [b for b in audit.verify(session) if b.chain_key == str(partner.id)]
    assert len(broken) == 1
    assert broken[0].seq == 3 and broken[0].record_id == records[2].id
    assert "hash" in broken[0].reason


def test_postgresql_refuses_update_and_delete_of_records(
    session: Session, clock: FrozenClock, factory: Factory, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    partner = factory.partner()
    (rec,) = _write(session, clock, partner.id, 1)
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(update(AuditRecord).where(AuditRecord.id == rec.id).values(status="x"))
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("DELETE FROM audit_records"))
