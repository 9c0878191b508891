"""Reading imported cells and files: dates, times, amounts, probabilities and yes/no in the forms
CRMs and people write them (and refusals with the reason), CSV in the encodings and delimiters
Excel and the CRMs write, XLSX with typed cells, blank rows skipped with the row numbers kept."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loudou.core.errors import ValidationFailed
from loudou.interop.tables import as_text, read_bytes, read_csv, read_file
from loudou.interop.values import (
    BadValue,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_money,
    parse_probability,
)
from tests.interop.crm_files import at, write_xlsx

MARCH_1 = dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    "cell",
    ["2026-03-01", "2026/3/1", "2026/03/01", "2026.3.1", "2026年3月1日", "2026 年 3 月 1 日",
     "20260301", "03/01/2026", "3-1-2026", "2026-03-01 23:59:59", "2026-03-01T10:00:00Z",
     46082, 46082.99, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 18, 30)],
)  # fmt: skip
def test_every_promised_date_form(cell: Any) -> None:
    assert parse_date(cell) == MARCH_1


def test_month_first_unless_dayfirst() -> None:
    assert parse_date("03/01/2026") == dt.date(2026, 3, 1)
    assert parse_date("03/01/2026", dayfirst=True) == dt.date(2026, 1, 3)
    assert parse_date("13/01/2026", dayfirst=True) == dt.date(2026, 1, 13)
    assert parse_date("2026/03/01", dayfirst=True) == MARCH_1  # year first is never ambiguous


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("2026-02-30", "not a date (write it as 2026-03-01)"),
     ("13/01/2026", "not a date (write it as 2026-03-01)"),
     ("31.31.2026", "not a date (write it as 2026-03-01)"),
     ("1/3/26", "not a date (write it as 2026-03-01)"),
     ("next week", "not a date (write it as 2026-03-01)"),
     ("1800-01-01", "a date out of range"),
     (0, "not a date"), (-5, "not a date"), (3_000_000, "not a date")],
)  # fmt: skip
def test_bad_dates_are_refused_with_the_reason(cell: Any, reason: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse_date(cell)
    assert str(refused.value) == reason


@pytest.mark.parametrize("cell", [None, "", "   "])
def test_empty_dates_are_none(cell: Any) -> None:
    assert parse_date(cell) is None and parse_datetime(cell) is None


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("2026-03-01 10:30", at(2026, 3, 1, 10, 30)),
     ("2026-03-01 10:30:15", at(2026, 3, 1, 10, 30, 15)),
     ("2026/3/1 9:05", at(2026, 3, 1, 9, 5)),
     ("3/1/2026 2:30 PM", at(2026, 3, 1, 14, 30)),
     ("3/1/2026 12:10 AM", at(2026, 3, 1, 0, 10)),
     ("3/1/2026 12:10 PM", at(2026, 3, 1, 12, 10)),
     ("2026-03-01T02:00:00Z", at(2026, 3, 1, 10, 0)),
     ("2026-03-01T02:00:00.000Z", at(2026, 3, 1, 10, 0)),
     ("2026-03-01T10:00:00+08:00", at(2026, 3, 1, 10, 0)),
     (1772330400000, at(2026, 3, 1, 10, 0)),  # epoch milliseconds (HubSpot)
     ("1772330400000", at(2026, 3, 1, 10, 0)),  # ... as text in a CSV
     (46082.4375, at(2026, 3, 1, 10, 30)),  # an Excel serial with its time of day
     (dt.datetime(2026, 3, 1, 10, 30), at(2026, 3, 1, 10, 30)),
     # A day without a time is its noon, whether text or an XLSX date cell (read as midnight).
     ("2026-03-01", at(2026, 3, 1, 12, 0)),
     (dt.datetime(2026, 3, 1), at(2026, 3, 1, 12, 0)),
     (46082, at(2026, 3, 1, 12, 0))],
)  # fmt: skip
def test_date_and_time_forms(cell: Any, expected: dt.datetime) -> None:
    assert parse_datetime(cell) == expected


def test_dayfirst_applies_to_datetimes() -> None:
    assert parse_datetime("01/03/2026 10:00", dayfirst=True) == at(2026, 3, 1, 10, 0)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("2026-13-20 10:00", "not a date (write it as 2026-03-01)"),
     ("2026-02-30 10:00", "not a date (write it as 2026-03-01)"),
     ("2026-03-01 25:00", "not a date and time"),
     ("2026-03-01 10:61", "not a date and time")],
)  # fmt: skip
def test_bad_datetimes_are_refused_not_crashed_on(cell: str, reason: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse_datetime(cell)
    assert str(refused.value) == reason


@pytest.mark.parametrize(
    ("cell", "amount", "currency"),
    [("1,234,567.89", "1234567.89", ""), ("¥1,234,567", "1234567.00", "CNY"),
     ("￥1,200,000.00", "1200000.00", "CNY"), ("$ 32,000.00", "32000.00", "USD"),
     ("$1,234,567", "1234567.00", "USD"), ("32.000,00", "32000.00", ""),
     ("$ 32.000,00", "32000.00", "USD"), ("1.234.567", "1234567.00", ""),
     ("12,5", "12.50", ""), ("120万", "1200000.00", "CNY"), ("120万元", "1200000.00", "CNY"),
     ("1.2亿", "120000000.00", "CNY"), ("3000元", "3000.00", "CNY"),
     ("USD 100", "100.00", "USD"), ("100 EUR", "100.00", "EUR"), ("RMB 5,000", "5000.00", "CNY"),
     ("1\u00a0234\u00a0567,89", "1234567.89", ""), (1234567, "1234567.00", ""),
     (1234.5, "1234.50", ""), (Decimal("0"), "0.00", "")],
)  # fmt: skip
def test_amounts_in_every_usual_form(cell: Any, amount: str, currency: str) -> None:
    assert parse_money(cell) == (Decimal(amount), currency)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("-32000", "a negative amount"), ("(32000.00)", "a negative amount"),
     ("¥-5", "a negative amount"), (-1, "a negative amount"),
     ("1e17", "too large an amount"), (10**16, "too large an amount"),
     ("abc", "not an amount"), ("NaN", "not an amount"), ("Infinity", "not an amount"),
     ("1,234.5.6", "not an amount"), (True, "not an amount")],
)  # fmt: skip
def test_bad_amounts_are_refused_with_the_reason(cell: Any, reason: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse_money(cell)
    assert str(refused.value) == reason


def test_an_empty_amount_is_none() -> None:
    assert parse_money(None) == parse_money("") == parse_money("  ") == (None, "")


@given(st.decimals(min_value=0, max_value=Decimal("9999999999999999.99"), places=2))
def test_any_amount_with_thousands_separators_parses_back(amount: Decimal) -> None:
    english = f"{amount:,.2f}"
    assert parse_money(english) == (amount, "")
    assert parse_money("¥" + english) == (amount, "CNY")
    european = english.replace(",", " ").replace(".", ",").replace(" ", ".")
    assert parse_money(european)[0] == amount


@pytest.mark.parametrize(
    ("cell", "percent"),
    [(60, 60), ("60", 60), ("60%", 60), ("60 %", 60), (0.6, 60), ("0.6", 60), (1, 1),
     ("1", 1), (0, 0), (100, 100), ("100%", 100), (" 35.4 ", 35), (None, None), ("", None)],
)  # fmt: skip
def test_probabilities(cell: Any, percent: int | None) -> None:
    assert parse_probability(cell) == percent


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("101", "a probability above 100 %"), ("-5", "not a probability"),
     ("likely", "not a probability"), ("NaN", "not a probability")],
)  # fmt: skip
def test_bad_probabilities(cell: Any, reason: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse_probability(cell)
    assert str(refused.value) == reason


def test_yes_and_no() -> None:
    assert [parse_bool(v) for v in ("1", "TRUE", "Yes", "是", True, "0", "False", "否", "")] == [
        True, True, True, True, True, False, False, False, None
    ]  # fmt: skip
    with pytest.raises(BadValue):
        parse_bool("maybe")


# --- files ---------------------------------------------------------------------------------

CHINESE = '客户名称,金额,预计成交日期\n华能集团,120万,2026/3/1\n中粮集团,"1,200,000",2026年3月1日\n'


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_chinese_csv_in_every_encoding_excel_writes(encoding: str, detected: str) -> None:
    sheet = read_csv(CHINESE.encode(encoding), name="deals.csv")
    assert (sheet.encoding, sheet.headers) == (detected, ["客户名称", "金额", "预计成交日期"])
    assert sheet.records() == [
        (2, {"客户名称": "华能集团", "金额": "120万", "预计成交日期": "2026/3/1"}),
        (3, {"客户名称": "中粮集团", "金额": "1,200,000", "预计成交日期": "2026年3月1日"}),
    ]


def test_a_windows_1252_salesforce_export_is_not_read_as_chinese() -> None:
    text = '"Id","Name","StageName"\n"006A1","Clément Négoce","Diseño Propuesta"\n'
    sheet = read_csv(text.encode("cp1252"), name="Opportunity.csv")
    assert sheet.encoding == "cp1252"
    assert sheet.records() == [
        (2, {"Id": "006A1", "Name": "Clément Négoce", "StageName": "Diseño Propuesta"})
    ]


def test_an_explicit_encoding_wins_and_a_wrong_one_is_a_clear_error() -> None:
    data = CHINESE.encode("gbk")
    assert read_csv(data, name="d.csv", encoding="gbk").records()[0][1]["客户名称"] == "华能集团"
    with pytest.raises(ValidationFailed) as wrong:
        read_csv(data, name="d.csv", encoding="utf-8")
    assert str(wrong.value) == (
        "The file is not in utf-8: byte 0 cannot be read (try another --encoding)."
    )
    with pytest.raises(ValidationFailed) as unknown:
        read_csv(data, name="d.csv", encoding="klingon")
    assert str(unknown.value) == "Unknown encoding “klingon”."


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_detected(delimiter: str) -> None:
    text = delimiter.join(["Name", '"Amount; total"', "Stage"]) + "\n"
    text += delimiter.join(["A", '"1,200"', "Won"]) + "\r\n"
    sheet = read_csv(text.encode(), name="x.csv")
    assert sheet.headers == ["Name", "Amount; total", "Stage"]
    assert sheet.records() == [(2, {"Name": "A", "Amount; total": "1,200", "Stage": "Won"})]


def test_blank_rows_are_skipped_and_row_numbers_kept() -> None:
    text = "Name,Amount\nA,1\n,\n\n  ,  \nB,2\nC\n"
    sheet = read_csv(text.encode(), name="x.csv")
    assert sheet.records() == [
        (2, {"Name": "A", "Amount": "1"}),
        (6, {"Name": "B", "Amount": "2"}),
        (7, {"Name": "C", "Amount": None}),
    ]


def test_an_empty_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as empty:
        read_csv(b"", name="empty.csv")
    assert str(empty.value) == "empty.csv is empty."
    with pytest.raises(ValidationFailed) as missing:
        read_file(tmp_path / "nope.csv")
    assert str(missing.value) == f"{tmp_path / 'nope.csv'} does not exist."
    with pytest.raises(ValidationFailed) as broken:
        read_bytes(b"PK\x03\x04 not really a zip", name="deals.xlsx")
    assert str(broken.value).startswith("deals.xlsx is not a readable Excel workbook")


def test_xlsx_cells_keep_their_types_and_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "deals.csv",  # told apart by content, not by name
        {
            "Deals": [
                ["Name", "Amount", "Close", "Created", None],
                ["A", 1200000, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 9, 30)],
                [None, None, None, None],
                ["B", 99.5, 46082, "2026/3/1"],
                [None, None, None, None],
            ],
            "Empty": [],
            "Notes": [["Text"], ["kept"]],
        },
    )
    sheets = read_file(path)
    assert [(s.name, s.encoding, s.headers) for s in sheets] == [
        ("Deals", "xlsx", ["Name", "Amount", "Close", "Created"]),
        ("Notes", "xlsx", ["Text"]),
    ]
    records = sheets[0].records()
    assert records == [
        (2, {"Name": "A", "Amount": 1200000, "Close": dt.datetime(2026, 3, 1),
             "Created": dt.datetime(2026, 3, 1, 9, 30)}),
        (4, {"Name": "B", "Amount": 99.5, "Close": 46082, "Created": "2026/3/1"}),
    ]  # fmt: skip
    assert [parse_date(r["Close"]) for _n, r in records] == [MARCH_1, MARCH_1]
    assert parse_money(records[0][1]["Amount"]) == (Decimal("1200000.00"), "")
    assert [as_text(r["Close"]) for _n, r in records] == ["2026-03-01", "46082"]


def test_a_directory_reads_every_csv_and_xlsx_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_bytes(CHINESE.encode("gbk"))
    (tmp_path / "a.csv").write_bytes(io.BytesIO(CHINESE.encode("utf-8-sig")).getvalue())
    (tmp_path / "notes.md").write_text("not a table")
    sheets = read_file(tmp_path)
    assert [(s.name, s.encoding) for s in sheets] == [("a", "utf-8-sig"), ("b", "gb18030")]
