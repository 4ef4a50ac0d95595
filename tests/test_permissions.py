"""The role x action table: the seed's binding rows, the whole table walked, the docs in step."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from partnercenter.permissions import (
    PERMISSIONS,
    ROLE_LABELS,
    ROLES_BY_KIND,
    Action,
    Role,
    TenantKind,
    allowed,
    render_markdown,
)

P, R, C = TenantKind.PROVIDER, TenantKind.PARTNER, TenantKind.CUSTOMER
ROOT = Path(__file__).resolve().parents[1]

# Every (tenant kind, role) pair a user can hold, and some that no user can (a partner role
# named like a customer role must not leak across kinds).
PAIRS = [(kind, role) for kind in TenantKind for role in Role]


def _holders(action: Action) -> set[tuple[TenantKind, Role]]:
    """Who may perform the action, found by asking allowed() for every single-role user."""
    return {(kind, role) for kind, role in PAIRS if allowed(kind, [role], action)}


# The seed's binding rows (SPEC.md section 2), written out independently of permissions.py.
BINDING_ROWS: dict[Action, set[tuple[TenantKind, Role]]] = {
    # "Appropriate roles: Admin agent | Global admin"
    Action.BUY_FOR_CUSTOMER: {(R, Role.ADMIN_AGENT), (R, Role.GLOBAL_ADMIN)},
    Action.VIEW_SOFTWARE: {(R, Role.ADMIN_AGENT), (R, Role.GLOBAL_ADMIN)},
    # "You must be an Admin agent ... to obtain the link to keys and downloads"
    Action.GET_SOFTWARE_KEY: {(R, Role.ADMIN_AGENT)},
    Action.DOWNLOAD_SOFTWARE: {(R, Role.ADMIN_AGENT)},
    Action.COPY_DOWNLOAD_LINK: {(R, Role.ADMIN_AGENT)},
    # "You must be an Admin agent to cancel a purchase"
    Action.CANCEL_PURCHASE: {(R, Role.ADMIN_AGENT)},
    # "Global administrator, Account admin, Referral admin, or Marketing content admin"
    Action.READ_ACTIVITY_LOG: {
        (R, Role.GLOBAL_ADMIN),
        (R, Role.ACCOUNT_ADMIN),
        (R, Role.REFERRAL_ADMIN),
        (R, Role.MARKETING_CONTENT_ADMIN),
    },
    # Customers see keys and downloads in the Admin Center with the Global admin role only.
    Action.GET_OWN_SOFTWARE_KEY: {(C, Role.GLOBAL_ADMIN)},
    Action.DOWNLOAD_OWN_SOFTWARE: {(C, Role.GLOBAL_ADMIN)},
}


@pytest.mark.parametrize("action", list(BINDING_ROWS), ids=lambda a: a.value)
def test_seed_binding_rows(action: Action) -> None:
    assert _holders(action) == BINDING_ROWS[action]


def test_admin_agent_reads_the_activity_log_only_with_another_role_that_may() -> None:
    assert not allowed(R, [Role.ADMIN_AGENT], Action.READ_ACTIVITY_LOG)
    for other in (Role.GLOBAL_ADMIN, Role.ACCOUNT_ADMIN, Role.REFERRAL_ADMIN):
        assert allowed(R, [Role.ADMIN_AGENT, other], Action.READ_ACTIVITY_LOG)
    for other in (Role.SALES_AGENT, Role.HELPDESK_AGENT, Role.BILLING_ADMIN):
        assert not allowed(R, [Role.ADMIN_AGENT, other], Action.READ_ACTIVITY_LOG)


def test_partners_get_keys_only_in_partner_center_and_customers_only_in_admin_center() -> None:
    partner_side = (Action.GET_SOFTWARE_KEY, Action.DOWNLOAD_SOFTWARE, Action.COPY_DOWNLOAD_LINK)
    customer_side = (Action.GET_OWN_SOFTWARE_KEY, Action.DOWNLOAD_OWN_SOFTWARE)
    for action in partner_side:
        assert all(kind == R for kind, _ in _holders(action))
    for action in customer_side:
        assert all(kind == C for kind, _ in _holders(action))


def test_global_admin_of_a_partner_is_not_an_admin_agent() -> None:
    # Seed: keys, downloads and cancellation need the Admin agent role itself.
    for action in (Action.GET_SOFTWARE_KEY, Action.CANCEL_PURCHASE):
        assert not allowed(R, [Role.GLOBAL_ADMIN], action)
        assert allowed(R, [Role.GLOBAL_ADMIN, Role.ADMIN_AGENT], action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_every_action_walked_for_every_kind_and_role(action: Action) -> None:
    grants = PERMISSIONS[action]
    assert grants, f"{action.value} is granted to nobody"
    for kind, role in PAIRS:
        expected = (kind, role) in grants
        assert allowed(kind, [role], action) is expected, (action.value, kind.value, role.value)
        # A role is only ever granted where it exists: a tenant kind's own roles.
        if expected:
            assert role in ROLES_BY_KIND[kind], (action.value, kind.value, role.value)
    assert not allowed(R, [], action) and not allowed(C, [], action) and not allowed(P, [], action)


@pytest.mark.parametrize("kind", list(TenantKind), ids=lambda k: k.value)
def test_several_roles_allow_what_any_of_them_allows(kind: TenantKind) -> None:
    roles = ROLES_BY_KIND[kind]
    for action in Action:
        for pair in combinations(roles, 2):
            assert allowed(kind, pair, action) == any(allowed(kind, [r], action) for r in pair)


def test_provider_actions_belong_to_the_provider_only() -> None:
    provider_only = [
        Action.MANAGE_PARTNERS,
        Action.MANAGE_PROVIDER_USERS,
        Action.MANAGE_CATALOG,
        Action.MANAGE_KEY_INVENTORY,
        Action.CLOSE_BILLING_PERIOD,
        Action.READ_ALL_ACTIVITY,
        Action.MOVE_SANDBOX_CLOCK,
    ]
    for action in provider_only:
        assert _holders(action) == {(P, Role.PROVIDER_ADMIN)}, action.value
    assert _holders(Action.MANAGE_PARTNER_USERS) == {(R, Role.GLOBAL_ADMIN)}
    everyone = {(k, r) for k, rs in ROLES_BY_KIND.items() for r in rs}
    assert _holders(Action.MANAGE_OWN_API_TOKENS) == everyone


def test_docs_permissions_md_is_generated_from_the_table() -> None:
    doc = (ROOT / "docs/dev/permissions.md").read_text()
    assert doc == render_markdown(), (
        "docs/dev/permissions.md is stale: run "
        "`.venv/bin/partnercenter permissions --markdown > docs/dev/permissions.md`"
    )
    for action in Action:
        assert f"| `{action.value}` |" in doc
    assert set(ROLE_LABELS) == set(Role)
