"""CSRF on every form: every state-changing web request and every session-authenticated API write
is refused without a valid CSRF token, and changes nothing.

The cases come from the permission matrix (`matrix.py`: one valid request per web route and API
operation, and which roles it succeeds for), run in the matrix's world and judged with its
snapshot of every loudou table; a new endpoint in the table is covered here without an edit.
Django's test client skips CSRF checks unless asked: every client here enforces them.

Web (every POST of `matrix.WEB`, plus the settings' sign-in and one settings form), as a role the
write succeeds for, from a browser that has loaded a page (so it holds the CSRF cookie):
  no token                          403 "CSRF token missing", nothing changed
  another browser's token, in the form field and in the X-CSRFToken header
                                    403 "CSRF token ... incorrect", nothing changed
  the page's own token, in the form field (a plain form) and in the header (htmx)
                                    the write works (the table's outcome; the database, or for
                                    sign-in/out and the language switch the browser, changed)
API (every write of `matrix.API`), from the signed-in browser session:
  no X-CSRFToken header, another browser's token
                                    403 problem+json `csrf_failed`, nothing changed
  the page's token in X-CSRFToken   the write works
  a personal API token (Bearer), no CSRF token at all
                                    the write works
Cookies: with production settings (LOUDOU_DEBUG off) the session and CSRF cookies a real sign-in
sets are Secure and SameSite=Lax, the session cookie HttpOnly; a cross-site Origin or Referer is
refused even with the right token.
"""

import dataclasses
import functools
import json
import logging
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from loudou.api.services import token_create
from loudou.pipeline.models import Competitor
from tests.trust import matrix as m
from tests.trust import matrix_requests as pm
from tests.trust import matrix_world

world = matrix_world.world  # the matrix's world (a fixture, reused as is)

PASSWORD = "loudou-test-pw-1"  # every user of the `org` fixture

# Writes outside the table: the settings (the Django admin) are one GET entry there, but their
# sign-in is a login form too (login CSRF) and their forms are writes.
ADMIN_WRITES: dict[str, list[m.Case]] = {
    "admin:login": [
        m.post(
            m.PUBLIC,
            {"username": "admin", "password": PASSWORD, "next": "/admin/"},
            writes=False,
            fresh_clients=True,
        )
    ],
    "admin:pipeline_competitor_add": [
        m.post(
            m.expect(m.LOGIN, admin=m.OK),
            lambda w: {
                "name": "CSRF 测试厂商",
                "kind": Competitor._meta.get_field("kind").choices[0][0],
            },
        )
    ],
}

# The role a write is tried as: the first (in this order) for whom the table says it succeeds.
PREFERENCE = (
    "anonymous",
    "owner",
    "manager",
    "admin",
    "teammate",
    "executive",
    "other_seller",
    "other_manager",
)


def acting_role(case: m.Case) -> str:
    for role in PREFERENCE:
        if case.expect[role] == m.OK:
            return role
    for role in PREFERENCE[1:]:
        if case.expect[role] == m.LOGIN:
            return role  # a write whose success signs you out (sign-out)
    # A case of a rule that refuses everyone (a gate without its evidence): with the right token
    # the service's refusal comes back, not the CSRF check's.
    for outcome in (m.REFUSED, m.FORBIDDEN):
        for role in PREFERENCE[1:]:
            if case.expect[role] == outcome:
                return role
    raise AssertionError(f"no role for which {case} succeeds: the CSRF test cannot try it")


# --- browsers -----------------------------------------------------------------------------------

FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HTMX_TOKEN = re.compile(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""")


@dataclasses.dataclass
class Browser:
    """A test client that enforces CSRF and has loaded a page: its cookie and the page's tokens
    (the hidden form field, and the one htmx sends in the X-CSRFToken header)."""

    client: Client
    form_token: str
    header_token: str


def browser(org: dict[str, Any], role: str) -> Browser:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    if role != "anonymous":
        client.force_login(org[m.USERNAMES[role]])
    page = client.get(reverse("web:login" if role == "anonymous" else "web:preferences"))
    assert page.status_code == 200, (role, page.status_code)
    html = page.content.decode()
    assert client.cookies[settings.CSRF_COOKIE_NAME].value
    form, header = FORM_TOKEN.search(html), HTMX_TOKEN.search(html)
    assert form and header, "the page carries no CSRF token"
    return Browser(client, form.group(1), header.group(1))


def signed_in_as(client: Client) -> str | None:
    """The user id of the browser's session (read without creating one, unlike
    `Client.session`)."""
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if not cookie or not cookie.value:
        return None
    return import_module(settings.SESSION_ENGINE).SessionStore(cookie.value).get("_auth_user_id")


def client_state(client: Client) -> tuple[Any, ...]:
    """What a request may change in the browser: who is signed in, the language cookie."""
    language = client.cookies.get(settings.LANGUAGE_COOKIE_NAME)
    return (signed_in_as(client), language.value if language else None)


def media_files() -> list[tuple[str, int, int]]:
    """Uploaded files (imports live on disk, not in the database)."""
    root = Path(settings.MEDIA_ROOT)
    if not root.exists():
        return []
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    )


# --- one attempt --------------------------------------------------------------------------------


@dataclasses.dataclass
class Attempt:
    response: Any
    tables: list[str]  # loudou tables changed
    files: bool  # uploaded files changed
    browser: bool  # who is signed in, or the language cookie, changed
    reasons: list[str]  # Django's CSRF refusals logged

    @property
    def changed(self) -> list[str]:
        return [
            *self.tables,
            *(["uploaded files"] if self.files else []),
            *(["the browser (signed in / language)"] if self.browser else []),
        ]


def attempt(
    client: Client,
    case: m.Case,
    url_for: Any,
    w: dict[str, Any],
    caplog: Any,
    *,
    is_api: bool,
    form_token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Attempt:
    """Send the case in a savepoint rolled back afterwards (as the matrix does) and see what it
    changed: every loudou table, the uploaded files, the browser's sign-in and language."""
    caplog.clear()
    with transaction.atomic():
        ids = {**w, **(case.prepare(w) if case.prepare else {})}
        url = url_for(ids)
        query = pm._value(case.query, ids)
        if query:
            url += "?" + urlencode(query)
        body = pm._value(case.body, ids)
        if form_token is not None:
            body = {**(body or {}), "csrfmiddlewaretoken": form_token}
        extra = headers or {}
        before = (pm.fingerprint(), media_files(), client_state(client))
        if case.method == "delete":
            response = client.delete(url, **extra)
        elif is_api and not case.multipart:
            response = getattr(client, case.method)(
                url, data=json.dumps(body or {}), content_type="application/json", **extra
            )
        else:
            response = client.post(url, body or {}, **extra)
        after = (pm.fingerprint(), media_files(), client_state(client))
        transaction.set_rollback(True)
    reasons = [
        match.group(1)
        for record in caplog.records
        if record.name == "django.security.csrf"
        and (match := re.match(r"Forbidden \((.*)\): ", record.getMessage()))
    ]
    return Attempt(
        response,
        pm.changed_tables(before[0], after[0]),
        before[1] != after[1],
        before[2] != after[2],
        reasons,
    )


def snippet(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pm.text_of(response)))[:200]


class Figures:
    """Writes tried and requests sent per kind of attempt; failures reported together."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.sent: dict[str, int] = {}
        self.failures: list[str] = []
        self.refusals: set[str] = set()  # cases every role is refused (the right token too)

    def count(self, kind: str, n: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + n

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def check(self, what: str) -> None:
        sent = ", ".join(f"{kind} {n}" for kind, n in self.sent.items())
        print(
            f"\n{what}: {len(self.writes)} writes ({len(self.refusals)} refused to every role);"
            f" requests: {sent}; {len(self.failures)} failed"
        )
        assert not self.failures, f"{len(self.failures)} failures:\n" + "\n".join(self.failures)


def refused_by_csrf(
    figures: Figures, title: str, got: Attempt, reason: str, *, is_api: bool
) -> None:
    """A CSRF refusal: 403 from the CSRF check (with `reason` logged), nothing changed."""
    response = got.response
    if response.status_code != 403:
        figures.fail(f"{title}: expected 403, got {response.status_code}: {snippet(response)}")
    elif is_api:
        problem = response.json()
        if response["Content-Type"] != "application/problem+json; charset=utf-8" or (
            problem.get("code") != "csrf_failed"
        ):
            figures.fail(f"{title}: a 403 but not csrf_failed: {problem}")
    elif "CSRF verification failed" not in pm.text_of(response):
        figures.fail(f"{title}: a 403 but not the CSRF refusal: {snippet(response)}")
    if not any(re.fullmatch(reason, r) for r in got.reasons):
        figures.fail(f"{title}: expected the CSRF reason /{reason}/, logged {got.reasons}")
    if got.changed:
        figures.fail(f"{title}: refused but changed {', '.join(got.changed)}")


def worked(
    figures: Figures, title: str, got: Attempt, case: m.Case, role: str, *, is_api: bool
) -> None:
    """With the right token the request passes the CSRF check and gets the table's answer: the
    write done, having changed what it should (for sign-out: signed out), or, for a case that
    every role is refused, the service's refusal, having changed nothing."""
    response = got.response
    wanted, outcome = case.expect[role], pm.outcome_of(response, is_api=is_api)
    if outcome != wanted:
        figures.fail(
            f"{title}: expected {wanted}, got {outcome} ({response.status_code}): "
            f"{snippet(response)}"
        )
    if got.reasons:
        figures.fail(f"{title}: a CSRF refusal was logged: {got.reasons}")
    if wanted in (m.OK, m.LOGIN):
        if case.writes and not got.tables:
            figures.fail(f"{title}: answered {response.status_code} but changed no table")
        if case.fresh_clients and not (got.tables or got.browser):
            figures.fail(f"{title}: answered {response.status_code} but changed nothing")
    else:
        figures.refusals.add(title.split(", ")[0])
        if got.changed:
            figures.fail(f"{title}: refused ({outcome}) but changed {', '.join(got.changed)}")


MISSING = r"CSRF token missing\."
INCORRECT_FORM = r"CSRF token from POST incorrect\."
INCORRECT_HEADER = r"CSRF token from the 'X-Csrftoken' HTTP header incorrect\."


@pytest.fixture
def csrf_log(caplog: Any) -> Any:
    caplog.set_level(logging.WARNING, logger="django.security.csrf")
    return caplog


# --- the web ------------------------------------------------------------------------------------


def web_writes() -> list[tuple[str, m.Case]]:
    table = {**m.WEB, **ADMIN_WRITES}
    return [(key, case) for key, cases in table.items() for case in cases if case.method != "get"]


def test_every_web_write_needs_the_csrf_token(world: dict[str, Any], csrf_log: Any) -> None:
    org, figures = world["org"], Figures()
    writes = web_writes()
    assert len(writes) >= 40
    # A real token, of another browser (the attacker's own): valid, but not for this cookie.
    foreign = browser(org, "anonymous").form_token
    for key, case in writes:
        role = acting_role(case)
        title = f"{case.title(key)} as {role}"
        figures.writes.append(title)
        url_for = pm.web_url(key, case)
        victim = browser(org, role)

        send = functools.partial(
            attempt, case=case, url_for=url_for, w=world, caplog=csrf_log, is_api=False
        )

        refused_by_csrf(figures, f"{title}, no token", send(victim.client), MISSING, is_api=False)
        figures.count("no token")
        got = send(victim.client, form_token=foreign)
        refused_by_csrf(figures, f"{title}, wrong form token", got, INCORRECT_FORM, is_api=False)
        got = send(victim.client, headers={"HTTP_X_CSRFTOKEN": foreign})
        refused_by_csrf(figures, f"{title}, wrong header", got, INCORRECT_HEADER, is_api=False)
        figures.count("wrong token (form field, header)", 2)
        got = send(victim.client, form_token=victim.form_token)
        worked(figures, f"{title}, the form's token", got, case, role, is_api=False)
        htmx = browser(org, role)  # the first success may have signed the browser out
        got = send(htmx.client, headers={"HTTP_X_CSRFTOKEN": htmx.header_token})
        worked(figures, f"{title}, htmx's X-CSRFToken", got, case, role, is_api=False)
        figures.count("right token (form field, header)", 2)
    figures.check("web")
    assert len(figures.writes) == len(writes)


# --- the API ------------------------------------------------------------------------------------


def api_writes() -> list[tuple[str, m.Case]]:
    found = []
    for key, cases in m.API.items():
        method = key.split(" ", 1)[0].lower()
        if method == "get":
            continue
        found.extend((key, dataclasses.replace(case, method=method)) for case in cases)
    return found


def test_every_session_api_write_needs_the_csrf_token(world: dict[str, Any], csrf_log: Any) -> None:
    org, figures = world["org"], Figures()
    writes = api_writes()
    assert len(writes) >= 30
    assert {key.split(" ", 1)[0] for key, _case in writes} == {"POST", "PATCH", "PUT", "DELETE"}
    foreign = browser(org, "anonymous").header_token
    bearer = {}
    for role, username in m.USERNAMES.items():
        _token, secret = token_create(actor=org[username], name="csrf")
        bearer[role] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for key, case in writes:
        role = acting_role(case)
        title = f"{case.title(key)} as {role}"
        figures.writes.append(title)
        url_for = pm.api_url(key, case)
        session = browser(org, role)  # the browser session, as the web pages' htmx calls

        send = functools.partial(
            attempt, case=case, url_for=url_for, w=world, caplog=csrf_log, is_api=True
        )

        got = send(session.client)
        refused_by_csrf(figures, f"{title}, session, no token", got, MISSING, is_api=True)
        figures.count("no token")
        got = send(session.client, headers={"HTTP_X_CSRFTOKEN": foreign})
        refused_by_csrf(
            figures, f"{title}, session, wrong token", got, INCORRECT_HEADER, is_api=True
        )
        figures.count("wrong token")
        got = send(session.client, headers={"HTTP_X_CSRFTOKEN": session.header_token})
        worked(figures, f"{title}, session with its token", got, case, role, is_api=True)
        figures.count("right token")
        # A personal API token is not sent by a browser on its own: no CSRF token needed.
        script = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
        got = send(script, headers=bearer[role])
        worked(figures, f"{title}, Bearer token", got, case, role, is_api=True)
        figures.count("Bearer, no CSRF token")
    figures.check("API")
    assert len(figures.writes) == len(writes)


# --- cookies in production ----------------------------------------------------------------------

COOKIE_SETTINGS = (
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "CSRF_USE_SESSIONS",
    "SECURE_SSL_REDIRECT",
)


def production_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    """The cookie settings as production loads them (a fresh interpreter, LOUDOU_DEBUG unset, no
    .env file), like tests/test_settings.py::load_settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOUDOU_", "DATABASE_URL"))}
    clean.update(
        LOUDOU_ENV_FILE="/nonexistent/.env",
        LOUDOU_VAR_DIR=str(tmp_path),
        LOUDOU_SECRET_KEY="s" * 50,
        LOUDOU_ALLOWED_HOSTS="crm.example.com",
        **env,
    )
    code = (
        "import django, json, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'loudou.settings'); django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {COOKIE_SETTINGS!r}}}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_httponly_and_lax(
    org: dict[str, Any], tmp_path: Path, csrf_log: Any
) -> None:
    prod = production_settings(tmp_path)
    assert prod == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": False,  # htmx reads the token from the page, not the cookie
        "CSRF_COOKIE_SAMESITE": "Lax",
        "CSRF_USE_SESSIONS": False,
        "SECURE_SSL_REDIRECT": True,
    }
    login = reverse("web:login")
    with override_settings(**prod):
        client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
        # Plain http is sent to https before any form is shown or taken.
        plain = client.post(login, {"username": "seller", "password": PASSWORD})
        assert plain.status_code == 301 and plain["Location"] == f"https://testserver{login}"
        assert settings.SESSION_COOKIE_NAME not in plain.cookies

        page = client.get(login, secure=True)
        csrf = page.cookies[settings.CSRF_COOKIE_NAME]
        assert (csrf["secure"], csrf["samesite"], csrf["httponly"]) == (True, "Lax", "")
        assert "; Secure" in csrf.output() and "SameSite=Lax" in csrf.output()
        token = FORM_TOKEN.search(page.content.decode()).group(1)
        credentials = {"username": "seller", "password": PASSWORD, "csrfmiddlewaretoken": token}

        # Over https Django also checks where the form was posted from: another site's page is
        # refused even with the right token (Origin first, then Referer).
        for headers, reason in (
            ({"HTTP_ORIGIN": "https://evil.example"}, r"Origin checking failed - .*"),
            ({"HTTP_REFERER": "https://evil.example/x"}, r"Referer checking failed - .*"),
            ({"HTTP_REFERER": f"http://testserver{login}"}, r"Referer checking failed - .*"),
            ({}, r"Referer checking failed - no Referer\."),
        ):
            csrf_log.clear()
            refused = client.post(login, credentials, secure=True, **headers)
            assert refused.status_code == 403, headers
            assert settings.SESSION_COOKIE_NAME not in refused.cookies
            logged = [r.getMessage() for r in csrf_log.records]
            assert any(re.match(rf"Forbidden \({reason}\): ", msg) for msg in logged), logged
        assert signed_in_as(client) is None

        signed_in = client.post(
            login, credentials, secure=True, HTTP_REFERER=f"https://testserver{login}"
        )
        assert signed_in.status_code == 302, signed_in.content
        session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
        assert (session["secure"], session["httponly"], session["samesite"]) == (True, True, "Lax")
        header = session.output()
        assert "; Secure" in header and "; HttpOnly" in header and "SameSite=Lax" in header
        # Signing in rotates the CSRF token: the new cookie is Secure and Lax too.
        rotated = signed_in.cookies[settings.CSRF_COOKIE_NAME]
        assert rotated.value != csrf.value and (rotated["secure"], rotated["samesite"]) == (
            True,
            "Lax",
        )
        assert signed_in_as(client) == str(org["seller"].pk)


def test_development_settings_drop_secure_for_plain_http(tmp_path: Path) -> None:
    """The other side: LOUDOU_DEBUG=1 (and LOUDOU_SECURE_COOKIES=0 in production, for a test on
    loopback) serve cookies over plain http; the flags above come from production alone."""
    debug = production_settings(tmp_path, LOUDOU_DEBUG="1")
    assert (debug["SESSION_COOKIE_SECURE"], debug["CSRF_COOKIE_SECURE"]) == (False, False)
    assert (debug["SESSION_COOKIE_HTTPONLY"], debug["SESSION_COOKIE_SAMESITE"]) == (True, "Lax")
    loopback = production_settings(tmp_path, LOUDOU_SECURE_COOKIES="0")
    assert loopback["DEBUG"] is False
    assert (loopback["SESSION_COOKIE_SECURE"], loopback["CSRF_COOKIE_SECURE"]) == (False, False)
    assert loopback["SECURE_SSL_REDIRECT"] is False
