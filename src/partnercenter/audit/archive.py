"""Retention of the activity log: old months go to the artifact store, and the chain still holds.

With ``PARTNERCENTER_AUDIT_RETENTION_MONTHS`` = N, every month that ended more than N months
before the current one is archived: its records are written, ordered by chain and sequence,
as a gzip-compressed CSV file to the artifact store (``activity-log/YYYY-MM/...csv.gz``,
beside it a ``.anchors.json`` with the same anchors), the file's SHA-256 is checked against
what the store reports, a manifest row (``audit_archives``: key, digest, size, count and each
chain's anchors) is written, and only then are the records removed: on PostgreSQL the month's
partition is detached and dropped, on SQLite the month's rows are deleted (and the count
deleted must equal the count archived, or nothing is). All of it is one transaction under the
partition lock, so two nodes never archive the same month, and a crash leaves at worst an
unreferenced file in the store, never a month without its archive.

:func:`verify` walks every chain from its first record: archived months first (each file's
digest checked against its manifest, each row's hash recomputed, the anchors compared), then
the live rows after them. A missing or altered archive is reported by name.

Archive format (UTF-8 CSV, header row, one row per record, the columns of ``FIELDS``): a NULL
is written ``\\N``; a text value that starts with a backslash gets one more in front.
``occurred_at`` is ISO 8601 with offset, ``details`` the JSON text.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from partnercenter.audit import partitions
from partnercenter.audit.models import AuditArchive, AuditChainHead, AuditRecord
from partnercenter.audit.services import GENESIS, BrokenLink, compute_hash
from partnercenter.storage import CHUNK_SIZE, Storage, StoredObjectNotFound

FIELDS = (
    "id",
    "tenant_id",
    "chain_key",
    "seq",
    "occurred_at",
    "user_id",
    "user_principal_name",
    "customer_id",
    "customer_name",
    "resource_type",
    "operation_type",
    "status",
    "client_address",
    "user_agent",
    "correlation_id",
    "details",
    "prev_hash",
    "hash",
)
NULL = "\\N"
PREFIX = "activity-log"
# Out-of-order sequence numbers held while walking archives (records dated across a month's
# edge out of sequence order); more than this means records are missing.
MAX_PENDING = 100_000
DETACH_LOCK_TIMEOUT = "5s"


def _cell(value: Any) -> str:
    if value is None:
        return NULL
    text_ = value if isinstance(value, str) else str(value)
    return "\\" + text_ if text_.startswith("\\") else text_


def _uncell(cell: str) -> str | None:
    if cell == NULL:
        return None
    return cell[1:] if cell.startswith("\\") else cell


def _uuid(cell: str) -> uuid.UUID | None:
    value = _uncell(cell)
    return uuid.UUID(value) if value is not None else None


def _row_cells(r: AuditRecord) -> list[str]:
    return [
        _cell(r.id),
        _cell(r.tenant_id),
        _cell(r.chain_key),
        str(r.seq),
        r.occurred_at.isoformat(),
        _cell(r.user_id),
        _cell(r.user_principal_name),
        _cell(r.customer_id),
        _cell(r.customer_name),
        _cell(r.resource_type),
        _cell(r.operation_type),
        _cell(r.status),
        _cell(r.client_address),
        _cell(r.user_agent),
        _cell(r.correlation_id),
        json.dumps(r.details),
        r.prev_hash,
        r.hash,
    ]


def _record_of(cells: list[str]) -> AuditRecord:
    """A transient record (never added to a session) rebuilt from an archive row."""
    c = dict(zip(FIELDS, cells, strict=True))
    return AuditRecord(
        id=_uuid(c["id"]),
        tenant_id=_uuid(c["tenant_id"]),
        chain_key=_uncell(c["chain_key"]),
        seq=int(c["seq"]),
        occurred_at=datetime.fromisoformat(c["occurred_at"]),
        user_id=_uuid(c["user_id"]),
        user_principal_name=_uncell(c["user_principal_name"]),
        customer_id=_uuid(c["customer_id"]),
        customer_name=_uncell(c["customer_name"]),
        resource_type=_uncell(c["resource_type"]),
        operation_type=_uncell(c["operation_type"]),
        status=_uncell(c["status"]),
        client_address=_uncell(c["client_address"]),
        user_agent=_uncell(c["user_agent"]),
        correlation_id=_uncell(c["correlation_id"]),
        details=json.loads(c["details"]),
        prev_hash=c["prev_hash"],
        hash=c["hash"],
    )


# --- archiving -------------------------------------------------------------------------


def months_due(session: Session, *, now: datetime, retention_months: int) -> list[int]:
    """The months (indexes, oldest first) older than the retention that still hold records.

    PostgreSQL: every partition before the cut-off month (empty ones too, so they go away);
    SQLite: every month before it that has a record.
    """
    cutoff = partitions.month_index(now) - retention_months
    if partitions.is_partitioned(session):
        return [p.month for p in partitions.list_partitions(session) if p.month < cutoff]
    oldest = session.execute(select(func.min(AuditRecord.occurred_at))).scalar_one_or_none()
    if oldest is None:
        return []
    months = []
    for index in range(partitions.month_index(oldest), cutoff):
        found = session.execute(
            select(AuditRecord.id)
            .where(
                AuditRecord.occurred_at >= partitions.month_start(index),
                AuditRecord.occurred_at < partitions.month_start(index + 1),
            )
            .limit(1)
        ).first()
        if found is not None:
            months.append(index)
    return months


def _write_month(session: Session, index: int, out: IO[bytes]) -> tuple[int, dict[str, Any]]:
    """The month's records as gzip CSV into ``out``; returns the count and chain anchors."""
    anchors: dict[str, dict[str, Any]] = {}
    count = 0
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        textual = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        writer = csv.writer(textual, lineterminator="\n")
        writer.writerow(FIELDS)
        rows = session.execute(
            select(AuditRecord)
            .where(
                AuditRecord.occurred_at >= partitions.month_start(index),
                AuditRecord.occurred_at < partitions.month_start(index + 1),
            )
            .order_by(AuditRecord.chain_key, AuditRecord.seq)
            .execution_options(yield_per=2000)
        ).scalars()
        for r in rows:
            writer.writerow(_row_cells(r))
            a = anchors.get(r.chain_key)
            if a is None:
                anchors[r.chain_key] = {
                    "first_seq": r.seq,
                    "last_seq": r.seq,
                    "count": 1,
                    "prev_hash": r.prev_hash,
                    "last_hash": r.hash,
                }
            else:
                a["last_seq"], a["last_hash"] = r.seq, r.hash
                a["count"] += 1
            count += 1
            if count % 2000 == 0:
                session.expunge_all()  # constant memory over a month of any size
        textual.flush()
        textual.detach()
    return count, anchors


@dataclass(frozen=True)
class ArchivedMonth:
    """What one archiving step did."""

    month: str
    storage_key: str
    record_count: int
    sha256: str


class ArchiveFailed(RuntimeError):
    """The archive could not be written and checked; nothing was removed."""


def archive_month(
    session: Session, storage: Storage, *, month: int, now: datetime
) -> ArchivedMonth | None:
    """Archive one month and remove its records, in the caller's transaction.

    Returns None when another node archived it first. Raises :class:`ArchiveFailed` when
    the stored file's digest is not the one written (the caller rolls back: nothing removed).
    """
    label = partitions.month_label(month)
    partitioned = partitions.is_partitioned(session)
    if partitioned:
        partitions.lock(session)
        name = partitions.partition_name(month)
        if session.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
            return None
        # Late records for this month wait until it is archived (then get a new partition).
        session.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))
    key = f"{PREFIX}/{label}/audit-records-{label}-{uuid.uuid4().hex[:12]}.csv.gz"
    with tempfile.TemporaryFile() as tmp:
        count, anchors = _write_month(session, month, tmp)
        tmp.seek(0)
        digest = hashlib.sha256()
        while chunk := tmp.read(CHUNK_SIZE):
            digest.update(chunk)
        size = tmp.tell()
        tmp.seek(0)
        stored = storage.put(key, tmp)
    if stored.sha256 != digest.hexdigest() or stored.size != size:
        raise ArchiveFailed(
            f"the store holds {key} with SHA-256 {stored.sha256} ({stored.size} bytes), "
            f"not the {digest.hexdigest()} ({size} bytes) written; nothing was removed"
        )
    manifest = AuditArchive(
        month=label,
        period_start=partitions.month_start(month),
        period_end=partitions.month_start(month + 1),
        storage_key=key,
        sha256=stored.sha256,
        size_bytes=stored.size,
        record_count=count,
        anchors=anchors,
        archived_at=now,
    )
    session.add(manifest)
    sidecar = json.dumps(
        {
            "month": label,
            "file": key,
            "sha256": stored.sha256,
            "size": stored.size,
            "records": count,
            "fields": list(FIELDS),
            "null": NULL,
            "anchors": anchors,
        },
        indent=1,
        sort_keys=True,
    ).encode()
    storage.put(key.removesuffix(".csv.gz") + ".anchors.json", io.BytesIO(sidecar))
    session.flush()  # the manifest row exists before the records go
    if partitioned:
        # Detaching needs the parent's exclusive lock: a long read (an export) holds it off,
        # and every writer of the activity log would queue behind our wait. Give up after a
        # few seconds instead (the transaction rolls back, nothing is removed, the file stays
        # unreferenced); the next minute's run tries again.
        session.execute(text(f"SET LOCAL lock_timeout = '{DETACH_LOCK_TIMEOUT}'"))
        session.execute(text(f"ALTER TABLE audit_records DETACH PARTITION {name}"))
        session.execute(text(f"DROP TABLE {name}"))
        partitions.forget(session, month)
    else:
        removed = session.execute(
            delete(AuditRecord).where(
                AuditRecord.occurred_at >= partitions.month_start(month),
                AuditRecord.occurred_at < partitions.month_start(month + 1),
            )
        )
        if removed.rowcount != count:  # type: ignore[attr-defined]
            raise ArchiveFailed(
                f"{label}: {removed.rowcount} records to remove, "  # type: ignore[attr-defined]
                f"{count} archived; nothing was removed"
            )
    return ArchivedMonth(label, key, count, stored.sha256)


# --- verifying across archives ---------------------------------------------------------


class _Walk:
    """One chain walked in sequence order; records may be offered out of order."""

    def __init__(self) -> None:
        self.next_seq = 1
        self.prev_hash = GENESIS
        self.pending: dict[int, tuple[str, str, uuid.UUID | None]] = {}

    def offer(
        self, seq: int, prev_hash: str, hash_: str, record_id: uuid.UUID | None
    ) -> BrokenLink | None:
        if seq < self.next_seq or seq in self.pending:
            return BrokenLink("", seq, record_id, f"record {seq} appears twice")
        self.pending[seq] = (prev_hash, hash_, record_id)
        while self.next_seq in self.pending:
            prev, h, rid = self.pending.pop(self.next_seq)
            if prev != self.prev_hash:
                return BrokenLink(
                    "", self.next_seq, rid, "previous-hash does not match the record before it"
                )
            self.prev_hash = h
            self.next_seq += 1
        if len(self.pending) > MAX_PENDING:
            return self.missing()
        return None

    def missing(self) -> BrokenLink:
        return BrokenLink("", self.next_seq, None, f"record {self.next_seq} is missing")


def _download(storage: Storage, archive: AuditArchive, out: IO[bytes]) -> str | None:
    """Copy the archive into ``out``; returns what is wrong with it, or None."""
    try:
        stat = storage.stat(archive.storage_key)
    except StoredObjectNotFound:
        return f"archive {archive.storage_key} is missing from the artifact store"
    digest = hashlib.sha256()
    for chunk in storage.open_range(archive.storage_key, 0, stat.size):
        digest.update(chunk)
        out.write(chunk)
    if digest.hexdigest() != archive.sha256 or stat.size != archive.size_bytes:
        return (
            f"archive {archive.storage_key} was altered: its SHA-256 is {digest.hexdigest()} "
            f"({stat.size} bytes), the manifest says {archive.sha256} ({archive.size_bytes})"
        )
    return None


def _walk_archive(
    archive: AuditArchive, data: IO[bytes], walks: dict[str, _Walk], broken: set[str]
) -> Iterator[BrokenLink]:
    """Offer the archive's rows to the walks; yields what is wrong (chain key filled in).

    Chains in ``broken`` are not walked (their first break is already reported); a chain
    that breaks here is added to it.
    """
    seen: dict[str, dict[str, Any]] = {}
    with gzip.GzipFile(fileobj=data, mode="rb") as gz:
        reader = csv.reader(io.TextIOWrapper(gz, encoding="utf-8", newline=""))
        if next(reader, None) != list(FIELDS):
            yield BrokenLink(
                f"archive:{archive.month}", 0, None, f"{archive.storage_key}: unknown columns"
            )
            return
        for cells in reader:
            r = _record_of(cells)
            chain = r.chain_key
            a = seen.get(chain)
            if a is None:
                seen[chain] = a = {
                    "first_seq": r.seq,
                    "count": 0,
                    "prev_hash": r.prev_hash,
                }
            a["last_seq"], a["last_hash"] = r.seq, r.hash
            a["count"] += 1
            if chain in broken:
                continue
            link: BrokenLink | None
            if compute_hash(r) != r.hash:
                link = BrokenLink(chain, r.seq, r.id, "content does not match its hash")
            else:
                link = walks.setdefault(chain, _Walk()).offer(r.seq, r.prev_hash, r.hash, r.id)
            if link is not None:
                broken.add(chain)
                yield BrokenLink(
                    chain, link.seq, link.record_id, f"{link.reason} (archive {archive.month})"
                )
    if seen != archive.anchors:
        yield BrokenLink(
            f"archive:{archive.month}",
            0,
            None,
            f"{archive.storage_key}: its chain anchors do not match the manifest",
        )


def verify(
    session: Session, *, storage: Storage | None = None, batch: int = 5000
) -> Iterator[BrokenLink]:
    """Walk every chain from its first record, archives first; yield each chain's first break.

    A missing or altered archive yields a link with chain key ``archive:YYYY-MM``; the chains
    it held are not walked further (their break is the archive).
    """
    walks: dict[str, _Walk] = {}
    dead: set[str] = set()
    archives = (
        session.execute(
            select(AuditArchive).order_by(AuditArchive.period_start, AuditArchive.archived_at)
        )
        .scalars()
        .all()
    )
    if archives and storage is None:
        yield BrokenLink(
            "archive", 0, None, "the activity log has archives: give the artifact store to read"
        )
        return
    for archive in archives:
        with tempfile.TemporaryFile() as data:
            assert storage is not None
            problem = _download(storage, archive, data)
            if problem is not None:
                dead.update(archive.anchors)
                yield BrokenLink(f"archive:{archive.month}", 0, None, problem)
                continue
            data.seek(0)
            for found in _walk_archive(archive, data, walks, dead):
                if found.chain_key.startswith("archive:"):
                    dead.update(archive.anchors)
                yield found
    heads = session.execute(select(AuditChainHead)).scalars().all()
    for head in heads:
        if head.chain_key in dead:
            continue
        walk = walks.get(head.chain_key) or _Walk()
        link = _walk_live(session, head.chain_key, walk, batch)
        if link is None and (walk.next_seq - 1 != head.seq or walk.prev_hash != head.last_hash):
            link = BrokenLink("", walk.next_seq, None, "the newest records are missing")
        if link is not None:
            yield BrokenLink(head.chain_key, link.seq, link.record_id, link.reason)


def _walk_live(session: Session, chain_key: str, walk: _Walk, batch: int) -> BrokenLink | None:
    last_seq = walk.next_seq - 1
    while True:
        rows = (
            session.execute(
                select(AuditRecord)
                .where(AuditRecord.chain_key == chain_key, AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for row in rows:
            if compute_hash(row) != row.hash:
                return BrokenLink("", row.seq, row.id, "content does not match its hash")
            if row.seq > walk.next_seq and walk.next_seq not in walk.pending:
                return walk.missing()
            link = walk.offer(row.seq, row.prev_hash, row.hash, row.id)
            if link is not None:
                return link
            last_seq = row.seq
        session.expunge_all()
    if walk.pending:
        return walk.missing()
    return None
