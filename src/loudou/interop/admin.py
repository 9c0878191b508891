"""Admin for imports: which foreign record became which loudou object (read-only)."""

from django.contrib import admin

from loudou.core.admin import ReadOnlyAdmin
from loudou.interop.models import ExternalId


@admin.register(ExternalId)
class ExternalIdAdmin(ReadOnlyAdmin):
    """External ids are written by the importers; re-imports look them up."""

    list_display = ("source", "kind", "external_id", "content_type", "object_id", "imported_at")
    list_filter = ("source", "kind")
    search_fields = ("external_id",)
    list_select_related = ("content_type",)
    date_hierarchy = "imported_at"
    ordering = ("source", "kind", "external_id")
