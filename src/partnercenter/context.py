"""Who is acting and from where: passed explicitly to services that audit or authorise."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from partnercenter.permissions import Action, Role, TenantKind, allowed


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, for the activity log."""

    client_address: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Actor:
    """The signed-in user as services see it."""

    user_id: uuid.UUID
    email: str
    display_name: str
    tenant_id: uuid.UUID
    tenant_kind: TenantKind
    tenant_name: str
    roles: frozenset[Role] = field(default_factory=frozenset)

    def can(self, action: Action) -> bool:
        return allowed(self.tenant_kind, self.roles, action)
