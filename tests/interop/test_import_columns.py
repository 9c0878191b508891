"""Reading sheets a column at a time (`interop.columns`): each column reader gives, for every cell
it reads, what the cell-by-cell path (`RowReader` and the parsers) gives, and leaves the others to
it; a file read that way gives the same deals, events and problems, in the same order, as reading
every row cell by cell; a single bad cell among good ones is reported exactly as before."""

import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.interop import columns as col
from loudou.interop.bulk import _json, _sqlite_date, _sqlite_datetime
from loudou.interop.formats import common, native, salesforce
from loudou.interop.formats.common import DealOptions
from loudou.interop.records import Parsed, Problem, RowReader
from loudou.interop.tables import Sheet, read_bytes
from loudou.interop.values import (
    parse_bool,
    parse_date,
    parse_datetime,
    parse_money,
    parse_probability,
)
from loudou.interop.writer import CHANGED_JSON, TRACKED_ORDER, _audit_after
from loudou.pipeline.models import OpportunityHistory
from tests.interop.crm_files import run_import, write

TZ = dt.timezone(dt.timedelta(hours=8))

# Cells in the forms the column readers take, and in many they leave to the parsers.
DATES = ["2026-03-01", "1900-01-01", "2200-12-31", "1899-12-31", "2201-01-01", "2026-02-30",
         "2026/3/1", "20260301", " 2026-03-01", "2026-3-01", "０２６-03-01", "", " ", None,
         "2026-03-01\n", 46082, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 10)]  # fmt: skip
TIMES = ["2026-03-01 10:00", "2026-03-01T10:00", "2026-03-01x10:00", "2026-03-01 1:00", "2026-03-01T10:00:00", "2026-03-01 10:00:00.123456",
         "2026-03-01 10:00:00.1234567", "2026-13-01 10:00", "2026-03-01 25:00", "2026-03-01",
         "2026-03-01 10:00Z", "2026-03-01 10:00+02:00", "1700000000000", "2026/3/1 9:05 PM",
         "２０２６-03-01 10:00", "2026-03-01 10:00\n", "", None, 46082.5,
         dt.datetime(2026, 3, 1, 10)]  # fmt: skip
AMOUNTS = ["1234567", "0", "007", "9999999999999999", "10000000000000000", "", " 12", "1,234",
           "¥5", "abc", "١٢٣", "12.5", "-5", "²", None, 1200, 12.5, True]  # fmt: skip
PROBABILITIES = ["60", "0", "100", "101", "007", "0.6", "60%", "", "x", None, 60, 0.6]
BOOLS = ["true", "false", "yes", "否", " 1 ", "0", "", " ", "maybe", None, True, 1, 0]
TEXTS = ["华能", " padded ", "", "  ", "x" * 201, None, 12, 12.0, dt.date(2026, 3, 1)]
STATUSES = ["open", "Won", " lost ", "赢单", "", "maybe", "OPEN", None, 1, True]


def by_parser(value: Any, parser: Any, **options: Any) -> Any:
    """What RowReader.parse gives for one cell, or SLOW when it reports a problem."""
    parsed = Parsed(source="test")
    r = RowReader(parsed, "s", 2, {"k": value}, {"k": "K"})
    result = r.parse("k", parser, **options)
    return result if r.ok else col.SLOW


def agrees(cells: list[Any], got: list[Any], expected: list[Any]) -> None:
    """Every cell the column reader read has the parser's value, of the same type."""
    assert len(got) == len(cells)
    for cell, mine, theirs in zip(cells, got, expected, strict=True):
        if mine is col.SLOW:
            continue
        assert (mine, type(mine)) == (theirs, type(theirs)), cell
        if isinstance(mine, dt.datetime):
            assert mine.tzinfo is theirs.tzinfo, cell
        if isinstance(mine, tuple):  # an amount: the same Decimal, cents included
            assert str(mine[0]) == str(theirs[0]), cell


def column_cases(values: list[Any]) -> Any:
    # Columns of one value repeated (the path for a whole column at once) and of mixed values
    # (the path cell by cell).
    return st.one_of(
        st.builds(lambda v, n: [v] * n, st.sampled_from(values), st.integers(1, 4)),
        st.lists(st.sampled_from(values), min_size=0, max_size=8),
    )


@settings(max_examples=300, deadline=None)
@given(column_cases(DATES))
def test_dates_read_as_parse_date_reads_them(cells: list[Any]) -> None:
    agrees(cells, col.dates(cells), [by_parser(v, parse_date) for v in cells])


@settings(max_examples=300, deadline=None)
@given(column_cases(TIMES))
def test_times_read_as_parse_datetime_reads_them(cells: list[Any]) -> None:
    expected = [by_parser(v, parse_datetime, tz=TZ) for v in cells]
    agrees(cells, col.datetimes(cells, TZ), expected)


@settings(max_examples=200, deadline=None)
@given(column_cases(AMOUNTS))
def test_amounts_read_as_parse_money_reads_them(cells: list[Any]) -> None:
    agrees(cells, col.moneys(cells), [by_parser(v, parse_money) for v in cells])


@settings(max_examples=200, deadline=None)
@given(column_cases(PROBABILITIES), column_cases(BOOLS))
def test_probabilities_and_flags_as_their_parsers(chances: list[Any], flags: list[Any]) -> None:
    agrees(chances, col.probabilities(chances), [by_parser(v, parse_probability) for v in chances])
    agrees(flags, col.bools(flags), [by_parser(v, parse_bool) for v in flags])


@settings(max_examples=200, deadline=None)
@given(column_cases(TEXTS), column_cases(STATUSES))
def test_texts_and_words_as_row_reader(cells: list[Any], words: list[Any]) -> None:
    def text(value: Any) -> Any:
        r = RowReader(Parsed(source="t"), "s", 2, {"k": value}, {})
        out = r.text("k", required=True, limit=200)
        return out if r.ok else col.SLOW

    assert col.texts(cells, required=True, limit=200) == [text(v) for v in cells]
    allowed = {"": "", "open": "open", "won": "won", "赢单": "won"}
    expected = [
        allowed.get(RowReader(Parsed(source="t"), "s", 2, {"k": v}, {}).text("k").lower(), col.SLOW)
        for v in words
    ]
    assert col.words(words, allowed) == expected


def test_a_clean_column_is_read_at_once_and_a_bad_cell_is_left_alone() -> None:
    times = ["2026-03-01 10:00", "2026-03-02 11:30:15"] * 3
    assert col.datetimes(times, TZ) == [parse_datetime(t, tz=TZ) for t in times]
    with_bad = [*times, "2026-13-01 10:00", ""]
    assert col.datetimes(with_bad, TZ)[-2:] == [col.SLOW, None]
    assert col.dates(["2026-03-01", "", "2026-02-30"]) == [dt.date(2026, 3, 1), None, col.SLOW]
    assert col.slow_rows(col.dates(["2026-03-01", "1899-01-01", "x"])) == {1, 2}


def test_sheet_columns_are_the_fields_of_its_rows() -> None:
    for rows in (
        [["a", "1"], ["b", "2"]],  # every row full: the quick check
        [["a", "1"], [" ", ""], ["b"], [], ["c", "3", "extra"]],  # blank, short and long rows
        [["a", 1], [None, None], ["b", dt.date(2026, 3, 1)]],  # XLSX values
    ):
        sheet = Sheet(name="s", headers=["name", "n"], rows=rows)
        numbers, cells = sheet.columns({"name": "name", "n": "n", "gone": "absent"})
        fields = sheet.fields({"name": "name", "n": "n", "gone": "absent"})
        assert numbers == [n for n, _cells in fields]
        assert [{k: v[i] for k, v in cells.items()} for i in range(len(numbers))] == [
            c for _n, c in fields
        ]


# --- whole files: read a column at a time, or every row cell by cell ------------------------


def snapshot(parsed: Parsed) -> Any:
    deals = [
        ({k: repr(v) for k, v in vars(d).items() if k != "events"}, [repr(e) for e in d.events])
        for d in parsed.deals
    ]
    return deals, parsed.problems, parsed.stage_hints, parsed.refused_ids, parsed.notes


def csv_text(rows: list[list[str]]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def native_files(bad: dict[tuple[str, int, int], str] | None = None) -> list[Sheet]:
    """A native pair of 40 deals and 120 history rows; `bad` replaces cells (sheet, row, column)."""
    deals = [["id", "name", "account", "owner", "stage", "status", "amount", "currency",
              "close_date", "created_at", "closed_at", "probability"]]  # fmt: skip
    history = [["deal_id", "at", "stage", "status", "amount", "close_date"]]
    for n in range(40):
        deals.append([f"D{n}", f"商机 {n}", f"客户{n % 3}", "seller", "discover", "open",
                      str(100_000 + n), "CNY", "2026-06-30", f"2026-01-{n % 28 + 1:02d} 09:00",
                      "", "40"])  # fmt: skip
        for k in range(3):
            history.append([f"D{n}", f"2026-02-{k + 1:02d} 1{k}:00:00", "discover", "open", "", ""])
    for (sheet, row, column), value in (bad or {}).items():
        (deals if sheet == "opportunities" else history)[row - 1][column] = value
    return read_bytes(csv_text(deals), name="opportunities.csv") + read_bytes(
        csv_text(history), name="history.csv"
    )


BAD_CELLS = [
    {},
    {("history", 5, 1): "2026-13-01 10:00"},
    {("history", 7, 1): ""},
    {("history", 9, 3): "maybe", ("history", 10, 0): "D999"},
    {("opportunities", 3, 6): "12,5", ("opportunities", 4, 6): "abc"},
    {
        ("opportunities", 5, 5): "Won",
        ("opportunities", 6, 5): "maybe",
        ("opportunities", 6, 6): "x",
    },
    {("opportunities", 7, 1): "", ("opportunities", 8, 8): "2026/7/1", ("opportunities", 9, 9): ""},
    {("opportunities", 10, 9): "", ("opportunities", 10, 8): "", ("opportunities", 11, 11): "0.5"},
    {("opportunities", 12, 2): "y" * 201, ("opportunities", 13, 0): "D1"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD_CELLS)
def test_native_read_at_once_is_read_row_by_row(
    bad: dict[tuple[str, int, int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = DealOptions(tz=timezone.get_current_timezone())
    with translation.override("en"):
        fast = snapshot(native.parse(native_files(bad), options))
        _patch_row_by_row(monkeypatch)
        slow = snapshot(native.parse(native_files(bad), options))
    assert fast == slow
    assert len(fast[0]) >= 35


def _patch_row_by_row(patch: pytest.MonkeyPatch) -> None:
    """Every row read cell by cell, as before the column readers."""

    class Deals(common._DealColumns):
        def __init__(self, cells: Any, rows: int, *args: Any) -> None:
            super().__init__(cells, rows, *args)
            self.slow = set(range(rows))

    class Events(common._EventColumns):
        def __init__(self, cells: Any, rows: int, *args: Any) -> None:
            super().__init__(cells, rows, *args)
            self.slow = set(range(rows))

    patch.setattr(common, "_DealColumns", Deals)
    patch.setattr(common, "_EventColumns", Events)


@pytest.mark.django_db
def test_one_bad_time_among_good_ones_is_reported_as_before() -> None:
    with translation.override("en"):
        parsed = native.parse(native_files({("history", 5, 1): "2026-13-01 10:00"}), DealOptions())
    assert parsed.problems == [
        Problem("history", 5, "at", "2026-13-01 10:00", "not a date (write it as 2026-03-01)")
    ]
    assert len(parsed.deals) == 40
    assert sum(len(d.events) for d in parsed.deals) == 119  # the others read at once


@pytest.mark.django_db
def test_one_bad_amount_and_status_among_good_ones_are_reported_as_before() -> None:
    bad = {("opportunities", 4, 6): "abc", ("opportunities", 6, 5): "maybe"}
    with translation.override("en"):
        parsed = native.parse(native_files(bad), DealOptions())
    assert parsed.problems == [
        Problem("opportunities", 4, "amount", "abc", "not an amount"),
        Problem("opportunities", 6, "status", "maybe", "must be open, won or lost"),
    ]
    assert [d.row for d in parsed.deals] == [n for n in range(2, 42) if n not in (4, 6)]
    assert parsed.refused_ids == {"D2", "D4"}
    assert parsed.deals[0].amount == Decimal("100000.00")
    assert parsed.deals[0].created_at == parse_datetime("2026-01-01 09:00")


@pytest.mark.django_db
def test_salesforce_read_at_once_is_read_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [["Opportunity ID", "Opportunity Name", "Account Name", "Opportunity Owner", "Stage",
             "Amount", "Close Date", "Created Date", "Probability (%)", "Won", "Closed"]]  # fmt: skip
    for n in range(30):
        rows.append([f"006{n}", f"Deal {n}", "Acme", "seller", "Prospecting", "50000",
                     "2026-05-01", "2026-01-01 10:00", "10", "0", "0"])  # fmt: skip
    rows[3][9:] = ["1", "1"]
    rows[4][8] = "0"
    rows[5][5] = "$1,000"
    rows[6][10] = "perhaps"
    sheets = read_bytes(csv_text(rows), name="opportunities.csv")
    with translation.override("en"):
        fast = snapshot(salesforce.parse(sheets, DealOptions()))
        _patch_row_by_row(monkeypatch)
        slow = snapshot(salesforce.parse(sheets, DealOptions()))
    assert fast == slow
    assert [p.row for p in fast[1]] == [7]


# --- writing: the values the bulk writer binds -----------------------------------------------


@pytest.mark.parametrize("external_id", ["D-1", '商机"1"', "a\\b", "tab\there", "\u2028", ""])
def test_audit_after_is_what_json_dumps_writes(external_id: str) -> None:
    expected = json.dumps({"external_id": external_id, "row": 12}, ensure_ascii=False)
    assert _audit_after(external_id, 12) == expected


def test_bulk_adapters_keep_none_and_write_what_django_writes() -> None:
    moment = dt.datetime(2026, 3, 1, 10, 0, 0, 5, tzinfo=TZ)
    assert _sqlite_datetime(moment) == "2026-03-01 02:00:00.000005"
    assert _sqlite_datetime(dt.datetime(2026, 3, 1, 10)) == "2026-03-01 10:00:00"
    assert _sqlite_datetime(None) is None
    assert _sqlite_date(dt.date(2026, 3, 1)) == "2026-03-01"
    assert _sqlite_date(None) is None
    assert _json(("stage", "status")) == _json(["stage", "status"]) == '["stage", "status"]'
    assert _json(None) is None


def test_each_history_row_names_what_changed_since_the_row_before(
    org: dict[str, Any], tmp_path: Any
) -> None:
    write(tmp_path, "opportunities.csv",
          "id,name,account,owner,stage,status,amount,currency,close_date,created_at\n"
          "D1,变更,客户甲,seller,closed,won,300,CNY,2026-09-30,2026-01-01 09:00\n")  # fmt: skip
    write(tmp_path, "history.csv",
          "deal_id,at,stage,status,amount,close_date\n"
          "D1,2026-01-01 09:00,discover,open,100,2026-06-30\n"
          "D1,2026-02-01 09:00,discover,open,200,2026-06-30\n"
          "D1,2026-03-01 09:00,discover,open,200,2026-07-31\n"
          "D1,2026-04-01 09:00,intent,open,250,2026-07-31\n"
          "D1,2026-05-01 09:00,intent,open,300,2026-09-30\n")  # fmt: skip
    run_import("native", str(tmp_path))
    fields = ("stage_id", "status", "amount", "close_date", "probability", "forecast_category")
    rows = list(OpportunityHistory.objects.order_by("valid_from").values(*fields, "changed"))
    assert len(rows) == 6
    assert rows[0]["changed"] == ["stage", "status", "amount", "currency", "close_date",
                                  "probability", "owner", "forecast_category"]  # fmt: skip
    for before, row in itertools.pairwise(rows):
        names = [n for n, f in zip(TRACKED_ORDER, fields, strict=True) if before[f] != row[f]]
        assert row["changed"] == names
    assert [r["changed"] for r in rows[1:3]] == [["amount"], ["close_date"]]
    assert json.loads(CHANGED_JSON[0b101001]) == ["stage", "close_date", "forecast_category"]
