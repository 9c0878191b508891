"""Activities: calls, visits, presentations, demos, meetings and tasks, planned and done."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from loudou.core.visibility import VisibleQuerySet


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    VISIT = "visit", _("Visit")
    PRESENTATION = "presentation", _("Presentation")
    DEMO = "demo", _("Demo")
    MEETING = "meeting", _("Meeting")
    TASK = "task", _("Task")


class ActivityQuerySet(VisibleQuerySet):
    owner_field = "opportunity__owner"
    branch_field = "opportunity__branch"
    team_path = "opportunity__team_members__user"


class Activity(models.Model):
    """A piece of work on an opportunity, planned for a date and marked done when done."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="activities",
    )
    kind = models.CharField(_("kind"), max_length=14, choices=ActivityKind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    due_on = models.DateField(_("due on"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    created_at = models.DateTimeField(_("created at"))

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["due_on", "id"]
        indexes = [models.Index(fields=["opportunity", "due_on"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"
