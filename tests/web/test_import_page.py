"""The Import page: upload, preview and mapping, dry run, confirm with progress, the record of
past imports; who may use it; nothing saved by a refused file; the same file twice creates
nothing twice; escaping; CSRF; the Chinese page."""

import datetime as dt
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import trans_real

from loudou.customers.models import Account
from loudou.interop import runs
from loudou.interop.models import ExternalId, ImportRun
from loudou.pipeline.models import Opportunity, OpportunityHistory
from loudou.playbooks.models import StageKind

OPPORTUNITIES = """\
Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),Amount,Close Date,Created Date,Won,Closed
006A1,华能集团财务共享,华能集团,seller,Prospecting,10,"1,200,000.00",2026/12/31,2026-09-01,0,0
006A2,国网ERP二期,国家电网,seller,Negotiation/Review,90,"3,500,000",2026/11/30,2026-06-15,0,0
006A3,中粮集团预算,中粮集团,teammate,Closed Won,100,800000,2026/10/15,2026-05-10,1,1
006A4,招商局HR,招商局集团,teammate,Id. Decision Makers,60,"450,000",2026/9/30,2026-04-01,0,0
"""
HISTORY = """\
OpportunityId,CreatedDate,StageName,Amount,CloseDate
006A2,2026-06-15 09:00:00,Prospecting,3000000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-10-20 16:00:00,Negotiation/Review,3500000,2026-11-30
"""
NAMES = ["华能集团财务共享", "国网ERP二期", "中粮集团预算", "招商局HR"]


@pytest.fixture(autouse=True)
def _uploads_and_runner(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """Uploads under a temporary folder; the confirmed import runs at once in the request (the
    test's transaction cannot be shared with a thread's connection: see the thread test)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())


def csv_file(text: str = OPPORTUNITIES, name: str = "opps.csv", encoding: str = "gbk") -> Any:
    data = io.BytesIO(text.encode(encoding))
    data.name = name
    return data


def upload(client: Client, *files: Any, **fields: Any) -> Any:
    data: dict[str, Any] = {"format": "salesforce", "playbook": "project-funnel", **fields}
    data["file"] = files[0] if files else csv_file()
    if len(files) > 1:
        data["history"] = files[1]
    return client.post(reverse("web:import"), data)


def token_of(response: Any) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    match = re.match(r"^/import/([A-Za-z0-9_-]+)/$", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def uploads(settings: Any) -> list[str]:
    root = Path(settings.MEDIA_ROOT) / "imports"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def counts() -> tuple[int, ...]:
    return (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        ExternalId.objects.count(),
        ImportRun.objects.count(),
    )


def stage_form(page: str) -> dict[str, str]:
    """The mapping form's fields as the page draws them (selects with their selected option)."""
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[name] = value
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        first = re.search(r'<option value="([^"]*)"', body)
        fields[name] = (chosen or first).group(1) if (chosen or first) else ""
    return {k: v.replace("&quot;", '"').replace("&amp;", "&") for k, v in fields.items()}


def stage_targets(page: str) -> dict[str, str]:
    """The stage mapping the page shows: the file's stage → the stage chosen."""
    form = stage_form(page)
    count = int(form.get("stage-count", 0))
    return {form[f"stage-{i}-name"]: form[f"stage-{i}-target"] for i in range(count)}


def check(client: Client, token: str, changes: dict[str, str], page: str) -> Any:
    data = {**stage_form(page), **changes}
    return client.post(reverse("web:import-check", args=[token]), data, HTTP_HX_REQUEST="true")


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
    monkeypatch.setattr(runs, "MAX_UPLOAD_BYTES", 100)
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


# --- steps 2 and 3: preview, mapping, dry run -----------------------------------------------------


def test_a_gbk_salesforce_export_is_previewed_mapped_and_dry_run(
    client_for: Any, settings: Any
) -> None:
    manager = client_for("manager")
    before = counts()
    token = token_of(upload(manager, csv_file(), csv_file(HISTORY, "history.csv", "utf-8")))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    # The preview: each sheet with its encoding and first rows, Chinese read right.
    assert "GB18030" in page and "UTF-8" in page
    assert "<td>华能集团财务共享</td>" in page and "<td>2026-06-15 09:00:00</td>" in page
    # The stage mapping, chosen by the importer, with why.
    form = stage_form(page)
    assert stage_targets(page) == {
        "Prospecting": "discover",
        "Negotiation/Review": "negotiation",
        "Closed Won": "won",
        "Id. Decision Makers": "recognition",
    }
    assert "probability 60 %" in page and "by name" in page
    # The column mapping, pre-filled by the automatic match.
    assert form["column-amount"] == "Amount" and form["column-name"] == "Opportunity Name"
    # The dry run's counts; nothing saved.
    assert 'data-count="new">4<' in page and 'data-count="accounts">4<' in page
    assert 'data-count="history_rows">' in page
    assert "Ready to import" in page and '<button class="primary" >Import now</button>' in page
    assert counts() == before


def test_changing_a_stage_reruns_the_dry_run_and_the_yaml_keeps_it(
    client_for: Any, org: Any
) -> None:
    manager = client_for("manager")
    token = token_of(upload(manager))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    form = stage_form(page)
    index = next(i for i in range(4) if form[f"stage-{i}-name"] == "Id. Decision Makers")
    response = check(manager, token, {f"stage-{index}-target": "project"}, page)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="import-review">')
    assert "<html" not in fragment
    assert stage_targets(fragment)["Id. Decision Makers"] == "project"
    assert stage_targets(fragment)["Prospecting"] == "discover"
    assert "your choice" in fragment
    yaml = manager.get(reverse("web:import-mapping", args=[token]))
    assert yaml.status_code == 200 and "attachment" in yaml["Content-Disposition"]
    text = yaml.content.decode()
    assert '"Id. Decision Makers": project  # file' in text
    assert '"Prospecting": discover  # probability 10 %' in text
    # Another change keeps the first one, which the page now shows as the user's.
    again = check(manager, token, {"currency": "USD"}, fragment).content.decode()
    assert stage_targets(again)["Id. Decision Makers"] == "project"
    assert runs.upload_get(actor=org["manager"], token=token).options["currency"] == "USD"


def test_a_renamed_column_is_mapped_by_hand(client_for: Any) -> None:
    manager = client_for("manager")
    renamed = OPPORTUNITIES.replace("Amount,", "Deal Value,", 1)
    token = token_of(upload(manager, csv_file(renamed)))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert stage_form(page)["column-amount"] == ""  # not found: the user chooses
    fragment = check(manager, token, {"column-amount": "Deal Value"}, page).content.decode()
    assert stage_form(fragment)["column-amount"] == "Deal Value"
    text = manager.get(reverse("web:import-mapping", args=[token])).content.decode()
    assert 'amount: "Deal Value"' in text
    manager.post(reverse("web:import-confirm", args=[token]))
    assert str(Opportunity.objects.get(name="国网ERP二期").amount) == "3500000.00"


def test_unknown_owners_refuse_the_dry_run_until_mapped(client_for: Any, org: Any) -> None:
    manager = client_for("manager")
    text = OPPORTUNITIES.replace("teammate", "Alice Smith")
    token = token_of(upload(manager, csv_file(text)))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert "2 problems in the file; nothing was imported." in page
    assert "no loudou user by this name" in page
    assert "Nobody: choose someone" in page
    assert re.search(r'<button class="primary" disabled>', page)
    form = stage_form(page)
    index = next(i for i in range(3) if form.get(f"owner-{i}-name") == "Alice Smith")
    fragment = check(manager, token, {f"owner-{index}-user": "teammate"}, page).content.decode()
    assert "Ready to import" in fragment
    manager.post(reverse("web:import-confirm", args=[token]))
    assert Opportunity.objects.get(name="招商局HR").owner == org["teammate"]


def test_a_beijing_manager_may_not_import_shanghai_deals(client_for: Any, org: Any) -> None:
    manager = client_for("manager")
    token = token_of(upload(manager, csv_file(OPPORTUNITIES.replace("teammate", "sh_seller"))))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert "Only an administrator, or a manager of every owner&#x27;s branch, may import." in page
    assert "outside your branches" in page
    assert re.search(r'<button class="primary" disabled>', page)
    before = counts()
    response = manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("web:import-run", args=[run.pk])
    assert run.status == "refused" and "every owner" in run.error
    assert counts()[:4] == before[:4]
    # The Shanghai manager may import the same file... once Beijing's owners are theirs too:
    # an administrator may import it all.
    admin = client_for("admin")
    token = token_of(upload(admin, csv_file(OPPORTUNITIES.replace("teammate", "sh_seller"))))
    admin.post(reverse("web:import-confirm", args=[token]))
    assert ImportRun.objects.get(actor=org["admin"]).status == "done"
    assert Opportunity.objects.filter(owner=org["sh_seller"]).count() == 2


def test_a_refused_file_lists_every_problem_page_by_page_and_writes_nothing(
    client_for: Any,
) -> None:
    manager = client_for("manager")
    rows = "".join(
        f"X{i},Deal {i},Acme,seller,Prospecting,10,100,not a date,2026-01-01,0,0\n"
        for i in range(60)
    )
    header = OPPORTUNITIES.splitlines()[0] + "\n"
    token = token_of(upload(manager, csv_file(header + rows)))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert "60 problems" in page and "Page 1 of 2" in page
    table = page.split('class="data problems"')[1]
    assert table.count("<td>not a date</td>") == 50
    second = manager.get(
        reverse("web:import-problems", args=[token]) + "?page=2", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert second.count("<td>not a date</td>") == 10 and "<html" not in second
    assert "<td>Close Date</td>" in second or "Close Date" in second
    before = counts()
    manager.post(reverse("web:import-confirm", args=[token]))  # the disabled button, forced
    run = ImportRun.objects.get()
    assert run.status == "refused" and run.report["problems_total"] == 60
    assert counts()[:4] == before[:4]
    run_page = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert "60 problems" in run_page and "Nothing was imported." in run_page
    assert "Back to the mapping" in run_page  # the upload is kept to fix the mapping


def test_names_are_escaped_in_the_preview_and_the_problems(client_for: Any) -> None:
    manager = client_for("manager")
    evil = '<script>alert("x")</script>'
    text = OPPORTUNITIES.replace("华能集团财务共享", evil.replace('"', '""').join('""'))
    text = text.replace("Negotiation/Review", evil.replace('"', '""').join('""'))
    token = token_of(upload(manager, csv_file(text, encoding="utf-8")))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert evil not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


# --- step 4: confirm, progress, report ------------------------------------------------------------


def test_confirm_imports_reports_and_the_same_file_twice_creates_nothing_twice(
    client_for: Any, org: Any, settings: Any
) -> None:
    manager = client_for("manager")
    token = token_of(upload(manager, csv_file(), csv_file(HISTORY, "history.csv", "utf-8")))
    response = manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("web:import-run", args=[run.pk])
    assert (run.status, run.actor, run.format, run.files) == (
        "done",
        org["manager"],
        "salesforce",
        ["opps.csv", "history.csv"],
    )
    assert (run.report["new"], run.report["created"]["accounts"]) == (4, 4)
    assert sorted(Opportunity.objects.values_list("name", flat=True)) == sorted(NAMES)
    assert uploads(settings) == []  # the upload is deleted once imported
    page = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert 'data-status="done"' in page and 'data-count="new">4<' in page
    assert "hx-trigger" not in page  # finished: nothing polls
    assert "/board/?playbook=project-funnel&amp;source=salesforce" in page
    # A second click on the same upload imports nothing again.
    again = manager.post(reverse("web:import-confirm", args=[token]))
    assert again.status_code == 404 and ImportRun.objects.count() == 1

    token = token_of(upload(manager, csv_file(), csv_file(HISTORY, "history.csv", "utf-8")))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert 'data-count="new">0<' in page and 'data-count="already_imported">4<' in page
    before = counts()
    manager.post(reverse("web:import-confirm", args=[token]))
    second = ImportRun.objects.order_by("-id").first()
    assert (second.status, second.report["new"], second.report["already_imported"]) == (
        "done",
        0,
        4,
    )
    assert counts()[:4] == before[:4]


def test_a_second_confirm_of_a_running_upload_finds_its_run(
    client_for: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)  # queued, never started
    manager = client_for("manager")
    token = token_of(upload(manager))
    first = manager.post(reverse("web:import-confirm", args=[token]))
    second = manager.post(reverse("web:import-confirm", args=[token]))
    assert first["Location"] == second["Location"]
    assert ImportRun.objects.get().status == "queued"


def test_the_progress_is_polled_until_the_run_ends(client_for: Any, monkeypatch: Any) -> None:
    jobs: list[Any] = []
    monkeypatch.setattr(runs, "RUNNER", jobs.append)
    manager = client_for("manager")
    token = token_of(upload(manager))
    manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    url = reverse("web:import-run-progress", args=[run.pk])
    queued = manager.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in queued and "Waiting to start" in queued
    # The importer's progress as the page reads it while it runs.
    ImportRun.objects.filter(pk=run.pk).update(status="running")
    progress = runs.RunProgress(Path(runs.uploads_root() / token / "progress.json"))
    progress.start("Writing", 40)
    progress.advance(10)
    progress._write(force=True)
    running = manager.get(url).content.decode()
    assert 'value="25"' in running and "Writing: 10 / 40 (25%)" in running
    ImportRun.objects.filter(pk=run.pk).update(status="queued")
    jobs[0]()
    done = manager.get(url).content.decode()
    assert 'data-status="done"' in done and "hx-trigger" not in done


def test_an_unexpected_error_fails_the_run_with_a_message_and_writes_nothing(
    client_for: Any, monkeypatch: Any
) -> None:
    from loudou.interop import writer

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    # After the deals are inserted, inside the importer's transaction.
    monkeypatch.setattr(writer, "sync_sequences", broken)
    manager = client_for("manager")
    token = token_of(upload(manager))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert "The file could not be checked: an unexpected error." in page
    before = counts()
    manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    assert run.status == "failed"
    assert counts()[:4] == before[:4]
    shown = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert "stopped on an unexpected error, and nothing was imported" in shown
    assert "disk on fire" not in shown and "Traceback" not in shown


def test_an_import_whose_process_died_is_marked_failed(client_for: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)
    manager = client_for("manager")
    manager.post(reverse("web:import-confirm", args=[token_of(upload(manager))]))
    run = ImportRun.objects.get()
    assert runs.import_runs_interrupt_stale() == 0
    later = timezone.now() + runs.STALE_AFTER + dt.timedelta(minutes=1)
    assert runs.import_runs_interrupt_stale(later) == 1
    run.refresh_from_db()
    assert run.status == "failed" and "interrupted" in run.error


def test_uploads_older_than_a_day_are_removed(client_for: Any, settings: Any) -> None:
    token = token_of(upload(client_for("manager")))
    assert runs.uploads_purge() == 0 and uploads(settings) == [token]
    assert runs.uploads_purge(timezone.now() + dt.timedelta(days=1, minutes=1)) == 1
    assert uploads(settings) == []


def test_past_imports_own_for_managers_all_for_admins(client_for: Any, org: Any) -> None:
    for name in ("manager", "north_manager"):
        client = client_for(name)
        client.post(reverse("web:import-confirm", args=[token_of(upload(client))]))
    mine, theirs = (ImportRun.objects.get(actor=org[n]) for n in ("manager", "north_manager"))
    page = client_for("manager").get(reverse("web:import")).content.decode()
    assert reverse("web:import-run", args=[mine.pk]) in page
    assert reverse("web:import-run", args=[theirs.pk]) not in page
    assert client_for("manager").get(reverse("web:import-run", args=[theirs.pk])).status_code == 404
    admin = client_for("admin").get(reverse("web:import")).content.decode()
    assert reverse("web:import-run", args=[mine.pk]) in admin
    assert reverse("web:import-run", args=[theirs.pk]) in admin
    assert client_for("admin").get(reverse("web:import-run", args=[theirs.pk])).status_code == 200


def test_the_start_page_query_count_does_not_grow_with_past_imports(
    client_for: Any, org: Any, playbook: Any, django_assert_max_num_queries: Any
) -> None:
    client = client_for("admin")

    def add(n: int) -> None:
        for _i in range(n):
            ImportRun.objects.create(
                actor=org["manager"],
                created_at=timezone.now(),
                format="odoo",
                playbook=playbook,
                status="done",
                report={"new": 3, "updated": 1},
            )

    add(2)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("web:import")).status_code == 200
    add(15)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("web:import")).status_code == 200


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


# --- the background thread ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_confirmed_import_runs_in_a_thread_with_its_own_connection(
    client_for: Any, monkeypatch: Any
) -> None:
    import threading

    monkeypatch.setattr(runs, "RUNNER", runs.run_in_thread)
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    manager = client_for("manager")
    token = token_of(upload(manager))
    manager.post(reverse("web:import-confirm", args=[token]))
    assert [t.name for t in started] == ["loudou-import"]
    started[0].join(timeout=60)
    run = ImportRun.objects.get()
    assert (run.status, run.report["new"], run.total) == ("done", 4, 4)
    assert sorted(Opportunity.objects.values_list("name", flat=True)) == sorted(NAMES)
