"""The role x action table the whole application enforces.

This module is the one place that says who may do what. Routes name an :class:`Action`;
:func:`allowed` answers from :data:`PERMISSIONS`. ``docs/dev/permissions.md`` is generated
from this table and a test checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class TenantKind(StrEnum):
    PROVIDER = "provider"
    PARTNER = "partner"
    CUSTOMER = "customer"


class Role(StrEnum):
    """A role id as the API spells it; what it means depends on the tenant kind."""

    GLOBAL_ADMIN = "global_admin"
    ADMIN_AGENT = "admin_agent"
    SALES_AGENT = "sales_agent"
    HELPDESK_AGENT = "helpdesk_agent"
    BILLING_ADMIN = "billing_admin"
    ACCOUNT_ADMIN = "account_admin"
    REFERRAL_ADMIN = "referral_admin"
    MARKETING_CONTENT_ADMIN = "marketing_content_admin"
    USER = "user"
    PROVIDER_ADMIN = "provider_admin"
    SUPPORT_AGENT = "support_agent"


ROLES_BY_KIND: dict[TenantKind, tuple[Role, ...]] = {
    TenantKind.PROVIDER: (Role.PROVIDER_ADMIN, Role.SUPPORT_AGENT),
    TenantKind.PARTNER: (
        Role.GLOBAL_ADMIN,
        Role.ADMIN_AGENT,
        Role.SALES_AGENT,
        Role.HELPDESK_AGENT,
        Role.BILLING_ADMIN,
        Role.ACCOUNT_ADMIN,
        Role.REFERRAL_ADMIN,
        Role.MARKETING_CONTENT_ADMIN,
    ),
    TenantKind.CUSTOMER: (Role.GLOBAL_ADMIN, Role.BILLING_ADMIN, Role.USER),
}

ROLE_LABELS: dict[Role, str] = {
    Role.GLOBAL_ADMIN: "Global admin",
    Role.ADMIN_AGENT: "Admin agent",
    Role.SALES_AGENT: "Sales agent",
    Role.HELPDESK_AGENT: "Helpdesk agent",
    Role.BILLING_ADMIN: "Billing admin",
    Role.ACCOUNT_ADMIN: "Account admin",
    Role.REFERRAL_ADMIN: "Referral admin",
    Role.MARKETING_CONTENT_ADMIN: "Marketing content admin",
    Role.USER: "User",
    Role.PROVIDER_ADMIN: "Provider admin",
    Role.SUPPORT_AGENT: "Support agent",
}


class Action(StrEnum):
    # provider
    MANAGE_PARTNERS = "partners:manage"
    MANAGE_PROVIDER_USERS = "provider_users:manage"
    MANAGE_CATALOG = "catalog:manage"
    MANAGE_KEY_INVENTORY = "key_inventory:manage"
    MANAGE_TAX_RATES = "tax_rates:manage"
    CLOSE_BILLING_PERIOD = "billing_periods:close"
    VIEW_BILLING_PERIODS = "billing_periods:view"
    WORK_SUPPORT_QUEUE = "support_queue:work"
    READ_ALL_ACTIVITY = "activity_log:read_all"
    MOVE_SANDBOX_CLOCK = "sandbox_clock:move"
    VIEW_BACKGROUND_JOBS = "background_jobs:view"
    RETRY_MAIL = "mail_outbox:retry"
    RETRY_WEBHOOK_DELIVERY = "webhook_deliveries:retry"
    # partner
    MANAGE_PARTNER_USERS = "partner_users:manage"
    VIEW_CUSTOMERS = "customers:view"
    CREATE_CUSTOMER = "customers:create"
    MANAGE_CUSTOMER_USERS = "customer_users:manage"
    BROWSE_CATALOG = "catalog:browse"
    BUY_FOR_CUSTOMER = "orders:create"
    VIEW_ORDERS = "orders:view"
    VIEW_SOFTWARE = "software:view"
    GET_SOFTWARE_KEY = "software:get_key"
    DOWNLOAD_SOFTWARE = "software:download"
    COPY_DOWNLOAD_LINK = "software:copy_link"
    CANCEL_PURCHASE = "orders:cancel"
    READ_ACTIVITY_LOG = "activity_log:read"
    VIEW_INVOICES = "invoices:view"
    FILE_SUPPORT_REQUEST = "support_requests:file"
    MANAGE_WEBHOOKS = "webhooks:manage"
    VIEW_WEBHOOK_DELIVERIES = "webhook_deliveries:view"
    VIEW_SUPPORT_REQUESTS = "support_requests:view"
    # customer (Admin Center)
    VIEW_OWN_SOFTWARE = "own_software:view"
    GET_OWN_SOFTWARE_KEY = "own_software:get_key"
    DOWNLOAD_OWN_SOFTWARE = "own_software:download"
    READ_OWN_ACTIVITY = "own_activity_log:read"
    # every signed-in user
    MANAGE_OWN_API_TOKENS = "api_tokens:manage_own"


P = TenantKind.PROVIDER
R = TenantKind.PARTNER
C = TenantKind.CUSTOMER

_PARTNER_STAFF = (
    Role.GLOBAL_ADMIN,
    Role.ADMIN_AGENT,
    Role.SALES_AGENT,
    Role.HELPDESK_AGENT,
)


def _grants(kind: TenantKind, *roles: Role) -> frozenset[tuple[TenantKind, Role]]:
    return frozenset((kind, role) for role in roles)


def _everyone() -> frozenset[tuple[TenantKind, Role]]:
    return frozenset((kind, role) for kind, roles in ROLES_BY_KIND.items() for role in roles)


PERMISSIONS: dict[Action, frozenset[tuple[TenantKind, Role]]] = {
    Action.MANAGE_PARTNERS: _grants(P, Role.PROVIDER_ADMIN),
    Action.MANAGE_PROVIDER_USERS: _grants(P, Role.PROVIDER_ADMIN),
    Action.MANAGE_CATALOG: _grants(P, Role.PROVIDER_ADMIN),
    Action.MANAGE_KEY_INVENTORY: _grants(P, Role.PROVIDER_ADMIN),
    Action.MANAGE_TAX_RATES: _grants(P, Role.PROVIDER_ADMIN),
    Action.CLOSE_BILLING_PERIOD: _grants(P, Role.PROVIDER_ADMIN),
    Action.VIEW_BILLING_PERIODS: _grants(P, Role.PROVIDER_ADMIN),
    Action.WORK_SUPPORT_QUEUE: _grants(P, Role.PROVIDER_ADMIN, Role.SUPPORT_AGENT),
    Action.READ_ALL_ACTIVITY: _grants(P, Role.PROVIDER_ADMIN),
    Action.MOVE_SANDBOX_CLOCK: _grants(P, Role.PROVIDER_ADMIN),
    Action.VIEW_BACKGROUND_JOBS: _grants(P, Role.PROVIDER_ADMIN, Role.SUPPORT_AGENT),
    Action.RETRY_MAIL: _grants(P, Role.PROVIDER_ADMIN, Role.SUPPORT_AGENT),
    # Any partner's delivery, sent again once its receiver is back (Background jobs page).
    Action.RETRY_WEBHOOK_DELIVERY: _grants(P, Role.PROVIDER_ADMIN),
    # A partner's Global admin manages the partner's users (provider admins do too, see API).
    Action.MANAGE_PARTNER_USERS: _grants(R, Role.GLOBAL_ADMIN),
    Action.VIEW_CUSTOMERS: _grants(R, *_PARTNER_STAFF),
    Action.CREATE_CUSTOMER: _grants(R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT, Role.SALES_AGENT),
    Action.MANAGE_CUSTOMER_USERS: _grants(R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT),
    # Provider admins browse the catalog as any market sees it.
    Action.BROWSE_CATALOG: _grants(R, *_PARTNER_STAFF) | _grants(P, Role.PROVIDER_ADMIN),
    # Seed: "Appropriate roles: Admin agent | Global admin".
    Action.BUY_FOR_CUSTOMER: _grants(R, Role.ADMIN_AGENT, Role.GLOBAL_ADMIN),
    Action.VIEW_ORDERS: _grants(R, *_PARTNER_STAFF),
    Action.MANAGE_WEBHOOKS: _grants(R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT),
    Action.VIEW_WEBHOOK_DELIVERIES: _grants(R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT),
    Action.VIEW_SOFTWARE: _grants(R, Role.ADMIN_AGENT, Role.GLOBAL_ADMIN),
    # Seed: "You must be an Admin agent in Partner Center to obtain the link to keys and downloads."
    Action.GET_SOFTWARE_KEY: _grants(R, Role.ADMIN_AGENT),
    Action.DOWNLOAD_SOFTWARE: _grants(R, Role.ADMIN_AGENT),
    Action.COPY_DOWNLOAD_LINK: _grants(R, Role.ADMIN_AGENT),
    # Seed: "You must be an Admin agent to cancel a purchase."
    Action.CANCEL_PURCHASE: _grants(R, Role.ADMIN_AGENT),
    # Seed: "Global administrator, Account admin, Referral admin, or Marketing content admin".
    Action.READ_ACTIVITY_LOG: _grants(
        R,
        Role.GLOBAL_ADMIN,
        Role.ACCOUNT_ADMIN,
        Role.REFERRAL_ADMIN,
        Role.MARKETING_CONTENT_ADMIN,
    ),
    Action.VIEW_INVOICES: _grants(R, Role.GLOBAL_ADMIN, Role.BILLING_ADMIN),
    Action.FILE_SUPPORT_REQUEST: _grants(
        R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT, Role.HELPDESK_AGENT
    ),
    Action.VIEW_SUPPORT_REQUESTS: _grants(
        R, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT, Role.HELPDESK_AGENT
    ),
    Action.VIEW_OWN_SOFTWARE: _grants(C, Role.GLOBAL_ADMIN, Role.BILLING_ADMIN),
    # Seed: customers see keys and downloads in the Admin Center with the Global Admin role.
    Action.GET_OWN_SOFTWARE_KEY: _grants(C, Role.GLOBAL_ADMIN),
    Action.DOWNLOAD_OWN_SOFTWARE: _grants(C, Role.GLOBAL_ADMIN),
    Action.READ_OWN_ACTIVITY: _grants(C, Role.GLOBAL_ADMIN),
    Action.MANAGE_OWN_API_TOKENS: _everyone(),
}


def allowed(kind: TenantKind, roles: Iterable[Role], action: Action) -> bool:
    """Whether a user of a tenant of ``kind`` holding ``roles`` may perform ``action``."""
    grants = PERMISSIONS[action]
    return any((kind, role) in grants for role in roles)


def valid_roles(kind: TenantKind) -> tuple[Role, ...]:
    return ROLES_BY_KIND[kind]


def render_markdown() -> str:
    """The permissions table as Markdown, one row per action."""
    lines = [
        "# Permissions",
        "",
        "Generated from `src/partnercenter/permissions.py` "
        "(`partnercenter permissions --markdown`); a test keeps it in step.",
        "",
        "| action | provider | partner | customer |",
        "|---|---|---|---|",
    ]
    for action in Action:
        cells = []
        for kind in (P, R, C):
            names = [
                ROLE_LABELS[r] for r in ROLES_BY_KIND[kind] if (kind, r) in PERMISSIONS[action]
            ]
            cells.append(", ".join(names) or "-")
        lines.append(f"| `{action.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
