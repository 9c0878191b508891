"""Admin for the learned win models: read-only, they are made by `loudou model train`."""

from django.contrib import admin

from loudou.core.admin import ReadOnlyAdmin
from loudou.learning.models import WinModel


@admin.register(WinModel)
class WinModelAdmin(ReadOnlyAdmin):
    """Trained models with their cutoff, counts and evaluation (see `loudou model evaluate`)."""

    list_display = [
        "playbook",
        "trained_at",
        "cutoff",
        "training_deals",
        "evaluation_deals",
        "offered",
        "active",
    ]
    list_filter = ["active", "playbook"]
