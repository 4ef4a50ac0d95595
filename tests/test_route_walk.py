"""Every route, walked: foreign tenants' ids answer 404 (or 403), missing roles answer 403.

The routes are collected from the application itself, so routes added later are covered
without touching this file: every ``/v1`` route and every HTML page with an id in its path
is called by users of another tenant with that tenant's ids filled in; every route guarded
by ``require(Action)`` is called by every (tenant kind, role) the table refuses. Request
bodies, required query parameters and headers are built from the OpenAPI document, so the
request reaches the route's own checks instead of stopping at input validation.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter import deps
from partnercenter.audit import services as audit
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import ROLES_BY_KIND, Action, Role, TenantKind, allowed
from tests.factories import Factory

PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
# Routes that only exist in some deployments (404 for everyone otherwise); their role checks
# are tested where they exist (tests/test_ops.py runs the sandbox clock in sandbox mode).
ABSENT_HERE = {"/v1/sandbox/clock"}
# Path parameters that name no tenant's resource, with the value the walk sends: the portal,
# Partner Center's agent locale (a language tag) and an offer id (catalog data, the same for
# every tenant: PRODUCT:SKU:AVAILABILITY). A route whose only parameters are these has no
# foreign id to hide and is left out of the foreign-id walk; the role walks still call it.
NOT_TENANT_OWNED = {
    "agent_locale": "en-US",
    "offer_id": "DG7GMGF0D7FV:0001:AUD-PERP-OT",
}
PORTALS = {
    TenantKind.PARTNER: "partner",
    TenantKind.CUSTOMER: "admin",
    TenantKind.PROVIDER: "provider",
}


# --- the routes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: APIRoute
    actions: frozenset[Action]
    authenticated: bool

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/v1/")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _flatten(routes: list[Any], prefix: str = "", extra: tuple[Any, ...] = ()) -> Iterator[Any]:
    """APIRoutes with their full path, including those of included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route, extra
        elif hasattr(route, "original_router"):  # FastAPI's included-router node
            ctx = route.include_context
            yield from _flatten(
                route.original_router.routes,
                prefix + ctx.prefix,
                extra + tuple(d.dependency for d in ctx.dependencies),
            )


def _dependency_calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def _required_action(call: Callable[..., Any]) -> Action | None:
    """The Action a ``deps.require(action)`` dependency checks, read from its closure."""
    if not inspect.isfunction(call) or not call.__name__.startswith("require_"):
        return None
    action = inspect.getclosurevars(call).nonlocals.get("action")
    return action if isinstance(action, Action) else None


def collect_endpoints(app: FastAPI) -> list[Endpoint]:
    found = []
    for path, route, extra in _flatten(list(app.routes)):
        calls = list(_dependency_calls(route.dependant)) + list(extra)
        actions = frozenset(a for a in map(_required_action, calls) if a is not None)
        authenticated = any(
            c in (deps.get_current_user, deps.get_optional_user, deps.get_optional_actor)
            for c in calls
        )
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append(Endpoint(method, path, route, actions, authenticated))
    return found


# --- requests built from the OpenAPI document -------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example(schema: dict[str, Any], spec: dict[str, Any], name: str = "") -> Any:
    """A small value that satisfies the schema (required fields only)."""
    schema = _resolve(schema, spec)
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, spec).get("type") != "null"]
            return example(options[0], spec, name) if options else None
    if "allOf" in schema:
        return example(schema["allOf"][0], spec, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        return {
            key: example(sub, spec, key)
            for key, sub in schema.get("properties", {}).items()
            if key in required
        }
    if kind == "array":
        return [example(schema.get("items", {}), spec, name)]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    fmt, lowered = schema.get("format", ""), name.lower()
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "email" or "email" in lowered or lowered in ("username", "userprincipalname"):
        return "walker@example.com"
    if fmt == "date-time":
        return "2026-11-02T10:00:00Z"
    if fmt == "date":
        return "2026-11-02"
    if "country" in lowered:
        return "US"
    if "currency" in lowered:
        return "USD"
    if "password" in lowered:
        return "quiet-harbour-walk-7"
    text = "walk-" + lowered if lowered else "walk"
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema.get("maxLength", len(text)))] or "w"


def request_kwargs(endpoint: Endpoint, spec: dict[str, Any]) -> dict[str, Any]:
    """Query, headers and body the route requires, from its OpenAPI operation."""
    operation = spec.get("paths", {}).get(endpoint.path, {}).get(endpoint.method.lower())
    kwargs: dict[str, Any] = {"params": {}, "headers": {}}
    if operation is None:
        return kwargs
    for param in operation.get("parameters", []):
        param = _resolve(param, spec)
        if not param.get("required") or param["in"] not in ("query", "header"):
            continue
        value = example(param.get("schema", {}), spec, param["name"])
        target = "params" if param["in"] == "query" else "headers"
        kwargs[target][param["name"]] = str(value)
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = example(content["application/json"].get("schema", {}), spec)
    else:
        for media in ("multipart/form-data", "application/x-www-form-urlencoded"):
            if media in content:
                schema = _resolve(content[media].get("schema", {}), spec)
                fields = example(schema, spec)
                props = schema.get("properties", {})
                files: list[tuple[str, tuple[str, bytes, str]]] = []
                for key in list(fields):
                    prop = _resolve(props.get(key, {}), spec)
                    many = prop.get("type") == "array"
                    one = _resolve(prop.get("items", {}), spec) if many else prop
                    if one.get("format") in ("binary", "base64") or one.get("contentMediaType"):
                        # A small plain-text file: the kind of upload every area accepts.
                        files.append((key, (f"{key}.txt", b"walk\n", "text/plain")))
                        del fields[key]
                kwargs["data"] = fields
                if files:
                    kwargs["files"] = files
                break
    return kwargs


# --- the tenants ---------------------------------------------------------------------------


@dataclass
class World:
    """Tenant A (the victim's) and tenant B (the callers'), with users of every role."""

    partner_a: Tenant
    customer_a: Tenant
    partner_b: Tenant
    customer_b: Tenant
    provider: Tenant
    victims: dict[str, User]
    token_a: uuid.UUID
    callers: dict[tuple[TenantKind, Role], User]
    all_roles: dict[TenantKind, User]
    bearer: dict[uuid.UUID, str] = field(default_factory=dict)
    cookie: dict[uuid.UUID, str] = field(default_factory=dict)

    def secrets_of_a(self) -> list[str]:
        """What must never appear in an answer to a caller of tenant B."""
        out = [str(self.partner_a.id), str(self.customer_a.id), str(self.token_a)]
        out += [self.partner_a.name, self.customer_a.name]
        for user in self.victims.values():
            out += [str(user.id), user.email]
        return out


@pytest.fixture
def world(factory: Factory, session: Session, clock: FrozenClock, settings: Settings) -> World:
    provider = factory.provider()
    partner_a = factory.partner("Victim Partner A")
    customer_a = factory.customer(partner_a, name="Victim Customer A")
    partner_b = factory.partner("Caller Partner B")
    customer_b = factory.customer(partner_b, name="Caller Customer B")
    victims = {
        "partner": factory.user(partner_a, Role.GLOBAL_ADMIN, email="victim.ga@a.example"),
        "customer": factory.user(customer_a, Role.GLOBAL_ADMIN, email="victim.ga@cust-a.example"),
    }
    _secret, token = identity.issue_token(
        session, user=victims["partner"], now=clock.now(), name="victim token"
    )
    for tenant in (partner_a, customer_a):  # something of A's on its activity log
        audit.record(
            session,
            at=clock.now(),
            resource_type="user",
            operation_type="create_user",
            tenant_id=tenant.id,
            user_principal_name=victims["partner"].email,
            customer_id=customer_a.id,
            customer_name=customer_a.name,
            details={"userId": str(victims["customer"].id)},
        )
    home = {
        TenantKind.PROVIDER: provider,
        TenantKind.PARTNER: partner_b,
        TenantKind.CUSTOMER: customer_b,
    }
    callers = {
        (kind, role): factory.user(home[kind], role)
        for kind, roles in ROLES_BY_KIND.items()
        for role in roles
    }
    all_roles = {
        kind: factory.user(home[kind], *ROLES_BY_KIND[kind])
        for kind in (TenantKind.PARTNER, TenantKind.CUSTOMER)
    }
    w = World(
        partner_a,
        customer_a,
        partner_b,
        customer_b,
        provider,
        victims,
        token.id,
        callers,
        all_roles,
    )
    for user in [*callers.values(), *all_roles.values()]:
        secret, _ = identity.issue_token(
            session, user=user, now=clock.now(), lifetime=timedelta(hours=1)
        )
        w.bearer[user.id] = secret
        cookie, _ws = identity.start_web_session(
            session, user=user, settings=settings, now=clock.now()
        )
        w.cookie[user.id] = cookie
    session.commit()  # make everything visible to the app's sessions (savepoint release)
    return w


def _segments_before(path: str) -> list[tuple[str, str]]:
    """(previous path segment, parameter name) for each path parameter."""
    parts = path.strip("/").split("/")
    out = []
    for i, part in enumerate(parts):
        m = PARAM.fullmatch(part)
        if m:
            out.append((parts[i - 1].lower() if i else "", m.group(1)))
    return out


def fill_foreign(endpoint: Endpoint, w: World, caller: User) -> tuple[str, bool]:
    """The path with tenant A's ids; and whether any of them is a real resource of A."""
    path, real = endpoint.path, False
    addressed = w.partner_a
    for segment, name in _segments_before(endpoint.path):
        lowered = name.lower()
        value: str
        if lowered == "portal":
            value = PORTALS[caller.tenant.kind]
        elif lowered in NOT_TENANT_OWNED:
            value = NOT_TENANT_OWNED[lowered]
        elif "partner" in lowered or segment == "partners":
            value, real, addressed = str(w.partner_a.id), True, w.partner_a
        elif "customer" in lowered or "tenant" in lowered or segment == "customers":
            value, real, addressed = str(w.customer_a.id), True, w.customer_a
        elif "user" in lowered or segment == "users":
            victim = w.victims["customer" if addressed is w.customer_a else "partner"]
            value, real = str(victim.id), True
        elif "token" in lowered or segment == "tokens":
            value, real = str(w.token_a), True
        else:
            value = str(uuid.uuid4())
        path = re.sub(r"{" + re.escape(name) + r"(:[^}]+)?}", value, path, count=1)
    return path, real


def fill_own(endpoint: Endpoint, w: World, caller: User) -> str:
    """The path with the caller's own tenant's ids (so only the role can be the reason)."""
    path = endpoint.path
    for segment, name in _segments_before(endpoint.path):
        lowered = name.lower()
        if lowered == "portal":
            value = PORTALS[caller.tenant.kind]
        elif lowered in NOT_TENANT_OWNED:
            value = NOT_TENANT_OWNED[lowered]
        elif "partner" in lowered or segment == "partners":
            value = str(w.partner_b.id)
        elif "customer" in lowered or "tenant" in lowered or segment == "customers":
            value = str(w.customer_b.id)
        elif "user" in lowered or segment == "users":
            value = str(caller.id)
        else:
            value = str(uuid.uuid4())
        path = re.sub(r"{" + re.escape(name) + r"(:[^}]+)?}", value, path, count=1)
    return path


def call(
    client: TestClient, w: World, endpoint: Endpoint, path: str, caller: User, spec: dict[str, Any]
) -> Any:
    kwargs = request_kwargs(endpoint, spec)
    if endpoint.is_api:
        kwargs["headers"]["Authorization"] = f"Bearer {w.bearer[caller.id]}"
    else:
        kwargs["headers"]["Accept"] = "text/html"
        client.cookies.set(deps.SESSION_COOKIE, w.cookie[caller.id])
    try:
        return client.request(endpoint.method, path, follow_redirects=False, **kwargs)
    finally:
        client.cookies.clear()


# --- the walks -----------------------------------------------------------------------------


def test_the_walk_sees_the_application_routes(app: FastAPI) -> None:
    endpoints = {str(e): e for e in collect_endpoints(app)}
    assert endpoints["POST /v1/partners"].actions == {Action.MANAGE_PARTNERS}
    assert endpoints["POST /v1/sandbox/clock"].actions == {Action.MOVE_SANDBOX_CLOCK}
    assert endpoints["GET /v1/partners/{partner_id}/users"].authenticated
    assert not endpoints["POST /v1/auth/token"].authenticated
    assert "GET /partner/users" not in endpoints  # pages are matched by their own pattern
    assert "GET /{portal}/users" in endpoints
    api_paths = {e.path for e in endpoints.values() if e.is_api}
    documented = {p for p in app.openapi()["paths"] if p.startswith("/v1/")}
    assert api_paths == documented  # nothing hidden from the walk


def test_foreign_tenant_ids_answer_404_or_403_on_every_route(
    client: TestClient, app: FastAPI, world: World
) -> None:
    spec = app.openapi()
    failures, walked = [], 0
    for endpoint in collect_endpoints(app):
        if not endpoint.authenticated or not endpoint.params:
            continue
        if not endpoint.is_api and endpoint.method != "GET":
            continue  # page forms are refused by CSRF first; their GET pages are walked
        if set(endpoint.params) <= {"portal", *NOT_TENANT_OWNED}:
            continue  # no tenant's id in the path: the caller's own page, a locale, an offer
        for caller in world.all_roles.values():
            path, _real = fill_foreign(endpoint, world, caller)
            r = call(client, world, endpoint, path, caller, spec)
            walked += 1
            if r.status_code not in (403, 404):
                failures.append(f"{endpoint} as {caller.tenant.kind.value} {path}: {r.status_code}")
    assert walked >= 10
    assert not failures, "Routes that do not hide another tenant's resources:\n" + "\n".join(
        failures
    )


def test_collections_never_show_another_tenants_resources(
    client: TestClient, app: FastAPI, world: World
) -> None:
    spec = app.openapi()
    secrets, failures = world.secrets_of_a(), []
    for endpoint in collect_endpoints(app):
        if endpoint.method != "GET" or endpoint.params or not endpoint.authenticated:
            continue
        callers = [*world.all_roles.values(), *world.callers.values()]
        for caller in callers:
            if caller.tenant.kind == TenantKind.PROVIDER:
                continue  # the provider legitimately sees partners
            r = call(client, world, endpoint, endpoint.path, caller, spec)
            if r.status_code >= 500:
                failures.append(f"{endpoint}: {r.status_code}")
            leaked = [s for s in secrets if s in r.text]
            if leaked:
                failures.append(f"{endpoint} as {caller.email}: shows {leaked}")
    assert not failures, "\n".join(failures)


def test_roles_the_table_refuses_get_403_on_every_guarded_route(
    client: TestClient, app: FastAPI, world: World
) -> None:
    spec = app.openapi()
    failures, walked = [], 0
    for endpoint in collect_endpoints(app):
        if not endpoint.actions or endpoint.path in ABSENT_HERE:
            continue
        for (kind, role), caller in world.callers.items():
            if all(allowed(kind, [role], action) for action in endpoint.actions):
                continue
            path = fill_own(endpoint, world, caller)
            r = call(client, world, endpoint, path, caller, spec)
            walked += 1
            if r.status_code != 403:
                failures.append(f"{endpoint} as {kind.value} {role.value}: {r.status_code}")
    assert walked >= 10
    assert not failures, "Guarded routes that did not refuse a role:\n" + "\n".join(failures)


def test_no_route_answers_5xx_to_any_role(client: TestClient, app: FastAPI, world: World) -> None:
    spec = app.openapi()
    failures = []
    for endpoint in collect_endpoints(app):
        if not endpoint.is_api or not endpoint.authenticated:
            continue
        for caller in world.callers.values():
            path = fill_own(endpoint, world, caller)
            r = call(client, world, endpoint, path, caller, spec)
            if r.status_code >= 500:
                body = r.text[:200]
                failures.append(f"{endpoint} as {caller.email}: {r.status_code} {body}")
    assert not failures, "\n".join(failures)


def test_request_builder_fills_required_fields(app: FastAPI) -> None:
    spec = app.openapi()
    endpoint = next(e for e in collect_endpoints(app) if str(e) == "POST /v1/partners")
    body = request_kwargs(endpoint, spec)["json"]
    assert body == {"companyName": "walk-companyname", "country": "US"}
    json.dumps(body)
