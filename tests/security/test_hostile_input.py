"""Every route, walked with hostile values: never a 5xx, always our error body.

The routes come from the application (tests/test_route_walk.py collects them), so routes
added later are walked too. Each is called by a user whose roles allow it, with each kind of
hostile value in turn: in the path, in every query parameter the route declares, in every
field of its JSON or form body. Hostile means NUL and other control characters, bytes that
are not UTF-8, percent-encoded lone surrogates, numbers far out of range, negative numbers,
floats where integers are expected, and text far longer than any column.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from partnercenter import deps
from partnercenter.identity.models import User
from partnercenter.permissions import allowed
from tests.test_route_walk import (
    PARAM,
    Endpoint,
    World,
    _resolve,
    collect_endpoints,
    example,
    fill_own,
    request_kwargs,
    world,  # noqa: F401 - the fixture, shared with the route walk
)

# Raw (already percent-encoded) values for paths and query strings.
HOSTILE_RAW = [
    "a%00b",  # NUL
    "%ff%fe",  # not UTF-8
    "%ed%a0%80",  # a UTF-16 surrogate, encoded as if it were UTF-8
    "a%01%1fb",  # other control characters
    "1000000000",  # a big number where days or counts are expected
    "99999999999999999999999999999",  # beyond 64 bits
    "-1",
    "1.5",
    "NaN",
]
# Values for JSON fields (written into the JSON text as they are).
HOSTILE_JSON = [
    '"a\\u0000b"',
    '"\\ud800x"',  # a lone surrogate
    '"a\\u0007b"',
    '"' + "x" * 5000 + '"',
    "1000000000",
    "100000000000000000000000000000",
    "-1",
    "1.5",
    "1e308",
    '[{"deep": [[[[[]]]]]}]',
]
HOSTILE_FORM = ["a\x00b", "a\x01b", "\udc80", "x" * 5000, "1000000000", "-1", "1.5"]
ERROR_KEYS = {"code", "description", "data", "source"}


def _caller_for(endpoint: Endpoint, w: World) -> User:
    """A user whose roles let the request reach the route's own input checks."""
    candidates = [*w.all_roles.values(), *w.callers.values()]
    for user in candidates:
        if all(allowed(user.tenant.kind, user.roles, a) for a in endpoint.actions):
            return user
    return candidates[0]


def _send(
    client: TestClient, w: World, endpoint: Endpoint, caller: User, url: str, **kwargs: Any
) -> Any:
    headers = kwargs.pop("headers", {})
    if endpoint.is_api:
        headers["Authorization"] = f"Bearer {w.bearer[caller.id]}"
    else:
        headers["Accept"] = "text/html"
        client.cookies.set(deps.SESSION_COOKIE, w.cookie[caller.id])
    try:
        return client.request(
            endpoint.method, url, headers=headers, follow_redirects=False, **kwargs
        )
    finally:
        client.cookies.clear()


def _judge(failures: list[str], endpoint: Endpoint, what: str, r: Any) -> None:
    if r.status_code >= 500:
        failures.append(f"{endpoint} {what}: {r.status_code} {r.text[:160]}")
        return
    if endpoint.is_api and r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            failures.append(f"{endpoint} {what}: {r.status_code} without a JSON error body")
            return
        if not set(body) >= ERROR_KEYS:
            failures.append(f"{endpoint} {what}: {r.status_code} body {str(body)[:160]}")


def _query_params(endpoint: Endpoint, spec: dict[str, Any]) -> list[dict[str, Any]]:
    operation = spec.get("paths", {}).get(endpoint.path, {}).get(endpoint.method.lower(), {})
    found = []
    for param in operation.get("parameters", []):
        param = _resolve(param, spec)
        if param["in"] == "query":
            found.append(param)
    return found


def test_hostile_values_in_paths_and_query_strings_never_answer_5xx(
    client: TestClient,
    app: FastAPI,
    world: World,  # noqa: F811
) -> None:
    spec = app.openapi()
    failures: list[str] = []
    walked = 0
    for endpoint in collect_endpoints(app):
        caller = _caller_for(endpoint, world)
        own = fill_own(endpoint, world, caller)
        base = request_kwargs(endpoint, spec)
        if endpoint.params:
            for raw in HOSTILE_RAW:
                path = endpoint.path
                for name in endpoint.params:
                    if name == "portal":
                        continue
                    path = re.sub(r"{" + re.escape(name) + r"(:[^}]+)?}", raw, path, count=1)
                path = PARAM.sub("x", path)
                if "{portal}" in endpoint.path:
                    path = path.replace("/x/", "/partner/", 1)
                r = _send(client, world, endpoint, caller, path, **_copy(base))
                _judge(failures, endpoint, f"path {path}", r)
                walked += 1
        for param in _query_params(endpoint, spec):
            for raw in HOSTILE_RAW:
                kwargs = _copy(base)
                kwargs["params"].pop(param["name"], None)
                query = "&".join(
                    [f"{quote(str(k))}={quote(str(v))}" for k, v in kwargs.pop("params").items()]
                    + [f"{quote(param['name'])}={raw}"]
                )
                r = _send(client, world, endpoint, caller, f"{own}?{query}", **kwargs)
                _judge(failures, endpoint, f"query {param['name']}={raw}", r)
                walked += 1
    assert walked >= 100
    assert not failures, "Hostile paths or queries answered badly:\n" + "\n".join(failures)


def _copy(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    out["params"] = dict(kwargs.get("params", {}))
    out["headers"] = dict(kwargs.get("headers", {}))
    return out


def _json_fields(endpoint: Endpoint, spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The example body and the names of every field its schema has (required or not)."""
    operation = spec.get("paths", {}).get(endpoint.path, {}).get(endpoint.method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    schema = _resolve(content.get("application/json", {}).get("schema", {}), spec)
    body = example(schema, spec) if schema else {}
    return (body if isinstance(body, dict) else {}), list(schema.get("properties", {}))


def test_hostile_values_in_every_body_field_never_answer_5xx(
    client: TestClient,
    app: FastAPI,
    world: World,  # noqa: F811
) -> None:
    spec = app.openapi()
    failures: list[str] = []
    walked = 0
    for endpoint in collect_endpoints(app):
        if endpoint.method == "GET":
            continue
        caller = _caller_for(endpoint, world)
        own = fill_own(endpoint, world, caller)
        base = request_kwargs(endpoint, spec)
        if "json" in base:
            body, fields = _json_fields(endpoint, spec)
            for field in fields:
                for raw in HOSTILE_JSON:
                    others = {k: v for k, v in body.items() if k != field}
                    text = json.dumps(others)[:-1]
                    text += (", " if others else "") + f"{json.dumps(field)}: {raw}}}"
                    kwargs = _copy(base)
                    kwargs.pop("json")
                    kwargs["headers"]["Content-Type"] = "application/json"
                    r = _send(client, world, endpoint, caller, own, content=text, **kwargs)
                    _judge(failures, endpoint, f"body {field}={raw[:40]}", r)
                    walked += 1
        elif "data" in base:
            for field in list(base["data"]):
                for value in HOSTILE_FORM:
                    kwargs = _copy(base)
                    data = dict(kwargs.pop("data"))
                    data[field] = value
                    encoded = "&".join(
                        f"{quote(k)}={quote(v, errors='surrogatepass')}" for k, v in data.items()
                    )
                    if kwargs.get("files"):
                        kwargs["data"] = {k: v for k, v in data.items() if "\udc80" not in v}
                        r = _send(client, world, endpoint, caller, own, **kwargs)
                    else:
                        kwargs["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
                        r = _send(client, world, endpoint, caller, own, content=encoded, **kwargs)
                    _judge(failures, endpoint, f"form {field}={value[:20]!r}", r)
                    walked += 1
    assert walked >= 100
    assert not failures, "Hostile bodies answered badly:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/customers/a%00b", 400),
        ("/v1/customers/%ff", 400),
        ("/v1/servicerequests?minAgeDays=1000000000", 400),
        ("/v1/servicerequests?minAgeDays=-1", 400),
        ("/v1/servicerequests?minAgeDays=1.5", 400),
        ("/v1/customers?" + "q=" + "x" * 9000, 414),
    ],
)
def test_the_reported_inputs_answer_4xx(
    client: TestClient,
    world: World,  # noqa: F811
    path: str,
    status: int,
) -> None:
    caller = world.all_roles[next(iter(world.all_roles))]
    r = client.get(path, headers={"Authorization": f"Bearer {world.bearer[caller.id]}"})
    assert r.status_code == status, r.text
    assert set(r.json()) >= ERROR_KEYS


def test_a_nul_in_a_token_name_or_display_name_is_refused_before_the_database(
    client: TestClient,
    world: World,  # noqa: F811
) -> None:
    caller = world.all_roles[next(iter(world.all_roles))]
    auth = {"Authorization": f"Bearer {world.bearer[caller.id]}"}
    r = client.post("/v1/users/me/tokens", headers=auth, json={"name": "a\u0000b"})
    assert r.status_code == 400
    assert r.json()["errorName"] == "invalid_input"
    r = client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "a\x00b", "password": "x"}
    )
    assert r.status_code == 400
