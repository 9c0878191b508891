"""Abuse by file: the import page refuses files that are not what their name says (an
executable, an ELF binary, a gzip, a zip that is no workbook, named .csv or .xlsx), judged by
their content and said in English and Chinese; a file one byte over the real upload limit is
refused unread, and so is a workbook that inflates far past it (a decompression bomb). Nothing
of a refused file is kept: no deal, history, account or import run, no file among the uploads."""

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from loudou.customers.models import Account
from loudou.interop import runs, uploads
from loudou.interop.models import ImportRun
from loudou.pipeline.models import Opportunity, OpportunityHistory
from tests.trust.hostile_text import _client


@pytest.fixture
def uploads_dir(settings: Any, tmp_path: Path, monkeypatch: Any) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())
    return tmp_path / "media" / "imports"


def _zip(entries: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return data.getvalue()


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
NOT_A_WORKBOOK = _zip({"readme.txt": b"hello", "evil.exe": EXE})
GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 20


def _counts() -> tuple[int, ...]:
    return (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        ImportRun.objects.count(),
    )


def _upload(client: Client, name: str, data: bytes) -> Any:
    file = io.BytesIO(data)
    file.name = name
    return client.post("/import/", {"format": "native", "playbook": "project-funnel", "file": file})


@pytest.mark.parametrize(
    ("name", "data", "message", "zh"),
    [
        ("deals.csv", EXE, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.xlsx", EXE, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.csv", ELF, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.csv", GZIP, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.xlsx", NOT_A_WORKBOOK, "is not an Excel workbook", "不是 Excel 工作簿"),
        ("deals.csv", NOT_A_WORKBOOK, "is not an Excel workbook", "不是 Excel 工作簿"),
        ("deals.exe", b"Name,Account\nA,B\n", "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
    ],
)
def test_files_of_the_wrong_type_are_refused_by_content(
    org: dict[str, Any], uploads_dir: Path, name: str, data: bytes, message: str, zh: str
) -> None:
    before = _counts()
    for language, expected in (("en", message), ("zh-hans", zh)):
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(org["manager"])
        response = _upload(client, name, data)
        assert response.status_code == 400
        html = response.content.decode()
        assert expected in html, (language, re.findall(r'class="error[^"]*">([^<]*)', html))
        assert escape(name) in html
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def test_a_file_over_the_real_limit_is_refused_unread(
    org: dict[str, Any], uploads_dir: Path
) -> None:
    """The real limit (not a patched one): one byte more than it is refused, with its size in
    the message, in English and Chinese, and nothing kept."""
    header = b"Name,Account,Amount\n"
    data = header + b"x" * (uploads.MAX_UPLOAD_BYTES + 1 - len(header))
    before = _counts()
    limit_mb = uploads.MAX_UPLOAD_BYTES // (1024 * 1024)
    assert limit_mb >= 1
    for language, expected in (
        ("en", f"is larger than {limit_mb} MB"),
        ("zh-hans", f"{limit_mb} MB"),
    ):
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(org["manager"])
        response = _upload(client, "big.csv", data)
        assert response.status_code == 400
        assert expected in response.content.decode(), language
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def _bomb(inflated: int) -> bytes:
    """A valid XLSX of a header and one row, padded with spaces between its rows so that its
    sheet inflates to `inflated` bytes; written in chunks (the padding never sits in memory)."""

    def row(r: int, values: list[bytes]) -> bytes:
        cells = b"".join(
            b'<c r="%s%d" t="inlineStr"><is><t>%s</t></is></c>' % (col, r, v)
            for col, v in zip([b"A", b"B", b"C"], values, strict=True)
        )
        return b'<row r="%d">%s</row>' % (r, cells)

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, body in BOOK_PARTS.items():
            z.writestr(name, body)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(SHEET_HEAD + row(1, [b"Name", b"Account", b"Amount"]))
            chunk = b" " * (1024 * 1024)
            for _ in range(inflated // len(chunk) + 1):
                sheet.write(chunk)
            sheet.write(row(2, [b"A", b"B", b"100"]) + b"</sheetData></worksheet>")
    return data.getvalue()


def test_a_workbook_that_inflates_far_past_the_limit_is_refused(
    org: dict[str, Any], uploads_dir: Path
) -> None:
    """A decompression bomb: a 1 MB XLSX whose sheet inflates to ten times the upload limit
    (a 20 MB one would inflate to 20 GB, read again at every step of the import) is refused
    before it is read, like a file that large would be."""
    book = _bomb(10 * uploads.MAX_UPLOAD_BYTES)
    assert len(book) < uploads.MAX_UPLOAD_BYTES // 20
    before = _counts()
    response = _upload(_client(org["manager"]), "bomb.xlsx", book)
    assert response.status_code == 400, response.status_code
    assert "bomb.xlsx" in response.content.decode()
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
    b'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
    b'application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
    b'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
    b'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    b'spreadsheetml.worksheet+xml"/></Types>'
)
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    b'.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/'
    b'workbook.xml"/></Relationships>'
)
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    b'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships"><sheets><sheet name="Deals" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
    b'.org/spreadsheetml/2006/main"><sheetData>'
)
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    b'.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/'
    b'sheet1.xml"/></Relationships>'
)
BOOK_PARTS = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": ROOT_RELS,
    "xl/workbook.xml": WORKBOOK,
    "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
}
