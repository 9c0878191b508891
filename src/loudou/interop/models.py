"""Which loudou record each record of an imported source became, and the imports run from the
web page."""

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExternalId(models.Model):
    """Record `external_id` of kind `kind` in source `source` (e.g. maven / opportunity /
    1C1I7A6R) was imported as the loudou object (content_type, object_id)."""

    source = models.CharField(_("source"), max_length=40)
    kind = models.CharField(_("kind"), max_length=40)
    external_id = models.CharField(_("external id"), max_length=200)
    content_type = models.ForeignKey(
        ContentType, verbose_name=_("content type"), on_delete=models.PROTECT, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(_("object id"))
    imported_at = models.DateTimeField(_("imported at"))

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        ordering = ["source", "kind", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "external_id"], name="external_id_unique_per_source"
            )
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.kind}:{self.external_id}"


class RememberedMapping(models.Model):
    """The stage mapping the last real import from `source` onto playbook `playbook_key` used:
    the next import starts from it, so a file whose probabilities moved (a deal changed stage
    but kept its old probability) does not send a stage elsewhere than last time."""

    source = models.CharField(_("source"), max_length=40)
    playbook_key = models.SlugField(_("playbook"), max_length=40)
    stages = models.JSONField(_("stage mapping"), default=dict)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("remembered stage mapping")
        verbose_name_plural = _("remembered stage mappings")
        ordering = ["source", "playbook_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "playbook_key"], name="remembered_mapping_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.playbook_key}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused")
    FAILED = "failed", _("Failed")


class ImportRun(models.Model):
    """One confirmed import from the web page: who ran it, on which files, how far it got and
    what it did (written only by `loudou.interop.runs`)."""

    actor = models.ForeignKey(
        "org.User", verbose_name=_("imported by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"))
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    format = models.CharField(_("format"), max_length=20)
    playbook = models.ForeignKey(
        "playbooks.Playbook", verbose_name=_("playbook"), on_delete=models.PROTECT, related_name="+"
    )
    files = models.JSONField(_("files"), default=list)
    options = models.JSONField(_("options"), default=dict)
    # The token of the upload the run reads (MEDIA_ROOT/imports/<upload>, deleted once imported).
    upload = models.CharField(_("upload"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    phase = models.CharField(_("phase"), max_length=80, blank=True)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    report = models.JSONField(_("report"), default=dict, encoder=DjangoJSONEncoder)
    error = models.TextField(_("error message"), blank=True)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            # One upload is imported once: a second click on "Import" (or a second tab) finds
            # the run already queued, running or done instead of importing the file twice.
            models.UniqueConstraint(
                fields=["upload"],
                condition=models.Q(status__in=["queued", "running", "done"]) & ~models.Q(upload=""),
                name="import_run_one_live_run_per_upload",
            )
        ]
        indexes = [models.Index(fields=["actor", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.format} #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.REFUSED, ImportStatus.FAILED)
