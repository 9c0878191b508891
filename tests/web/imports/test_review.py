"""The Import page's steps 2 and 3: the preview of each file, the stage, column and owner mapping
with the dry run it reruns, the mapping file that keeps the choices; owners outside the manager's
branches, a refused file's every problem listed page by page with nothing written; escaping."""

import re
from typing import Any

from django.urls import reverse

from loudou.interop import uploads
from loudou.interop.models import ImportRun
from loudou.pipeline.models import Opportunity
from tests.web.imports.uploads import (
    HISTORY,
    OPPORTUNITIES,
    check,
    counts,
    csv_file,
    stage_form,
    stage_targets,
    token_of,
    upload,
)

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
    assert uploads.upload_get(actor=org["manager"], token=token).options["currency"] == "USD"


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
