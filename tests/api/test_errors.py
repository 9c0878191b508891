"""Every error is application/problem+json (RFC 9457) with a stable code, a detail in the
caller's language and, where they apply, per-field errors, the missing criteria of a refused
gate or the current version of a stale write."""

from typing import Any

from django.test import Client

from loudou.pipeline.models import Opportunity
from tests.api.conftest import ApiClient


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json; charset=utf-8"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:loudou:problem:{code}"
    assert body["title"] and body["detail"]
    return body


def snapshot(opp: Opportunity) -> tuple[Any, ...]:
    opp.refresh_from_db()
    return (opp.stage.key, opp.status, opp.version, opp.history.count(), opp.evidence.count())


def test_anonymous_is_401_with_a_bearer_challenge(anonymous: ApiClient) -> None:
    body = problem(anonymous.get("opportunities"), 401, "not_authenticated")
    assert "Bearer" in body["detail"]
    assert body["instance"] == "/api/v1/opportunities"


def test_anonymous_write_is_401_not_a_csrf_error(anonymous: ApiClient) -> None:
    problem(anonymous.post("accounts", {"name": "X"}), 401, "not_authenticated")


def test_unknown_routes_under_api_are_problem_404(api_for: Any) -> None:
    seller = api_for("seller")
    problem(seller.get("/api/v1/no-such-thing"), 404, "not_found")
    problem(seller.get("/api/v2/opportunities"), 404, "not_found")
    problem(seller.post("/api/nothing", {}), 404, "not_found")


def test_wrong_method_is_problem_405_with_allow(api_for: Any) -> None:
    response = api_for("seller").delete("accounts")
    problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST"


def test_schema_violation_is_422_per_field(api_for: Any, account: Any) -> None:
    body = problem(
        api_for("seller").post(
            "opportunities",
            {"account_id": account.pk, "amount": "-5", "close_date": "someday", "extra": 1},
        ),
        422,
        "validation_failed",
    )
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert {
        ("body", "name"),
        ("body", "amount"),
        ("body", "close_date"),
        ("body", "extra"),
    } <= fields


def test_bad_query_and_path_parameters_are_422(api_for: Any) -> None:
    seller = api_for("seller")
    body = problem(seller.get("opportunities", {"status": "maybe"}), 422, "validation_failed")
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "status"
    problem(seller.get("opportunities/0"), 422, "validation_failed")
    problem(seller.get("opportunities/99999999999999999999999"), 422, "validation_failed")


def test_body_that_is_not_json_is_400(api_for: Any) -> None:
    problem(api_for("seller").post("accounts", "{not json"), 400, "bad_request")


def test_service_refusal_is_422_with_field_errors(api_for: Any) -> None:
    body = problem(
        api_for("seller").post("accounts", {"name": "华北电力", "credit_code": "123"}),
        422,
        "validation_failed",
    )
    assert body["errors"] == [{"field": "credit_code", "message": "length"}]
    assert "18 characters" in body["detail"]


def test_gate_refusal_lists_missing_criteria_and_changes_nothing(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    body = problem(
        api_for("seller").post(
            f"opportunities/{opp.pk}/advance",
            {"to_stage": "intent", "expected_version": opp.version},
        ),
        409,
        "gate_refused",
    )
    assert [(m["stage"], m["key"]) for m in body["missing"]] == [
        ("intent", "interested"),
        ("intent", "accepts_packaged"),
        ("intent", "preliminary_requirements"),
        ("intent", "contacting_vendors"),
    ]
    assert all(m["holds"] is False and m["text"] and m["reason"] for m in body["missing"])
    assert "4 criteria do not hold" in body["detail"]
    assert snapshot(opp) == before


def test_stale_version_is_409_with_the_current_version(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    ok = seller.patch(f"opportunities/{opp.pk}", {"expected_version": 1, "amount": "1200000"})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    before = snapshot(opp)
    body = problem(
        seller.patch(f"opportunities/{opp.pk}", {"expected_version": 1, "amount": "5"}),
        409,
        "conflict",
    )
    assert body["current_version"] == 2
    assert snapshot(opp) == before
    opp.refresh_from_db()
    assert str(opp.amount) == "1200000.00"


def test_permission_denied_is_403(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    problem(
        api_for("executive").post(
            f"opportunities/{opp.pk}/regress", {"to_stage": "discover", "reason": "x"}
        ),
        403,
        "permission_denied",
    )
    assert snapshot(opp) == before


def test_detail_follows_accept_language(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    body = (
        api_for("seller", "zh-hans")
        .post(f"opportunities/{opp.pk}/advance", {"to_stage": "intent"})
        .json()
    )
    assert body["code"] == "gate_refused"
    assert "客户" in body["missing"][0]["text"]


def test_without_accept_language_the_users_language_applies(
    org: dict[str, Any], walker: Any
) -> None:
    from loudou.api.services import token_create
    from loudou.org.services import user_set_preferences

    user_set_preferences(actor=org["seller"], user=org["seller"], language="zh-hans")
    _token, secret = token_create(actor=org["seller"], name="zh")
    opp = walker.create()
    client = Client()
    response = client.post(
        f"/api/v1/opportunities/{opp.pk}/advance",
        data='{"to_stage": "intent"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response["Content-Language"] == "zh-hans"
    assert "客户" in response.json()["missing"][0]["text"]
    english = client.post(
        f"/api/v1/opportunities/{opp.pk}/advance",
        data='{"to_stage": "intent"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert english["Content-Language"] == "en"
    assert "cannot enter" in english.json()["detail"]


def test_session_writes_need_the_csrf_token(org: dict[str, Any], walker: Any) -> None:
    opp = walker.create()
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(org["seller"])
    assert client.get("/api/v1/me").status_code == 200
    before = snapshot(opp)
    url = f"/api/v1/opportunities/{opp.pk}/evidence"
    body = {"criterion": "interested", "note": "Asked for a demo"}
    refused = client.post(url, body, content_type="application/json")
    problem(refused, 403, "csrf_failed")
    assert snapshot(opp) == before
    client.get("/preferences/")  # a page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    done = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert done.status_code == 201


def test_a_bug_is_a_problem_500_without_internals(
    api_for: Any, playbook: Any, monkeypatch: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("loudou.api.routers.reference.localized", broken)
    body = problem(api_for("seller").get("roles"), 500, "internal_error")
    assert "secret internals" not in str(body)
