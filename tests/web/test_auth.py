"""Signing in and out, the language switch and per-user language and time zone."""

from typing import Any

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
