"""The anchored regression (stage rate as offset), the leave-one-out stage rate, the Brier
differences with deal-level bootstrap intervals, and who may train."""

import datetime as dt

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from loudou.core import clock
from loudou.core.errors import PermissionDenied
from loudou.learning.anchored import AnchoredLogistic, logit
from loudou.learning.evaluation import StageRates, brier_difference
from loudou.learning.features import History, days
from loudou.learning.models import WinModel
from loudou.learning.services import win_model_train
from loudou.pipeline.services.project import competitor_add
from tests.learning.test_learning import START, _company, _deal


def _data(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    offset = logit(rng.uniform(0.2, 0.8, n))
    feature = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(offset + 1.5 * feature)))).astype(float)
    return np.column_stack([offset, feature]), y


def test_no_strength_is_the_stage_rate_itself():
    x, y = _data()
    model = AnchoredLogistic(C=0.0).fit(x, y)
    assert model.coef_[0].tolist() == [0.0] and model.intercept_[0] == 0.0
    assert np.allclose(model.predict_proba(x)[:, 1], 1 / (1 + np.exp(-x[:, 0])))


def test_with_a_zero_anchor_it_is_scikit_learns_regression():
    # Anchor 0 everywhere: the same objective as LogisticRegression with the intercept penalised
    # like the weights, which scikit-learn's liblinear solver does (intercept_scaling 1).
    x, y = _data()
    x[:, 0] = 0.0
    ours = AnchoredLogistic(C=0.5).fit(x, y)
    z = (x[:, 1:] - ours.mean_) / ours.scale_
    theirs = LogisticRegression(C=0.5, solver="liblinear", tol=1e-10).fit(z, y)
    assert ours.coef_[0] == pytest.approx(theirs.coef_[0], abs=1e-3)
    assert ours.intercept_[0] == pytest.approx(theirs.intercept_[0], abs=1e-3)


def test_the_feature_that_drives_the_outcome_gets_its_weight():
    x, y = _data(n=4000)
    model = AnchoredLogistic(C=1.0).fit(x, y)
    # Standardised weight ≈ 1.5 × the feature's spread (≈ 1); the offset is taken as it is.
    assert 1.2 < model.coef_[0][0] < 1.8
    assert abs(model.intercept_[0]) < 0.15
    stored = model.stored()
    assert stored["coefficients"][0] == 1.0 and stored["mean"][0] == 0.0
    assert stored["scale"][0] == 1.0


def test_leave_one_out_rate_takes_the_deal_out_of_every_level():
    rates = StageRates.__new__(StageRates)
    rates.totals = {"s": (6, 10)}
    rates.by_branch = {("s", 1): (3, 4)}
    rates.by_owner = {("s", 9): (2, 2)}
    rates.m_branch = rates.m_owner = 2.0
    company = (6 + 1) / (10 + 2)
    branch = (3 + 2 * company) / (4 + 2)
    assert rates.rate("s", 1, 9) == pytest.approx((2 + 2 * branch) / (2 + 2))
    company = (5 + 1) / (9 + 2)
    branch = (2 + 2 * company) / (3 + 2)
    assert rates.rate("s", 1, 9, leave_out=True) == pytest.approx((1 + 2 * branch) / (1 + 2))


def test_brier_difference_resamples_deals_not_snapshots():
    y = np.array([1.0, 1.0, 0.0, 0.0])
    better = np.array([0.9, 0.9, 0.1, 0.1])
    worse = np.array([0.5, 0.5, 0.5, 0.5])
    same_deal = brier_difference(better, worse, y, np.array([1, 1, 2, 2]))
    assert same_deal["difference"] == pytest.approx(0.01 - 0.25)
    assert same_deal["deals"] == 2
    assert same_deal["better_share"] == 1.0
    lo, hi = same_deal["interval"]
    assert lo == pytest.approx(-0.24) and hi == pytest.approx(-0.24)
    # A coin flip against itself: no difference, the interval is a point at 0.
    flat = brier_difference(worse, worse, y, np.array([1, 2, 3, 4]))
    assert flat["interval"] == [0.0, 0.0] and flat["better_share"] == 0.0


def test_only_an_administrator_trains(org, account, playbook):
    _company(org, account, playbook)
    for name in ("seller", "manager", "executive"):
        with pytest.raises(PermissionDenied):
            win_model_train(playbook=playbook, actor=org[name])
    assert WinModel.objects.count() == 0
    model = win_model_train(playbook=playbook, actor=org["admin"])
    assert model.features[0] == "stage_rate"
    assert model.parameters["regularisation_C"] in (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    assert set(model.metrics["brier_differences"]) == {
        "logistic_vs_stage_defaults", "logistic_vs_stage_rates", "stage_rates_vs_stage_defaults"
    }  # fmt: skip


def test_the_model_put_to_use_is_refitted_on_every_closed_deal(org, account, playbook):
    deals = _company(org, account, playbook)
    model = win_model_train(playbook=playbook, actor=None)
    p = model.parameters
    closed = len(deals)  # every deal of the company is closed
    assert p["refit"]["deals"] == closed
    # The stage rates now count every closed deal; the evaluated ones only the fit part's.
    assert p["stage_rates"]["company"]["discover"][1] == closed
    assert p["evaluated"]["stage_rates"]["company"]["discover"][1] == model.training_deals < closed
    assert p["suggested_stage_probabilities"]["discover"]["reached"] == closed
    # Same features and strength, other numbers.
    assert len(p["coefficients"]) == len(p["evaluated"]["coefficients"]) == len(model.features)
    assert p["coefficients"] != p["evaluated"]["coefficients"]
    assert p["calibration"]["method"] == p["evaluated"]["calibration"]["method"]


def test_competitors_count_from_the_moment_they_were_named(org, account, playbook):
    created = START
    with clock.frozen_at(created):
        opp = _deal(org, account, playbook, 1, big=True, won=None, created=created, length=90)
    named = created + dt.timedelta(days=10)
    with clock.frozen_at(named):
        competitor_add(opportunity=opp, actor=org["seller"], name="甲骨文")
        competitor_add(opportunity=opp, actor=org["seller"], name="某咨询", kind="consultant")
    with clock.frozen_at(named + dt.timedelta(days=5)):
        competitor_add(opportunity=opp, actor=org["seller"], name="金蝶")
    for history in (History(playbook), History(playbook, only=opp.pk)):
        deal = history.deals[opp.pk]
        counts = [
            history.snapshot(deal, days(named + dt.timedelta(days=d))).values["competitors"]
            for d in (-1, 1, 6)
        ]
        # Consultants are not competitors; each vendor counts from the day it was named.
        assert counts == [0.0, 1.0, 2.0]
