"""What production operation relies on: /healthz, request ids and structured logs, the error
pages, the security headers, and `loudou check --deploy` with production settings."""

import json
import logging
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import path

from loudou.core import health
from loudou.core.requestlog import JsonFormatter, RequestIdFilter
from loudou.core.security import CONTENT_SECURITY_POLICY


@pytest.fixture
def client_for(org: dict[str, Any]) -> Any:
    def make(name: str) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(org[name])
        return client

    return make


def test_healthz_answers_ok_without_signing_in(db: Any) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "migrations")} == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
    }
    assert response["Cache-Control"].startswith("max-age=0")
    assert Client().post("/healthz").status_code == 405


def test_healthz_says_when_migrations_are_missing(db: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(health, "_migrated", False)

    class OnePending:
        def __init__(self, _connection: Any) -> None:
            self.loader = type("L", (), {"graph": type("G", (), {"leaf_nodes": lambda s: []})()})()

        def migration_plan(self, _targets: Any) -> list[Any]:
            return [("org", "0099_future")]

    monkeypatch.setattr(health, "MigrationExecutor", OnePending)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["migrations"] == "1 not applied"
    assert response.json()["status"] == "unavailable"


def test_healthz_says_when_the_database_is_unreachable(db: Any, monkeypatch: Any) -> None:
    from django.db import OperationalError

    class Unreachable:
        def cursor(self) -> Any:
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", Unreachable())
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable: OperationalError"


def test_every_response_carries_a_request_id_and_is_logged(client_for: Any, caplog: Any) -> None:
    client = client_for("seller")
    with caplog.at_level(logging.INFO, logger="loudou.request"):
        response = client.get("/board/")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    [record] = [r for r in caplog.records if r.name == "loudou.request"]
    assert (record.method, record.path, record.status) == ("GET", "/board/", 200)
    assert isinstance(record.user_id, int)
    assert record.duration_ms > 0


def test_a_sane_request_id_from_the_proxy_is_kept_and_a_bad_one_replaced(db: Any) -> None:
    kept = Client().get("/healthz", HTTP_X_REQUEST_ID="edge-4f2a9c1e-77")
    assert kept["X-Request-ID"] == "edge-4f2a9c1e-77"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID='x"><script>')
    assert replaced["X-Request-ID"] != 'x"><script>' and len(replaced["X-Request-ID"]) == 32


def test_json_log_lines_carry_the_request_id_and_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "loudou.request", "levelno": 20, "levelname": "INFO", "msg": "GET %s 200"}
    )
    record.args = ("/board/",)
    record.status = 200
    record.request_id = "abc123abc123"
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "GET /board/ 200"
    assert document["request_id"] == "abc123abc123"
    assert document["status"] == 200
    assert document["level"] == "INFO" and document["time"].endswith("Z")


def _boom(request: Any) -> Any:
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", _boom), path("api/boom/", _boom)]
handler404 = "loudou.web.views.errors.not_found"
handler500 = "loudou.web.views.errors.server_error"


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_shows_our_page_with_the_request_id(db: Any) -> None:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert f"<code>{response['X-Request-ID']}</code>" in html
    api = client.get("/api/boom/")
    assert api.status_code == 500
    assert api["Content-Type"].startswith("application/problem+json")
    assert api.json()["code"] == "internal_error"
    assert api.json()["request_id"] == api["X-Request-ID"]


def test_an_unknown_address_is_our_404_page_or_an_api_problem(client_for: Any) -> None:
    page = client_for("seller").get("/no-such-page/")
    assert page.status_code == 404 and "This page does not exist" in page.content.decode()
    api = Client().get("/api/no-such-thing")
    assert api.status_code == 404
    assert api["Content-Type"].startswith("application/problem+json")
    assert api.json()["code"] == "not_found"


def test_pages_send_the_security_headers(client_for: Any) -> None:
    response = client_for("seller").get("/board/")
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_no_template_carries_an_inline_script_the_policy_would_block() -> None:
    import re
    from pathlib import Path

    import loudou

    root = Path(loudou.__file__).parent
    offenders = []
    for template in root.glob("*/templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        if re.search(r"\son[a-z]+=\"", text) or re.search(
            r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text
        ):
            offenders.append(str(template.relative_to(root)))
    assert offenders == []


def test_the_deploy_check_reports_nothing_with_production_settings(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOUDOU_", "DATABASE_URL"))}
    env.update(
        LOUDOU_ENV_FILE="/nonexistent/.env",
        LOUDOU_VAR_DIR=str(tmp_path),
        LOUDOU_SECRET_KEY=secrets.token_urlsafe(50),
        LOUDOU_ALLOWED_HOSTS="crm.example.com",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "loudou", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues (0 silenced)." in proc.stdout


def test_sessions_expire_after_a_working_day(settings: Any) -> None:
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY is True


@pytest.mark.parametrize("value", ["-1", "twelve"])
def test_a_bad_session_length_is_named(tmp_path: Any, value: str) -> None:
    from tests.test_settings import load_settings

    code, _out, err = load_settings(
        LOUDOU_VAR_DIR=str(tmp_path), LOUDOU_DEBUG="1", LOUDOU_SESSION_HOURS=value
    )
    assert code != 0
    assert "LOUDOU_SESSION_HOURS must be a whole number" in err


def _read_only(request: Any) -> Any:
    import sqlite3

    from django.db import OperationalError

    cause = sqlite3.OperationalError("attempt to write a readonly database")
    cause.sqlite_errorname = "SQLITE_READONLY"  # type: ignore[attr-defined]
    raise OperationalError("attempt to write a readonly database") from cause


@override_settings(ROOT_URLCONF="tests.core.read_only_urls", DEBUG=False)
def test_a_read_only_database_is_a_503_that_says_so(db: Any) -> None:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    page = client.post("/write/")
    assert page.status_code == 503
    html = page.content.decode()
    assert "The database is read-only, so nothing was saved." in html
    assert page["X-Request-ID"] in html and "Traceback" not in html
    api = client.post("/api/v1/write")
    assert api.status_code == 503
    assert api.json()["code"] == "service_unavailable"
    assert api.json()["detail"].startswith("The database is read-only")
