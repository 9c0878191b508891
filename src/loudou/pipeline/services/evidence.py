"""Criterion evidence: a seller records that a `check` criterion holds, with a note."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import ValidationFailed
from loudou.pipeline.models import CriterionEvidence, Opportunity
from loudou.pipeline.services._base import lock, require_editor, require_open
from loudou.playbooks.models import Criterion, CriterionKind, Stage


def _criterion(opp: Opportunity, key: str, up_to: Stage | None = None) -> Criterion:
    """Find a criterion by `key` or `stage.key` in the opportunity's playbook version."""
    stage_key, _sep, crit_key = key.rpartition(".")
    matches = [
        c
        for s in opp.playbook.ordered_stages()
        if (not stage_key or s.key == stage_key) and (up_to is None or s.order <= up_to.order)
        for c in s.criteria.all()
        if c.key == crit_key
    ]
    if not matches:
        raise ValidationFailed(
            _("The playbook has no criterion “%(key)s”.") % {"key": key}, details={key: "unknown"}
        )
    if len(matches) > 1:
        raise ValidationFailed(
            _("“%(key)s” names criteria of several stages; write stage.criterion.") % {"key": key},
            details={key: "ambiguous"},
        )
    return matches[0]


def record_evidence_many(
    opp: Opportunity, evidence: dict[str, str], *, actor: Any, up_to: Stage | None = None
) -> list[CriterionEvidence]:
    """Record several `check` criteria as holding, each with its note (inside a stage operation)."""
    rows = []
    for key, note in evidence.items():
        criterion = _criterion(opp, key, up_to)
        rows.append(_record(opp, criterion, satisfied=True, note=note, actor=actor))
    return rows


def _record(
    opp: Opportunity, criterion: Criterion, *, satisfied: bool, note: str, actor: Any
) -> CriterionEvidence:
    if criterion.kind != CriterionKind.CHECK:
        raise ValidationFailed(
            _("“%(c)s” is checked by the system from the record; it takes no evidence.")
            % {"c": criterion},
            details={criterion.key: "not_a_check"},
        )
    if not (note or "").strip():
        raise ValidationFailed(
            _("Evidence for “%(c)s” needs a note: what did the customer say or do?")
            % {"c": criterion},
            details={criterion.key: "note_required"},
        )
    row = CriterionEvidence.objects.create(
        opportunity=opp,
        criterion=criterion,
        satisfied=satisfied,
        note=note.strip(),
        actor=actor if getattr(actor, "pk", None) else None,
        recorded_at=clock.now(),
    )
    audit(
        "evidence.record",
        opp,
        actor=actor,
        after={"criterion": f"{criterion.stage.key}.{criterion.key}", "satisfied": satisfied},
        reason=row.note,
    )
    return row


@transaction.atomic
def evidence_record(
    *,
    opportunity: Opportunity | int,
    criterion: str,
    actor: Any,
    note: str,
    satisfied: bool = True,
) -> CriterionEvidence:
    """Record (or withdraw, with satisfied=False) evidence for one criterion of an open deal."""
    opp = lock(opportunity, actor, None)
    require_open(opp)
    require_editor(opp, actor)
    return _record(opp, _criterion(opp, criterion), satisfied=satisfied, note=note, actor=actor)
