"""Admin for the analytics cache: stays are derived from history, so they are read-only."""

from django.contrib import admin

from loudou.analytics.models import OpportunityStay
from loudou.core.admin import ReadOnlyAdmin


@admin.register(OpportunityStay)
class OpportunityStayAdmin(ReadOnlyAdmin):
    """Stays: rebuilt with `loudou analytics rebuild`, checked with `loudou analytics verify`."""

    list_display = ("opportunity", "stage", "entered_at", "exited_at", "outcome")
    list_filter = ("outcome", "stage__playbook", "stage")
    search_fields = ("opportunity__name",)
    list_select_related = ("opportunity", "stage")
    date_hierarchy = "entered_at"
    ordering = ("-entered_at", "-id")
