"""Analytics reads opportunity history (DESIGN.md rule 3). Its tables are caches derived from
that history: the stays and the state spans, maintained by the same service that writes history
(in its transaction), rebuilt by `loudou analytics rebuild` and checked by
`loudou analytics verify`."""

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _

from loudou.core.money import money_field


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
            # The open stays by stage and entry, covering: the stalled deals are one range per
            # stage ("entered before now minus the threshold"), read from the index alone.
            models.Index(
                fields=["stage", "entered_at", "opportunity"],
                condition=models.Q(exited_at__isnull=True),
                name="stay_open_by_stage",
            ),
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


#: `valid_to` of a span still in force. A date rather than NULL so that "in force at T" is one
#: range (`valid_from <= T < valid_to`) that an index answers, for the past and for now alike.
OPEN_ENDED = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


class StateSpan(models.Model):
    """The tracked fields of one opportunity over [valid_from, valid_to): one span per history
    row, ending where the opportunity's next history row begins (`OPEN_ENDED`: still in force).

    The state of every deal at a moment T (the funnel as of T, the flow's two ends) is then one
    index range instead of a "latest row per deal" search through the whole history. The
    playbook is copied from the opportunity so a playbook's spans are read without a join.
    Derived from history; never edited by hand."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # the partial unique index below serves "this deal's current span"
    )
    playbook = models.ForeignKey(
        "playbooks.Playbook",
        verbose_name=_("playbook"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # leads the covering index below
    )
    stage = models.ForeignKey(
        "playbooks.Stage",
        verbose_name=_("stage"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    status = models.CharField(_("status"), max_length=10)
    owner = models.ForeignKey(
        "org.User",
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # read with the span, never searched by
    )
    amount = money_field(_("amount"))
    probability = models.PositiveSmallIntegerField(_("probability (%)"))
    close_date = models.DateField(_("expected close date"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_to = models.DateTimeField(_("valid to"))

    class Meta:
        verbose_name = _("state span")
        verbose_name_plural = _("state spans")
        ordering = ["opportunity", "valid_from", "id"]
        indexes = [
            # Covers the funnel and the flow. The spans still in force (valid_to = OPEN_ENDED)
            # come out grouped by status, stage and probability, so the funnel sums them without
            # a sort; spans that ended after T form one short range of valid_to.
            models.Index(
                fields=[
                    "playbook",
                    "valid_to",
                    "status",
                    "stage",
                    "probability",
                    "valid_from",
                    "amount",
                    "close_date",
                    "opportunity",
                ],
                name="span_in_force",
            ),
            # The flow's spans starting in its period: one range, read in order of valid_from.
            # (`id` makes it covering on PostgreSQL; SQLite keeps the rowid in every index.)
            models.Index(
                fields=[
                    "playbook",
                    "valid_from",
                    "opportunity",
                    "status",
                    "close_date",
                    "amount",
                    "id",
                ],
                name="span_started",
            ),
            # The open deals as they are now, by expected close date: the weighted forecast and
            # the flow's unchanged pipeline read a range of close dates instead of every open
            # deal. Partial, so it holds only the open deals' current spans (a sixth of the
            # deals at the bench's scale). Status and valid_to are repeated as columns because
            # SQLite 3.40 counts an index as covering only when it holds every column a query
            # names, those of the index's own condition included.
            models.Index(
                fields=[
                    "playbook",
                    "close_date",
                    "valid_from",
                    "probability",
                    "amount",
                    "opportunity",
                    "status",
                    "valid_to",
                ],
                condition=models.Q(valid_to=OPEN_ENDED, status="open"),
                name="span_open_now",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity"],
                condition=models.Q(valid_to=OPEN_ENDED),
                name="span_one_current_per_opportunity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id} {self.valid_from:%Y-%m-%d %H:%M} → {self.valid_to:%Y-%m-%d}"
