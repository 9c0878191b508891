"""The export writer: CSV with a BOM that round-trips Chinese, XLSX with typed cells, formula
neutralising for text only, file names and the download headers."""

import csv
import datetime as dt
import io
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from loudou.core import clock
from loudou.core.errors import ValidationFailed
from loudou.interop import exports
from loudou.interop.exports import (
    Table,
    content_disposition,
    export_response,
    filename,
    neutralise,
)

COLUMNS = [("name", "名称"), ("amount", "金额"), ("close", "预计签约日期"), ("note", "备注")]
DANGEROUS = [
    '=HYPERLINK("http://x","点我")',
    "+1+2",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "＝1+1",
    "＋86 138 0013 8000",
    "－1",
    "＠x",
]
SAFE = ["华北电力集团", "a=b", "1+1", "email@example.com", "", "'quoted", "中-文"]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data)).active


@pytest.mark.parametrize("text", DANGEROUS)
def test_every_dangerous_prefix_is_neutralised(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", SAFE)
def test_safe_text_is_left_alone(text: str) -> None:
    assert neutralise(text) == text


@pytest.mark.parametrize(
    "value",
    [Decimal("-5.00"), -5, -0.5, dt.date(2026, 3, 1), True, None],
)
def test_numbers_dates_and_booleans_are_never_neutralised(value: Any) -> None:
    assert neutralise(value) is value


def test_csv_has_a_bom_crlf_and_round_trips_chinese() -> None:
    rows = [
        ["华北电力集团 财务共享", Decimal("1200000.00"), dt.date(2026, 3, 31), "第一行\n第二行"],
        ['含"引号", 和逗号', Decimal("-5.00"), None, ""],
    ]
    data = Table(COLUMNS, rows).to_csv_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\xef\xbb\xbf") == 1
    assert b"\r\n" in data and data.endswith(b"\r\n")
    assert read_csv(data) == [
        ["名称", "金额", "预计签约日期", "备注"],
        ["华北电力集团 财务共享", "1200000.00", "2026-03-31", "第一行\n第二行"],
        ['含"引号", 和逗号', "-5.00", "", ""],
    ]


def test_csv_neutralises_text_but_writes_negative_numbers_as_numbers() -> None:
    rows = [[text, Decimal("-5.00"), dt.date(2026, 1, 2), -3] for text in DANGEROUS]
    parsed = read_csv(Table(COLUMNS, rows).to_csv_bytes())[1:]
    assert [row[0] for row in parsed] == ["'" + text for text in DANGEROUS]
    assert {row[1] for row in parsed} == {"-5.00"}
    assert {row[3] for row in parsed} == {"-3"}


def test_csv_decimals_never_use_an_exponent() -> None:
    data = Table([("n", "N")], [[Decimal("1E+3")], [Decimal("-0.50")]]).to_csv_bytes()
    assert read_csv(data)[1:] == [["1000"], ["-0.50"]]


def test_csv_header_keys_for_programs() -> None:
    data = Table(COLUMNS, []).to_csv_bytes(header_keys=True)
    assert read_csv(data) == [["name", "amount", "close", "note"]]


def test_csv_moments_are_in_the_readers_time_zone() -> None:
    moment = dt.datetime(2026, 3, 1, 1, 30, 15, tzinfo=dt.UTC)
    with timezone.override(zoneinfo.ZoneInfo("Asia/Shanghai")):
        data = Table([("at", "At")], [[moment]]).to_csv_bytes()
    assert read_csv(data)[1] == ["2026-03-01 09:30"]


def test_xlsx_types_numbers_dates_and_text() -> None:
    moment = dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC)
    rows = [
        ["华北电力集团", Decimal("1234567.89"), dt.date(2026, 3, 31), moment],
        ["上海汽车", Decimal("-5.00"), None, None],
        ["int and float", 42, 2.5, True],
    ]
    columns = [*COLUMNS[:3], ("at", "时间")]
    with timezone.override(zoneinfo.ZoneInfo("Asia/Shanghai")):
        sheet = read_xlsx(Table(columns, rows, title="商机").to_xlsx_bytes())
    assert sheet.title == "商机"
    assert [c.value for c in sheet[1]] == ["名称", "金额", "预计签约日期", "时间"]
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:D4"
    name, amount, close, at = sheet[2]
    assert (name.value, name.data_type) == ("华北电力集团", "s")
    assert amount.data_type == "n" and amount.value == pytest.approx(1234567.89)
    assert amount.number_format == "#,##0.00"
    assert close.is_date and close.value == dt.datetime(2026, 3, 31)
    assert close.number_format == "yyyy-mm-dd"
    assert at.is_date and at.value == dt.datetime(2026, 3, 1, 9, 30)
    negative = sheet["B3"]
    assert negative.data_type == "n" and negative.value == -5
    assert sheet["C3"].value is None
    assert [c.value for c in sheet[4]] == ["int and float", 42, 2.5, True]
    # Widths follow the content: a Chinese name is wider than its character count.
    assert sheet.column_dimensions["A"].width >= 14
    assert sheet.column_dimensions["B"].width >= len("1,234,567.89")


def test_xlsx_never_writes_a_formula_and_marks_dangerous_text() -> None:
    rows = [[text, Decimal("-1.00")] for text in [*DANGEROUS, "plain"]]
    sheet = read_xlsx(Table(COLUMNS[:2], rows).to_xlsx_bytes())
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    # XML reads a carriage return back as a line feed; the text stays text.
    assert [c.value for c in cells[:-1]] == [t.replace("\r", "\n") for t in DANGEROUS]
    assert all(c.data_type == "s" for c in cells)
    assert all(c.quotePrefix for c in cells[:-1])
    assert not cells[-1].quotePrefix
    assert {row[1].value for row in sheet.iter_rows(min_row=2)} == {-1}


def test_xlsx_drops_characters_xml_cannot_hold() -> None:
    sheet = read_xlsx(Table([("n", "N")], [["a\x01b\x0bc\td"]]).to_xlsx_bytes())
    assert sheet["A2"].value == "abc\td"


def test_xlsx_refuses_more_rows_than_a_sheet_holds(monkeypatch: Any) -> None:
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)
    Table([("n", "N")], [[1]] * 3).to_xlsx_bytes()
    with pytest.raises(ValidationFailed) as refused:
        Table([("n", "N")], [[1]] * 4).to_xlsx_bytes()
    assert refused.value.details == {"format": "too_many_rows"}


def test_non_finite_numbers_are_empty() -> None:
    rows = [[float("nan"), Decimal("Infinity")]]
    table = lambda: Table([("a", "A"), ("b", "B")], iter(rows))  # noqa: E731
    assert read_csv(table().to_csv_bytes())[1] == ["", ""]
    sheet = read_xlsx(table().to_xlsx_bytes())
    assert (sheet["A2"].value, sheet["B2"].value) == (None, None)


def test_sheet_titles_are_what_excel_accepts() -> None:
    assert exports.sheet_title("a/b:c*d?[e]") == "a b c d  e"
    assert len(exports.sheet_title("x" * 40)) == 31
    assert exports.sheet_title("") == "Sheet1"


def test_filename_has_the_stem_and_the_day() -> None:
    day = dt.date(2026, 11, 27)
    assert filename("Opportunities", "csv", day) == "opportunities-2026-11-27.csv"
    assert filename("Stalled deals", "xlsx", day) == "stalled-deals-2026-11-27.xlsx"
    assert filename("停滞商机", "csv", day) == "停滞商机-2026-11-27.csv"
    assert filename('a/b\\c:"d"', "csv", day) == "a-b-c-d-2026-11-27.csv"
    assert filename("..", "csv", day) == "export-2026-11-27.csv"
    assert filename("x", "csv").endswith(f"-{clock.today().isoformat()}.csv")


def test_content_disposition_ascii_and_utf8_names() -> None:
    assert content_disposition("opportunities-2026-11-27.csv") == (
        'attachment; filename="opportunities-2026-11-27.csv"'
    )
    assert content_disposition("商机-2026-11-27.xlsx") == (
        "attachment; filename=\"export-2026-11-27.xlsx\"; filename*=UTF-8''"
        "%E5%95%86%E6%9C%BA-2026-11-27.xlsx"
    )
    mixed = content_disposition("华北 Accounts-2026-11-27.csv")
    assert 'filename="export-Accounts-2026-11-27.csv"' in mixed


def test_export_response_headers() -> None:
    table = Table(COLUMNS, [["名称", Decimal("1.00"), None, ""]], title="商机")
    csv_response = export_response(table, "csv", "商机")
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response["Cache-Control"] == "private, no-store"
    disposition = csv_response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="export-')
    assert "filename*=UTF-8''%E5%95%86%E6%9C%BA-" in disposition
    assert csv_response.content.startswith(b"\xef\xbb\xbf")
    table = Table(COLUMNS, [["名称", Decimal("1.00"), None, ""]], title="商机")
    xlsx_response = export_response(table, "xlsx", "opportunities")
    assert xlsx_response["Content-Type"] == exports.CONTENT_TYPES["xlsx"]
    assert read_xlsx(xlsx_response.content)["A2"].value == "名称"
    with pytest.raises(ValidationFailed):
        export_response(table, "pdf", "x")
