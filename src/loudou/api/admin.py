"""API tokens in the admin: read-only (secrets are never stored), revoked through the service."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from loudou.api.models import ApiToken
from loudou.api.services import token_revoke
from loudou.core.admin import ReadOnlyAdmin
from loudou.core.errors import LoudouError


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The change permission gates admin actions; the fields stay read-only.
        return obj is None and bool(request.user.is_superuser or request.user.is_staff)

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = 0
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                token_revoke(actor=request.user, token=token)
            except LoudouError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            done += 1
        self.message_user(
            request,
            ngettext("%(n)d token revoked.", "%(n)d tokens revoked.", done) % {"n": done},
            messages.SUCCESS,
        )
