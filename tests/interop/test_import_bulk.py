"""The importer's bulk path: a large load into a database holding fewer deals sets the deal
tables' indexes aside and creates them again (exactly as they were), the state spans of new deals
are derived from their history in SQL, and the reading shortcuts (`Sheet.fields`, the plain-value
fast paths of the parsers) read what the general path reads."""

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from loudou.analytics.caches import caches_verify
from loudou.analytics.models import OpportunityStay, StateSpan
from loudou.interop import writer
from loudou.interop.bulk import (
    ForeignKeysSetAside,
    _foreign_keys,
    _secondary_indexes,
    larger_page_cache,
)
from loudou.interop.tables import Sheet
from loudou.interop.values import BadValue, parse_date, parse_money
from loudou.pipeline.models import Opportunity, OpportunityHistory
from tests.interop.crm_files import counts, refused_import, run_import

TABLES = [m._meta.db_table for m in writer.INDEXED_ASIDE]
STAGES = ["discover", "intent", "project", "recognition", "negotiation"]


def native_files(tmp_path: Path, deals: int, *, prefix: str = "D", owner: str = "seller") -> Path:
    """A native opportunities.csv + history.csv pair: each deal walks forward one stage a week
    for (n % 4) + 1 steps; every third is won, every fifth lost, the rest open."""
    folder = tmp_path / prefix
    folder.mkdir()
    with (
        (folder / "opportunities.csv").open("w", newline="", encoding="utf-8") as o,
        (folder / "history.csv").open("w", newline="", encoding="utf-8") as h,
    ):
        opps, hist = csv.writer(o), csv.writer(h)
        opps.writerow(["id", "name", "account", "owner", "stage", "status", "amount", "currency",
                       "close_date", "created_at"])  # fmt: skip
        hist.writerow(["deal_id", "at", "stage", "status"])
        for n in range(deals):
            created = dt.datetime(2026, 1, 1, 9, 0) + dt.timedelta(hours=n)
            steps = n % 4 + 1
            for step in range(steps):
                moment = created + dt.timedelta(days=7 * step)
                hist.writerow([f"{prefix}{n}", moment.isoformat(sep=" "), STAGES[step], "open"])
            status = "won" if n % 3 == 0 else "lost" if n % 5 == 0 else "open"
            stage = "closed" if status == "won" else STAGES[steps - 1]
            opps.writerow([f"{prefix}{n}", f"{prefix} 商机 {n}", f"客户{n % 4}", owner, stage,
                           status, 100_000 + n, "CNY", "2026-12-31",
                           created.isoformat(sep=" ")])  # fmt: skip
    return folder


@pytest.fixture
def initial_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any load counts as large (the real threshold is 10,000 deals)."""
    monkeypatch.setattr(writer, "INITIAL_LOAD_MIN", 1)


def test_an_initial_load_puts_every_index_back_as_it_was(
    org: dict[str, Any], tmp_path: Path, initial_load: None
) -> None:
    before = _secondary_indexes(TABLES)
    assert len(before) >= 12  # the deal tables' own indexes, e.g. the funnel's covering one
    report = run_import("native", str(native_files(tmp_path, 40)))
    assert report["created"]["opportunities"] == 40
    assert writer.DATABASE_SECONDS["indexes created again"][0] == len(before)
    assert _secondary_indexes(TABLES) == before
    assert caches_verify() == []
    assert Opportunity.objects.count() == 40
    # A row per step, and one more for each of the 14 won and 5 lost deals.
    assert OpportunityHistory.objects.count() == sum(n % 4 + 1 for n in range(40)) + 14 + 5
    assert StateSpan.objects.count() == OpportunityHistory.objects.count()
    # One stay per stage visited by each deal, the last left open on the 21 deals still open.
    assert OpportunityStay.objects.count() == sum(n % 4 + 1 for n in range(40))
    assert OpportunityStay.objects.filter(exited_at__isnull=True).count() == 40 - 14 - 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's foreign keys")
def test_an_initial_load_on_postgresql_adds_every_foreign_key_back_as_it_was(
    org: dict[str, Any], tmp_path: Path, initial_load: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _foreign_keys(TABLES)
    # The opportunity's account, owner, stage…; history's deal; stays' and spans' deal and stage.
    assert len(before) >= 12 and all("DEFERRABLE INITIALLY DEFERRED" in d for _t, _n, d in before)
    during: list[list[tuple[str, str, str]]] = []
    spans_derive = writer.spans_derive

    def watched(ids: range) -> int:
        during.append(_foreign_keys(TABLES))
        return spans_derive(ids)

    monkeypatch.setattr(writer, "spans_derive", watched)
    report = run_import("native", str(native_files(tmp_path, 30)))
    assert report["created"]["opportunities"] == 30
    assert during == [[]]  # set aside while the rows went in
    assert _foreign_keys(TABLES) == before
    assert writer.DATABASE_SECONDS["foreign keys added again"][0] == len(before)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's foreign keys")
def test_a_row_pointing_nowhere_fails_the_keys_coming_back(org: dict[str, Any]) -> None:
    keys = ForeignKeysSetAside(writer.INDEXED_ASIDE)
    with transaction.atomic():
        keys.drop()
        with connection.cursor() as cursor:  # history of a deal that does not exist
            cursor.execute(
                "INSERT INTO pipeline_opportunityhistory (opportunity_id, valid_from, stage_id,"
                " status, amount, currency, close_date, probability, owner_id, forecast_category,"
                " action, changed, reason) SELECT 987654, now(), id, 'open', 1, 'CNY',"
                " current_date, 10, %s, 'pipeline', 'import', '[]', '' FROM playbooks_stage"
                " LIMIT 1",
                [org["seller"].pk],
            )
        refused = pytest.raises(IntegrityError, match="violates foreign key constraint")
        with refused, transaction.atomic():  # the savepoint lets the outer block go on
            keys.restore()
        transaction.set_rollback(True)
    assert _foreign_keys(TABLES) == keys.keys  # rolled back: every key as it was
    assert not OpportunityHistory.objects.filter(opportunity_id=987654).exists()


def test_a_dry_run_of_an_initial_load_leaves_the_indexes_and_writes_nothing(
    org: dict[str, Any], tmp_path: Path, initial_load: None
) -> None:
    before, keys, tables = _secondary_indexes(TABLES), _foreign_keys(TABLES), counts()
    report = run_import("native", str(native_files(tmp_path, 12)), "--dry-run")
    assert report["dry_run"] is True and report["created"]["opportunities"] == 12
    assert _secondary_indexes(TABLES) == before
    assert _foreign_keys(TABLES) == keys
    assert counts() == tables


def test_a_load_that_fails_after_dropping_the_indexes_rolls_them_back(
    org: dict[str, Any], tmp_path: Path, initial_load: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, keys, tables = _secondary_indexes(TABLES), _foreign_keys(TABLES), counts()

    def broken(ids: range) -> int:  # fails with the deals written and their indexes dropped
        assert _secondary_indexes(TABLES) == [] and _foreign_keys(TABLES) == []
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "spans_derive", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_import("native", str(native_files(tmp_path, 5)))
    assert _secondary_indexes(TABLES) == before
    assert _foreign_keys(TABLES) == keys
    assert counts() == tables


def test_a_load_smaller_than_what_the_database_holds_keeps_the_indexes(
    org: dict[str, Any], tmp_path: Path, initial_load: None
) -> None:
    run_import("native", str(native_files(tmp_path, 10, prefix="A")))
    assert writer._initial_load(10) is True  # as many as it holds
    assert writer._initial_load(9) is False
    run_import("native", str(native_files(tmp_path, 9, prefix="B")))
    assert "indexes created again" not in writer.DATABASE_SECONDS
    # The spans of the second load were derived for its deals only, beside the first's.
    assert caches_verify() == []
    assert StateSpan.objects.count() == OpportunityHistory.objects.count()


def test_spans_of_new_deals_are_derived_beside_deals_written_by_the_services(
    org: dict[str, Any], tmp_path: Path, walker: Any
) -> None:
    existing = walker.create(name="已有商机")
    walker.to(existing, "intent")
    spans_before = list(
        StateSpan.objects.filter(opportunity=existing).order_by("valid_from").values_list()
    )
    run_import("native", str(native_files(tmp_path, 6)))
    assert (
        list(StateSpan.objects.filter(opportunity=existing).order_by("valid_from").values_list())
        == spans_before
    )
    assert caches_verify() == []


def test_unknown_owners_are_reported_once_per_row(org: dict[str, Any], tmp_path: Path) -> None:
    report, _message = refused_import("native", str(native_files(tmp_path, 300, owner="ghost")))
    rows = [p["row"] for p in report["problems"] if p["value"] == "ghost"]
    assert sorted(rows) == list(range(2, 302))


# --- reading ---------------------------------------------------------------------------------


def test_fields_reads_the_cells_the_records_read() -> None:
    sheet = Sheet(
        name="deals",
        headers=["Id", "Name", "Amount", "Name", "Unused"],
        rows=[
            ["1", "first", "10", "second", "x"],
            ["", " ", "", "", ""],  # blank: left out
            ["2", "short"],  # padded with None
            [None, None, 3, None, None],  # an XLSX row with one number
        ],
    )
    columns = {"external_id": "Id", "name": "Name", "amount": "Amount", "gone": "Missing"}
    records = sheet.records()
    fields = sheet.fields(columns)
    assert [n for n, _cells in fields] == [n for n, _cells in records] == [2, 4, 5]
    for (_n, by_header), (_m, by_field) in zip(records, fields, strict=True):
        assert by_field == {k: by_header[h] for k, h in columns.items() if h in by_header}
    assert fields[0][1] == {"external_id": "1", "name": "second", "amount": "10"}  # last "Name"
    assert fields[1][1] == {"external_id": "2", "name": None, "amount": None}
    assert sheet.fields({"amount": "Amount"}) == [(2, {"amount": "10"}), (4, {"amount": None}),
                                                  (5, {"amount": 3})]  # fmt: skip
    assert sheet.fields({"gone": "Missing"}) == [(2, {}), (4, {}), (5, {})]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1234567", (Decimal("1234567.00"), "")),
        ("0", (Decimal("0.00"), "")),
        ("1,234,567", (Decimal("1234567.00"), "")),
        ("¥1,234.5", (Decimal("1234.50"), "CNY")),
        ("HK$1,000", (Decimal("1000.00"), "HKD")),
        ("120万", (Decimal("1200000.00"), "CNY")),
    ],
)
def test_amounts_read_the_same_with_and_without_the_shortcut(cell: str, expected: Any) -> None:
    assert parse_money(cell) == expected


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("99999999999999999", "too large an amount"),
        ("²", "not an amount"),  # a digit to str.isdigit, not to Decimal
    ],
)
def test_amounts_the_shortcut_refuses(cell: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        parse_money(cell)


def test_dates_read_the_same_with_and_without_the_shortcut() -> None:
    assert parse_date("2026-03-01") == parse_date("2026/3/1") == dt.date(2026, 3, 1)
    for cell, reason in (("2026-02-30", "not a date"), ("1850-01-01", "out of range")):
        with pytest.raises(BadValue, match=reason):
            parse_date(cell)


def test_indexes_are_read_from_the_database_itself(db: None) -> None:
    names = {name for name, _sql in _secondary_indexes(TABLES)}
    assert {
        "span_in_force",
        "span_one_current_per_opportunity",
        "stay_one_open_per_opportunity",
    } <= names
    # Never a primary key's index or one backing a constraint (they cannot be dropped alone).
    assert not [n for n in names if n.endswith("_pkey") or n.startswith("sqlite_autoindex")]


def _cache_size() -> int:
    """SQLite's page cache size (negative: in KiB); 0 on PostgreSQL, which has none per
    connection."""
    if connection.vendor != "sqlite":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's page cache")
def test_the_page_cache_grows_for_a_write_and_is_given_back_after_it(db: None) -> None:
    before = _cache_size()
    with larger_page_cache(64):
        assert _cache_size() == -64 * 1024  # negative: a size in KiB
    assert _cache_size() == before
    with pytest.raises(ZeroDivisionError), larger_page_cache(64):
        1 / 0  # noqa: B018
    assert _cache_size() == before


def test_an_import_writes_its_deals_with_the_larger_page_cache(
    org: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    insert_new = writer.insert_new

    def watched(*args: Any, **kwargs: Any) -> int:
        seen.append(_cache_size())
        return insert_new(*args, **kwargs)

    monkeypatch.setattr(writer, "insert_new", watched)
    before = _cache_size()
    report = run_import("native", str(native_files(tmp_path, 12)))
    assert report["created"]["opportunities"] == 12
    assert _cache_size() == before
    expected = -1024 * writer.PAGE_CACHE_MB if connection.vendor == "sqlite" else before
    assert seen == [expected]
