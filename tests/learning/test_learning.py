"""Win models: snapshots use only the past, the split never fits on the future, a learned model
beats the stage defaults where the outcome depends on a feature, refusal changes nothing, the
explanation follows the visibility rule, and the CLI's JSON shapes."""

import datetime as dt
import json
import random
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.core import clock
from loudou.core.errors import NotFound, ValidationFailed
from loudou.interop.services import opportunity_import
from loudou.learning import training
from loudou.learning.evaluation import StageRates
from loudou.learning.features import History, days
from loudou.learning.models import WinModel
from loudou.learning.selectors import win_explain
from loudou.learning.services import win_model_train
from loudou.pipeline.models import Status
from loudou.pipeline.services.activities import activity_complete, activity_plan
from loudou.pipeline.services.evidence import evidence_record

START = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)


def _deal(org: dict[str, Any], account: Any, playbook: Any, i: int, *, big: bool, won: bool | None,
          created: dt.datetime, length: int, owner: str = "seller") -> Any:  # fmt: skip
    events = [(created, "discover", Status.OPEN)]
    if won is True:
        events.append((created + dt.timedelta(days=length), "closed", Status.WON))
    elif won is False:
        events.append((created + dt.timedelta(days=length), "discover", Status.LOST))
    return opportunity_import(
        actor=None,
        account=account,
        name=f"deal {i}",
        amount="900000" if big else "90000",
        currency="CNY",
        owner=org[owner],
        playbook=playbook,
        events=events,
        close_date=(created + dt.timedelta(days=length)).date(),
        source="test",
    )


def _company(org: dict[str, Any], account: Any, playbook: Any, n: int = 420) -> list[Any]:
    """n deals created a day apart, each closed 20 days later; big deals win 80 % of the time,
    small ones 15 %, from a fixed seed: the outcome depends on the amount."""
    rng = random.Random(7)
    deals = []
    for i in range(n):
        big = rng.random() < 0.5
        won = rng.random() < (0.8 if big else 0.15)
        deals.append(
            _deal(
                org,
                account,
                playbook,
                i,
                big=big,
                won=won,
                created=START + dt.timedelta(days=i),
                length=20,
            )
        )
    return deals


def test_snapshot_uses_nothing_recorded_after_the_moment(org, account, playbook):
    created = START
    with clock.frozen_at(created):
        opp = _deal(org, account, playbook, 1, big=True, won=None, created=created, length=90)
    t = created + dt.timedelta(days=10)
    with clock.frozen_at(t + dt.timedelta(days=1)):
        evidence_record(opportunity=opp, criterion="need_found", actor=org["seller"], note="later")
        act = activity_plan(opportunity=opp, actor=org["seller"], kind="visit", subject="s",
                            due_on=t.date())  # fmt: skip
        activity_complete(activity=act, actor=org["seller"])
    history = History(playbook)
    deal = history.deals[opp.pk]
    before = history.snapshot(deal, days(t))
    after = history.snapshot(deal, days(t + dt.timedelta(days=2)))
    assert before.values["criteria_satisfied"] == 0.0
    assert before.values["no_activity"] == 1.0
    assert before.shown["days_since_activity"] == "—"
    assert before.shown["age"] == "10"
    assert after.values["criteria_satisfied"] == 1.0
    assert after.values["no_activity"] == 0.0
    assert after.shown["days_since_activity"] == "1"
    # Before it was created, there is no snapshot at all.
    assert history.snapshot(deal, days(created - dt.timedelta(days=1))) is None


def test_split_never_fits_on_deals_closed_after_the_cutoff(org, account, playbook):
    _company(org, account, playbook)
    history = History(playbook)
    result = training.train(history)
    cutoff = days(result["cutoff"])
    closed = {d.pk: d.closed for d in history.closed_deals()}
    assert result["_train_snapshots"]
    assert all(closed[s.opportunity_id] < cutoff for s in result["_train_snapshots"])
    assert all(s.at < cutoff for s in result["_train_snapshots"])
    assert all(closed[s.opportunity_id] >= cutoff for s in result["_eval_snapshots"])
    assert all(s.at >= cutoff for s in result["_eval_snapshots"])
    # Reading one deal's facts only (explain) gives the same deal facts as reading them all;
    # its owner's and branch's rates are those of now (every deal closed so far), which equal
    # the whole history's only for a snapshot taken now (test_forecast_learned checks that).
    assert result["_eval_snapshots"]
    as_of_now = {"owner_win_rate", "branch_win_rate"}
    for snap in result["_eval_snapshots"][:: max(1, len(result["_eval_snapshots"]) // 5)]:
        one = History(playbook, only=snap.opportunity_id)
        alone = one.snapshot(one.deals[snap.opportunity_id], snap.at)
        full = history.snapshot(history.deals[snap.opportunity_id], snap.at)
        assert {k: v for k, v in alone.values.items() if k not in as_of_now} == {
            k: v for k, v in full.values.items() if k not in as_of_now
        }
    # 70 % of the 420 closed deals (294) closed before the cutoff.
    assert result["training_deals"] == 294
    # numpy with the stored numbers gives what scikit-learn gives.
    x = training.design_for(result["parameters"], result["features"], result["_eval_snapshots"])
    assert abs(training.predict(result["parameters"], x) - result["_sklearn_eval"]).max() < 1e-9


def test_learned_model_beats_stage_defaults_and_is_calibrated(org, account, playbook):
    _company(org, account, playbook)
    model = win_model_train(playbook=playbook, actor=None)
    m = model.metrics
    assert m["logistic"]["brier"] < m["stage_defaults"]["brier"]
    assert m["logistic"]["brier"] < m["naive_bayes"]["brier"] + 0.02
    assert m["logistic"]["auc"] > 0.75
    assert "amount" in model.features
    assert model.offered is True
    assert model.parameters["used"] == "logistic"
    for row in m["logistic"]["reliability"]:
        if row["count"] >= 30:
            assert abs(row["predicted"] - row["observed"]) < 0.15, row
    assert WinModel.objects.filter(active=True).count() == 1
    again = win_model_train(playbook=playbook, actor=None)
    assert list(WinModel.objects.filter(active=True)) == [again]
    assert WinModel.objects.count() == 2


def test_refusal_below_the_minimum_changes_nothing(org, account, playbook):
    _company(org, account, playbook, n=60)
    with pytest.raises(ValidationFailed) as caught:
        win_model_train(playbook=playbook, actor=None)
    assert "42 deals closed before the cutoff" in caught.value.message
    assert f"Needed: {training.MIN_CLOSED} closed before" in caught.value.message
    assert WinModel.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("model", "train", stdout=StringIO())
    assert WinModel.objects.count() == 0


def test_explain_follows_the_visibility_rule(org, account, playbook):
    _company(org, account, playbook)
    with clock.frozen_at(START + dt.timedelta(days=440)):
        opp = _deal(org, account, playbook, 999, big=True, won=None,
                    created=START + dt.timedelta(days=430), length=60)  # fmt: skip
    with pytest.raises(NotFound):  # no model yet
        win_explain(org["seller"], opp.pk)
    win_model_train(playbook=playbook, actor=None)
    with clock.frozen_at(START + dt.timedelta(days=440)):
        seen = win_explain(org["seller"], opp.pk)
        assert 0.0 < seen["probability"] < 1.0
        assert seen["stage_default"] == 0.1
        # The anchor first, as the steps of the stage rate (company → branch → owner), whose
        # contributions add up to the rate's log-odds; then at most five of the deal's features.
        steps = seen["factors"][:3]
        assert [f["feature"] for f in steps] == [
            "stage_rate:company", "stage_rate:branch", "stage_rate:owner"
        ]  # fmt: skip
        model = WinModel.objects.get(active=True)
        rate = StageRates.from_json(model.parameters["stage_rates"]).rate(
            "discover", opp.branch_id, opp.owner_id
        )
        assert sum(f["contribution"] for f in steps) == pytest.approx(
            np.log(rate / (1 - rate)), abs=0.002
        )
        assert 1 <= len(seen["factors"]) - 3 <= 5
        assert any(f["feature"] == "amount" and f["value"] == "900,000" for f in seen["factors"])
        assert seen == win_explain(org["manager"], opp.pk)
        for outsider in (org["sh_seller"], org["tj_seller"]):
            with pytest.raises(NotFound) as caught:
                win_explain(outsider, opp.pk)
            assert caught.value.message == "No such opportunity."

        class Anonymous:
            is_authenticated = False
            is_active = False

        with pytest.raises(NotFound):
            win_explain(Anonymous(), opp.pk)
        out = StringIO()
        with pytest.raises(CommandError, match="No such opportunity"):
            call_command("model", "explain", str(opp.pk), "--as", "sh_seller", stdout=out)
        call_command("model", "explain", str(opp.pk), "--as", "seller", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"opportunity", "name", "stage", "status", "stage_default",
                         "model_trained_at", "probability", "factors", "source", "offered",
                         "reason"}  # fmt: skip
    assert (data["source"], data["offered"], data["reason"]) == ("logistic", True, None)
    assert set(data["factors"][0]) == {"feature", "label", "value", "contribution", "text"}


def test_cli_train_and_evaluate_json(org, account, playbook):
    _company(org, account, playbook)
    out = StringIO()
    with pytest.raises(CommandError, match="No win model"):
        call_command("model", "evaluate", stdout=out)
    call_command("model", "train", "--json", stdout=out)
    trained = json.loads(out.getvalue())
    out = StringIO()
    call_command("model", "evaluate", "--json", stdout=out)
    evaluated = json.loads(out.getvalue())
    assert trained == evaluated
    assert set(evaluated["models"]) == {"stage_defaults", "stage_rates", "naive_bayes",
                                        "logistic", "logistic_uncalibrated"}  # fmt: skip
    for scores in evaluated["models"].values():
        assert set(scores) == {"brier", "log_loss", "auc", "reliability"}
        assert len(scores["reliability"]) == 10
        assert (
            sum(r["count"] for r in scores["reliability"]) == evaluated["evaluation"]["snapshots"]
        )
    assert evaluated["training"]["deals"] == 294
    out = StringIO()
    call_command("model", "evaluate", "--lang", "en", stdout=out)
    assert "per-deal model (anchored on the stage rates)" in out.getvalue()


def _extra(org, account, playbook, i, *, created_day, length, won):
    return _deal(org, account, playbook, i, big=False, won=won,
                 created=START + dt.timedelta(days=created_day), length=length)  # fmt: skip


def test_horizon_rule_censors_and_never_fits_past_cutoff_minus_h(org, account, playbook):
    _company(org, account, playbook)
    still_open = _extra(org, account, playbook, 1001, created_day=100, length=30, won=None)
    closes_late = _extra(org, account, playbook, 1002, created_day=100, length=400, won=False)
    fast = _extra(org, account, playbook, 1003, created_day=300, length=5, won=False)
    history = History(playbook)
    # Deal i is created on day i and closes on day i + 20: T = day 313.5, H = 20 days.
    cutoff = days(START + dt.timedelta(days=313.5))
    result = training.train(history, cutoff=cutoff, horizon=20.0)
    last = cutoff - 20.0
    snaps = result["_train_snapshots"]
    ids = {s.opportunity_id for s in snaps}
    assert all(s.at <= last for s in snaps)
    # Deals 0..293 (created by day 293.5, closed by day 313) are fitted; the fast deal closed
    # before T but was open only after T − H: counted in the fit part, never snapshotted.
    assert result["training_deals"] == 295
    assert result["training_snapshot_deals"] == 294
    assert fast.pk not in ids
    # Open at T − H with the outcome unknown by T: censored, left out, never labelled lost.
    assert result["censored_deals"] == 2
    assert still_open.pk not in ids and closes_late.pk not in ids
    won = {d.pk: d.status == Status.WON for d in history.closed_deals()}
    assert all(s.won is won[s.opportunity_id] for s in snaps)
    # The regression only saw deals closed by the inner moment + H; the window is later.
    inner = days(result["calibration_cut"])
    assert all(s.at <= inner for s in result["_core_snapshots"])
    assert all(history.deals[s.opportunity_id].closed < inner + 20.0
               for s in result["_core_snapshots"])  # fmt: skip
    assert all(s.at > inner for s in result["_calibration_snapshots"])
    # Horizon 0 is the first increment's selection: every snapshot before T of deals closed
    # before T, the fast deal included.
    before = training.train(history, cutoff=cutoff, horizon=0.0)
    assert before["training_snapshot_deals"] == 295
    assert fast.pk in {s.opportunity_id for s in before["_train_snapshots"]}
    # ... and the deals created on days 294..313, open at T, are censored too.
    assert before["censored_deals"] == 22


def _separable(n, rng, shift=0.0):
    x = rng.normal(size=(n, 3))
    p = 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] + shift)))
    return x, (rng.random(n) < p).astype(float)


def test_calibration_that_reverses_the_ranking_is_not_kept(monkeypatch):
    rng = np.random.default_rng(3)
    x, y = _separable(2000, rng)
    model = training._fit(x, y)
    x_win, y_win = _separable(800, rng)
    at = np.arange(800, dtype=float)
    # Reversed outcomes in the window: a sigmoid with a > 0 would lower the Brier score by
    # reversing the model's ranking. It is never kept.
    monkeypatch.setattr(training, "CALIBRATION_METHODS", ("sigmoid",))
    kept, fitted = training.choose_calibration(model, x_win, 1.0 - y_win, at)
    assert (kept["method"], fitted) == ("none", None)
    assert kept["trial"]["sigmoid"]["keeps_ranking"] is False
    assert kept["trial"]["sigmoid"]["brier"] < kept["trial"]["none"]["brier"]
    # It reverses the ranking (AUC → 1 − AUC): a calibration map must keep the order.
    assert abs(kept["trial"]["sigmoid"]["auc"] + kept["trial"]["none"]["auc"] - 1.0) < 1e-4
    # A base-rate shift the sigmoid corrects without reordering anything: kept, a < 0.
    x_win, y_win = _separable(800, rng, shift=1.5)
    kept, fitted = training.choose_calibration(model, x_win, y_win, at)
    assert kept["method"] == "sigmoid" and kept["a"] < 0
    assert kept["trial"]["sigmoid"]["keeps_ranking"] is True
    assert kept["trial"]["sigmoid"]["brier"] < kept["trial"]["none"]["brier"]
    z = model.decision_function(x_win)
    assert abs(training.calibrate(kept, z) - fitted.predict_proba(x_win)[:, 1]).max() < 1e-9


def test_choose_offer_falls_back_to_the_better_baseline():
    def metrics(logistic, rates, defaults):
        return {"logistic": {"brier": logistic}, "stage_rates": {"brier": rates},
                "stage_defaults": {"brier": defaults}}  # fmt: skip

    assert training.choose_offer(metrics(0.13, 0.14, 0.15)) == {
        "offered": True, "used": "logistic", "fallback": None}  # fmt: skip
    assert training.choose_offer(metrics(0.14, 0.13, 0.15)) == {
        "offered": False, "used": "stage_rates",
        "fallback": {"reason": "loses_on_later_deals",
                     "brier": {"logistic": 0.14, "stage_rates": 0.13, "stage_defaults": 0.15}}}  # fmt: skip
    assert training.choose_offer(metrics(0.14, 0.15, 0.13))["used"] == "stage_defaults"
    # A tie is not a win.
    assert training.choose_offer(metrics(0.13, 0.13, 0.15))["offered"] is False


def test_model_that_loses_is_not_offered_and_explain_uses_stage_rates(org, account, playbook):
    """Outcomes follow the owner alone (seller wins 70 %, teammate 20 %), and the
    regression is denied every input but the stage: it cannot beat the stage rates, which
    shrink toward each owner's record."""
    rng = random.Random(11)
    for i in range(420):
        owner = "seller" if rng.random() < 0.5 else "teammate"
        won = rng.random() < (0.7 if owner == "seller" else 0.2)
        _deal(org, account, playbook, i, big=False, won=won,
              created=START + dt.timedelta(days=i), length=20, owner=owner)  # fmt: skip
    with clock.frozen_at(START + dt.timedelta(days=440)):
        opp = _deal(org, account, playbook, 999, big=True, won=None,
                    created=START + dt.timedelta(days=430), length=60)  # fmt: skip
    history = History(playbook)
    names = training.feature_names(history.snapshots(history.closed_deals()), history.open_stages)
    exclude = tuple(n for n in names if not n.startswith("stage:"))
    model = win_model_train(playbook=playbook, actor=None, exclude=exclude)
    brier = {k: model.metrics[k]["brier"] for k in ("logistic", "stage_rates", "stage_defaults")}
    assert brier["stage_rates"] < brier["logistic"]
    assert model.offered is False
    assert model.parameters["used"] == "stage_rates"
    assert model.parameters["fallback"] == {"reason": "loses_on_later_deals", "brier": brier}
    rates = model.parameters["stage_rates"]
    won, total = rates["company"]["discover"]
    w_b, n_b = rates["branch"][f"discover|{opp.branch_id}"]
    w_o, n_o = rates["owner"][f"discover|{org['seller'].pk}"]
    p = (won + 1.0) / (total + 2.0)
    p = (w_b + rates["m_branch"] * p) / (n_b + rates["m_branch"])
    p = (w_o + rates["m_owner"] * p) / (n_o + rates["m_owner"])
    with clock.frozen_at(START + dt.timedelta(days=440)):
        seen = win_explain(org["seller"], opp.pk)
        out = StringIO()
        call_command("model", "explain", str(opp.pk), "--as", "seller", "--lang", "en",
                     stdout=out)  # fmt: skip
    assert seen["source"] == "stage_rates"
    assert seen["offered"] is False
    assert seen["probability"] == round(p, 4)
    assert [f["feature"] for f in seen["factors"]] == [
        "stage_rate:company", "stage_rate:branch", "stage_rate:owner"]  # fmt: skip
    assert seen["factors"][0]["value"] == f"{won} of {total} won"
    assert seen["reason"] == (
        "The learned per-deal model is not offered: on the later deals its Brier score "
        f"({brier['logistic']:.4f}) does not beat the learned stage rates "
        f"({brier['stage_rates']:.4f}) and the stage defaults ({brier['stage_defaults']:.4f}). "
        "Using the learned stage rates."
    )
    text = " ".join(out.getvalue().split())
    assert "The learned per-deal model is not offered" in text
    assert f"win probability {p * 100:.0f} % from stage rates learned" in text
    out = StringIO()
    call_command("model", "evaluate", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["offered"], summary["used"]) == (False, "stage_rates")
