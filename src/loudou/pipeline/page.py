"""Reads for the opportunity page: the deal with everything around it, its stage path, the
guidance for the current and next stage, and its timeline, in a fixed number of queries.

Gate checks read the opportunity's related rows through `.all()`, so prefetching them once here
lets the page evaluate every criterion from memory, however many quotes, team members,
activities or history rows the deal has.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Prefetch, Value, When, prefetch_related_objects
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.errors import NotFound
from loudou.core.i18n import join_list, localized_dict
from loudou.org.access import manages_branch
from loudou.org.models import AccessLevel, User
from loudou.pipeline.gates import CriterionState, criteria_states
from loudou.pipeline.models import (
    Activity,
    ApprovalStatus,
    CriterionEvidence,
    GateOverride,
    Objection,
    ObjectionStatus,
    Opportunity,
    OpportunityCompetitor,
    OpportunityHistory,
    ProjectApproval,
    Quote,
    QuoteKind,
    QuoteLine,
    QuoteLineCategory,
    Status,
    TeamMember,
)
from loudou.playbooks.models import ForecastCategory, Role, Stage, StageKind

PAGE_RELATED = (
    "account",
    "account__industry",
    "owner",
    "branch",
    "stage",
    "playbook",
    "lost_reason",
    "lost_to",
)


# Quote lines read software, implementation, services: the order the seed's quotes list them.
LINE_ORDER = Case(
    *(When(category=c, then=Value(n)) for n, c in enumerate(QuoteLineCategory.values)),
    default=Value(len(QuoteLineCategory.values)),
)


def _prefetches() -> list[Any]:
    return [
        Prefetch(
            "evidence",
            queryset=CriterionEvidence.objects.select_related("actor", "criterion").order_by(
                "recorded_at", "id"
            ),
        ),
        Prefetch(
            "approvals",
            queryset=ProjectApproval.objects.select_related("requested_by", "decided_by"),
        ),
        Prefetch(
            "quotes",
            queryset=Quote.objects.select_related("created_by")
            .prefetch_related(
                Prefetch("lines", queryset=QuoteLine.objects.order_by(LINE_ORDER, "id"))
            )
            .order_by("kind", "-version"),
        ),
        "key_dates",
        Prefetch(
            "competitors",
            queryset=OpportunityCompetitor.objects.select_related("competitor").order_by(
                "-active", "competitor__name"
            ),
        ),
        Prefetch(
            "team_members",
            queryset=TeamMember.objects.select_related("user", "user__branch", "role"),
        ),
        "account__contacts",
        Prefetch(
            "activities",
            queryset=Activity.objects.select_related("owner").order_by("due_on", "id"),
        ),
        Prefetch(
            "objections",
            queryset=Objection.objects.select_related("raised_by", "answered_by"),
        ),
        Prefetch(
            "history",
            queryset=OpportunityHistory.objects.select_related("actor", "owner", "stage").order_by(
                "valid_from", "id"
            ),
        ),
        Prefetch("overrides", queryset=GateOverride.objects.select_related("actor", "stage")),
    ]


@dataclass
class PathStep:
    """One step of the stage path: `done`, `current`, `won`, `lost` or `todo`."""

    stage: Stage
    state: str
    lost_here: bool = False


@dataclass
class StageGuide:
    """What a stage asks for, for this deal: definition, owners (and who fills each role on the
    team), main work, and each criterion with whether it holds."""

    stage: Stage
    position: str  # "current" or "next"
    criteria: list[CriterionState]
    owners: list[tuple[Role, list[Any]]]
    main_work: list[str]

    @property
    def required(self) -> int:
        return sum(1 for s in self.criteria if s.criterion.required)

    @property
    def held(self) -> int:
        return sum(1 for s in self.criteria if s.criterion.required and s.holds)


@dataclass
class Change:
    """One tracked field that changed in a history row; `kind` says how to show the values."""

    field: str
    label: str
    kind: str
    old: Any
    new: Any
    currency: str = ""


@dataclass
class TimelineEntry:
    """One line of the deal's history, newest first on the page."""

    at: dt.datetime
    kind: str
    title: str
    actor: Any = None
    changes: list[Change] = field(default_factory=list)
    reason: str = ""
    tone: str = ""


@dataclass
class OpportunityPage:
    """Everything the opportunity page shows, read once."""

    opp: Opportunity
    path: list[PathStep]
    guides: list[StageGuide]
    next_stage: Stage | None
    previous_stage: Stage | None
    won_stage: Stage
    can_edit: bool
    is_manager: bool
    team: list[TeamMember]
    approvals: list[ProjectApproval]
    pending_approval: ProjectApproval | None
    approval_granted: bool
    quotes: dict[str, list[Quote]]
    objections: list[Objection]
    open_activities: list[Activity]
    done_activities: list[Activity]
    selection_team: list[Any]
    timeline: list[TimelineEntry]

    @property
    def is_open(self) -> bool:
        return self.opp.status == Status.OPEN

    @property
    def can_work(self) -> bool:
        """Section forms are shown to editors of an open deal (the services refuse the rest)."""
        return self.can_edit and self.is_open

    @property
    def forecast_label(self) -> str:
        return str(ForecastCategory(self.opp.forecast_category).label)

    @property
    def close_days(self) -> int:
        """Days until the expected close date; negative when it has passed."""
        return (self.opp.close_date - clock.today()).days

    @property
    def overdue_days(self) -> int:
        return max(-self.close_days, 0)

    @property
    def queued_objections(self) -> int:
        return sum(1 for o in self.objections if o.status == ObjectionStatus.QUEUED)

    @property
    def overdue_activities(self) -> int:
        today = clock.today()
        return sum(1 for a in self.open_activities if a.due_on < today)


def opportunity_page(user: Any, pk: int) -> OpportunityPage:
    """The opportunity `user` may see with everything its page shows, or NotFound."""
    opp = Opportunity.objects.visible_to(user).select_related(*PAGE_RELATED).filter(pk=pk).first()
    if opp is None:
        raise NotFound(_("No such opportunity."))
    prefetch_related_objects([opp], *_prefetches())
    stages = opp.playbook.ordered_stages()
    team = list(opp.team_members.all())
    approvals = list(opp.approvals.all())
    activities = list(opp.activities.all())
    quotes: dict[str, list[Quote]] = {k: [] for k in QuoteKind.values}
    for quote in opp.quotes.all():
        quotes[quote.kind].append(quote)
    objections = sorted(
        opp.objections.all(),
        key=lambda o: (o.status != ObjectionStatus.QUEUED, o.raised_at, o.pk),
    )
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    later = [s for s in open_stages if s.order > opp.stage.order]
    earlier = [s for s in open_stages if s.order < opp.stage.order]
    won_stage = next(s for s in stages if s.kind == StageKind.WON)
    next_stage = (later[0] if later else won_stage) if opp.status == Status.OPEN else None
    granted = any(a.status == ApprovalStatus.APPROVED for a in approvals)
    return OpportunityPage(
        opp=opp,
        path=stage_path(opp, stages),
        guides=_guides(opp, stages, next_stage, team),
        next_stage=next_stage,
        previous_stage=earlier[-1] if earlier and opp.status == Status.OPEN else None,
        won_stage=won_stage,
        can_edit=can_edit(user, opp),
        is_manager=manages_branch(user, opp.branch_id),
        team=team,
        approvals=approvals,
        pending_approval=next((a for a in approvals if a.status == ApprovalStatus.PENDING), None),
        approval_granted=granted,
        quotes=quotes,
        objections=objections,
        open_activities=[a for a in activities if a.done_at is None],
        done_activities=sorted(
            (a for a in activities if a.done_at is not None),
            key=lambda a: a.done_at or a.created_at,
            reverse=True,
        ),
        selection_team=[c for c in opp.account.contacts.all() if c.selection_part],
        timeline=timeline(opp),
    )


def can_edit(user: Any, opp: Opportunity) -> bool:
    """The same rule as the services' `require_editor`: executives read, others who see edit."""
    return user.level != AccessLevel.EXECUTIVE or opp.owner_id == user.pk


def stage_path(opp: Opportunity, stages: list[Stage]) -> list[PathStep]:
    """The opportunity stages of the playbook, each marked done, current, won, lost or todo."""
    steps = []
    for stage in stages:
        if stage.kind == StageKind.ACCOUNT:
            continue
        if opp.status == Status.WON:
            state = "won" if stage.kind == StageKind.WON else "done"
        elif opp.status == Status.LOST:
            state = (
                "lost"
                if stage.pk == opp.stage_id
                else ("done" if stage.order < opp.stage.order else "todo")
            )
        elif stage.pk == opp.stage_id:
            state = "current"
        else:
            state = "done" if stage.order < opp.stage.order else "todo"
        steps.append(PathStep(stage, state, lost_here=state == "lost"))
    return steps


def _guides(
    opp: Opportunity, stages: list[Stage], next_stage: Stage | None, team: list[TeamMember]
) -> list[StageGuide]:
    by_role: dict[int, list[Any]] = {}
    for member in team:
        by_role.setdefault(member.role_id, []).append(member.user)
    # The playbook's cached stages carry their criteria and owners; `opp.stage` does not.
    current = next((s for s in stages if s.pk == opp.stage_id), opp.stage)
    shown = [(current, "current")] + ([(next_stage, "next")] if next_stage else [])
    return [
        StageGuide(
            stage=stage,
            position=position,
            criteria=criteria_states(opp, [stage]),
            owners=[(role, by_role.get(role.pk, [])) for role in stage.owners.all()],
            main_work=[localized_dict(item) for item in stage.main_work or [] if item],
        )
        for stage, position in shown
    ]


def approval_defaults(page: OpportunityPage) -> dict[str, str]:
    """A 立项 request form filled from what the deal already records, for the seller to check."""
    opp = page.opp
    dates = sorted(opp.key_dates.all(), key=lambda k: k.planned)
    return {
        "requirement": opp.need,
        "budget": "" if opp.budget is None else f"{opp.budget:f}",
        "timeline": "\n".join(
            f"{k.label or k.get_kind_display()}: {k.planned:%Y-%m-%d}" for k in dates
        ),
        "selection_team": "\n".join(
            f"{c}: {c.get_selection_part_display()}" for c in page.selection_team
        ),
        "competition": join_list([str(c.competitor) for c in opp.competitors.all() if c.active]),
        "strategy": "",
    }


def people_to_staff() -> list[User]:
    """Active colleagues who can be put on a project team or given an activity, by branch."""
    return list(
        User.objects.filter(is_active=True, branch__isnull=False)
        .select_related("branch", "job_role")
        .order_by("branch__code", "username")
    )


# --- the timeline -----------------------------------------------------------------------

FIELD_KINDS = {
    "stage": "stage",
    "status": "status",
    "amount": "money",
    "currency": "text",
    "close_date": "date",
    "probability": "percent",
    "owner": "user",
}


def _field_label(name: str) -> str:
    return {
        "stage": _("Stage"),
        "status": _("Status"),
        "amount": _("Amount"),
        "currency": _("Currency"),
        "close_date": _("Expected close date"),
        "probability": _("Probability"),
        "owner": _("Owner"),
    }[name]


def _action_title(action: str) -> str:
    return {
        "create": _("Opportunity created"),
        "import": _("Imported"),
        "advance": _("Advanced"),
        "regress": _("Moved back"),
        "win": _("Won"),
        "lose": _("Lost"),
        "reopen": _("Reopened"),
        "update": _("Details changed"),
        "reassign": _("Owner changed"),
    }.get(action, _("Changed"))


def _value(row: OpportunityHistory, name: str) -> Any:
    if name == "stage":
        return row.stage
    if name == "owner":
        return row.owner
    if name == "status":
        return row.get_status_display()
    return getattr(row, name)


def _tone(action: str) -> str:
    return {"win": "ok", "lose": "bad", "regress": "warn", "reopen": "info"}.get(action, "")


def _history_entries(opp: Opportunity) -> list[TimelineEntry]:
    out = []
    previous: OpportunityHistory | None = None
    for row in opp.history.all():
        names = [n for n in row.changed if n in FIELD_KINDS]
        if previous is None:
            names = ["stage", "amount", "close_date", "owner"]
        changes = [
            Change(
                field=n,
                label=_field_label(n),
                kind=FIELD_KINDS[n],
                old=_value(previous, n) if previous else None,
                new=_value(row, n),
                currency=row.currency,
            )
            for n in names
        ]
        out.append(
            TimelineEntry(
                at=row.valid_from,
                kind=row.action,
                title=_action_title(row.action),
                actor=row.actor,
                changes=changes,
                reason=row.reason,
                tone=_tone(row.action),
            )
        )
        previous = row
    return out


def timeline(opp: Opportunity) -> list[TimelineEntry]:
    """Every recorded change of the deal, newest first: history rows (with what each changed),
    gate overrides, criterion evidence and 立项 requests and decisions."""
    entries = _history_entries(opp)
    for override in opp.overrides.all():
        entries.append(
            TimelineEntry(
                at=override.at,
                kind="override",
                title=_("Gate overridden into “%(stage)s” (%(n)s criteria missing)")
                % {"stage": override.stage, "n": len(override.missing)},
                actor=override.actor,
                reason=override.reason,
                tone="warn",
            )
        )
    for row in opp.evidence.all():
        entries.append(
            TimelineEntry(
                at=row.recorded_at,
                kind="evidence",
                title=(_("Evidence: %(c)s") if row.satisfied else _("Marked as not holding: %(c)s"))
                % {"c": row.criterion},
                actor=row.actor,
                reason=row.note,
            )
        )
    for approval in opp.approvals.all():
        entries.append(
            TimelineEntry(
                at=approval.requested_at,
                kind="approval",
                title=_("Project set-up (立项) requested"),
                actor=approval.requested_by,
                reason=approval.requirement,
            )
        )
        if approval.decided_at is not None:
            approved = approval.status == ApprovalStatus.APPROVED
            entries.append(
                TimelineEntry(
                    at=approval.decided_at,
                    kind="decision",
                    title=_("Project set-up (立项) approved")
                    if approved
                    else _("Project set-up (立项) rejected"),
                    actor=approval.decided_by,
                    reason=approval.comment,
                    tone="ok" if approved else "bad",
                )
            )
    order = {"create": 0, "import": 0, "evidence": 1, "override": 2}
    entries.sort(key=lambda e: (e.at, order.get(e.kind, 3)), reverse=True)
    return entries
