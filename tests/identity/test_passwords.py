"""Passwords: a strength estimate (zxcvbn), the common-password list, never the email."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter import i18n
from partnercenter.demo import DEMO_PASSWORD
from partnercenter.identity import services
from partnercenter.identity.errors import (
    PasswordContainsEmail,
    PasswordTooCommon,
    PasswordTooGuessable,
    PasswordTooLong,
    WeakPassword,
)
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory, token_for
from tests.identity.test_pages import _partner_form, _signed_in
from tests.web import csrf_of


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("short", WeakPassword),
        ("1234567890", PasswordTooCommon),
        ("          ", PasswordTooGuessable),
        ("password1234", PasswordTooCommon),
        ("qwertyuiop", PasswordTooCommon),
        ("aaaaaaaaaaaa", PasswordTooGuessable),
        ("jane.doe@contoso.example!", PasswordContainsEmail),
        ("my-JANE.DOE-is-long-2026", PasswordContainsEmail),
        ("x" * 129, PasswordTooLong),
    ],
)
def test_weak_passwords_are_refused_with_their_reason(
    password: str, error: type[WeakPassword]
) -> None:
    with pytest.raises(error) as caught:
        services.check_password(password, email="Jane.Doe@Contoso.example", display_name="Jane")
    assert type(caught.value) is error
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "password",
    [DEMO_PASSWORD, PASSWORD, "steady-lantern-41", "Tr0ub4dor&3x-horse", "ñandú-cielo-río-42"],
)
def test_strong_passwords_pass(password: str) -> None:
    services.check_password(password, email="jane.doe@contoso.example", display_name="Jane")


def test_the_readme_demo_password_is_the_demo_password() -> None:
    assert DEMO_PASSWORD == "demo-password-2026"


def test_every_password_message_is_in_spanish() -> None:
    es = i18n.translations("es")
    for error in (
        WeakPassword,
        PasswordTooLong,
        PasswordTooCommon,
        PasswordTooGuessable,
        PasswordContainsEmail,
    ):
        assert es.gettext(error.default_description) != error.default_description, error


def test_the_api_refuses_a_common_password_and_the_users_email(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    admin = factory.user(partner, Role.GLOBAL_ADMIN)
    session.commit()
    auth = {"Authorization": f"Bearer {token_for(client, admin)}"}
    for password, name in (
        ("1234567890", "password_too_common"),
        ("new.user@adatum.example-2026", "password_contains_email"),
    ):
        r = client.post(
            f"/v1/partners/{partner.id}/users",
            headers=auth,
            json={
                "email": "New.User@Adatum.example",
                "password": password,
                "roles": ["sales_agent"],
            },
        )
        assert r.status_code == 400, r.text
        assert r.json()["errorName"] == name


def test_the_partner_form_explains_a_common_password_in_spanish(
    client: TestClient, factory: Factory
) -> None:
    _signed_in(client, factory, factory.provider_admin())
    es = {"Accept-Language": "es-ES"}
    token = csrf_of(client.get("/provider/partners", headers=es).text)
    r = client.post(
        "/provider/partners",
        data={**_partner_form(admin_password="1234567890"), "csrf_token": token},
        headers=es,
    )
    assert r.status_code == 400
    assert "Esta contraseña está entre las más usadas. Elige otra." in r.text
