"""Which loudou record each record of an imported source became."""

from django.contrib.contenttypes.models import ContentType
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
