"""The conversion, velocity, stalled and flow pages: each figure equals its selector's and
`loudou <command> --json` for the same scope, worked by hand on a known history."""

import datetime as dt
from decimal import Decimal
from typing import Any

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.flow import pipeline_flow
from loudou.analytics.velocity import stalled, velocity
from loudou.core import clock
from tests.web.analytics.history import FLOW, NOW, as_json, at, chart, cli, get, jan

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
