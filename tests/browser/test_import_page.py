"""The Import page in a real browser: a manager uploads a GBK Salesforce export (as Excel on
Chinese Windows writes it), fixes a stage the automatic mapping got wrong (htmx re-runs the dry
run without reloading the page), reads the dry run, confirms, watches the progress bar until
the report, and finds the deals on the board. The import runs in its background thread."""

import time
from pathlib import Path
from typing import Any

import pytest

from loudou.interop import runs
from loudou.interop.models import ImportRun
from loudou.pipeline.models import Opportunity
from loudou.playbooks.models import Stage

OPPORTUNITIES = """\
Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),Amount,Close Date,Created Date,Won,Closed
006A1,华能集团财务共享,华能集团,seller,Prospecting,10,"1,200,000.00",2026/12/31,2026-09-01,0,0
006A2,国网ERP二期,国家电网,seller,Negotiation/Review,90,"3,500,000",2026/11/30,2026-06-15,0,0
006A3,中粮集团预算,中粮集团,teammate,Closed Won,100,800000,2026/10/15,2026-05-10,1,1
006A4,招商局HR,招商局集团,teammate,Id. Decision Makers,60,"450,000",2026/9/30,2026-04-01,0,0
"""


@pytest.fixture
def slow_progress(monkeypatch: Any) -> None:
    """Four deals import in a blink: each phase waits a little, so the bar can be seen."""
    start = runs.RunProgress.start

    def slow_start(self: Any, phase: str, total: int) -> None:
        start(self, phase, total)
        time.sleep(1.2)

    monkeypatch.setattr(runs.RunProgress, "start", slow_start)


def test_a_manager_imports_a_gbk_salesforce_export_and_finds_the_deals_on_the_board(
    browse: Any, org: Any, playbook: Any, settings: Any, tmp_path: Path, slow_progress: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    export = tmp_path / "opportunities.csv"
    export.write_bytes(OPPORTUNITIES.encode("gbk"))

    page = browse("manager")
    page.goto("/")
    page.locator("nav.mainnav a[href='/import/']").click()
    page.wait_for_url("**/import/")
    page.locator("input[name=format][value=salesforce]").check()
    page.locator("input[name=file]").set_input_files(str(export))
    page.locator("#upload-form button.primary").click()
    page.wait_for_url("**/import/*/")

    # The preview read the GBK file right, and the dry run is ready.
    review = page.locator("#import-review")
    assert "GB18030" in review.locator("h3").first.inner_text()
    assert review.locator("table.preview td", has_text="华能集团财务共享").count() == 1
    assert "Ready to import" in page.locator("#dry-run").inner_text()
    recognition = Stage.objects.get(playbook=playbook, key="recognition")
    assert recognition.name_en in page.locator("table.by-stage").inner_text()

    # "Id. Decision Makers" went to recognition by its probability: the manager fixes it.
    row = page.locator("#stage-mapping tr[data-stage='Id. Decision Makers']")
    assert row.locator("select").input_value() == "recognition"
    with page.expect_response("**/check/"):
        row.locator("select").select_option("project")
    page.locator("#stage-mapping tr[data-stage='Id. Decision Makers'] td.muted").filter(
        has_text="your choice"
    ).wait_for()
    assert page.url.endswith("/") and "/check/" not in page.url  # swapped, not reloaded
    row = page.locator("#stage-mapping tr[data-stage='Id. Decision Makers']")
    assert row.locator("select").input_value() == "project"
    assert page.locator("#dry-run [data-count='new']").inner_text() == "4"
    assert Opportunity.objects.count() == 0  # a dry run saves nothing

    page.locator("#dry-run button.primary").click()
    page.wait_for_url("**/import/runs/*/")
    # The progress bar, polled every second, then the report.
    page.locator("#run-body progress").wait_for()
    page.locator("#run-body[data-status='done']").wait_for(timeout=30_000)
    run = ImportRun.objects.get()
    assert (run.status, run.report["new"]) == ("done", 4)
    assert page.locator("#run-body [data-count='new']").inner_text() == "4"
    assert page.locator("#run-body [data-count='accounts']").inner_text() == "4"

    page.locator("#run-body a.button.primary").click()
    page.wait_for_url("**/board/**")
    project = page.locator("section[data-drop-stage='project']")
    project.locator(".deal", has_text="招商局HR").wait_for()
    page.locator(
        "section[data-drop-stage='discover'] .deal", has_text="华能集团财务共享"
    ).wait_for()
    opp = Opportunity.objects.get(name="招商局HR")
    assert (opp.stage.key, opp.owner.username) == ("project", "teammate")
