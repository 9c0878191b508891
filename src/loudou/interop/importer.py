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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loudou.analytics.models import OpportunityStay
from loudou.analytics.stays import _outcome
from loudou.core import clock
from loudou.core.errors import LoudouError, PermissionDenied, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.core.money import validate_currency
from loudou.customers.models import Account, Contact
from loudou.customers.services import (
    account_create,
    account_update,
    contact_create,
    contact_update,
)
from loudou.interop.bulk import Inserter, reserve_ids, sync_sequences
from loudou.interop.models import ExternalId
from loudou.interop.records import Deal, Parsed, Problem
from loudou.interop.services import ExternalIds, NoProgress, Progress, opportunity_import_update
from loudou.interop.stagemap import LOST, WON, StageMapping, build_mapping
from loudou.org.access import manages_branch
from loudou.org.models import User
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import ForecastCategory, Playbook, Stage, StageKind

# One resolved event: from `at`, in `stage` with `status`, amount and close date.
Step = tuple[dt.datetime, Stage, str, Any, dt.date]


class ImportRefused(ValidationFailed):
    """The file has problems; nothing was written. `details["problems"]` lists them all and
    `details["report"]` is the report of what was read."""

    code = "import_refused"


class _Rollback(Exception):
    pass


@dataclass
class Plan:
    """What will be written, decided before writing."""

    mapping: StageMapping
    owners: dict[str, User]
    accounts: dict[str, Account | None]  # name → existing account, or None: to create
    new: list[tuple[Deal, list[Step]]] = field(default_factory=list)
    known: list[tuple[Deal, list[Step], int]] = field(default_factory=list)  # (…, opportunity id)
    collapsed: int = 0
    default_owner: User | None = None


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
            written = _write(parsed, plan, actor, playbook, progress)
            report.update(written)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except _WriteRefused as refused:  # a service refused a row: everything was rolled back
        raise _refused(refused.problems, report) from None
    return report


class _WriteRefused(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems


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
    mapping, mapping_problems = build_mapping(playbook, hints, mapping_file.get("stages"))
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
    stages = playbook.ordered_stages()
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
        steps = _steps(deal, mapping, stages, problems, plan)
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
    for deal in parsed.deals:
        if deal.owner not in found and not any(
            p.row == deal.row and p.sheet == deal.sheet and p.column == "owner" for p in problems
        ):
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


def _steps(
    deal: Deal, mapping: StageMapping, stages: list[Stage], problems: list[Problem], plan: Plan
) -> list[Step] | None:
    """The deal's history in playbook terms, oldest first, ending in its current state; None when
    a stage has no mapping (the mapping's problem names it once) or the history is impossible."""
    by_key = {s.key: s for s in stages}
    first_open = next(s for s in stages if s.kind == StageKind.OPEN)
    won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
    steps: list[Step] = []
    last_open: Stage | None = None  # the stage a "lost" event leaves the deal in
    for event in sorted(deal.events, key=lambda e: e.at):
        target = mapping.target(event.stage)
        if target is None:
            return None
        status = event.status or (target.status if target.status in (WON, LOST) else Status.OPEN)
        if status == Status.WON and won_stage is not None:
            stage = won_stage
        elif target.status == LOST or target.status == WON:
            stage = last_open or first_open
        else:
            stage = by_key[target.stage_key]
        amount = event.amount if event.amount is not None else deal.amount
        steps.append((event.at, stage, status, amount, event.close_date or deal.close_date))
        if status == Status.OPEN:
            last_open = stage

    # The current state, from the deal's stage and status columns.
    current = mapping.target(deal.stage) if deal.stage else None
    if deal.stage and current is None:
        return None
    named = by_key[current.stage_key] if current is not None and current.status == "open" else None
    status = deal.status or (current.status if current is not None else Status.OPEN)
    if status not in (Status.OPEN, Status.WON, Status.LOST):
        status = Status.OPEN
    if status == Status.WON and won_stage is not None:
        final = won_stage
    else:  # open, or lost in the stage the file names (Pipedrive) or the last one it was in
        final = named or last_open or first_open

    start = min([deal.created_at, *(s[0] for s in steps)])
    if not steps or steps[0][2] != Status.OPEN:
        # A deal closed with no history (Pipedrive, Odoo) was open in the stage the file names
        # (where it was won or lost), not in the playbook's first stage.
        opening = final if final.kind == StageKind.OPEN else (last_open or named or first_open)
        steps.insert(0, (start, opening, Status.OPEN, deal.amount, deal.close_date))
    elif start < steps[0][0]:
        # The history begins after the deal was created (a history sheet that starts later,
        # Salesforce rows bulk-loaded after CreatedDate): keep the creation date, taking the first
        # recorded stage as the one it was created in, rather than date the deal from its first
        # history row and lose when it was created.
        steps[0] = (start, *steps[0][1:])
    end_at = deal.closed_at or steps[-1][0]
    if status != Status.OPEN and deal.closed_at is None:
        end_at = max(steps[-1][0], _noon(deal.close_date))
    if steps[-1][1:] != (final, status, deal.amount, deal.close_date):
        steps.append((max(end_at, steps[-1][0]), final, status, deal.amount, deal.close_date))

    # One row per save (Salesforce) repeats unchanged values: keep the rows that change something.
    kept: list[Step] = [steps[0]]
    for step in steps[1:]:
        if step[1:] == kept[-1][1:]:
            plan.collapsed += 1
            continue
        if kept[-1][2] != Status.OPEN:
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


def _noon(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))


# --- writing ------------------------------------------------------------------------------


def _write(
    parsed: Parsed, plan: Plan, actor: User, playbook: Playbook, progress: Progress
) -> dict[str, Any]:
    ids = ExternalIds(parsed.source)
    problems: list[Problem] = []
    sheet_accounts = _write_accounts(parsed, plan, actor, ids, problems)
    contacts = _write_contacts(parsed, plan, actor, ids, problems)
    if problems:  # refused by a service (a duplicate credit code, …): roll everything back
        raise _WriteRefused(problems)
    created_accounts = _create_accounts(plan, parsed, actor)
    history_rows = _insert_new(plan, actor, playbook, ids, progress)
    updated = unchanged = 0
    progress.start(_("Updating"), len(plan.known))
    for deal, steps, opportunity_id in plan.known:
        progress.advance()
        if _update_known(deal, steps, opportunity_id, plan, actor):
            updated += 1
        else:
            unchanged += 1
    ids.flush()
    return {
        "created": {
            "accounts": created_accounts + sheet_accounts["created"],
            "contacts": contacts["created"],
            "opportunities": len(plan.new),
            "history_rows": history_rows,
        },
        "updated": updated,
        "unchanged": unchanged,
        "accounts_updated": sheet_accounts["updated"],
        "contacts_updated": contacts["updated"],
    }


def _service_problem(row: Any, error: LoudouError) -> Problem:
    details = getattr(error, "details", {}) or {}
    column = next(iter(details), "") if isinstance(details, dict) else ""
    return Problem(row.sheet, row.row, column, "", error.message)


def _write_accounts(
    parsed: Parsed, plan: Plan, actor: User, ids: ExternalIds, problems: list[Problem]
) -> dict[str, int]:
    """The accounts sheet of a native file: new accounts created, known ones updated (both through
    the customer services, so they are qualified against the ICP), then the group parents set."""
    counts = {"created": 0, "updated": 0}
    by_name = {a.name.strip().lower(): a for a in Account.objects.order_by("-id")}
    written: list[tuple[Any, Account]] = []
    for row in parsed.accounts:
        # The row's owner, else the default owner, else the importing user (not the command
        # line's system actor, who belongs to no branch).
        owner = plan.owners.get(row.owner) or plan.default_owner
        if owner is None and getattr(actor, "branch_id", None):
            owner = actor
        if owner is None:
            problems.append(
                Problem(
                    row.sheet, row.row, "owner", "", _("no owner: give one, or a default owner")
                )
            )
            continue
        account = ids.get("account", row.external_id, Account) or by_name.get(row.name.lower())
        try:
            if account is None:
                account = account_create(actor=actor, owner=owner, name=row.name, **row.fields)
                counts["created"] += 1
            elif any(_differs(account, k, v) for k, v in [("name", row.name), *row.fields.items()]):
                account = account_update(account=account, actor=actor, name=row.name, **row.fields)
                counts["updated"] += 1
        except LoudouError as error:
            problems.append(_service_problem(row, error))
            continue
        if not ids.has("account", row.external_id):
            ids.link("account", row.external_id, account)
        by_name[row.name.lower()] = account
        plan.accounts[row.name] = account
        written.append((row, account))
    for row, account in written:
        if not row.parent:
            continue
        parent = by_name.get(row.parent.strip().lower())
        if parent is None:
            problems.append(Problem(row.sheet, row.row, "parent", row.parent, _("no such account")))
        elif account.parent_id != parent.pk:
            try:
                account_update(account=account, actor=actor, parent=parent)
            except LoudouError as error:
                problems.append(_service_problem(row, error))
    # Deals go on the accounts of the sheet, not on any account of that name (which the actor
    # may not see: see _accounts).
    from_sheet = {row.name.strip().lower(): account for row, account in written}
    for name in list(plan.accounts):
        if plan.accounts[name] is None and name.lower() in from_sheet:
            plan.accounts[name] = from_sheet[name.lower()]
    return counts


def _differs(account: Account, key: str, value: Any) -> bool:
    current = getattr(account, "industry_id" if key == "industry" else key)
    if key == "industry":
        return bool(value) and (account.industry is None or account.industry.key != value)
    return str(current if current is not None else "") != str(value if value is not None else "")


def _write_contacts(
    parsed: Parsed, plan: Plan, actor: User, ids: ExternalIds, problems: list[Problem]
) -> dict[str, int]:
    """The contacts sheet of a native file: new contacts added to their accounts, known ones
    updated."""
    counts = {"created": 0, "updated": 0}
    by_name = {a.name.strip().lower(): a for a in Account.objects.order_by("-id")}
    for row in parsed.contacts:
        account = by_name.get(row.account.strip().lower())
        if account is None:
            problems.append(
                Problem(row.sheet, row.row, "account", row.account, _("no such account"))
            )
            continue
        contact = ids.get("contact", row.external_id, Contact)
        try:
            if contact is None:
                contact = contact_create(account=account, actor=actor, **row.fields)
                ids.link("contact", row.external_id, contact)
                counts["created"] += 1
            elif any(str(getattr(contact, k)) != str(v) for k, v in row.fields.items()):
                contact_update(contact=contact, actor=actor, **row.fields)
                counts["updated"] += 1
        except LoudouError as error:
            problems.append(_service_problem(row, error))
    return counts


def _create_accounts(plan: Plan, parsed: Parsed, actor: User) -> int:
    first_owner: dict[str, User] = {}
    for deal in parsed.deals:
        if deal.owner in plan.owners:
            first_owner.setdefault(deal.account.strip(), plan.owners[deal.owner])
    created = 0
    for name, account in list(plan.accounts.items()):
        if account is None and name in first_owner:
            plan.accounts[name] = account_create(
                actor=actor, owner=first_owner[name], name=name[:200]
            )
            created += 1
    return created


OPP_FIELDS = (
    "id", "account_id", "name", "need", "amount", "currency", "close_date", "owner_id",
    "branch_id", "playbook_id", "stage_id", "status", "probability_override", "source",
    "closed_on", "stage_entered_at", "created_at", "updated_at", "version",
)  # fmt: skip
HISTORY_FIELDS = (
    "opportunity_id", "valid_from", "stage_id", "status", "amount", "currency", "close_date",
    "probability", "owner_id", "forecast_category", "actor_id", "action", "changed", "reason",
)  # fmt: skip
STAY_FIELDS = ("opportunity_id", "stage_id", "stage_order", "entered_at", "exited_at", "outcome")
AUDIT_FIELDS = (
    "at", "actor_id", "action", "content_type_id", "object_id", "object_repr", "before", "after",
    "reason",
)  # fmt: skip
EXTERNAL_FIELDS = (
    "source", "kind", "external_id", "content_type_id", "object_id", "imported_at",
)  # fmt: skip
# The tracked fields that can change between an imported deal's steps, in the services' TRACKED
# order: probability and forecast category follow the stage and status, and a row written by a
# service names them when they change, so an imported row must too (the history timeline shows
# what `changed` lists).
# Rows and seconds in the database per table of the last bulk write (bench/import_bench.py).
DATABASE_SECONDS: dict[str, tuple[int, float]] = {}
TRACKED_ORDER = ("stage", "status", "amount", "close_date", "probability", "forecast_category")


def _probability(stage: Stage, status: str) -> int:
    return 100 if status == Status.WON else 0 if status == Status.LOST else stage.probability


def _forecast(stage: Stage, status: str) -> str:
    if status == Status.WON:
        return ForecastCategory.CLOSED
    if status == Status.LOST:
        return ForecastCategory.OMITTED
    return stage.forecast_category


def _insert_new(
    plan: Plan, actor: User, playbook: Playbook, ids: ExternalIds, progress: Progress
) -> int:
    """Write the new deals, their history, stays, audit rows and external ids in bulk."""
    if not plan.new:
        return 0
    opportunity_ids = reserve_ids(Opportunity, len(plan.new))
    opps, history, stays, audits, externals = (
        Inserter(Opportunity, OPP_FIELDS),
        Inserter(OpportunityHistory, HISTORY_FIELDS),
        Inserter(OpportunityStay, STAY_FIELDS),
        Inserter(AuditEvent, AUDIT_FIELDS),
        Inserter(ExternalId, EXTERNAL_FIELDS),
    )
    inserters = (opps, history, stays, audits, externals)

    opp_type = ContentType.objects.get_for_model(Opportunity).pk
    now = clock.now()
    actor_id = actor.pk
    reason = _("imported from %(source)s") % {"source": ids.source}
    progress.start(_("Writing"), len(plan.new))
    batch: dict[str, list[Any]] = defaultdict(list)
    tz = timezone.get_current_timezone()  # looked up once: the lookup costs more than a row
    # Per stage and status: (stage id, order, probability, forecast category), so the loop below
    # compares plain values (comparing model instances goes through Model.__eq__ each time).
    facts: dict[tuple[int, str], tuple[int, int, int, str]] = {
        (stage.pk, status): (
            stage.pk,
            stage.order,
            _probability(stage, status),
            _forecast(stage, status),
        )
        for stage in playbook.ordered_stages()
        for status in (Status.OPEN, Status.WON, Status.LOST)
    }
    everything = ["stage", "status", "amount", "currency", "close_date", "probability", "owner",
                  "forecast_category"]  # fmt: skip
    history_rows, stay_rows = batch["history"], batch["stays"]
    for (deal, steps), pk in zip(plan.new, opportunity_ids, strict=True):
        owner = plan.owners[deal.owner]
        account = plan.accounts[deal.account.strip()]
        assert account is not None
        first_at, last = steps[0][0], steps[-1]
        _at, stage, status, amount, close = last
        stage_entered = last[0]
        for step in reversed(steps):  # when it last came into the stage it is in
            if step[1].pk != stage.pk:
                break
            stage_entered = step[0]
        batch["opps"].append(
            (
                pk, account.pk, deal.name[:200], deal.need, amount, deal.currency, close,
                owner.pk, owner.branch_id, playbook.pk, stage.pk, status,
                deal.probability if status == Status.OPEN and deal.probability is not None
                and deal.probability != stage.probability else None,
                ids.source, last[0].astimezone(tz).date() if status != Status.OPEN else None,
                stage_entered, first_at, last[0], 1,
            )
        )  # fmt: skip
        previous: tuple[Any, ...] | None = None
        open_stay: list[Any] | None = None
        currency, owner_id = deal.currency, owner.pk
        for at, stage, status, amount, close in steps:
            stage_id, order, probability, forecast = facts[(stage.pk, status)]
            key = (stage_id, status, amount, close, probability, forecast)
            if previous is None:
                changed = everything
            else:
                changed = [
                    n for n, a, b in zip(TRACKED_ORDER, previous, key, strict=True) if a != b
                ]
            history_rows.append(
                (pk, at, stage_id, status, amount, currency, close, probability, owner_id,
                 forecast, actor_id, "import", changed, reason)
            )  # fmt: skip
            if open_stay is not None and (stage_id != open_stay[1] or status != Status.OPEN):
                open_stay[4] = at
                open_stay[5] = _outcome(open_stay[2], status, order)
                stay_rows.append(tuple(open_stay))
                open_stay = None
            if open_stay is None and status == Status.OPEN:
                open_stay = [pk, stage_id, order, at, None, ""]
            previous = key
        if open_stay is not None:
            stay_rows.append(tuple(open_stay))
        batch["audits"].append(
            (now, actor_id, "opportunity.import", opp_type, str(pk), deal.name[:300], None,
             {"external_id": deal.external_id, "row": deal.row}, reason)
        )  # fmt: skip
        batch["externals"].append((ids.source, "opportunity", deal.external_id, opp_type, pk, now))
        if len(batch["opps"]) >= 5000:
            _flush(batch, inserters, progress)
            history_rows, stay_rows = batch["history"], batch["stays"]
    _flush(batch, inserters, progress)
    sync_sequences(Opportunity)
    DATABASE_SECONDS.clear()
    DATABASE_SECONDS.update({i.model._meta.label: (i.count, i.seconds) for i in inserters})
    return history.count


def _flush(batch: dict[str, list[Any]], inserters: tuple[Inserter, ...], progress: Any) -> None:
    done = len(batch["opps"])
    for key, inserter in zip(
        ("opps", "history", "stays", "audits", "externals"), inserters, strict=True
    ):
        inserter.write(batch[key])
        batch[key] = []
    if progress is not None:
        progress.advance(done)


def _update_known(
    deal: Deal, steps: list[Step], opportunity_id: int, plan: Plan, actor: User
) -> bool:
    """Bring a deal imported before up to the file; True if anything changed."""
    _at, stage, status, amount, close = steps[-1]
    values = {
        "name": deal.name[:200],
        "amount": amount,
        "currency": deal.currency,
        "close_date": close,
        "owner": plan.owners[deal.owner],
        "stage": stage,
        "status": status,
    }
    return opportunity_import_update(
        opportunity_id=opportunity_id, actor=actor, values=values, at=steps[-1][0]
    )
