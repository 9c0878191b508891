"""What every importer shares: external ids (so a second import creates nothing twice), and
writing an opportunity whose history happened elsewhere."""

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any, Protocol

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import ValidationFailed
from loudou.core.money import parse_amount, validate_currency
from loudou.customers.models import Account
from loudou.interop.models import ExternalId
from loudou.pipeline.models import Opportunity, Status
from loudou.pipeline.services._base import TRACKED, audit_values, history_write, tracked_values
from loudou.playbooks.models import Playbook

# One event of an imported opportunity: from `at` on it was in stage `stage_key` with `status`.
Event = tuple[dt.datetime, str, str]


class Progress(Protocol):
    """Where an importer reports its progress (a rich bar in the CLI, nothing in tests)."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class NoProgress:
    def start(self, phase: str, total: int) -> None:
        del phase, total

    def advance(self, steps: int = 1) -> None:
        del steps


class ExternalIds:
    """The external ids of one source, loaded once: look-ups without a query per record."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._pending: list[ExternalId] = []
        self._ids: dict[tuple[str, str], tuple[int, int]] = {
            (kind, ext): (ct, obj)
            for kind, ext, ct, obj in ExternalId.objects.filter(source=source).values_list(
                "kind", "external_id", "content_type_id", "object_id"
            )
        }

    def get(self, kind: str, external_id: str, model: type[models.Model]) -> Any:
        """The object imported as (kind, external_id), or None."""
        found = self._ids.get((kind, external_id))
        if found is None:
            return None
        return model._default_manager.filter(pk=found[1]).first()

    def has(self, kind: str, external_id: str) -> bool:
        return (kind, external_id) in self._ids

    def link(self, kind: str, external_id: str, obj: models.Model) -> None:
        """Record that (kind, external_id) was imported as `obj` (written by `flush`)."""
        ct = ContentType.objects.get_for_model(type(obj))
        self._pending.append(
            ExternalId(
                source=self.source,
                kind=kind,
                external_id=external_id,
                content_type=ct,
                object_id=obj.pk,
                imported_at=timezone.now(),
            )
        )
        self._ids[(kind, external_id)] = (ct.pk, obj.pk)
        if len(self._pending) >= 500:
            self.flush()

    def flush(self) -> None:
        """Write the links recorded since the last flush; call before the transaction ends."""
        ExternalId.objects.bulk_create(self._pending)
        self._pending = []


@transaction.atomic
def opportunity_import(
    *,
    actor: Any,
    account: Account,
    name: str,
    amount: Any,
    currency: str,
    owner: Any,
    playbook: Playbook,
    events: Sequence[Event],
    close_date: dt.date,
    source: str,
    reason: str = "",
) -> Opportunity:
    """Create an opportunity with the history it had in another system.

    Imported history is a record of the past, not work done in loudou: no gate is passed. Each
    event writes one history row at its own time (the clock frozen there), through the one history
    writer, which keeps the stays up to date; created_at is the first event's time. A won or lost
    opportunity's closed_on is the date of the event that closed it."""
    reason = reason or _("imported from %(source)s") % {"source": source}
    if not events:
        raise ValidationFailed(_("An imported opportunity needs at least one event."))
    if any(b[0] < a[0] for a, b in itertools.pairwise(events)):
        raise ValidationFailed(_("The events of an imported opportunity must be in time order."))
    if events[0][2] != Status.OPEN:
        raise ValidationFailed(_("An imported opportunity starts open."))
    if owner.branch_id is None:
        raise ValidationFailed(
            _("The owner belongs to no branch; an administrator must assign one.")
        )
    stages = {s.key: s for s in playbook.ordered_stages()}
    unknown = {key for _at, key, _status in events if key not in stages}
    if unknown:
        raise ValidationFailed(
            _("Playbook %(p)s has no stage %(s)s.")
            % {"p": playbook.key, "s": ", ".join(sorted(unknown))}
        )
    first_at, first_key, _first_status = events[0]
    opp = Opportunity(
        account=account,
        name=name.strip()[:200],
        amount=parse_amount(amount),
        currency=validate_currency(currency),
        close_date=close_date,
        owner=owner,
        branch_id=owner.branch_id,
        playbook=playbook,
        stage=stages[first_key],
        status=Status.OPEN,
        source=source,
        stage_entered_at=first_at,
        created_at=first_at,
        updated_at=first_at,
        version=1,
    )
    opp.save()
    before: dict[str, Any] | None = None
    for at, key, status in events:
        with clock.frozen_at(at):
            opp.stage = stages[key]
            opp.status = status
            if status != Status.OPEN:
                opp.closed_on = timezone.localdate(at)
            after = tracked_values(opp)
            changed = (
                list(after) if before is None else [k for k in TRACKED if after[k] != before[k]]
            )
            if not changed:
                continue
            if before is not None and "stage" in changed:
                opp.stage_entered_at = at
            history_write(opp, actor=actor, action="import", changed=changed, reason=reason, at=at)
            opp.updated_at = at
            before = after
    Opportunity.objects.filter(pk=opp.pk).update(
        stage=opp.stage,
        status=opp.status,
        closed_on=opp.closed_on,
        stage_entered_at=opp.stage_entered_at,
        updated_at=opp.updated_at,
    )
    audit("opportunity.import", opp, actor=actor, after=audit_values(opp), reason=reason)
    return opp


@transaction.atomic
def opportunity_import_update(
    *, opportunity_id: int, actor: Any, values: dict[str, Any], at: dt.datetime, reason: str = ""
) -> bool:
    """Bring an opportunity imported before up to what the source says now (`values`: name,
    amount, currency, close_date, owner, stage, status); True when something changed.

    A re-import is a record of the source, not work done in loudou: no gate is passed. What
    changed is written as one history row (action "import") at `at`, the source's time of the
    latest change, or now when that is not after the deal's latest history; the version goes up,
    so a user editing the deal meanwhile gets a conflict instead of losing either change."""
    opp = Opportunity.objects.select_for_update().select_related("stage").get(pk=opportunity_id)
    before_tracked, before_audit = tracked_values(opp), audit_values(opp)
    for key, value in values.items():
        setattr(opp, key, value)
    owner_branch = opp.owner.branch_id
    if owner_branch is not None and owner_branch != opp.branch_id:
        opp.branch_id = owner_branch
    after_tracked = tracked_values(opp)
    changed = [k for k in TRACKED if after_tracked[k] != before_tracked[k]]
    if not changed and audit_values(opp) == before_audit:
        return False
    latest = opp.history.order_by("-valid_from").values_list("valid_from", flat=True).first()
    when = at if latest is None or at > latest else max(clock.now(), latest)
    if "stage" in changed:
        opp.stage_entered_at = when
    if "status" in changed:
        opp.closed_on = timezone.localdate(when) if opp.status != Status.OPEN else None
        if opp.status != Status.LOST:
            opp.lost_reason = None
    opp.version += 1
    opp.updated_at = when
    opp.save()
    reason = reason or _("updated from %(source)s") % {"source": opp.source or "import"}
    if changed:
        history_write(opp, actor=actor, action="import", changed=changed, reason=reason, at=when)
    audit(
        "opportunity.import",
        opp,
        actor=actor,
        before=before_audit,
        after=audit_values(opp),
        reason=reason,
    )
    return True
