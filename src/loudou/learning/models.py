"""Win models learned from a company's own closed deals (`loudou.learning.training`).

A model is data, never code: its fitted parameters are plain numbers in JSON (coefficients,
intercept, the scaler's means and scales, the calibration map), applied with numpy at predict
time. No pickle is ever stored or loaded."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class WinModel(models.Model):
    """A per-deal win probability learned from the closed deals of one playbook.

    Trained on snapshots (a deal as it was at a moment) of the deals closed before `cutoff` and
    evaluated on snapshots, taken after the cutoff, of the deals closed after it; `metrics` holds
    the evaluation of this model and of the alternatives on the same snapshots (stage defaults,
    learned stage probabilities, Odoo-style naive Bayes). `features` names the inputs in the
    order of `parameters["coefficients"]`. At most one model per playbook is `active` (the one
    predictions use); training a new one deactivates the previous one, which is kept."""

    playbook = models.ForeignKey(
        "playbooks.Playbook",
        verbose_name=_("playbook"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    trained_at = models.DateTimeField(_("trained at"))
    cutoff = models.DateTimeField(_("cutoff"))
    training_deals = models.PositiveIntegerField(_("training deals"))
    training_won = models.PositiveIntegerField(_("training deals won"))
    training_snapshots = models.PositiveIntegerField(_("training snapshots"))
    evaluation_deals = models.PositiveIntegerField(_("evaluation deals"))
    evaluation_snapshots = models.PositiveIntegerField(_("evaluation snapshots"))
    features = models.JSONField(_("features"), default=list)
    parameters = models.JSONField(_("fitted parameters"), default=dict)
    metrics = models.JSONField(_("evaluation metrics"), default=dict)
    seconds = models.FloatField(_("training time (s)"), default=0.0)
    active = models.BooleanField(_("active"), default=True)
    #: False when the logistic model lost, on the held-out later deals' Brier score, to the
    #: learned stage rates or the stage defaults: predictions then use the better of those
    #: (`parameters["used"]`, the numbers in `parameters["fallback"]`).
    offered = models.BooleanField(_("offered"), default=True)

    class Meta:
        verbose_name = _("win model")
        verbose_name_plural = _("win models")
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook"],
                condition=models.Q(active=True),
                name="winmodel_one_active_per_playbook",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.playbook_id} {self.trained_at:%Y-%m-%d %H:%M}"
