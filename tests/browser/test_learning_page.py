"""The win model page in a real browser (CSP on: no inline script): the reliability curve draws
(plotly's svg with the diagonal and one line per model), the deal page loads its learned
probability with htmx, and an administrator's "Train now" without enough history shows the
refusal in place."""

import datetime as dt
from typing import Any

import pytest

from loudou.learning.models import WinModel
from loudou.learning.services import win_model_train
from tests.learning.test_learning import START, _company, _deal


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_reliability_curve_draws_and_the_deal_shows_its_factors(
    browse: Any, org: Any, account: Any, playbook: Any, language: str
) -> None:
    _company(org, account, playbook)
    model = win_model_train(playbook=playbook, actor=None)
    opp = _deal(org, account, playbook, 999, big=True, won=None,
                created=START + dt.timedelta(days=430), length=60)  # fmt: skip

    page = browse("manager", language)
    page.goto("/analytics/model/")
    assert page.locator("html").get_attribute("lang") == language
    chart = page.locator(".model-chart")
    chart.locator("svg.main-svg").first.wait_for()
    # The diagonal and the three models: stage defaults, learned stage rates, per-deal model.
    assert chart.locator(".scatterlayer .trace").count() == 4
    legend = chart.locator(".legend .legendtext").all_text_contents()
    if language == "en":
        assert legend == [
            "Perfectly calibrated",
            "Stage defaults",
            "Learned stage rates",
            "Learned per-deal model",
        ]
    # One marker per bin with snapshots, on the per-deal model's line.
    filled = [r for r in model.metrics["logistic"]["reliability"] if r["count"]]
    assert chart.locator(".scatterlayer .trace").nth(3).locator(".point").count() == len(filled)

    page = browse("seller", language)
    page.goto(f"/opportunities/{opp.pk}/")
    panel = page.locator("#win-probability table.factors")
    panel.wait_for()
    assert panel.locator("tbody tr").count() >= 3
    assert page.locator("#win-probability .deal-probability-value").inner_text().endswith("%")


def test_training_without_enough_history_says_so_in_place(
    browse: Any, org: Any, playbook: Any
) -> None:
    del org, playbook
    page = browse("admin")
    page.goto("/analytics/model/?playbook=simple")
    page.locator("#train-box button").click()
    error = page.locator("#train-box .error")
    error.wait_for()
    assert error.inner_text().startswith("Not enough history to learn from: 0 deals closed")
    assert page.url.endswith("/analytics/model/?playbook=simple")
    assert not WinModel.objects.exists()
