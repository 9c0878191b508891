"""The learning endpoints: a playbook's win model, training one and accepting its suggested stage
probabilities (administrators only), one deal's probability explained (whoever may see the
deal); each as anonymous, as a seller, as an administrator; refusals change nothing."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from loudou.core.models import AuditEvent
from loudou.learning.models import WinModel
from loudou.learning.selectors import win_model_active, win_model_summary
from loudou.playbooks.models import Playbook, Stage
from tests.learning.test_learning import _company

PROBLEM = "application/problem+json; charset=utf-8"
NO_MODEL = "No win model is trained for playbook project-funnel: only stage defaults are offered."
SCORES = {"brier": 0.2, "log_loss": 0.6, "auc": 0.7, "reliability": []}


def stored_model(playbook: Any, **parameters: Any) -> WinModel:
    """A stored model that fell back to the stage defaults, with known numbers (training a real
    one takes seconds; the tests that need one train it)."""
    return WinModel.objects.create(
        playbook=playbook,
        trained_at=dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC),
        cutoff=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        training_deals=300,
        training_won=120,
        training_snapshots=900,
        evaluation_deals=100,
        evaluation_snapshots=250,
        features=["stage:discover", "amount"],
        parameters={
            "used": "stage_defaults",
            "fallback": {"brier": {"logistic": 0.25, "stage_rates": 0.24, "stage_defaults": 0.23}},
            "suggested_stage_probabilities": {
                "discover": {"reached": 300, "won": 120, "rate": 0.4007},
                "intent": {"reached": 200, "won": 110, "rate": 0.5495},
            },
            "horizon_days": 30.0,
            "calibration": {"method": "sigmoid"},
            **parameters,
        },
        metrics={name: SCORES for name in ("stage_defaults", "stage_rates", "logistic")},
        seconds=1.5,
        active=True,
        offered=False,
    )


def state() -> tuple[Any, ...]:
    """What the writes here may change: playbooks, stages, models, audit events."""
    return (
        list(Playbook.objects.values_list("pk", "version", "is_current")),
        list(Stage.objects.values_list("pk", "probability")),
        list(WinModel.objects.values_list("pk", "active")),
        AuditEvent.objects.count(),
    )


def assert_problem(response: Any, status: int, code: str, detail: str | None = None) -> Any:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    if detail is not None:
        assert body["detail"] == detail
    return body


def test_anonymous_callers_are_asked_to_sign_in(anonymous: Any, playbook: Any, walker: Any):
    deal = walker.create()
    stored_model(playbook)
    before = state()
    for method, path, body in [
        ("get", "win-models/project-funnel", None),
        ("post", "win-models/project-funnel/train", {}),
        (
            "post",
            "win-models/project-funnel/accept-probabilities",
            {"probabilities": {"intent": 30}},
        ),
        ("get", f"opportunities/{deal.pk}/win-probability", None),
    ]:
        response = anonymous.get(path) if method == "get" else anonymous.post(path, body)
        assert_problem(response, 401, "not_authenticated")
    assert state() == before


def test_the_model_summary_is_read_by_every_signed_in_user(api_for: Any, playbook: Any):
    seller = api_for("seller")
    assert_problem(seller.get("win-models/project-funnel"), 404, "not_found", NO_MODEL)
    assert_problem(seller.get("win-models/nothing"), 404, "not_found", "No such playbook.")
    model = stored_model(playbook)
    for who in ("seller", "admin"):
        response = api_for(who).get("win-models/project-funnel")
        assert response.status_code == 200
        assert response.json() == win_model_summary(model)
    body = response.json()
    assert (body["playbook"], body["offered"], body["used"]) == (
        "project-funnel",
        False,
        "stage_defaults",
    )
    assert body["suggested_stage_probabilities"]["intent"] == {
        "reached": 200,
        "won": 110,
        "rate": 0.5495,
    }
    assert body["training"] == {"deals": 300, "won": 120, "snapshots": 900}


def test_the_explanation_follows_the_visibility_rule(
    api_for: Any, playbook: Any, walker: Any, sh_deal: Any
):
    deal = walker.to(walker.create(name="京北财务共享"), "intent")
    seller = api_for("seller")
    path = f"opportunities/{deal.pk}/win-probability"
    assert_problem(seller.get(path), 404, "not_found", NO_MODEL)
    model = stored_model(playbook)
    answer = seller.get(path)
    assert answer.status_code == 200
    assert answer.json() == {
        "opportunity": deal.pk,
        "name": "京北财务共享",
        "stage": "intent",
        "status": "open",
        "probability": 0.25,
        "source": "stage_defaults",
        "offered": False,
        "reason": "The learned per-deal model is not offered: on the later deals its Brier score "
        "(0.2500) does not beat the learned stage rates (0.2400) and the stage defaults "
        "(0.2300). Using the stage default probabilities.",
        "stage_default": 0.25,
        "model_trained_at": model.trained_at.isoformat(),
        "factors": [],
    }
    assert api_for("admin").get(path).json() == answer.json()
    # Another branch's deal: 404, and nothing of it in the answer.
    for who, pk in (("seller", sh_deal.pk), ("sh_seller", deal.pk)):
        response = api_for(who).get(f"opportunities/{pk}/win-probability")
        body = assert_problem(response, 404, "not_found", "No such opportunity.")
        assert "上汽" not in response.content.decode() and "京北" not in str(body)
    assert_problem(seller.get("opportunities/99999999/win-probability"), 404, "not_found")


@pytest.mark.parametrize("who", ["seller", "manager", "executive"])
def test_only_an_administrator_trains_or_accepts(api_for: Any, playbook: Any, who: str):
    stored_model(playbook)
    client = api_for(who)
    before = state()
    assert_problem(
        client.post("win-models/project-funnel/train", {}),
        403,
        "permission_denied",
        "Only an administrator may train a win model.",
    )
    assert_problem(
        client.post(
            "win-models/project-funnel/accept-probabilities", {"probabilities": {"intent": 30}}
        ),
        403,
        "permission_denied",
        "Only an administrator may accept stage probabilities into the playbook.",
    )
    assert state() == before


def test_training_on_too_little_history_is_refused_with_the_counts(
    api_for: Any, org: Any, account: Any, playbook: Any
):
    _company(org, account, playbook, n=60)
    admin = api_for("admin")
    before = state()
    body = assert_problem(admin.post("win-models/project-funnel/train"), 422,
                          "validation_failed")  # fmt: skip
    assert "42 deals closed before the cutoff" in body["detail"]
    assert body["counts"]["closed"] == 42
    assert set(body["counts"]) >= {"closed", "won", "lost", "evaluation"}
    assert state() == before
    assert_problem(admin.post("win-models/nothing/train"), 404, "not_found")
    assert_problem(
        admin.post("win-models/project-funnel/train", {"cutoff": "soon"}),
        422,
        "validation_failed",
    )
    assert state() == before


def test_admin_accepts_probabilities_as_a_new_version(api_for: Any, playbook: Any, org: Any):
    admin = api_for("admin")
    path = "win-models/project-funnel/accept-probabilities"
    answer = admin.post(path, {"probabilities": {"discover": 12, "intent": 30}})
    assert answer.status_code == 200
    assert answer.json() == {
        "key": "project-funnel",
        "version": 2,
        "created": True,
        "stages": [
            {
                "key": "target",
                "kind": "account",
                "name": "Target the customer group",
                "probability": 0,
            },
            {
                "key": "discover",
                "kind": "open",
                "name": "Discover potential opportunities",
                "probability": 12,
            },
            {"key": "intent", "kind": "open", "name": "Confirm customer intent", "probability": 30},
            {
                "key": "project",
                "kind": "open",
                "name": "Guide the customer to set up a project",
                "probability": 40,
            },
            {
                "key": "recognition",
                "kind": "open",
                "name": "Win the customer's recognition",
                "probability": 60,
            },
            {
                "key": "negotiation",
                "kind": "open",
                "name": "Business negotiation",
                "probability": 80,
            },
            {"key": "closed", "kind": "won", "name": "Close the sale", "probability": 100},
        ],
    }
    event = AuditEvent.objects.get(action="playbook.probabilities_accept")
    assert (event.actor, event.before, event.after) == (
        org["admin"],
        {"discover": 10, "intent": 25},
        {"discover": 12, "intent": 30, "version": 2},
    )
    # The same values again: no new version.
    before = state()
    again = admin.post(path, {"probabilities": {"intent": 30}})
    assert (again.status_code, again.json()["version"], again.json()["created"]) == (200, 2, False)
    assert state() == before


@pytest.mark.parametrize(
    ("probabilities", "errors"),
    [
        (
            {"closed": 90},
            [
                {
                    "field": "probabilities.closed",
                    "message": "not an open stage of this playbook (open stages: discover, "
                    "intent, project, recognition, negotiation)",
                }
            ],
        ),
        (
            {"intent": 45},
            [{"field": "probabilities.project", "message": "lower than the stage before it"}],
        ),
    ],
)
def test_accepting_what_breaks_a_playbook_rule_is_refused(
    api_for: Any, playbook: Any, probabilities: dict[str, int], errors: list[dict[str, str]]
):
    admin = api_for("admin")
    before = state()
    answer = admin.post(
        "win-models/project-funnel/accept-probabilities", {"probabilities": probabilities}
    )
    assert assert_problem(answer, 422, "validation_failed")["errors"] == errors
    assert state() == before


@pytest.mark.parametrize(
    "body",
    [
        {"probabilities": {"intent": "30"}},
        {"probabilities": {"intent": True}},
        {"probabilities": {"intent": 101}},
        {"probabilities": {"intent": 30.5}},
        {"probabilities": {}},
        {},
        {"probabilities": {"intent": 30}, "extra": 1},
    ],
)
def test_bodies_that_are_not_whole_percents_are_refused(api_for: Any, playbook: Any, body: Any):
    admin = api_for("admin")
    before = state()
    answer = admin.post("win-models/project-funnel/accept-probabilities", body)
    assert assert_problem(answer, 422, "validation_failed")["errors"]
    assert state() == before


def _rounded(rate: float) -> int:
    return int((Decimal(str(rate)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_admin_trains_then_accepts_the_suggested_probabilities(
    api_for: Any, org: Any, account: Any, playbook: Any
):
    _company(org, account, playbook)
    admin = api_for("admin")
    trained = admin.post("win-models/project-funnel/train", {"cutoff": "2025-01-15"})
    assert trained.status_code == 201, trained.content
    model = win_model_active(playbook)
    # The end of the day in the installation's zone (Asia/Shanghai).
    assert model is not None and model.cutoff == dt.datetime(
        2025, 1, 15, 15, 59, 59, 999999, dt.UTC
    )
    assert trained.json() == win_model_summary(model)
    assert api_for("seller").get("win-models/project-funnel").json() == trained.json()
    suggested = trained.json()["suggested_stage_probabilities"]
    open_stages = ["discover", "intent", "project", "recognition", "negotiation"]
    wanted = {key: _rounded(suggested[key]["rate"]) for key in open_stages}
    answer = admin.post("win-models/project-funnel/accept-probabilities", {"probabilities": wanted})
    assert answer.status_code == 200
    got = {s["key"]: s["probability"] for s in answer.json()["stages"]}
    assert got == {"target": 0, **wanted, "closed": 100}
    # The model still answers for the playbook's key, under the new version.
    assert admin.get("win-models/project-funnel").json() == trained.json()
