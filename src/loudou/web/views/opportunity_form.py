"""The opportunity form: create a deal (its first stage's criteria asked for on the form) and
edit its own fields with the version the user saw (a stale save is a conflict that keeps the
input). The page around the deal is in `opportunity`."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from loudou.core.errors import Conflict, LoudouError, NotFound, ValidationFailed
from loudou.customers.models import Account
from loudou.org.access import managed_branch_ids
from loudou.org.models import AccessLevel, User
from loudou.pipeline.models import Opportunity
from loudou.pipeline.services import opportunity_create, opportunity_update
from loudou.playbooks.models import CriterionKind, Playbook, StageKind
from loudou.playbooks.selectors import playbook_get
from loudou.web.views.base import date_param, int_param, login_required, service_errors


def _owner_choices(user: Any) -> list[User]:
    """Whom the user may create deals for: themselves, or (managers) the people they manage."""
    if user.level == AccessLevel.SELLER:
        return []
    managed = managed_branch_ids(user)
    qs = User.objects.filter(is_active=True, branch__isnull=False).select_related("branch")
    if managed is not None:
        qs = qs.filter(branch_id__in=managed)
    return list(qs.order_by("branch__code", "username"))


def _chosen_playbook(key: str | None) -> Playbook:
    try:
        return playbook_get(key or None)
    except NotFound:
        return playbook_get(None)


def _create_context(request: HttpRequest, values: Any, **extra: Any) -> dict[str, Any]:
    playbook = _chosen_playbook(values.get("playbook"))
    first = next(s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN)
    gate = [
        {
            "criterion": c,
            "field": f"evidence.{first.key}.{c.key}",
            "typed": values.get(f"evidence.{first.key}.{c.key}", ""),
            "takes_evidence": c.kind == CriterionKind.CHECK,
        }
        for c in sorted(first.criteria.all(), key=lambda c: c.order)
    ]
    context = {
        "values": values,
        "accounts": Account.objects.visible_to(request.user).only("pk", "name").order_by("name"),
        "playbooks": Playbook.objects.filter(is_current=True).order_by("-is_default", "key"),
        "playbook": playbook,
        "first_stage": first,
        "gate": gate,
        "owners": _owner_choices(request.user),
        "is_manager": getattr(request.user, "level", AccessLevel.SELLER) != AccessLevel.SELLER,
        "field_errors": {},
    }
    context.update(extra)
    return context


def _create_from(request: HttpRequest) -> Opportunity:
    post = request.POST
    account = (
        Account.objects.visible_to(request.user)
        .filter(pk=int_param(post.get("account")) or 0)
        .first()
    )
    if account is None:
        raise ValidationFailed(
            _("Choose the customer account (one you can see)."),
            details={"account": _("required")},
        )
    owner = None
    if post.get("owner"):
        owner = next((u for u in _owner_choices(request.user) if str(u.pk) == post["owner"]), None)
        if owner is None:
            raise ValidationFailed(_("Choose an owner you manage."), details={"owner": "invalid"})
    playbook = _chosen_playbook(post.get("playbook"))
    return opportunity_create(
        actor=request.user,
        account=account,
        name=post.get("name", ""),
        amount=post.get("amount", ""),
        close_date=date_param(post.get("close_date")),  # type: ignore[arg-type]
        currency=post.get("currency", ""),
        owner=owner,
        playbook=playbook,
        need=post.get("need", ""),
        source=post.get("source", ""),
        budget=post.get("budget", ""),
        probability_override=post.get("probability_override", ""),
        evidence={
            name.removeprefix("evidence."): post.get(name, "").strip()
            for name in post
            if name.startswith("evidence.") and post.get(name, "").strip()
        },
        override_reason=post.get("override_reason", ""),
    )


@login_required
def create(request: HttpRequest) -> HttpResponse:
    """The new-opportunity form (`?account=<pk>` preselects the account); it opens the deal at
    the playbook's first stage through that stage's gate."""
    if request.method != "POST":
        values: dict[str, Any] = {
            "currency": settings.LOUDOU_BASE_CURRENCY,
            **{k: v for k, v in request.GET.items()},
        }
        return render(request, "web/opportunity/form.html", _create_context(request, values))
    try:
        opp = _create_from(request)
    except LoudouError as error:
        context = _create_context(request, request.POST, **service_errors(error))
        return render(request, "web/opportunity/form.html", context, status=400)
    messages.success(request, _("Opportunity “%(n)s” created.") % {"n": opp.name})
    return redirect("web:opportunity-detail", pk=opp.pk)


EDITABLE = ("name", "need", "amount", "currency", "budget", "close_date", "source")


def _edit_values(opp: Opportunity) -> dict[str, Any]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, Decimal):
            return f"{value:f}"
        return str(value)

    values = {name: text(getattr(opp, name)) for name in EDITABLE}
    values["probability_override"] = text(opp.probability_override)
    values["version"] = str(opp.version)
    return values


@login_required
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the deal's name, need, amount, currency, budget, close date, probability or source;
    a stale version (someone else saved meanwhile) is refused and the typed values kept."""
    opp = (
        Opportunity.objects.visible_to(request.user)
        .select_related("account", "stage", "owner")
        .filter(pk=pk)
        .first()
    )
    if opp is None:
        raise NotFound(_("No such opportunity."))
    context: dict[str, Any] = {"opp": opp, "field_errors": {}}
    if request.method != "POST":
        context["values"] = _edit_values(opp)
        return render(request, "web/opportunity/edit.html", context)
    post = request.POST
    try:
        opportunity_update(
            opportunity=pk,
            actor=request.user,
            expected_version=int_param(post.get("version")),
            reason=post.get("reason", ""),
            name=post.get("name", ""),
            need=post.get("need", ""),
            amount=post.get("amount", ""),
            currency=post.get("currency", ""),
            budget=post.get("budget", ""),
            close_date=date_param(post.get("close_date")),
            probability_override=post.get("probability_override", ""),
            source=post.get("source", ""),
        )
    except LoudouError as error:
        opp.refresh_from_db()
        context.update(values=post, saved=_edit_values(opp), **service_errors(error))
        return render(
            request,
            "web/opportunity/edit.html",
            context,
            status=409 if isinstance(error, Conflict) else 400,
        )
    messages.success(request, _("Changes to “%(n)s” saved.") % {"n": post.get("name", "")})
    return redirect("web:opportunity-detail", pk=pk)


urlpatterns = [
    path("opportunities/new/", create, name="opportunity-create"),
    path("opportunities/<int:pk>/edit/", edit, name="opportunity-edit"),
]
