"""What people read instead of internal codes: one label per enum value, action and reason.

Every status, product type, term duration, billing cycle, charge type, reason code, impact,
activity-log action and resource type has an English label here, marked with ``N_()`` so the
Spanish catalogue translates it. Templates call ``label(kind, value)`` (a Jinja global) and the
activity log calls :func:`activity_details` for its Details column; nothing else decides how a
code is shown. A value without a label is shown as a neutral placeholder, never as the code,
and ``tests/test_labels.py`` keeps every enum member labelled.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from partnercenter.i18n import N_, Country, Message, Money

TERM_DURATION: dict[str, str] = {
    "P1M": N_("1 month"),
    "P1Y": N_("1 year"),
    "P3Y": N_("3 years"),
    "": N_("Perpetual"),
}

BILLING_CYCLE: dict[str, str] = {
    "one_time": N_("One-time"),
    "monthly": N_("Monthly"),
    "annual": N_("Annual"),
}

PRODUCT_TYPE: dict[str, str] = {
    "azure_reservation": N_("Azure reservation"),
    "server_subscription": N_("Server subscription"),
    "perpetual_software": N_("Perpetual software"),
    "software_plan": N_("Software plan"),
}

# Partner Center's catalog views (targetView), as the catalog's Product type filter names them.
TARGET_VIEW: dict[str, str] = {
    "Software": N_("All software"),
    "SoftwarePerpetual": N_("Perpetual software"),
    "SoftwareSubscriptions": N_("Software subscriptions"),
    "SoftwareSUSELinux": N_("Linux software plans"),
    "AzureReservations": N_("Azure reservations"),
}

CREDIT_RULE: dict[str, str] = {
    "full": N_("full credit"),
    "prorated": N_("prorated"),
    "prorated_less_fee": N_("prorated less a fee"),
    "none": N_("no credit"),
}

KEY_SOURCE: dict[str, str] = {
    "inventory": N_("imported inventory"),
    "generator": N_("generator"),
    "none": N_("no keys"),
}

KEY_STATUS: dict[str, str] = {
    "available": N_("Available"),
    "reserved": N_("Handed out"),
    "revoked": N_("Revoked"),
}

ORDER_STATUS: dict[str, str] = {
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
}

LINE_STATUS: dict[str, str] = {
    "active": N_("Active"),
    "cancelled": N_("Cancelled"),
}

ENTITLEMENT_STATUS = LINE_STATUS

CART_STATUS: dict[str, str] = {
    "active": N_("Active"),
    "ordered": N_("Ordered"),
}

# A charge type alone; a ``cycleCharge`` is named by its billing cycle in
# :data:`CYCLE_CHARGE` (see :func:`charge_label`), this entry is for when the cycle is unknown.
CHARGE_TYPE: dict[str, str] = {
    "new": N_("Purchase"),
    "cycleCharge": N_("Recurring charge"),
    "cancel": N_("Cancellation credit"),
    "customerCredit": N_("Refund credit"),
}

# The charge of each later billing period, by the line's billing cycle: a monthly term's
# charge is monthly; an annual one (a 1-year or 3-year term billed annually, charged on each
# anniversary) is annual.
CYCLE_CHARGE: dict[str, str] = {
    "monthly": N_("Monthly charge"),
    "annual": N_("Annual charge"),
}


def charge_label(charge_type: Any, billing_cycle: Any = None) -> str:
    """The English label (a msgid) of a charge of ``charge_type`` on a line billed so.

    One table for the invoice page, the PDF statement and anything else that names a charge:
    a ``cycleCharge`` reads "Monthly charge" or "Annual charge" by the line's cycle
    (``monthly``/``annual``, enum members accepted), "Recurring charge" if the cycle is unknown.
    """
    kind = str(getattr(charge_type, "value", charge_type))
    cycle = str(getattr(billing_cycle, "value", billing_cycle))
    if kind == "cycleCharge" and cycle in CYCLE_CHARGE:
        return CYCLE_CHARGE[cycle]
    return label("charge_type", kind)


CREDIT_REASON: dict[str, str] = {
    "customer_cancellation": N_("Cancelled by the partner"),
    "customerCredit": N_("Approved refund"),
}

REFUSAL: dict[str, str] = {
    "product_not_cancellable": N_("This product can't be cancelled."),
    "cancellation_window_passed": N_("The cancellation window has passed."),
    "nothing_left_to_credit": N_("Nothing is left to credit."),
}

PERIOD_STATE: dict[str, str] = {
    "open": N_("Open"),
    "closing": N_("Closing"),
    "closed": N_("Closed"),
}

DOCUMENT_TYPE: dict[str, str] = {
    "invoice": N_("Invoice"),
    "creditNote": N_("Credit note"),
}

REQUEST_STATUS: dict[str, str] = {
    "open": N_("Open"),
    "in_progress": N_("In progress"),
    "attention_needed": N_("Attention needed"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}

SEVERITY: dict[str, str] = {
    "critical": N_("Critical"),
    "moderate": N_("Moderate"),
    "minimal": N_("Minimal"),
}

REFUND_STATUS: dict[str, str] = {
    "requested": N_("Requested"),
    "approved": N_("Approved"),
    "partially_approved": N_("Partially approved"),
    "rejected": N_("Rejected"),
}

NOTE_AUTHOR: dict[str, str] = {
    "partner": N_("Partner"),
    "provider": N_("Provider support"),
}

AUDIT_STATUS: dict[str, str] = {
    "succeeded": N_("Succeeded"),
    "failed": N_("Failed"),
}

BITNESS: dict[str, str] = {"x64": "x64", "x86": "x86", "arm64": "ARM64"}

# Background jobs (the provider's Background jobs page): ``support.mail.status_of``.
MAIL_STATUS: dict[str, str] = {
    "unconfirmed": N_("Unconfirmed: may have been delivered"),
    "failed": N_("Failed"),
    "sending": N_("Sending"),
    "retrying": N_("Retrying"),
    "pending": N_("Waiting"),
}

WEBHOOK_STATUS: dict[str, str] = {
    "failed": N_("Failed"),
    "retrying": N_("Retrying"),
}

SCHEDULED_JOB: dict[str, str] = {
    "month_close": N_("Month close"),
    "low_stock": N_("Low-stock check"),
    "clean_up": N_("Clean-up of carts and request ids"),
}

RUN_STATE: dict[str, str] = {
    "running": N_("Running"),
    "done": N_("Done"),
    "failed": N_("Failed"),
}

# Activity-log actions (audit operation types), in the order the Action filter lists them.
OPERATION: dict[str, str] = {
    "get_software_key": N_("Get key"),
    "get_software_download_link": N_("Copy download link"),
    "download_software": N_("Download software"),
    "create_customer": N_("Add customer"),
    "create_customer_user": N_("Add customer user"),
    "create_order": N_("Create order"),
    "cancel_order": N_("Cancel purchase"),
    "create_credit": N_("Issue credit"),
    "create_support_request": N_("Create support request"),
    "update_support_request": N_("Change support request status"),
    "add_support_request_note": N_("Add support request note"),
    "add_support_request_attachment": N_("Attach file to support request"),
    "assign_support_request": N_("Assign support request"),
    "approve_refund": N_("Approve refund"),
    "reject_refund": N_("Reject refund"),
    "sign_in_succeeded": N_("Sign-in"),
    "sign_in_failed": N_("Failed sign-in"),
    "sign_in_throttled": N_("Throttled sign-in"),
    "sign_in_unlocked": N_("Failed sign-ins cleared"),
    "create_user": N_("Add user"),
    "update_user_roles": N_("Change user roles"),
    "create_api_token": N_("Create API token"),
    "revoke_api_token": N_("Revoke API token"),
    "create_partner": N_("Create partner"),
    "import_catalog": N_("Import catalog"),
    "update_tax_rate": N_("Change tax rate"),
    "import_product_keys": N_("Import product keys"),
    "upload_software_artifact": N_("Upload software file"),
    "start_billing_close": N_("Start closing a month"),
    "close_billing_period": N_("Close month"),
}

# Actions only the provider's staff take; the partner's Action filter leaves them out.
PROVIDER_OPERATIONS = frozenset(
    {
        "create_partner",
        "import_catalog",
        "update_tax_rate",
        "import_product_keys",
        "upload_software_artifact",
        "start_billing_close",
        "close_billing_period",
    }
)

RESOURCE_TYPE: dict[str, str] = {
    "api_token": N_("API token"),
    "billing_period": N_("Billing period"),
    "catalog": N_("Catalog"),
    "credit": N_("Credit"),
    "customer": N_("Customer"),
    "order": N_("Order"),
    "partner": N_("Partner"),
    "product_key_inventory": N_("Key inventory"),
    "sign_in": N_("Sign-in"),
    "software_artifact": N_("Software file"),
    "software_download": N_("Software download"),
    "software_download_link": N_("Download link"),
    "software_key": N_("Product key"),
    "support_request": N_("Support request"),
    "tax_rate": N_("Tax rate"),
    "user": N_("User"),
}

# Who did it, when no person did: the names the services record in place of a user.
PRINCIPAL: dict[str, str] = {
    "anonymous (copied link)": N_("Anyone with a copied link"),
    "cli": N_("Command line"),
    "system": N_("System"),
}

KINDS: dict[str, dict[str, str]] = {
    "term": TERM_DURATION,
    "cycle": BILLING_CYCLE,
    "product_type": PRODUCT_TYPE,
    "target_view": TARGET_VIEW,
    "credit_rule": CREDIT_RULE,
    "key_source": KEY_SOURCE,
    "key_status": KEY_STATUS,
    "order_status": ORDER_STATUS,
    "line_status": LINE_STATUS,
    "cart_status": CART_STATUS,
    "charge_type": CHARGE_TYPE,
    "credit_reason": CREDIT_REASON,
    "refusal": REFUSAL,
    "period_state": PERIOD_STATE,
    "document_type": DOCUMENT_TYPE,
    "request_status": REQUEST_STATUS,
    "severity": SEVERITY,
    "refund_status": REFUND_STATUS,
    "note_author": NOTE_AUTHOR,
    "audit_status": AUDIT_STATUS,
    "bitness": BITNESS,
    "mail_status": MAIL_STATUS,
    "webhook_status": WEBHOOK_STATUS,
    "scheduled_job": SCHEDULED_JOB,
    "run_state": RUN_STATE,
    "operation": OPERATION,
    "resource_type": RESOURCE_TYPE,
    "principal": PRINCIPAL,
}

UNKNOWN = N_("Other")


def label(kind: str, value: Any) -> str:
    """The English label (a msgid) of ``value`` of ``kind``; enum members and None accepted.

    ``kind`` is a key of :data:`KINDS`. A term duration of None is perpetual. A value without
    a label gives "Other" rather than the code.
    """
    table = KINDS[kind]
    raw = getattr(value, "value", value)
    key = "" if raw is None else str(raw)
    if key in table:
        return table[key]
    if kind == "principal":
        return key
    return UNKNOWN


def line_number(number: Any) -> int:
    """The line number people read (#1 first); the API keeps Partner Center's 0-based one."""
    return int(number) + 1


def _money(amount: Any, currency: Any) -> Money | str:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    return Money(value, str(currency or ""))


def _credit(credit: Any, currency: Any = "") -> Money | str:
    if isinstance(credit, dict):
        return _money(credit.get("gross", ""), credit.get("currency") or currency)
    return _money(credit, currency)


def _lines(lines: Any) -> str:
    if not isinstance(lines, list):
        return ""
    parts = []
    for line in lines:
        if isinstance(line, dict):
            parts.append(str(line.get("product") or line.get("offerId") or ""))
    return ", ".join(p for p in parts if p) or "—"


def _roles(values: Any) -> Message | str:
    from partnercenter.permissions import ROLE_LABELS, Role

    names: list[Message | str] = []
    for value in values or []:
        try:
            names.append(Message(ROLE_LABELS[Role(value)], {}))
        except (ValueError, KeyError):
            continue
    if not names:
        return Message(N_("none"), {})
    return _join(names)


class _Joined(str):
    """Several labels joined by commas, each translated on display."""

    parts: list[Message | str]

    def __new__(cls, parts: list[Message | str]) -> _Joined:
        obj = super().__new__(cls, ", ".join(str(p) for p in parts))
        obj.parts = parts
        return obj

    def localize(self, lang: str) -> str:
        return ", ".join(p.localize(lang) if isinstance(p, Message) else p for p in self.parts)


def _join(parts: list[Message | str]) -> _Joined:
    return _Joined(parts)


def _software(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "product": str(d.get("product") or d.get("productId") or "—"),
        "version": str(d.get("version") or ""),
        "language": str(d.get("language") or ""),
        "bitness": str(d.get("bitness") or ""),
    }


def activity_details(operation: str, details: dict[str, Any] | None) -> Message | str:
    """A readable sentence for the activity log's Details column (no ids, no JSON).

    ``details`` is the audit record's details object as the services wrote it; keys that are
    missing leave their part out. Unknown operations give an empty string.
    """
    d = details or {}
    if operation == "get_software_key":
        return N_(
            "Product key of %(product)s, version %(version)s.",
            product=str(d.get("product") or d.get("productId") or "—"),
            version=str(d.get("version") or ""),
        )
    if operation == "get_software_download_link":
        return N_(
            "Download link for %(product)s %(version)s (%(language)s, %(bitness)s).",
            **_software(d),
        )
    if operation == "download_software":
        if d.get("via") == "copied_link":
            return N_(
                "%(product)s %(version)s (%(language)s, %(bitness)s), through a copied link.",
                **_software(d),
            )
        return N_("%(product)s %(version)s (%(language)s, %(bitness)s).", **_software(d))
    if operation == "create_order":
        if not d.get("total"):
            return N_("Order of %(products)s.", products=_lines(d.get("lines")))
        return N_(
            "Order of %(products)s, total %(total)s.",
            products=_lines(d.get("lines")),
            total=_money(d.get("total", ""), d.get("currency")),
        )
    if operation == "cancel_order":
        credit = d.get("credit")
        if credit:
            return N_(
                "Cancelled %(products)s; credit %(credit)s.",
                products=_lines(d.get("lines")),
                credit=_credit(credit),
            )
        return N_("Cancelled %(products)s.", products=_lines(d.get("lines")))
    if operation == "create_credit":
        return N_(
            "Credit of %(credit)s for %(month)s (%(reason)s).",
            credit=_credit(d.get("total"), d.get("currency")),
            month=str(d.get("billingMonth") or ""),
            reason=Message(label("credit_reason", d.get("creditReasonCode")), {}),
        )
    if operation in ("create_customer",):
        return N_(
            "Customer %(domain)s in %(country)s.",
            domain=str(d.get("domain") or ""),
            country=Country(str(d.get("country") or "")),
        )
    if operation in ("create_user", "create_customer_user"):
        return N_(
            "%(email)s with roles: %(roles)s.",
            email=str(d.get("userPrincipalName") or ""),
            roles=_roles(d.get("newRoles")),
        )
    if operation == "update_user_roles":
        if d.get("isActive") is False:
            return N_("%(email)s was removed.", email=str(d.get("userPrincipalName") or ""))
        return N_(
            "%(email)s: roles %(old)s → %(new)s.",
            email=str(d.get("userPrincipalName") or ""),
            old=_roles(d.get("oldRoles")),
            new=_roles(d.get("newRoles")),
        )
    if operation in ("create_api_token", "revoke_api_token"):
        return N_("Token “%(name)s”.", name=str(d.get("name") or ""))
    if operation == "create_partner":
        return N_("Partner %(name)s.", name=str(d.get("companyName") or ""))
    if operation in (
        "sign_in_succeeded",
        "sign_in_failed",
        "sign_in_throttled",
        "sign_in_unlocked",
    ):
        if d.get("channel") == "api":
            return Message(N_("Through the API."), {})
        return Message(N_("Through the sign-in page."), {})
    if operation.endswith("_support_request") or operation in (
        "approve_refund",
        "reject_refund",
    ):
        status = Message(label("request_status", d.get("status")), {})
        if operation == "assign_support_request":
            if d.get("assignedTo"):
                return N_("Assigned to %(email)s.", email=str(d["assignedTo"]))
            return Message(N_("Nobody is assigned any more."), {})
        if "amountRequested" in d and operation in ("create_support_request", "approve_refund"):
            return N_(
                "Refund of %(amount)s requested; status: %(status)s.",
                amount=_money(d["amountRequested"], d.get("currency")),
                status=status,
            )
        return N_("Status: %(status)s.", status=status)
    if operation == "update_tax_rate":
        return N_(
            "%(country)s: %(after)s %%.",
            country=Country(str(d.get("country") or "")),
            after=_decimal(d.get("after")),
        )
    if operation == "import_product_keys":
        return N_("%(count)s keys imported.", count=int(d.get("imported") or 0))
    if operation == "upload_software_artifact":
        return N_(
            "%(file)s, version %(version)s.",
            file=str(d.get("fileName") or ""),
            version=str(d.get("version") or ""),
        )
    if operation == "import_catalog":
        return N_("%(count)s changes.", count=int(d.get("changed") or 0))
    if operation in ("start_billing_close", "close_billing_period"):
        return N_("Month %(month)s.", month=str(d.get("month") or ""))
    return ""


def _decimal(value: Any) -> Decimal | str:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value or "")
