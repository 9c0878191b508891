"""Personal API tokens: made and revoked through the services (and the CLI and the web page),
stored hashed, shown once, refused once revoked, stamped when used."""

import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from loudou.api.models import ApiToken
from loudou.api.services import token_authenticate, token_create, token_revoke
from loudou.core.errors import NotFound, ValidationFailed
from loudou.core.models import AuditEvent
from tests.api.conftest import ApiClient


def test_create_returns_the_secret_once_and_stores_only_its_hash(org: dict[str, Any]) -> None:
    token, secret = token_create(actor=org["seller"], name="  Excel sync  ")
    token.refresh_from_db()
    assert token.name == "Excel sync"
    assert secret.startswith("ldt_") and len(secret) > 40
    assert token.prefix == secret[:12]
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(v) for v in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert secret not in stored
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == org["seller"]
    assert event.after == {"name": "Excel sync", "prefix": token.prefix}
    assert secret not in str(event.after)


def test_a_token_needs_a_name(org: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as error:
        token_create(actor=org["seller"], name="   ")
    assert error.value.details == {"name": "required"}
    assert ApiToken.objects.count() == 0


def test_bearer_token_authenticates_and_stamps_last_used(org: dict[str, Any]) -> None:
    token, secret = token_create(actor=org["seller"], name="script")
    assert token.last_used_at is None
    response = ApiClient(Client(), secret).get("me")
    assert response.status_code == 200
    assert response.json()["username"] == "seller"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_401_even_with_a_session(org: dict[str, Any]) -> None:
    token, secret = token_create(actor=org["seller"], name="script")
    token_revoke(actor=org["seller"], token=token)
    client = Client()
    client.force_login(org["seller"])
    response = ApiClient(client, secret).get("me")
    assert response.status_code == 401
    body = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert body["code"] == "invalid_token"
    assert token_authenticate(secret) is None


def test_unknown_token_is_401(org: dict[str, Any]) -> None:
    response = ApiClient(Client(), "ldt_not-a-real-token").get("me")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_of_an_inactive_user_is_refused(org: dict[str, Any]) -> None:
    _token, secret = token_create(actor=org["seller"], name="script")
    type(org["seller"]).objects.filter(pk=org["seller"].pk).update(is_active=False)
    assert ApiClient(Client(), secret).get("me").status_code == 401


def test_revoke_own_token_only_admins_any(org: dict[str, Any]) -> None:
    token, _secret = token_create(actor=org["seller"], name="script")
    with pytest.raises(NotFound):
        token_revoke(actor=org["teammate"], token=token)
    with pytest.raises(NotFound):
        token_revoke(actor=org["manager"], token=token)
    token.refresh_from_db()
    assert token.revoked_at is None
    revoked = token_revoke(actor=org["admin"], token=token.pk)
    assert revoked.revoked_at is not None
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.actor == org["admin"]
    with pytest.raises(ValidationFailed):
        token_revoke(actor=org["admin"], token=token)
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


# --- the command line ---------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("token", *args, stdout=out)
    return out.getvalue()


def test_cli_create_list_revoke(org: dict[str, Any]) -> None:
    output = run("create", "--as", "seller", "Nightly export")
    secret = next(word for word in output.split() if word.startswith("ldt_"))
    token = ApiToken.objects.get()
    assert token.user == org["seller"] and token.name == "Nightly export"
    assert token_authenticate(secret) is not None
    listing = run("list", "--as", "seller", "--json")
    assert '"name": "Nightly export"' in listing
    assert secret not in listing
    assert token.prefix in listing
    run("revoke", "--as", "seller", str(token.pk))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_authenticate(secret) is None


def test_cli_needs_a_user_and_refuses_others_tokens(org: dict[str, Any]) -> None:
    token, _secret = token_create(actor=org["seller"], name="mine")
    with pytest.raises(CommandError):
        run("create", "Nameless owner")
    with pytest.raises(CommandError):
        run("revoke", "--as", "teammate", str(token.pk))
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "mine" not in run("list", "--as", "teammate")


# --- the web page -------------------------------------------------------------------------------


def signed_in(org: dict[str, Any], name: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(org[name])
    return client


def test_token_page_needs_sign_in(db: Any) -> None:
    response = Client().get("/preferences/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_page_creates_a_token_and_shows_the_secret_once(org: dict[str, Any]) -> None:
    client = signed_in(org, "seller")
    response = client.post("/preferences/tokens/", {"name": "Excel <script>alert(1)</script>"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = ApiToken.objects.get(user=org["seller"])
    secret = response.context["secret"]
    assert secret in html and token_authenticate(secret) is not None
    assert "<script>alert(1)</script>" not in html
    assert "Excel &lt;script&gt;alert(1)&lt;/script&gt;" in html
    again = client.get("/preferences/tokens/").content.decode()
    assert secret not in again
    assert token.prefix in again


def test_page_refuses_an_empty_name(org: dict[str, Any]) -> None:
    response = signed_in(org, "seller").post("/preferences/tokens/", {"name": " "})
    assert response.status_code == 400
    assert ApiToken.objects.count() == 0


def test_page_revokes_own_tokens_only(org: dict[str, Any]) -> None:
    mine, _s1 = token_create(actor=org["seller"], name="mine")
    theirs, _s2 = token_create(actor=org["sh_seller"], name="theirs")
    client = signed_in(org, "seller")
    assert "theirs" not in client.get("/preferences/tokens/").content.decode()
    refused = client.post(f"/preferences/tokens/{theirs.pk}/revoke/")
    assert refused.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    done = client.post(f"/preferences/tokens/{mine.pk}/revoke/")
    assert done.status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert client.get(f"/preferences/tokens/{mine.pk}/revoke/").status_code == 405


def test_preferences_link_to_the_token_page(org: dict[str, Any]) -> None:
    html = signed_in(org, "seller").get("/preferences/").content.decode()
    assert 'href="/preferences/tokens/"' in html


# --- the admin ----------------------------------------------------------------------------------


def test_admin_lists_tokens_read_only_and_revokes_through_the_service(
    org: dict[str, Any],
) -> None:
    token, secret = token_create(actor=org["seller"], name="script")
    client = signed_in(org, "admin")
    listing = client.get("/admin/api/apitoken/")
    assert listing.status_code == 200
    assert token.prefix in listing.content.decode()
    page = client.get(f"/admin/api/apitoken/{token.pk}/change/")
    assert page.status_code == 200
    assert secret not in page.content.decode() and token.key_hash not in page.content.decode()
    assert client.post(f"/admin/api/apitoken/{token.pk}/change/", {"name": "x"}).status_code == 403
    done = client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [str(token.pk)]},
    )
    assert done.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.name == "script"
    assert AuditEvent.objects.get(action="token.revoke").actor == org["admin"]
