"""Fit a win model on the past and score it, beside the alternatives, on the later past.

The time-aware split (never fit on the future):
- cutoff T (default: the moment by which 70 % of the closed deals had closed);
- fit part: the deals closed before T, snapshotted at any moment of their open life (all before
  T). Within it, a second cut (the moment by which 80 % of them had closed) splits off the later
  ones to calibrate on: the regression is fitted on the deals closed before that moment, the
  calibration map on snapshots taken after it of the deals closed between it and T;
- evaluation part: the deals closed at or after T, snapshotted only at moments t ≥ T (T itself if
  open then, stage entries, every 30 days), each snapshot with what was known at t. The model
  was fitted on deals closed before T ≤ t, so it knew nothing of them or of anything later.

The regression is scikit-learn's (standardised features, L2, `CalibratedClassifierCV` with the
sigmoid method on the frozen fitted model); what is stored is its numbers, and `predict` applies
them with numpy alone.
"""

import time
from typing import Any

import numpy as np

from loudou.learning import evaluation as ev
from loudou.learning.features import (
    NUMERIC,
    History,
    Snapshot,
    days,
    feature_names,
    from_days,
    matrix,
    outcomes,
)

#: The fewest closed deals in the fit part for a model to be trained, and of each outcome. About
#: 30 inputs, L2-regularised: 40 of the rarer outcome is ~1.3 per input, the least at which the
#: held-out Brier score was stable in our runs; fewer, and the stage defaults are kept.
MIN_CLOSED = 200
MIN_EACH = 40
#: The fewest evaluation deals (both outcomes present) for the comparison to mean anything.
MIN_EVALUATION = 20
#: The default cutoff: the moment by which this share of the closed deals had closed.
CUTOFF_SHARE = 0.7
CALIBRATION_SHARE = 0.8
#: A numeric feature that alone separates won from lost this well on the fit part (AUC ≥ this or
#: ≤ 1 − this) is taken for a leak (a value recorded with hindsight) and left out.
LEAK_AUC = 0.95
C = 1.0


class NotEnoughHistory(Exception):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__(str(counts))
        self.counts = counts


def default_cutoff(closed_times: list[float]) -> float:
    index = int(np.ceil(CUTOFF_SHARE * len(closed_times))) - 1
    return closed_times[max(index, 0)] + 1e-6


def predict(parameters: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for rows of features, from the stored numbers alone."""
    z = raw_logit(parameters, x)
    a, b = parameters["calibration"]["a"], parameters["calibration"]["b"]
    return 1.0 / (1.0 + np.exp(a * z + b))


def raw_logit(parameters: dict[str, Any], x: np.ndarray) -> np.ndarray:
    mean = np.array(parameters["mean"])
    scale = np.array(parameters["scale"])
    coef = np.array(parameters["coefficients"])
    return ((x - mean) / scale) @ coef + parameters["intercept"]


def _split(history: History, cutoff: float | None) -> tuple[float, list[Any], list[Any]]:
    closed = history.closed_deals()
    if cutoff is None:
        cutoff = default_cutoff([d.closed for d in closed]) if closed else 0.0
    fit = [d for d in closed if d.closed < cutoff]
    later = [d for d in closed if d.closed >= cutoff]
    return cutoff, fit, later


def counts_for(history: History, cutoff: float | None = None) -> dict[str, Any]:
    cutoff, fit, later = _split(history, cutoff)
    won = sum(d.status == "won" for d in fit)
    later_won = sum(d.status == "won" for d in later)
    return {
        "cutoff": cutoff,
        "closed": len(fit),
        "won": won,
        "lost": len(fit) - won,
        "evaluation": len(later),
        "evaluation_won": later_won,
        "evaluation_lost": len(later) - later_won,
    }


def _leaks(x: np.ndarray, y: np.ndarray, names: list[str]) -> dict[str, float]:
    found = {}
    for j, name in enumerate(names):
        if name not in NUMERIC or np.ptp(x[:, j]) == 0:
            continue
        area = ev.auc(x[:, j], y)
        if area is not None and max(area, 1 - area) >= LEAK_AUC:
            found[name] = round(area, 4)
    return found


def train(history: History, *, cutoff: float | None = None, exclude: tuple[str, ...] = ()) -> dict:
    """Fit, calibrate and evaluate; return everything a `WinModel` stores. Raises
    NotEnoughHistory when the fit or evaluation part is too small."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    counts = counts_for(history, cutoff)
    cutoff = counts["cutoff"]
    if (
        counts["closed"] < MIN_CLOSED
        or min(counts["won"], counts["lost"]) < MIN_EACH
        or counts["evaluation"] < MIN_EVALUATION
        or not counts["evaluation_won"]
        or not counts["evaluation_lost"]
    ):
        raise NotEnoughHistory(counts)
    _cutoff, fit_deals, later = _split(history, cutoff)
    calibration_cut = [d.closed for d in fit_deals][
        max(int(np.ceil(CALIBRATION_SHARE * len(fit_deals))) - 1, 0)
    ] + 1e-6
    core = [d for d in fit_deals if d.closed < calibration_cut]
    calibrating = [d for d in fit_deals if d.closed >= calibration_cut]
    core_snaps = history.snapshots(core)
    calibration_snaps = history.snapshots(calibrating, start=calibration_cut)
    train_snaps = history.snapshots(fit_deals)
    eval_snaps = history.snapshots(later, start=cutoff)

    names = [n for n in feature_names(train_snaps, history.open_stages) if n not in exclude]
    x_core, y_core = matrix(core_snaps, names), outcomes(core_snaps)
    leaks = _leaks(matrix(train_snaps, names), outcomes(train_snaps), names)
    names = [n for n in names if n not in leaks]
    x_core = matrix(core_snaps, names)
    x_cal, y_cal = matrix(calibration_snaps, names), outcomes(calibration_snaps)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    model.fit(x_core, y_core)
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid")
    calibrated.fit(x_cal, y_cal)
    scaler, regression = model[0], model[1]
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    parameters = {
        "coefficients": regression.coef_[0].tolist(),
        "intercept": float(regression.intercept_[0]),
        "mean": scaler.mean_.tolist(),
        "scale": scale.tolist(),
        "calibration": {"method": "sigmoid", "a": float(calibrator.a_), "b": float(calibrator.b_)},
        "regularisation_C": C,
        "dropped_as_leaks": leaks,
        "excluded": list(exclude),
        "stage_default": history.stage_default,
    }
    x_eval, y_eval = matrix(eval_snaps, names), outcomes(eval_snaps)
    learned = predict(parameters, x_eval)
    stage_rates = ev.StageRates(history, fit_deals)
    naive = ev.NaiveBayes(history, fit_deals)
    metrics = {
        "stage_defaults": ev.scores(ev.stage_defaults(history, eval_snaps), y_eval),
        "stage_rates": ev.scores(stage_rates.predict(eval_snaps), y_eval),
        "naive_bayes": ev.scores(naive.predict(eval_snaps), y_eval),
        "logistic": ev.scores(learned, y_eval),
    }
    # The uncalibrated regression, to show what calibration did.
    metrics["logistic_uncalibrated"] = ev.scores(model.predict_proba(x_eval)[:, 1], y_eval)
    parameters["suggested_stage_probabilities"] = stage_rates.suggested()
    parameters["shrinkage"] = {"branch": stage_rates.m_branch, "person": stage_rates.m_owner}
    eval_deals = {s.opportunity_id for s in eval_snaps}
    return {
        "cutoff": from_days(cutoff),
        "calibration_cut": from_days(calibration_cut),
        "training_deals": len(fit_deals),
        "training_won": counts["won"],
        "training_snapshots": len(train_snaps),
        "core_snapshots": len(core_snaps),
        "calibration_snapshots": len(calibration_snaps),
        "evaluation_deals": len(eval_deals),
        "evaluation_won": int(sum(1 for d in later if d.pk in eval_deals and d.status == "won")),
        "evaluation_snapshots": len(eval_snaps),
        "features": names,
        "parameters": parameters,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
        # For tests: the sklearn model's own probabilities on the evaluation snapshots.
        "_sklearn_eval": calibrated.predict_proba(x_eval)[:, 1],
        "_eval_snapshots": eval_snaps,
        "_train_snapshots": train_snaps,
    }


def snapshot_now(history: History, opportunity_id: int, at: Any) -> Snapshot | None:
    deal = history.deals.get(opportunity_id)
    return None if deal is None else history.snapshot(deal, days(at))
