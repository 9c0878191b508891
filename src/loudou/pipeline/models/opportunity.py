"""The opportunity, its append-only history, criterion evidence and gate overrides."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.i18n import localized
from loudou.core.models import AppendOnlyModel
from loudou.core.money import money_field
from loudou.core.visibility import VisibleQuerySet
from loudou.playbooks.models import ForecastCategory


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class LostReason(models.Model):
    """A configurable reason an opportunity was lost or dropped."""

    key = models.SlugField(_("key"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=80)
    name_en = models.CharField(_("English name"), max_length=80)
    active = models.BooleanField(_("active"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("lost reason")
        verbose_name_plural = _("lost reasons")
        ordering = ["order", "key"]

    def __str__(self) -> str:
        return localized(self, "name")


class OpportunityQuerySet(VisibleQuerySet):
    owner_field = "owner"
    branch_field = "branch"
    team_path = "team_members__user"

    def open(self) -> "OpportunityQuerySet":
        return self.filter(status=Status.OPEN)


class Opportunity(models.Model):
    """商机: a concrete need of a target account, moving down the playbook's stages.

    The stage, status and probability change only through the stage operations in
    `loudou.pipeline.services`; `version` grows by one with every write (optimistic concurrency).
    """

    account = models.ForeignKey(
        "customers.Account",
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="opportunities",
    )
    name = models.CharField(_("name"), max_length=200)
    need = models.TextField(_("need"), blank=True, help_text=_("Who needs what, in their words."))
    amount = money_field(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    budget = money_field(_("customer budget"), null=True, blank=True)
    close_date = models.DateField(_("expected close date"))
    # owner, branch and playbook lead the composite indexes in Meta, which serve every look-up by
    # them; single-column indexes would only be written on every save and imported row.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner (account manager)"),
        on_delete=models.PROTECT,
        related_name="owned_opportunities",
        db_index=False,
    )
    branch = models.ForeignKey(
        "org.Branch",
        verbose_name=_("branch"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    playbook = models.ForeignKey(
        "playbooks.Playbook",
        verbose_name=_("playbook"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    stage = models.ForeignKey(
        "playbooks.Stage", verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+"
    )
    # Indexed by the (status, closed_on, …) index below: "won in a period" is a range of it,
    # covered (the bookings of a period are summed from the index alone).
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.OPEN
    )
    probability_override = models.PositiveSmallIntegerField(
        _("probability override (%)"), null=True, blank=True
    )
    source = models.CharField(_("source"), max_length=120, blank=True)
    lost_reason = models.ForeignKey(
        LostReason, verbose_name=_("lost reason"), on_delete=models.PROTECT, null=True, blank=True
    )
    lost_to = models.ForeignKey(
        "pipeline.Competitor",
        verbose_name=_("lost to"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    stage_entered_at = models.DateTimeField(_("in stage since"))
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"))
    version = models.PositiveIntegerField(_("version"), default=1)

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["playbook", "status", "stage"]),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["branch", "status"]),
            models.Index(fields=["close_date"]),
            models.Index(fields=["status", "closed_on", "playbook", "amount"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="opportunity_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0),
                name="opportunity_budget_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(probability_override__isnull=True) | Q(probability_override__lte=100),
                name="opportunity_probability_max_100",
            ),
            models.CheckConstraint(
                condition=Q(status="lost") | Q(lost_reason__isnull=True),
                name="opportunity_lost_reason_only_when_lost",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def probability(self) -> int:
        """Percent: the override if set, else won 100, lost 0, else the stage's default."""
        if self.status == Status.WON:
            return 100
        if self.status == Status.LOST:
            return 0
        if self.probability_override is not None:
            return self.probability_override
        return self.stage.probability

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.probability / 100).quantize(Decimal("0.01"))

    @property
    def forecast_category(self) -> str:
        if self.status == Status.WON:
            return ForecastCategory.CLOSED
        if self.status == Status.LOST:
            return ForecastCategory.OMITTED
        return self.stage.forecast_category


class OpportunityHistory(AppendOnlyModel):
    """The tracked fields of an opportunity from `valid_from` on; the state at T is the latest row
    with `valid_from <= T`. One row per change; `changed` names the fields that changed."""

    # No single-column indexes on opportunity (the (opportunity, valid_from, id) index serves it),
    # owner or actor (no read looks history up by them; users are deactivated, never deleted):
    # every index is written on every change and on every imported row.
    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        related_name="history",
        db_index=False,
    )
    valid_from = models.DateTimeField(_("valid from"), db_index=True)
    stage = models.ForeignKey(
        "playbooks.Stage", verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    amount = money_field(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    close_date = models.DateField(_("expected close date"))
    probability = models.PositiveSmallIntegerField(_("probability (%)"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    forecast_category = models.CharField(
        _("forecast category"), max_length=12, choices=ForecastCategory.choices
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    action = models.CharField(_("action"), max_length=32)
    changed = models.JSONField(_("changed fields"), default=list)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("opportunity history")
        verbose_name_plural = _("opportunity history")
        ordering = ["opportunity", "valid_from", "id"]
        indexes = [models.Index(fields=["opportunity", "valid_from", "id"])]

    def __str__(self) -> str:
        return f"{self.opportunity_id} {self.valid_from:%Y-%m-%d %H:%M} {self.action}"


class CriterionEvidence(AppendOnlyModel):
    """Evidence that a `check` criterion holds (or no longer holds) for an opportunity; the latest
    row per criterion is the current answer."""

    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        related_name="evidence",
    )
    criterion = models.ForeignKey(
        "playbooks.Criterion",
        verbose_name=_("criterion"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    satisfied = models.BooleanField(_("satisfied"))
    note = models.TextField(_("evidence"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta:
        verbose_name = _("criterion evidence")
        verbose_name_plural = _("criterion evidence")
        ordering = ["opportunity", "criterion", "-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.criterion}: {'✓' if self.satisfied else '✗'} {self.note[:40]}"


class GateOverride(AppendOnlyModel):
    """A manager let an opportunity into a stage although criteria were missing, with a reason."""

    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        related_name="overrides",
    )
    stage = models.ForeignKey(
        "playbooks.Stage", verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+"
    )
    missing = models.JSONField(_("missing criteria"), default=list)
    reason = models.TextField(_("reason"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("gate override")
        verbose_name_plural = _("gate overrides")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.opportunity} → {self.stage}: {self.reason[:40]}"
