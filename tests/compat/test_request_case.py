"""Request bodies are read without regard to the case of property names, for every route.

Partner Center's documented examples send PascalCase (``{"CompanyProfile": {"Domain": ...}}``)
where its reference names camelCase fields; its service reads both. Every JSON body of every
route, found by walking the application, must be a :class:`RequestModel` (so routes added
later are covered), and a body sent in PascalCase must reach the route exactly like the
camelCase one.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from partnercenter.identity.models import User
from partnercenter.permissions import Role
from partnercenter.schemas import RequestModel
from tests.factories import Factory
from tests.test_route_walk import _flatten


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for info in annotation.model_fields.values():
            yield from _models_in(info.annotation)
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)


def _json_body_models(app: FastAPI) -> Iterator[tuple[str, type[BaseModel]]]:
    for path, route, _extra in _flatten(list(app.routes)):
        for param in route.dependant.body_params:
            info = getattr(param, "field_info", None)
            media = getattr(info, "media_type", "application/json")
            if media != "application/json":
                continue  # forms and uploads: the form field names are fixed by HTML
            for model in _models_in(param.type_ if hasattr(param, "type_") else info.annotation):
                yield f"{sorted(route.methods)} {path}", model


def test_every_json_request_body_is_read_without_regard_to_case(app: FastAPI) -> None:
    found = list(_json_body_models(app))
    assert len(found) >= 15, found  # the walk really sees the routes' bodies
    wrong = sorted(
        {f"{where}: {m.__name__}" for where, m in found if not issubclass(m, RequestModel)}
    )
    assert not wrong, "Request models that do not derive from RequestModel:\n" + "\n".join(wrong)


def test_names_match_at_every_level_and_the_exact_spelling_wins() -> None:
    class Line(RequestModel):
        catalogItemId: str
        quantity: int

    class Cart(RequestModel):
        lineItems: list[Line]

    cart = Cart.model_validate(
        {"LINEITEMS": [{"CatalogItemId": "A:B:C", "quantity": 2, "Quantity": 9}]}
    )
    assert cart.lineItems[0].catalogItemId == "A:B:C"
    assert cart.lineItems[0].quantity == 2
    assert cart.model_dump() == {"lineItems": [{"catalogItemId": "A:B:C", "quantity": 2}]}


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def test_create_customer_in_pascal_case_answers_in_camel_case(
    client: TestClient,
    factory: Factory,
    auth_headers: Callable[[User], dict[str, str]],
    session: Session,
) -> None:
    partner = factory.partner(country="US")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    body = {
        "companyProfile": {"domain": "pascalcase.onmicrosoft.com"},
        "billingProfile": {
            "email": "someone@pascalcase.example",
            "culture": "en-US",
            "language": "en",
            "companyName": "Pascal Case Inc",
            "defaultAddress": {
                "country": "US",
                "region": None,
                "city": "Redmond",
                "state": "WA",
                "addressLine1": "One Microsoft Way",
                "postalCode": "98052",
                "firstName": "Alice",
                "lastName": "Smith",
                "phoneNumber": "4255550100",
            },
        },
    }
    r = client.post("/v1/customers", json=_pascal(body), headers=auth_headers(agent))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["companyProfile"]["domain"] == "pascalcase.onmicrosoft.com"
    assert got["billingProfile"]["companyName"] == "Pascal Case Inc"
    assert got["billingProfile"]["defaultAddress"]["city"] == "Redmond"
    assert "CompanyProfile" not in got
