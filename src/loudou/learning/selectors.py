"""Reads of learning: the active model of a playbook, and one deal's probability explained."""

from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.errors import NotFound
from loudou.learning import training
from loudou.learning.features import History, matrix
from loudou.learning.models import WinModel
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
        "suggested_stage_probabilities": model.parameters.get("suggested_stage_probabilities", {}),
    }


def _label(name: str) -> str:
    labels = {
        "probability": _("probability set on the deal"),
        "amount": _("amount"),
        "days_in_stage": _("days in stage"),
        "age": _("days since created"),
        "days_to_close": _("days to expected close"),
        "criteria_satisfied": _("criteria with evidence"),
        "days_since_activity": _("days since last activity"),
        "no_activity": _("no activity done"),
        "in_group": _("account belongs to a group"),
        "owner_win_rate": _("owner's win rate"),
        "branch_win_rate": _("branch's win rate"),
    }
    if name in labels:
        return labels[name]
    kind, _sep, value = name.partition(":")
    kinds = {"stage": _("stage"), "industry": _("industry"), "size": _("size")}
    return f"{kinds.get(kind, kind)} = {value}"


def win_explain(user: Any, opportunity_id: int) -> dict[str, Any]:
    """The learned win probability of a deal the user may see, with the factors that moved it
    most (each feature's contribution on the model's log-odds scale, relative to the average
    training snapshot) and the stage default beside it. NotFound if the user may not see the deal
    or no model is trained for its playbook."""
    opp = opportunity_get(user, opportunity_id)
    model = win_model_active(opp.playbook)
    if model is None:
        raise NotFound(
            _("No win model is trained for playbook %(p)s: only stage defaults are offered.")
            % {"p": opp.playbook.key}
        )
    stage_default = opp.stage.probability / 100.0
    base: dict[str, Any] = {
        "opportunity": opp.pk,
        "name": opp.name,
        "stage": opp.stage.key,
        "status": opp.status,
        "stage_default": stage_default,
        "model_trained_at": model.trained_at.isoformat(),
    }
    if opp.status != Status.OPEN:
        return {**base, "probability": 1.0 if opp.status == Status.WON else 0.0, "factors": []}
    history = History(opp.playbook)
    snap = training.snapshot_now(history, opp.pk, clock.now())
    if snap is None:
        raise NotFound(_("No such opportunity."))
    params = model.parameters
    x = matrix([snap], model.features)
    probability = float(training.predict(params, x)[0])
    z = (x[0] - np.array(params["mean"])) / np.array(params["scale"])
    contributions = z * np.array(params["coefficients"])
    order = np.argsort(-np.abs(contributions))[:TOP_FACTORS]
    factors = []
    for j in order:
        name = model.features[j]
        if ":" in name:
            shown = "yes" if x[0, j] else "no"
        else:
            shown = snap.shown.get(name, f"{x[0, j]:.2f}")
        factors.append(
            {
                "feature": name,
                "label": _label(name),
                "value": shown,
                "contribution": round(float(contributions[j]), 3),
                "text": f"{_label(name)}: {shown} ({contributions[j]:+.2f})".replace("-", "−"),
            }
        )
    return {**base, "probability": round(probability, 4), "factors": factors}
