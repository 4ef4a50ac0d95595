"""JSON routes: token sign-in, the caller, partners and their users, named API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from partnercenter.context import Actor
from partnercenter.deps import (
    ActorDep,
    CurrentUser,
    NowDep,
    RequestInfoDep,
    SecurityNowDep,
    SessionDep,
    SettingsDep,
    parse_uuid,
    require,
)
from partnercenter.envelopes import collection
from partnercenter.errors import Forbidden
from partnercenter.i18n import N_, Verbatim
from partnercenter.identity import services
from partnercenter.identity.errors import (
    BadCredentials,
    InvalidGrant,
    OAuthInvalidRequest,
    UnsupportedGrantType,
)
from partnercenter.identity.models import ApiToken, Tenant, User
from partnercenter.identity.schemas import (
    MeOut,
    NamedTokenCreated,
    NamedTokenIn,
    NamedTokenOut,
    PartnerIn,
    PartnerOut,
    TenantOut,
    TokenResponse,
    UserIn,
    UserOut,
    UserPatch,
)
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route

router = APIRouter(route_class=Route, prefix="/v1", tags=["identity"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        displayName=user.display_name,
        roles=[r.value for r in user.roles],
        isActive=user.is_active,
        tenantId=user.tenant_id,
        createdAt=user.created_at,
    )


def partner_out(tenant: Tenant) -> PartnerOut:
    return PartnerOut(
        id=tenant.id, companyName=tenant.name, country=tenant.country, createdAt=tenant.created_at
    )


def token_out(token: ApiToken) -> NamedTokenOut:
    return NamedTokenOut(
        id=token.id,
        name=token.name or "",
        prefix=token.prefix,
        createdAt=token.created_at,
        expiresAt=token.expires_at,
        revokedAt=token.revoked_at,
        lastUsedAt=token.last_used_at,
    )


async def _token_form(request: Request) -> FormData:
    """The token request's form, every value of every field (the same parse the route's
    ``Form`` parameters read; Starlette keeps it on the request)."""
    return await request.form()


_TOKEN_FIELDS = ("grant_type", "username", "password")


def check_token_request(form: FormData) -> tuple[str, str]:
    """The username and password of a password-grant token request, checked in OAuth's order.

    RFC 6749 §4.3.2 and §5.2: the grant type first, since what else the request must hold
    depends on it: no ``grant_type`` → ``invalid_request``; another grant than ``password`` →
    ``unsupported_grant_type`` (whatever else is missing); then a missing ``username`` or
    ``password``, or any of the three given twice → ``invalid_request``. Credentials are
    checked only after this (``invalid_grant``, raised by the caller).
    """
    repeated = [name for name in _TOKEN_FIELDS if len(form.getlist(name)) > 1]

    def value(name: str) -> str:
        found = form.get(name)
        return found if isinstance(found, str) else ""

    grant_type = value("grant_type")
    if not grant_type:
        raise OAuthInvalidRequest(
            N_("The grant_type parameter is missing; use grant_type=password."),
            source="grant_type",
        )
    if "grant_type" in repeated:
        raise OAuthInvalidRequest(
            N_("The %(name)s parameter is given more than once.", name=Verbatim("grant_type")),
            source="grant_type",
        )
    if grant_type != "password":
        raise UnsupportedGrantType(source="grant_type")
    for name in ("username", "password"):
        if not value(name):
            raise OAuthInvalidRequest(
                N_(
                    "The %(name)s parameter is missing; the password grant needs a username "
                    "(the email address) and a password.",
                    name=Verbatim(name),
                ),
                source=name,
            )
        if name in repeated:
            raise OAuthInvalidRequest(
                N_("The %(name)s parameter is given more than once.", name=Verbatim(name)),
                source=name,
            )
    return value("username"), value("password")


@router.post("/auth/token", response_model=TokenResponse)
def token(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    form: Annotated[FormData, Depends(_token_form)],
    # The three fields are declared for the OpenAPI schema; they are read from ``form``,
    # which also shows a field given twice.
    grant_type: Annotated[str | None, Form(description="Always `password`.")] = None,
    username: Annotated[str | None, Form(description="The user's email address.")] = None,
    password: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    """OAuth2 password grant: exchange an email and password for a bearer token.

    Errors follow RFC 6749 §5.2 in its order (:func:`check_token_request`); each body carries
    OAuth's ``error`` and ``error_description`` beside our own fields.
    """
    email, secret_word = check_token_request(form)
    try:
        user = services.authenticate(
            session,
            settings=settings,
            email=email,
            password=secret_word,
            now=now,
            request=info,
            channel="api",
            security_now=security_now,
        )
    except BadCredentials as exc:
        session.commit()  # keep the failure on record: it slows the next guesses down
        raise InvalidGrant(exc.description) from None
    except Exception:
        session.commit()
        raise
    lifetime = timedelta(minutes=settings.access_token_minutes)
    secret, _ = services.issue_token(session, user=user, now=security_now, lifetime=lifetime)
    session.commit()
    return TokenResponse(access_token=secret, expires_in=int(lifetime.total_seconds()))


@router.get("/users/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    """The caller: user, tenant and roles."""
    tenant = user.tenant
    return MeOut(
        **user_out(user).model_dump(),
        tenant=TenantOut(
            id=tenant.id, kind=tenant.kind.value, companyName=tenant.name, country=tenant.country
        ),
    )


@router.get("/users/me/tokens")
def list_tokens(user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The caller's named API tokens (never their secrets)."""
    tokens = services.list_named_tokens(session, user_id=user.id)
    return collection([token_out(t).model_dump(mode="json") for t in tokens])


@router.post("/users/me/tokens", status_code=201, response_model=NamedTokenCreated)
def create_token(
    body: NamedTokenIn,
    user: CurrentUser,
    session: SessionDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    actor: Annotated[Actor, Depends(require(Action.MANAGE_OWN_API_TOKENS))],
) -> NamedTokenCreated:
    """Create a named token for scripts; the secret is shown once."""
    secret, token = services.create_named_token(
        session,
        user=user,
        name=body.name,
        now=now,
        request=info,
        days=body.days,
        security_now=security_now,
    )
    session.commit()
    return NamedTokenCreated(**token_out(token).model_dump(), token=secret)


@router.delete("/users/me/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: str, user: CurrentUser, session: SessionDep, now: NowDep, info: RequestInfoDep
) -> Response:
    """Revoke one of the caller's named tokens."""
    services.revoke_token(
        session, user=user, token_id=parse_uuid(token_id, "token"), now=now, request=info
    )
    session.commit()
    return Response(status_code=204)


@router.post("/partners", status_code=201, response_model=PartnerOut)
def create_partner(
    body: PartnerIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Annotated[Actor, Depends(require(Action.MANAGE_PARTNERS))],
) -> PartnerOut:
    """Create a partner tenant (provider admins)."""
    tenant = services.create_partner(
        session, actor=actor, name=body.companyName, country=body.country, now=now, request=info
    )
    session.commit()
    return partner_out(tenant)


@router.get("/partners")
def list_partners(
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.MANAGE_PARTNERS))],
) -> dict[str, Any]:
    """Every partner (provider admins)."""
    return collection(
        [partner_out(t).model_dump(mode="json") for t in services.list_partners(session)]
    )


@router.get("/partners/{partner_id}", response_model=PartnerOut)
def get_partner(partner_id: str, session: SessionDep, actor: ActorDep) -> PartnerOut:
    """One partner: provider admins see any, partner users their own."""
    return partner_out(
        services.get_partner(session, actor=actor, partner_id=parse_uuid(partner_id, "partner"))
    )


def _managed_partner(session: Session, actor: Actor, partner_id: str) -> Tenant:
    """The partner whose users the actor may manage, or 404/403."""
    tenant = services.get_partner(
        session, actor=actor, partner_id=parse_uuid(partner_id, "partner")
    )
    if actor.tenant_kind == TenantKind.PROVIDER:
        return tenant
    if not actor.can(Action.MANAGE_PARTNER_USERS):
        raise Forbidden("Only the partner's Global admin manages its users.")
    return tenant


@router.post("/partners/{partner_id}/users", status_code=201, response_model=UserOut)
def create_partner_user(
    partner_id: str,
    body: UserIn,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: ActorDep,
) -> UserOut:
    """Add a user to a partner (provider admin, or the partner's Global admin)."""
    tenant = _managed_partner(session, actor, partner_id)
    user = services.add_user(
        session,
        actor=actor,
        tenant=tenant,
        email=body.email,
        display_name=body.displayName,
        password=body.password,
        roles=body.roles,
        now=now,
        request=info,
    )
    session.commit()
    return user_out(user)


@router.get("/partners/{partner_id}/users")
def list_partner_users(partner_id: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """The partner's users."""
    tenant = _managed_partner(session, actor, partner_id)
    users = services.list_users(session, tenant_id=tenant.id)
    return collection([user_out(u).model_dump(mode="json") for u in users])


@router.get("/partners/{partner_id}/users/{user_id}", response_model=UserOut)
def get_partner_user(
    partner_id: str, user_id: str, session: SessionDep, actor: ActorDep
) -> UserOut:
    """One user of the partner."""
    tenant = _managed_partner(session, actor, partner_id)
    return user_out(
        services.get_user_in_tenant(
            session, tenant_id=tenant.id, user_id=parse_uuid(user_id, "user")
        )
    )


@router.patch("/partners/{partner_id}/users/{user_id}", response_model=UserOut)
def update_partner_user(
    partner_id: str,
    user_id: str,
    body: UserPatch,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: ActorDep,
) -> UserOut:
    """Change a partner user's name, roles, password or activity."""
    tenant = _managed_partner(session, actor, partner_id)
    user = services.get_user_in_tenant(
        session, tenant_id=tenant.id, user_id=parse_uuid(user_id, "user")
    )
    services.update_user(
        session,
        user=user,
        actor=actor,
        now=now,
        request=info,
        display_name=body.displayName,
        roles=body.roles,
        is_active=body.isActive,
        password=body.password,
    )
    session.commit()
    return user_out(user)


@router.delete("/partners/{partner_id}/users/{user_id}", status_code=204)
def delete_partner_user(
    partner_id: str,
    user_id: str,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: ActorDep,
) -> Response:
    """Remove a partner user: it can no longer sign in; its records stay."""
    tenant = _managed_partner(session, actor, partner_id)
    user = services.get_user_in_tenant(
        session, tenant_id=tenant.id, user_id=parse_uuid(user_id, "user")
    )
    services.delete_user(session, user=user, actor=actor, now=now, request=info)
    session.commit()
    return Response(status_code=204)
