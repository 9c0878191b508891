"""The win model page: who may see it and the forms, the three states in words, the figures equal
the stored model's, the chart's data equals the stored reliability rows, the suggested stage
probabilities, Chinese texts and a query count that does not grow with the deals. Its forms:
test_forms.py; the learned probability on the deal page: test_panel.py.

Every test reads the company of conftest.py (420 closed deals, a trained model), built once for
the module."""

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from loudou.learning import training
from loudou.learning.models import WinModel
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, Stage
from tests.learning.test_learning import START, _deal
from tests.web.learning.win_model import ACCEPT, MODEL, TRAIN, client, not_offered, text


def chart_data(body: str) -> Any:
    found = re.search(r'<script id="reliability-data" type="application/json">(.*?)</script>', body)
    assert found, "no chart data on the page"
    return json.loads(found.group(1))


def local_day(moment: str, username: str) -> str:
    """The day of a stored moment in the user's time zone (what the page shows)."""
    from loudou.org.models import User

    zone = ZoneInfo(User.objects.get(username=username).time_zone)
    return f"{dt.datetime.fromisoformat(moment).astimezone(zone):%Y-%m-%d}"


def bin_label(stored: str) -> str:
    """A stored bin "0.7–0.8" as the page shows it: "70–80%"."""
    low, high = stored.split("–")
    return f"{round(100 * float(low))}–{round(100 * float(high))}%"


def row_of(body: str, model_key: str) -> str:
    found = re.search(rf'<tr data-model="{model_key}"[^>]*>(.*?)</tr>', body, re.S)
    assert found, model_key
    return found.group(1)


# --- who may see the page -------------------------------------------------------------------


@pytest.mark.parametrize("url", [MODEL, "/opportunities/1/win-probability/"])
def test_anonymous_is_sent_to_sign_in(db: Any, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", [TRAIN, ACCEPT])
def test_anonymous_posts_are_sent_to_sign_in(company: dict[str, Any], db: Any, url: str) -> None:
    versions = Playbook.objects.count()
    models = WinModel.objects.count()
    response = Client().post(url, {"playbook": "project-funnel", "accept": ["discover"]})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert (Playbook.objects.count(), WinModel.objects.count()) == (versions, models)


def test_seller_sees_the_figures_without_the_forms(company: dict[str, Any], db: Any) -> None:
    response = client(company, "seller").get(MODEL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Learned model offered" in body
    assert 'action="/analytics/model/accept/"' not in body
    assert 'action="/analytics/model/train/"' not in body
    assert 'name="accept"' not in body
    # The tab is there and current.
    assert 'href="/analytics/model/?playbook=project-funnel" aria-selected="true"' in body
    # Aggregates only: no branch or person is named (below the top bar, which names the user).
    page = text(body.split('<main class="page">', 1)[1])
    for name in ("北京分公司", "上海分公司", "seller", "manager"):
        assert name not in page


def test_admin_sees_the_forms(company: dict[str, Any], db: Any) -> None:
    body = client(company, "admin").get(MODEL).content.decode()
    assert 'action="/analytics/model/accept/"' in body
    assert 'action="/analytics/model/train/"' in body
    assert 'hx-indicator="#training"' in body
    assert "Training… this takes a few seconds." in body


def test_the_other_analytics_tabs_link_to_the_model_page(company: dict[str, Any], db: Any) -> None:
    body = client(company, "manager").get("/analytics/").content.decode()
    assert 'href="/analytics/model/?playbook=project-funnel"' in body


# --- the three states -----------------------------------------------------------------------


def test_no_model_says_stage_defaults_and_what_training_needs(
    company: dict[str, Any], db: Any
) -> None:
    WinModel.objects.all().delete()
    won = Opportunity.objects.filter(status=Status.WON).count()
    response = client(company, "seller").get(MODEL)
    assert response.status_code == 200
    page = text(response.content.decode())
    assert "No model trained" in page
    assert (
        "No win model is trained for this playbook: only the stage default probabilities "
        "are used." in page
    )
    assert (
        f"Training needs at least {training.MIN_CLOSED} deals closed before the cutoff, with at "
        f"least {training.MIN_EACH} won and {training.MIN_EACH} lost among them, and at least "
        f"{training.MIN_EVALUATION} deals closed after it" in page
    )
    assert "about 286 closed deals are needed in all" in page  # 200 / 0.7, rounded up
    assert f"This playbook has 420 closed deals now: {won} won, {420 - won} lost." in page
    assert "Brier score" not in page
    assert 'id="reliability-data"' not in response.content.decode()


def test_a_playbook_without_deals_has_no_model(company: dict[str, Any], db: Any) -> None:
    page = text(client(company, "seller").get(MODEL + "?playbook=simple").content.decode())
    assert "This playbook has 0 closed deals now: 0 won, 0 lost." in page
    assert "Simple funnel" in page or company["simple"].name_en in page


def test_an_unknown_playbook_shows_the_default_one_and_says_so(
    company: dict[str, Any], db: Any
) -> None:
    response = client(company, "seller").get(MODEL + "?playbook=nope")
    assert response.status_code == 200
    assert "There is no such playbook: showing the default one." in response.content.decode()


def test_offered_model_page_shows_its_figures(company: dict[str, Any], db: Any) -> None:
    model = company["model"]
    assert model.offered
    body = client(company, "seller").get(MODEL).content.decode()
    page = text(body)
    assert "The learned per-deal model: each open deal gets its own probability." in page
    assert f"Cutoff {model.cutoff:%Y-%m-%d}" in page
    lost = model.training_deals - model.training_won
    assert (
        f"{model.training_deals} deals ({model.training_won} won, {lost} lost), "
        f"{model.training_snapshots} snapshots" in page
    )
    assert f"{model.evaluation_deals} later deals, {model.evaluation_snapshots} snapshots" in page
    assert model.training_deals == 294  # 70 % of 420
    refit = model.parameters["refit"]
    assert f"In use refitted on the 420 deals closed by {local_day(refit['at'], 'seller')} " in page
    # How sure the comparison is: each pair's stored difference, interval and share.
    for pair, item in model.metrics["brier_differences"].items():
        row = re.search(rf'<tr data-pair="{pair}">(.*?)</tr>', body, re.S)
        assert row, pair
        cells = [text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
        low, high = (f"{v:+.4f}".replace("-", "−") for v in item["interval"])
        assert cells[0] == f"{item['difference']:+.4f}".replace("-", "−")
        assert cells[1].startswith(f"{low} … {high}")
        assert ("clearly better" in cells[1]) == (item["interval"][1] < 0)
        assert cells[2] == f"{100 * item['better_share']:.0f}%"
    horizon = model.parameters["horizon_days"]
    assert f"Horizon {horizon:.0f} days" in page
    assert f"Censored deals {model.metrics['counts']['censored_deals']} " in page
    method = model.parameters["calibration"]["method"]
    assert {"none": "none", "sigmoid": "sigmoid (Platt scaling)", "isotonic": "isotonic"}[
        method
    ] in page
    # The reason in words: kept because it helped, or none because none helped.
    assert ("It lowered the Brier score on the later half" in page) == (method != "none")
    # Each compared model's Brier, log loss and AUC as stored, to four places.
    metrics = model.metrics
    for key in ("stage_defaults", "stage_rates", "naive_bayes", "logistic"):
        row = row_of(body, key)
        for metric in ("brier", "log_loss", "auc"):
            assert f"{metrics[key][metric]:.4f}" in row, (key, metric)
    compared = ("stage_defaults", "stage_rates", "naive_bayes", "logistic", "logistic_uncalibrated")
    best = min(metrics[k]["brier"] for k in compared)
    for key in ("stage_defaults", "stage_rates", "naive_bayes", "logistic"):
        cell = f"<strong>{metrics[key]['brier']:.4f}</strong>"
        assert (cell in row_of(body, key)) == (metrics[key]["brier"] == best), key
    assert "in use" in row_of(body, "logistic")
    assert "in use" not in row_of(body, "stage_rates")
    assert "lower is better; 0.25 is a coin toss" in page.lower()
    # The features kept, by their words.
    assert "amount" in model.features
    assert re.search(r"Kept .*\bamount\b", page)
    kept = page.split("Kept ", 1)[1].split("Dropped:", 1)[0]
    if "stage_rate" in model.features:
        assert "learned stage rate" in kept
    if "stage:discover" in model.features:
        assert "stage = Discover potential opportunities" in kept
    if "industry:power" in model.features:
        assert "industry = Electric power" in kept
    assert ":" not in kept  # no input is shown by its key


def test_not_offered_model_says_why_and_what_is_used(company: dict[str, Any], db: Any) -> None:
    model = not_offered(company["model"])
    body = client(company, "seller").get(MODEL).content.decode()
    page = text(body)
    assert "Learned model not offered" in page
    brier = model.parameters["fallback"]["brier"]
    assert (
        "The learned per-deal model is not offered: on the later deals its Brier score "
        f"({brier['logistic']:.4f}) does not beat the learned stage rates "
        f"({brier['stage_rates']:.4f}) and the stage defaults ({brier['stage_defaults']:.4f}). "
        "Using the learned stage rates." in page
    )
    assert "The learned stage rates: each open deal gets the won share" in page
    assert "in use" in row_of(body, "stage_rates")
    assert "in use" not in row_of(body, "logistic")


def test_dropped_inputs_are_named_in_words(company: dict[str, Any], db: Any) -> None:
    model = company["model"]
    model.parameters = {
        **model.parameters,
        "feature_selection": {"dropped": ["industry", "days_in_stage"]},
        "dropped_as_leaks": {"amount": 0.97},
        "excluded": ["days_to_close"],
    }
    model.save()
    body = client(company, "seller").get(MODEL).content.decode()
    page = text(body)
    assert (
        "Dropped: did not carry over to later deals industry days in stage "
        "Dropped: looks recorded with hindsight amount "
        "Left out when training days to expected close" in page
    )
    assert 'title="alone it separates won from lost with AUC 0.97">amount</span>' in body


def test_chart_data_equals_the_stored_reliability_rows(company: dict[str, Any], db: Any) -> None:
    model = company["model"]
    body = client(company, "seller").get(MODEL).content.decode()
    data = chart_data(body)
    assert [t["key"] for t in data["traces"]] == ["stage_defaults", "stage_rates", "logistic"]
    assert [t["name"] for t in data["traces"]] == [
        "Stage defaults",
        "Learned stage rates",
        "Learned per-deal model",
    ]
    for trace in data["traces"]:
        stored = [r for r in model.metrics[trace["key"]]["reliability"] if r["count"]]
        assert trace["bins"] == [bin_label(r["bin"]) for r in stored]
        assert trace["predicted"] == [r["predicted"] for r in stored]
        assert trace["observed"] == [r["observed"] for r in stored]
        assert trace["count"] == [r["count"] for r in stored]
        assert sum(trace["count"]) == model.evaluation_snapshots
    # The chart is drawn by the shared static script from that element; no inline script.
    assert 'data-chart="reliability" data-source="reliability-data"' in body
    assert "/static/web/analytics.js" in body
    assert "/static/plotly/plotly.min.js" in body
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
    assert scripts == [' id="reliability-data" type="application/json"']
    # The table of the bins holds the same figures (the logistic's fullest bin).
    fullest = max(model.metrics["logistic"]["reliability"], key=lambda r: r["count"])
    table = re.search(r'<table class="data reliability-table">(.*?)</table>', body, re.S)
    assert table
    label = bin_label(fullest["bin"])
    row = re.search(rf"<th scope=\"row\">{label}</th>(.*?)</tr>", table.group(1), re.S)
    assert row
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert cells[6:9] == [
        str(fullest["count"]),
        f"{100 * fullest['predicted']:.1f}%",
        f"{100 * fullest['observed']:.1f}%",
    ]


def test_suggested_stage_probabilities(company: dict[str, Any], db: Any) -> None:
    model = company["model"]
    suggested = model.parameters["suggested_stage_probabilities"]
    body = client(company, "seller").get(MODEL).content.decode()
    discover = Stage.objects.get(playbook=company["playbook"], key="discover")
    row = re.search(r'<tr data-stage="discover">(.*?)</tr>', body, re.S)
    assert row
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    item = suggested["discover"]
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in cells] == [
        f"{discover.probability}%",
        str(item["reached"]),
        str(item["won"]),
        f"{round(100 * item['rate'])}%",
    ]
    # The numbers in use were refitted on every deal closed by training time: all 420 reached
    # Discover.
    refit = model.parameters["refit"]
    assert (refit["deals"], item["reached"]) == (420, 420)
    assert (
        f"For each stage: of the deals closed by {local_day(refit['at'], 'seller')} that reached "
        "it, the share "
        "won." in text(body)
    )
    assert "Discover potential opportunities" in row.group(1)


# --- Chinese, query count -------------------------------------------------------------------


def test_model_page_in_chinese(company: dict[str, Any], db: Any) -> None:
    body = client(company, "admin", "zh-hans").get(MODEL).content.decode()
    assert '<html lang="zh-hans"' in body
    assert "项目销售漏斗" in body
    row = re.search(r'<tr data-stage="discover">(.*?)</tr>', body, re.S)
    assert row and "发掘潜在商机" in row.group(1)
    assert "Discover potential opportunities" not in body


def test_model_page_query_count_does_not_grow_with_the_deals(
    company: dict[str, Any], db: Any, django_assert_max_num_queries: Any
) -> None:
    admin = client(company, "admin")
    admin.get(MODEL)  # warm the per-process caches
    with CaptureQueriesContext(connection) as first:
        assert admin.get(MODEL).status_code == 200
    for i in range(20):
        _deal(
            company,
            company["account"],
            company["playbook"],
            2000 + i,
            big=True,
            won=i % 2 == 0,
            created=START + dt.timedelta(days=450 + i),
            length=10,
        )
    with django_assert_max_num_queries(len(first)):
        assert admin.get(MODEL).status_code == 200
    assert len(first) <= 12
