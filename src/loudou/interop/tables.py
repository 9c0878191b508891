"""Reading the spreadsheets people export from their CRM: CSV in whatever encoding Excel or the
CRM wrote it (UTF-8, UTF-8 with BOM, GBK/GB18030, Windows-1252), or XLSX.

A `Sheet` is the header and the rows of one table, each row with the number the user sees in
Excel (the header is row 1), so every error can point at the cell that caused it."""

import codecs
import csv
import datetime as dt
import io
import operator
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed

# Tried in this order when the file does not say (a BOM) and the user did not (--encoding):
# strict UTF-8 first (a GBK file is almost never valid UTF-8), then GB18030, the superset of GBK
# and GB2312 that Excel on Chinese Windows writes, then Windows-1252 (Salesforce weekly exports),
# which decodes any byte.
ENCODINGS = ("utf-8", "gb18030", "cp1252")
DELIMITERS = ",;\t"
XLSX_MAGIC = b"PK\x03\x04"
# A file larger than this is refused before it is read (the web upload has its own, lower limit).
MAX_BYTES = 512 * 1024 * 1024


@dataclass
class Sheet:
    """One table of a file: its name (the sheet's, or the file's), the header as written, and the
    data rows; `first_row` is the spreadsheet row number of rows[0] (2 when the header is row 1)."""

    name: str
    headers: list[str]
    rows: list[list[Any]]
    encoding: str = ""
    first_row: int = 2
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[tuple[int, dict[str, Any]]]:
        """Each row as (row number, {header: value}); blank rows are left out."""
        return [(n, dict(zip(self.headers, row, strict=True))) for n, row in self._filled()]

    def fields(self, columns: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
        """Each row as (row number, {field: value}) for the fields that `columns` (field →
        header) maps to a header of the sheet; blank rows are left out. Cheaper than `records`
        for the readers: only the cells they read, looked up by field."""
        position = {header: i for i, header in enumerate(self.headers)}  # the last of a name
        pairs = [(key, position[header]) for key, header in columns.items() if header in position]
        keys = [key for key, _i in pairs]
        if not pairs:
            return [(n, {}) for n, _row in self._filled()]
        pick = operator.itemgetter(*(i for _key, i in pairs))
        if len(pairs) == 1:
            return [(n, {keys[0]: pick(row)}) for n, row in self._filled()]
        return [(n, dict(zip(keys, pick(row), strict=True))) for n, row in self._filled()]

    def columns(self, columns: dict[str, str]) -> tuple[list[int], dict[str, list[Any]]]:
        """The row numbers of the rows that are not blank, and for each field that `columns`
        (field → header) maps to a header of the sheet, its cells in those rows: what `fields`
        gives, a column at a time, for the readers that read a whole column at once
        (`interop.columns`). `{key: cells[key][i] for key in cells}` is `fields(columns)[i][1]`."""
        position = {header: i for i, header in enumerate(self.headers)}  # the last of a name
        numbers, rows = self._filled_columns()
        cells = {
            key: list(map(operator.itemgetter(position[header]), rows))
            for key, header in columns.items()
            if header in position
        }
        return numbers, cells

    def _filled_columns(self) -> tuple[list[int], list[list[Any]]]:
        """`_filled` as two lists, (row numbers, rows). A CSV sheet with no blank or short row
        (the usual case) is checked in a few passes in C instead of a Python test per row."""
        width = len(self.headers)
        try:
            stripped = list(map(str.strip, map("".join, self.rows)))
        except TypeError:  # an XLSX row (numbers, dates, None) somewhere: row by row
            stripped = None
        if stripped is not None and all(stripped) and set(map(len, self.rows)) <= {width}:
            return list(range(self.first_row, self.first_row + len(self.rows))), self.rows
        filled = self._filled()
        return [n for n, _row in filled], [row for _n, row in filled]

    def _filled(self) -> list[tuple[int, list[Any]]]:
        """(row number, cells) of the rows that are not blank, each as wide as the header."""
        out = []
        width = len(self.headers)
        for offset, row in enumerate(self.rows):
            try:  # a CSV row: text cells, blank when joined they are only spaces
                blank = not "".join(row).strip()
            except TypeError:  # an XLSX row: numbers, dates, None
                blank = all(v is None or (isinstance(v, str) and not v.strip()) for v in row)
            if blank:
                continue
            if len(row) != width:
                row = list(row[:width]) + [None] * (width - len(row))
            out.append((self.first_row + offset, row))
        return out


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of `data` and the encoding it was read with: the one given, else a BOM's, else the
    first of ENCODINGS that decodes it."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValidationFailed(
                _("Unknown encoding “%(e)s”.") % {"e": encoding}, details={"encoding": encoding}
            ) from None
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                _("The file is not in %(e)s: byte %(b)s cannot be read (try another --encoding).")
                % {"e": encoding, "b": exc.start}
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for candidate in ENCODINGS:
        if candidate == "gb18030" and _single_byte_accents(data):
            continue  # Windows-1252 that GB18030 would also decode, as nonsense
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(
        _("The file's encoding could not be recognised; give it with --encoding.")
    )


# A non-ASCII byte and the byte after it, paired left to right as a GBK decoder pairs them.
_PAIRS = re.compile(rb"[\x81-\xfe][\x40-\xfe]")


def _single_byte_accents(data: bytes) -> bool:
    """True when the file's non-ASCII bytes look like Windows-1252 accented letters, each alone
    among ASCII ones ("Diseño", "Négociation"), rather than GBK characters. GB18030 decodes both
    without error — "Dise駉 Propuesta" — so strict decoding cannot tell them apart: a common
    Chinese character is two bytes of 0xA1 or more, while an accented letter followed by an
    ASCII one makes a pair whose second byte is ASCII. Most pairs like that: not GBK."""
    pairs = _PAIRS.findall(data[: 1 << 20])
    ascii_second = sum(1 for pair in pairs if pair[1] < 0x80)
    return bool(pairs) and ascii_second * 2 > len(pairs)


def _delimiter(text: str) -> str:
    """The delimiter of the header line: the candidate that occurs most often outside quotes."""
    header = text.split("\n", 1)[0]
    counts = {d: 0 for d in DELIMITERS}
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(data: bytes, *, name: str, encoding: str | None = None) -> Sheet:
    """A CSV file's single sheet; header cells are stripped, values kept as text."""
    text, used = decode(data, encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ValidationFailed(
            _("%(f)s cannot be read as CSV (line %(n)s: %(e)s).")
            % {"f": name, "n": reader.line_num, "e": exc}
        ) from None
    if not rows:
        raise ValidationFailed(_("%(f)s is empty.") % {"f": name})
    headers = [h.strip().strip("\ufeff") for h in rows[0]]
    return Sheet(name=name, headers=headers, rows=rows[1:], encoding=used)


def _cell(value: Any) -> Any:
    # openpyxl gives datetime for date cells, int/float for numbers, str for text.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def read_xlsx(data: bytes, *, name: str) -> list[Sheet]:
    """Every non-empty worksheet of an XLSX workbook, values typed as Excel stores them."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    # BadZipFile: a file that begins like a workbook but is not one (truncated, renamed) must be
    # a problem to report, not a crash of the import.
    except (InvalidFileException, KeyError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValidationFailed(
            _("%(f)s is not a readable Excel workbook (%(e)s).") % {"f": name, "e": exc}
        ) from None
    sheets = []
    try:
        for ws in book.worksheets:
            rows = [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
            while rows and all(v is None for v in rows[-1]):
                rows.pop()
            if not rows:
                continue
            headers = [("" if h is None else str(h)).strip() for h in rows[0]]
            while headers and not headers[-1]:
                headers.pop()
            sheets.append(Sheet(name=ws.title, headers=headers, rows=rows[1:], encoding="xlsx"))
    finally:
        book.close()
    if not sheets:
        raise ValidationFailed(_("%(f)s holds no data.") % {"f": name})
    return sheets


def read_file(path: Path | str, *, encoding: str | None = None) -> list[Sheet]:
    """The sheets of a CSV or XLSX file (told apart by content, not by name), or of every CSV and
    XLSX file in a directory, in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".xlsx", ".txt"))
        if not files:
            raise ValidationFailed(_("%(d)s holds no CSV or XLSX file.") % {"d": path})
        return [sheet for f in files for sheet in read_file(f, encoding=encoding)]
    if not path.is_file():
        raise ValidationFailed(_("%(f)s does not exist.") % {"f": path})
    if path.stat().st_size > MAX_BYTES:
        raise ValidationFailed(_("%(f)s is too large to import.") % {"f": path.name})
    return read_bytes(path.read_bytes(), name=path.name, encoding=encoding)


def read_bytes(data: bytes, *, name: str, encoding: str | None = None) -> list[Sheet]:
    """The sheets of an uploaded or read file's bytes."""
    if data.startswith(XLSX_MAGIC):
        return read_xlsx(data, name=name)
    sheet = read_csv(data, name=name, encoding=encoding)
    sheet.name = Path(name).stem
    return [sheet]


def as_text(value: Any) -> str:
    """A cell as text, as the user would read it in Excel."""
    if value.__class__ is str:  # nearly every cell of a CSV file: the fast path
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value).strip()
