"""Playbooks are data: ordered stages, their criteria, owner roles and main work."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.i18n import localized


class Role(models.Model):
    """A role people play on a project team (客户经理, 售前顾问 ...), shared by all playbooks."""

    key = models.SlugField(_("key"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=80)
    name_en = models.CharField(_("English name"), max_length=80)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["order", "key"]

    def __str__(self) -> str:
        return localized(self, "name")


class Playbook(models.Model):
    """One version of a sales process; loading a changed file adds a version, never edits one."""

    key = models.SlugField(_("key"), max_length=40)
    version = models.PositiveIntegerField(_("version"))
    name_zh = models.CharField(_("Chinese name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120)
    description_zh = models.TextField(_("Chinese description"), blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    is_default = models.BooleanField(_("default playbook"), default=False)
    is_current = models.BooleanField(
        _("current version"), default=True, help_text=_("New opportunities use this version.")
    )
    is_builtin = models.BooleanField(_("built in"), default=False)
    source_digest = models.CharField(_("source digest"), max_length=64)
    source_name = models.CharField(_("source file"), max_length=200, blank=True)
    loaded_at = models.DateTimeField(_("loaded at"))

    class Meta:
        verbose_name = _("playbook")
        verbose_name_plural = _("playbooks")
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="playbook_key_version_unique"),
            models.UniqueConstraint(
                fields=["key"], condition=Q(is_current=True), name="playbook_one_current_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{localized(self, 'name')} ({self.key} v{self.version})"

    def ordered_stages(self) -> list["Stage"]:
        """The stages in funnel order, with criteria and owners.

        A playbook version never changes once loaded (a changed file makes a new version), so
        the stages are cached per process, keyed by the version's id, digest and load time.
        """
        key = (self.pk, self.source_digest, self.loaded_at)
        cached = _STAGE_CACHE.get(key)
        if cached is None:
            cached = list(self.stages.order_by("order").prefetch_related("criteria", "owners"))
            for stage in cached:
                stage.playbook = self
            if len(_STAGE_CACHE) > 64:
                _STAGE_CACHE.clear()
            _STAGE_CACHE[key] = cached
        return cached


_STAGE_CACHE: dict[tuple, list["Stage"]] = {}


class StageKind(models.TextChoices):
    ACCOUNT = "account", _("Qualifies accounts")
    OPEN = "open", _("Open opportunity")
    WON = "won", _("Won")


class ForecastCategory(models.TextChoices):
    PIPELINE = "pipeline", _("Pipeline")
    BEST_CASE = "best_case", _("Best case")
    COMMIT = "commit", _("Commit")
    CLOSED = "closed", _("Closed")
    OMITTED = "omitted", _("Omitted")


class Stage(models.Model):
    """One step of the funnel: its definition, default probability, owners and criteria."""

    playbook = models.ForeignKey(
        Playbook, verbose_name=_("playbook"), on_delete=models.PROTECT, related_name="stages"
    )
    key = models.SlugField(_("key"), max_length=40)
    order = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=10, choices=StageKind.choices)
    name_zh = models.CharField(_("Chinese name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120)
    definition_zh = models.TextField(_("Chinese definition"), blank=True)
    definition_en = models.TextField(_("English definition"), blank=True)
    probability = models.PositiveSmallIntegerField(_("default probability (%)"), default=0)
    forecast_category = models.CharField(
        _("forecast category"),
        max_length=12,
        choices=ForecastCategory.choices,
        default=ForecastCategory.PIPELINE,
    )
    max_days = models.PositiveIntegerField(
        _("stall after days"),
        null=True,
        blank=True,
        help_text=_(
            "An open deal longer than this in the stage is stalled; empty: historical p80."
        ),
    )
    main_work = models.JSONField(
        _("main work"), default=list, blank=True, help_text=_("List of {zh, en} items.")
    )
    owners = models.ManyToManyField(
        Role, verbose_name=_("owner roles"), blank=True, related_name="owned_stages"
    )

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["playbook", "order"]
        constraints = [
            models.UniqueConstraint(fields=["playbook", "key"], name="stage_key_unique"),
            models.UniqueConstraint(fields=["playbook", "order"], name="stage_order_unique"),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="stage_probability_max_100"
            ),
        ]

    def __str__(self) -> str:
        return localized(self, "name")

    @property
    def name(self) -> str:
        return localized(self, "name")

    @property
    def definition(self) -> str:
        return localized(self, "definition")


class CriterionKind(models.TextChoices):
    CHECK = "check", _("Checked with evidence")
    FIELD = "field", _("Condition on the record")
    APPROVAL = "approval", _("Granted approval (立项)")


class Criterion(models.Model):
    """A condition that must hold to enter a stage (for stage 1: to qualify an account)."""

    stage = models.ForeignKey(
        Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="criteria"
    )
    key = models.SlugField(_("key"), max_length=60)
    order = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=10, choices=CriterionKind.choices)
    condition = models.CharField(_("condition"), max_length=200, blank=True)
    text_zh = models.CharField(_("Chinese text"), max_length=300)
    text_en = models.CharField(_("English text"), max_length=300)
    required = models.BooleanField(_("required"), default=True)

    class Meta:
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")
        ordering = ["stage", "order"]
        constraints = [
            models.UniqueConstraint(fields=["stage", "key"], name="criterion_key_unique"),
        ]

    def __str__(self) -> str:
        return localized(self, "text")

    @property
    def text(self) -> str:
        return localized(self, "text")
