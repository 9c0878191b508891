"""The project work around an opportunity: 立项, project team, competitors and consultants,
key dates and objections."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.money import money_field


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ProjectApproval(models.Model):
    """立项: the seller asks the company to set the opportunity up as a project; a manager of the
    seller's branch approves or rejects it. A granted approval is stage 4's approval criterion."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        related_name="approvals",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"))
    requirement = models.TextField(_("project requirement"))
    budget = money_field(_("budget"))
    timeline = models.TextField(_("timeline"))
    selection_team = models.TextField(_("selection team and leadership support"))
    competition = models.TextField(_("competitors and consultants involved"), blank=True)
    strategy = models.TextField(_("how we are guiding the customer"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("project approval (立项)")
        verbose_name_plural = _("project approvals (立项)")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity"],
                condition=Q(status="pending"),
                name="approval_one_pending_per_opportunity",
            ),
            models.CheckConstraint(condition=Q(budget__gte=0), name="approval_budget_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity} ({self.get_status_display()})"


class TeamMember(models.Model):
    """A person of ours on the opportunity's project team (项目小组), in a role of the playbook."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="team_members",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    role = models.ForeignKey(
        "playbooks.Role", verbose_name=_("role"), on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField(_("added at"))

    class Meta:
        verbose_name = _("project team member")
        verbose_name_plural = _("project team")
        ordering = ["opportunity", "role__order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "user", "role"], name="team_member_unique_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class CompetitorKind(models.TextChoices):
    VENDOR = "vendor", _("Competing vendor")
    CONSULTANT = "consultant", _("Third-party consultant")


class Competitor(models.Model):
    """A competing software vendor or a third-party consultant we meet in deals."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=12, choices=CompetitorKind.choices)

    class Meta:
        verbose_name = _("competitor or consultant")
        verbose_name_plural = _("competitors and consultants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OpportunityCompetitor(models.Model):
    """A competitor or consultant involved in one opportunity, with what we know of their position."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="competitors",
    )
    competitor = models.ForeignKey(
        Competitor, verbose_name=_("competitor"), on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(_("notes"), blank=True)
    active = models.BooleanField(_("still in the running"), default=True)

    class Meta:
        verbose_name = _("competitor in the deal")
        verbose_name_plural = _("competitors in the deal")
        ordering = ["opportunity", "competitor__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "competitor"], name="opportunity_competitor_unique"
            )
        ]

    def __str__(self) -> str:
        return str(self.competitor)


class KeyDateKind(models.TextChoices):
    BID = "bid", _("Bid")
    NEGOTIATION = "negotiation", _("Contract negotiation")
    SIGNING = "signing", _("Signing")
    CUSTOM = "custom", _("Other")


class KeyDate(models.Model):
    """A milestone of the customer's timeline: bid, negotiation, signing or another, planned and
    actual."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="key_dates",
    )
    kind = models.CharField(_("kind"), max_length=12, choices=KeyDateKind.choices)
    label = models.CharField(_("label"), max_length=120, blank=True)
    planned = models.DateField(_("planned"))
    actual = models.DateField(_("actual"), null=True, blank=True)

    class Meta:
        verbose_name = _("key date")
        verbose_name_plural = _("key dates")
        ordering = ["opportunity", "planned", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "kind"],
                condition=~Q(kind="custom"),
                name="key_date_one_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label or self.get_kind_display()} {self.planned}"


class ObjectionStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    ANSWERED = "answered", _("Answered")


class Objection(models.Model):
    """A customer objection, queued until answered (stage 6's main work)."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="objections",
    )
    text = models.TextField(_("objection"))
    raised_at = models.DateTimeField(_("raised at"))
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ObjectionStatus.choices, default=ObjectionStatus.QUEUED
    )
    answer = models.TextField(_("answer"), blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("answered by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("objection")
        verbose_name_plural = _("objections")
        ordering = ["opportunity", "raised_at", "id"]

    def __str__(self) -> str:
        return self.text[:60]
