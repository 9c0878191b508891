"""The work around an opportunity, nested under it: 立项 requests and decisions, project team,
competitors and consultants, key dates, objections, quotes and activities; and every activity
you may see in one long list."""

from typing import Any, Literal

from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.pagination import Ordering, Paging, asc, desc, page_or_cursor
from loudou.api.schemas.common import CURSOR, PAGE, PAGE_SIZE, Day, Id
from loudou.api.schemas.project import (
    ActivityCursorPage,
    ActivityIn,
    ActivityKind,
    ActivityOut,
    ActivityPage,
    AnswerIn,
    ApprovalIn,
    ApprovalOut,
    CompleteIn,
    DealCompetitorIn,
    DealCompetitorOut,
    DealCompetitorPatch,
    DecisionIn,
    KeyDateIn,
    KeyDateOut,
    ObjectionIn,
    ObjectionOut,
    QuoteIn,
    QuoteOut,
    TeamMemberIn,
    TeamMemberOut,
    activity_out,
    approval_out,
    deal_competitor_out,
    key_date_out,
    objection_out,
    quote_out,
    team_member_out,
)
from loudou.api.selectors import user_by_id
from loudou.core.errors import NotFound
from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    Activity,
    KeyDate,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    ProjectApproval,
    Quote,
    TeamMember,
)
from loudou.pipeline.selectors import approvals_waiting_for, opportunity_get

router = Router(tags=["project work"])
inbox = Router(tags=["project work"])
activities = Router(tags=["project work"])


def _child(user: Any, opportunity_id: int, model: Any, pk: int, message: str) -> Any:
    """A row of `model` that belongs to an opportunity `user` may see, or NotFound."""
    opportunity_get(user, opportunity_id)
    found = model.objects.filter(pk=pk, opportunity_id=opportunity_id).first()
    if found is None:
        raise NotFound(message)
    return found


def _approvals() -> Any:
    return ProjectApproval.objects.select_related(
        "opportunity", "opportunity__account", "requested_by", "decided_by"
    )


# --- 立项 ---------------------------------------------------------------------------------------


@inbox.get("", response=list[ApprovalOut], summary="立项 requests waiting for your decision")
def approval_inbox(request: ApiRequest) -> Any:
    """The pending project set-up requests of the branches you manage, oldest first (never your
    own); empty for sellers."""
    return [
        approval_out(a) for a in approvals_waiting_for(request.auth).select_related("decided_by")
    ]


@router.get("/{opportunity_id}/approvals", response=list[ApprovalOut], summary="立项 requests")
def approval_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """The opportunity's project set-up requests, newest first."""
    opp = opportunity_get(request.auth, opportunity_id)
    return [approval_out(a) for a in _approvals().filter(opportunity=opp)]


@router.post("/{opportunity_id}/approvals", response={201: ApprovalOut}, summary="Request 立项")
def approval_new(request: ApiRequest, opportunity_id: Id, payload: ApprovalIn) -> Any:
    """Ask for the project set-up with the requirement, budget, timeline and selection team."""
    approval = ps.approval_request(
        opportunity=opportunity_id, actor=request.auth, **payload.model_dump()
    )
    return Status(201, approval_out(_approvals().get(pk=approval.pk)))


@router.post(
    "/{opportunity_id}/approvals/{approval_id}/withdraw",
    response=ApprovalOut,
    summary="Withdraw a 立项 request",
)
def approval_withdraw(request: ApiRequest, opportunity_id: Id, approval_id: Id) -> Any:
    """The requester withdraws a request still waiting."""
    _child(request.auth, opportunity_id, ProjectApproval, approval_id, _("No such request."))
    ps.approval_withdraw(approval=approval_id, actor=request.auth)
    return approval_out(_approvals().get(pk=approval_id))


@router.post(
    "/{opportunity_id}/approvals/{approval_id}/decision",
    response=ApprovalOut,
    summary="Approve or reject a 立项 request",
)
def approval_decision(
    request: ApiRequest, opportunity_id: Id, approval_id: Id, payload: DecisionIn
) -> Any:
    """A manager of the seller's branch decides; a rejection needs a comment."""
    _child(request.auth, opportunity_id, ProjectApproval, approval_id, _("No such request."))
    ps.approval_decide(approval=approval_id, actor=request.auth, **payload.model_dump())
    return approval_out(_approvals().get(pk=approval_id))


# --- project team -------------------------------------------------------------------------------


@router.get("/{opportunity_id}/team", response=list[TeamMemberOut], summary="Project team")
def team_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """The people of ours on the project team, by role."""
    opp = opportunity_get(request.auth, opportunity_id)
    rows = TeamMember.objects.filter(opportunity=opp).select_related("user", "role")
    return [team_member_out(m) for m in rows]


@router.post(
    "/{opportunity_id}/team", response={201: TeamMemberOut}, summary="Add to the project team"
)
def team_add(request: ApiRequest, opportunity_id: Id, payload: TeamMemberIn) -> Any:
    """Put a colleague on the team in a role of the playbook (see /roles)."""
    user = user_by_id(payload.user_id, field="user_id")
    member = ps.team_member_add(
        opportunity=opportunity_id, actor=request.auth, user=user, role=payload.role
    )
    return Status(201, team_member_out(member))


@router.delete(
    "/{opportunity_id}/team/{member_id}",
    response={204: None},
    summary="Take off the project team",
)
def team_remove(request: ApiRequest, opportunity_id: Id, member_id: Id) -> Any:
    """Take a colleague off the project team."""
    _child(request.auth, opportunity_id, TeamMember, member_id, _("No such team member."))
    ps.team_member_remove(member=member_id, actor=request.auth)
    return HttpResponse(status=204)


# --- competitors and consultants --------------------------------------------------------------


@router.get(
    "/{opportunity_id}/competitors",
    response=list[DealCompetitorOut],
    summary="Competitors and consultants in the deal",
)
def competitor_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """The competing vendors and third-party consultants involved."""
    opp = opportunity_get(request.auth, opportunity_id)
    rows = OpportunityCompetitor.objects.filter(opportunity=opp).select_related("competitor")
    return [deal_competitor_out(r) for r in rows]


@router.post(
    "/{opportunity_id}/competitors",
    response={201: DealCompetitorOut},
    summary="Record a competitor or consultant",
)
def competitor_new(request: ApiRequest, opportunity_id: Id, payload: DealCompetitorIn) -> Any:
    """Record a competing vendor or consultant (by name; a new name joins the catalogue)."""
    row = ps.competitor_add(opportunity=opportunity_id, actor=request.auth, **payload.model_dump())
    return Status(201, deal_competitor_out(row))


@router.patch(
    "/{opportunity_id}/competitors/{row_id}",
    response=DealCompetitorOut,
    summary="Update a competitor in the deal",
)
def competitor_change(
    request: ApiRequest, opportunity_id: Id, row_id: Id, payload: DealCompetitorPatch
) -> Any:
    """Update what we know of its position, or mark it out of the running."""
    _child(request.auth, opportunity_id, OpportunityCompetitor, row_id, _("No such competitor."))
    row = ps.competitor_update(row=row_id, actor=request.auth, **payload.model_dump())
    return deal_competitor_out(row)


# --- key dates ----------------------------------------------------------------------------------


@router.get("/{opportunity_id}/key-dates", response=list[KeyDateOut], summary="Key dates")
def key_date_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """Bid, negotiation, signing and other milestones, by planned date."""
    opp = opportunity_get(request.auth, opportunity_id)
    return [key_date_out(k) for k in KeyDate.objects.filter(opportunity=opp)]


@router.post("/{opportunity_id}/key-dates", response=KeyDateOut, summary="Plan or move a key date")
def key_date_put(request: ApiRequest, opportunity_id: Id, payload: KeyDateIn) -> Any:
    """Set the bid, negotiation or signing date (one of each; sending it again moves it), or
    add another (custom, with a label)."""
    row = ps.key_date_set(opportunity=opportunity_id, actor=request.auth, **payload.model_dump())
    return key_date_out(row)


# --- objections ---------------------------------------------------------------------------------


@router.get("/{opportunity_id}/objections", response=list[ObjectionOut], summary="Objections")
def objection_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """The customer's objections, queued and answered, oldest first."""
    opp = opportunity_get(request.auth, opportunity_id)
    rows = Objection.objects.filter(opportunity=opp).select_related("raised_by", "answered_by")
    return [objection_out(o) for o in rows]


@router.post(
    "/{opportunity_id}/objections", response={201: ObjectionOut}, summary="Queue an objection"
)
def objection_new(request: ApiRequest, opportunity_id: Id, payload: ObjectionIn) -> Any:
    """Queue a customer objection to be answered."""
    row = ps.objection_raise(opportunity=opportunity_id, actor=request.auth, text=payload.text)
    return Status(201, objection_out(row))


@router.post(
    "/{opportunity_id}/objections/{objection_id}/answer",
    response=ObjectionOut,
    summary="Answer an objection",
)
def objection_reply(
    request: ApiRequest, opportunity_id: Id, objection_id: Id, payload: AnswerIn
) -> Any:
    """Answer a queued objection."""
    _child(request.auth, opportunity_id, Objection, objection_id, _("No such objection."))
    row = ps.objection_answer(objection=objection_id, actor=request.auth, answer=payload.answer)
    return objection_out(row)


# --- quotes -------------------------------------------------------------------------------------


def _quotes() -> Any:
    return Quote.objects.select_related("created_by").prefetch_related("lines")


@router.get("/{opportunity_id}/quotes", response=list[QuoteOut], summary="Quotes")
def quote_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """Every version of the preliminary and formal quotes, with lines and totals."""
    opp = opportunity_get(request.auth, opportunity_id)
    return [quote_out(q) for q in _quotes().filter(opportunity=opp)]


@router.post("/{opportunity_id}/quotes", response={201: QuoteOut}, summary="Make a quote")
def quote_new(request: ApiRequest, opportunity_id: Id, payload: QuoteIn) -> Any:
    """Make the next version of the preliminary or formal quote; `submit` sends it at once."""
    data = payload.model_dump()
    quote = ps.quote_create(
        opportunity=opportunity_id,
        actor=request.auth,
        kind=data["kind"],
        lines=data["lines"],
        currency=data["currency"] or "",
        notes=data["notes"],
        submit=data["submit"],
    )
    return Status(201, quote_out(_quotes().get(pk=quote.pk)))


@router.post(
    "/{opportunity_id}/quotes/{quote_id}/submit", response=QuoteOut, summary="Submit a quote"
)
def quote_send(request: ApiRequest, opportunity_id: Id, quote_id: Id) -> Any:
    """Mark the quote as submitted to the customer; it never changes after that."""
    _child(request.auth, opportunity_id, Quote, quote_id, _("No such quote."))
    ps.quote_submit(quote=quote_id, actor=request.auth)
    return quote_out(_quotes().get(pk=quote_id))


# --- activities ---------------------------------------------------------------------------------


@router.get("/{opportunity_id}/activities", response=list[ActivityOut], summary="Activities")
def activity_list(request: ApiRequest, opportunity_id: Id) -> Any:
    """Planned and done calls, visits, presentations, demos, meetings and tasks, by due date."""
    opp = opportunity_get(request.auth, opportunity_id)
    return [
        activity_out(a) for a in Activity.objects.filter(opportunity=opp).select_related("owner")
    ]


@router.post(
    "/{opportunity_id}/activities", response={201: ActivityOut}, summary="Plan an activity"
)
def activity_new(request: ApiRequest, opportunity_id: Id, payload: ActivityIn) -> Any:
    """Plan a piece of work on the opportunity for you or a colleague."""
    data = payload.model_dump()
    owner = user_by_id(data.pop("owner_id"), field="owner_id")
    row = ps.activity_plan(opportunity=opportunity_id, actor=request.auth, owner=owner, **data)
    return Status(201, activity_out(row))


@router.post(
    "/{opportunity_id}/activities/{activity_id}/complete",
    response=ActivityOut,
    summary="Mark an activity done",
)
def activity_done(
    request: ApiRequest, opportunity_id: Id, activity_id: Id, payload: CompleteIn
) -> Any:
    """Mark the activity done with its outcome."""
    _child(request.auth, opportunity_id, Activity, activity_id, _("No such activity."))
    row = ps.activity_complete(activity=activity_id, actor=request.auth, outcome=payload.outcome)
    return activity_out(row)


ActivitySort = Literal["due_on", "-due_on", "done_at", "-done_at", "created_at", "-created_at"]
# Ties broken by id; planned activities (no done_at) come after the done ones either way.
ACTIVITY_ORDER: dict[str, Ordering] = {
    "due_on": (asc("due_on"), asc("id")),
    "-due_on": (desc("due_on"), asc("id")),
    "done_at": (asc("done_at", nullable=True), asc("id")),
    "-done_at": (desc("done_at", nullable=True), asc("id")),
    "created_at": (asc("created_at"), asc("id")),
    "-created_at": (desc("created_at"), asc("id")),
}


class ActivityFilters(Schema):
    opportunity_id: Id | None = Field(default=None, description="Only this deal's activities.")
    owner_id: Id | None = None
    kind: ActivityKind | None = None
    done: bool | None = Field(default=None, description="Only done (or only planned) ones.")
    due_from: Day | None = Field(default=None, description="Due on or after.")
    due_to: Day | None = Field(default=None, description="Due on or before.")
    sort: ActivitySort = Field(
        default="due_on", description="done_at: activities not done yet come last."
    )
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def activity_listed(activity: Activity) -> dict[str, Any]:
    return activity_out(activity) | {"opportunity_name": activity.opportunity.name}


@activities.get(
    "",
    response=ActivityPage | ActivityCursorPage,
    summary="List the activities of the deals you may see",
)
def activity_search(request: ApiRequest, filters: Query[ActivityFilters]) -> Any:
    """Planned and done activities on every opportunity you may see (or on one,
    `opportunity_id`: 404 if you may not see it), by due date unless sorted otherwise, by page
    or by cursor."""
    qs = Activity.objects.filter(opportunity__in=Opportunity.objects.visible_to(request.auth))
    if filters.opportunity_id:
        qs = qs.filter(opportunity=opportunity_get(request.auth, filters.opportunity_id))
    if filters.owner_id:
        qs = qs.filter(owner_id=filters.owner_id)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.done is not None:
        qs = qs.filter(done_at__isnull=not filters.done)
    if filters.due_from:
        qs = qs.filter(due_on__gte=filters.due_from)
    if filters.due_to:
        qs = qs.filter(due_on__lte=filters.due_to)
    paging = Paging("activities", filters.sort, ACTIVITY_ORDER[filters.sort])
    rows = qs.select_related("owner", "opportunity")
    return page_or_cursor(rows, filters, paging, activity_listed)
