"""Stage operations (DESIGN.md rule 2): advance, regress, win, lose, reopen.

Each locks the opportunity, checks the version and the actor's right, checks the gate, and
writes history and audit, in one transaction. A refusal raises and changes nothing.
"""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import GateRefused, PermissionDenied, ValidationFailed
from loudou.core.i18n import join_clauses, localized, parenthesised
from loudou.core.text import require_fits
from loudou.org.access import manages_branch
from loudou.pipeline.gates import CriterionState, gate_check
from loudou.pipeline.models import (
    Competitor,
    GateOverride,
    LostReason,
    Opportunity,
    Status,
)
from loudou.pipeline.services._base import (
    audit_values,
    commit,
    lock,
    require_editor,
    require_open,
    tracked_values,
)
from loudou.pipeline.services.evidence import record_evidence_many
from loudou.playbooks.models import Stage, StageKind


def _stage(opp: Opportunity, to_stage: Stage | str) -> Stage:
    if isinstance(to_stage, Stage):
        if to_stage.playbook_id != opp.playbook_id:
            raise ValidationFailed(
                _("That stage belongs to another playbook."), details={"to_stage": "playbook"}
            )
        return to_stage
    for stage in opp.playbook.ordered_stages():
        if stage.key == to_stage:
            return stage
    raise ValidationFailed(
        _("The playbook has no stage “%(key)s”.") % {"key": to_stage},
        details={"to_stage": "unknown"},
    )


def pass_gate(
    opp: Opportunity,
    to_stage: Stage,
    *,
    actor: Any,
    missing: list[CriterionState],
    override_reason: str,
) -> str:
    """Let the opportunity through a gate: refuse with the missing criteria, or record a manager's
    override. Returns the override's reason, or "" when the gate held on its own."""
    if not missing:
        return ""
    listed = [s.as_dict() for s in missing]
    if not override_reason.strip():
        lines = join_clauses([f"{d['text']}{parenthesised(d['reason'])}" for d in listed])
        raise GateRefused(
            _("“%(name)s” cannot enter “%(stage)s”: %(n)s criteria do not hold: %(lines)s")
            % {
                "name": opp.name,
                "stage": localized(to_stage, "name"),
                "n": len(listed),
                "lines": lines,
            },
            missing=listed,
        )
    if not manages_branch(actor, opp.branch_id):
        raise PermissionDenied(
            _("Only a manager of this branch may let an opportunity past missing criteria.")
        )
    override = GateOverride.objects.create(
        opportunity=opp,
        stage=to_stage,
        missing=[{"stage": d["stage"], "key": d["key"]} for d in listed],
        reason=override_reason.strip(),
        actor=actor,
        at=clock.now(),
    )
    audit(
        "gate.override",
        opp,
        actor=actor,
        after={"stage": to_stage.key, "missing": override.missing},
        reason=override.reason,
    )
    return override.reason


@transaction.atomic
def opportunity_advance(
    *,
    opportunity: Opportunity | int,
    to_stage: Stage | str,
    actor: Any,
    evidence: dict[str, str] | None = None,
    expected_version: int | None = None,
    override_reason: str = "",
) -> Opportunity:
    """Move an open opportunity to a later open stage if every required criterion of the stages
    entered holds (evidence given here counts); a manager may override with a reason."""
    opp = lock(opportunity, actor, expected_version)
    require_open(opp)
    require_editor(opp, actor)
    target = _stage(opp, to_stage)
    if target.kind != StageKind.OPEN:
        raise ValidationFailed(
            _("Use win to close the sale; advance moves between open stages."),
            details={"to_stage": target.key},
        )
    if target.order <= opp.stage.order:
        raise ValidationFailed(
            _("“%(stage)s” is not after the current stage; use regress to move back.")
            % {"stage": localized(target, "name")},
            details={"to_stage": target.key},
        )
    if evidence:
        record_evidence_many(opp, evidence, actor=actor, up_to=target)
    overridden = pass_gate(
        opp, target, actor=actor, missing=gate_check(opp, target), override_reason=override_reason
    )
    before_t, before_a = tracked_values(opp), audit_values(opp)
    opp.stage = target
    return commit(
        opp,
        actor=actor,
        action="advance",
        before_tracked=before_t,
        before_audit=before_a,
        reason=overridden,
    )


@transaction.atomic
def opportunity_regress(
    *,
    opportunity: Opportunity | int,
    to_stage: Stage | str,
    actor: Any,
    reason: str,
    expected_version: int | None = None,
) -> Opportunity:
    """Move an open opportunity back to an earlier open stage, with a reason."""
    opp = lock(opportunity, actor, expected_version)
    require_open(opp)
    require_editor(opp, actor)
    target = _stage(opp, to_stage)
    if target.kind != StageKind.OPEN or target.order >= opp.stage.order:
        raise ValidationFailed(
            _("“%(stage)s” is not an earlier open stage.") % {"stage": localized(target, "name")},
            details={"to_stage": target.key},
        )
    if not reason.strip():
        raise ValidationFailed(
            _("Say why the opportunity moves back."), details={"reason": "required"}
        )
    before_t, before_a = tracked_values(opp), audit_values(opp)
    opp.stage = target
    return commit(
        opp,
        actor=actor,
        action="regress",
        before_tracked=before_t,
        before_audit=before_a,
        reason=reason.strip(),
    )


@transaction.atomic
def opportunity_win(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    evidence: dict[str, str] | None = None,
    expected_version: int | None = None,
    override_reason: str = "",
    amount: Any = None,
    closed_on: dt.date | None = None,
) -> Opportunity:
    """Close the sale: enter the won stage through its gate (and those of skipped stages)."""
    from loudou.core.money import parse_amount

    opp = lock(opportunity, actor, expected_version)
    require_open(opp)
    require_editor(opp, actor)
    won_stage = next(s for s in opp.playbook.ordered_stages() if s.kind == StageKind.WON)
    if evidence:
        record_evidence_many(opp, evidence, actor=actor, up_to=won_stage)
    overridden = pass_gate(
        opp,
        won_stage,
        actor=actor,
        missing=gate_check(opp, won_stage),
        override_reason=override_reason,
    )
    before_t, before_a = tracked_values(opp), audit_values(opp)
    opp.stage = won_stage
    opp.status = Status.WON
    opp.closed_on = closed_on or clock.today()
    opp.close_date = opp.closed_on
    if amount is not None:
        opp.amount = parse_amount(amount)  # type: ignore[assignment]
    return commit(
        opp,
        actor=actor,
        action="win",
        before_tracked=before_t,
        before_audit=before_a,
        reason=overridden,
    )


@transaction.atomic
def opportunity_lose(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    reason: LostReason | str,
    note: str = "",
    lost_to: Competitor | str | None = None,
    expected_version: int | None = None,
    closed_on: dt.date | None = None,
) -> Opportunity:
    """Mark an open opportunity lost (or dropped) at its current stage, with the reason and,
    if known, the competitor who won."""
    opp = lock(opportunity, actor, expected_version)
    require_open(opp)
    require_editor(opp, actor)
    if isinstance(reason, str):
        found = LostReason.objects.filter(key=reason, active=True).first()
        if found is None:
            raise ValidationFailed(
                _("Unknown lost reason “%(r)s”.") % {"r": reason}, details={"reason": "unknown"}
            )
        reason = found
    if isinstance(lost_to, str):
        require_fits(Competitor(name=lost_to.strip()), "name")
        lost_to = Competitor.objects.filter(name=lost_to).first() or Competitor.objects.create(
            name=lost_to.strip(), kind="vendor"
        )
    before_t, before_a = tracked_values(opp), audit_values(opp)
    opp.status = Status.LOST
    opp.lost_reason = reason
    opp.lost_to = lost_to
    opp.closed_on = closed_on or clock.today()
    text = f"{localized(reason, 'name')}" + (f": {note.strip()}" if note.strip() else "")
    return commit(
        opp, actor=actor, action="lose", before_tracked=before_t, before_audit=before_a, reason=text
    )


@transaction.atomic
def opportunity_reopen(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    reason: str,
    expected_version: int | None = None,
) -> Opportunity:
    """Reopen a lost opportunity at the stage it was lost in, or a won one (managers only) at the
    last open stage it held."""
    opp = lock(opportunity, actor, expected_version)
    if opp.status == Status.OPEN:
        raise ValidationFailed(_("“%(name)s” is already open.") % {"name": opp.name})
    require_editor(opp, actor)
    if not reason.strip():
        raise ValidationFailed(
            _("Say why the opportunity is reopened."), details={"reason": "required"}
        )
    if opp.status == Status.WON and not manages_branch(actor, opp.branch_id):
        raise PermissionDenied(_("Only a manager of this branch may reopen a won opportunity."))
    before_t, before_a = tracked_values(opp), audit_values(opp)
    if opp.status == Status.WON:
        last_open = (
            opp.history.filter(stage__kind=StageKind.OPEN).order_by("-valid_from", "-id").first()
        )
        opp.stage = (
            last_open.stage
            if last_open
            else next(s for s in opp.playbook.ordered_stages() if s.kind == StageKind.OPEN)
        )
    opp.status = Status.OPEN
    opp.lost_reason = None
    opp.lost_to = None
    opp.closed_on = None
    if opp.close_date < clock.today():
        opp.close_date = clock.today()
    return commit(
        opp,
        actor=actor,
        action="reopen",
        before_tracked=before_t,
        before_audit=before_a,
        reason=reason.strip(),
    )
