"""The analytics pages alike: who may open them and the links between them, a Beijing seller
never sees Shanghai in any figure, filters the user may not use are ignored and said, bad input
is answered with a message, Chinese texts, escaping and a query count that does not grow with
the deals. Each page's figures: test_figures.py and test_forecast.py."""

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.core import clock
from tests.web.analytics.history import FLOW, at, chart, get, jan

PAGES = ["/analytics/", *(f"/analytics/{p}/" for p in ("conversion", "velocity", "stalled"))]
PAGES += ["/analytics/flow/", "/analytics/forecast/"]


def problems(response: Any) -> list[str]:
    return list(response.context["query"].problems)


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(db: Any, client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_nav_and_the_tabs_link_the_pages(history: Any, client_for: Any) -> None:
    html = get(client_for("seller"), "/analytics/stalled/").content.decode()
    assert re.search(r'<a href="/analytics/" aria-current="page">Analytics</a>', html)
    for path in PAGES:
        assert f'href="{path}?playbook=project-funnel"' in html
    assert 'href="/analytics/stalled/?playbook=project-funnel" aria-selected="true"' in html
    overview = get(client_for("seller"), "/analytics/").content.decode()
    assert 'href="/funnel/?playbook=project-funnel"' in overview
    funnel = get(client_for("seller"), "/funnel/").content.decode()
    assert 'href="/analytics/?playbook=project-funnel"' in funnel


# --- visibility and filters -----------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, FLOW, "/analytics/forecast/?period=2026Q2"])
def test_a_beijing_seller_never_sees_shanghai(history: Any, client_for: Any, path: str) -> None:
    html = get(client_for("seller"), path).content.decode()
    assert "上海财务云" not in html and "上海" not in html and "3,000,000" not in html


def test_shanghai_counts_only_for_those_who_see_it(
    history: Any, org: dict[str, Any], client_for: Any
) -> None:
    seller = get(client_for("seller"), "/analytics/conversion/").context["overall"]
    executive = get(client_for("executive"), "/analytics/conversion/").context["overall"]
    shanghai = get(client_for("sh_seller"), "/analytics/conversion/").context["overall"]
    assert (seller["reached"], executive["reached"], shanghai["reached"]) == (6, 7, 1)
    branch = f"/analytics/conversion/?branch={org['shanghai'].pk}"
    assert get(client_for("executive"), branch).context["overall"]["reached"] == 1
    owner = f"/analytics/stalled/?owner={org['sh_seller'].pk}"
    assert [d["name"] for d in get(client_for("executive"), owner).context["deals"]] == [
        "上海财务云"
    ]


@pytest.mark.parametrize("param", ["branch", "owner"])
def test_a_filter_the_user_may_not_use_is_ignored_and_said(
    history: Any, org: dict[str, Any], client_for: Any, param: str
) -> None:
    value = org["shanghai"].pk if param == "branch" else org["sh_seller"].pk
    for user in ("seller", "manager"):
        client = client_for(user)
        plain = get(client, "/analytics/stalled/")
        response = get(client, f"/analytics/stalled/?{param}={value}")
        assert response.status_code == 200
        query = response.context["query"]
        assert (query.branch_id, query.owner_id) == (None, None)
        assert response.context["data"] == plain.context["data"]
        assert [d["name"] for d in response.context["deals"]] == ["E"]
        assert len(problems(response)) == 1
        assert "may look at" in problems(response)[0]


def test_a_managers_own_branch_filter_is_used(
    history: Any, org: dict[str, Any], client_for: Any
) -> None:
    response = get(client_for("manager"), f"/analytics/stalled/?branch={org['beijing'].pk}")
    assert response.context["query"].branch_id == org["beijing"].pk
    assert problems(response) == []
    assert f'<option value="{org["beijing"].pk}" selected>' in response.content.decode()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/analytics/conversion/?from=nonsense", "“nonsense” is not a date"),
        ("/analytics/conversion/?to=2026-02-30", "“2026-02-30” is not a date"),
        ("/analytics/conversion/?from=2026-03-01&to=2026-02-01", "ends before it starts"),
        ("/analytics/conversion/?from=2027-01-01", "No deal is created in the future"),
        ("/analytics/velocity/?from=nonsense", "“nonsense” is not a date"),
        ("/analytics/velocity/?from=2026-03-01&to=2026-02-01", "ends before it starts"),
        ("/analytics/flow/?from=nonsense", "“nonsense” is not a date"),
        ("/analytics/flow/?from=2026-03-01&to=2026-02-01", "ends (2026-02-01) before"),
        ("/analytics/flow/?to=2026-12-31", "cannot end after today"),
        ("/analytics/flow/?from=2026-12-01", "cannot start after today"),
        ("/analytics/flow/?window_from=2026-05-01&window_to=2026-04-01", "close window ends"),
        ("/analytics/forecast/?period=2026Q9", "is not a period"),
        ("/analytics/forecast/?period=nonsense", "Showing this quarter (2026Q1) instead."),
        ("/analytics/conversion/?playbook=nope", "no such playbook"),
    ],
)
def test_bad_input_is_answered_with_a_message(
    history: Any, client_for: Any, path: str, message: str
) -> None:
    response = get(client_for("seller"), path)
    assert response.status_code == 200
    assert any(message in p for p in problems(response)), problems(response)
    assert 'class="error analytics-problem" role="alert"' in response.content.decode()


def test_a_bad_flow_period_shows_no_figures(history: Any, client_for: Any) -> None:
    response = get(client_for("seller"), "/analytics/flow/?from=2026-03-01&to=2026-02-01")
    assert response.context["flow"] is None
    assert "The parts add up" not in response.content.decode()


@pytest.mark.parametrize("target", ["abc", "-5", "1e30"])
def test_a_bad_plan_target_is_named_under_its_box(
    history: Any, client_for: Any, target: str
) -> None:
    response = get(client_for("seller"), f"/analytics/forecast/?period=2026Q2&target={target}")
    assert response.status_code == 200
    assert response.context["plan_error"] and "plan" not in response.context
    html = response.content.decode()
    assert 'id="plan-error" role="alert"' in html
    assert f'name="target" value="{target}"' in html  # what the user typed stays


# --- language and escaping ------------------------------------------------------------------


def test_chinese_pages_show_the_playbooks_chinese_texts(history: Any, client_for: Any) -> None:
    client = client_for("seller", "zh-hans")
    conversion = get(client, "/analytics/conversion/").content.decode()
    assert "发掘潜在商机" in conversion and "进行商务谈判" in conversion
    assert chart(conversion, "conversion-data")["labels"][0] == "发掘潜在商机"
    velocity_html = get(client, "/analytics/velocity/").content.decode()
    assert chart(velocity_html, "velocity-data")["labels"][1] == "确认客户意向"
    stalled_html = get(client, "/analytics/stalled/").content.decode()
    assert "发掘潜在商机" in stalled_html
    flow = get(client, FLOW).content.decode()
    # Amount axes count in 万 for Chinese readers.
    assert chart(flow, "flow-data")["amount"]["values"][1] == 600.0
    plan_html = get(client, "/analytics/forecast/?period=2026Q2&target=100").content.decode()
    assert "确认客户意向" in plan_html and 'lang="zh-hans"' in plan_html


def test_names_and_input_with_markup_render_as_text(
    walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    with clock.frozen_at(at(jan(1))):
        walker.create(name='<script>alert("x")</script> & "Q"', close_date=dt.date(2026, 4, 30))
    client = client_for("seller")
    html = get(client, "/analytics/stalled/").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Q&quot;" in html
    bad = get(client, '/analytics/conversion/?from=<script>"x"').content.decode()
    assert '<script>"x"' not in bad and "&lt;script&gt;&quot;x&quot;" in bad
    typed = get(client, "/analytics/forecast/?target=<b>1</b>").content.decode()
    assert "<b>1</b>" not in typed and "&lt;b&gt;1&lt;/b&gt;" in typed


# --- query counts ---------------------------------------------------------------------------


def _more_deals(walker: Any, n: int, prefix: str) -> None:
    with clock.frozen_at(at(jan(2))):
        for i in range(n):
            opp = walker.create(name=f"{prefix}{i}", close_date=dt.date(2026, 4, 30))
            if i % 2:
                walker.to(opp, "intent")


@pytest.mark.parametrize(
    "path",
    [
        "/analytics/",
        "/analytics/conversion/",
        "/analytics/velocity/",
        "/analytics/stalled/",
        FLOW,
        "/analytics/forecast/?period=2026Q2&target=3000000",
    ],
)
def test_query_count_does_not_grow_with_the_deals(
    walker: Any, targets: Any, client_for: Any, django_assert_max_num_queries: Any, path: str
) -> None:
    _more_deals(walker, 2, "D")
    client = client_for("manager")
    with CaptureQueriesContext(connection) as first:
        get(client, path)
    _more_deals(walker, 10, "E")
    with django_assert_max_num_queries(len(first)):
        response = get(client, path)
    assert response.status_code == 200
    # For the record, as a manager with 2 deals: overview 11 queries, conversion, velocity,
    # stalled and flow 13 each, forecast with targets and plan 34 (3 per row of the targets
    # table: it grows with the people and branches that have a target, never with the deals).
    assert len(first) <= 40, len(first)
