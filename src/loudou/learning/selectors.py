"""Reads of learning: the active model of a playbook, and one deal's probability explained."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.errors import NotFound
from loudou.core.i18n import localized
from loudou.learning import training
from loudou.learning.anchored import ANCHOR
from loudou.learning.evaluation import StageRates
from loudou.learning.features import History, days
from loudou.learning.models import WinModel
from loudou.learning.words import FeatureWords, shown_value
from loudou.pipeline.models import Status
from loudou.pipeline.selectors import opportunity_get
from loudou.playbooks.models import Playbook

#: How many factors `win_explain` lists.
TOP_FACTORS = 5


def win_model_active(playbook: Playbook) -> WinModel | None:
    """The playbook's active win model (any version of the playbook), or None: then no learned
    probability is offered."""
    return (
        WinModel.objects.filter(playbook__key=playbook.key, active=True)
        .order_by("-trained_at")
        .first()
    )


def win_model_summary(model: WinModel) -> dict[str, Any]:
    names = ["stage_defaults", "stage_rates", "naive_bayes", "logistic", "logistic_uncalibrated"]
    return {
        "playbook": model.playbook.key,
        "trained_at": model.trained_at.isoformat(),
        "cutoff": model.cutoff.isoformat(),
        "training": {
            "deals": model.training_deals,
            "won": model.training_won,
            "snapshots": model.training_snapshots,
        },
        "evaluation": {"deals": model.evaluation_deals, "snapshots": model.evaluation_snapshots},
        "features": model.features,
        "dropped_as_leaks": model.parameters.get("dropped_as_leaks", {}),
        "excluded": model.parameters.get("excluded", []),
        "seconds": model.seconds,
        "models": {name: model.metrics[name] for name in names if name in model.metrics},
        "brier_differences": model.metrics.get("brier_differences", {}),
        "regularisation_C": model.parameters.get("regularisation_C"),
        "anchored": bool(model.features) and model.features[0] == ANCHOR,
        "refit": model.parameters.get("refit"),
        "suggested_stage_probabilities": model.parameters.get("suggested_stage_probabilities", {}),
        "offered": model.offered,
        "used": model.parameters.get("used", "logistic"),
        "fallback": model.parameters.get("fallback"),
        "horizon_days": model.parameters.get("horizon_days"),
        "censored_deals": model.metrics.get("counts", {}).get("censored_deals"),
        "calibration": {
            k: v
            for k, v in model.parameters.get("calibration", {}).items()
            if k in ("method", "trial", "reason")
        },
        "feature_selection": model.parameters.get("feature_selection"),
    }


def learned_probabilities(
    playbook: Playbook, opportunities: list[tuple[int, str, int, int]]
) -> tuple[dict[int, float], dict[str, Any]]:
    """The learned win probability of each open deal, as of now, for the forecast.

    `opportunities`: (id, stage key, branch id, owner id) of open deals of the playbook (the
    caller has applied the visibility rule). Returns the probabilities by id and what they came
    from: `source` ("logistic", "stage_rates", "stage_defaults": the active model's `used`;
    "none" without a model, and then no probabilities), `offered`, `model_trained_at` and a
    `note` in words. The per-deal model reads the facts of the open deals and counts the closed
    ones per owner and branch (`History(open_only=True)`); the stage rates need nothing but the
    fields."""
    model = win_model_active(playbook)
    if model is None:
        return {}, {
            "source": "none",
            "offered": False,
            "model_trained_at": None,
            "note": _(
                "No win model is trained for playbook %(p)s: the deals' own probabilities are used."
            )
            % {"p": playbook.key},
        }
    used = model.parameters.get("used", "logistic")
    info = {
        "source": used,
        "offered": model.offered,
        "model_trained_at": model.trained_at.isoformat(),
        "note": _("Probabilities learned from history: %(source)s (trained %(at)s).")
        % {"source": _source_label(used), "at": model.trained_at.date().isoformat()},
    }
    if used == "stage_defaults":
        defaults = {s.key: s.probability / 100.0 for s in playbook.ordered_stages()}
        return {pk: defaults.get(stage, 0.0) for pk, stage, _b, _o in opportunities}, info
    if used == "stage_rates":
        rates = StageRates.from_json(model.parameters["stage_rates"])
        return {pk: rates.rate(stage, b, o) for pk, stage, b, o in opportunities}, info
    if not opportunities:
        return {}, info
    history = History(playbook, open_only=True)
    now = days(clock.now())
    wanted = [pk for pk, *_rest in opportunities if pk in history.deals]
    snaps = [history.snapshot(history.deals[pk], now) for pk in wanted]
    kept = [(pk, s) for pk, s in zip(wanted, snaps, strict=True) if s is not None]
    x = training.design_for(model.parameters, model.features, [s for _pk, s in kept])
    predicted = training.predict(model.parameters, x) if kept else np.array([])
    return {pk: float(p) for (pk, _s), p in zip(kept, predicted, strict=True)}, info


def suggested_percent(rate: float) -> int:
    """A suggested stage rate (0–1) as the whole percent a stage holds, halves rounded up: what
    the model page offers and `loudou model accept` accepts."""
    return int((Decimal(str(rate)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fallback_reason(model: WinModel) -> str | None:
    """Why the model's logistic regression is not offered, in words (None when it is)."""
    if model.offered:
        return None
    brier = model.parameters["fallback"]["brier"]
    used = model.parameters["used"]
    return _(
        "The learned per-deal model is not offered: on the later deals its Brier score "
        "(%(logistic).4f) does not beat the learned stage rates (%(rates).4f) and the stage "
        "defaults (%(defaults).4f). Using %(used)s."
    ) % {
        "logistic": brier["logistic"],
        "rates": brier["stage_rates"],
        "defaults": brier["stage_defaults"],
        "used": _source_label(used),
    }


def _source_label(source: str) -> str:
    return {
        "logistic": _("the learned per-deal model"),
        "stage_rates": _("the learned stage rates"),
        "stage_defaults": _("the stage default probabilities"),
    }[source]


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _stage_rate_factors(model: WinModel, opp: Any, stage: str) -> tuple[float, list[dict]]:
    """The learned stage rate of the deal (company → branch → owner) and each step as a factor:
    the deals behind it and how it moved the log-odds."""
    rates = StageRates.from_json(model.parameters["stage_rates"])
    company = rates.company_rate(stage)
    p = company
    won, total = rates.totals.get(stage, (0, 0))
    factors = [
        {
            "feature": "stage_rate:company",
            "label": _("deals that reached stage %(s)s") % {"s": localized(opp.stage, "name")},
            "value": _("%(w)s of %(n)s won") % {"w": won, "n": total},
            "contribution": round(_logit(company), 3),
        }
    ]
    steps = (
        ("branch", _("the branch's deals at this stage"), rates.by_branch, rates.m_branch,
         opp.branch_id),
        ("owner", _("the owner's deals at this stage"), rates.by_owner, rates.m_owner,
         opp.owner_id),
    )  # fmt: skip
    for kind, label, table, m, key in steps:
        won, total = table.get((stage, key), (0, 0))
        after = (won + m * p) / (total + m)
        factors.append(
            {
                "feature": f"stage_rate:{kind}",
                "label": label,
                "value": _("%(w)s of %(n)s won") % {"w": won, "n": total},
                "contribution": round(_logit(after) - _logit(p), 3),
            }
        )
        p = after
    for factor in factors:
        text = f"{factor['label']}: {factor['value']} ({factor['contribution']:+.2f})"
        factor["text"] = text.replace("-", "−")
    return p, factors


def win_explain(user: Any, opportunity_id: int) -> dict[str, Any]:
    """The learned win probability of a deal the user may see, with the factors that moved it:
    for the anchored model, first the steps of the stage rate it starts from (company → branch
    → owner, "w of n won", adding up to the rate's log-odds), then the deal's features with the
    largest contribution on the log-odds scale relative to the average training snapshot; the
    stage default beside it. When the stored model is not offered
    (it lost to the learned stage rates or the stage defaults on the later deals), the
    probability is the one it fell back to (`source`), with the steps of the stage rate as
    factors, and `reason` says why. NotFound if the user may not see the deal
    or no model is trained for its playbook."""
    opp = opportunity_get(user, opportunity_id)
    model = win_model_active(opp.playbook)
    if model is None:
        raise NotFound(
            _("No win model is trained for playbook %(p)s: only stage defaults are offered.")
            % {"p": opp.playbook.key}
        )
    stage_default = opp.stage.probability / 100.0
    used = model.parameters.get("used", "logistic")
    base: dict[str, Any] = {
        "source": used,
        "offered": model.offered,
        "reason": fallback_reason(model),
        "opportunity": opp.pk,
        "name": opp.name,
        "stage": opp.stage.key,
        "status": opp.status,
        "stage_default": stage_default,
        "model_trained_at": model.trained_at.isoformat(),
    }
    if opp.status != Status.OPEN:
        return {**base, "probability": 1.0 if opp.status == Status.WON else 0.0, "factors": []}
    if used == "stage_defaults":
        return {**base, "probability": stage_default, "factors": []}
    if used == "stage_rates":
        probability, factors = _stage_rate_factors(model, opp, opp.stage.key)
        return {**base, "probability": round(probability, 4), "factors": factors}
    history = History(opp.playbook, only=opp.pk)
    snap = training.snapshot_now(history, opp.pk, clock.now())
    if snap is None:
        raise NotFound(_("No such opportunity."))
    params = model.parameters
    x = training.design_for(params, model.features, [snap])
    probability = float(training.predict(params, x)[0])
    z = (x[0] - np.array(params["mean"])) / np.array(params["scale"])
    contributions = z * np.array(params["coefficients"])
    factors = []
    anchored = model.features[0] == ANCHOR
    if anchored:
        # The anchor first, as the steps of the stage rate it is; then what the deal's own
        # features moved from there.
        factors = _stage_rate_factors(model, opp, opp.stage.key)[1]
        contributions[0] = 0.0
    order = [j for j in np.argsort(-np.abs(contributions))[:TOP_FACTORS] if contributions[j]]
    words = FeatureWords(opp.playbook, [model.features[j] for j in order])
    for j in order:
        name = model.features[j]
        if ":" in name:
            shown = shown_value("yes" if x[0, j] else "no")
        else:
            shown = shown_value(snap.shown.get(name, f"{x[0, j]:.2f}"))
        label = words(name)
        factors.append(
            {
                "feature": name,
                "label": label,
                "value": shown,
                "contribution": round(float(contributions[j]), 3),
                "text": f"{label}: {shown} ({contributions[j]:+.2f})".replace("-", "−"),
            }
        )
    return {**base, "probability": round(probability, 4), "factors": factors}
