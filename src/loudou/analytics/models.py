"""Analytics reads opportunity history (DESIGN.md rule 3). Its only table is a cache derived from
that history: the stays, maintained by the same service that writes history, rebuilt by
`loudou analytics rebuild` and checked by `loudou analytics verify`."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class StayOutcome(models.TextChoices):
    ADVANCED = "advanced", _("Advanced")
    REGRESSED = "regressed", _("Moved back")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class OpportunityStay(models.Model):
    """One uninterrupted period an open opportunity spent in one stage, and how it ended
    (empty `exited_at`: it is still there). Derived from history; never edited by hand."""

    # The two composite indexes below start with opportunity and with stage: single-column ones
    # would only cost a write on every stage change and imported row.
    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="stays",
        db_index=False,
    )
    stage = models.ForeignKey(
        "playbooks.Stage",
        verbose_name=_("stage"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    stage_order = models.PositiveSmallIntegerField(_("stage order"))
    entered_at = models.DateTimeField(_("entered at"))
    exited_at = models.DateTimeField(_("left at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=StayOutcome.choices, blank=True)

    class Meta:
        verbose_name = _("stage stay")
        verbose_name_plural = _("stage stays")
        ordering = ["opportunity", "entered_at", "id"]
        indexes = [
            models.Index(fields=["opportunity", "entered_at"]),
            models.Index(fields=["stage", "exited_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity"],
                condition=models.Q(exited_at__isnull=True),
                name="stay_one_open_per_opportunity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id} {self.stage_id} {self.entered_at:%Y-%m-%d}"
