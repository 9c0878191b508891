"""The Import page's start: who may use it (anonymous users sent to sign in, sellers refused
everywhere, another user's upload not found, CSRF on every post) and step 1, the upload: the
formats, options and template offered, and files that are refused with nothing kept. The later
steps: test_review.py, test_runs.py; the Chinese page: test_chinese.py."""

import io
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from loudou.interop.models import ImportRun
from tests.web.imports.uploads import counts, token_of, upload, uploads

# --- who may import ---------------------------------------------------------------------------


def all_urls(token: str, run_pk: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("web:import")),
        ("post", reverse("web:import")),
        ("get", reverse("web:import-template")),
        ("get", reverse("web:import-review", args=[token])),
        ("post", reverse("web:import-check", args=[token])),
        ("get", reverse("web:import-problems", args=[token])),
        ("get", reverse("web:import-mapping", args=[token])),
        ("post", reverse("web:import-confirm", args=[token])),
        ("post", reverse("web:import-discard", args=[token])),
        ("get", reverse("web:import-run", args=[run_pk])),
        ("get", reverse("web:import-run-progress", args=[run_pk])),
    ]


def test_anonymous_is_sent_to_sign_in_and_sellers_get_403_everywhere(
    client_for: Any, settings: Any
) -> None:
    manager = client_for("manager")
    token = token_of(upload(manager))
    run_response = manager.post(reverse("web:import-confirm", args=[token]))
    run_pk = int(run_response["Location"].rstrip("/").rsplit("/", 1)[1])
    before = counts()
    for method, url in all_urls(token, run_pk):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
        for name in ("seller", "teammate", "executive"):
            response = getattr(client_for(name), method)(url)
            assert response.status_code == 403, (name, url)
    assert counts() == before


def test_the_nav_link_shows_for_managers_and_admins_only(client_for: Any) -> None:
    link = f'href="{reverse("web:import")}"'
    assert link in client_for("manager").get(reverse("web:dashboard")).content.decode()
    assert link in client_for("admin").get(reverse("web:dashboard")).content.decode()
    assert link not in client_for("seller").get(reverse("web:dashboard")).content.decode()


def test_another_users_upload_is_not_found_even_for_an_administrator(
    client_for: Any, settings: Any
) -> None:
    token = token_of(upload(client_for("manager")))
    for name in ("north_manager", "admin"):
        other = client_for(name)
        assert other.get(reverse("web:import-review", args=[token])).status_code == 404
        assert other.get(reverse("web:import-mapping", args=[token])).status_code == 404
        assert other.post(reverse("web:import-confirm", args=[token])).status_code == 404
        assert other.post(reverse("web:import-discard", args=[token])).status_code == 404
    assert uploads(settings) == [token]
    assert ImportRun.objects.count() == 0
    bad = client_for("manager").get("/import/..%2F..%2Fetc/")
    assert bad.status_code == 404


def test_every_post_needs_the_csrf_token(client_for: Any, org: Any, settings: Any) -> None:
    token = token_of(upload(client_for("manager")))
    strict = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    strict.force_login(org["manager"])
    before = counts()
    for method, url in all_urls(token, 1):
        if method == "post":
            assert strict.post(url, {"format": "salesforce"}).status_code == 403, url
    assert counts() == before
    assert uploads(settings) == [token]


# --- step 1: upload -----------------------------------------------------------------------------


def test_the_start_page_lists_formats_options_and_the_template(client_for: Any) -> None:
    page = client_for("manager").get(reverse("web:import")).content.decode()
    for fmt in ("native", "salesforce", "hubspot", "pipedrive", "odoo"):
        assert f'name="format" value="{fmt}"' in page
    assert "OpportunityHistory export (optional)" in page
    assert 'name="encoding"' in page and '<option value="gbk"' in page
    # The default owner: only the people whose deals a Beijing manager may import.
    owners = re.search(r'<select name="default_owner">(.*?)</select>', page, re.S).group(1)
    assert "seller" in owners and "teammate" in owners and "manager" in owners
    assert "sh_seller" not in owners and "tj_seller" not in owners
    assert reverse("web:import-template") in page


@pytest.mark.parametrize(
    ("language", "sheet", "header"),
    [("en", "opportunities", "name"), ("zh-hans", "商机", "商机名称")],
)
def test_the_template_downloads_in_the_users_language(
    client_for: Any, language: str, sheet: str, header: str
) -> None:
    from openpyxl import load_workbook

    response = client_for("manager", language).get(reverse("web:import-template"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert sheet in book.sheetnames
    assert book[sheet]["B1"].value == header


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("report.csv", b"%PDF-1.7\n\x00\x01binary", "is not a CSV or XLSX file"),
        ("deals.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old Excel format"),
        ("deals.xls", b"<html><table><tr><td>x</td></tr></table></html>", "web page (HTML)"),
        ("deals.xlsx", b"PK\x03\x04not really a zip", "is not an Excel workbook"),
        ("deals.pdf", b"Opportunity Name,Account Name\nA,B\n", "is not a CSV or XLSX file"),
        ("empty.csv", b"   \n", "is empty"),
    ],
)
def test_files_that_are_no_csv_or_xlsx_are_refused_and_nothing_is_kept(
    client_for: Any, settings: Any, name: str, data: bytes, message: str
) -> None:
    file = io.BytesIO(data)
    file.name = name
    before = counts()
    response = upload(client_for("manager"), file)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert uploads(settings) == [] and counts() == before


def test_a_file_over_the_limit_is_refused(client_for: Any, settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("loudou.interop.uploads.MAX_UPLOAD_BYTES", 100)
    response = upload(client_for("manager"))
    assert response.status_code == 400
    assert "opps.csv is larger than 0 MB" in response.content.decode()
    assert uploads(settings) == []


def test_a_default_owner_outside_the_managers_branches_is_refused(
    client_for: Any, org: Any, settings: Any
) -> None:
    response = upload(client_for("manager"), default_owner=org["sh_seller"].pk)
    assert response.status_code == 400
    assert uploads(settings) == []
