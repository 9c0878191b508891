"""Admin for customers: accounts and contacts save through their services; the industry
catalogue is edited here and audited; qualifications are append-only."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from loudou.core.admin import (
    CatalogueAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    changed_values,
    criteria_list,
)
from loudou.core.errors import LoudouError
from loudou.customers.models import Account, AccountQualification, Contact, Industry
from loudou.customers.selectors import icp_fit
from loudou.customers.services import (
    EDITABLE,
    account_create,
    account_update,
    contact_create,
    contact_update,
    normalise_credit_code,
)
from loudou.playbooks.selectors import playbook_get

# The fields account_create/account_update accept, in form order.
EDITABLE_ORDER = (
    "name",
    "credit_code",
    "industry",
    "size_band",
    "employees",
    "revenue",
    "revenue_currency",
    "parent",
    "organisations_count",
    "it_need",
    "product_fit",
)
CONTACT_FIELDS = frozenset({"name", "title", "phone", "email", "selection_part"})


@admin.register(Industry)
class IndustryAdmin(CatalogueAdmin):
    list_display = ("key", "name_zh", "name_en")
    search_fields = ("key", "name_zh", "name_en")
    ordering = ("key",)


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = (*EDITABLE_ORDER, "owner")

    def clean_credit_code(self) -> str | None:
        # The service's own check, run early so that the error shows at the field.
        try:
            return normalise_credit_code(self.cleaned_data.get("credit_code"))
        except LoudouError as exc:
            raise forms.ValidationError(exc.message) from None


class ContactInline(ReadOnlyInline):
    model = Contact
    fields = ("name", "title", "phone", "email", "selection_part")
    readonly_fields = fields
    ordering = ("name", "id")


class QualificationInline(ReadOnlyInline):
    model = AccountQualification
    fields = ("at", "is_target", "overridden", "reason", "actor", "playbook")
    readonly_fields = fields
    ordering = ("-at", "-id")
    select_related = ("actor", "playbook")


@admin.register(Account)
class AccountAdmin(ServiceAdmin):
    """Accounts are created by `account_create` and changed by `account_update` (which
    re-qualify them against the ICP); owner, branch and the verdict are not edited here."""

    form = AccountForm
    list_display = (
        "name",
        "credit_code",
        "industry",
        "size_band",
        "owner",
        "branch",
        "parent",
        "is_target",
        "updated_at",
    )
    list_filter = ("is_target", "industry", "size_band", "branch")
    search_fields = ("name", "credit_code", "owner__username", "owner__display_name")
    list_select_related = ("industry", "owner", "branch", "parent")
    date_hierarchy = "created_at"
    ordering = ("name", "id")
    autocomplete_fields = ("parent",)
    inlines = (ContactInline, QualificationInline)
    editable_fields = EDITABLE_ORDER
    computed_fields = ("branch", "is_target", "icp_fit_display", "created_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return (*self.editable_fields, "owner")
        return (*self.editable_fields, "owner", *self.computed_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # No service changes an account's owner (and with it the branch) yet.
        return ("owner", *self.computed_fields)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.inlines if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "owner" in form.base_fields:
            form.base_fields["owner"].required = False
            form.base_fields["owner"].help_text = _("Empty: you.")
        return form

    @admin.display(description=_("ICP fit"))
    def icp_fit_display(self, obj: Account) -> str:
        try:
            playbook = playbook_get()
        except LoudouError:
            return "-"
        return criteria_list(icp_fit(obj, playbook))

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        if not change:
            data = {name: form.cleaned_data[name] for name in self.editable_fields}
            owner = form.cleaned_data.get("owner") or request.user
            return account_create(actor=request.user, owner=owner, **data)
        changes = changed_values(form, EDITABLE)
        if not changes:
            return obj
        return account_update(account=obj, actor=request.user, **changes)


@admin.register(AccountQualification)
class AccountQualificationAdmin(ReadOnlyAdmin):
    list_display = ("account", "at", "is_target", "overridden", "playbook", "actor")
    list_filter = ("is_target", "overridden", "playbook")
    search_fields = ("account__name", "reason", "actor__username")
    list_select_related = ("account", "playbook", "actor")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    fields = (
        "account",
        "playbook",
        "at",
        "is_target",
        "overridden",
        "reason",
        "actor",
        "results_display",
    )
    readonly_fields = fields

    @admin.display(description=_("criteria results"))
    def results_display(self, obj: AccountQualification) -> str:
        return criteria_list(obj.results)


@admin.register(Contact)
class ContactAdmin(ServiceAdmin):
    """Contacts are created by `contact_create` and changed by `contact_update`."""

    list_display = ("name", "title", "account", "selection_part", "phone", "email")
    list_filter = ("selection_part",)
    search_fields = ("name", "title", "email", "phone", "account__name")
    list_select_related = ("account",)
    ordering = ("account__name", "name", "id")
    autocomplete_fields = ("account",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # contact_update does not move a contact to another account.
        return ("account",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        if not change:
            data = {name: form.cleaned_data.get(name) or "" for name in CONTACT_FIELDS}
            return contact_create(account=obj.account, actor=request.user, **data)
        changes = changed_values(form, CONTACT_FIELDS)
        if not changes:
            return obj
        # The service snapshots "before" from the instance it gets: give it the stored one.
        return contact_update(contact=Contact.objects.get(pk=obj.pk), actor=request.user, **changes)
