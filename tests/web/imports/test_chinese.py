"""The Import page in Chinese: with every marked string translated, no English UI text is left
on the start page, the review, a refused file's problems or the report."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse
from django.utils.translation import trans_real

from loudou.interop.models import ImportRun
from loudou.playbooks.models import StageKind
from tests.web.imports.uploads import csv_file, token_of, upload

# --- the Chinese page -------------------------------------------------------------------------


class _Text(HTMLParser):
    """The text a person reads on a page: text nodes and the attributes shown as text."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


PLACEHOLDER = re.compile(r"(%\([a-z_]+\)[sd]|%%|%[sd]|&\w+;)|[A-Za-z]+")


@pytest.fixture
def every_text_translated(monkeypatch: Any) -> None:
    """Chinese as if the lead had translated every marked string: a marked text the catalogue
    lacks comes out as 译, so English left on the page was never marked for translation."""

    def pseudo(message: str) -> str:
        return PLACEHOLDER.sub(lambda m: m.group(1) or "译", message)

    original_gettext = trans_real.DjangoTranslation.gettext
    original_ngettext = trans_real.DjangoTranslation.ngettext

    def gettext(self: Any, message: str) -> str:
        result = original_gettext(self, message)
        if not self.language().startswith("zh") or result != message:
            return result
        return pseudo(message.split("\x04", 1)[-1])

    def ngettext(self: Any, singular: str, plural: str, number: int) -> str:
        result = original_ngettext(self, singular, plural, number)
        if not self.language().startswith("zh") or result not in (singular, plural):
            return result
        return pseudo(result)

    monkeypatch.setattr(trans_real.DjangoTranslation, "gettext", gettext)
    monkeypatch.setattr(trans_real.DjangoTranslation, "ngettext", ngettext)


CHINESE_FILE = """\
商机 ID,商机名称,客户名称,商机所有人,阶段,可能性 (%),金额,结束日期,创建日期
1001,集团财务共享,华能集团,{owner},初步接触,10,1200000,2026/12/31,2026-09-01
1002,预算管理,中粮集团,{owner},方案报价,70,800000,2026/10/15,2026-05-10
"""
# What may stay in Latin letters: names of things (formats, files, users, codes), not UI text.
ALLOWED = {
    "loudou", "Salesforce", "HubSpot", "Pipedrive", "Odoo", "csv", "opps", "xlsx", "CSV", "XLSX",
    "UTF", "GBK", "GB", "BOM", "CNY", "ID", "manager", "seller", "teammate", "north", "admin",
    "tj", "sh", "executive", "English", "Deal", "Title", "Stage", "Status", "crm", "lead",
    "Opportunity", "Customer", "Expected", "Revenue", "OpportunityHistory", "YAML",
    "Switch", "to",  # the language switch's title offers English in English
    "owners",  # the mapping file's key, which the importer's Chinese message names
    # Names the Chinese text keeps as the products write them: Salesforce's Data Loader,
    # HubSpot's "Date entered <stage>" columns and "Deals", the `loudou import` command, units.
    "CRM", "Data", "Loader", "Date", "entered", "stage", "Deals", "import", "Excel", "MB", "Windows",
}  # fmt: skip


def english_words(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    return {w for w in re.findall(r"[A-Za-z]+", " ".join(parser.parts)) if w not in ALLOWED}


def test_the_chinese_pages_have_no_english_ui_text(
    client_for: Any, org: Any, playbook: Any, every_text_translated: Any
) -> None:
    manager = client_for("manager", "zh-hans")
    start = manager.get(reverse("web:import")).content.decode()
    assert english_words(start) == set()
    file = csv_file(CHINESE_FILE.format(owner="seller"), "opps.csv", "gbk")
    token = token_of(upload(manager, file))
    review = manager.get(reverse("web:import-review", args=[token])).content.decode()
    open_stages = [s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN]
    for stage in open_stages:  # the stage choices in the playbook's Chinese names
        assert f">{stage.name_zh}</option>" in review
    assert english_words(review) == set()
    # Refused: the problem table too.
    refused = token_of(upload(manager, csv_file(CHINESE_FILE.format(owner="某人"), "opps.csv")))
    page = manager.get(reverse("web:import-review", args=[refused])).content.decode()
    assert "某人" in page and english_words(page) == set()
    manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get(status="done")
    report = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert english_words(report) == set()
