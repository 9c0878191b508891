"""Customer enterprises (accounts) in their group hierarchy, their contacts, their ICP fit."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.i18n import localized
from loudou.core.models import AppendOnlyModel
from loudou.core.money import money_field
from loudou.core.visibility import VisibleQuerySet


class Industry(models.Model):
    """An industry of customers (制造, 金融 ...); the ICP names the ones we target."""

    key = models.SlugField(_("key"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=80)
    name_en = models.CharField(_("English name"), max_length=80)

    class Meta:
        verbose_name = _("industry")
        verbose_name_plural = _("industries")
        ordering = ["key"]

    def __str__(self) -> str:
        return localized(self, "name")


class SizeBand(models.TextChoices):
    LARGE = "large", _("Large")
    MEDIUM = "medium", _("Medium")
    SMALL = "small", _("Small")
    MICRO = "micro", _("Micro")


class AccountQuerySet(VisibleQuerySet):
    owner_field = "owner"
    branch_field = "branch"
    team_path = "opportunities__team_members__user"


class Account(models.Model):
    """A customer enterprise; a group's members point to the group through `parent`."""

    name = models.CharField(_("name"), max_length=200)
    credit_code = models.CharField(
        _("unified social credit code"), max_length=18, null=True, blank=True, unique=True
    )
    industry = models.ForeignKey(
        Industry, verbose_name=_("industry"), on_delete=models.PROTECT, null=True, blank=True
    )
    size_band = models.CharField(_("size"), max_length=10, choices=SizeBand.choices, blank=True)
    employees = models.PositiveIntegerField(_("employees"), null=True, blank=True)
    revenue = money_field(_("annual revenue"), null=True, blank=True)
    revenue_currency = models.CharField(_("revenue currency"), max_length=3, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("group (parent account)"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subsidiaries",
    )
    organisations_count = models.PositiveIntegerField(
        _("organisations / sites"), default=1, help_text=_("Legal entities or sites of the group.")
    )
    it_need = models.TextField(_("need for IT to improve management"), blank=True)
    product_fit = models.TextField(_("fit with our product"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="owned_accounts",
    )
    branch = models.ForeignKey(
        "org.Branch", verbose_name=_("branch"), on_delete=models.PROTECT, null=True, blank=True
    )
    is_target = models.BooleanField(
        _("target account"), default=False, help_text=_("Set by qualification against the ICP.")
    )
    created_at = models.DateTimeField(_("created at"))
    updated_at = models.DateTimeField(_("updated at"))

    objects = AccountQuerySet.as_manager()

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(revenue__isnull=True) | Q(revenue__gte=0),
                name="account_revenue_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("pk")), name="account_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccountQualification(AppendOnlyModel):
    """One verdict of stage 1 on an account: target or not, computed or overridden, and when."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.PROTECT, related_name="qualifications"
    )
    playbook = models.ForeignKey(
        "playbooks.Playbook", verbose_name=_("playbook"), on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(_("at"), db_index=True)
    is_target = models.BooleanField(_("target account"))
    results = models.JSONField(_("criteria results"), default=list)
    overridden = models.BooleanField(_("overridden"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("account qualification")
        verbose_name_plural = _("account qualifications")
        ordering = ["account", "-at", "-id"]

    def __str__(self) -> str:
        return f"{self.account} {self.at:%Y-%m-%d} {'✓' if self.is_target else '✗'}"


class SelectionPart(models.TextChoices):
    """The part a contact plays in the customer's selection team."""

    NONE = "", _("Not on the selection team")
    DECISION_MAKER = "decision_maker", _("Decision maker")
    INFLUENCER = "influencer", _("Influencer")
    EVALUATOR = "evaluator", _("Evaluator")
    USER = "user", _("User")


class Contact(models.Model):
    """A person at a customer, with their part in the customer's selection team."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.PROTECT, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=120)
    title = models.CharField(_("title"), max_length=120, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("email"), blank=True)
    selection_part = models.CharField(
        _("part in the selection team"),
        max_length=20,
        choices=SelectionPart.choices,
        blank=True,
    )

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["account", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.title})" if self.title else self.name
