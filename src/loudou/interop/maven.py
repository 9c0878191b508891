"""The Maven Analytics "CRM Sales Opportunities" dataset, imported onto the `simple` playbook.

Files: sales_teams.csv (agent, manager, regional office), accounts.csv, products.csv and
sales_pipeline.csv (one row per opportunity, with the date it entered Engaging and the date it was
won or lost). Regional offices become branches under a branch "maven", managers and agents become
users, accounts become accounts, and every pipeline row an opportunity with history from its
dates. The file's quirks are handled and counted in the report, never fatal.
"""

import csv
import datetime as dt
import secrets
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed
from loudou.customers.models import Account, Industry
from loudou.customers.services import account_create
from loudou.interop.records import Deal
from loudou.interop.services import ExternalIds, NoProgress, Progress
from loudou.interop.writer import Step, insert_new
from loudou.org.models import AccessLevel, Branch, User
from loudou.org.services import branch_create, user_create
from loudou.pipeline.models import Status
from loudou.playbooks.selectors import playbook_get
from loudou.playbooks.services import playbooks_load_builtin

SOURCE = "maven"
PLAYBOOK = "simple"
CURRENCY = "USD"
FILES = ("sales_teams.csv", "accounts.csv", "products.csv", "sales_pipeline.csv")
UNKNOWN_ACCOUNT = "(未知客户 / unknown account)"
# Product names in the pipeline that products.csv spells differently.
PRODUCT_ALIASES = {"GTXPro": "GTX Pro"}
# accounts.csv sectors: (industry key, Chinese name, English name); "technolgy" is a typo.
SECTORS = {
    "employment": ("employment", "人力资源", "Employment"),
    "entertainment": ("entertainment", "文化娱乐", "Entertainment"),
    "finance": ("finance", "金融", "Finance"),
    "marketing": ("marketing", "市场营销", "Marketing"),
    "medical": ("medical", "医疗", "Medical"),
    "retail": ("retail", "零售", "Retail"),
    "services": ("services", "服务业", "Services"),
    "software": ("software", "软件", "Software"),
    "technolgy": ("technology", "科技", "Technology"),
    "technology": ("technology", "科技", "Technology"),
    "telecommunications": ("telecommunications", "电信", "Telecommunications"),
}
STAGES = {"Prospecting": "prospecting", "Engaging": "engaging", "Won": "won", "Lost": "lost"}
CENT = Decimal("0.01")
# Events happen at noon, local time, on the day the file gives.
EVENT_TIME = dt.time(12, 0)


@dataclass
class MavenData:
    """The four files, read and checked, with nothing written yet."""

    teams: list[dict[str, str]]
    accounts: list[dict[str, str]]
    products: dict[str, Decimal]
    pipeline: list[dict[str, str]]

    def latest_date(self) -> dt.date:
        dates = [
            dt.date.fromisoformat(row[col])
            for row in self.pipeline
            for col in ("engage_date", "close_date")
            if row[col]
        ]
        if not dates:
            raise ValidationFailed(_("sales_pipeline.csv holds no dates."))
        return max(dates)


def _read(path: Path, columns: set[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValidationFailed(_("%(f)s is missing.") % {"f": path})
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = columns - set(reader.fieldnames or [])
        if missing:
            raise ValidationFailed(
                _("%(f)s lacks the columns %(c)s.")
                % {"f": path.name, "c": ", ".join(sorted(missing))}
            )
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def read(directory: Path) -> MavenData:
    """Read the dataset's four CSV files from `directory` and check what the import relies on."""
    directory = Path(directory)
    teams = _read(directory / "sales_teams.csv", {"sales_agent", "manager", "regional_office"})
    accounts = _read(
        directory / "accounts.csv",
        {"account", "sector", "revenue", "employees", "subsidiary_of"},
    )
    products = {
        row["product"]: Decimal(row["sales_price"])
        for row in _read(directory / "products.csv", {"product", "sales_price"})
    }
    pipeline = _read(
        directory / "sales_pipeline.csv",
        {
            "opportunity_id",
            "sales_agent",
            "product",
            "account",
            "deal_stage",
            "engage_date",
            "close_date",
            "close_value",
        },
    )
    problems = []
    agents = {t["sales_agent"] for t in teams}
    names = {a["account"] for a in accounts}
    for number, row in enumerate(pipeline, start=2):
        if row["deal_stage"] not in STAGES:
            problems.append(f"row {number}: unknown deal_stage {row['deal_stage']!r}")
        if row["sales_agent"] not in agents:
            problems.append(f"row {number}: unknown sales_agent {row['sales_agent']!r}")
        if row["account"] and row["account"] not in names:
            problems.append(f"row {number}: unknown account {row['account']!r}")
        if PRODUCT_ALIASES.get(row["product"], row["product"]) not in products:
            problems.append(f"row {number}: unknown product {row['product']!r}")
        if row["deal_stage"] in ("Won", "Lost") and not (row["engage_date"] and row["close_date"]):
            problems.append(f"row {number}: a closed deal without engage_date or close_date")
    for row in accounts:
        if row["subsidiary_of"] and row["subsidiary_of"] not in names:
            problems.append(f"account {row['account']!r}: unknown parent {row['subsidiary_of']!r}")
        if row["sector"] not in SECTORS:
            problems.append(f"account {row['account']!r}: unknown sector {row['sector']!r}")
    if problems:
        raise ValidationFailed(
            _("The files have %(n)s problems; nothing was imported.") % {"n": len(problems)},
            details={"problems": problems[:50]},
        )
    return MavenData(teams=teams, accounts=accounts, products=products, pipeline=pipeline)


def username_for(name: str) -> str:
    """ "Moses Frase" → "moses.frase"."""
    return slugify(name).replace("-", ".")


def _at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, EVENT_TIME))


@dataclass
class Report:
    source: str = SOURCE
    directory: str = ""
    dry_run: bool = False
    snapshot_date: str = ""
    created: Counter[str] = field(default_factory=Counter)
    already_imported: Counter[str] = field(default_factory=Counter)
    opportunities_by_stage: Counter[str] = field(default_factory=Counter)
    normalised_products: Counter[str] = field(default_factory=Counter)
    open_at_list_price: int = 0
    lost_with_zero_value: int = 0
    stamped_with_snapshot_date: int = 0
    open_close_date_is_snapshot: int = 0
    missing_accounts: int = 0

    def as_dict(self) -> dict[str, Any]:
        kinds = ("branches", "industries", "users", "accounts", "opportunities")
        return {
            "source": self.source,
            "directory": self.directory,
            "dry_run": self.dry_run,
            "snapshot_date": self.snapshot_date,
            "created": {k: self.created[k] for k in kinds},
            "already_imported": {k: self.already_imported[k] for k in kinds},
            "nothing_new": not any(self.created.values()),
            "opportunities_by_stage": {
                s: self.opportunities_by_stage[s]
                for s in ("prospecting", "engaging", "won", "lost")
            },
            "normalised_products": dict(self.normalised_products),
            "open_at_list_price": self.open_at_list_price,
            "lost_with_zero_value": self.lost_with_zero_value,
            "stamped_with_snapshot_date": self.stamped_with_snapshot_date,
            "open_close_date_is_snapshot": self.open_close_date_is_snapshot,
            "missing_accounts": self.missing_accounts,
        }


class _Rollback(Exception):
    pass


def import_maven(
    directory: Path | str,
    *,
    actor: Any,
    snapshot_date: dt.date | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import the dataset in `directory`, all or nothing, and return the report. With `dry_run`
    everything is written and then rolled back, so the report is the one a real run gives.

    The counts of quirks (normalised products, open deals valued at list price, lost deals
    worth 0, records dated with the snapshot date, missing accounts) describe the files; `created`
    and `already_imported` say what this run wrote and what an earlier import had written."""
    data = read(Path(directory))
    latest = data.latest_date()
    snapshot = snapshot_date or latest
    if snapshot < latest:
        raise ValidationFailed(
            _("The snapshot date %(s)s is before the latest date in the files, %(l)s.")
            % {"s": snapshot, "l": latest}
        )
    report = Report(directory=str(directory), dry_run=dry_run, snapshot_date=snapshot.isoformat())
    progress = progress or NoProgress()
    try:
        with transaction.atomic():
            _Importer(data, actor, snapshot, report, progress).run()
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return report.as_dict()


class _Importer:
    def __init__(
        self, data: MavenData, actor: Any, snapshot: dt.date, report: Report, progress: Progress
    ) -> None:
        self.data = data
        self.actor = actor
        self.snapshot = snapshot
        self.report = report
        self.progress = progress
        self.ids = ExternalIds(SOURCE)
        self.users: dict[str, User] = {}
        self.accounts: dict[str, Account] = {}

    def run(self) -> None:
        playbooks_load_builtin()
        self.playbook = playbook_get(PLAYBOOK)
        self.branches()
        self.people()
        self.industries()
        self.customers()
        self.opportunities()
        self.ids.flush()

    def _existing(self, kind: str, external_id: str, model: Any, counter: str) -> Any:
        found = self.ids.get(kind, external_id, model)
        if found is not None:
            self.report.already_imported[counter] += 1
        return found

    def branches(self) -> None:
        self.progress.start(_("Branches"), 1 + len({t["regional_office"] for t in self.data.teams}))
        root = self._existing("branch", "maven", Branch, "branches")
        if root is None:
            root = Branch.objects.filter(code="maven").first() or branch_create(
                actor=self.actor, code="maven", name="Maven", name_en="Maven"
            )
            self.ids.link("branch", "maven", root)
            self.report.created["branches"] += 1
        self.progress.advance()
        self.offices: dict[str, Branch] = {}
        for office in sorted({t["regional_office"] for t in self.data.teams}):
            branch = self._existing("office", office, Branch, "branches")
            if branch is None:
                branch = branch_create(
                    actor=self.actor,
                    code=f"maven-{slugify(office)}",
                    name=f"Maven {office}",
                    name_en=f"Maven {office}",
                    parent=root,
                )
                self.ids.link("office", office, branch)
                self.report.created["branches"] += 1
            self.offices[office] = branch
            self.progress.advance()

    def _placeholder_hash(self) -> str:
        """A hash of a random secret no one knows, made once: user_create accepts only a hash in a
        known format (an unusable password's "!..." is not), and hashing costs time per user."""
        if not hasattr(self, "_hash"):
            self._hash = make_password(secrets.token_urlsafe(32))
        return self._hash

    def _user(self, kind: str, name: str, office: str, level: str, role: str) -> User:
        user = self._existing(kind, name, User, "users")
        if user is None:
            user = user_create(
                actor=self.actor,
                username=username_for(name),
                password="",
                password_hash=self._placeholder_hash(),
                display_name=name,
                branch=self.offices[office],
                job_role=role,
                access_level=level,
                language="en",
            )
            # Imported people sign in only once an administrator gives them a password.
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.ids.link(kind, name, user)
            self.report.created["users"] += 1
        return user

    def people(self) -> None:
        managers = {t["manager"]: t["regional_office"] for t in self.data.teams}
        self.progress.start(_("People"), len(managers) + len(self.data.teams))
        self.managers = {}
        for name, office in managers.items():
            self.managers[name] = self._user(
                "manager", name, office, AccessLevel.MANAGER, "sales_director"
            )
            self.progress.advance()
        for team in self.data.teams:
            self.users[team["sales_agent"]] = self._user(
                "agent",
                team["sales_agent"],
                team["regional_office"],
                AccessLevel.SELLER,
                "account_manager",
            )
            self.progress.advance()

    def industries(self) -> None:
        self.industry: dict[str, Industry] = {}
        for sector in sorted({a["sector"] for a in self.data.accounts}):
            key, zh, en = SECTORS[sector]
            industry = Industry.objects.filter(key=key).first()
            if industry is None:
                industry = Industry.objects.create(key=key, name_zh=zh, name_en=en)
                self.report.created["industries"] += 1
            self.industry[sector] = industry

    def _account_owner(self) -> dict[str, User]:
        """Each account's owner: the agent of its first deal in the pipeline."""
        owners: dict[str, User] = {}
        for row in self.data.pipeline:
            owners.setdefault(row["account"] or UNKNOWN_ACCOUNT, self.users[row["sales_agent"]])
        return owners

    def customers(self) -> None:
        owners = self._account_owner()
        fallback = (
            self.actor if getattr(self.actor, "pk", None) else next(iter(self.managers.values()))
        )
        rows = list(self.data.accounts)
        if any(not row["account"] for row in self.data.pipeline):
            rows.append({"account": UNKNOWN_ACCOUNT})
        self.progress.start(_("Accounts"), len(rows))
        created: list[dict[str, str]] = []
        for row in rows:
            name = row["account"]
            account = self._existing("account", name, Account, "accounts")
            if account is None:
                fields: dict[str, Any] = {"name": name}
                if row.get("sector"):
                    fields["industry"] = self.industry[row["sector"]]
                if row.get("revenue"):
                    fields["revenue"] = Decimal(row["revenue"]) * 1_000_000
                    fields["revenue_currency"] = CURRENCY
                if row.get("employees"):
                    fields["employees"] = int(row["employees"])
                account = account_create(
                    actor=self.actor, owner=owners.get(name, fallback), **fields
                )
                self.ids.link("account", name, account)
                self.report.created["accounts"] += 1
                created.append(row)
            self.accounts[name] = account
            self.progress.advance()
        # Second pass: the groups, once every account exists.
        from loudou.customers.services import account_update

        for row in created:
            parent = row.get("subsidiary_of")
            if parent:
                account_update(
                    account=self.accounts[row["account"]],
                    actor=self.actor,
                    parent=self.accounts[parent],
                )

    def opportunities(self) -> None:
        """Every pipeline row an opportunity (those imported before are counted and left), with
        its history from the file's dates, written in bulk like any import's new deals."""
        report, snapshot = self.report, self.snapshot
        stages = {s.key: s for s in self.playbook.ordered_stages()}
        new: list[tuple[Deal, list[Step]]] = []
        for number, row in enumerate(self.data.pipeline, start=2):
            stage = STAGES[row["deal_stage"]]
            report.opportunities_by_stage[stage] += 1
            product = PRODUCT_ALIASES.get(row["product"], row["product"])
            if product != row["product"]:
                report.normalised_products[f"{row['product']} → {product}"] += 1
            if not row["account"]:
                report.missing_accounts += 1
            engage = dt.date.fromisoformat(row["engage_date"]) if row["engage_date"] else None
            close = dt.date.fromisoformat(row["close_date"]) if row["close_date"] else None
            if engage is None:
                report.stamped_with_snapshot_date += 1
            if stage in ("won", "lost"):
                amount = Decimal(row["close_value"] or "0").quantize(CENT)
                if stage == "lost" and amount == 0:
                    report.lost_with_zero_value += 1
            else:
                amount = self.data.products[product].quantize(CENT)
                report.open_at_list_price += 1
                report.open_close_date_is_snapshot += 1
            if self.ids.has("opportunity", row["opportunity_id"]):
                report.already_imported["opportunities"] += 1
                continue
            start, close_date = _at(engage or snapshot), close or snapshot
            steps: list[Step] = [(start, stages["prospecting"], Status.OPEN, amount, close_date)]
            if stage != "prospecting" and engage is not None:
                steps.append((start, stages["engaging"], Status.OPEN, amount, close_date))
            if stage == "won" and close is not None:
                steps.append((_at(close), stages["won"], Status.WON, amount, close_date))
            elif stage == "lost" and close is not None:
                steps.append((_at(close), stages["engaging"], Status.LOST, amount, close_date))
            account = row["account"] or UNKNOWN_ACCOUNT
            deal = Deal(
                sheet="sales_pipeline",
                row=number,
                external_id=row["opportunity_id"],
                name=f"{self.accounts[account].name} – {product}",
                account=account,
                owner=row["sales_agent"],
                stage=stage,
                amount=amount,
                currency=CURRENCY,
                close_date=close_date,
                created_at=start,
            )
            new.append((deal, steps))
        insert_new(
            new,
            self.users,
            self.accounts,
            actor=self.actor,
            playbook=self.playbook,
            ids=self.ids,
            progress=self.progress,
        )
        report.created["opportunities"] += len(new)
