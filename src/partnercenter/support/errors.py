"""Errors of the support area (codes 170xx); field problems use Partner Center's 10010."""

from __future__ import annotations

from typing import Any

from partnercenter.errors import Conflict, DomainError, InvalidInput, NotFound
from partnercenter.i18n import N_


class InvalidSupportRequest(InvalidInput):
    """One or more fields are wrong; ``data`` lists ``{field, message}`` for each of them."""

    code = 10010
    name = "invalid_support_request"
    default_description = N_("The support request has invalid fields.")

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        first_field, first_message = next(iter(problems.items()))
        description = f"{first_field}: {first_message}"
        if len(problems) > 1:
            description += f" (and {len(problems) - 1} more)"
        data: list[Any] = [{"field": f, "message": m} for f, m in problems.items()]
        super().__init__(description, data=data, source=first_field)


class SupportRequestNotFound(NotFound):
    code = 17001
    name = "support_request_not_found"
    default_description = N_("The support request was not found.")


class InvalidStatusTransition(Conflict):
    code = 17002
    name = "invalid_status_transition"
    default_description = N_("The support request cannot move to this status from its status.")


class RefundAlreadyDecided(Conflict):
    code = 17003
    name = "refund_already_decided"
    default_description = N_("The refund of this support request has already been decided.")


class NotARefundRequest(Conflict):
    code = 17004
    name = "not_a_refund_request"
    default_description = N_("This support request does not ask for a refund.")


class RefundUndecided(Conflict):
    code = 17005
    name = "refund_undecided"
    default_description = N_(
        "Approve or reject the refund before resolving or closing the support request."
    )


class AttachmentTooLarge(DomainError):
    code = 17006
    name = "attachment_too_large"
    status = 413
    default_description = N_("The file is larger than 10 MiB.")


class AttachmentTypeNotAllowed(DomainError):
    code = 17007
    name = "attachment_type_not_allowed"
    status = 415
    default_description = N_(
        "Only PDF, PNG, JPEG, plain text, CSV and ZIP files can be attached, "
        "and the file's content must match its name."
    )


class TooManyAttachments(InvalidInput):
    code = 17008
    name = "too_many_attachments"
    default_description = N_("A support request can have at most 5 files.")


class AttachmentNotFound(NotFound):
    code = 17009
    name = "attachment_not_found"
    default_description = N_("The file was not found.")


class RequestClosed(Conflict):
    code = 17010
    name = "support_request_closed"
    default_description = N_("The support request is closed and cannot be changed.")


class InvalidAssignee(InvalidInput):
    code = 17011
    name = "invalid_assignee"
    default_description = N_("Support requests can only be assigned to provider support staff.")
