"""Signing in and out, the language switch and per-user language and time zone."""

from typing import Any

import pytest
from django.test import Client

from loudou.core.models import AuditEvent


def test_sign_in_shows_name_role_and_branch(org: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get("/login/")
    assert page.status_code == 200 and "Sign in to loudou" in page.content.decode()
    response = client.post("/login/", {"username": "seller", "password": "loudou-test-pw-1"})
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/board/").content.decode()
    assert "seller" in html and "Account manager" in html and "北京分公司" in html


def test_wrong_password_is_refused_with_a_message(org: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/login/", {"username": "seller", "password": "wrong"})
    assert response.status_code == 200
    assert "The user name or password is not right" in response.content.decode()
    assert client.get("/board/").status_code == 302


def test_sign_out_needs_post(client_for: Any) -> None:
    client = client_for("seller")
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/board/").status_code == 302


def test_next_is_followed_only_within_the_site(org: dict[str, Any]) -> None:
    client = Client()
    ok = client.post(
        "/login/", {"username": "seller", "password": "loudou-test-pw-1", "next": "/board/"}
    )
    assert ok["Location"] == "/board/"
    client = Client()
    evil = client.post(
        "/login/",
        {"username": "seller", "password": "loudou-test-pw-1", "next": "https://evil.example/"},
    )
    assert evil["Location"] == "/"


def test_browser_language_decides_until_the_user_chooses(
    org: dict[str, Any], client_for: Any
) -> None:
    english = client_for("seller", "en").get("/board/")
    assert english["Content-Language"] == "en"
    chinese = client_for("seller", "zh-hans").get("/board/")
    assert chinese["Content-Language"] == "zh-hans"

    client = client_for("seller", "zh-hans")
    switched = client.post("/language/", {"language": "en", "next": "/board/"})
    assert switched["Location"] == "/board/"
    org["seller"].refresh_from_db()
    assert org["seller"].language == "en"
    # the choice follows the user to another browser that asks for Chinese
    assert client_for("seller", "zh-hans").get("/board/")["Content-Language"] == "en"
    assert AuditEvent.objects.filter(action="user.preferences").count() == 1


def test_language_switch_works_signed_out_with_a_cookie(db: Any) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/language/", {"language": "zh-hans", "next": "/login/"})
    assert response.cookies["django_language"].value == "zh-hans"
    assert client.get("/login/")["Content-Language"] == "zh-hans"


def test_preferences_save_and_refuse_unknown_values(org: dict[str, Any], client_for: Any) -> None:
    client = client_for("seller")
    assert (
        client.post("/preferences/", {"language": "", "time_zone": "Europe/Berlin"}).status_code
        == 302
    )
    org["seller"].refresh_from_db()
    assert (org["seller"].language, org["seller"].time_zone) == ("", "Europe/Berlin")
    refused = client.post("/preferences/", {"language": "fr", "time_zone": "Mars/Olympus"})
    assert refused.status_code == 400
    assert "Unknown language fr." in refused.content.decode()
    org["seller"].refresh_from_db()
    assert (org["seller"].language, org["seller"].time_zone) == ("", "Europe/Berlin")


def test_hidden_pages_are_404_in_the_users_language(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    response = client_for("sh_seller", "en").get(f"/opportunities/{opp.pk}/")
    assert response.status_code == 404
    assert "This page does not exist, or it belongs to deals you may not see." in (
        response.content.decode()
    )


def test_a_user_changes_their_password_and_other_sessions_end(org: dict[str, Any]) -> None:
    here, elsewhere = Client(HTTP_ACCEPT_LANGUAGE="en"), Client()
    for client in (here, elsewhere):
        client.post("/login/", {"username": "seller", "password": "loudou-test-pw-1"})
    assert "Change my password" in here.get("/preferences/").content.decode()
    events = AuditEvent.objects.filter(action="user.password_change")
    response = here.post(
        "/preferences/password/",
        {"current": "loudou-test-pw-1", "new": "Funnel-Qz71-new", "repeat": "Funnel-Qz71-new"},
    )
    assert response.status_code == 302 and response["Location"] == "/preferences/"
    org["seller"].refresh_from_db()
    assert org["seller"].check_password("Funnel-Qz71-new")
    assert here.get("/board/").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/board/").status_code == 302  # the other one is signed out
    [event] = events
    assert event.actor == org["seller"] and event.before is None and event.after is None


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"current": "wrong", "new": "Funnel-Qz71-new", "repeat": "Funnel-Qz71-new"},
            "current",
            "The current password is not right.",
        ),
        (
            {"current": "loudou-test-pw-1", "new": "Funnel-Qz71-new", "repeat": "Funnel-Qz71-neW"},
            "repeat",
            "The two new passwords differ.",
        ),
        (
            {"current": "loudou-test-pw-1", "new": "12345678", "repeat": "12345678"},
            "new",
            "This password is entirely numeric.",
        ),
        (
            {"current": "loudou-test-pw-1", "new": "short", "repeat": "short"},
            "new",
            "This password is too short.",
        ),
    ],
)
def test_a_refused_password_change_changes_nothing(
    org: dict[str, Any], form: dict[str, str], field: str, message: str
) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(org["seller"])
    response = client.post("/preferences/password/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    org["seller"].refresh_from_db()
    assert org["seller"].check_password("loudou-test-pw-1")
    assert not AuditEvent.objects.filter(action="user.password_change").exists()


def test_the_password_page_needs_a_sign_in(db: Any) -> None:
    response = Client().post("/preferences/password/", {"current": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_language_cookie_is_secure_where_the_session_cookie_is(
    org: dict[str, Any], settings: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = True
    response = Client().post("/language/", {"language": "en"}, secure=True)
    assert response.cookies["django_language"]["secure"] is True
    settings.SESSION_COOKIE_SECURE = False
    response = Client().post("/language/", {"language": "en"})
    assert response.cookies["django_language"]["secure"] == ""
