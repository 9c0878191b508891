"""The opportunity page (stage path, guidance, project work, history); the form that creates and
edits the deal itself is in `opportunity_form`.

Every section of the page posts to its own small action. An action runs one service; a plain
POST then redirects back to the section, an htmx POST gets the page re-rendered and swaps the
section in place (with the header, the stage path and the history, which the change may have
moved). A refusal re-renders the section with the message and everything the user typed.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _

from loudou.core.errors import Conflict, LoudouError, NotFound, ValidationFailed
from loudou.core.i18n import localized
from loudou.org.models import User
from loudou.pipeline.models import (
    Activity,
    ActivityKind,
    Competitor,
    CompetitorKind,
    KeyDateKind,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    ProjectApproval,
    Quote,
    QuoteKind,
    QuoteLineCategory,
    TeamMember,
)
from loudou.pipeline.page import approval_defaults, opportunity_page, people_to_staff
from loudou.pipeline.services import (
    activity_complete,
    activity_plan,
    approval_request,
    approval_withdraw,
    competitor_add,
    competitor_update,
    evidence_record,
    key_date_set,
    objection_answer,
    objection_raise,
    quote_create,
    quote_submit,
    team_member_add,
    team_member_remove,
)
from loudou.playbooks.models import Role
from loudou.web.views.base import (
    date_param,
    int_param,
    login_required,
    require_post,
    service_errors,
)

NEW_QUOTE_LINES = [c.value for c in QuoteLineCategory]


# --- the page ---------------------------------------------------------------------------


def _page_context(
    request: HttpRequest,
    pk: int,
    *,
    forms: dict[str, Any] | None = None,
    notices: dict[str, str] | None = None,
) -> dict[str, Any]:
    page = opportunity_page(request.user, pk)
    forms = dict(forms or {})
    if "approval" not in forms:
        forms["approval"] = {"values": approval_defaults(page)}
    if "quote" not in forms:
        forms["quote"] = {"rows": [{"category": c} for c in NEW_QUOTE_LINES], "values": {}}
    if "activity" not in forms and request.GET.get("plan"):
        forms["activity"] = {"values": {"subject": request.GET["plan"][:200]}}
    return {
        "page": page,
        "opp": page.opp,
        "forms": forms,
        "notices": notices or {},
        "people": people_to_staff() if page.can_work else [],
        "roles": Role.objects.all() if page.can_work else [],
        "known_competitors": Competitor.objects.order_by("name")[:300] if page.can_work else [],
        "activity_kinds": ActivityKind.choices,
        "competitor_kinds": CompetitorKind.choices,
        "key_date_kinds": KeyDateKind.choices,
        "quote_kinds": QuoteKind.choices,
        "line_categories": QuoteLineCategory.choices,
    }


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The opportunity page: header, stage path with the current and next stage's guidance,
    the project work in sections, and the history."""
    return render(request, "web/opportunity/detail.html", _page_context(request, pk))


def _visible_or_404(request: HttpRequest, pk: int) -> None:
    """Section actions answer 404 for a deal the user may not see, like the page (rule 4)."""
    if not Opportunity.objects.visible_to(request.user).filter(pk=pk).exists():
        raise NotFound(_("No such opportunity."))


def _of_deal(model: Any, row_pk: int, pk: int) -> int:
    """A row of this deal (team member, quote ...), or 404: ids in the URL never reach into
    another deal."""
    if not model.objects.filter(pk=row_pk, opportunity_id=pk).exists():
        raise NotFound(_("Not found on this opportunity."))
    return row_pk


def _section_action(
    request: HttpRequest,
    pk: int,
    section: str,
    run: Callable[[], str],
    form_extra: Callable[[], dict[str, Any]] | None = None,
) -> HttpResponse:
    """Run a section's service. Success: back to the section (htmx: re-rendered in place with
    a notice). Refusal: the section again with the message and the typed values, 400 (409 for
    a stale write)."""
    _visible_or_404(request, pk)
    try:
        notice = run()
    except LoudouError as error:
        form = {"values": request.POST, **service_errors(error)}
        if form_extra:
            form.update(form_extra())
        status = 409 if isinstance(error, Conflict) else 400
        context = _page_context(request, pk, forms={section: form})
        return render(request, "web/opportunity/detail.html", context, status=status)
    if getattr(request, "htmx", False):
        context = _page_context(request, pk, notices={section: notice})
        return render(request, "web/opportunity/detail.html", context)
    messages.success(request, notice)
    return redirect(reverse("web:opportunity-detail", args=[pk]) + f"#{_ANCHORS[section]}")


_ANCHORS = {
    "evidence": "path",
    "team": "team",
    "approval": "approval",
    "competitor": "competitors",
    "competitor_edit": "competitors",
    "key_date": "dates",
    "quote": "quotes",
    "quote_submit": "quotes",
    "objection": "objections",
    "answer": "objections",
    "activity": "activities",
    "complete": "activities",
}


# --- section actions --------------------------------------------------------------------


@login_required
@require_post
def evidence_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Record (or withdraw) the evidence that a `check` criterion holds."""
    holds = request.POST.get("satisfied", "1") != "0"

    def run() -> str:
        row = evidence_record(
            opportunity=pk,
            criterion=request.POST.get("criterion", ""),
            actor=request.user,
            note=request.POST.get("note", ""),
            satisfied=holds,
        )
        text = localized(row.criterion, "text")
        if holds:
            return _("Evidence recorded: %(c)s") % {"c": text}
        return _("Marked as not holding: %(c)s") % {"c": text}

    return _section_action(request, pk, "evidence", run)


@login_required
@require_post
def team_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Put a colleague on the project team in one of the playbook's roles."""

    def run() -> str:
        user = User.objects.filter(
            pk=int_param(request.POST.get("user")) or 0, is_active=True
        ).first()
        if user is None:
            raise ValidationFailed(_("Choose a colleague."), details={"user": _("required")})
        member = team_member_add(
            opportunity=pk, actor=request.user, user=user, role=request.POST.get("role", "")
        )
        return _("%(u)s joined the project team as %(r)s.") % {"u": user, "r": member.role}

    return _section_action(request, pk, "team", run)


@login_required
@require_post
def team_remove(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    """Take a colleague off the project team."""
    _visible_or_404(request, pk)
    _of_deal(TeamMember, member, pk)
    row = TeamMember.objects.select_related("user", "role").get(pk=member)

    def run() -> str:
        team_member_remove(member=member, actor=request.user)
        return _("%(u)s (%(r)s) left the project team.") % {"u": row.user, "r": row.role}

    return _section_action(request, pk, "team", run)


@login_required
@require_post
def approval_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the company to set the deal up as a project (立项), with what stage 4 asks for."""
    post = request.POST

    def run() -> str:
        approval_request(
            opportunity=pk,
            actor=request.user,
            requirement=post.get("requirement", ""),
            budget=post.get("budget", ""),
            timeline=post.get("timeline", ""),
            selection_team=post.get("selection_team", ""),
            competition=post.get("competition", ""),
            strategy=post.get("strategy", ""),
        )
        return _("The project set-up (立项) request was sent to your manager.")

    return _section_action(request, pk, "approval", run)


@login_required
@require_post
def approval_cancel(request: HttpRequest, pk: int, approval: int) -> HttpResponse:
    """The requester withdraws a 立项 request that is still waiting."""
    _visible_or_404(request, pk)
    _of_deal(ProjectApproval, approval, pk)

    def run() -> str:
        approval_withdraw(approval=approval, actor=request.user)
        return _("The project set-up (立项) request was withdrawn.")

    return _section_action(request, pk, "approval", run)


@login_required
@require_post
def competitor_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a competing vendor or third-party consultant in the deal."""

    def run() -> str:
        row = competitor_add(
            opportunity=pk,
            actor=request.user,
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", CompetitorKind.VENDOR),
            notes=request.POST.get("notes", ""),
        )
        return _("%(c)s recorded.") % {"c": row.competitor}

    return _section_action(request, pk, "competitor", run)


@login_required
@require_post
def competitor_edit(request: HttpRequest, pk: int, row: int) -> HttpResponse:
    """Update what we know of a competitor in the deal, or mark it out of the running."""
    _visible_or_404(request, pk)
    _of_deal(OpportunityCompetitor, row, pk)

    def run() -> str:
        found = competitor_update(
            row=row,
            actor=request.user,
            notes=request.POST.get("notes", ""),
            active=request.POST.get("active") == "1",
        )
        return _("%(c)s updated.") % {"c": found.competitor}

    return _section_action(request, pk, "competitor_edit", run, form_extra=lambda: {"row": row})


@login_required
@require_post
def key_date(request: HttpRequest, pk: int) -> HttpResponse:
    """Plan, move or mark as happened a key date (bid, negotiation, signing or another)."""
    post = request.POST

    def run() -> str:
        actual = date_param(post.get("actual"))
        if post.get("actual") and actual is None:
            raise ValidationFailed(
                _("“%(v)s” is not a date.") % {"v": post["actual"]},
                details={"actual": _("not a date")},
            )
        row = key_date_set(
            opportunity=pk,
            actor=request.user,
            kind=post.get("kind", ""),
            planned=date_param(post.get("planned")),  # type: ignore[arg-type]
            actual=actual,
            label=post.get("label", ""),
        )
        return _("Key date saved: %(d)s.") % {"d": row.label or row.get_kind_display()}

    return _section_action(request, pk, "key_date", run)


def _quote_rows(post: QueryDict) -> list[dict[str, str]]:
    """The quote form's line rows as typed (parallel lists, one entry per row)."""
    names = ("category", "description", "quantity", "unit_price", "discount_percent")
    columns = {n: post.getlist(n) for n in names}
    count = max((len(v) for v in columns.values()), default=0)
    return [
        {n: (columns[n][i] if i < len(columns[n]) else "") for n in names} for i in range(count)
    ]


def _quote_lines(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows with something typed, as the service's lines (empty rows are the form's spares)."""
    lines = []
    for row in rows:
        if not (row["description"].strip() or row["unit_price"].strip()):
            continue
        lines.append(
            {
                "category": row["category"],
                "description": row["description"],
                "quantity": row["quantity"].strip() or "1",
                "unit_price": row["unit_price"],
                "discount_percent": row["discount_percent"].strip() or "0",
            }
        )
    return lines


@login_required
@require_post
def quote_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Make the next version of the preliminary or formal quote, with its lines."""
    rows = _quote_rows(request.POST)

    def run() -> str:
        quote = quote_create(
            opportunity=pk,
            actor=request.user,
            kind=request.POST.get("kind", ""),
            lines=_quote_lines(rows),
            currency=request.POST.get("currency", ""),
            notes=request.POST.get("notes", ""),
            submit=request.POST.get("submit_now") == "1",
        )
        if quote.submitted_at:
            return _("%(q)s saved and submitted to the customer.") % {"q": quote}
        return _("%(q)s saved as a draft.") % {"q": quote}

    return _section_action(
        request, pk, "quote", run, form_extra=lambda: {"rows": rows or [{"category": "software"}]}
    )


@login_required
@require_post
def quote_line_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One more empty line for the quote form (htmx appends it)."""
    _visible_or_404(request, pk)
    return render(
        request,
        "web/opportunity/_quote_line.html",
        {
            "row": {"category": request.POST.get("category", "software")},
            "line_categories": QuoteLineCategory.choices,
        },
    )


@login_required
@require_post
def quote_send(request: HttpRequest, pk: int, quote: int) -> HttpResponse:
    """Mark a draft quote as submitted to the customer."""
    _visible_or_404(request, pk)
    _of_deal(Quote, quote, pk)

    def run() -> str:
        found = quote_submit(quote=quote, actor=request.user)
        return _("%(q)s submitted to the customer.") % {"q": found}

    return _section_action(request, pk, "quote_submit", run)


@login_required
@require_post
def objection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a customer objection to be answered."""

    def run() -> str:
        objection_raise(opportunity=pk, actor=request.user, text=request.POST.get("text", ""))
        return _("Objection queued.")

    return _section_action(request, pk, "objection", run)


@login_required
@require_post
def objection_reply(request: HttpRequest, pk: int, objection: int) -> HttpResponse:
    """Answer a queued objection."""
    _visible_or_404(request, pk)
    _of_deal(Objection, objection, pk)

    def run() -> str:
        objection_answer(
            objection=objection, actor=request.user, answer=request.POST.get("answer", "")
        )
        return _("Objection answered.")

    return _section_action(request, pk, "answer", run, form_extra=lambda: {"row": objection})


@login_required
@require_post
def activity_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Plan a call, visit, presentation, demo, meeting or task."""
    post = request.POST

    def run() -> str:
        owner = None
        if post.get("owner"):
            owner = User.objects.filter(pk=int_param(post["owner"]) or 0, is_active=True).first()
            if owner is None:
                raise ValidationFailed(_("Choose a colleague."), details={"owner": _("invalid")})
        due = date_param(post.get("due_on"))
        row = activity_plan(
            opportunity=pk,
            actor=request.user,
            kind=post.get("kind", ""),
            subject=post.get("subject", ""),
            due_on=due,  # type: ignore[arg-type]
            owner=owner,
            notes=post.get("notes", ""),
        )
        return _("Planned: %(a)s, due %(d)s.") % {"a": row, "d": f"{row.due_on:%Y-%m-%d}"}

    return _section_action(request, pk, "activity", run)


@login_required
@require_post
def activity_done(request: HttpRequest, pk: int, activity: int) -> HttpResponse:
    """Mark an activity done, with its outcome."""
    _visible_or_404(request, pk)
    _of_deal(Activity, activity, pk)

    def run() -> str:
        row = activity_complete(
            activity=activity, actor=request.user, outcome=request.POST.get("outcome", "")
        )
        return _("Done: %(a)s.") % {"a": row}

    return _section_action(request, pk, "complete", run, form_extra=lambda: {"row": activity})


urlpatterns = [
    path("opportunities/<int:pk>/", detail, name="opportunity-detail"),
    path("opportunities/<int:pk>/evidence/", evidence_add, name="opportunity-evidence"),
    path("opportunities/<int:pk>/team/", team_add, name="opportunity-team-add"),
    path(
        "opportunities/<int:pk>/team/<int:member>/remove/",
        team_remove,
        name="opportunity-team-remove",
    ),
    path("opportunities/<int:pk>/approval/", approval_add, name="opportunity-approval"),
    path(
        "opportunities/<int:pk>/approval/<int:approval>/withdraw/",
        approval_cancel,
        name="opportunity-approval-withdraw",
    ),
    path("opportunities/<int:pk>/competitors/", competitor_new, name="opportunity-competitor-add"),
    path(
        "opportunities/<int:pk>/competitors/<int:row>/",
        competitor_edit,
        name="opportunity-competitor-edit",
    ),
    path("opportunities/<int:pk>/key-dates/", key_date, name="opportunity-key-date"),
    path("opportunities/<int:pk>/quotes/", quote_new, name="opportunity-quote-add"),
    path("opportunities/<int:pk>/quotes/line/", quote_line_row, name="opportunity-quote-line"),
    path(
        "opportunities/<int:pk>/quotes/<int:quote>/submit/",
        quote_send,
        name="opportunity-quote-submit",
    ),
    path("opportunities/<int:pk>/objections/", objection_new, name="opportunity-objection-add"),
    path(
        "opportunities/<int:pk>/objections/<int:objection>/answer/",
        objection_reply,
        name="opportunity-objection-answer",
    ),
    path("opportunities/<int:pk>/activities/", activity_new, name="opportunity-activity-add"),
    path(
        "opportunities/<int:pk>/activities/<int:activity>/complete/",
        activity_done,
        name="opportunity-activity-complete",
    ),
]
