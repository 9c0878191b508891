"""Accounts: the list with pipeline totals, the account page (facts, ICP fit, qualification,
group tree, contacts, opportunities), and the forms to create and edit accounts and contacts."""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, PermissionDenied
from loudou.core.money import base_currency
from loudou.customers.models import Account, Contact, SelectionPart, SizeBand
from loudou.customers.pages import (
    AccountFilters,
    account_contact_get,
    account_filter_choices,
    account_get,
    account_page,
    account_rows,
    can_edit_account,
    icp_score,
    parent_choices,
)
from loudou.customers.selectors import icp_fit
from loudou.customers.services import (
    account_create,
    account_qualify,
    account_update,
    contact_create,
    contact_update,
)
from loudou.org.access import managed_branch_ids, manages_branch
from loudou.org.models import User
from loudou.playbooks.selectors import playbook_get
from loudou.web.views.base import (
    htmx_redirect,
    int_param,
    login_required,
    require_post,
    service_errors,
)
from loudou.web.views.exports import (
    account_opportunities_table,
    accounts_table,
    contacts_table,
    download,
    export_format,
)

PER_PAGE = 50


def _label(model: Any, name: str) -> Any:
    return model._meta.get_field(name).verbose_name


class AccountForm(forms.Form):
    """Parses what the account form sends; the rules (credit code, group cycle ...) are the
    service's, and its errors are added to the fields they concern."""

    name = forms.CharField(label=_label(Account, "name"), max_length=200)
    credit_code = forms.CharField(
        label=_label(Account, "credit_code"), max_length=40, required=False
    )
    industry = forms.ChoiceField(label=_label(Account, "industry"), required=False)
    size_band = forms.ChoiceField(label=_label(Account, "size_band"), required=False)
    employees = forms.IntegerField(label=_label(Account, "employees"), min_value=0, required=False)
    organisations_count = forms.IntegerField(
        label=_label(Account, "organisations_count"), min_value=1, required=False
    )
    revenue = forms.CharField(label=_label(Account, "revenue"), max_length=30, required=False)
    revenue_currency = forms.CharField(
        label=_label(Account, "revenue_currency"), max_length=3, required=False
    )
    parent = forms.TypedChoiceField(
        label=_label(Account, "parent"), coerce=int, empty_value=None, required=False
    )
    it_need = forms.CharField(
        label=_label(Account, "it_need"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    product_fit = forms.CharField(
        label=_label(Account, "product_fit"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    owner = forms.TypedChoiceField(
        label=_label(Account, "owner"), coerce=int, empty_value=None, required=False
    )

    def __init__(
        self,
        *args: Any,
        industries: list[Any],
        parents: list[Account],
        owners: list[User] | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        none = ("", "—")
        fields: dict[str, Any] = self.fields
        fields["industry"].choices = [none] + [(i.key, str(i)) for i in industries]
        fields["size_band"].choices = [none, *SizeBand.choices]
        fields["parent"].choices = [("", _("None (a group or a standalone company)"))] + [
            (a.pk, a.name) for a in parents
        ]
        self.fields["credit_code"].help_text = _("18 characters, e.g. 91110000100001234U.")
        self.fields["organisations_count"].help_text = _label_help("organisations_count")
        if owners is None:
            del self.fields["owner"]
        else:
            fields["owner"].choices = [(u.pk, str(u)) for u in owners]

    def service_kwargs(self) -> dict[str, Any]:
        """The cleaned values as the account services take them."""
        data = dict(self.cleaned_data)
        data.pop("owner", None)
        data["industry"] = data["industry"] or None
        data["revenue"] = (data["revenue"] or "").strip()
        currency = (data["revenue_currency"] or "").strip()
        data["revenue_currency"] = currency or (base_currency() if data["revenue"] else "")
        parent_pk = data.pop("parent")
        data["parent"] = Account.objects.filter(pk=parent_pk).first() if parent_pk else None
        return data


def _label_help(name: str) -> str:
    return str(getattr(Account._meta.get_field(name), "help_text", ""))


class ContactForm(forms.Form):
    """A contact of the customer and their part in the selection team."""

    name = forms.CharField(label=_label(Contact, "name"), max_length=120)
    title = forms.CharField(label=_label(Contact, "title"), max_length=120, required=False)
    phone = forms.CharField(label=_label(Contact, "phone"), max_length=40, required=False)
    email = forms.EmailField(label=_label(Contact, "email"), required=False)
    selection_part = forms.ChoiceField(
        label=_label(Contact, "selection_part"), choices=SelectionPart.choices, required=False
    )


# Service error details name the field they concern; a few use another name than the form.
DETAIL_FIELDS = {"currency": "revenue_currency"}


def _add_service_error(form: forms.Form, error: LoudouError) -> dict[str, Any]:
    """Show a service error on the field it concerns (or above the form) and return the
    context `service_errors` gives every page."""
    placed = False
    for key in error.details or {}:
        name = DETAIL_FIELDS.get(key, key)
        if name in form.fields:
            form.add_error(name, error.message)
            placed = True
            break
    if not placed:
        form.add_error(None, error.message)
    return service_errors(error)


# ---- the list -------------------------------------------------------------------------------


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    """The accounts the user may see: filter by target fit, industry, owner and name; sort by
    any column; each with its open pipeline."""
    filters = AccountFilters(
        target=request.GET.get("target", "") if request.GET.get("target") in ("yes", "no") else "",
        industry_id=int_param(request.GET.get("industry")),
        owner_id=int_param(request.GET.get("owner")),
        search=request.GET.get("q", "")[:100],
    )
    sort = request.GET.get("sort", "name")
    if fmt := export_format(request):
        return download(accounts_table(account_rows(request.user, filters, sort)), fmt)
    page = Paginator(account_rows(request.user, filters, sort), PER_PAGE).get_page(
        request.GET.get("page")
    )
    for account in page.object_list:
        account.icp = icp_score(account.icp_results)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("sort", None)
    return render(
        request,
        "web/accounts/list.html",
        {
            "page": page,
            "filters": filters,
            "choices": account_filter_choices(request.user),
            "sort": sort,
            "query": query.urlencode(),
            "target_links": _target_links(request),
            "currency": base_currency(),
            "shows_owners": getattr(request.user, "level", "seller") != "seller",
        },
    )


def _target_links(request: HttpRequest) -> list[tuple[str, str, str]]:
    """The "all / target / not target" switch: the same query with another `target`."""
    links = []
    for value, label in (("", _("All")), ("yes", _("Target accounts")), ("no", _("Not target"))):
        query = request.GET.copy()
        query.pop("page", None)
        query.pop("target", None)
        if value:
            query["target"] = value
        links.append((value, label, query.urlencode()))
    return links


# ---- one account ----------------------------------------------------------------------------


def _render_account(
    request: HttpRequest, account: Account, extra: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    playbook = playbook_get()
    latest = account.qualifications.order_by("-at", "-id").first()
    criteria = icp_fit(account, playbook)
    required = [c for c in criteria if c["required"]]
    context: dict[str, Any] = {
        "account": account,
        "page": account_page(request.user, account, playbook),
        "playbook": playbook,
        "icp": criteria,
        "icp_held": sum(1 for c in required if c["holds"]),
        "icp_required": len(required),
        "latest": latest,
        "can_edit": can_edit_account(request.user, account),
        "can_override": manages_branch(request.user, account.branch_id),  # type: ignore[arg-type]
        "currency": base_currency(),
        "parts": SelectionPart.choices,
    }
    context.update(extra or {})
    return render(request, "web/accounts/detail.html", context, status=status)


@login_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: its facts, ICP fit and qualifications, group tree, contacts and deals;
    `?export=csv|xlsx` gives its deals, or with `list=contacts` its contacts, as a file."""
    account = account_get(request.user, pk)
    if fmt := export_format(request):
        page = account_page(request.user, account, playbook_get())
        contacts = request.GET.get("list") == "contacts"
        return download(
            contacts_table(account, page.contacts)
            if contacts
            else account_opportunities_table(account, page.opportunities),
            fmt,
        )
    return _render_account(request, account)


@login_required
@require_post
def account_requalify(request: HttpRequest, pk: int) -> HttpResponse:
    """Qualify the account against the ICP again, or (a manager) override the verdict with a
    reason; the verdict is recorded in the qualification history."""
    account = account_get(request.user, pk)
    override = {"yes": True, "no": False}.get(request.POST.get("override", ""))
    reason = request.POST.get("reason", "")
    try:
        qualification = account_qualify(
            account=account, actor=request.user, override=override, reason=reason
        )
    except LoudouError as error:
        if isinstance(error, PermissionDenied):
            raise  # the 403 page: only managers are offered the override
        extra = service_errors(error)
        extra.update(override_value=request.POST.get("override", ""), override_reason=reason)
        return _render_account(request, account, extra, status=400)
    if qualification.is_target:
        messages.success(request, _("Qualified again: a target account."))
    else:
        messages.warning(request, _("Qualified again: not a target account."))
    return redirect(reverse("web:account-detail", args=[account.pk]) + "#icp")


# ---- create and edit ------------------------------------------------------------------------


def _owner_choices(user: Any) -> list[User] | None:
    """Managers may create an account for a seller of their branches; sellers own their own."""
    managed = managed_branch_ids(user)
    if managed == set():
        return None
    people = User.objects.filter(is_active=True).select_related("branch")
    if managed is not None:
        people = people.filter(branch_id__in=managed)
    return sorted({user, *people}, key=lambda u: (u.pk != user.pk, str(u)))


def _account_form(request: HttpRequest, account: Account | None, **kwargs: Any) -> AccountForm:
    from loudou.customers.models import Industry

    return AccountForm(
        request.POST if request.method == "POST" else None,
        industries=sorted(Industry.objects.all(), key=str),
        parents=parent_choices(request.user, account),
        owners=_owner_choices(request.user) if account is None else None,
        **kwargs,
    )


@login_required
def account_new(request: HttpRequest) -> HttpResponse:
    """A new customer account, qualified against the ICP as soon as it is saved."""
    form = _account_form(
        request,
        None,
        initial={
            "organisations_count": 1,
            "revenue_currency": base_currency(),
            "owner": request.user.pk,
            "parent": int_param(request.GET.get("parent")),
        },
    )
    context: dict[str, Any] = {"form": form, "account": None}
    if request.method == "POST" and form.is_valid():
        data = form.service_kwargs()
        owner_pk = form.cleaned_data.get("owner")
        owner = next((u for u in _owner_choices(request.user) or [] if u.pk == owner_pk), None)
        try:
            account = account_create(actor=request.user, owner=owner, **data)
        except LoudouError as error:
            context.update(_add_service_error(form, error))
        else:
            _say_verdict(request, account, created=True)
            return redirect("web:account-detail", pk=account.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "web/accounts/form.html", context, status=status)


@login_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an account's facts (the owner, a manager or an admin); it is qualified again."""
    account = account_get(request.user, pk)
    if not can_edit_account(request.user, account):
        raise PermissionDenied(_("Only the account's owner or a manager may change it."))
    initial = {name: getattr(account, name) for name in AccountForm.base_fields}
    initial.update(
        industry=account.industry.key if account.industry else "", parent=account.parent_id
    )
    form = _account_form(request, account, initial=initial)
    context: dict[str, Any] = {"form": form, "account": account}
    if request.method == "POST" and form.is_valid():
        try:
            account = account_update(account=account, actor=request.user, **form.service_kwargs())
        except LoudouError as error:
            context.update(_add_service_error(form, error))
        else:
            _say_verdict(request, account, created=False)
            return redirect("web:account-detail", pk=account.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "web/accounts/form.html", context, status=status)


def _say_verdict(request: HttpRequest, account: Account, *, created: bool) -> None:
    """Tell what was saved and the verdict of the qualification that followed."""
    if account.is_target:
        text = (
            _("Account created. It qualifies as a target account.")
            if created
            else _("Account saved. It qualifies as a target account.")
        )
        messages.success(request, text)
    else:
        text = (
            _("Account created. It does not qualify as a target account yet: see its ICP fit.")
            if created
            else _("Account saved. It does not qualify as a target account yet: see its ICP fit.")
        )
        messages.info(request, text)


# ---- contacts -------------------------------------------------------------------------------


def _render_contact_form(
    request: HttpRequest, account: Account, form: ContactForm, contact: Contact | None, **extra: Any
) -> HttpResponse:
    """In the dialog for htmx, as a page of its own without JavaScript."""
    template = (
        "web/accounts/_contact_form.html"
        if getattr(request, "htmx", False)
        else "web/accounts/contact_form.html"
    )
    context = {"account": account, "form": form, "contact": contact, **extra}
    status = 400 if form.is_bound and form.errors else 200
    return render(request, template, context, status=status)


def _require_editor(user: Any, account: Account) -> None:
    if not can_edit_account(user, account):
        raise PermissionDenied(_("Only the account's owner or a manager may change it."))


@login_required
def contact_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a person at the customer, with their part in the selection team."""
    account = account_get(request.user, pk)
    _require_editor(request.user, account)
    form = ContactForm(request.POST if request.method == "POST" else None)
    extra: dict[str, Any] = {}
    if request.method == "POST" and form.is_valid():
        try:
            contact = contact_create(account=account, actor=request.user, **form.cleaned_data)
        except LoudouError as error:
            extra = _add_service_error(form, error)
        else:
            messages.success(request, _("Contact %(name)s added.") % {"name": contact.name})
            return htmx_redirect(request, reverse("web:account-detail", args=[pk]) + "#contacts")
    return _render_contact_form(request, account, form, None, **extra)


@login_required
def contact_edit(request: HttpRequest, pk: int, contact_pk: int) -> HttpResponse:
    """Change a contact's details or their part in the selection team."""
    contact = account_contact_get(request.user, pk, contact_pk)
    account = contact.account
    _require_editor(request.user, account)
    initial = {name: getattr(contact, name) for name in ContactForm.base_fields}
    form = ContactForm(request.POST if request.method == "POST" else None, initial=initial)
    extra: dict[str, Any] = {}
    if request.method == "POST" and form.is_valid():
        try:
            contact_update(contact=contact, actor=request.user, **form.cleaned_data)
        except LoudouError as error:
            extra = _add_service_error(form, error)
        else:
            messages.success(request, _("Contact %(name)s saved.") % {"name": contact.name})
            return htmx_redirect(request, reverse("web:account-detail", args=[pk]) + "#contacts")
    return _render_contact_form(request, account, form, contact, **extra)


urlpatterns = [
    path("accounts/", account_list, name="account-list"),
    path("accounts/new/", account_new, name="account-create"),
    path("accounts/<int:pk>/", account_detail, name="account-detail"),
    path("accounts/<int:pk>/edit/", account_edit, name="account-edit"),
    path("accounts/<int:pk>/qualify/", account_requalify, name="account-qualify"),
    path("accounts/<int:pk>/contacts/new/", contact_new, name="account-contact-create"),
    path(
        "accounts/<int:pk>/contacts/<int:contact_pk>/edit/",
        contact_edit,
        name="account-contact-edit",
    ),
]
