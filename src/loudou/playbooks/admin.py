"""Admin for playbooks: read-only, since playbooks are loaded from YAML (`loudou playbook load`)
and a changed file makes a new version instead of editing one."""

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from loudou.core.admin import ReadOnlyAdmin, ReadOnlyInline, pretty_json
from loudou.playbooks.models import Criterion, Playbook, Role, Stage


class StageInline(ReadOnlyInline):
    model = Stage
    fields = ("order", "key", "kind", "name_zh", "name_en", "probability", "max_days")
    readonly_fields = fields
    ordering = ("order",)


class CriterionInline(ReadOnlyInline):
    model = Criterion
    fields = ("order", "key", "kind", "condition", "text_zh", "text_en", "required")
    readonly_fields = fields
    ordering = ("order",)


@admin.register(Playbook)
class PlaybookAdmin(ReadOnlyAdmin):
    list_display = (
        "key",
        "version",
        "name_zh",
        "name_en",
        "is_default",
        "is_current",
        "is_builtin",
        "loaded_at",
    )
    list_filter = ("is_current", "is_default", "is_builtin", "key")
    search_fields = ("key", "name_zh", "name_en", "source_name")
    date_hierarchy = "loaded_at"
    ordering = ("key", "-version")
    inlines = (StageInline,)


@admin.register(Stage)
class StageAdmin(ReadOnlyAdmin):
    list_display = (
        "playbook",
        "order",
        "key",
        "name_zh",
        "name_en",
        "kind",
        "probability",
        "forecast_category",
        "max_days",
    )
    list_filter = ("kind", "forecast_category", "playbook")
    search_fields = ("key", "name_zh", "name_en", "playbook__key")
    list_select_related = ("playbook",)
    ordering = ("playbook__key", "-playbook__version", "order")
    fields = (
        "playbook",
        "key",
        "order",
        "kind",
        "name_zh",
        "name_en",
        "definition_zh",
        "definition_en",
        "probability",
        "forecast_category",
        "max_days",
        "owners_display",
        "main_work_display",
    )
    readonly_fields = fields
    inlines = (CriterionInline,)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).prefetch_related("owners")

    @admin.display(description=_("owner roles"))
    def owners_display(self, obj: Stage) -> str:
        return ", ".join(str(role) for role in obj.owners.all()) or "-"

    @admin.display(description=_("main work"))
    def main_work_display(self, obj: Stage) -> Any:
        return pretty_json(obj.main_work)


@admin.register(Criterion)
class CriterionAdmin(ReadOnlyAdmin):
    list_display = ("stage", "order", "key", "kind", "condition", "text_zh", "required")
    list_filter = ("kind", "required", "stage__playbook")
    search_fields = ("key", "text_zh", "text_en", "condition")
    list_select_related = ("stage", "stage__playbook")
    ordering = ("stage__playbook__key", "-stage__playbook__version", "stage__order", "order")


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ("order", "key", "name_zh", "name_en")
    search_fields = ("key", "name_zh", "name_en")
    ordering = ("order", "key")
