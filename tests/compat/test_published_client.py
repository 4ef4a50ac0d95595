"""The published Partner Center client drives every operation it has on a resource we serve.

``partnercenterservices`` is the AutoRest client generated from Microsoft's Partner Center
swagger. A partner's script built on it changes only the base URL and the token; this test
is such a script, run against the live application, one call after another as a reseller
would make them. Each call must answer with a status the client accepts as success and a
body it deserialises into its own typed model with the values we expect.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from typing import Any

# Imported outright, never skipped: a missing client is a broken install, not a pass.
from microsoft.store.partnercenterservices import MicrosoftPartnerStoreApis
from microsoft.store.partnercenterservices import models as client_models
from msrest.authentication import BasicTokenAuthentication
from msrest.exceptions import DeserializationError, SerializationError

from tests.compat.conftest import Outcome, Report, World
from tests.orders import catalog_data

V = "1"
SECURE_STRING = (
    "client defect: its swagger types the password as SecureString, an object; Partner "
    "Center documents (and we answer) a string"
)


class Script:
    """Runs each client call, checks it and records the outcome; never stops at a failure."""

    def __init__(self, report: Report, backend: str) -> None:
        self.report = report
        self.backend = backend
        self.failures: list[str] = []

    def step(
        self,
        operation: str,
        mirrors: str,
        call: Callable[[], Any],
        check: Callable[[Any], None],
    ) -> Any:
        try:
            result = call()
            assert result is not None, "the client got no success response (None)"
            check(result)
        except Exception as exc:  # a failed step is reported, the script goes on
            detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            self.failures.append(f"{operation}: {detail}\n{traceback.format_exc(limit=3)}")
            self.report.add(Outcome("client", self.backend, operation, mirrors, "FAIL", 0, detail))
            return None
        fields = (
            len([k for k, v in vars(result).items() if v is not None])
            if hasattr(result, "__dict__")
            else 0
        )
        self.report.add(Outcome("client", self.backend, operation, mirrors, "pass", fields))
        return result

    def client_defect(
        self,
        operation: str,
        mirrors: str,
        call: Callable[[], Any],
        defect: str,
        server_check: Callable[[], None],
    ) -> None:
        """An operation the client itself cannot complete, against Partner Center as here.

        The client's generated model types a password as ``SecureString`` (an object with a
        ``length``) where the service sends and takes a string; msrest then fails before the
        request or after the answer. The call must fail exactly that way (if a later client
        fixes it, this test says so), and the same request made as documented must work.
        """
        try:
            call()
        except (SerializationError, DeserializationError) as exc:
            if "has no attribute 'get'" not in str(exc):
                raise
        else:
            raise AssertionError(f"{operation}: the client no longer fails ({defect}); record it")
        try:
            server_check()
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            self.failures.append(f"{operation}: {detail}")
            self.report.add(Outcome("client", self.backend, operation, mirrors, "FAIL", 0, detail))
            return
        self.report.add(
            Outcome("client", self.backend, operation, mirrors, "difference", 0, defect)
        )


def test_the_published_client_drives_every_operation_we_serve(
    world: World, report: Report, backend: str
) -> None:
    pc = MicrosoftPartnerStoreApis(
        BasicTokenAuthentication({"access_token": world.token}), base_url=world.url
    )
    client = world.http
    m = client_models
    s = Script(report, backend)
    cid = str(world.customer.id)

    # --- customers -----------------------------------------------------------------------
    def customer_was_created() -> None:
        page = pc.getvversioncustomersfilterfilter.value(V, size=100)
        made = [c for c in page.items if c.company_profile.domain == "wingtiptoys.onmicrosoft.com"]
        _eq(len(made), 1)
        _true(made[0].commerce_id)

    s.client_defect(
        "POST /v1/customers",
        "Create a customer",
        lambda: pc.postvversioncustomers(
            m.MicrosoftPartnerSdkContractsV1Customer(
                company_profile=m.MicrosoftPartnerSdkContractsV1CustomerCompanyProfile(
                    domain="wingtiptoys.onmicrosoft.com"
                ),
                billing_profile=m.MicrosoftPartnerSdkContractsV1CustomerBillingProfile(
                    email="ana@wingtiptoys.example",
                    culture="en-US",
                    language="en",
                    company_name="Wingtip Toys",
                    default_address=m.MicrosoftPartnerSdkContractsV1Address(
                        country="US",
                        city="Redmond",
                        state="WA",
                        address_line1="One Microsoft Way",
                        postal_code="98052",
                        first_name="Ana",
                        last_name="García",
                        phone_number="4255550101",
                    ),
                ),
            ),
            V,
        ),
        SECURE_STRING + " (userCredentials.password in the answer)",
        customer_was_created,
    )
    s.step(
        "GET /v1/customers",
        "Get a list of customers",
        lambda: pc.getvversioncustomersfilterfilter.value(V, size=10),
        lambda page: _true(any(str(c.id) == cid for c in page.items)),
    )
    s.step(
        "GET /v1/customers/{id}",
        "Get a customer by ID",
        lambda: pc.getvversioncustomerscustomer.id(cid, V),
        lambda c: _eq(c.company_profile.domain, "contoso.onmicrosoft.com"),
    )
    # --- customer users ------------------------------------------------------------------
    documented_user = {
        "usageLocation": "US",
        "userPrincipalName": "ana@contoso.onmicrosoft.com",
        "firstName": "Ana",
        "lastName": "García",
        "displayName": "Ana García",
        "passwordProfile": {"password": "Chosen-by-the-partner-2024", "forceChangePassword": True},
        "attributes": {"objectType": "CustomerUser"},
    }
    made_user: dict[str, Any] = {}

    def user_is_created_as_documented() -> None:
        r = client.post(f"/v1/customers/{cid}/users", json=documented_user, headers=world.headers)
        _eq(r.status_code, 201)
        made_user.update(r.json())
        _eq(made_user["userPrincipalName"], "ana@contoso.onmicrosoft.com")

    s.client_defect(
        "POST /v1/customers/{id}/users",
        "Create user accounts for a customer",
        lambda: pc.postvversioncustomerscustomer.idusers(
            cid,
            m.MicrosoftPartnerSdkContractsV1CustomerUser(
                usage_location="US",
                user_principal_name="ana@contoso.onmicrosoft.com",
                first_name="Ana",
                last_name="García",
                display_name="Ana García",
                password_profile=m.MicrosoftPartnerSdkContractsV1ContractsPasswordProfile(
                    password="Chosen-by-the-partner-2024", force_change_password=True
                ),
            ),
            V,
        ),
        SECURE_STRING + " (passwordProfile.password in the request)",
        user_is_created_as_documented,
    )
    uid = made_user.get("id")
    s.step(
        "GET /v1/customers/{id}/users",
        "Get all user accounts for a customer",
        lambda: pc.getvversioncustomerscustomer.value6(cid, V),
        lambda page: _true(any(u.id == uid for u in page.items)),
    )
    s.step(
        "GET /v1/customers/{id}/users/{userId}",
        "Get a user account by ID",
        lambda: pc.getvversioncustomerscustomer.id2(cid, uid, V),
        lambda u: _eq(u.user_principal_name, "ana@contoso.onmicrosoft.com"),
    )
    s.step(
        "GET /v1/customers/{id}/users/{userId}/directoryroles",
        "Get a user's directory roles",
        lambda: pc.getvversioncustomerscustomer.iddirectoryroles(cid, uid, V),
        lambda page: _true(page.items is not None),
    )

    # --- catalog: the legacy offers ------------------------------------------------------
    offers = s.step(
        "GET /v1/offers?country=",
        "Get a list of offers for a market",
        lambda: pc.getvversionofferscountrycountry.value(V, country="US"),
        lambda page: _true(len(page.items) >= 1 and page.items[0].id),
    )
    offer_id = offers.items[0].id if offers is not None else catalog_data.WINDOWS
    s.step(
        "GET /v1/offers/{id}?country=",
        "Get an offer by ID",
        lambda: pc.getvversionoffersoffer.value1(offer_id, V, country="US"),
        lambda o: _eq(o.id, offer_id),
    )
    s.step(
        "GET /v1/customers/{id}/offers",
        "Get offers for a customer",
        lambda: pc.getvversioncustomerscustomer.value2(cid, V),
        lambda page: _true(len(page.items) >= 1),
    )

    # --- orders --------------------------------------------------------------------------
    order = s.step(
        "POST /v1/customers/{id}/orders",
        "Create an order for a customer",
        lambda: pc.postvversioncustomerscustomer.idorders(
            cid,
            m.MicrosoftPartnerSdkContractsV1Order(
                reference_customer_id=cid,
                billing_cycle="one_time",
                line_items=[
                    m.MicrosoftPartnerSdkContractsV1OrderLineItem(
                        line_item_number=0, offer_id=catalog_data.WINDOWS, quantity=1
                    )
                ],
            ),
            V,
        ),
        lambda o: (_true(o.id), _eq(o.line_items[0].offer_id, catalog_data.WINDOWS)),
    )
    cart = client.post(
        f"/v1/customers/{cid}/carts",
        json={
            "LineItems": [
                {"CatalogItemId": catalog_data.WINDOWS, "Quantity": 1, "BillingCycle": "one_time"},
                {
                    "CatalogItemId": catalog_data.SUSE,
                    "Quantity": 2,
                    "BillingCycle": "annual",
                    "TermDuration": "P1Y",
                },
            ]
        },
        headers=world.headers,
    )
    assert cart.status_code == 201, cart.text
    checkout = s.step(
        "POST /v1/customers/{id}/carts/{cartId}/checkout",
        "Checkout a cart",
        lambda: pc.postvversioncustomerscustomer.idcheckout(cid, cart.json()["id"], V),
        lambda r: (
            _eq(len(r.orders), 2),
            _eq({o.billing_cycle for o in r.orders}, {"one_time", "annual"}),
        ),
    )
    s.step(
        "GET /v1/customers/{id}/orders",
        "Get all of a customer's orders",
        lambda: pc.getvversioncustomerscustomer.value7(cid, V, billing_type="one_time"),
        lambda page: _true(page.items and all(o.billing_cycle == "one_time" for o in page.items)),
    )
    order_id = order.id if order is not None else None
    s.step(
        "GET /v1/customers/{id}/orders/{orderId}",
        "Get an order by ID",
        lambda: pc.getvversioncustomerscustomer.id5(cid, order_id, V),
        lambda o: (
            _eq(o.id, order_id),
            _eq(o.links.itself.uri, f"/customers/{cid}/orders/{o.id}"),
        ),
    )
    s.step(
        "PATCH /v1/customers/{id}/orders/{orderId}",
        "Cancel an order (software purchases)",
        lambda: pc.patchvversioncustomerscustomer.id3(
            cid, order_id, m.MicrosoftPartnerSdkContractsV1Order(status="cancelled"), V
        ),
        lambda o: _eq(o.status, "cancelled"),
    )

    # --- subscriptions -------------------------------------------------------------------
    subs = s.step(
        "GET /v1/customers/{id}/subscriptions",
        "Get all of a customer's subscriptions",
        lambda: pc.getvversioncustomerscustomer.value9(cid, V),
        lambda page: _true(len(page.items) >= 2),
    )
    plan = None
    if subs is not None and checkout is not None:
        plan = next((x for x in subs.items if x.offer_id == catalog_data.SUSE), None)
    plan_id = plan.id if plan is not None else str(uuid.uuid4())
    s.step(
        "GET /v1/customers/{id}/subscriptions/{subscriptionId}",
        "Get a subscription by ID",
        lambda: pc.getvversioncustomerscustomer.id6(cid, plan_id, V),
        lambda x: (_eq(x.id, plan_id), _eq(x.quantity, 2), _eq(x.status, "active")),
    )
    # Software plans can't be cancelled (800019); the perpetual licence of the checkout can.
    bought = checkout.orders[0].line_items[0].subscription_id if checkout else str(uuid.uuid4())
    s.step(
        "PATCH /v1/customers/{id}/subscriptions/{subscriptionId}",
        "Cancel a software subscription (status suspended)",
        lambda: pc.patchvversioncustomerscustomer.id4(
            cid, bought, m.MicrosoftPartnerSdkContractsV1Subscription(status="suspended"), V
        ),
        lambda x: _eq(x.status, "suspended"),
    )

    # --- service requests ----------------------------------------------------------------
    topics = s.step(
        "GET /v1/servicerequests/supporttopics",
        "Get support topics",
        lambda: pc.getvversionservicerequestssupporttopics(V),
        lambda page: _true(all(isinstance(t.id, int) for t in page.items)),
    )
    topic = (
        next((t for t in topics.items if t.name.startswith("Billing")), None) if topics else None
    )
    sr = s.step(
        "POST /v1/servicerequests/{agent-locale}",
        "Create a service request",
        lambda: pc.postvversionservicerequestsagent.locale(
            "en-US",
            m.MicrosoftPartnerSdkContractsV1ServiceRequest(
                title="Tax charged twice",
                description="The invoice shows the tax twice.",
                severity="critical",
                support_topic_id=str(topic.id if topic else 0),
            ),
            V,
        ),
        lambda r: (_true(r.id), _eq(r.status, "open"), _eq(r.support_topic_id, str(topic.id))),
    )
    sr_id = sr.id if sr is not None else str(uuid.uuid4())
    s.step(
        "GET /v1/servicerequests",
        "Get all service requests for a partner",
        lambda: pc.getvversionservicerequestsfilterfilter.value(V, size=10),
        lambda page: _true(any(r.id == sr_id for r in page.items)),
    )
    s.step(
        "GET /v1/servicerequests/{id}",
        "Get a service request by ID",
        lambda: pc.getvversionservicerequestsservice.id(sr_id, V),
        lambda r: _eq(r.title, "Tax charged twice"),
    )
    s.step(
        "PATCH /v1/servicerequests/{id}",
        "Update a service request",
        lambda: pc.patchvversionservicerequestsservice.id(
            sr_id,
            m.MicrosoftPartnerSdkContractsV1ServiceRequest(
                new_note=m.MicrosoftPartnerSdkContractsV1ServiceRequestNote(text="Any news?")
            ),
            V,
        ),
        lambda r: _true(any(n.text == "Any news?" for n in r.notes)),
    )
    refund = client.post(
        "/v1/servicerequests/en-US",
        json={
            "Title": "Refund the Windows order",
            "Severity": "Moderate",
            "SupportTopicId": 32000001,
            "Refund": {
                "CustomerTenantId": cid,
                "OrderId": checkout.orders[-1].id if checkout else str(uuid.uuid4()),
                "Reason": "Bought by mistake.",
                "AmountRequested": "10.00",
            },
        },
        headers=world.headers,
    )
    assert refund.status_code == 201, refund.text
    customer_sr = refund.json()["id"]
    s.step(
        "GET /v1/customers/{id}/servicerequests",
        "Get all service requests for a customer",
        lambda: pc.getvversioncustomerscustomer.value3(cid, V),
        lambda page: _true(any(r.id == customer_sr for r in page.items)),
    )
    s.step(
        "GET /v1/customers/{id}/servicerequests/{srId}",
        "Get a customer's service request by ID",
        lambda: pc.getvversioncustomerscustomer.id1(cid, customer_sr, V),
        lambda r: _eq(r.id, customer_sr),
    )
    s.step(
        "PATCH /v1/customers/{id}/servicerequests/{srId}",
        "Update a customer's service request",
        lambda: pc.patchvversioncustomerscustomer.id1(
            cid,
            customer_sr,
            m.MicrosoftPartnerSdkContractsV1ServiceRequest(
                new_note=m.MicrosoftPartnerSdkContractsV1ServiceRequestNote(text="Thanks.")
            ),
            V,
        ),
        lambda r: _true(any(n.text == "Thanks." for n in r.notes)),
    )

    assert not s.failures, "Client operations that failed:\n\n" + "\n".join(s.failures)


def _eq(got: Any, want: Any) -> None:
    assert got == want, f"{got!r} != {want!r}"


def _true(value: Any) -> None:
    assert value, f"{value!r} is not set"
