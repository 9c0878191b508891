"""The selling organisation: branches (分公司/团队), users with their roles, targets (业绩目标)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.models import AppendOnlyModel
from loudou.core.money import money_field


class Branch(models.Model):
    """A branch or team of our company; branches form a tree (company → region → branch → team)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent branch"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class AccessLevel(models.TextChoices):
    """What a user may see and approve; independent of the job role they play on project teams."""

    SELLER = "seller", _("Seller")
    MANAGER = "manager", _("Manager")
    EXECUTIVE = "executive", _("Executive")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person of our company: a job role from the playbook roles, an access level, a branch."""

    display_name = models.CharField(_("display name"), max_length=120, blank=True)
    branch = models.ForeignKey(
        Branch,
        verbose_name=_("branch"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    job_role = models.ForeignKey(
        "playbooks.Role",
        verbose_name=_("job role"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    access_level = models.CharField(
        _("access level"), max_length=16, choices=AccessLevel.choices, default=AccessLevel.SELLER
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=[("", _("Browser language")), ("zh-hans", "简体中文"), ("en", "English")],
        default="",
        blank=True,
        help_text=_("Empty: follow the browser's language."),
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def level(self) -> str:
        """The effective access level: superusers are administrators."""
        return AccessLevel.ADMIN if self.is_superuser else self.access_level

    @property
    def sees_everything(self) -> bool:
        """Executives and administrators see every branch."""
        return self.level in (AccessLevel.EXECUTIVE, AccessLevel.ADMIN)


class TargetScope(models.TextChoices):
    USER = "user", _("Person")
    BRANCH = "branch", _("Branch")
    COMPANY = "company", _("Company")


class Target(models.Model):
    """业绩目标: the bookings a person, a branch or the company should win in one month."""

    scope = models.CharField(_("scope"), max_length=10, choices=TargetScope.choices)
    user = models.ForeignKey(
        User, verbose_name=_("person"), on_delete=models.CASCADE, null=True, blank=True
    )
    branch = models.ForeignKey(
        Branch, verbose_name=_("branch"), on_delete=models.CASCADE, null=True, blank=True
    )
    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    amount = money_field(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["month", "scope", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="user", user__isnull=False, branch__isnull=True)
                    | Q(scope="branch", user__isnull=True, branch__isnull=False)
                    | Q(scope="company", user__isnull=True, branch__isnull=True)
                ),
                name="target_scope_matches_subject",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="target_amount_not_negative"),
            models.UniqueConstraint(
                fields=["user", "month"],
                condition=Q(scope="user"),
                name="target_unique_user_month",
            ),
            models.UniqueConstraint(
                fields=["branch", "month"],
                condition=Q(scope="branch"),
                name="target_unique_branch_month",
            ),
            models.UniqueConstraint(
                fields=["month"],
                condition=Q(scope="company"),
                name="target_unique_company_month",
            ),
        ]

    def __str__(self) -> str:
        subject = self.user or self.branch or _("Company")
        return f"{subject} {self.month:%Y-%m} {self.amount} {self.currency}"


class SignInAttempt(AppendOnlyModel):
    """One password sign-in, refused or accepted: what the sign-in throttle counts
    (org/signin.py), and a record of who tried which account from where."""

    at = models.DateTimeField(_("at"), db_index=True)
    username = models.CharField(_("user name tried"), max_length=150)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    succeeded = models.BooleanField(_("succeeded"))

    class Meta:
        verbose_name = _("sign-in attempt")
        verbose_name_plural = _("sign-in attempts")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["username", "at"], name="signin_by_username"),
            models.Index(fields=["address", "at"], name="signin_by_address"),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.succeeded else "refused"
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.address or '-'} {outcome}"
