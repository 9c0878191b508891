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

The regression is anchored on the learned stage rates (`anchored.AnchoredLogistic`: the deal's
stage rate as an offset, standardised features, L2 whose strength is chosen on the calibration
window, the rates themselves among the candidates), then calibrated when that helps
(`CalibratedClassifierCV` on the frozen fitted model); what is stored is its numbers, and
`predict` applies them with numpy alone.
"""

import time
from typing import Any

import numpy as np
from scipy.special import expit

from loudou.learning import evaluation as ev
from loudou.learning.anchored import ANCHOR, C_GRID, AnchoredLogistic
from loudou.learning.features import (
    NUMERIC,
    Deal,
    History,
    Snapshot,
    days,
    feature_names,
    from_days,
    matrix,
    outcomes,
)
from loudou.pipeline.models import Status

#: The fewest closed deals in the fit part for a model to be trained, and of each outcome. About
#: 30 inputs, L2-regularised: 40 of the rarer outcome is ~1.3 per input, the least at which the
#: held-out Brier score was stable in our runs; fewer, and the stage defaults are kept.
MIN_CLOSED = 200
MIN_EACH = 40
#: The fewest evaluation deals (both outcomes present) for the comparison to mean anything.
MIN_EVALUATION = 20
#: The default cutoff: the moment by which this share of the closed deals had closed.
CUTOFF_SHARE = 0.7
#: The fit snapshots taken before this quantile of their moments fit the regression; the later
#: ones are the calibration window.
CALIBRATION_SHARE = 0.75
#: H, the horizon: this quantile of the time from a fit snapshot to its deal's close.
HORIZON_QUANTILE = 0.8
#: The calibration maps tried (beside none) and the AUC loss tolerated for the ties an isotonic
#: step line makes (a sigmoid that reverses the ranking is never kept, whatever the Brier).
CALIBRATION_METHODS = ("sigmoid", "isotonic")
AUC_TOLERANCE = 0.005
#: A numeric feature that alone separates won from lost this well on the fit part (AUC ≥ this or
#: ≤ 1 − this) is taken for a leak (a value recorded with hindsight) and left out.
LEAK_AUC = 0.95


class NotEnoughHistory(Exception):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__(str(counts))
        self.counts = counts


def default_cutoff(closed_times: list[float]) -> float:
    index = int(np.ceil(CUTOFF_SHARE * len(closed_times))) - 1
    return closed_times[max(index, 0)] + 1e-6


def design_for(
    parameters: dict[str, Any], features: list[str], snapshots: list[Snapshot]
) -> np.ndarray:
    """The rows a stored model applies to: with an anchored model (first feature `ANCHOR`),
    the stage rates stored with it then the other features; a model of the first increments
    has no anchor."""
    if features and features[0] == ANCHOR:
        rates = ev.StageRates.from_json(parameters["stage_rates"])
        return Design(rates, {})(snapshots, features[1:])
    return matrix(snapshots, features)


def predict(parameters: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for rows of features, from the stored numbers alone."""
    return calibrate(parameters["calibration"], raw_logit(parameters, x))


def calibrate(calibration: dict[str, Any], z: np.ndarray) -> np.ndarray:
    """The stored calibration map applied to raw log-odds: none (the logistic function),
    sigmoid (Platt: 1 / (1 + exp(a·z + b))) or isotonic (a non-decreasing step line through the
    stored points, clipped at its ends: what scikit-learn's IsotonicRegression does)."""
    method = calibration.get("method", "sigmoid")
    if method == "none":
        return expit(z)
    if method == "isotonic":
        return np.interp(z, np.array(calibration["x"]), np.array(calibration["y"]))
    return expit(-(calibration["a"] * z + calibration["b"]))


def raw_logit(parameters: dict[str, Any], x: np.ndarray) -> np.ndarray:
    mean = np.array(parameters["mean"])
    scale = np.array(parameters["scale"])
    coef = np.array(parameters["coefficients"])
    return ((x - mean) / scale) @ coef + parameters["intercept"]


def _closed_at(deal: Deal) -> float:
    """When a deal of `History.closed_deals()` closed."""
    assert deal.closed is not None  # closed_deals() keeps only the deals that closed
    return deal.closed


def _split(history: History, cutoff: float | None) -> tuple[float, list[Any], list[Any]]:
    closed = history.closed_deals()
    if cutoff is None:
        cutoff = default_cutoff([_closed_at(d) for d in closed]) if closed else 0.0
    fit = [d for d in closed if _closed_at(d) < cutoff]
    later = [d for d in closed if _closed_at(d) >= cutoff]
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


def default_horizon(history: History, fit_deals: list[Any]) -> float:
    """H, in days: the HORIZON_QUANTILE of the time from a snapshot to its deal's close, over
    the snapshots of the fit part's deals. A deal open at t ≤ T − H has most likely closed by T."""
    gaps = [d.closed - t for d in fit_deals for t in history.moments(d)]
    return float(np.quantile(gaps, HORIZON_QUANTILE)) if gaps else 0.0


def _group(name: str) -> str:
    return name.partition(":")[0] if ":" in name else name


class Design:
    """The rows a regression sees: the anchor (the stage rate's log-odds, each fit-part deal's
    own outcome left out) then the named features. Each list of snapshots is turned into
    numbers once (for every name in `names`); the many fits of the strength and feature
    choices then only pick columns."""

    def __init__(
        self, rates: ev.StageRates, counted: dict[int, bool], names: list[str] | None = None
    ) -> None:
        self.rates, self.counted = rates, counted
        self.names = names
        self.cache: dict[int, tuple[list[Snapshot], np.ndarray]] = {}

    def __call__(self, snapshots: list[Snapshot], names: list[str]) -> np.ndarray:
        if self.names is None or not set(names) <= set(self.names):
            return np.column_stack(
                [self.rates.anchor(snapshots, self.counted), matrix(snapshots, names)]
            )
        if id(snapshots) not in self.cache:
            full = np.column_stack(
                [self.rates.anchor(snapshots, self.counted), matrix(snapshots, self.names)]
            )
            # The list itself is kept beside its numbers so its id cannot be reused.
            self.cache[id(snapshots)] = (snapshots, full)
        column = {name: j + 1 for j, name in enumerate(self.names)}
        return self.cache[id(snapshots)][1][:, [0, *(column[n] for n in names)]]


def _fit(x: np.ndarray, y: np.ndarray, strength: float = 1.0) -> AnchoredLogistic:
    return AnchoredLogistic(C=strength).fit(x, y)


def choose_strength(
    design: Design, core: list[Snapshot], window: list[Snapshot], names: list[str]
) -> tuple[float, dict[str, float]]:
    """The regularisation strength (anchored.C_GRID) whose model, fitted on the core, scores
    the lowest Brier on the calibration window; C = 0 is the stage rates themselves. Ties go
    to the stronger penalty (the smaller C)."""
    x_core, y_core = design(core, names), outcomes(core)
    x_win, y_win = design(window, names), outcomes(window)
    scores = {
        c: ev.brier(_fit(x_core, y_core, c).predict_proba(x_win)[:, 1], y_win) for c in C_GRID
    }
    best = min(C_GRID, key=lambda c: (round(scores[c], 6), c))
    return best, {str(c): round(v, 5) for c, v in scores.items()}


def select_features(
    design: Design,
    core: list[Snapshot],
    window: list[Snapshot],
    names: list[str],
    strength: float,
) -> tuple[list[str], dict[str, Any]]:
    """Leave out the inputs that do not carry over to later deals. One backward pass over the
    groups (each numeric feature; the industry one-hots; the size one-hots; the stage one-hots
    are always kept): a group is dropped when the regression fitted on the core snapshots
    without it scores a lower Brier on the calibration window (later snapshots) than with
    everything. Returns the kept names and, per group, the window Brier without it."""
    y_core, y_win = outcomes(core), outcomes(window)
    if strength <= 0 or len(set(y_core.tolist())) < 2 or len(set(y_win.tolist())) < 2:
        return names, {"all": None, "dropped": []}

    def window_brier(kept: list[str]) -> float:
        model = _fit(design(core, kept), y_core, strength)
        return ev.brier(model.predict_proba(design(window, kept))[:, 1], y_win)

    full = window_brier(names)
    groups = [g for g in dict.fromkeys(_group(n) for n in names) if g != "stage"]
    without = {g: window_brier([n for n in names if _group(n) != g]) for g in groups}
    dropped = [g for g in groups if without[g] < full]
    kept = [n for n in names if _group(n) not in dropped]
    return kept, {
        "all": round(full, 5),
        "without": {g: round(v, 5) for g, v in without.items()},
        "dropped": dropped,
    }


def _calibrators(
    model: Any, x: np.ndarray, y: np.ndarray, methods: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Sigmoid and isotonic maps (or `methods`) fitted on (x, y) over the frozen regression."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    out = {}
    for method in methods or CALIBRATION_METHODS:
        calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=method)
        calibrated.fit(x, y)
        out[method] = calibrated
    return out


def _calibration_parameters(method: str, calibrated: Any) -> dict[str, Any]:
    if method == "none":
        return {"method": "none"}
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    if method == "isotonic":
        return {
            "method": "isotonic",
            "x": calibrator.X_thresholds_.tolist(),
            "y": calibrator.y_thresholds_.tolist(),
        }
    return {"method": "sigmoid", "a": float(calibrator.a_), "b": float(calibrator.b_)}


def choose_calibration(
    model: Any, x: np.ndarray, y: np.ndarray, at: np.ndarray
) -> tuple[dict[str, Any], Any]:
    """Keep a calibration map only if it helps out of sample. The calibration window is cut in
    two halves by time; each method is fitted on the earlier half and scored on the later one
    beside no calibration. A method is a candidate when it lowers the Brier score there and its
    AUC does not fall below the uncalibrated one by more than AUC_TOLERANCE (a sigmoid with
    a ≥ 0 reverses the ranking and is never kept); the best candidate is refitted on the whole
    window (and dropped if that refit reverses the ranking). Returns the stored calibration
    (with the trial scores) and the fitted scikit-learn calibrated model (None for none)."""
    order = np.argsort(at, kind="mergesort")
    half = len(order) // 2
    early, late = order[:half], order[half:]
    trial: dict[str, dict[str, Any]] = {}
    kept, reason = "none", "no method lowered the Brier score on the later half of the window"
    usable = all(len(set(y[part].tolist())) == 2 for part in (early, late))
    if not usable:
        reason = "the calibration window lacks one outcome in one of its halves"
    else:
        z_late = model.decision_function(x[late])
        none_p = expit(z_late)
        # `usable`: the later half holds both outcomes, so every AUC on it is a number.
        none_auc = ev.auc(none_p, y[late])
        assert none_auc is not None
        base = {"brier": ev.brier(none_p, y[late]), "auc": none_auc}
        trial["none"] = {k: round(v, 5) for k, v in base.items()}
        best = base["brier"]
        for method, calibrated in _calibrators(model, x[early], y[early]).items():
            tried = _calibration_parameters(method, calibrated)
            p = calibrate(tried, z_late)
            area = ev.auc(p, y[late])
            assert area is not None
            row = {"brier": ev.brier(p, y[late]), "auc": area}
            reverses = method == "sigmoid" and tried["a"] >= 0
            ranks = not reverses and row["auc"] >= base["auc"] - AUC_TOLERANCE
            trial[method] = {**{k: round(v, 5) for k, v in row.items()}, "keeps_ranking": ranks}
            if ranks and row["brier"] < best:
                kept, best = method, row["brier"]
        if kept != "none":
            reason = f"{kept} lowered the Brier score on the later half of the window"
    fitted = None
    params: dict[str, Any] = {"method": "none"}
    if kept != "none":
        fitted = _calibrators(model, x, y)[kept]
        params = _calibration_parameters(kept, fitted)
        if kept == "sigmoid" and params["a"] >= 0:
            kept, fitted, params = "none", None, {"method": "none"}
            reason = "the sigmoid refitted on the whole window reversed the ranking"
    return {**params, "trial": trial, "reason": reason}, fitted


#: What `refit` replaces in a model's parameters (the evaluated values stay in "evaluated").
REFITTED = (
    "coefficients",
    "intercept",
    "mean",
    "scale",
    "calibration",
    "stage_rates",
    "suggested_stage_probabilities",
    "shrinkage",
)


def fit_snapshots(
    history: History, fit_deals: list[Any], cutoff: float, horizon: float
) -> tuple[list[Snapshot], list[Snapshot], list[Snapshot], float]:
    """The fit part's snapshots (all, core, calibration window) and the inner moment between
    core and window. Fit snapshots: moments t ≤ T − H of deals whose outcome was known by T;
    the deals open at such a t and closed at or after T (or still open) are censored: left out,
    never lost. Core: snapshots up to the inner moment (CALIBRATION_SHARE of them), of deals
    closed by inner + H (the same rule one step earlier). Window: the later fit snapshots."""
    last_moment = cutoff - horizon
    train_snaps = [s for s in history.snapshots(fit_deals, until=last_moment) if s.at < cutoff]
    if not train_snaps:
        return [], [], [], cutoff
    inner = float(np.quantile(np.array([s.at for s in train_snaps]), CALIBRATION_SHARE))
    core = [
        s
        for s in train_snaps
        if s.at <= inner and _closed_at(history.deals[s.opportunity_id]) < inner + horizon
    ]
    window = [s for s in train_snaps if s.at > inner]
    return train_snaps, core, window, inner


def refit(
    history: History,
    *,
    names: list[str],
    strength: float,
    calibration: dict[str, Any],
    horizon: float,
    at: float,
) -> dict[str, Any] | None:
    """The model put to use: the choices the evaluation made (features, strength, calibration
    method, H) refitted on every deal closed before `at` (now), so predictions learn from the
    latest closed deals too, not only from those before the evaluation's cutoff. The stage
    rates (the anchor, the fallback and the suggested stage probabilities) likewise count every
    closed deal. None when the refit lacks an outcome in its core or window: the evaluated
    numbers are then used as they are."""
    fit_deals = [d for d in history.closed_deals() if _closed_at(d) < at]
    _all, core, window, _inner = fit_snapshots(history, fit_deals, at, horizon)
    y_core, y_win = outcomes(core), outcomes(window)
    if len(set(y_core.tolist())) < 2 or len(set(y_win.tolist())) < 2:
        return None
    rates = ev.StageRates(history, fit_deals)
    design = Design(rates, {d.pk: d.status == Status.WON for d in fit_deals}, names)
    model = _fit(design(core, names), y_core, strength)
    # The evaluation's method refitted on the latest window, with the evaluation's trial and
    # reason (what chose it).
    method = calibration["method"]
    kept: dict[str, Any] = {"method": "none"}
    if method != "none":
        fitted = _calibrators(model, design(window, names), y_win, (method,))[method]
        kept = _calibration_parameters(method, fitted)
    chosen = {k: calibration[k] for k in ("trial", "reason") if k in calibration}
    if method == "sigmoid" and kept["a"] >= 0:
        kept = {"method": "none"}
        chosen["reason"] = "the sigmoid refitted on the whole window reversed the ranking"
    return {
        **model.stored(),
        "calibration": {**kept, **chosen},
        "stage_rates": rates.to_json(),
        "suggested_stage_probabilities": rates.suggested(),
        "shrinkage": {"branch": rates.m_branch, "person": rates.m_owner},
        "refit": {
            "at": from_days(at).isoformat(),
            "deals": len(fit_deals),
            "core_snapshots": len(core),
            "calibration_snapshots": len(window),
        },
    }


def train(
    history: History,
    *,
    cutoff: float | None = None,
    exclude: tuple[str, ...] = (),
    horizon: float | None = None,
    refit_at: float | None = None,
) -> dict:
    """Fit, calibrate and evaluate; return everything a `WinModel` stores. Raises
    NotEnoughHistory when the fit or evaluation part is too small. `horizon` (days) overrides
    H; 0 gives the first increment's selection (every snapshot before T of the deals closed
    before T). With `refit_at` (now, in days) the numbers put to use are then refitted on every
    deal closed by then (`refit`); the evaluated ones are kept in `parameters["evaluated"]`."""
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
    if horizon is None:
        horizon = default_horizon(history, fit_deals)
    train_snaps, core_snaps, calibration_snaps, inner = fit_snapshots(
        history, fit_deals, cutoff, horizon
    )
    censored = _censored(history, cutoff, cutoff - horizon)
    if len(train_snaps) < 2 or len({s.won for s in train_snaps}) < 2:
        raise NotEnoughHistory(counts)
    eval_snaps = history.snapshots(later, start=cutoff)

    names = [n for n in feature_names(train_snaps, history.open_stages) if n not in exclude]
    leaks = _leaks(matrix(train_snaps, names), outcomes(train_snaps), names)
    names = [n for n in names if n not in leaks]
    # The anchor: the stage rates learned from the fit part (the ones evaluated and stored).
    stage_rates = ev.StageRates(history, fit_deals)
    design = Design(stage_rates, {d.pk: d.status == Status.WON for d in fit_deals}, names)
    strength, strengths = choose_strength(design, core_snaps, calibration_snaps, names)
    names, selection = select_features(design, core_snaps, calibration_snaps, names, strength)
    x_core, y_core = design(core_snaps, names), outcomes(core_snaps)
    x_cal, y_cal = design(calibration_snaps, names), outcomes(calibration_snaps)
    model = _fit(x_core, y_core, strength)
    calibration, calibrated = choose_calibration(
        model, x_cal, y_cal, np.array([s.at for s in calibration_snaps])
    )
    parameters = {
        **model.stored(),
        "anchor": ANCHOR,
        "calibration": calibration,
        "regularisation_C": strength,
        "strengths_tried": strengths,
        "dropped_as_leaks": leaks,
        "excluded": list(exclude),
        "stage_default": history.stage_default,
        "horizon_days": round(horizon, 3),
        "feature_selection": selection,
    }
    # Evaluation deals closed after the cutoff: none is among the counted, nothing left out.
    x_eval, y_eval = design(eval_snaps, names), outcomes(eval_snaps)
    learned = predict(parameters, x_eval)
    naive = ev.NaiveBayes(history, fit_deals)
    defaults_p = ev.stage_defaults(history, eval_snaps)
    rates_p = stage_rates.predict(eval_snaps)
    deal_ids = np.array([s.opportunity_id for s in eval_snaps])
    metrics = {
        "stage_defaults": ev.scores(defaults_p, y_eval),
        "stage_rates": ev.scores(rates_p, y_eval),
        "naive_bayes": ev.scores(naive.predict(eval_snaps), y_eval),
        "logistic": ev.scores(learned, y_eval),
    }
    # The regression without its calibration map, to show what calibration did.
    raw = expit(raw_logit(parameters, x_eval))
    metrics["logistic_uncalibrated"] = ev.scores(raw, y_eval)
    # How sure the comparison is: Brier differences with deal-level bootstrap intervals.
    metrics["brier_differences"] = {
        "logistic_vs_stage_defaults": ev.brier_difference(learned, defaults_p, y_eval, deal_ids),
        "logistic_vs_stage_rates": ev.brier_difference(learned, rates_p, y_eval, deal_ids),
        "stage_rates_vs_stage_defaults": ev.brier_difference(rates_p, defaults_p, y_eval, deal_ids),
    }
    parameters["suggested_stage_probabilities"] = stage_rates.suggested()
    parameters["shrinkage"] = {"branch": stage_rates.m_branch, "person": stage_rates.m_owner}
    parameters["stage_rates"] = stage_rates.to_json()
    parameters.update(choose_offer(metrics))
    evaluated = {key: parameters[key] for key in REFITTED if key in parameters}
    parameters["evaluated"] = evaluated
    deployed = None
    if refit_at is not None:
        deployed = refit(
            history,
            names=names,
            strength=strength,
            calibration=calibration,
            horizon=horizon,
            at=refit_at,
        )
    if deployed is not None:
        parameters.update(deployed)
    else:
        parameters["refit"] = None
    eval_deals = {s.opportunity_id for s in eval_snaps}
    sklearn_model = calibrated if calibrated is not None else model
    return {
        "cutoff": from_days(cutoff),
        "calibration_cut": from_days(inner),
        "horizon_days": horizon,
        "censored_deals": censored,
        "training_deals": len(fit_deals),
        "training_won": counts["won"],
        "training_snapshots": len(train_snaps),
        "training_snapshot_deals": len({s.opportunity_id for s in train_snaps}),
        "core_snapshots": len(core_snaps),
        "calibration_snapshots": len(calibration_snaps),
        "evaluation_deals": len(eval_deals),
        "evaluation_won": int(sum(1 for d in later if d.pk in eval_deals and d.status == "won")),
        "evaluation_snapshots": len(eval_snaps),
        "features": [ANCHOR, *names],
        "parameters": parameters,
        "metrics": metrics,
        "offered": parameters["offered"],
        "seconds": round(time.perf_counter() - started, 3),
        # For tests: the sklearn model's own probabilities on the evaluation snapshots.
        "_sklearn_eval": sklearn_model.predict_proba(x_eval)[:, 1],
        "_eval_snapshots": eval_snaps,
        "_train_snapshots": train_snaps,
        "_core_snapshots": core_snaps,
        "_calibration_snapshots": calibration_snaps,
    }


def _censored(history: History, cutoff: float, last_moment: float) -> int:
    """Deals open at some moment t ≤ T − H whose outcome was not known by T (closed at or
    after T, or still open): left out of the fit, never counted as lost."""
    count = 0
    for deal in history.deals.values():
        if deal.created > last_moment or not deal.span_from:
            continue
        if deal.closed is not None and deal.closed < cutoff:
            continue
        count += 1
    return count


def choose_offer(metrics: dict[str, Any]) -> dict[str, Any]:
    """Whether the logistic model is offered: only if it beats, on the held-out later deals'
    Brier score, both the learned stage rates and the stage defaults. Otherwise the better of
    those two is used, and the reason is stored (the numbers compared)."""
    brier = {name: metrics[name]["brier"] for name in ("logistic", "stage_rates", "stage_defaults")}
    if brier["logistic"] < min(brier["stage_rates"], brier["stage_defaults"]):
        return {"offered": True, "used": "logistic", "fallback": None}
    used = "stage_rates" if brier["stage_rates"] < brier["stage_defaults"] else "stage_defaults"
    return {
        "offered": False,
        "used": used,
        "fallback": {"reason": "loses_on_later_deals", "brier": brier},
    }


def snapshot_now(history: History, opportunity_id: int, at: Any) -> Snapshot | None:
    deal = history.deals.get(opportunity_id)
    return None if deal is None else history.snapshot(deal, days(at))
