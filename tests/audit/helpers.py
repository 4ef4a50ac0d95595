"""Writing activity log records the way the other areas do, for the activity log tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User

KEY = ("software_key", "get_software_key")
LINK = ("software_download_link", "get_software_download_link")
DOWNLOAD = ("software_download_link", "download_software")
ORDER = ("order", "create_order")
CANCEL = ("order", "cancel_order")


def log(
    session: Session,
    clock: FrozenClock,
    *,
    tenant: Tenant,
    kind: tuple[str, str] = KEY,
    user: User | None = None,
    customer: Tenant | None = None,
    upn: str | None = None,
    details: dict[str, Any] | None = None,
    advance: float = 1,
) -> AuditRecord:
    """Append one record at the clock's time, then move the clock on."""
    rec = audit.record(
        session,
        at=clock.now(),
        resource_type=kind[0],
        operation_type=kind[1],
        tenant_id=tenant.id,
        actor=identity.actor_for(user) if user else None,
        user_principal_name=upn,
        customer_id=customer.id if customer else None,
        customer_name=customer.name if customer else None,
        details=details
        if details is not None
        else {"orderId": "o-1", "product": "Windows Server 2022", "version": "2022"},
    )
    session.flush()  # the API reads through its own session
    clock.advance(seconds=advance)
    return rec
