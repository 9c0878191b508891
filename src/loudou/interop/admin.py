"""Admin for imports: which foreign record became which loudou object, and the imports run from
the web page (both read-only: the importers write them)."""

from django.contrib import admin

from loudou.core.admin import ReadOnlyAdmin
from loudou.interop.models import ExternalId, ImportRun, RememberedMapping


@admin.register(ExternalId)
class ExternalIdAdmin(ReadOnlyAdmin):
    """External ids are written by the importers; re-imports look them up."""

    list_display = ("source", "kind", "external_id", "content_type", "object_id", "imported_at")
    list_filter = ("source", "kind")
    search_fields = ("external_id",)
    list_select_related = ("content_type",)
    date_hierarchy = "imported_at"
    ordering = ("source", "kind", "external_id")


@admin.register(RememberedMapping)
class RememberedMappingAdmin(ReadOnlyAdmin):
    """The stage mapping each source's last import used (the next import starts from it)."""

    list_display = ("source", "playbook_key", "updated_at")
    ordering = ("source", "playbook_key")


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    """The web page's imports: who, when, which files, how they ended (written by interop.runs)."""

    list_display = ("id", "created_at", "actor", "format", "playbook", "status", "done", "total")
    list_filter = ("status", "format")
    search_fields = ("actor__username", "error")
    list_select_related = ("actor", "playbook")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
