"""Importing what a format's reader parsed: all or nothing, nothing twice.

`import_parsed` checks everything first (the stage mapping, owners, accounts, every deal's
history) and, if anything is wrong, writes nothing and raises `ImportRefused` with every problem,
each with its sheet, row, column, value and reason. Otherwise, in one transaction:

- accounts the file names and loudou does not have are created (through `account_create`, so
  they are qualified against the ICP like any other);
- deals seen for the first time are written in bulk with their history (one row per change of
  stage or status, plus the changes of amount and close date the source recorded), the stays the
  analytics read, an audit row each and their external ids;
- deals imported before (the same external id from the same source) are updated through
  `opportunity_import_update`, which writes history for what changed.

`dry_run` does all of it and rolls back, so its report is exactly what the real run will do."""

import datetime as dt
import operator
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.money import validate_currency
from loudou.customers.models import Account
from loudou.interop.models import ExternalId, RememberedMapping
from loudou.interop.records import Deal, Parsed, Problem
from loudou.interop.services import NoProgress, Progress
from loudou.interop.stagemap import LOST, WON, StageMapping, Target, build_mapping
from loudou.interop.writer import Plan, Step, WriteRefused, write
from loudou.org.access import manages_branch
from loudou.org.models import User
from loudou.pipeline.models import Status
from loudou.playbooks.models import Playbook, Stage, StageKind


class ImportRefused(ValidationFailed):
    """The file has problems; nothing was written. `details["problems"]` lists them all and
    `details["report"]` is the report of what was read."""

    code = "import_refused"


class _Rollback(Exception):
    pass


def import_parsed(
    parsed: Parsed,
    *,
    actor: User,
    playbook: Playbook,
    mapping_file: dict[str, Any] | None = None,
    default_owner: User | None = None,
    default_currency: str = "CNY",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import `parsed` onto `playbook` as `actor` (an administrator, or a manager whose branches
    own every deal), all or nothing; return the report."""
    progress = progress or NoProgress()
    mapping_file = mapping_file or {}
    if mapping_file.get("playbook") and mapping_file["playbook"] != playbook.key:
        raise ValidationFailed(
            _("The mapping file is for playbook %(m)s, not %(p)s.")
            % {"m": mapping_file["playbook"], "p": playbook.key}
        )
    default_currency = validate_currency(default_currency)
    problems = list(parsed.problems)
    plan = _plan(
        parsed, actor, playbook, mapping_file, default_owner, default_currency, problems, progress
    )
    report = _report(parsed, plan, playbook, dry_run)
    if problems:
        raise _refused(problems, report)
    try:
        with transaction.atomic():
            written = write(parsed, plan, actor, playbook, progress)
            report.update(written)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except WriteRefused as refused:  # a service refused a row: everything was rolled back
        raise _refused(refused.problems, report) from None
    return report


def _refused(problems: list[Problem], report: dict[str, Any]) -> ImportRefused:
    report["problems"] = [p.as_dict() for p in problems]
    message = ngettext(
        "%(n)s problem in the file; nothing was imported.",
        "%(n)s problems in the file; nothing was imported.",
        len(problems),
    ) % {"n": len(problems)}
    return ImportRefused(
        message, details={"problems": [str(p) for p in problems], "report": report}
    )


def _report(parsed: Parsed, plan: Plan, playbook: Playbook, dry_run: bool) -> dict[str, Any]:
    stages = Counter(
        (steps[-1][1].key if steps[-1][2] == Status.OPEN else steps[-1][2])
        for steps in [s for _d, s in plan.new] + [s for _d, s, _id in plan.known]
    )
    return {
        "source": parsed.source,
        "playbook": playbook.key,
        "dry_run": dry_run,
        "deals_in_file": len(parsed.deals),
        "new": len(plan.new),
        "already_imported": len(plan.known),
        "accounts_to_create": sorted(n for n, a in plan.accounts.items() if a is None),
        "by_stage": dict(sorted(stages.items())),
        "history_rows_collapsed": plan.collapsed,
        "mapping": {name: t.label() for name, t in plan.mapping.targets.items()},
        "mapping_how": dict(plan.mapping.how),
        "mapping_yaml": plan.mapping.as_yaml(),
        "notes": list(parsed.notes),
        "problems": [],
    }


# --- checking -----------------------------------------------------------------------------


def _plan(
    parsed: Parsed,
    actor: User,
    playbook: Playbook,
    mapping_file: dict[str, Any],
    default_owner: User | None,
    default_currency: str,
    problems: list[Problem],
    progress: Progress,
) -> Plan:
    hints = dict(parsed.stage_hints)
    for deal in parsed.deals:
        for name in [deal.stage, *(e.stage for e in deal.events)]:
            if name:
                hints.setdefault(name, None)
    remembered = (
        RememberedMapping.objects.filter(source=parsed.source, playbook_key=playbook.key)
        .values_list("stages", flat=True)
        .first()
    )
    mapping, mapping_problems = build_mapping(
        playbook, hints, mapping_file.get("stages"), remembered
    )
    mapping.owners = dict(mapping_file.get("owners") or {})
    mapping.columns = dict(mapping_file.get("columns") or {})
    problems.extend(Problem(_("mapping"), 0, "", "", p) for p in mapping_problems)
    owners = _owners(parsed, mapping, default_owner, actor, problems)
    accounts = _accounts(parsed, problems, actor)
    plan = Plan(mapping=mapping, owners=owners, accounts=accounts, default_owner=default_owner)
    ids = dict(
        ExternalId.objects.filter(source=parsed.source, kind="opportunity").values_list(
            "external_id", "object_id"
        )
    )
    seen: dict[str, int] = {}
    stages = _Stages.of(playbook.ordered_stages(), mapping)
    progress.start(_("Checking"), len(parsed.deals))
    for deal in parsed.deals:
        progress.advance()
        if deal.external_id in seen:
            problems.append(
                Problem(
                    deal.sheet,
                    deal.row,
                    "",
                    deal.external_id,
                    _("the same deal as row %(r)s (same id)") % {"r": seen[deal.external_id]},
                )
            )
            continue
        seen[deal.external_id] = deal.row
        if not deal.currency:
            deal.currency = default_currency
        steps = _steps(deal, stages, problems, plan)
        if steps is None:
            continue
        if deal.external_id in ids:
            plan.known.append((deal, steps, ids[deal.external_id]))
        else:
            plan.new.append((deal, steps))
    return plan


def owner_index(users: list[User]) -> dict[str, User]:
    """Active users by every name a CRM export may give an owner: username, e-mail, display name,
    full name (both orders), compared in lower case."""
    index: dict[str, User] = {}
    for known in users:
        full = f"{known.first_name} {known.last_name}".strip()
        reverse = f"{known.last_name}{known.first_name}".strip()
        for key in (known.username, known.email, known.display_name, full, reverse):
            if key:
                index.setdefault(key.strip().lower(), known)
    return index


def _owners(
    parsed: Parsed,
    mapping: StageMapping,
    default_owner: User | None,
    actor: User,
    problems: list[Problem],
) -> dict[str, User]:
    """The loudou user behind each owner name of the file: the mapping file's, else a user whose
    username, e-mail, display name or full name it is (case ignored), else the default owner."""
    users = list(User.objects.filter(is_active=True))
    index = owner_index(users)
    by_username = {u.username: u for u in users}
    found: dict[str, User] = {}
    names = {d.owner for d in parsed.deals} | {a.owner for a in parsed.accounts}
    for name in sorted(names):
        user: User | None = None
        if name in mapping.owners:
            user = by_username.get(mapping.owners[name])
            if user is None:
                problems.append(
                    Problem(
                        _("mapping"),
                        0,
                        "owners",
                        name,
                        _("maps to “%(u)s”, who is no active user") % {"u": mapping.owners[name]},
                    )
                )
                continue
        user = user or (index.get(name.strip().lower()) if name else None) or default_owner
        if user is None:
            continue  # reported on each row below
        if user.branch_id is None:
            problems.append(
                Problem(
                    _("mapping"),
                    0,
                    "owners",
                    name,
                    _("%(u)s belongs to no branch; an administrator must assign one")
                    % {"u": user.username},
                )
            )
            continue
        if not manages_branch(actor, user.branch_id):
            raise PermissionDenied(
                _("Only an administrator, or a manager of every owner's branch, may import.")
            )
        found[name] = user
    for account in parsed.accounts:
        if account.owner and account.owner not in found:
            problems.append(
                Problem(
                    account.sheet,
                    account.row,
                    _("owner"),
                    account.owner,
                    _("no loudou user by this name"),
                )
            )
    # Rows whose owner cell was already found bad (a set: a file of 100,000 deals with unknown
    # owners made this check compare every deal with every problem before it).
    reported = {(p.sheet, p.row) for p in problems if p.column == "owner"}
    for deal in parsed.deals:
        if deal.owner not in found and (deal.sheet, deal.row) not in reported:
            problems.append(
                Problem(
                    deal.sheet,
                    deal.row,
                    _("owner"),
                    deal.owner,
                    _(
                        "no loudou user by this name: map it in the mapping file's owners, or give "
                        "a default owner"
                    )
                    if deal.owner
                    else _("no owner: give a default owner"),
                )
            )
    return found


def _accounts(parsed: Parsed, problems: list[Problem], actor: User) -> dict[str, Account | None]:
    """Each account name the deals use: the account of that name the actor may see (the file's
    own accounts are created first), or None when it must be created."""
    existing: dict[str, Account] = {}
    # Only the accounts the actor may see, as opportunity_create requires: the bulk insert does
    # not go through it, and matching every account by name let a manager put deals on another
    # branch's account they cannot see.
    visible = Account.objects.visible_to(actor).order_by("id")
    for account in visible.only("id", "name", "owner_id", "branch_id"):
        existing.setdefault(account.name.strip().lower(), account)
    out: dict[str, Account | None] = {}
    for deal in parsed.deals:
        name = deal.account.strip()
        if not name:
            problems.append(Problem(deal.sheet, deal.row, _("account"), "", _("required")))
            continue
        if name not in out:
            out[name] = existing.get(name.lower())
    return out


@dataclass(frozen=True)
class _Stages:
    """The playbook's stages as `_steps` looks them up, worked out once per import."""

    by_key: dict[str, Stage]
    first_open: Stage
    won: Stage | None
    tz: Any  # the time zone of the noon a closing date without a time stands for
    targets: "_Targets"  # the mapping's target of each source stage name, looked up once

    @classmethod
    def of(cls, stages: list[Stage], mapping: StageMapping) -> "_Stages":
        return cls(
            by_key={s.key: s for s in stages},
            first_open=next(s for s in stages if s.kind == StageKind.OPEN),
            won=next((s for s in stages if s.kind == StageKind.WON), None),
            tz=timezone.get_current_timezone(),
            targets=_Targets(mapping),
        )


class _Targets(dict[str, Target | None]):
    """`mapping.target(name)` of each source stage name, worked out the first time it is asked
    (a file names a handful of stages, hundreds of thousands of times)."""

    def __init__(self, mapping: StageMapping) -> None:
        super().__init__()
        self.mapping = mapping

    def __missing__(self, name: str) -> Target | None:
        target = self[name] = self.mapping.target(name)
        return target


def _steps(deal: Deal, stages: _Stages, problems: list[Problem], plan: Plan) -> list[Step] | None:
    """The deal's history in playbook terms, oldest first, ending in its current state; None when
    a stage has no mapping (the mapping's problem names it once) or the history is impossible."""
    by_key, first_open, won_stage = stages.by_key, stages.first_open, stages.won
    targets = stages.targets
    steps: list[Step] = []
    last_open: Stage | None = None  # the stage a "lost" event leaves the deal in
    for event in sorted(deal.events, key=_AT):
        target = targets[event.stage]
        if target is None:
            return None
        status = event.status or (target.status if target.status in (WON, LOST) else OPEN)
        if status == WON_STATUS and won_stage is not None:
            stage = won_stage
        elif target.status == LOST or target.status == WON:
            stage = last_open or first_open
        else:
            stage = by_key[target.stage_key]
        amount = event.amount if event.amount is not None else deal.amount
        steps.append((event.at, stage, status, amount, event.close_date or deal.close_date))
        if status == OPEN:
            last_open = stage

    # The current state, from the deal's stage and status columns.
    current = targets[deal.stage] if deal.stage else None
    if deal.stage and current is None:
        return None
    named = by_key[current.stage_key] if current is not None and current.status == "open" else None
    status = deal.status or (current.status if current is not None else OPEN)
    if status not in (OPEN, WON_STATUS, LOST_STATUS):
        status = OPEN
    if status == WON_STATUS and won_stage is not None:
        final = won_stage
    else:  # open, or lost in the stage the file names (Pipedrive) or the last one it was in
        final = named or last_open or first_open

    start = min([deal.created_at, *(s[0] for s in steps)])
    if not steps or steps[0][2] != OPEN:
        # A deal closed with no history (Pipedrive, Odoo) was open in the stage the file names
        # (where it was won or lost), not in the playbook's first stage.
        opening = final if final.kind == OPEN_KIND else (last_open or named or first_open)
        steps.insert(0, (start, opening, OPEN, deal.amount, deal.close_date))
    elif start < steps[0][0]:
        # The history begins after the deal was created (a history sheet that starts later,
        # Salesforce rows bulk-loaded after CreatedDate): keep the creation date, taking the first
        # recorded stage as the one it was created in, rather than date the deal from its first
        # history row and lose when it was created.
        steps[0] = (start, *steps[0][1:])
    end_at = deal.closed_at or steps[-1][0]
    if status != OPEN and deal.closed_at is None:
        end_at = max(steps[-1][0], _noon(deal.close_date, stages.tz))
    # Stages compared by identity: every Stage here is one of `stages`, one instance per stage
    # (a tuple comparison called Model.__eq__ for each pair of different stages).
    last = steps[-1]
    if not (last[1] is final and last[2:] == (status, deal.amount, deal.close_date)):
        steps.append((max(end_at, steps[-1][0]), final, status, deal.amount, deal.close_date))

    # One row per save (Salesforce) repeats unchanged values: keep the rows that change something.
    kept: list[Step] = [steps[0]]
    for step in steps[1:]:
        before = kept[-1]
        if step[1] is before[1] and step[2:] == before[2:]:
            plan.collapsed += 1
            continue
        if kept[-1][2] != OPEN:
            problems.append(
                Problem(
                    deal.sheet,
                    deal.row,
                    "",
                    deal.external_id,
                    _(
                        "its history goes on after it was won or lost (reopened deals are not "
                        "imported)"
                    ),
                )
            )
            return None
        kept.append(step)
    return kept


def _noon(day: dt.date, tz: Any) -> dt.datetime:
    # What timezone.make_aware(naive noon, tz) gives (it sets tzinfo), without its checks.
    return dt.datetime.combine(day, _NOON, tzinfo=tz)


_NOON = dt.time(12, 0)
_AT = operator.attrgetter("at")
# The members _steps compares with, as module globals: reading Status.OPEN goes through the enum
# class each time, which cost more than the rest of _steps.
OPEN, WON_STATUS, LOST_STATUS, OPEN_KIND = Status.OPEN, Status.WON, Status.LOST, StageKind.OPEN
