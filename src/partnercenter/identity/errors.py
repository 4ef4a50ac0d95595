"""Errors of the identity area."""

from __future__ import annotations

from typing import Any

from partnercenter.errors import Conflict, DomainError, InvalidInput, TooManyRequests
from partnercenter.i18n import N_


class BadCredentials(DomainError):
    code = 10411
    name = "bad_credentials"
    status = 401
    default_description = N_("The email or password is incorrect.")


class SignInThrottled(TooManyRequests):
    code = 10412
    name = "sign_in_throttled"
    default_description = N_("Too many failed sign-ins. Wait before trying again.")


class EmailTaken(Conflict):
    code = 10413
    name = "email_taken"
    default_description = N_("A user with this email already exists.")


class InvalidRole(InvalidInput):
    code = 10414
    name = "invalid_role"
    default_description = N_("The role is not valid for this kind of tenant.")


class WeakPassword(InvalidInput):
    code = 10415
    name = "weak_password"
    default_description = N_("The password must have at least 10 characters.")


class PasswordTooLong(WeakPassword):
    code = 10417
    name = "password_too_long"
    default_description = N_("The password may have at most 128 characters.")


class PasswordTooCommon(WeakPassword):
    code = 10418
    name = "password_too_common"
    default_description = N_("This password is among the most commonly used ones. Choose another.")


class PasswordTooGuessable(WeakPassword):
    code = 10420
    name = "password_too_guessable"
    default_description = N_(
        "This password is too easy to guess. Use a longer phrase of unrelated words."
    )


class PasswordContainsEmail(WeakPassword):
    code = 10421
    name = "password_contains_email"
    default_description = N_("The password may not contain your email address or its name part.")


class LastGlobalAdmin(Conflict):
    code = 10416
    name = "last_global_admin"
    default_description = N_("A tenant must keep at least one administrator.")


class OAuthError(InvalidInput):
    """An error of the token endpoint, carrying OAuth's own fields beside ours.

    RFC 6749 §5.2: the body names the error in ``error`` (one of the RFC's codes) and may
    explain it in ``error_description``; OAuth client libraries read those two.
    """

    oauth_error: str = "invalid_request"

    def body(self) -> dict[str, Any]:
        return {
            **super().body(),
            "error": self.oauth_error,
            "error_description": str(self.description),
        }


class OAuthInvalidRequest(OAuthError):
    code = 10422
    name = "invalid_request"
    oauth_error = "invalid_request"
    default_description = N_(
        "The token request is missing a required parameter or repeats one "
        "(grant_type, username and password, each once)."
    )


class UnsupportedGrantType(OAuthError):
    code = 10423
    name = "unsupported_grant_type"
    oauth_error = "unsupported_grant_type"
    default_description = N_("Only grant_type=password is supported.")


class InvalidGrant(BadCredentials):
    """Wrong email or password at the token endpoint: our ``bad_credentials`` (401, as for
    every sign-in) with OAuth's ``invalid_grant`` (RFC 6749 §5.2) beside it."""

    def body(self) -> dict[str, Any]:
        return {
            **super().body(),
            "error": "invalid_grant",
            "error_description": str(self.description),
        }
