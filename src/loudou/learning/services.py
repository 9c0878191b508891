"""The one write of learning: train a win model and store it (`win_model_train`)."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.analytics.selectors import end_of_day
from loudou.core import clock
from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.learning import training
from loudou.learning.features import History, days
from loudou.learning.models import WinModel
from loudou.org.models import AccessLevel
from loudou.playbooks.models import Playbook


def win_model_train(
    *,
    playbook: Playbook,
    actor: Any,
    cutoff: dt.date | None = None,
    exclude: tuple[str, ...] = (),
    horizon: float | None = None,
) -> WinModel:
    """Learn win probabilities from the playbook's closed deals, evaluate them beside the
    alternatives, and store the model as the playbook's active one (the previous one is kept,
    inactive). Refuses, changing nothing, when there is too little history. The model is stored
    with `offered` false when it does not beat the learned stage rates and the stage defaults on
    the later deals: predictions then fall back (see `training.choose_offer`). `horizon`: H in
    days (default: `training.default_horizon`). Only an administrator (or the system: the CLI,
    `actor` None) may train: a model changes the probabilities everyone's forecast uses."""
    if actor is not None and getattr(actor, "level", None) != AccessLevel.ADMIN:
        raise PermissionDenied(_("Only an administrator may train a win model."))
    history = History(playbook)
    at = days(end_of_day(cutoff)) if cutoff else None
    try:
        result = training.train(
            history, cutoff=at, exclude=exclude, horizon=horizon, refit_at=days(clock.now())
        )
    except training.NotEnoughHistory as exc:
        c = exc.counts
        raise ValidationFailed(
            _(
                "Not enough history to learn from: %(closed)s deals closed before the cutoff "
                "(%(won)s won, %(lost)s lost) and %(evaluation)s after it (%(ewon)s won, "
                "%(elost)s lost). Needed: %(min_closed)s closed before, with at least %(min_each)s "
                "won and %(min_each)s lost, and %(min_eval)s after, with both outcomes. The "
                "stage default probabilities stay in use."
            )
            % {
                "closed": c["closed"],
                "won": c["won"],
                "lost": c["lost"],
                "evaluation": c["evaluation"],
                "ewon": c["evaluation_won"],
                "elost": c["evaluation_lost"],
                "min_closed": training.MIN_CLOSED,
                "min_each": training.MIN_EACH,
                "min_eval": training.MIN_EVALUATION,
            },
            details={"counts": {k: v for k, v in c.items() if k != "cutoff"}},
        ) from None
    with transaction.atomic():
        WinModel.objects.select_for_update().filter(playbook=playbook, active=True).update(
            active=False
        )
        return WinModel.objects.create(
            playbook=playbook,
            trained_at=clock.now(),
            cutoff=result["cutoff"],
            training_deals=result["training_deals"],
            training_won=result["training_won"],
            training_snapshots=result["training_snapshots"],
            evaluation_deals=result["evaluation_deals"],
            evaluation_snapshots=result["evaluation_snapshots"],
            features=result["features"],
            parameters=result["parameters"],
            metrics={
                **result["metrics"],
                "counts": {
                    "calibration_cut": result["calibration_cut"].isoformat(),
                    "core_snapshots": result["core_snapshots"],
                    "calibration_snapshots": result["calibration_snapshots"],
                    "horizon_days": round(result["horizon_days"], 3),
                    "censored_deals": result["censored_deals"],
                    "training_snapshot_deals": result["training_snapshot_deals"],
                    "evaluation_won": result["evaluation_won"],
                },
            },
            seconds=result["seconds"],
            active=True,
            offered=result["offered"],
        )
