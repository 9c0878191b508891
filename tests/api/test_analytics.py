"""The analytics endpoints answer the very documents `loudou <command> --json` prints."""

import datetime as dt
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone


def cli(*args: str) -> Any:
    out = StringIO()
    call_command(*args, "--as", "seller", "--json", "--lang", "en", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def deals(walker: Any) -> list[Any]:
    return [
        walker.create("open"),
        walker.to(walker.create("at intent"), "intent"),
        walker.to(walker.create("won"), "closed"),
    ]


def quarter(today: dt.date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def test_each_report_matches_the_cli(api_for: Any, deals: list[Any]) -> None:
    seller = api_for("seller")
    today = timezone.localdate()
    start = (today - dt.timedelta(days=30)).isoformat()
    end = (today + dt.timedelta(days=1)).isoformat()
    period = quarter(today)
    cases = [
        ("funnel", {}, ["funnel"]),
        ("conversion", {"from": start, "to": end}, ["conversion", "--from", start, "--to", end]),
        ("velocity", {}, ["velocity"]),
        ("stalled", {}, ["stalled"]),
        ("flow", {"from": start, "to": end}, ["flow", "--from", start, "--to", end]),
        (
            "forecast",
            {"period": period, "simulations": 200, "seed": 7},
            ["forecast", "--period", period, "--simulations", "200", "--seed", "7"],
        ),
        (
            "plan",
            {"period": period, "target": "5000000"},
            ["plan", "--period", period, "--target", "5000000"],
        ),
        (
            "targets",
            {"period": period, "simulations": 200},
            ["targets", "--period", period, "--simulations", "200"],
        ),
    ]
    for name, params, command in cases:
        response = seller.get(f"analytics/{name}", params)
        assert response.status_code == 200, (name, response.content)
        assert response.json() == cli(*command), name


def test_funnel_counts_and_scope(api_for: Any, deals: list[Any]) -> None:
    funnel = api_for("seller").get("analytics/funnel").json()
    counts = {s["key"]: s["count"] for s in funnel["stages"]}
    assert (counts["discover"], counts["intent"]) == (1, 1)
    assert funnel["won"] == {"count": 1, "amount": "1000000.00"}
    assert api_for("sh_seller").get("analytics/funnel").json()["won"]["count"] == 0
    tianjin = api_for("manager").get("analytics/funnel", {"branch": "tj"}).json()
    assert sum(s["count"] for s in tianjin["stages"]) == 0
    mine = api_for("manager").get("analytics/funnel", {"owner": "seller"}).json()
    assert sum(s["count"] for s in mine["stages"]) == 2


def test_bad_report_parameters_are_422(api_for: Any, deals: list[Any]) -> None:
    seller = api_for("seller")
    for name, params, field in [
        ("forecast", {"period": "2026Q5"}, "period"),
        ("plan", {"period": "2026Q1", "target": "-1"}, "target"),
        ("flow", {"from": "2026-02-01"}, "to"),
        ("funnel", {"playbook": "nope"}, "playbook"),
        ("funnel", {"owner": "nobody"}, "owner"),
        ("conversion", {"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ("forecast", {"period": "2026Q1", "simulations": 10**7}, "simulations"),
    ]:
        response = seller.get(f"analytics/{name}", params)
        assert response.status_code == 422, (name, params, response.content)
        assert field in [e["field"] for e in response.json().get("errors", [])], (name, params)
