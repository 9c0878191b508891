"""The learned probability on the deal page: the panel loads lazily and shows the probability and
its factors in words, says why when the model is not offered or none is trained, is not found
for another branch, and makes as many queries for a deal with a long history as for one without;
the deal's name escaped, the panel in Chinese.

Every test reads the company of conftest.py, built once for the module."""

import datetime as dt
import html
import re
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.learning.models import WinModel
from loudou.pipeline.models import Opportunity
from tests.learning.test_learning import START, _deal
from tests.web.learning.win_model import client, not_offered, text

# --- the deal page --------------------------------------------------------------------------


#: How the panel names the inputs the selector names by key (the deal is in Discover, its
#: account in power and large).
WORDS = {
    "stage_rate:company": "deals that reached stage Discover potential opportunities",
    "stage:discover": "stage = Discover potential opportunities",
    "industry:power": "industry = Electric power",
    "size:large": "size = Large",
}


def panel_url(opp: Any) -> str:
    return f"/opportunities/{opp.pk}/win-probability/"


def test_deal_page_loads_the_panel_lazily(company: dict[str, Any], db: Any) -> None:
    opp = company["open_deal"]
    body = client(company, "seller").get(f"/opportunities/{opp.pk}/").content.decode()
    assert f'hx-get="{panel_url(opp)}" hx-trigger="load"' in body


def test_owner_sees_the_probability_and_its_factors(company: dict[str, Any], db: Any) -> None:
    from loudou.learning.selectors import win_explain

    opp = company["open_deal"]
    explained = win_explain(company["seller"], opp.pk)
    response = client(company, "seller").get(panel_url(opp))
    assert response.status_code == 200
    body = response.content.decode()
    page = text(body)
    assert f"Probability {100 * explained['probability']:.1f}% learned per-deal model" in page
    assert f"Stage default {round(100 * explained['stage_default'])}% · " in page
    assert explained["factors"]
    rows = re.findall(r"<tr class=\"(up|down|flat)\">(.*?)</tr>", body, re.S)
    assert len(rows) == len(explained["factors"])
    widest = max(abs(f["contribution"]) for f in explained["factors"])
    for (direction, row), factor in zip(rows, explained["factors"], strict=True):
        label = WORDS.get(factor["feature"], factor["label"])
        assert f'<th scope="row">{html.escape(label)}<small' in row
        assert html.escape(str(factor["value"])) in row
        shown = round(factor["contribution"], 2)
        cell = re.search(r'<td class="num nowrap">([^<]*)</td>', row)
        assert cell
        if shown == 0:
            assert (direction, cell.group(1)) == ("flat", "0.00")
        else:
            signed = f"{factor['contribution']:+.2f}".replace("-", "−")
            assert (direction, cell.group(1)) == ("down" if shown < 0 else "up", signed)
        assert f'style="width: {round(100 * abs(factor["contribution"]) / widest)}%"' in row
    # The manager of the branch sees it too.
    assert client(company, "manager").get(panel_url(opp)).status_code == 200


def test_panel_with_a_model_not_offered_says_why(company: dict[str, Any], db: Any) -> None:
    model = not_offered(company["model"])
    page = text(client(company, "seller").get(panel_url(company["open_deal"])).content.decode())
    assert "learned stage rates" in page
    assert "The learned per-deal model is not offered" in page
    assert model.parameters["used"] == "stage_rates"


def test_panel_without_a_model(company: dict[str, Any], db: Any) -> None:
    WinModel.objects.all().delete()
    body = client(company, "seller").get(panel_url(company["open_deal"])).content.decode()
    assert "No win model trained for this playbook: the stage default probability is used." in body
    assert 'href="/analytics/model/?playbook=project-funnel"' in body


def test_panel_of_another_branch_is_not_found(company: dict[str, Any], db: Any) -> None:
    opp = company["open_deal"]
    assert client(company, "sh_seller").get(panel_url(opp)).status_code == 404
    assert (
        client(company, "sh_seller").get("/opportunities/999999/win-probability/").status_code
        == 404
    )


def test_panel_query_count_is_fixed(company: dict[str, Any], db: Any) -> None:
    """Explaining a deal reads its own history: as many queries for a deal with a long history
    as for one without, however many deals the company has."""
    seller = client(company, "seller")
    opp = company["open_deal"]
    seller.get(panel_url(opp))  # warm the per-process caches
    with CaptureQueriesContext(connection) as first:
        seller.get(panel_url(opp))
    more = _deal(
        company,
        company["account"],
        company["playbook"],
        1000,
        big=False,
        won=None,
        created=START + dt.timedelta(days=440),
        length=30,
    )
    with CaptureQueriesContext(connection) as second:
        seller.get(panel_url(more))
    assert len(second) == len(first)
    assert len(first) <= 40


# --- escaping, Chinese ----------------------------------------------------------------------


def test_deal_name_with_markup_is_escaped_on_the_deal_page(
    company: dict[str, Any], db: Any
) -> None:
    opp = company["open_deal"]
    Opportunity.objects.filter(pk=opp.pk).update(name='<script>alert("x")</script>')
    body = client(company, "seller").get(f"/opportunities/{opp.pk}/").content.decode()
    assert '<script>alert("x")' not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_panel_in_chinese(company: dict[str, Any], db: Any) -> None:
    body = (
        client(company, "seller", "zh-hans").get(panel_url(company["open_deal"])).content.decode()
    )
    assert "发掘潜在商机" in body
