"""The one writer behind every export: a table (columns with their headers in the reader's
language, then rows of typed values) written as CSV or XLSX, and the HTTP response that carries
it. The web lists and the API exports build a `Table` from their own selector and hand it here.

How values are written (the same rules for both formats):

- Text is *neutralised* against formula injection (OWASP "CSV injection"): a text that starts —
  after any spaces — with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their
  full-width forms ``＝ ＋ － ＠``, which a Chinese input method types) could run as a formula
  when a spreadsheet opens the file. In CSV such a text gets a leading ``'``, which makes Excel
  and LibreOffice read the cell as text. In XLSX the text is kept exactly and stored as a text
  cell (never a formula) with Excel's "quote prefix" mark, which is what Excel itself records
  when someone types ``'=…``: the cell shows ``=…`` and stays text even when edited.
- Numbers (``int``, ``float``, ``Decimal``) are numbers, never neutralised: a negative amount is
  ``-5.00`` in CSV and a numeric cell in XLSX. Only text a person typed can carry a formula; a
  number produced by loudou cannot, and a sum over an exported amount column must work. A value
  that is a number *in text form* (a phone number ``+86 …``) is text and is neutralised.
- Dates and moments are real dates: ISO 8601 in CSV (``2026-11-27``, ``2026-11-27 14:05`` in the
  reader's time zone), date cells with a date format in XLSX.
- ``True``/``False`` are boolean cells in XLSX and ``TRUE``/``FALSE`` in CSV; ``None`` is empty.

CSV is UTF-8 with a byte order mark (so Excel opens Chinese correctly), ``\\r\\n`` line ends and
the csv module's quoting. XLSX is written with openpyxl's write-only workbook (constant memory
per row): a bold, frozen header row with filter buttons, and column widths from the content.
"""

import contextlib
import csv
import datetime as dt
import io
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.errors import ValidationFailed

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# First characters that make a spreadsheet read a cell as a formula (OWASP), and the full-width
# forms of the four signs.
DANGEROUS_FIRST = frozenset("=+-@\t\r＝＋－＠")
# XLSX has no room for more rows than this (the header takes one more).
XLSX_MAX_ROWS = 1_048_575
# Column widths are measured on the first rows only: the writer keeps a constant memory.
WIDTH_SAMPLE = 500
MIN_WIDTH, MAX_WIDTH = 6, 60
DATE_FORMAT, DATETIME_FORMAT, AMOUNT_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "#,##0.00"
# Characters the XML of an XLSX file cannot hold (control characters but tab, LF and CR).
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
SHEET_TITLE_ILLEGAL = re.compile(r"[\[\]:*?/\\]")
FILENAME_ILLEGAL = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def is_number(value: Any) -> bool:
    """A real number (bool is not one here: it is written as a boolean)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet could read `text` as a formula."""
    stripped = text.lstrip(" ")
    return bool(stripped) and stripped[0] in DANGEROUS_FIRST


def neutralise(value: Any) -> Any:
    """`value` made safe for a CSV cell: a text that could start a formula gets a leading ``'``;
    numbers, dates, booleans and None are returned unchanged (they are never formulas)."""
    if value is None or is_number(value) or isinstance(value, bool | dt.date):
        return value
    text = str(value)
    return "'" + text if is_dangerous(text) else text


def local_moment(value: dt.datetime) -> dt.datetime:
    """An aware moment in the active (the reader's) time zone, without its zone: spreadsheets
    have no time zones."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(tzinfo=None, microsecond=0)


def _finite(value: Any) -> bool:
    return not isinstance(value, float | Decimal) or math.isfinite(value)


def csv_value(value: Any) -> Any:
    """What the csv module writes for one value."""
    if value is None or not _finite(value):
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return local_moment(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")  # 1E+3 would read as text in a spreadsheet: 1000
    if is_number(value):
        return str(value)
    return neutralise(value)


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: a Chinese character is two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _shown_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 16
    if isinstance(value, dt.date):
        return 10
    if isinstance(value, Decimal) and _finite(value):
        return len(f"{value:,.2f}")
    text = str(value)
    return max((_display_width(line) for line in text.splitlines()), default=0)


def sheet_title(title: str) -> str:
    """A worksheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = SHEET_TITLE_ILLEGAL.sub(" ", XML_ILLEGAL.sub("", title)).strip().strip("'")
    return cleaned[:31] or "Sheet1"


@dataclass
class Table:
    """An export: `columns` as (key, header) pairs, the header in the reader's language, and
    `rows` as sequences of values in the columns' order (an iterable, read once)."""

    columns: Sequence[tuple[str, Any]]
    rows: Iterable[Sequence[Any]]
    title: str = ""

    @property
    def keys(self) -> list[str]:
        return [key for key, _header in self.columns]

    @property
    def headers(self) -> list[str]:
        return [str(header) for _key, header in self.columns]

    def to_csv_bytes(self, *, header_keys: bool = False) -> bytes:
        """UTF-8 with a BOM, `\\r\\n` line ends; headers in the reader's language, or the column
        keys with `header_keys` (for programs)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(neutralise(h) for h in (self.keys if header_keys else self.headers))
        for row in self.rows:
            writer.writerow(csv_value(value) for value in row)
        return buffer.getvalue().encode("utf-8-sig")

    def to_xlsx_bytes(self, *, header_keys: bool = False) -> bytes:
        """One worksheet: a bold, frozen header row with filter buttons, then one row per row,
        numbers as numbers, dates as dates, text as text (never a formula)."""
        from openpyxl import Workbook
        from openpyxl.utils import get_column_letter

        workbook = Workbook(write_only=True)
        workbook.properties.creator = "loudou"
        sheet = workbook.create_sheet(sheet_title(self.title or _("Export")))
        headers = self.keys if header_keys else self.headers
        rows = iter(self.rows)
        sample = list(itertools.islice(rows, WIDTH_SAMPLE))
        for index, header in enumerate(headers):
            shown = [_shown_width(row[index]) for row in sample if index < len(row)]
            width = max([_display_width(header) + 3, *shown]) + 2
            letter = get_column_letter(index + 1)
            sheet.column_dimensions[letter].width = min(max(width, MIN_WIDTH), MAX_WIDTH)
        sheet.freeze_panes = "A2"
        sheet.append(_header_cells(sheet, headers))
        count = 0
        try:
            for row in itertools.chain(sample, rows):
                count += 1
                if count > XLSX_MAX_ROWS:
                    raise ValidationFailed(
                        _(
                            "An Excel sheet holds at most %(n)s rows: narrow the filters, or "
                            "export as CSV."
                        )
                        % {"n": f"{XLSX_MAX_ROWS:,}"},
                        details={"format": "too_many_rows"},
                    )
                sheet.append([_xlsx_cell(sheet, value) for value in row])
        except Exception:
            # Finish the half-written sheet's temporary file before giving up on it.
            with contextlib.suppress(Exception):
                sheet.close()
            raise
        if headers:
            last = get_column_letter(len(headers))
            sheet.auto_filter.ref = f"A1:{last}{count + 1}"
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()

    def to_bytes(self, fmt: str, *, header_keys: bool = False) -> bytes:
        if fmt == "xlsx":
            return self.to_xlsx_bytes(header_keys=header_keys)
        return self.to_csv_bytes(header_keys=header_keys)


def _header_cells(sheet: Any, headers: list[str]) -> list[Any]:
    from openpyxl.styles import Alignment, Font

    bold, align = Font(bold=True), Alignment(vertical="center")
    cells = []
    for header in headers:
        cell = _text_cell(sheet, header)
        cell.font, cell.alignment = bold, align
        cells.append(cell)
    return cells


def _text_cell(sheet: Any, value: Any) -> Any:
    """A cell that holds `value` as text, marked "quote prefix" when it could be a formula."""
    from openpyxl.cell import WriteOnlyCell

    text = XML_ILLEGAL.sub("", str(value))
    cell = WriteOnlyCell(sheet, value=text)
    # openpyxl makes any text that starts with "=" a formula: force the text type.
    cell.data_type = "s"
    if is_dangerous(text):
        cell.quotePrefix = True
    return cell


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    """The value as openpyxl writes it: plain values as they are, styled or guarded cells where
    the value needs a format or could be read as a formula."""
    from openpyxl.cell import WriteOnlyCell

    if not _finite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value=local_moment(value))
        cell.number_format = DATETIME_FORMAT
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_FORMAT
        return cell
    if isinstance(value, Decimal):
        cell = WriteOnlyCell(sheet, value=value)
        # Money has two decimals; other decimals (days, rates) keep the general format.
        if value.as_tuple().exponent == -2:
            cell.number_format = AMOUNT_FORMAT
        return cell
    text = str(value)
    if is_dangerous(text) or XML_ILLEGAL.search(text):
        return _text_cell(sheet, text)
    return text


# --- files and responses -------------------------------------------------------------------------


def filename(stem: str, fmt: str, day: dt.date | None = None) -> str:
    """`opportunities-2026-11-27.csv`: the stem (in the reader's language, lower case, words
    joined by hyphens), the day, the format."""
    cleaned = re.sub(r"[\s-]+", "-", FILENAME_ILLEGAL.sub("-", stem.lower())).strip(" .-")
    cleaned = cleaned or "export"
    return f"{cleaned}-{(day or clock.today()).isoformat()}.{fmt}"


def content_disposition(name: str) -> str:
    """An attachment header (RFC 6266): an ASCII `filename` every client reads and, when the name
    is not ASCII, `filename*` with the UTF-8 name (RFC 8187) that current browsers prefer."""
    ascii_name = _ascii_fallback(name)
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def _ascii_fallback(name: str) -> str:
    """`商机-2026-11-27.csv` → `export-2026-11-27.csv`; an ASCII name stays as it is."""
    stem, dot, ext = name.rpartition(".")
    kept = re.sub(r"-{2,}", "-", stem.encode("ascii", "ignore").decode()).strip(" .-")
    kept = kept.replace("\\", "_").replace('"', "_")
    if kept != stem:
        kept = f"export-{kept}" if kept else "export"
    return f"{kept}{dot}{ext.encode('ascii', 'ignore').decode()}"


def export_response(
    table: Table, fmt: str, stem: str, *, header_keys: bool = False
) -> HttpResponse:
    """The file as a download: the content type of `fmt`, an attachment named after `stem` and
    today, and no caching (an export holds customer data)."""
    if fmt not in FORMATS:
        raise ValidationFailed(
            _("Unknown export format “%(fmt)s”: use csv or xlsx.") % {"fmt": fmt},
            details={"format": "unknown"},
        )
    response = HttpResponse(
        table.to_bytes(fmt, header_keys=header_keys), content_type=CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = content_disposition(filename(stem, fmt))
    response["Cache-Control"] = "private, no-store"
    return response


__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "Table",
    "content_disposition",
    "export_response",
    "filename",
    "neutralise",
]
