"""Fuzzed files: whatever bytes or cells a file holds, an import either writes all of it or
nothing, and fails only with a user's error (LoudouError), never with a traceback."""

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loudou.analytics.caches import caches_verify
from loudou.core.cli import SystemActor
from loudou.core.errors import LoudouError
from loudou.interop.formats import READERS
from loudou.interop.run import import_sheets
from loudou.interop.tables import read_bytes
from tests.interop.crm_files import counts

HEADERS = {
    "native": "id,name,account,owner,stage,status,amount,currency,close_date,created_at",
    "salesforce": "Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Amount,"
    "Close Date,Created Date,Won,Closed",
    "hubspot": "Record ID,Deal Name,Associated Company,Deal owner,Deal Stage,Amount,Close Date,"
    'Create Date,"Date entered ""Closed Won (Sales Pipeline)"""',
    "pipedrive": "Deal - ID,Deal - Title,Deal - Organization,Deal - Owner,Deal - Stage,"
    "Deal - Status,Deal - Value,Deal - Expected close date,Deal - Deal created",
    "odoo": "External ID,Opportunity,Customer,Salesperson,Stage,Expected Revenue,Expected Closing,"
    "Created on,Active",
}
# Cells that look like what CRMs write, and cells that do not.
CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "seller",
            "teammate",
            "nobody",
            "Prospecting",
            "Closed Won",
            "Closed Lost",
            "intent",
            "won",
            "lost",
            "open",
            "Won",
            "Lost",
            "1",
            "0",
            "true",
            "¥1,200,000",
            "32.000,00",
            "120万",
            "-5",
            "1e30",
            "NaN",
            "2026-03-01",
            "2026/3/1",
            "31/02/2026",
            "45000",
            "2026-03-01 10:00",
            "华能集团",
            '=HYPERLINK("x")',
            'a"b',
            "\x00",
            "Ｘ",
        ]
    ),
    st.text(max_size=12),
)


def csv_line(cells: list[str]) -> str:
    return ",".join('"' + c.replace('"', '""') + '"' for c in cells)


@st.composite
def files(draw: Any) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(READERS)))
    width = HEADERS[fmt].count(",") + 1
    rows = draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=6))
    text = "\n".join([HEADERS[fmt], *(csv_line(r) for r in rows)])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    return fmt, text.encode(encoding, errors="replace")


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(file=files())
def test_a_fuzzed_file_imports_all_or_nothing(org: dict[str, Any], file: tuple[str, bytes]) -> None:
    fmt, data = file
    before = counts()
    try:
        sheets = read_bytes(data, name="fuzz.csv")
        report = import_sheets(fmt, sheets, actor=SystemActor(), default_owner=None)
    except LoudouError:
        assert counts() == before  # refused: nothing written
        event(f"refused {fmt}")
        return
    after = counts()
    assert after["opportunities"] - before["opportunities"] == report["new"]
    assert caches_verify() == []
    event(f"imported {fmt}")


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.binary(max_size=400))
def test_random_bytes_are_refused_cleanly(org: dict[str, Any], data: bytes) -> None:
    before = counts()
    try:
        sheets = read_bytes(data, name="noise.csv")
        import_sheets("native", sheets, actor=SystemActor())
    except LoudouError:
        pass
    assert counts()["opportunities"] == before["opportunities"]
