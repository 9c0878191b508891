"""The forecast page: the forecast, the targets and the plan equal their selectors and
`loudou forecast|plan --json` for the same scope, worked by hand on a known history; a seller is
set against their own target, a manager against their branch's, the executive the company's."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from loudou.analytics.forecast import forecast, parse_period, targets_view
from loudou.analytics.plan import plan
from loudou.analytics.scope import Scope
from loudou.core import clock
from loudou.org.access import branch_subtree_ids
from loudou.org.services import target_set
from tests.web.analytics.history import NOW, as_json, at, chart, cli, get

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
