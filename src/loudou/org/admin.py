"""Admin for the organisation: users with their roles, branches, targets (业绩目标)."""

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loudou.core.admin import ReadOnlyAdmin, RefusalMixin, ServiceAdmin, changed_values
from loudou.core.audit import audit, snapshot
from loudou.core.errors import LoudouError
from loudou.org.access import branch_subtree_ids
from loudou.org.models import Branch, SignInAttempt, Target, User
from loudou.org.services import (
    branch_create,
    branch_update,
    target_set,
    user_create,
    user_set_role,
)

ROLE_FIELDS = ("job_role", "access_level", "branch")
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "display_name",
    "language",
    "time_zone",
    "is_active",
    "is_staff",
    "is_superuser",
)


# Django's: (None: username, password), personal info, permissions, important dates.
_DJANGO_FIELDSETS = tuple(DjangoUserAdmin.fieldsets or ())


@admin.register(User)
class UserAdmin(RefusalMixin, DjangoUserAdmin):
    """Django's user admin with loudou's profile; roles change through `user_set_role`."""

    fieldsets = (
        *_DJANGO_FIELDSETS[:2],
        (
            _("loudou"),
            {
                "fields": (
                    "display_name",
                    "branch",
                    "job_role",
                    "access_level",
                    "language",
                    "time_zone",
                )
            },
        ),
        *_DJANGO_FIELDSETS[2:],
    )
    list_display = (
        "username",
        "display_name",
        "branch",
        "job_role",
        "access_level",
        "language",
        "time_zone",
        "is_active",
        "is_staff",
    )
    list_filter = ("access_level", "branch", "job_role", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    list_select_related = ("branch", "job_role")
    ordering = ("username",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            if change:
                self._save_change(request, obj, form)
            else:
                self._save_addition(request, obj, form)
        except LoudouError as exc:
            # Raised before anything was written: the transaction of the view stays clean.
            self.refuse(request, exc)

    def _save_addition(self, request: HttpRequest, obj: Any, form: Any) -> None:
        usable = form.cleaned_data.get("set_usable_password", True)
        password = form.cleaned_data.get("password1") if usable else None
        created = user_create(
            actor=request.user,
            username=obj.username,
            password=password or secrets.token_urlsafe(32),
            check_password=False,  # the creation form has validated it
        )
        if not usable:
            # Django's own choice on the creation form; the service always sets a password.
            created.set_unusable_password()
            created.save(update_fields=["password"])
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def _save_change(self, request: HttpRequest, obj: Any, form: Any) -> None:
        before = User.objects.get(pk=obj.pk)
        roles = changed_values(form, set(ROLE_FIELDS))
        cleared = sorted(name for name, value in roles.items() if value is None)
        if cleared:
            for name in cleared:
                roles.pop(name)
                setattr(obj, name, getattr(before, name))
            self.message_user(
                request,
                gettext("A job role or branch cannot be cleared here; %(f)s kept.")
                % {"f": ", ".join(cleared)},
                messages.WARNING,
            )
        if roles:
            user_set_role(
                actor=request.user,
                user=before,
                job_role=roles["job_role"].key if roles.get("job_role") else None,
                access_level=roles.get("access_level"),
                branch=roles.get("branch"),
            )
        profile = [f for f in PROFILE_FIELDS if f in form.changed_data]
        obj.save()
        if profile:
            audit(
                "user.update",
                obj,
                actor=request.user,
                before=snapshot(before, profile),
                after=snapshot(obj, profile),
            )


class BranchForm(forms.ModelForm):
    class Meta:
        model = Branch
        fields = ("code", "name", "name_en", "parent")

    def clean_parent(self) -> Branch | None:
        parent = self.cleaned_data.get("parent")
        if (
            parent is not None
            and self.instance.pk is not None
            and parent.pk in branch_subtree_ids(self.instance.pk)
        ):
            raise forms.ValidationError(
                gettext("A branch cannot sit below itself or one of its own branches.")
            )
        return parent


@admin.register(Branch)
class BranchAdmin(ServiceAdmin):
    """Branches are created by `branch_create` and changed by `branch_update`."""

    form = BranchForm
    list_display = ("code", "name", "name_en", "parent")
    list_filter = ("parent",)
    search_fields = ("code", "name", "name_en")
    list_select_related = ("parent",)
    ordering = ("code",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        if not change:
            return branch_create(
                actor=request.user,
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
                name_en=form.cleaned_data.get("name_en") or "",
                parent=form.cleaned_data.get("parent"),
            )
        return branch_update(
            actor=request.user,
            branch=obj,
            name=form.cleaned_data["name"],
            name_en=form.cleaned_data.get("name_en") or "",
            parent=form.cleaned_data.get("parent"),
        )


class TargetForm(forms.ModelForm):
    class Meta:
        model = Target
        fields = ("user", "branch", "month", "amount", "currency")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("user") is not None and data.get("branch") is not None:
            raise forms.ValidationError(
                gettext("A target is for a person, a branch or (neither) the company, not two.")
            )
        return data


@admin.register(Target)
class TargetAdmin(ServiceAdmin):
    """Targets are set by `target_set`: a person, a branch or (neither) the company."""

    form = TargetForm
    list_display = ("month", "scope", "user", "branch", "amount", "currency")
    list_filter = ("scope", "branch", "month")
    search_fields = ("user__username", "user__display_name", "branch__name", "branch__code")
    list_select_related = ("user", "branch")
    date_hierarchy = "month"
    ordering = ("-month", "scope", "id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Whose target and which month identify it: a change of either is a new target.
        return ("scope", "user", "branch", "month") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        return target_set(
            actor=request.user,
            month=obj.month,
            amount=obj.amount,
            currency=obj.currency,
            user=obj.user,
            branch=obj.branch,
        )


@admin.register(SignInAttempt)
class SignInAttemptAdmin(ReadOnlyAdmin):
    """Password sign-ins, refused and accepted: who tried which account from where."""

    list_display = ("at", "username", "address", "succeeded")
    list_filter = ("succeeded",)
    search_fields = ("username", "address")
    date_hierarchy = "at"
