"""The project work: team members, competitors and consultants, key dates, objections."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit, snapshot
from loudou.core.errors import NotFound, ValidationFailed
from loudou.core.text import require_fits
from loudou.pipeline.models import (
    Competitor,
    CompetitorKind,
    KeyDate,
    KeyDateKind,
    Objection,
    ObjectionStatus,
    Opportunity,
    OpportunityCompetitor,
    TeamMember,
)
from loudou.pipeline.services._base import lock, require_editor, require_open
from loudou.playbooks.models import Role


def _open_for_work(opportunity: Opportunity | int, actor: Any) -> Opportunity:
    opp = lock(opportunity, actor, None)
    require_open(opp)
    require_editor(opp, actor)
    return opp


@transaction.atomic
def team_member_add(
    *, opportunity: Opportunity | int, actor: Any, user: Any, role: str
) -> TeamMember:
    """Put a colleague on the project team in one of the playbook's roles."""
    opp = _open_for_work(opportunity, actor)
    found = Role.objects.filter(key=role).first()
    if found is None:
        raise ValidationFailed(
            _("Unknown role “%(r)s”.") % {"r": role}, details={"role": "unknown"}
        )
    if not user.is_active:
        raise ValidationFailed(_("%(u)s is not an active user.") % {"u": user})
    if TeamMember.objects.filter(opportunity=opp, user=user, role=found).exists():
        raise ValidationFailed(
            _("%(u)s is already on the team as %(r)s.") % {"u": user, "r": found}
        )
    member = TeamMember.objects.create(opportunity=opp, user=user, role=found, added_at=clock.now())
    audit("team.add", opp, actor=actor, after={"user": user.pk, "role": role})
    return member


@transaction.atomic
def team_member_remove(*, member: TeamMember | int, actor: Any) -> None:
    """Take a colleague off the project team."""
    pk = member if isinstance(member, int) else member.pk
    found = TeamMember.objects.filter(
        pk=pk, opportunity__in=Opportunity.objects.visible_to(actor)
    ).first()
    if found is None:
        raise NotFound(_("No such team member."))
    opp = _open_for_work(found.opportunity_id, actor)
    audit("team.remove", opp, actor=actor, before={"user": found.user_id, "role": found.role.key})
    found.delete()


@transaction.atomic
def competitor_add(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    name: str,
    kind: str = CompetitorKind.VENDOR,
    notes: str = "",
) -> OpportunityCompetitor:
    """Record a competing vendor or third-party consultant involved in the deal."""
    opp = _open_for_work(opportunity, actor)
    if not name.strip():
        raise ValidationFailed(_("A competitor needs a name."), details={"name": "required"})
    if kind not in CompetitorKind.values:
        raise ValidationFailed(
            _("Unknown kind “%(k)s”.") % {"k": kind}, details={"kind": "invalid"}
        )
    require_fits(Competitor(name=name.strip()), "name")
    competitor, _created = Competitor.objects.get_or_create(
        name=name.strip(), defaults={"kind": kind}
    )
    if OpportunityCompetitor.objects.filter(opportunity=opp, competitor=competitor).exists():
        raise ValidationFailed(_("%(c)s is already recorded on this deal.") % {"c": competitor})
    row = OpportunityCompetitor.objects.create(
        opportunity=opp, competitor=competitor, notes=notes.strip()
    )
    audit(
        "competitor.add",
        opp,
        actor=actor,
        after={"competitor": competitor.name, "kind": competitor.kind},
    )
    return row


@transaction.atomic
def competitor_update(
    *,
    row: OpportunityCompetitor | int,
    actor: Any,
    notes: str | None = None,
    active: bool | None = None,
) -> OpportunityCompetitor:
    """Update what we know of a competitor in the deal, or mark it out of the running."""
    pk = row if isinstance(row, int) else row.pk
    found = OpportunityCompetitor.objects.filter(
        pk=pk, opportunity__in=Opportunity.objects.visible_to(actor)
    ).first()
    if found is None:
        raise NotFound(_("No such competitor on this deal."))
    _open_for_work(found.opportunity_id, actor)
    before = snapshot(found, ["notes", "active"])
    if notes is not None:
        found.notes = notes.strip()
    if active is not None:
        found.active = active
    found.save()
    audit(
        "competitor.update",
        found,
        actor=actor,
        before=before,
        after=snapshot(found, ["notes", "active"]),
    )
    return found


@transaction.atomic
def key_date_set(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    kind: str,
    planned: dt.date,
    actual: dt.date | None = None,
    label: str = "",
) -> KeyDate:
    """Plan (or move, or mark as happened) a key date: bid, negotiation, signing or another."""
    opp = _open_for_work(opportunity, actor)
    if kind not in KeyDateKind.values:
        raise ValidationFailed(
            _("Unknown key date “%(k)s”.") % {"k": kind}, details={"kind": "invalid"}
        )
    if not isinstance(planned, dt.date):
        raise ValidationFailed(
            _("A key date needs a planned date."), details={"planned": "required"}
        )
    if kind == KeyDateKind.CUSTOM and not label.strip():
        raise ValidationFailed(_("Name the key date."), details={"label": "required"})
    existing = (
        None
        if kind == KeyDateKind.CUSTOM
        else KeyDate.objects.filter(opportunity=opp, kind=kind).first()
    )
    before = snapshot(existing, ["kind", "planned", "actual"]) if existing else None
    row = existing or KeyDate(opportunity=opp, kind=kind)
    row.planned, row.actual, row.label = planned, actual, label.strip()
    require_fits(row, "label")
    row.save()
    audit(
        "keydate.set",
        opp,
        actor=actor,
        before=before,
        after=snapshot(row, ["kind", "label", "planned", "actual"]),
    )
    return row


@transaction.atomic
def objection_raise(*, opportunity: Opportunity | int, actor: Any, text: str) -> Objection:
    """Queue a customer objection to be answered."""
    opp = _open_for_work(opportunity, actor)
    if not text.strip():
        raise ValidationFailed(_("Write the objection."), details={"text": "required"})
    row = Objection.objects.create(
        opportunity=opp, text=text.strip(), raised_at=clock.now(), raised_by=actor
    )
    audit("objection.raise", row, actor=actor, after={"text": row.text})
    return row


@transaction.atomic
def objection_answer(*, objection: Objection | int, actor: Any, answer: str) -> Objection:
    """Answer a queued objection."""
    pk = objection if isinstance(objection, int) else objection.pk
    row = Objection.objects.filter(
        pk=pk, opportunity__in=Opportunity.objects.visible_to(actor)
    ).first()
    if row is None:
        raise NotFound(_("No such objection."))
    _open_for_work(row.opportunity_id, actor)
    if not answer.strip():
        raise ValidationFailed(_("Write the answer."), details={"answer": "required"})
    before = snapshot(row, ["status", "answer"])
    row.status, row.answer = ObjectionStatus.ANSWERED, answer.strip()
    row.answered_by, row.answered_at = actor, clock.now()
    row.save()
    audit(
        "objection.answer",
        row,
        actor=actor,
        before=before,
        after=snapshot(row, ["status", "answer"]),
    )
    return row
