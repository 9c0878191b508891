"""The funnel page: the figures of `funnel_snapshot` for the same scope, past dates, the branch
filter, the stage drill-down, the chart's JSON data, the conversion table and access."""

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from loudou.analytics.selectors import funnel_snapshot
from loudou.core import clock
from loudou.pipeline import services as ps
from tests.conftest import INTENT_EVIDENCE

TODAY = timezone.localdate()


def at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(10)))


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@pytest.fixture
def deals(walker: Any, org: dict[str, Any], sh_account: Any) -> dict[str, Any]:
    """Beijing seller: A created 30 days ago, moved to intent 10 days ago (amount 2,000,000);
    B created 20 days ago, still in discover (500,000); C created 5 days ago (700,000).
    Shanghai seller: D in discover (3,000,000) on an account of their own."""
    seller = org["seller"]
    with clock.frozen_at(at(days_ago(30))):
        a = walker.create(name="财务共享平台", amount="2000000")
    with clock.frozen_at(at(days_ago(20))):
        b = walker.create(name="供应链协同", amount="500000")
    with clock.frozen_at(at(days_ago(10))):
        a = ps.opportunity_advance(
            opportunity=a, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
        )
    with clock.frozen_at(at(days_ago(5))):
        c = walker.create(name="人力云", amount="700000")
    d = ps.opportunity_create(
        actor=org["sh_seller"],
        account=sh_account,
        name="上海财务云",
        amount="3000000",
        close_date=TODAY + dt.timedelta(days=30),
        source="Event",
        evidence={"need_found": "CFO"},
    )
    return {"a": a, "b": b, "c": c, "d": d}


def counts(response: Any) -> dict[str, int]:
    return {s["key"] or "target": s["count"] for s in response.context["steps"]}


def chart_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="funnel-data" type="application/json">(.*?)</script>', html)
    assert found, "the chart's data script is missing"
    return json.loads(found.group(1))


@pytest.mark.parametrize(
    "path", ["/funnel/", "/funnel/deals/?stage=discover", "/funnel/conversion/"]
)
def test_anonymous_is_sent_to_login(db: Any, client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_figures_equal_funnel_snapshot(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = client_for("executive").get("/funnel/")
    assert response.status_code == 200
    snapshot = funnel_snapshot(org["executive"], playbook)
    steps = response.context["steps"]
    assert steps[0]["count"] == snapshot["target_accounts"] == 2
    for step, stage in zip(steps[1:], snapshot["stages"], strict=True):
        assert step["key"] == stage["key"]
        assert step["count"] == stage["count"]
        assert step["amount"] == Decimal(stage["amount"])
        assert step["weighted_amount"] == Decimal(stage["weighted_amount"])
    assert counts(response) == {
        "target": 2,
        "discover": 3,
        "intent": 1,
        "project": 0,
        "recognition": 0,
        "negotiation": 0,
    }
    html = response.content.decode()
    # discover: 500,000 + 700,000 + 3,000,000; intent: 2,000,000 (weighted 25 % = 500,000)
    assert "¥4,200,000" in html and "¥2,000,000" in html
    data = chart_data(html)
    assert data["counts"] == [2, 3, 1, 0, 0, 0]
    assert data["labels"][0] == "Target accounts"
    assert data["labels"][1] == "Discover potential opportunities"
    # step shares: 3 of 2 target accounts = 150 %, 1 of 3 = 33 %
    assert [s["share"] for s in steps[:3]] == [None, 150, 33]


def test_a_past_date_shows_the_past_state(deals: dict[str, Any], client_for: Any) -> None:
    client = client_for("seller")
    # 15 days ago: A and B in discover, C not created yet.
    past = client.get(f"/funnel/?as_of={days_ago(15).isoformat()}")
    assert past.context["query"].as_of == days_ago(15)
    assert counts(past)["discover"] == 2 and counts(past)["intent"] == 0
    assert past.context["steps"][1]["amount"] == Decimal("2500000")
    # 25 days ago: only A, in discover.
    older = client.get(f"/funnel/?as_of={days_ago(25).isoformat()}")
    assert counts(older)["discover"] == 1 and counts(older)["intent"] == 0
    # 40 days ago: nothing yet, and no target account (the account is created today).
    empty = client.get(f"/funnel/?as_of={days_ago(40).isoformat()}")
    assert counts(empty) == {k: 0 for k in counts(empty)}
    # Today: A in intent, B and C in discover.
    now = client.get("/funnel/")
    assert counts(now)["discover"] == 2 and counts(now)["intent"] == 1
    # A future date means now.
    future = client.get(f"/funnel/?as_of={(TODAY + dt.timedelta(days=9)).isoformat()}")
    assert future.context["query"].as_of is None
    assert counts(future) == counts(now)


def test_branch_and_owner_filters_narrow_exactly(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    client = client_for("executive")
    shanghai = client.get(f"/funnel/?branch={org['shanghai'].pk}")
    assert counts(shanghai)["discover"] == 1 and counts(shanghai)["intent"] == 0
    assert shanghai.context["steps"][1]["amount"] == Decimal("3000000")
    assert counts(shanghai)["target"] == 1
    north = client.get(f"/funnel/?branch={org['north'].pk}")
    assert counts(north)["discover"] == 2 and counts(north)["intent"] == 1
    owner = client.get(f"/funnel/?owner={org['sh_seller'].pk}")
    assert counts(owner)["discover"] == 1 and counts(owner)["intent"] == 0


def test_a_branch_the_user_may_not_choose_is_ignored(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    response = client_for("seller").get(f"/funnel/?branch={org['shanghai'].pk}")
    assert response.context["query"].branch_id is None
    assert counts(response)["discover"] == 2  # the seller's own B and C, never D
    assert "上海" not in response.content.decode()


def test_stage_click_lists_exactly_that_stages_deals(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    executive = client_for("executive")
    response = executive.get("/funnel/deals/?stage=discover")
    assert response.status_code == 200
    assert [d.opportunity.name for d in response.context["stage_deals"]] == [
        "上海财务云",
        "人力云",
        "供应链协同",
    ]
    north = executive.get(f"/funnel/deals/?stage=discover&branch={org['north'].pk}")
    assert [d.opportunity.name for d in north.context["stage_deals"]] == ["人力云", "供应链协同"]
    html = north.content.decode()
    assert f'href="/opportunities/{deals["c"].pk}/"' in html
    assert "上海财务云" not in html and "财务共享平台" not in html
    intent = executive.get("/funnel/deals/?stage=intent")
    assert [d.opportunity.name for d in intent.context["stage_deals"]] == ["财务共享平台"]
    # The seller's list never holds another branch's deal.
    seller = client_for("seller").get("/funnel/deals/?stage=discover")
    assert [d.opportunity.name for d in seller.context["stage_deals"]] == ["人力云", "供应链协同"]
    # The Shanghai seller sees only theirs.
    sh = client_for("sh_seller").get("/funnel/deals/?stage=discover")
    assert [d.opportunity.name for d in sh.context["stage_deals"]] == ["上海财务云"]


def test_stage_click_at_a_past_date_lists_that_dates_deals(
    deals: dict[str, Any], client_for: Any
) -> None:
    client = client_for("seller")
    response = client.get(f"/funnel/deals/?stage=discover&as_of={days_ago(15).isoformat()}")
    listed = response.context["stage_deals"]
    assert [d.opportunity.name for d in listed] == ["财务共享平台", "供应链协同"]
    # A has moved on to intent since: the row says so.
    assert "now in Confirm customer intent" in response.content.decode()
    assert response.context["stage_count"] == 2
    # Without JavaScript, the same list is in the page.
    page = client.get(f"/funnel/?stage=discover&as_of={days_ago(15).isoformat()}")
    assert [d.opportunity.name for d in page.context["stage_deals"]] == [
        "财务共享平台",
        "供应链协同",
    ]


def test_an_unknown_stage_is_not_found(deals: dict[str, Any], client_for: Any) -> None:
    assert client_for("seller").get("/funnel/deals/?stage=nope").status_code == 404
    # the won stage is not an open stage: it lists nothing
    assert client_for("seller").get("/funnel/deals/?stage=closed").status_code == 404
    assert client_for("seller").get("/funnel/?stage=nope").status_code == 200


def test_chart_data_is_a_json_script_with_escaped_urls(
    deals: dict[str, Any], client_for: Any
) -> None:
    html = client_for("seller").get("/funnel/").content.decode()
    found = re.search(r'<script id="funnel-data" type="application/json">(.*?)</script>', html)
    assert found
    raw = found.group(1)
    assert "\\u0026" in raw and "&" not in raw  # json_script escapes &, < and >
    data = json.loads(raw)
    assert data["urls"][0] == ""  # target accounts list no deals
    assert data["urls"][1].startswith("/funnel/deals/?") and "stage=discover" in data["urls"][1]
    assert 'src="/static/plotly/plotly.min.js"' in html


def test_names_with_markup_render_as_text(walker: Any, client_for: Any) -> None:
    walker.create(name='<script>alert("x")</script> & "Q"', amount="10")
    html = client_for("seller").get("/funnel/deals/?stage=discover").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Q&quot;" in html


def test_chinese_page_shows_the_playbook_in_chinese(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller", "zh-hans").get("/funnel/")
    html = response.content.decode()
    assert "发掘潜在商机" in html and "进行商务谈判" in html
    data = chart_data(html)
    assert data["labels"][1] == "发掘潜在商机"


def test_conversion_table_counts_the_cohort(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller").get("/funnel/conversion/")
    assert response.status_code == 200
    overall = response.context["overall"]
    assert (overall["reached"], overall["advanced"], overall["open_here"]) == (3, 0, 3)
    discover = response.context["rows"][0]
    # A advanced from discover; B and C are still there.
    assert (discover["reached"], discover["advanced"], discover["open_here"]) == (3, 1, 2)
    assert discover["naive_pct"] == "33.3%"
    assert "Aalen–Johansen" in response.content.decode()


def test_query_count_does_not_grow_with_the_deals(
    walker: Any, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(2):
        walker.create(name=f"D{i}", amount="1000")
    client = client_for("manager")
    with CaptureQueriesContext(connection) as first:
        client.get("/funnel/?stage=discover")
    for i in range(10):
        walker.create(name=f"E{i}", amount="1000")
    with django_assert_max_num_queries(len(first)):
        response = client.get("/funnel/?stage=discover")
    assert response.context["stage_count"] == 12
