"""Imports every area's tables so the metadata (and Alembic) sees them all."""

from partnercenter.audit import models as audit_models
from partnercenter.billing import models as billing_models
from partnercenter.catalog import models as catalog_models
from partnercenter.db import Base
from partnercenter.idempotency import IdempotencyKey
from partnercenter.identity import models as identity_models
from partnercenter.jobs import models as jobs_models
from partnercenter.licensing import models as licensing_models
from partnercenter.orders import models as orders_models
from partnercenter.support import models as support_models
from partnercenter.webhooks import models as webhooks_models

__all__ = [
    "Base",
    "IdempotencyKey",
    "audit_models",
    "billing_models",
    "catalog_models",
    "identity_models",
    "jobs_models",
    "licensing_models",
    "orders_models",
    "support_models",
    "webhooks_models",
]
