"""`loudou import maven`: the real Maven CRM dataset, checked against figures computed here from
the CSV files with the csv module (independently of the importer)."""

import csv
import json
import shutil
import time
from collections import Counter
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from loudou.analytics.caches import caches_verify
from loudou.analytics.selectors import funnel_snapshot
from loudou.core.cli import SystemActor
from loudou.customers.models import Account
from loudou.interop.models import ExternalId
from loudou.org.models import Branch, User
from loudou.pipeline.models import Opportunity, OpportunityHistory
from loudou.playbooks.selectors import playbook_get

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "maven-crm"
SMALL_TABLES = ("sales_teams.csv", "accounts.csv", "products.csv")
SUBSET_ROWS = 300

pytestmark = pytest.mark.skipif(
    not (DATASET / "sales_pipeline.csv").is_file(),
    reason=f"the Maven CRM dataset is not at {DATASET} (see shared/datasets/maven-crm/SOURCE.md)",
)


def rows(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def subset(tmp_path: Path) -> Path:
    """All the small tables and the first 300 pipeline rows, byte for byte (those are all closed
    deals, so also the first 25 Prospecting and 25 Engaging rows after them)."""
    for name in SMALL_TABLES:
        shutil.copy(DATASET / name, tmp_path / name)
    with (DATASET / "sales_pipeline.csv").open("rb") as src:
        lines = src.read().splitlines(keepends=True)
    picked = lines[: SUBSET_ROWS + 1]
    for stage in (b",Prospecting,", b",Engaging,"):
        picked += [line for line in lines[SUBSET_ROWS + 1 :] if stage in line][:25]
    (tmp_path / "sales_pipeline.csv").write_bytes(b"".join(picked))
    return tmp_path


def run(directory: Path, *extra: str) -> dict[str, Any]:
    out = StringIO()
    call_command("import", "maven", str(directory), "--json", *extra, stdout=out)
    return json.loads(out.getvalue())


def expected(directory: Path) -> dict[str, Any]:
    """The figures, computed from the files without the importer."""
    pipeline = rows(directory, "sales_pipeline.csv")
    prices = {r["product"]: Decimal(r["sales_price"]) for r in rows(directory, "products.csv")}
    by_stage = Counter(r["deal_stage"] for r in pipeline)
    open_amount: dict[str, Decimal] = {"Prospecting": Decimal(0), "Engaging": Decimal(0)}
    for r in pipeline:
        if r["deal_stage"] in open_amount:
            open_amount[r["deal_stage"]] += prices[r["product"].replace("GTXPro", "GTX Pro")]
    return {
        "by_stage": by_stage,
        "won_amount": sum(
            (Decimal(r["close_value"]) for r in pipeline if r["deal_stage"] == "Won"), Decimal(0)
        ),
        "open_amount": open_amount,
        "gtxpro": sum(r["product"] == "GTXPro" for r in pipeline),
        "no_account": sum(not r["account"] for r in pipeline),
        "lost_zero": sum(
            r["deal_stage"] == "Lost" and Decimal(r["close_value"]) == 0 for r in pipeline
        ),
        "no_engage": sum(not r["engage_date"] for r in pipeline),
        "agents": len(rows(directory, "sales_teams.csv")),
        "managers": len({r["manager"] for r in rows(directory, "sales_teams.csv")}),
        "accounts": len(rows(directory, "accounts.csv")),
    }


def check_against_files(directory: Path, report: dict[str, Any]) -> None:
    exp = expected(directory)
    total = sum(exp["by_stage"].values())
    assert report["created"]["opportunities"] == total
    assert Opportunity.objects.count() == total
    assert report["opportunities_by_stage"] == {
        "prospecting": exp["by_stage"]["Prospecting"],
        "engaging": exp["by_stage"]["Engaging"],
        "won": exp["by_stage"]["Won"],
        "lost": exp["by_stage"]["Lost"],
    }
    assert report["normalised_products"].get("GTXPro → GTX Pro", 0) == exp["gtxpro"]
    assert report["missing_accounts"] == exp["no_account"]
    assert report["lost_with_zero_value"] == exp["lost_zero"]
    assert report["stamped_with_snapshot_date"] == exp["no_engage"]
    assert report["open_at_list_price"] == (
        exp["by_stage"]["Prospecting"] + exp["by_stage"]["Engaging"]
    )
    assert report["created"]["users"] == exp["agents"] + exp["managers"]
    assert report["created"]["branches"] == 4  # maven + Central, East, West
    assert report["created"]["accounts"] == exp["accounts"] + (1 if exp["no_account"] else 0)

    funnel = funnel_snapshot(SystemActor(), playbook_get("simple"))
    stages = {s["key"]: s for s in funnel["stages"]}
    assert funnel["won"]["count"] == exp["by_stage"]["Won"]
    assert Decimal(funnel["won"]["amount"]) == exp["won_amount"]
    assert funnel["lost"]["count"] == exp["by_stage"]["Lost"]
    assert Decimal(funnel["lost"]["amount"]) == 0
    for key, name in (("prospecting", "Prospecting"), ("engaging", "Engaging")):
        assert stages[key]["count"] == exp["by_stage"][name]
        assert Decimal(stages[key]["amount"]) == exp["open_amount"][name]
    assert caches_verify() == []


@pytest.mark.django_db
def test_subset_matches_an_independent_computation(subset: Path) -> None:
    report = run(subset)
    check_against_files(subset, report)
    assert report["snapshot_date"] == max(
        d
        for r in rows(subset, "sales_pipeline.csv")
        for d in (r["engage_date"], r["close_date"])
        if d
    )


@pytest.mark.django_db
def test_history_follows_the_dates(subset: Path) -> None:
    run(subset)
    won = Opportunity.objects.get(name="Cancity – GTX Plus Basic", status="won")
    history = list(OpportunityHistory.objects.filter(opportunity=won).order_by("valid_from", "id"))
    assert [(h.stage.key, h.status) for h in history] == [
        ("prospecting", "open"),
        ("engaging", "open"),
        ("won", "won"),
    ]
    assert history[0].valid_from.date().isoformat() == "2016-10-20"
    assert history[-1].valid_from.date().isoformat() == "2017-03-01"
    assert won.created_at == history[0].valid_from
    assert won.closed_on.isoformat() == "2017-03-01"
    assert won.amount == Decimal("1054")
    assert {h.action for h in history} == {"import"}
    lost = Opportunity.objects.filter(status="lost").first()
    assert lost is not None and lost.stage.key == "engaging"
    # The deal belongs to its agent and the agent's branch.
    assert won.owner.username == "moses.frase"
    assert won.branch_id == won.owner.branch_id
    assert won.owner.branch.parent.code == "maven"
    assert not won.owner.has_usable_password()
    # Revenue in millions of USD; the sector typo fixed; groups in place.
    acme = Account.objects.get(name="Acme Corporation")
    assert acme.revenue == Decimal("1100040000") and acme.revenue_currency == "USD"
    assert acme.industry is not None and acme.industry.key == "technology"
    parents = {r["account"]: r["subsidiary_of"] for r in rows(subset, "accounts.csv")}
    for name, parent in parents.items():
        account = Account.objects.get(name=name)
        assert (account.parent.name if account.parent else "") == parent


@pytest.mark.django_db
def test_reimport_creates_nothing(subset: Path) -> None:
    first = run(subset)
    counts = (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        User.objects.count(),
        Branch.objects.count(),
        ExternalId.objects.count(),
    )
    second = run(subset)
    assert second["nothing_new"] is True
    assert not any(second["created"].values())
    assert second["already_imported"] == first["created"] | {"industries": 0}
    assert counts == (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        User.objects.count(),
        Branch.objects.count(),
        ExternalId.objects.count(),
    )
    assert caches_verify() == []


@pytest.mark.django_db
def test_dry_run_writes_nothing_and_reports_the_same(subset: Path) -> None:
    dry = run(subset, "--dry-run")
    assert dry["dry_run"] is True
    assert Opportunity.objects.count() == 0
    assert Account.objects.count() == 0
    assert ExternalId.objects.count() == 0
    assert not User.objects.exists()
    real = run(subset)
    for key in ("created", "opportunities_by_stage", "normalised_products", "missing_accounts"):
        assert dry[key] == real[key]


@pytest.mark.django_db
def test_snapshot_date_option_and_text_report(subset: Path) -> None:
    out = StringIO()
    call_command("import", "maven", str(subset), "--snapshot-date", "2018-01-15", stdout=out)
    text = out.getvalue()
    assert "GTXPro → GTX Pro" in text and "2018-01-15" in text
    prospecting = Opportunity.objects.filter(stage__key="prospecting", status="open").first()
    assert prospecting is not None
    assert prospecting.created_at.date().isoformat() == "2018-01-15"
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="before the latest date"):
        call_command("import", "maven", str(subset), "--snapshot-date", "2017-01-01")


@pytest.mark.django_db
def test_bad_files_import_nothing(subset: Path) -> None:
    from django.core.management.base import CommandError

    path = subset / "sales_pipeline.csv"
    path.write_text(path.read_text() + "ZZZ,Nobody Here,GTX Basic,,Won,2017-01-01,2017-02-01,5\n")
    with pytest.raises(CommandError, match="Nobody Here"):
        run(subset)
    assert Opportunity.objects.count() == 0


@pytest.mark.django_db
def test_full_dataset(capsys: Any) -> None:
    started = time.monotonic()
    report = run(DATASET)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfull Maven import: {seconds:.1f} s")
    assert report["created"]["opportunities"] == 8800
    assert report["normalised_products"] == {"GTXPro → GTX Pro": 1480}
    assert report["missing_accounts"] == 1425
    assert report["lost_with_zero_value"] == 2473
    assert report["stamped_with_snapshot_date"] == 500
    assert report["snapshot_date"] == "2017-12-31"
    check_against_files(DATASET, report)
