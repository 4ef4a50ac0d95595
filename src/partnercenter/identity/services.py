"""Tenants, users and roles; passwords, sign-in throttling, web sessions and API tokens."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session, joinedload

from partnercenter.audit import services as audit
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.db import ALONE
from partnercenter.errors import Forbidden, InvalidInput, NotFound
from partnercenter.i18n import N_
from partnercenter.identity.errors import (
    BadCredentials,
    EmailTaken,
    InvalidRole,
    LastGlobalAdmin,
    PasswordContainsEmail,
    PasswordTooCommon,
    PasswordTooGuessable,
    PasswordTooLong,
    SignInThrottled,
    WeakPassword,
)
from partnercenter.identity.models import (
    ApiToken,
    SignInFailure,
    Tenant,
    User,
    UserRole,
    WebSession,
)
from partnercenter.permissions import Action, Role, TenantKind, valid_roles

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A hash to verify against when the account does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
# zxcvbn's score: 0-4 (a guess count under 10^8 is below 3). 3 stands up to an offline attack
# on a slow hash like argon2 ("safely unguessable: moderate protection" in zxcvbn's words).
MIN_PASSWORD_SCORE = 3
TOKEN_PREFIX = "pc_"  # noqa: S105 - a public prefix, not a secret


def check_password(password: str, *, email: str = "", display_name: str = "") -> None:
    """Refuse a weak password with a reason the person can act on.

    Rules (NIST SP 800-63B 5.1.1.2): 10 to 128 characters; not in the list of commonly used
    passwords (zxcvbn's frequency lists, 30,000 leaked passwords); not containing the email
    address or its name part; and a zxcvbn strength score of at least 3, with the email and
    display name given to zxcvbn as words an attacker knows.

    Raises ``WeakPassword`` (or a subclass: ``PasswordTooLong``, ``PasswordTooCommon``,
    ``PasswordContainsEmail``, ``PasswordTooGuessable``); all answer 400.
    """
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword()
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordTooLong()
    folded = password.casefold()
    email = email.strip().casefold()
    local = email.split("@", 1)[0]
    if (email and email in folded) or (len(local) >= 3 and local in folded):
        raise PasswordContainsEmail(source="password")
    words = [w for w in (email, local, display_name.strip().casefold()) if w]
    result = zxcvbn(password, user_inputs=words)
    for match in result.get("sequence", []):
        if (
            match.get("pattern") == "dictionary"
            and match.get("dictionary_name") == "passwords"
            and len(match.get("token", "")) >= len(password) - 2
        ):
            raise PasswordTooCommon(source="password")
    if int(result["score"]) < MIN_PASSWORD_SCORE:
        raise PasswordTooGuessable(source="password")


def hash_password(password: str, *, email: str = "", display_name: str = "") -> str:
    """Check the password (:func:`check_password`) and hash it with argon2id."""
    check_password(password, email=email, display_name=display_name)
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise InvalidInput(N_("The email address is not valid."), source="email")
    return email


def actor_for(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        tenant_id=user.tenant_id,
        tenant_kind=user.tenant.kind,
        tenant_name=user.tenant.name,
        roles=frozenset(user.roles),
    )


# --- tenants -----------------------------------------------------------------------------


def provider_admin_emails(session: Session) -> list[str]:
    """Email addresses of the provider's active Provider admins (operational notices)."""
    stmt = (
        select(User.email)
        .join(Tenant, Tenant.id == User.tenant_id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(
            Tenant.kind == TenantKind.PROVIDER,
            User.is_active.is_(True),
            UserRole.role == Role.PROVIDER_ADMIN,
        )
        .order_by(User.email)
    )
    return list(dict.fromkeys(session.execute(stmt).scalars()))


def get_provider(session: Session) -> Tenant | None:
    return session.execute(
        select(Tenant).where(Tenant.kind == TenantKind.PROVIDER).limit(1)
    ).scalar_one_or_none()


def create_tenant(
    session: Session,
    *,
    kind: TenantKind,
    name: str,
    now: datetime,
    parent_id: uuid.UUID | None = None,
    country: str | None = None,
    domain: str | None = None,
    billing_profile: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> Tenant:
    name = name.strip()
    if not name:
        raise InvalidInput(N_("The company name is required."), source="companyName")
    if country is not None:
        from partnercenter.markets import normalise_country

        country = normalise_country(country)
    tenant = Tenant(
        id=tenant_id or uuid.uuid4(),
        kind=kind,
        name=name,
        parent_id=parent_id,
        country=country,
        domain=domain,
        billing_profile=billing_profile,
        created_at=now,
    )
    session.add(tenant)
    return tenant


def list_partners(session: Session) -> Sequence[Tenant]:
    return (
        session.execute(
            select(Tenant).where(Tenant.kind == TenantKind.PARTNER).order_by(Tenant.name)
        )
        .scalars()
        .all()
    )


def get_partner(session: Session, *, actor: Actor, partner_id: uuid.UUID) -> Tenant:
    """A partner visible to the actor: any for provider admins, its own for partner users."""
    tenant = session.get(Tenant, partner_id)
    if tenant is None or tenant.kind != TenantKind.PARTNER:
        raise NotFound("The partner was not found.")
    if actor.tenant_kind == TenantKind.PROVIDER and actor.can(Action.MANAGE_PARTNERS):
        return tenant
    if actor.tenant_id == tenant.id:
        return tenant
    raise NotFound("The partner was not found.")


def create_partner(
    session: Session,
    *,
    actor: Actor,
    name: str,
    country: str,
    now: datetime,
    request: RequestInfo | None = None,
) -> Tenant:
    """Create a partner tenant; audited in the provider's log."""
    if not country.strip():
        raise InvalidInput(N_("Choose the partner's country."), source="country")
    tenant = create_tenant(session, kind=TenantKind.PARTNER, name=name, country=country, now=now)
    session.flush()  # the tenant's id goes into the audit record
    audit.record(
        session,
        at=now,
        resource_type="partner",
        operation_type="create_partner",
        tenant_id=actor.tenant_id,
        actor=actor,
        request=request,
        details={"partnerId": str(tenant.id), "companyName": tenant.name},
    )
    return tenant


def create_partner_with_admin(
    session: Session,
    *,
    actor: Actor,
    name: str,
    country: str,
    admin_email: str,
    admin_name: str,
    admin_password: str,
    now: datetime,
    request: RequestInfo | None = None,
) -> tuple[Tenant, User]:
    """Create a partner and its first Global admin together (one transaction, both audited)."""
    tenant = create_partner(
        session, actor=actor, name=name, country=country, now=now, request=request
    )
    admin = add_user(
        session,
        actor=actor,
        tenant=tenant,
        email=admin_email,
        display_name=admin_name,
        password=admin_password,
        roles=[Role.GLOBAL_ADMIN.value],
        now=now,
        request=request,
    )
    return tenant, admin


# --- users -------------------------------------------------------------------------------


def _check_roles(kind: TenantKind, roles: Iterable[str]) -> list[Role]:
    allowed_roles = valid_roles(kind)
    result: list[Role] = []
    for raw in roles:
        try:
            role = Role(raw)
        except ValueError:
            raise InvalidRole(
                f"'{raw}' is not a role. Roles for a {kind.value}: "
                + ", ".join(r.value for r in allowed_roles),
                source="roles",
            ) from None
        if role not in allowed_roles:
            raise InvalidRole(
                f"'{raw}' is not a role of a {kind.value}. Roles for a {kind.value}: "
                + ", ".join(r.value for r in allowed_roles),
                source="roles",
            )
        if role not in result:
            result.append(role)
    return result


def create_user(
    session: Session,
    *,
    tenant: Tenant,
    email: str,
    display_name: str,
    password: str,
    roles: Iterable[str],
    now: datetime,
    password_hash: str | None = None,
) -> User:
    """Create a user; ``password_hash`` (argon2) stands in for hashing ``password`` again.

    Raises ``EmailTaken``, ``WeakPassword`` or a role error.
    """
    email = normalise_email(email)
    checked = _check_roles(tenant.kind, roles)
    if session.execute(select(User.id).where(User.email == email)).first() is not None:
        raise EmailTaken()
    user = User(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        email=email,
        display_name=display_name.strip() or email,
        password_hash=password_hash
        or hash_password(password, email=email, display_name=display_name),
        is_active=True,
        created_at=now,
    )
    user.tenant = tenant
    user.role_rows = [UserRole(role=r) for r in checked]
    session.add(user)
    return user


def add_user(
    session: Session,
    *,
    actor: Actor,
    tenant: Tenant,
    email: str,
    display_name: str,
    password: str,
    roles: Iterable[str],
    now: datetime,
    request: RequestInfo | None = None,
) -> User:
    """Create a user on behalf of an administrator; audited in the user's tenant log."""
    user = create_user(
        session,
        tenant=tenant,
        email=email,
        display_name=display_name,
        password=password,
        roles=roles,
        now=now,
    )
    session.flush()  # the user's id goes into the audit record
    audit.record(
        session,
        at=now,
        resource_type="user",
        operation_type="create_user",
        tenant_id=tenant.id,
        actor=actor,
        request=request,
        details={
            "userId": str(user.id),
            "userPrincipalName": user.email,
            "newRoles": sorted(r.value for r in user.roles),
        },
    )
    return user


def count_users(session: Session, tenant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Active users per tenant."""
    ids = list(tenant_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(User.tenant_id, func.count())
        .where(User.tenant_id.in_(ids), User.is_active.is_(True))
        .group_by(User.tenant_id)
    ).all()
    return {tenant_id: int(n) for tenant_id, n in rows}


def list_users(session: Session, *, tenant_id: uuid.UUID) -> Sequence[User]:
    return (
        session.execute(select(User).where(User.tenant_id == tenant_id).order_by(User.email))
        .scalars()
        .all()
    )


def get_user_in_tenant(session: Session, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(N_("The user was not found."))
    return user


def _admin_role(kind: TenantKind) -> Role:
    return Role.PROVIDER_ADMIN if kind == TenantKind.PROVIDER else Role.GLOBAL_ADMIN


def _lock_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """Hold the tenant's row until the transaction ends (PostgreSQL ``FOR NO KEY UPDATE``:
    it queues a second such lock, not the inserts whose foreign keys point at the tenant)."""
    stmt = select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True)
    session.execute(stmt).one()


def _count_admins(session: Session, tenant_id: uuid.UUID, role: Role) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(User.tenant_id == tenant_id, UserRole.role == role, User.is_active.is_(True))
        ).scalar_one()
    )


def update_user(
    session: Session,
    *,
    user: User,
    actor: Actor,
    now: datetime,
    request: RequestInfo | None = None,
    display_name: str | None = None,
    roles: Iterable[str] | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's name, roles, activity or password; role changes are audited."""
    kind = user.tenant.kind
    admin_role = _admin_role(kind)
    was_admin = admin_role in user.roles and user.is_active
    if display_name is not None:
        user.display_name = display_name.strip() or user.email
    if password is not None:
        user.password_hash = hash_password(
            password, email=user.email, display_name=user.display_name
        )
        # A new password set by an administrator is the way back in for a locked owner.
        clear_sign_in_failures(session, email=user.email)
    old_roles = sorted(r.value for r in user.roles)
    if roles is not None:
        checked = _check_roles(kind, roles)
        keep = {r.role for r in user.role_rows if r.role in checked}
        user.role_rows = [r for r in user.role_rows if r.role in keep] + [
            UserRole(role=r) for r in checked if r not in keep
        ]
    if is_active is not None:
        user.is_active = is_active
    is_admin = admin_role in user.roles and user.is_active
    if was_admin and not is_admin:
        # Two administrators removing each other at once must not both succeed: each would
        # count the other as still there. The tenant's row, locked here, serialises every
        # removal of an administrator of the tenant (PostgreSQL; SQLite's BEGIN IMMEDIATE
        # serialises every writer already); the count after the lock sees what the removal
        # before it committed, as every statement takes a new snapshot (READ COMMITTED).
        _lock_tenant(session, user.tenant_id)
        session.flush()  # count the admins as they will be after this change
        if _count_admins(session, user.tenant_id, admin_role) == 0:
            raise LastGlobalAdmin()
    new_roles = sorted(r.value for r in user.roles)
    if new_roles != old_roles or is_active is not None:
        audit.record(
            session,
            at=now,
            resource_type="user",
            operation_type="update_user_roles",
            tenant_id=user.tenant_id,
            actor=actor,
            request=request,
            details={
                "userId": str(user.id),
                "userPrincipalName": user.email,
                "oldRoles": old_roles,
                "newRoles": new_roles,
                "isActive": user.is_active,
            },
        )
    return user


def delete_user(
    session: Session, *, user: User, actor: Actor, now: datetime, request: RequestInfo | None
) -> None:
    """Deactivate a user (records keep pointing at it) and end its sessions and tokens."""
    if user.id == actor.user_id:
        raise Forbidden(N_("You cannot remove your own account."))
    update_user(session, user=user, actor=actor, now=now, request=request, is_active=False)
    for ws in session.execute(
        select(WebSession).where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
    ).scalars():
        ws.revoked_at = now
    for token in session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).scalars():
        token.revoked_at = now


# --- sign-in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleState:
    blocked: bool
    retry_after: int


def sign_in_throttle(
    session: Session, *, settings: Settings, email: str, address: str, now: datetime
) -> ThrottleState:
    """Whether the account or address has failed too often in the recent window."""
    window = timedelta(minutes=settings.sign_in_failure_window_minutes)
    since = now - window
    by_email = session.execute(
        select(func.count(), func.min(SignInFailure.at)).where(
            SignInFailure.email == email, SignInFailure.at > since
        )
    ).one()
    by_address = session.execute(
        select(func.count(), func.min(SignInFailure.at)).where(
            SignInFailure.address == address, SignInFailure.at > since
        )
    ).one()
    oldest: list[datetime] = []
    if by_email[0] >= settings.sign_in_max_failures_per_account:
        oldest.append(by_email[1])
    if by_address[0] >= settings.sign_in_max_failures_per_address:
        oldest.append(by_address[1])
    if not oldest:
        return ThrottleState(False, 0)
    from partnercenter.clock import utc

    retry = max(int((utc(min(oldest)) + window - now).total_seconds()) + 1, 1)
    return ThrottleState(True, retry)


def _serialise_attempts(session: Session, *keys: str) -> None:
    """Make sign-in attempts on the same account or address take turns, until commit.

    Without this, parallel attempts all count the failures before any is recorded and all
    get their password checked. PostgreSQL: transaction-scoped advisory locks, taken in a
    fixed order so two attempts never wait on each other crosswise. SQLite: every
    transaction already holds the database's write lock (``BEGIN IMMEDIATE``, db.py).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        digest = hashlib.sha256(("sign-in:" + key).encode()).digest()
        lock_id = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def clear_sign_in_failures(session: Session, *, email: str) -> int:
    """Forget an account's failed sign-ins (an administrator's reset); returns how many."""
    failures = session.execute(
        select(SignInFailure).where(SignInFailure.email == email.strip().lower())
    ).scalars()
    count = 0
    for failure in failures:
        session.delete(failure)
        count += 1
    return count


def authenticate(
    session: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    now: datetime,
    request: RequestInfo,
    channel: str,
    security_now: datetime | None = None,
) -> User:
    """Check a password; failures are recorded and slow further attempts down.

    The caller commits whatever the outcome, so failures are kept even though the
    request fails. ``now`` dates the activity records (business time); the throttle's
    window runs on ``security_now`` (real time; ``now`` when not given).
    """
    email = email.strip().lower()
    address = request.client_address or "unknown"
    _serialise_attempts(session, "email:" + email, "address:" + address)
    wall = security_now or now
    throttle = sign_in_throttle(session, settings=settings, email=email, address=address, now=wall)
    if throttle.blocked:
        audit.record(
            session,
            at=now,
            resource_type="sign_in",
            operation_type="sign_in_throttled",
            tenant_id=None,
            user_principal_name=email,
            request=request,
            status="failed",
            details={"channel": channel},
        )
        raise SignInThrottled(retry_after=throttle.retry_after)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    ok = False
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
    else:
        try:
            ok = _hasher.verify(user.password_hash, password) and user.is_active
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    if not ok or user is None:
        session.add(SignInFailure(email=email, address=address, at=wall))
        audit.record(
            session,
            at=now,
            resource_type="sign_in",
            operation_type="sign_in_failed",
            tenant_id=user.tenant_id if user else None,
            user_principal_name=email,
            request=request,
            status="failed",
            details={"channel": channel},
        )
        raise BadCredentials()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    audit.record(
        session,
        at=now,
        resource_type="sign_in",
        operation_type="sign_in_succeeded",
        tenant_id=user.tenant_id,
        actor=actor_for(user),
        request=request,
        details={"channel": channel},
    )
    return user


def start_web_session(
    session: Session, *, user: User, settings: Settings, now: datetime
) -> tuple[str, WebSession]:
    """Create a browser session; returns the cookie value (shown only here) and the row."""
    token = secrets.token_urlsafe(32)
    ws = WebSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
    )
    session.add(ws)
    return token, ws


def resolve_web_session(session: Session, *, token: str, now: datetime) -> WebSession | None:
    """The live web session of a cookie token, or None (unknown, revoked or expired).

    One statement: the session row, its user, the user's tenant and roles come back joined,
    so the caller's ``session.get(User, ws.user_id)`` is answered from the identity map.
    """
    ws = (
        session.execute(
            select(WebSession)
            .options(
                joinedload(WebSession.user).joinedload(User.role_rows),
                joinedload(WebSession.user)
                .joinedload(User.tenant)
                .joinedload(Tenant.webhook_registration),
            )
            .where(WebSession.token_hash == _token_hash(token))
        )
        .unique()
        .scalar_one_or_none()
    )
    if ws is None or ws.revoked_at is not None or ws.expires_at <= now:
        return None
    return ws


def end_web_session(session: Session, *, ws: WebSession, now: datetime) -> None:
    ws.revoked_at = now


# --- API tokens --------------------------------------------------------------------------


def issue_token(
    session: Session,
    *,
    user: User,
    now: datetime,
    name: str | None = None,
    lifetime: timedelta | None = None,
) -> tuple[str, ApiToken]:
    """Create a bearer token; the secret is returned once and only its hash is stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_token_hash(secret),
        prefix=secret[:10],
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
    )
    session.add(token)
    return secret, token


def create_named_token(
    session: Session,
    *,
    user: User,
    name: str,
    now: datetime,
    request: RequestInfo | None,
    days: int | None = None,
    security_now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A named token for scripts, audited at ``now``; it expires ``days`` after
    ``security_now`` (real time; ``now`` when not given)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput(N_("Give the token a name of 1 to 100 characters."), source="name")
    if days is not None and not 1 <= days <= 730:
        raise InvalidInput("A token lives between 1 and 730 days.", source="days")
    secret, token = issue_token(
        session,
        user=user,
        now=security_now or now,
        name=name,
        lifetime=timedelta(days=days) if days else None,
    )
    session.flush()  # the token id goes into the audit record
    audit.record(
        session,
        at=now,
        resource_type="api_token",
        operation_type="create_api_token",
        tenant_id=user.tenant_id,
        actor=actor_for(user),
        request=request,
        details={"tokenId": str(token.id), "name": name, "prefix": token.prefix},
    )
    return secret, token


def list_named_tokens(session: Session, *, user_id: uuid.UUID) -> Sequence[ApiToken]:
    return (
        session.execute(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.name.is_not(None))
            .order_by(ApiToken.created_at.desc())
        )
        .scalars()
        .all()
    )


def revoke_token(
    session: Session,
    *,
    user: User,
    token_id: uuid.UUID,
    now: datetime,
    request: RequestInfo | None,
) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.name is None:
        raise NotFound("The token was not found.")
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(
            session,
            at=now,
            resource_type="api_token",
            operation_type="revoke_api_token",
            tenant_id=user.tenant_id,
            actor=actor_for(user),
            request=request,
            details={"tokenId": str(token.id), "name": token.name},
        )


def resolve_token(session: Session, *, secret: str, now: datetime) -> User | None:
    """The active user of a live bearer token, or None (unknown, revoked, expired, inactive).

    One statement per request: token, user, tenant (with its webhook registration, for the
    events of the request's activity records) and roles come back joined. Nothing is
    cached between requests, so a revocation or a role change holds from the next request.
    """
    token = (
        session.execute(
            select(ApiToken)
            .options(
                joinedload(ApiToken.user).joinedload(User.role_rows),
                joinedload(ApiToken.user)
                .joinedload(User.tenant)
                .joinedload(Tenant.webhook_registration),
            )
            .where(ApiToken.token_hash == _token_hash(secret))
        )
        .unique()
        .scalar_one_or_none()
    )
    if token is None or not _token_live(token.revoked_at, token.expires_at, token.user, now):
        return None
    if _touch_due(token.name, token.last_used_at, now):
        token.last_used_at = now
    return token.user


class _Activity(Protocol):
    is_active: bool


def _token_live(
    revoked_at: datetime | None, expires_at: datetime | None, user: _Activity, now: datetime
) -> bool:
    """A token counts while it is not revoked, not expired (``now``: real time, UTC) and its
    user is active: the rule both resolvers apply."""
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        return False
    return user.is_active


def _touch_due(name: str | None, last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a named token's ``last_used_at`` is moved (at most every five minutes)."""
    return name is not None and (last_used_at is None or now - last_used_at > timedelta(minutes=5))


# Authentication's one statement for a bearer token: the token's and the user's columns, one
# row per role, and the tenant as an entity with its webhook registration. The tenant lands in
# the session's identity map (the events of the request's activity records read its
# registration there, webhooks.services.queue_events); the user is not built as an object,
# which costs more than the round trip (docs/dev/performance.md, "Per-request overhead").
_TOKEN_ACTOR = (
    select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.id,
        User.email,
        User.display_name,
        User.is_active,
        UserRole.role,
        Tenant,
    )
    .join(User, User.id == ApiToken.user_id)
    .join(Tenant, Tenant.id == User.tenant_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .options(joinedload(Tenant.webhook_registration))
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def resolve_token_actor(session: Session, *, secret: str, now: datetime) -> Actor | None:
    """The :class:`Actor` of a live bearer token, or None (unknown, revoked, expired, inactive).

    The same rules as :func:`resolve_token` in one statement, without building the user as
    an ORM object; the caller's tenant (with its webhook registration) is loaded into the
    session. Nothing is cached between requests, so a revocation, a deactivation or a role
    change holds from the next request. ``now`` is real time (UTC). A named token's
    ``last_used_at`` is moved at most every five minutes.
    """
    rows = session.execute(_TOKEN_ACTOR, {"token_hash": _token_hash(secret)}).all()
    if not rows:
        return None
    first = rows[0]
    token_id, name, expires_at, revoked_at, last_used_at, user_id, email, display_name = first[:8]
    tenant = first[10]
    if not _token_live(revoked_at, expires_at, first, now):
        return None
    # The identity map holds unchanged objects weakly: keep the tenant for the session's life.
    session.info["caller_tenant"] = tenant
    if _touch_due(name, last_used_at, now):
        # Committed on its own where the request's transaction begins at its first write
        # (db.ALONE): a read records the use too, and a failed write does not undo it.
        touch = update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        session.execute(touch, execution_options={ALONE: True})
    return Actor(
        user_id=user_id,
        email=email,
        display_name=display_name,
        tenant_id=tenant.id,
        tenant_kind=tenant.kind,
        tenant_name=tenant.name,
        roles=frozenset(row[9] for row in rows if row[9] is not None),
    )


def find_users_by_ids(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    id_list = list(ids)
    if not id_list:
        return {}
    rows = session.execute(select(User).where(User.id.in_(id_list))).scalars().all()
    return {u.id: u for u in rows}


def search_users(session: Session, *, tenant_id: uuid.UUID, text: str) -> Sequence[User]:
    pattern = f"%{text.lower()}%"
    return (
        session.execute(
            select(User).where(
                User.tenant_id == tenant_id,
                or_(
                    func.lower(User.email).like(pattern),
                    func.lower(User.display_name).like(pattern),
                ),
            )
        )
        .scalars()
        .all()
    )
