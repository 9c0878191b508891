"""The analytics pages: each figure equals its selector's and `loudou <command> --json` for the
same scope, worked by hand on a known history; visibility, filters the user may not use, bad
input answered with a message, Chinese texts, escaping and a query count that does not grow
with the deals."""

import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.flow import pipeline_flow
from loudou.analytics.forecast import forecast, parse_period, targets_view
from loudou.analytics.plan import plan
from loudou.analytics.scope import Scope
from loudou.analytics.velocity import stalled, velocity
from loudou.core import clock
from loudou.core.cli import dump_json
from loudou.org.access import branch_subtree_ids
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from tests.conftest import INTENT_EVIDENCE

NOW = dt.date(2026, 3, 12)
PAGES = ["/analytics/", *(f"/analytics/{p}/" for p in ("conversion", "velocity", "stalled"))]
PAGES += ["/analytics/flow/", "/analytics/forecast/"]
FLOW = "/analytics/flow/?from=2026-01-01&to=2026-03-12&window_from=2026-01-01&window_to=2026-04-30"


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def jan(day: int) -> dt.date:
    return dt.date(2026, 1, 1) + dt.timedelta(days=day - 1)


def get(client: Any, url: str) -> Any:
    """The page as it reads on NOW (the clock every selector reads)."""
    with clock.frozen_at(at(NOW)):
        return client.get(url)


def cli(*args: str) -> Any:
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command(*args, "--json", "--lang", "en", stdout=out)
    return json.loads(out.getvalue())


def as_json(value: Any) -> Any:
    """A selector's answer as the CLI prints it (Decimal and dates as strings)."""
    return json.loads(dump_json(value))


def problems(response: Any) -> list[str]:
    return list(response.context["query"].problems)


def chart(html: str, name: str) -> dict[str, Any]:
    found = re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html)
    assert found, f"the chart data {name} is missing"
    return json.loads(found.group(1))


@pytest.fixture
def history(walker: Any, org: dict[str, Any], sh_account: Any) -> dict[str, Any]:
    """Six deals of the Beijing seller created Jan 1 2026 (10:00) in discover at 1,000,000,
    expected to close Apr 30; read on Mar 12 (70 days later) — docs/analytics-velocity.md:

    A: → intent Jan 11; walked to won Feb 10      B: → intent Jan 21, still there
    C: lost in discover Jan 31                    D: → intent Feb 10, still there
    E: still in discover (70 days: stalled)       F: → intent Jan 6, back to discover Jan 16

    And the Shanghai seller's 上海财务云 (3,000,000, discover since Jan 1: stalled too), which no
    Beijing user may see in any figure."""
    seller = org["seller"]
    deals = {}
    with clock.frozen_at(at(jan(1))):
        for name in "ABCDEF":
            deals[name] = walker.create(name=name, close_date=dt.date(2026, 4, 30))
        deals["SH"] = ps.opportunity_create(
            actor=org["sh_seller"],
            account=sh_account,
            name="上海财务云",
            amount="3000000",
            close_date=dt.date(2026, 4, 30),
            source="Event",
            evidence={"need_found": "CFO"},
        )

    def advance(name: str, day: dt.date) -> None:
        with clock.frozen_at(at(day)):
            deals[name] = ps.opportunity_advance(
                opportunity=deals[name], to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
            )

    advance("F", jan(6))
    advance("A", jan(11))
    with clock.frozen_at(at(jan(16))):
        ps.opportunity_regress(
            opportunity=deals["F"], to_stage="discover", actor=seller, reason="no budget yet"
        )
    advance("B", jan(21))
    with clock.frozen_at(at(jan(31))):
        ps.opportunity_lose(opportunity=deals["C"], actor=seller, reason="price")
    advance("D", jan(41))
    with clock.frozen_at(at(jan(41))):
        deals["A"] = walker.to(deals["A"], "closed")
    return deals


@pytest.fixture
def targets(org: dict[str, Any]) -> None:
    """The seller: 300,000 a month in Q1 and 400,000 in April; the company 2,000,000 in April."""
    for month in (1, 2, 3):
        target_set(actor=None, month=dt.date(2026, month, 1), amount="300000", user=org["seller"])
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="400000", user=org["seller"])
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="2000000")


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


# --- conversion -----------------------------------------------------------------------------


def test_conversion_figures_by_hand_and_as_the_selector(
    history: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/conversion/")
    assert response.status_code == 200
    with clock.frozen_at(at(NOW)):
        expected = conversion_by_stage(org["seller"], playbook)
    assert response.context["data"] == expected
    rows = {r["key"]: r for r in response.context["rows"]}
    # discover: all 6 reached it; A, B, D and F got past it (F came back, but its furthest
    # stage is intent), C was lost there, E is still there.
    discover = rows["discover"]
    assert [discover[k] for k in ("reached", "advanced", "lost_here", "open_here")] == [6, 4, 1, 1]
    assert (discover["naive"], discover["closed_only"]) == (0.6667, 0.8)
    # Clocks from Jan 1: F advances at 5 days, A 10, B 20, C lost 30, D 40, E censored at 70:
    # 1/6 + 1/6 + 1/6 + (3/6 × 2/3) × 1/2 = 4/6.
    assert discover["censored_estimate"] == 0.6667
    assert (discover["naive_pct"], discover["closed_only_pct"]) == ("66.7%", "80.0%")
    intent = rows["intent"]
    assert [intent[k] for k in ("reached", "advanced", "lost_here", "open_here")] == [4, 1, 0, 3]
    assert rows["closed"]["reached"] == 1
    overall = response.context["overall"]
    assert (overall["reached"], overall["advanced"], overall["lost_here"]) == (6, 1, 1)
    assert (overall["naive_pct"], overall["closed_only_pct"]) == ("16.7%", "50.0%")
    html = response.content.decode()
    assert "66.7%" in html and "4/6" in html and "4/5" in html and "1 of 6 open" in html
    for name in ("Naive (open counted as not converted)", "Closed only (open ignored)"):
        assert name in html
    assert "Censoring-aware (Aalen–Johansen)" in html and "90% interval" in html
    data = chart(html, "conversion-data")
    assert data["labels"][0] == "Discover potential opportunities"
    assert [s["values"][0] for s in data["series"]] == [66.7, 80.0, 66.7]
    assert len(data["labels"]) == 5  # the open stages; won has no rates
    low, high = discover["interval"]
    assert data["low"][0] == round(66.7 - 100 * low, 1)
    assert data["high"][0] == round(100 * high - 66.7, 1)


def test_conversion_cohort_dates_are_both_included(
    history: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/conversion/?from=2026-01-01&to=2026-01-01")
    with clock.frozen_at(at(NOW)):
        expected = conversion_by_stage(org["seller"], playbook, date_from=jan(1), date_to=jan(2))
    assert response.context["data"] == expected
    assert response.context["overall"]["reached"] == 6
    assert (response.context["cohort_from"], response.context["cohort_last"]) == (jan(1), jan(1))
    assert cli("conversion", "--as", "seller", "--from", "2026-01-01", "--to", "2026-01-02") == (
        as_json(response.context["data"])
    )
    empty = get(client_for("seller"), "/analytics/conversion/?from=2026-01-02&to=2026-03-12")
    assert empty.context["overall"]["reached"] == 0
    assert "No deal was created in this period" in empty.content.decode()


# --- velocity and stalled -------------------------------------------------------------------


def test_velocity_figures_by_hand_and_as_the_selector(
    history: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/velocity/")
    with clock.frozen_at(at(NOW)):
        expected = velocity(org["seller"], playbook)
    assert response.context["data"] == expected
    rows = {r["key"]: r for r in response.context["rows"]}
    discover, intent = rows["discover"], rows["intent"]
    assert [discover[k] for k in ("completed_stays", "median_days", "p80_days")] == [5, 20, 32]
    assert (discover["km_median_days"], discover["open_stays"]) == (30, 2)
    assert [intent[k] for k in ("median_days", "p80_days", "km_median_days")] == [20, 26, 30]
    cycle = response.context["cycle"]
    assert (cycle["completed"], cycle["median_days"], cycle["km_median_days"]) == (1, 40, None)
    html = response.content.decode()
    assert "40.0 d" in html and "too early to say" in html
    data = chart(html, "velocity-data")
    assert [s["values"][0] for s in data["series"]] == [20.0, 30.0, 32.0]  # median, KM, P80
    # Stays that began Jan 10–31: discover none; intent A (Jan 11), B (Jan 21).
    period = get(client_for("seller"), "/analytics/velocity/?from=2026-01-10&to=2026-01-31")
    with clock.frozen_at(at(NOW)):
        assert period.context["data"] == velocity(
            org["seller"], playbook, entered_from=jan(10), entered_to=jan(31)
        )
    assert cli("velocity", "--as", "seller", "--from", "2026-01-10", "--to", "2026-01-31") == (
        as_json(period.context["data"])
    )


def test_stalled_deals_link_to_each_deal(
    history: dict[str, Any], org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/stalled/")
    with clock.frozen_at(at(NOW)):
        expected = stalled(org["seller"], playbook)
    assert response.context["data"] == expected
    # Only E: 70 days in discover, over its max days of 60 by 10 (F came back 55 days ago).
    assert [(d["name"], d["days_in_stage"], d["threshold_days"]) for d in expected["deals"]] == [
        ("E", 70.0, 60.0)
    ]
    assert expected["deals"][0]["threshold_source"] == "max_days"
    html = response.content.decode()
    assert f'<a href="/opportunities/{history["E"].pk}/">E</a>' in html
    assert "+10.0" in html and "max days" in html and "¥1,000,000" in html
    assert cli("stalled", "--as", "seller") == as_json(expected)
    # The executive also sees the Shanghai deal, more overdue first? Both are 70 days in.
    executive = get(client_for("executive"), "/analytics/stalled/")
    assert [d["name"] for d in executive.context["deals"]] == ["E", "上海财务云"]


# --- flow -----------------------------------------------------------------------------------


def test_flow_figures_add_up_and_equal_the_selector(
    history: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), FLOW)
    assert response.status_code == 200
    flow = response.context["flow"]
    with clock.frozen_at(at(NOW)):
        expected = pipeline_flow(
            org["seller"],
            playbook,
            date_from=jan(1),
            date_to=NOW,
            window_from=jan(1),
            window_to=dt.date(2026, 4, 30),
        )
    assert flow == expected
    # Nothing existed when Jan 1 began; six deals were created, A won (early: in the window),
    # C lost; B, D, E and F are open at the end.
    summary = {k: (flow[k]["count"], flow[k]["amount"]) for k in ("start", "created", "won")}
    assert summary == {
        "start": (0, Decimal("0.00")),
        "created": (6, Decimal("6000000.00")),
        "won": (1, Decimal("1000000.00")),
    }
    assert (flow["lost"]["count"], flow["end"]["count"]) == (1, 4)
    assert flow["end"]["amount"] == Decimal("4000000.00")
    assert response.context["balanced"] is True
    assert response.context["count_sum"] == "0 + 6 + 0 − 0 − 1 − 1 = 4"
    html = response.content.decode()
    assert "The parts add up exactly." in html
    assert "¥0 + ¥6,000,000 + ¥0 − ¥0 + ¥0 − ¥1,000,000 − ¥1,000,000 = ¥4,000,000" in html
    data = chart(html, "flow-data")
    assert data["amount"]["measure"] == ["absolute", *["relative"] * 6, "absolute"]
    assert data["amount"]["values"] == [0.0, 6e6, 0.0, -0.0, 0.0, -1e6, -1e6, 4e6]
    assert data["count"]["values"] == [0, 6, 0, 0, -1, -1, 4]
    assert cli(
        "flow",
        "--as",
        "seller",
        "--from",
        "2026-01-01",
        "--to",
        "2026-03-12",
        "--window-from",
        "2026-01-01",
        "--window-to",
        "2026-04-30",
    ) == as_json(flow)


def test_flow_defaults_to_this_quarter_so_far(history: Any, client_for: Any) -> None:
    response = get(client_for("seller"), "/analytics/flow/")
    flow = response.context["flow"]
    assert (flow["from"], flow["to"]) == (jan(1), NOW)
    assert flow["window"] == {"from": jan(1), "to": dt.date(2026, 3, 31)}
    # The deals close Apr 30, outside Q1, except A, which was won inside it.
    assert (flow["created"]["count"], flow["won"]["count"], flow["end"]["count"]) == (1, 1, 0)


# --- forecast, targets and plan -------------------------------------------------------------


def test_forecast_targets_and_plan_equal_their_selectors(
    history: Any, targets: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/forecast/?period=2026Q2&target=3,000,000")
    assert response.status_code == 200
    # A seller's forecast is set against their own target: the figures of `--owner seller`.
    assert response.context["query"].owner_id == org["seller"].pk
    scope = Scope(org["seller"], playbook, owner_id=org["seller"].pk)
    q2 = parse_period("2026Q2")
    with clock.frozen_at(at(NOW)):
        expected = forecast(scope, q2)
        expected_targets = targets_view(scope, q2)
        expected_plan = plan(scope, q2, Decimal("3000000"))
    figures = response.context["figures"]
    assert figures == expected
    # Open in Q2: B, D at intent (25 %), E, F at discover (10 %), 1,000,000 each.
    assert (figures["booked"], figures["weighted"], figures["open_deals"]) == (
        "0.00",
        "700000.00",
        4,
    )
    assert figures["target"] == "400000.00"
    assert cli("forecast", "--as", "seller", "--owner", "seller", "--period", "2026Q2") == (
        as_json(expected)
    )
    selector_keys = set(expected_targets["rows"][0])
    shown = [{k: r[k] for k in selector_keys} for r in response.context["targets"]]
    assert shown == expected_targets["rows"]
    # The seller sees their own row: April's 400,000 is Q2's target.
    assert [(r["kind"], r["key"], r["target"]) for r in shown] == [
        ("person", "seller", "400000.00")
    ]
    assert response.context["plan"] == expected_plan
    assert cli(
        "plan", "--as", "seller", "--owner", "seller", "--target", "3000000", "--period", "2026Q2"
    ) == as_json(expected_plan)
    html = response.content.decode()
    assert "¥700,000" in html and "¥400,000" in html and "¥3,000,000" in html
    # Two closed deals (A won, C lost) are too few to plan from: each stage says so.
    assert "Only 2 closed deals reached this stage" in html
    hist = chart(html, "forecast-data")
    runs = figures["simulated"]["runs"]
    assert sum(hist["y"]) == pytest.approx(100.0, abs=0.1) and runs == 10_000
    marks = {m["name"]: m["x"] for m in hist["marks"]}
    assert marks == {
        "P10": float(Decimal(figures["simulated"]["p10"])),
        "P50": float(Decimal(figures["simulated"]["p50"])),
        "P90": float(Decimal(figures["simulated"]["p90"])),
        "Target": 400000.0,
    }


def test_forecast_with_nothing_open_in_the_period(
    history: Any, targets: Any, org: dict[str, Any], client_for: Any
) -> None:
    response = get(client_for("seller"), "/analytics/forecast/?period=2026Q1")
    figures = response.context["figures"]
    # A was won Feb 10 (booked); nothing open closes in Q1; target 3 × 300,000.
    assert (figures["booked"], figures["weighted"], figures["target"]) == (
        "1000000.00",
        "1000000.00",
        "900000.00",
    )
    assert figures["p_hit_target"] == 1.0 and response.context["chart"] is None
    html = response.content.decode()
    assert "every run books ¥1,000,000" in html and "100.0%" in html
    # With no target typed, the plan works back from the scope's own target.
    assert response.context["plan_target"] == "900000.00" and not response.context["plan_typed"]
    assert response.context["plan"]["gap"] == "0.00"


def test_targets_rows_for_the_company_and_links(
    history: Any, targets: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    response = get(client_for("executive"), "/analytics/forecast/?period=2026-04")
    rows = response.context["targets"]
    assert [(r["kind"], r["key"], r["target"]) for r in rows] == [
        ("person", "seller", "400000.00"),
        ("company", None, "2000000.00"),
    ]
    assert rows[0]["link"] == f"playbook=project-funnel&owner={org['seller'].pk}&period=2026-04"
    assert "link" not in rows[1]
    # The company's April: B, D, E, F and the Shanghai deal are open, closing Apr 30.
    assert rows[1]["weighted"] == "1000000.00"  # 2 × 250,000 + 2 × 100,000 + 3,000,000 × 10 %
    assert response.context["figures"]["target"] == "2000000.00"


def test_a_managers_forecast_is_set_against_the_branchs_target(
    history: Any, org: dict[str, Any], playbook: Any, client_for: Any
) -> None:
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="5000000", branch=org["beijing"])
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="9000000")
    response = get(client_for("manager"), "/analytics/forecast/?period=2026-04")
    assert response.context["query"].branch_id == org["beijing"].pk
    scope = Scope(org["manager"], playbook, branch_subtree_ids(org["beijing"].pk))
    with clock.frozen_at(at(NOW)):
        assert response.context["figures"] == forecast(scope, parse_period("2026-04"))
    assert response.context["figures"]["target"] == "5000000.00"  # not the company's 9,000,000
    assert "this branch's own" in response.content.decode()
    # The executive, who sees every deal, is set against the company's.
    executive = get(client_for("executive"), "/analytics/forecast/?period=2026-04")
    assert executive.context["query"].branch_id is None
    assert executive.context["figures"]["target"] == "9000000.00"


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
