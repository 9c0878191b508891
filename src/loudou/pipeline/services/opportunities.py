"""Creating and editing opportunities (everything but stage changes)."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import NotFound, PermissionDenied, ValidationFailed
from loudou.core.money import parse_amount, validate_currency
from loudou.core.text import require_fits
from loudou.customers.models import Account
from loudou.org.access import manages_branch, require_manager_of
from loudou.pipeline.gates import criteria_states
from loudou.pipeline.models import Opportunity, Status
from loudou.pipeline.services._base import (
    audit_values,
    commit,
    history_write,
    lock,
    require_editor,
    require_open,
    tracked_values,
)
from loudou.pipeline.services.evidence import record_evidence_many
from loudou.pipeline.services.stages import pass_gate
from loudou.playbooks.models import Playbook, StageKind
from loudou.playbooks.selectors import playbook_get


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("An opportunity needs a name."), details={"name": "required"})
    if len(name) > 200:
        raise ValidationFailed(
            _("The name is longer than 200 characters."), details={"name": "too_long"}
        )
    return name


def _clean_probability(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            _("A probability is a whole percent."), details={"probability_override": "invalid"}
        ) from None
    if not 0 <= number <= 100:
        raise ValidationFailed(
            _("A probability is between 0 and 100 %."), details={"probability_override": "range"}
        )
    return number


@transaction.atomic
def opportunity_create(
    *,
    actor: Any,
    account: Account,
    name: str,
    amount: Any,
    close_date: dt.date,
    currency: str = "",
    owner: Any = None,
    playbook: Playbook | str | None = None,
    need: str = "",
    source: str = "",
    budget: Any = None,
    probability_override: Any = None,
    evidence: dict[str, str] | None = None,
    override_reason: str = "",
) -> Opportunity:
    """Open an opportunity at the playbook's first open stage, through that stage's gate (a target
    account, the need, the source...); a manager may override a missing criterion with a reason."""
    if not Account.objects.visible_to(actor).filter(pk=account.pk).exists():
        raise NotFound(_("No such account."))
    owner = owner or actor
    if owner.pk != actor.pk:
        require_manager_of(actor, owner.branch_id, _("create opportunities for someone else"))
    if owner.branch_id is None:
        raise ValidationFailed(
            _("The owner belongs to no branch; an administrator must assign one.")
        )
    if not isinstance(playbook, Playbook):
        playbook = playbook_get(playbook)
    if not isinstance(close_date, dt.date):
        raise ValidationFailed(
            _("An expected close date is required."), details={"close_date": "required"}
        )
    first = next(s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN)
    now = clock.now()
    opp = Opportunity(
        account=account,
        name=_clean_name(name),
        need=need.strip(),
        amount=parse_amount(amount),
        currency=validate_currency(currency),
        budget=parse_amount(budget, field="budget", allow_none=True),
        close_date=close_date,
        owner=owner,
        branch_id=owner.branch_id,
        playbook=playbook,
        stage=first,
        status=Status.OPEN,
        probability_override=_clean_probability(probability_override),
        source=source.strip(),
        stage_entered_at=now,
        created_at=now,
        updated_at=now,
        version=1,
    )
    require_fits(opp, "source")
    opp.save()
    if evidence:
        record_evidence_many(opp, evidence, actor=actor, up_to=first)
    missing = [s for s in criteria_states(opp, [first]) if s.criterion.required and not s.holds]
    overridden = pass_gate(
        opp, first, actor=actor, missing=missing, override_reason=override_reason
    )
    history_write(
        opp,
        actor=actor,
        action="create",
        changed=list(tracked_values(opp)),
        reason=overridden,
        at=now,
    )
    audit(
        "opportunity.create",
        opp,
        actor=actor,
        after=audit_values(opp),
        reason=overridden,
    )
    return opp


UPDATABLE = {
    "name",
    "need",
    "amount",
    "currency",
    "budget",
    "close_date",
    "probability_override",
    "source",
}


@transaction.atomic
def opportunity_update(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    expected_version: int | None = None,
    reason: str = "",
    **changes: Any,
) -> Opportunity:
    """Change an open opportunity's name, need, amount, currency, budget, close date, probability
    override or source; tracked fields write history."""
    opp = lock(opportunity, actor, expected_version)
    require_open(opp)
    require_editor(opp, actor)
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be changed here: %(f)s.") % {"f": ", ".join(sorted(unknown))},
            details={f: "not_updatable" for f in unknown},
        )
    before_t, before_a = tracked_values(opp), audit_values(opp)
    if "name" in changes:
        opp.name = _clean_name(changes["name"])
    if "need" in changes:
        opp.need = (changes["need"] or "").strip()
    if "source" in changes:
        opp.source = (changes["source"] or "").strip()
    if "amount" in changes:
        opp.amount = parse_amount(changes["amount"])  # type: ignore[assignment]
    if changes.get("currency") not in (None, ""):
        # An empty currency keeps the deal's own: validate_currency would read it as "the base
        # currency" and silently re-denominate the amount.
        opp.currency = validate_currency(changes["currency"])
    if "budget" in changes:
        opp.budget = parse_amount(changes["budget"], field="budget", allow_none=True)
    if "close_date" in changes:
        if not isinstance(changes["close_date"], dt.date):
            raise ValidationFailed(
                _("An expected close date is required."), details={"close_date": "required"}
            )
        opp.close_date = changes["close_date"]
    if "probability_override" in changes:
        opp.probability_override = _clean_probability(changes["probability_override"])
    require_fits(opp, "source")
    return commit(
        opp,
        actor=actor,
        action="update",
        before_tracked=before_t,
        before_audit=before_a,
        reason=reason,
    )


@transaction.atomic
def opportunity_reassign(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    owner: Any,
    reason: str = "",
    expected_version: int | None = None,
) -> Opportunity:
    """Give an opportunity to another account manager (managers of both branches only)."""
    opp = lock(opportunity, actor, expected_version)
    if not manages_branch(actor, opp.branch_id) or not manages_branch(actor, owner.branch_id):
        raise PermissionDenied(
            _("Only a manager of both branches may change an opportunity's owner.")
        )
    if not owner.is_active:
        raise ValidationFailed(_("%(u)s is not an active user.") % {"u": owner})
    require_open(opp)
    before_t, before_a = tracked_values(opp), audit_values(opp)
    opp.owner = owner
    opp.branch_id = owner.branch_id
    return commit(
        opp,
        actor=actor,
        action="reassign",
        before_tracked=before_t,
        before_audit=before_a,
        reason=reason,
    )
