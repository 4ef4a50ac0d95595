"""Old months of the activity log go to the artifact store; `audit verify` still proves it."""

from __future__ import annotations

import gzip
import io
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import migrate
from partnercenter.audit import archive, partitions
from partnercenter.audit import services as audit
from partnercenter.audit.models import AuditArchive, AuditChainHead, AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity.models import Tenant
from partnercenter.jobs import tasks
from partnercenter.permissions import TenantKind
from partnercenter.storage import LocalStorage, S3Storage, Storage, get_storage
from tests.conftest import (
    PG_REQUIRED,
    PG_SKIP_MESSAGE,
    _pg_database_url,
    create_pg_database,
    drop_pg_database,
)
from tests.factories import Factory
from tests.licensing.conftest import s3_endpoint, s3_storage  # noqa: F401 - fixtures

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Storage:
    """The artifact store the archives go to: a folder, or moto's S3 server."""
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")  # type: ignore[operator]
    s3: S3Storage = request.getfixturevalue("s3_storage")
    return s3


def _log(session: Session, tenant: Tenant, at: datetime, n: int = 1) -> list[AuditRecord]:
    out = []
    for i in range(n):
        out.append(
            audit.record(
                session,
                at=at + timedelta(minutes=i),
                resource_type="order",
                operation_type="create_order",
                tenant_id=tenant.id,
                user_principal_name="agent@example.com",
                customer_name='=HYPERLINK("x")' if i == 0 else None,
                details={"orderId": f"o-{i}", "note": "\\N", "nested": {"b": 1, "a": [1, "é"]}},
            )
        )
    session.flush()
    return out


def _months(session: Session) -> set[str]:
    rows = session.execute(select(AuditRecord.occurred_at)).scalars()
    return {f"{at:%Y-%m}" for at in rows}


def _history(session: Session, factory: Factory) -> tuple[Tenant, Tenant]:
    """Two partners' records over August to November 2026."""
    a, b = factory.partner(), factory.partner()
    _log(session, a, datetime(2026, 8, 3, tzinfo=UTC), 3)
    _log(session, b, datetime(2026, 8, 10, tzinfo=UTC), 2)
    # Two writers at the month's edge: seq 4 is dated October, seq 5 September.
    _log(session, a, datetime(2026, 10, 1, 0, 0, 30, tzinfo=UTC))
    _log(session, a, datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC))
    _log(session, a, datetime(2026, 10, 15, tzinfo=UTC), 2)
    _log(session, b, datetime(2026, 11, 2, tzinfo=UTC), 2)
    return a, b


def test_retention_archives_old_months_and_verify_crosses_the_boundary(
    session: Session, factory: Factory, store: Storage, backend: str
) -> None:
    _history(session, factory)
    before = session.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    due = archive.months_due(session, now=NOW, retention_months=1)
    assert [partitions.month_label(m) for m in due][:2] == ["2026-08", "2026-09"]
    done = [archive.archive_month(session, store, month=m, now=NOW) for m in due]
    assert {d.month for d in done if d is not None} >= {"2026-08", "2026-09"}

    assert _months(session) == {"2026-10", "2026-11"}
    manifests = session.execute(select(AuditArchive).order_by(AuditArchive.month)).scalars().all()
    archived = {m.month: m for m in manifests if m.record_count}
    assert {k: v.record_count for k, v in archived.items()} == {"2026-08": 5, "2026-09": 1}
    assert (
        session.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
        + sum(m.record_count for m in manifests)
        == before
    )
    # The anchors name each chain's first and last record and the hash before the month.
    august = archived["2026-08"]
    assert all(a["prev_hash"] == audit.GENESIS for a in august.anchors.values())
    assert sorted(a["count"] for a in august.anchors.values()) == [2, 3]
    # The file is compressed CSV, header first; formula-looking text is kept as it was.
    stat = store.stat(august.storage_key)
    raw = b"".join(store.open_range(august.storage_key, 0, stat.size))
    assert stat.sha256 == august.sha256
    csv_text = gzip.decompress(raw).decode()
    assert csv_text.splitlines()[0] == ",".join(archive.FIELDS)
    assert '=HYPERLINK(""x"")' in csv_text
    assert store.exists(august.storage_key.removesuffix(".csv.gz") + ".anchors.json")

    assert list(audit.verify(session, storage=store)) == []


def test_verify_reports_a_missing_archive(
    session: Session, factory: Factory, tmp_path: object
) -> None:
    store = LocalStorage(tmp_path / "storage")  # type: ignore[operator]
    _history(session, factory)
    result = archive.archive_month(
        session, store, month=partitions.month_index(datetime(2026, 8, 1, tzinfo=UTC)), now=NOW
    )
    assert result is not None
    store.delete(result.storage_key)
    broken = list(audit.verify(session, storage=store))
    assert [b.chain_key for b in broken] == ["archive:2026-08"]
    assert "missing from the artifact store" in broken[0].reason
    assert result.storage_key in broken[0].reason


def test_verify_reports_an_altered_archive(
    session: Session, factory: Factory, tmp_path: object
) -> None:
    store = LocalStorage(tmp_path / "storage")  # type: ignore[operator]
    _history(session, factory)
    result = archive.archive_month(
        session, store, month=partitions.month_index(datetime(2026, 8, 1, tzinfo=UTC)), now=NOW
    )
    assert result is not None
    stat = store.stat(result.storage_key)
    text_ = gzip.decompress(b"".join(store.open_range(result.storage_key, 0, stat.size)))
    store.put(result.storage_key, io.BytesIO(gzip.compress(text_.replace(b"o-1", b"o-9"))))
    broken = list(audit.verify(session, storage=store))
    assert [b.chain_key for b in broken] == ["archive:2026-08"]
    assert "was altered" in broken[0].reason


def test_verify_finds_a_forged_archive_whose_digest_was_rewritten_too(
    session: Session, factory: Factory, tmp_path: object, backend: str
) -> None:
    """Rewriting a file and its manifest digest still breaks the chain at the record."""
    store = LocalStorage(tmp_path / "storage")  # type: ignore[operator]
    a, b = _history(session, factory)
    result = archive.archive_month(
        session, store, month=partitions.month_index(datetime(2026, 8, 1, tzinfo=UTC)), now=NOW
    )
    assert result is not None
    stat = store.stat(result.storage_key)
    text_ = gzip.decompress(b"".join(store.open_range(result.storage_key, 0, stat.size)))
    forged = store.put(
        result.storage_key, io.BytesIO(gzip.compress(text_.replace(b'"o-1"', b'"o-9"')))
    )
    if backend == "postgresql":
        session.execute(text("ALTER TABLE audit_archives DISABLE TRIGGER audit_archives_no_change"))
    session.execute(
        AuditArchive.__table__.update()  # type: ignore[attr-defined]
        .where(AuditArchive.storage_key == result.storage_key)
        .values(sha256=forged.sha256, size_bytes=forged.size)
    )
    session.expire_all()
    broken = list(audit.verify(session, storage=store))
    # Both partners' second August record said o-1: each chain breaks there, nowhere else.
    assert sorted((b.chain_key, b.seq) for b in broken) == sorted([(str(a.id), 2), (str(b.id), 2)])
    assert all("hash" in b.reason and "2026-08" in b.reason for b in broken)


def test_verify_needs_the_store_once_months_are_archived(
    session: Session, factory: Factory, tmp_path: object
) -> None:
    store = LocalStorage(tmp_path / "storage")  # type: ignore[operator]
    _history(session, factory)
    archive.archive_month(
        session, store, month=partitions.month_index(datetime(2026, 8, 1, tzinfo=UTC)), now=NOW
    )
    broken = list(audit.verify(session))
    assert len(broken) == 1 and "artifact store" in broken[0].reason


def test_a_record_dated_in_a_month_without_partition_gets_one(
    session: Session, factory: Factory, backend: str
) -> None:
    partner = factory.partner()
    far = datetime(2031, 5, 17, tzinfo=UTC)
    (rec,) = _log(session, partner, far)
    assert session.get(AuditRecord, rec.id) is not None
    if backend == "postgresql":
        names = {p.name for p in partitions.list_partitions(session)}
        assert "audit_records_y2031m05" in names


def test_partitions_are_made_ahead_on_postgresql_only(session: Session, backend: str) -> None:
    made = partitions.ensure_ahead(session, now=datetime(2032, 1, 5, tzinfo=UTC), ahead=2)
    if backend == "sqlite":
        assert made == []
        return
    assert made == ["audit_records_y2032m01", "audit_records_y2032m02", "audit_records_y2032m03"]
    assert partitions.ensure_ahead(session, now=datetime(2032, 1, 5, tzinfo=UTC), ahead=2) == []


def test_postgresql_refuses_truncate_of_a_partition_and_changes_to_the_manifest(
    session: Session, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    partitions.ensure_ahead(session, now=datetime(2033, 3, 1, tzinfo=UTC), ahead=1)
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("TRUNCATE audit_records_y2033m03"))
    session.add(
        AuditArchive(
            month="2020-01",
            period_start=datetime(2020, 1, 1, tzinfo=UTC),
            period_end=datetime(2020, 2, 1, tzinfo=UTC),
            storage_key="activity-log/2020-01/x.csv.gz",
            sha256="0" * 64,
            size_bytes=0,
            record_count=0,
            anchors={},
            archived_at=NOW,
        )
    )
    session.flush()
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("DELETE FROM audit_archives"))


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    name, admin = create_pg_database()
    try:
        yield _pg_database_url(name)
    finally:
        drop_pg_database(name, admin)


def test_migration_partitions_a_populated_log_and_keeps_its_chains(fresh_pg: str) -> None:
    engine = make_engine(fresh_pg)
    try:
        migrate.upgrade(engine, "0020_webhooks")
        factory: sessionmaker[Session] = make_session_factory(engine)
        with factory() as s:
            partner = Tenant(
                id=uuid.uuid4(),
                kind=TenantKind.PARTNER,
                name="Contoso",
                country="US",
                created_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
            s.add(partner)
            s.flush()
            prev, at = audit.GENESIS, datetime(2024, 12, 30, tzinfo=UTC)
            for seq in range(1, 41):  # 40 records, one every 3 days: Dec 2024 to Apr 2025
                rec = AuditRecord(
                    id=uuid.uuid4(),
                    tenant_id=partner.id,
                    chain_key=str(partner.id),
                    seq=seq,
                    occurred_at=at,
                    user_principal_name="agent@example.com",
                    resource_type="order",
                    operation_type="create_order",
                    status="succeeded",
                    details={"orderId": f"o-{seq}"},
                    prev_hash=prev,
                )
                rec.hash = audit.compute_hash(rec)
                s.add(rec)
                prev, at = rec.hash, at + timedelta(days=3)
            s.add(AuditChainHead(chain_key=str(partner.id), seq=40, last_hash=prev))
            s.commit()
        migrate.upgrade(engine)
        assert migrate.drift(engine) == []
        with factory() as s:
            assert s.execute(select(func.count()).select_from(AuditRecord)).scalar_one() == 40
            labels = [p.label for p in partitions.list_partitions(s)]
            assert labels[:5] == ["2024-12", "2025-01", "2025-02", "2025-03", "2025-04"]
            kind = s.execute(
                text("SELECT relkind FROM pg_class WHERE relname = 'audit_records'")
            ).scalar_one()
            assert kind == "p"
            assert list(audit.verify(s)) == []
            # New records append to the same chain in the partitioned table.
            audit.record(
                s,
                at=datetime(2025, 4, 20, tzinfo=UTC),
                resource_type="order",
                operation_type="create_order",
                tenant_id=partner.id,
            )
            s.commit()
            assert list(audit.verify(s)) == []
    finally:
        engine.dispose()


def test_the_scheduled_job_archives_the_months_past_the_retention_once(
    session: Session,
    session_factory: sessionmaker[Session],
    factory: Factory,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _history(session, factory)
    session.commit()
    configured = settings.model_copy(
        update={"audit_retention_months": 1, "storage_url": (tmp_path / "store").as_uri()}
    )
    env = tasks.JobEnv(settings=configured, session_factory=session_factory, clock=FrozenClock(NOW))
    assert tasks.maintain_activity_log(env) == ["2026-08", "2026-09"]
    assert tasks.maintain_activity_log(env) == []
    with session_factory() as s:
        assert list(audit.verify(s, storage=get_storage(configured))) == []
        assert _months(s) == {"2026-10", "2026-11"}


def test_without_a_retention_nothing_is_archived(
    session: Session, session_factory: sessionmaker[Session], factory: Factory, settings: Settings
) -> None:
    _history(session, factory)
    session.commit()
    env = tasks.JobEnv(settings=settings, session_factory=session_factory, clock=FrozenClock(NOW))
    assert tasks.maintain_activity_log(env) == []
    assert _months(session) == {"2026-08", "2026-09", "2026-10", "2026-11"}


def test_cli_archives_and_verify_reports_a_missing_archive(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from partnercenter.cli.main import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {
        "DATABASE_URL": url,
        "PARTNERCENTER_DATA_DIR": str(tmp_path / "data"),
        "PARTNERCENTER_AUDIT_RETENTION_MONTHS": "1",
    }
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            partner = Tenant(
                kind=TenantKind.PARTNER,
                name="Contoso",
                country="US",
                created_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
            s.add(partner)
            s.flush()
            _log(s, partner, datetime(2020, 3, 1, tzinfo=UTC), 2)
            s.commit()
    finally:
        engine.dispose()
    archived = runner.invoke(app, ["audit", "archive"], env=env)
    assert archived.exit_code == 0, archived.output
    assert "Archived: 2020-03" in archived.output
    assert runner.invoke(app, ["audit", "verify"], env=env).output.strip() == (
        "The activity log is intact."
    )
    listed = runner.invoke(app, ["audit", "archives"], env=env)
    assert "2020-03" in listed.output
    for path in (tmp_path / "data" / "storage" / "activity-log").rglob("*.csv.gz"):
        path.unlink()
    broken = runner.invoke(app, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert "archive:2020-03" in broken.output and "missing" in broken.output


def test_two_nodes_making_the_same_partition_at_once_make_it_once(fresh_pg: str) -> None:
    engine = make_engine(fresh_pg)
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        month = datetime(2040, 6, 1, tzinfo=UTC)
        first, second = factory(), factory()
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def second_node() -> None:
            try:
                results.append(partitions.ensure_ahead(second, now=month, ahead=0))
            except BaseException as exc:  # reported below, with its message
                errors.append(exc)

        # The first node makes the partition and has not committed yet.
        assert partitions.ensure_ahead(first, now=month, ahead=0) == ["audit_records_y2040m06"]
        waiting = threading.Thread(target=second_node)
        waiting.start()  # finds it, or waits for the lock the first node holds
        first.commit()
        waiting.join(timeout=60)
        assert not waiting.is_alive(), "the second node is still waiting for the lock"
        assert not errors, repr(errors)
        second.commit()
        assert results == [[]]  # it found the partition made and made nothing
        with factory() as s:
            names = [p.name for p in partitions.list_partitions(s)]
            assert names.count("audit_records_y2040m06") == 1
        first.close()
        second.close()
    finally:
        engine.dispose()


def test_a_partition_made_by_a_transaction_that_rolled_back_is_made_again(fresh_pg: str) -> None:
    """Only committed partitions are remembered: a rolled-back one is not taken as there."""
    engine = make_engine(fresh_pg)
    try:
        migrate.upgrade(engine)
        at = datetime(2041, 2, 3, tzinfo=UTC)

        def write(s: Session) -> None:
            audit.record(
                s, at=at, resource_type="order", operation_type="create_order", tenant_id=None
            )
            s.flush()

        conn = engine.connect()
        trans = conn.begin()
        for _ in range(2):  # two sessions on one connection: the second sees it uncommitted
            with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
                write(s)
                s.commit()  # releases its savepoint: the outer transaction is still open
        trans.rollback()
        conn.close()
        with make_session_factory(engine)() as s:
            write(s)
            s.commit()
            assert "audit_records_y2041m02" in {p.name for p in partitions.list_partitions(s)}
    finally:
        engine.dispose()
