"""Writing an import that `loudou.interop.importer` has checked: in the caller's transaction,
the file's own accounts and contacts through the customer services, the accounts the deals name,
the new deals in bulk with their history, stays, audit events and external ids, and the deals
imported before through `opportunity_import_update`. A row a service refuses raises
`WriteRefused` with its problems (the importer turns them into `ImportRefused`, and the
transaction rolls everything back)."""

import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.analytics.models import OpportunityStay, StateSpan
from loudou.analytics.spans import spans_derive
from loudou.analytics.stays import stays_derive
from loudou.core import clock
from loudou.core.errors import LoudouError
from loudou.core.models import AuditEvent
from loudou.customers.models import Account, Contact
from loudou.customers.services import (
    account_create,
    account_update,
    contact_create,
    contact_update,
)
from loudou.interop.bulk import (
    ForeignKeysSetAside,
    IndexesSetAside,
    Inserter,
    JsonText,
    larger_page_cache,
    reserve_ids,
    sync_sequences,
)
from loudou.interop.models import ExternalId, RememberedMapping
from loudou.interop.records import Deal, Parsed, Problem
from loudou.interop.services import ExternalIds, Progress, opportunity_import_update
from loudou.interop.stagemap import StageMapping
from loudou.org.models import User
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import ForecastCategory, Playbook, Stage

# One resolved event: from `at`, in `stage` with `status`, amount and close date.
Step = tuple[dt.datetime, Stage, str, Any, dt.date]


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


class WriteRefused(Exception):
    """Rows the services refused while writing (the import is rolled back)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems


def write(
    parsed: Parsed, plan: Plan, actor: User, playbook: Playbook, progress: Progress
) -> dict[str, Any]:
    ids = ExternalIds(parsed.source)
    _remember_mapping(parsed.source, plan.mapping)
    problems: list[Problem] = []
    sheet_accounts = _write_accounts(parsed, plan, actor, ids, problems)
    contacts = _write_contacts(parsed, plan, actor, ids, problems)
    if problems:  # refused by a service (a duplicate credit code, …): roll everything back
        raise WriteRefused(problems)
    created_accounts = _create_accounts(plan, parsed, actor)
    with larger_page_cache(PAGE_CACHE_MB):
        history_rows = insert_new(
            plan.new,
            plan.owners,
            plan.accounts,
            actor=actor,
            playbook=playbook,
            ids=ids,
            progress=progress,
        )
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


def _remember_mapping(source: str, mapping: StageMapping) -> None:
    """Keep the stage mapping this import uses for the next import from the same source (inside
    the import's transaction: a dry run or a refused import leaves the last one in place)."""
    stages = {name: target.label() for name, target in mapping.targets.items()}
    found = RememberedMapping.objects.filter(source=source, playbook_key=mapping.playbook.key)
    if found.exists():
        found.update(stages={**found.get().stages, **stages}, updated_at=timezone.now())
    else:
        RememberedMapping.objects.create(
            source=source,
            playbook_key=mapping.playbook.key,
            stages=stages,
            updated_at=timezone.now(),
        )


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
# A history row's `changed` as JSON text, by which of TRACKED_ORDER changed (bit i: the i-th):
# worked out once, not encoded per row.
CHANGED_JSON = [
    JsonText(json.dumps([n for i, n in enumerate(TRACKED_ORDER) if mask >> i & 1]))
    for mask in range(1 << len(TRACKED_ORDER))
]


# The tables a large load writes most rows into, whose indexes it sets aside while it writes; the
# audit and external-id tables are left as they are (shared with everything else, and cheap).
INDEXED_ASIDE = (Opportunity, OpportunityHistory, OpportunityStay, StateSpan)
# How large SQLite's page cache may grow while new deals are written (`larger_page_cache`): more
# than the ~300 MB of pages 10⁵ deals with their history, stays and spans fill in one transaction.
PAGE_CACHE_MB = 512
# From how many new deals a load counts as large: below it, maintaining the indexes row by row
# costs less than creating them again.
INITIAL_LOAD_MIN = 10_000


def _initial_load(new_deals: int) -> bool:
    """Whether to set the indexes aside: a large load into a database holding fewer deals than it
    brings (creating the indexes again reads every row of the tables, old ones too)."""
    return new_deals >= INITIAL_LOAD_MIN and Opportunity.objects.count() <= new_deals


def _probability(stage: Stage, status: str) -> int:
    return 100 if status == Status.WON else 0 if status == Status.LOST else stage.probability


def _forecast(stage: Stage, status: str) -> str:
    if status == Status.WON:
        return ForecastCategory.CLOSED
    if status == Status.LOST:
        return ForecastCategory.OMITTED
    return stage.forecast_category


def insert_new(
    new: list[tuple[Deal, list[Step]]],
    owners: Mapping[str, User],
    accounts: Mapping[str, Account | None],
    *,
    actor: User,
    playbook: Playbook,
    ids: ExternalIds,
    progress: Progress,
) -> int:
    """Write deals seen for the first time (each with its steps, checked), their history, audit
    rows and external ids in bulk, then their stays and state spans from that history (one
    statement each); return the number of history rows. `owners` and `accounts` give the user and the
    account behind each deal's owner and account name. A load large against what the database
    holds sets the deal tables' indexes aside while it writes (`IndexesSetAside`), and on
    PostgreSQL their foreign keys (`ForeignKeysSetAside`).

    Imported history is a record of the past, not work done in loudou: no gate is passed, and
    the rows are those `history_write` would have written for the same steps."""
    if not new:
        return 0
    opportunity_ids = reserve_ids(Opportunity, len(new))
    opps, history, audits, externals = (
        Inserter(Opportunity, OPP_FIELDS),
        Inserter(OpportunityHistory, HISTORY_FIELDS),
        Inserter(AuditEvent, AUDIT_FIELDS),
        Inserter(ExternalId, EXTERNAL_FIELDS),
    )
    inserters = (opps, history, audits, externals)
    initial = _initial_load(len(new))
    aside, keys = IndexesSetAside(INDEXED_ASIDE), ForeignKeysSetAside(INDEXED_ASIDE)
    if initial:
        keys.drop()
        aside.drop()

    opp_type = ContentType.objects.get_for_model(Opportunity).pk
    now = clock.now()
    actor_id = actor.pk
    reason = _("imported from %(source)s") % {"source": ids.source}
    progress.start(_("Writing"), len(new))
    batch: dict[str, list[Any]] = defaultdict(list)
    tz = timezone.get_current_timezone()  # looked up once: the lookup costs more than a row
    # Per stage and status: (probability, forecast category), so the loop below compares plain
    # values (comparing model instances goes through Model.__eq__ each time).
    facts: dict[tuple[int, str], tuple[int, str]] = {
        (stage.id, status): (_probability(stage, status), _forecast(stage, status))
        for stage in playbook.ordered_stages()
        for status in (Status.OPEN, Status.WON, Status.LOST)
    }
    everything = JsonText(json.dumps(["stage", "status", "amount", "currency", "close_date",
                                      "probability", "owner", "forecast_category"]))  # fmt: skip
    # Per owner and account name, the ids a row needs: looked up once, not per deal (`.pk` is a
    # property that goes through the model's meta each time).
    owner_ids = {name: (user.pk, user.branch_id) for name, user in owners.items()}
    account_ids = {name: account.pk for name, account in accounts.items() if account is not None}
    playbook_id, source = playbook.pk, ids.source
    import_action, audit_action, opportunity_kind = "import", "opportunity.import", "opportunity"
    open_status = Status.OPEN  # a local: Status.OPEN goes through the enum class each time
    history_rows = batch["history"]
    for (deal, steps), pk in zip(new, opportunity_ids, strict=True):
        owner_id, branch_id = owner_ids[deal.owner]
        account_id = account_ids[deal.account.strip()]
        last = steps[-1]
        last_at, stage, status, amount, close = last
        stage_entered = last_at
        for step in reversed(steps):  # when it last came into the stage it is in
            if step[1].id != stage.id:
                break
            stage_entered = step[0]
        probability = deal.probability
        batch["opps"].append(
            (
                pk, account_id, deal.name[:200], deal.need, amount, deal.currency, close,
                owner_id, branch_id, playbook_id, stage.id, status,
                probability if status == open_status and probability is not None
                and probability != stage.probability else None,
                source, last_at.astimezone(tz).date() if status != open_status else None,
                stage_entered, steps[0][0], last_at, 1,
            )
        )  # fmt: skip
        currency = deal.currency
        changed = everything
        previous: Any = None  # the step before's stage id, status, amount, close date, …
        status_before = amount_before = close_before = probability_before = forecast_before = None
        for at, stage, status, amount, close in steps:
            stage_id = stage.id
            probability, forecast = facts[(stage_id, status)]
            if previous is not None:
                # What changed since the step before, a bit per name of TRACKED_ORDER.
                changed = CHANGED_JSON[
                    (stage_id != previous) | (status != status_before) << 1
                    | (amount != amount_before) << 2 | (close != close_before) << 3
                    | (probability != probability_before) << 4
                    | (forecast != forecast_before) << 5
                ]  # fmt: skip
            history_rows.append(
                (pk, at, stage_id, status, amount, currency, close, probability, owner_id,
                 forecast, actor_id, import_action, changed, reason)
            )  # fmt: skip
            previous, status_before, amount_before, close_before = stage_id, status, amount, close
            probability_before, forecast_before = probability, forecast
        batch["audits"].append(
            (now, actor_id, audit_action, opp_type, str(pk), deal.name[:300], None,
             JsonText(_audit_after(deal.external_id, deal.row)), reason)
        )  # fmt: skip
        batch["externals"].append((source, opportunity_kind, deal.external_id, opp_type, pk, now))
        if len(batch["opps"]) >= 5000:
            _flush(batch, inserters, progress)
            history_rows = batch["history"]
    _flush(batch, inserters, progress)
    # The analytics caches of the new deals, from the history just written (the same derivation
    # as `loudou analytics rebuild`), in one statement each.
    started = time.perf_counter()
    stays = stays_derive(opportunity_ids)
    stays_seconds = time.perf_counter() - started
    spans = spans_derive(opportunity_ids)
    spans_seconds = time.perf_counter() - stays_seconds - started
    if initial:
        progress.start(_("Indexing"), len(aside.indexes))
        keys.restore()  # first: the index restore runs the checks still queued
        aside.restore(progress)
    sync_sequences(Opportunity)
    DATABASE_SECONDS.clear()
    DATABASE_SECONDS.update({i.model._meta.label: (i.count, i.seconds) for i in inserters})
    DATABASE_SECONDS[OpportunityStay._meta.label] = (stays, stays_seconds)
    DATABASE_SECONDS[StateSpan._meta.label] = (spans, spans_seconds)
    if initial:
        DATABASE_SECONDS["foreign keys added again"] = (len(keys.keys), keys.seconds)
        DATABASE_SECONDS["indexes created again"] = (len(aside.indexes), aside.seconds)
    return history.count


def _audit_after(external_id: str, row: int) -> str:
    """The audit row's `after`, {"external_id": …, "row": …}, as json.dumps(…, ensure_ascii=False)
    writes it, without its per-call setup (a fifth of the Python time of writing a deal)."""
    return f'{{"external_id": {encode_basestring(external_id)}, "row": {int(row)}}}'


def _flush(batch: dict[str, list[Any]], inserters: tuple[Inserter, ...], progress: Any) -> None:
    done = len(batch["opps"])
    for key, inserter in zip(("opps", "history", "audits", "externals"), inserters, strict=True):
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
