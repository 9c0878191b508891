"""The admin site, the audit log, and the admin pieces every app shares.

The admin follows DESIGN.md rule 1 like every other interface: append-only rows are view-only,
and a form that changes a record hands the changed fields to the record's service. Catalogues
without a service are saved directly but audited here.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loudou.core.audit import audit, snapshot
from loudou.core.errors import LoudouError
from loudou.core.models import AuditEvent

admin.site.site_header = "loudou 漏斗"
admin.site.site_title = "loudou 漏斗"
admin.site.index_title = "loudou 漏斗"

# The request attribute that carries a service's refusal from save_model to the response.
_REFUSED = "_loudou_admin_refused"


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: rows written by services (or append-only history) are never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """A view-only table of related rows; `select_related` names the foreign keys it shows."""

    extra = 0
    can_delete = False
    show_change_link = True
    select_related: tuple[str, ...] = ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        return queryset.select_related(*self.select_related) if self.select_related else queryset


class RefusalMixin:
    """What happens when a service refuses an admin save: an error message instead of a
    traceback; nothing is saved, nothing is logged as changed, and the page reloads with what
    the database holds."""

    def refuse(self, request: HttpRequest, exc: LoudouError) -> None:
        setattr(request, _REFUSED, exc)
        self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]

    def refused(self, request: HttpRequest) -> bool:
        """True if a service refused this request's save."""
        return getattr(request, _REFUSED, None) is not None

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if not self.refused(request):
            super().save_related(request, form, formsets, change)  # type: ignore[misc]

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        if self.refused(request):
            return []  # the inline formsets were not saved: there is nothing to describe
        return super().construct_change_message(request, form, formsets, add)  # type: ignore[misc]

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if self.refused(request):
            return None
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if self.refused(request):
            return None
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        if self.refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)  # type: ignore[misc]

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        if self.refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)  # type: ignore[misc]


class ServiceAdmin(RefusalMixin, admin.ModelAdmin):
    """An admin whose form is saved by a service: subclasses implement `save_through_service`,
    which calls the service and returns the saved object."""

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            saved = self.save_through_service(request, obj, form, change)
        except LoudouError as exc:
            self.refuse(request, exc)
            return
        if saved is not None:
            obj.pk = saved.pk
            obj._state.adding = False
            obj.refresh_from_db()


def changed_values(form: Any, allowed: set[str] | frozenset[str]) -> dict[str, Any]:
    """The cleaned values of the form fields the user changed, among `allowed`."""
    return {name: form.cleaned_data[name] for name in form.changed_data if name in allowed}


def catalogue_fields(obj: models.Model) -> list[str]:
    return [f.name for f in obj._meta.concrete_fields if not f.primary_key]


class CatalogueAdmin(admin.ModelAdmin):
    """An editable catalogue with no service of its own: every save and delete is audited."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = catalogue_fields(obj)
        before = None
        if change:
            before = snapshot(type(obj).objects.get(pk=obj.pk), fields)
        obj.save()
        audit("catalog.save", obj, actor=request.user, before=before, after=snapshot(obj, fields))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit(
                "catalog.delete",
                obj,
                actor=request.user,
                before=snapshot(obj, catalogue_fields(obj)),
            )
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


def pretty_json(value: Any) -> str:
    """JSON as a preformatted block, Chinese unescaped; empty shows the admin's dash."""
    if value in (None, "", [], {}):
        return "-"
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre style="margin:0">{}</pre>', text)


def criteria_list(results: list[dict[str, Any]]) -> str:
    """Criterion results ({text, holds, reason, required}) as a small ✓/✗ list."""
    if not results:
        return "-"
    return format_html(
        '<ul style="margin:0;padding-left:1em">{}</ul>',
        format_html_join(
            "",
            "<li>{} {}{} — {}</li>",
            (
                (
                    "✓" if row.get("holds") else "✗",
                    row.get("text") or row.get("key", ""),
                    "" if row.get("required", True) else _(" (optional)"),
                    row.get("reason", ""),
                )
                for row in results
            ),
        ),
    )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "actor", "content_type", "object_repr", "reason")
    list_filter = ("action", "content_type")
    search_fields = ("object_repr", "object_id", "action", "actor__username", "reason")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    list_select_related = ("actor", "content_type")
    fields = (
        "at",
        "action",
        "actor",
        "content_type",
        "object_id",
        "object_repr",
        "before_display",
        "after_display",
        "reason",
    )
    readonly_fields = fields

    @admin.display(description=_("before"))
    def before_display(self, obj: AuditEvent) -> str:
        return pretty_json(obj.before)

    @admin.display(description=_("after"))
    def after_display(self, obj: AuditEvent) -> str:
        return pretty_json(obj.after)
