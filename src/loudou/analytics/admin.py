"""Admin for the analytics caches: stays and state spans are derived from history, so they are
read-only."""

from django.contrib import admin

from loudou.analytics.models import OpportunityStay, StateSpan
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


@admin.register(StateSpan)
class StateSpanAdmin(ReadOnlyAdmin):
    """State spans: rebuilt with `loudou analytics rebuild`, checked with `loudou analytics
    verify`."""

    list_display = ("opportunity", "stage", "status", "amount", "valid_from", "valid_to")
    list_filter = ("status", "playbook")
    search_fields = ("opportunity__name",)
    list_select_related = ("opportunity", "stage")
    ordering = ("-valid_from", "-id")
