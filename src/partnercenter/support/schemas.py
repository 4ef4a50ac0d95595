"""API shapes of support requests (Partner Center's ServiceRequest, plus refunds)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from partnercenter.schemas import RequestModel


class ContactIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    firstName: str = ""
    lastName: str = ""
    email: str = ""
    phoneNumber: str = ""


class RefundIn(RequestModel):
    """The refund topic's structured description."""

    model_config = ConfigDict(extra="forbid")

    customerTenantId: str | None = Field(None, description="The customer's tenant GUID")
    domain: str | None = Field(None, description="Or the customer's primary domain")
    orderId: str | None = None
    subscriptionId: str | None = Field(None, description="Or the software subscription's id")
    reason: str = ""
    amountRequested: str | int = Field(
        "", description="Gross amount in the order's currency, as a string: '120.50'"
    )
    cancelPurchase: bool = Field(
        False, description="Cancel the purchase when the refund is approved (cancel dialog)"
    )


class ReadOnlyServiceRequestFields(RequestModel):
    """The ServiceRequest fields the service sets itself. Partner Center's documented
    requests send them (as null, or copied from an earlier answer); they are accepted and
    ignored, while any other unknown field is still refused (10010)."""

    id: Any = None
    status: Any = None
    organization: Any = None
    lastUpdatedBy: Any = None
    productName: Any = None
    productId: Any = None
    createdDate: Any = None
    lastModifiedDate: Any = None
    lastClosedDate: Any = None
    fileLinks: Any = None
    notes: Any = None
    countryCode: Any = None
    supportTopicName: Any = None
    attributes: Any = None


class ServiceRequestIn(ReadOnlyServiceRequestFields):
    model_config = ConfigDict(extra="forbid")

    title: str = ""
    description: str = ""
    severity: str = Field("", description="critical, moderate or minimal")
    supportTopicId: str | int = Field(
        "", description="The support topic's id (an integer, as a number or a string) or code"
    )
    primaryContact: ContactIn | None = Field(
        None, description="Optional: the signed-in user is the contact when absent"
    )
    refund: RefundIn | None = None


class NoteIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class RefundDecisionIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(description="approve or reject")
    amountApproved: str | int | None = Field(
        None, description="For approve: the amount to credit (defaults to the amount requested)"
    )
    reason: str = Field("", description="Required to reject; optional note when approving")


class ServiceRequestPatch(ReadOnlyServiceRequestFields):
    """Change a request: a note, the status, the assignee (provider) or the refund decision.

    Partner Center's update may send a whole ServiceRequest; its other fields are ignored.
    """

    model_config = ConfigDict(extra="forbid")

    status: str | None = None
    newNote: NoteIn | None = None
    # The rest of a ServiceRequest, sent back whole by Partner Center's clients: ignored.
    title: Any = None
    description: Any = None
    severity: Any = None
    supportTopicId: Any = None
    primaryContact: Any = None
    assignedTo: str | None = Field(
        None, description="Provider: a support user id, 'me', or '' to unassign"
    )
    refund: RefundDecisionIn | None = None
