"""Forecast (booked, weighted, simulated), the reverse funnel (倒推) and the targets view, on
hand-built deals with known figures."""

import datetime as dt
import io
import json
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.analytics.forecast import (
    PeriodDeals,
    forecast,
    parse_period,
    period_deals,
    period_weighted,
    simulate,
    targets_view,
)
from loudou.analytics.plan import plan
from loudou.analytics.scope import Scope
from loudou.core import clock
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from tests.conftest import INTENT_EVIDENCE

Q1 = parse_period("2026Q1")


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def scope_of(user, playbook, **kw):
    return Scope(actor=user, playbook=playbook, **kw)


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def deals(walker, org):
    """Q1 2026 for the Beijing seller:
    - won in the period: 1,000,000 (created Jan 5, at 立项 Jan 20, won Feb 10);
    - won outside it: 700,000 (created 2025-10-01, at intent Oct 31, won Dec 15);
    - open and closing in Q1: discover 100,000.05 (10 %), intent 200,000 (25 %),
      project 300,000 (40 %), recognition 400,000 (60 %), negotiation 500,000 (80 %),
      and a discover deal of 50,000 with a 90 % override;
    - open, closing in April: negotiation 900,000 (80 %);
    - lost at intent on Feb 1, would have closed in Q1: 800,000.
    """
    seller = org["seller"]
    with clock.frozen_at(at(dt.date(2026, 1, 5))):
        won_in = walker.create(name="won-in", amount="1000000", close_date=dt.date(2026, 3, 31))
    with clock.frozen_at(at(dt.date(2026, 1, 20))):
        won_in = walker.to(won_in, "project")
    with clock.frozen_at(at(dt.date(2026, 2, 10))):
        walker.to(won_in, "closed")

    with clock.frozen_at(at(dt.date(2025, 10, 1))):
        won_out = walker.create(name="won-out", amount="700000", close_date=dt.date(2025, 12, 31))
    with clock.frozen_at(at(dt.date(2025, 10, 31))):
        won_out = walker.to(won_out, "intent")
    with clock.frozen_at(at(dt.date(2025, 12, 15))):
        walker.to(won_out, "closed")

    with clock.frozen_at(at(dt.date(2026, 1, 8))):
        for stage, amount, close in [
            ("discover", "100000.05", dt.date(2026, 3, 15)),
            ("intent", "200000", dt.date(2026, 2, 28)),
            ("project", "300000", dt.date(2026, 1, 31)),
            ("recognition", "400000", dt.date(2026, 3, 31)),
            ("negotiation", "500000", dt.date(2026, 3, 1)),
            ("negotiation", "900000", dt.date(2026, 4, 1)),
        ]:
            opp = walker.create(name=f"open-{stage}-{amount}", amount=amount, close_date=close)
            if stage != "discover":
                walker.to(opp, stage)
        walker.create(
            name="override", amount="50000", close_date=dt.date(2026, 1, 1), probability_override=90
        )
        lost = walker.create(name="lost", amount="800000", close_date=dt.date(2026, 3, 20))
        lost = ps.opportunity_advance(
            opportunity=lost, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
        )
    with clock.frozen_at(at(dt.date(2026, 2, 1))):
        ps.opportunity_lose(opportunity=lost, actor=seller, reason="price")


@pytest.fixture
def targets(org):
    """Company 500,000 a month in Q1; the seller 300,000 in January and February (600,000 ≤
    booked); Beijing 2,000,000 in March; the Shanghai seller 100,000 in January; one company
    target outside the period."""
    for month in (1, 2, 3):
        target_set(actor=None, month=dt.date(2026, month, 1), amount="500000")
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="999999")
    for month in (1, 2):
        target_set(actor=None, month=dt.date(2026, month, 1), amount="300000", user=org["seller"])
    target_set(actor=None, month=dt.date(2026, 3, 1), amount="2000000", branch=org["beijing"])
    target_set(actor=None, month=dt.date(2026, 1, 1), amount="100000", user=org["sh_seller"])


# --- periods --------------------------------------------------------------------------------


def test_periods_parse():
    assert (Q1.start, Q1.end) == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    assert parse_period("2026q4").end == dt.date(2026, 12, 31)
    march = parse_period("2026-03")
    assert (march.label, march.start, march.end) == ("2026-03", dt.date(2026, 3, 1), march.end)
    assert parse_period("2028-02").end == dt.date(2028, 2, 29)
    assert Q1.months() == [dt.date(2026, m, 1) for m in (1, 2, 3)]
    for bad in ("2026Q5", "2026-13", "Q1 2026", "2026", "", "2026-3"):
        with pytest.raises(ValueError):
            parse_period(bad)


@pytest.mark.parametrize("command", ["forecast", "plan", "targets"])
def test_a_bad_period_is_a_command_error(db, command):
    extra = ["--target", "100"] if command == "plan" else []
    with pytest.raises(CommandError, match="not a period"):
        run(command, "--period", "2026Q5", *extra)


# --- booked and weighted --------------------------------------------------------------------


def test_booked_and_weighted_are_exact(deals, org, playbook):
    found = period_deals(scope_of(org["manager"], playbook), Q1)
    assert found.booked == Decimal("1000000.00")
    assert sorted(found.probabilities) == [10, 25, 40, 60, 80, 90]
    # The probability used is each deal's effective probability.
    in_q1 = Opportunity.objects.filter(status="open", close_date__lte=Q1.end)
    assert sorted(o.probability for o in in_q1) == sorted(found.probabilities)
    # 1,000,000 + 10,000.005 + 50,000 + 120,000 + 240,000 + 400,000 + 45,000
    assert found.weighted == Decimal("1865000.005")
    data = forecast(scope_of(org["manager"], playbook), Q1, runs=1000)
    assert (data["booked"], data["weighted"], data["open_deals"]) == (
        "1000000.00",
        "1865000.005",
        6,
    )
    march = forecast(scope_of(org["manager"], playbook), parse_period("2026-03"), runs=10)
    assert (march["booked"], march["weighted"]) == ("0.00", "650000.005")
    # The SQL sums the pages use give the same figures.
    assert period_weighted(scope_of(org["manager"], playbook), Q1) == (
        Decimal("1000000.00"),
        Decimal("1865000.005"),
        6,
    )
    assert period_weighted(scope_of(org["sh_manager"], playbook), Q1) == (0, 0, 0)


def test_another_branch_manager_sees_zeros(deals, targets, org, playbook):
    data = forecast(scope_of(org["sh_manager"], playbook), Q1, runs=500)
    assert (data["booked"], data["weighted"], data["open_deals"]) == ("0.00", "0.00", 0)
    assert data["simulated"] == {"runs": 500, "p10": "0.00", "p50": "0.00", "p90": "0.00"}
    assert data["target"] == "1500000.00"
    assert data["p_hit_target"] == 0.0


# --- simulation -----------------------------------------------------------------------------


def test_certain_deals_simulate_to_the_deterministic_sum():
    deals = PeriodDeals(
        booked=Decimal("1000.10"),
        amounts=[Decimal("0.07"), Decimal("123456.78"), Decimal("5"), Decimal("999.99")],
        probabilities=[100, 0, 100, 0],
    )
    sim = simulate(deals, runs=2000, seed=3)
    assert sim.p10 == sim.p50 == sim.p90 == Decimal("1005.17")
    assert sim.p_hit(Decimal("1005.17")) == 1.0
    assert sim.p_hit(Decimal("1005.18")) == 0.0
    nothing = simulate(PeriodDeals(Decimal("12.34"), [], []), runs=10)
    assert nothing.p10 == nothing.p90 == Decimal("12.34")


def test_the_simulation_is_reproducible(deals, targets, org, playbook):
    scope = scope_of(org["manager"], playbook)
    first = forecast(scope, Q1, runs=3000, seed=7)
    assert forecast(scope, Q1, runs=3000, seed=7) == first
    assert forecast(scope, Q1, runs=3000, seed=8)["simulated"] != first["simulated"]
    # Chunked draws read the generator's stream in order: the result does not depend on them.
    found = period_deals(scope, Q1)
    import loudou.analytics.forecast as module

    whole = simulate(found, runs=3000, seed=7).bookings_cents
    saved = module.MAX_DRAW_CELLS
    module.MAX_DRAW_CELLS = 7 * len(found.amounts)
    try:
        chunked = simulate(found, runs=3000, seed=7).bookings_cents
    finally:
        module.MAX_DRAW_CELLS = saved
    assert np.array_equal(whole, chunked)


def test_target_and_its_chance(deals, targets, org, playbook):
    company = forecast(scope_of(org["executive"], playbook), Q1, runs=2000)
    assert company["target"] == "1500000.00"
    assert 0.0 < company["p_hit_target"] < 1.0
    # The seller's own target (600,000) is below what is booked: every run meets it.
    seller = forecast(scope_of(org["executive"], playbook, owner_id=org["seller"].pk), Q1)
    assert (seller["target"], seller["p_hit_target"]) == ("600000.00", 1.0)
    # Beijing's target is set for March only; none is set for Tianjin.
    out = json.loads(run("forecast", "--period", "2026Q1", "--branch", "bj", "--json"))
    assert out["target"] == "2000000.00"
    out = json.loads(run("forecast", "--period", "2026Q1", "--branch", "tj", "--json"))
    assert (out["target"], out["p_hit_target"], out["booked"]) == (None, None, "0.00")


def test_the_mean_of_the_runs_is_the_weighted_forecast(deals, org, playbook):
    found = period_deals(scope_of(org["manager"], playbook), Q1)
    sim = simulate(found, runs=20_000, seed=11)
    mean = Decimal(repr(float(sim.bookings_cents.mean()))) / 100
    assert abs(mean - found.weighted) / found.weighted < Decimal("0.02")


@settings(max_examples=15, deadline=None)
@given(
    booked=st.integers(0, 10**9),
    deals=st.lists(st.tuples(st.integers(0, 10**10), st.integers(0, 100)), max_size=30),
    seed=st.integers(0, 2**32),
)
def test_percentiles_are_ordered_and_above_booked(booked, deals, seed):
    found = PeriodDeals(
        Decimal(booked) / 100,
        [Decimal(cents) / 100 for cents, _p in deals],
        [p for _c, p in deals],
    )
    sim = simulate(found, runs=500, seed=seed)
    assert found.booked <= sim.p10 <= sim.p50 <= sim.p90
    assert sim.p90 <= found.booked + sum(found.amounts, Decimal(0))
    hit = sim.p_hit(found.weighted)
    assert hit is not None and 0.0 <= hit <= 1.0


# --- commands -------------------------------------------------------------------------------


def test_forecast_command_json_and_table(deals, targets):
    data = json.loads(
        run("forecast", "--period", "2026Q1", "--simulations", "2000", "--seed", "5", "--json")
    )
    assert set(data) == {
        "period",
        "booked",
        "weighted",
        "simulated",
        "target",
        "p_hit_target",
        "open_deals",
        "probabilities",
    }
    assert data["probabilities"]["source"] == "deal"
    assert set(data["simulated"]) == {"runs", "p10", "p50", "p90"}
    assert data["period"] == "2026Q1"
    assert (data["booked"], data["weighted"], data["target"]) == (
        "1000000.00",
        "1865000.005",
        "1500000.00",
    )
    assert data["simulated"]["runs"] == 2000
    for key in ("p10", "p50", "p90"):
        assert Decimal(data["simulated"][key]) == Decimal(data["simulated"][key]).quantize(
            Decimal("0.01")
        )
    table = run("forecast", "--period", "2026-02", "--lang", "en")
    assert "Weighted forecast" in table and "1,000,000.00" in table
    with pytest.raises(CommandError):
        run("forecast", "--period", "2026Q1", "--simulations", "0")


# --- plan (倒推) ---------------------------------------------------------------------------


@pytest.fixture
def history(deals, walker, org):
    """Beside the deals above (2 won, 1 lost at intent): 2 lost at discover, 1 more at intent,
    1 at 立项 (project). Closed deals that reached each stage: discover 7, intent 5, project 3,
    recognition 2, negotiation 2."""
    seller = org["seller"]
    lost_at = ["discover", "discover", "intent", "project"]
    with clock.frozen_at(at(dt.date(2025, 11, 3))):
        created = []
        for i, stage in enumerate(lost_at):
            opp = walker.create(name=f"h{i}", amount="123456", close_date=dt.date(2025, 12, 31))
            if stage != "discover":
                opp = walker.to(opp, stage)
            created.append(opp)
    with clock.frozen_at(at(dt.date(2025, 12, 1))):
        for opp in created:
            ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")


def test_plan_needs_by_stage(history, org, playbook):
    data = plan(scope_of(org["manager"], playbook), Q1, Decimal("3000000"))
    assert (data["target"], data["booked"], data["gap"]) == (
        "3000000.00",
        "1000000.00",
        "2000000.00",
    )
    # Won: 1,000,000 and 700,000.
    assert data["average_won_amount"] == "850000.00"
    stages = {s["key"]: s for s in data["stages"]}
    assert list(stages) == ["discover", "intent", "project", "recognition", "negotiation"]
    discover, intent, project = stages["discover"], stages["intent"], stages["project"]
    # discover: 2 of 7 closed won → 2,000,000 × 7/2 = 7,000,000 → 7,000,000 / 850,000 → 9 deals.
    # Days from entering discover to the win: 36 (Jan 5 → Feb 10) and 75 (Oct 1 → Dec 15).
    assert discover == {
        "key": "discover",
        "name": discover["name"],
        "closed_reached": 7,
        "conversion_to_won": round(2 / 7, 4),
        "needed_amount": "7000000.00",
        "needed_count": 9,
        "median_days_to_won": 55.5,
        "by_date": dt.date(2026, 3, 31) - dt.timedelta(days=56),
        "note": None,
    }
    # intent: 2 of 5 → 5,000,000 → 6 deals; days 21 (Jan 20 → Feb 10) and 45 (Oct 31 → Dec 15).
    assert (intent["closed_reached"], intent["conversion_to_won"]) == (5, 0.4)
    assert (intent["needed_amount"], intent["needed_count"]) == ("5000000.00", 6)
    assert (intent["median_days_to_won"], intent["by_date"]) == (33, dt.date(2026, 2, 26))
    # project: only 3 closed deals reached it: too thin for a conversion.
    assert project["closed_reached"] == 3
    assert project["conversion_to_won"] is None and project["needed_amount"] is None
    assert project["needed_count"] is None and "Only 3 closed deals" in project["note"]
    # Its time to win is still known: 21 (won-in) and 0 (won-out went through it on the day it won).
    assert (project["median_days_to_won"], project["by_date"]) == (10.5, dt.date(2026, 3, 20))
    assert stages["negotiation"]["median_days_to_won"] == 0


def test_plan_when_the_target_is_already_booked(history, org, playbook):
    data = plan(scope_of(org["manager"], playbook), Q1, Decimal("900000"))
    assert data["gap"] == "0.00"
    discover = data["stages"][0]
    assert (discover["needed_amount"], discover["needed_count"]) == ("0.00", 0)


def test_plan_command_json(history):
    data = json.loads(
        run("plan", "--target", "3,000,000", "--period", "2026Q1", "--json", "--as", "manager")
    )
    assert set(data) >= {"period", "target", "booked", "stages"}
    assert set(data["stages"][0]) >= {
        "key",
        "needed_count",
        "needed_amount",
        "by_date",
        "conversion_to_won",
        "median_days_to_won",
        "note",
    }
    assert data["stages"][0]["by_date"] == "2026-02-03"
    assert data["stages"][1]["needed_amount"] == "5000000.00"
    # A branch manager elsewhere has no history to plan from.
    other = json.loads(
        run("plan", "--target", "100", "--period", "2026Q1", "--json", "--as", "sh_manager")
    )
    assert all(s["needed_amount"] is None and s["note"] for s in other["stages"])
    assert "Needed amount" in run(
        "plan", "--target", "3000000", "--period", "2026Q1", "--lang", "en"
    )
    with pytest.raises(CommandError):
        run("plan", "--target", "-5", "--period", "2026Q1")


# --- targets view ---------------------------------------------------------------------------


def test_targets_view(deals, targets, org, playbook):
    data = targets_view(scope_of(org["executive"], playbook), Q1, runs=1000)
    rows = {(r["kind"], r["key"]): r for r in data["rows"]}
    assert list(rows) == [
        ("person", "seller"),
        ("person", "sh_seller"),
        ("branch", "bj"),
        ("company", None),
    ]
    seller = rows[("person", "seller")]
    assert (seller["target"], seller["booked"], seller["weighted"]) == (
        "600000.00",
        "1000000.00",
        "1865000.005",
    )
    assert rows[("branch", "bj")]["target"] == "2000000.00"
    assert rows[("company", None)]["target"] == "1500000.00"
    assert rows[("person", "sh_seller")]["booked"] == "0.00"
    p50 = Decimal(rows[("company", None)]["p50"])
    assert Decimal("1000000") <= p50 <= Decimal("2550000.05")

    # Shanghai's manager sees Shanghai's people only, and no company row: only part of the
    # company's deals are visible to them.
    mine = targets_view(scope_of(org["sh_manager"], playbook), Q1, runs=100)
    assert [(r["kind"], r["key"]) for r in mine["rows"]] == [("person", "sh_seller")]
    assert mine["rows"][0]["booked"] == "0.00"
    # A seller sees their own row.
    own = targets_view(scope_of(org["seller"], playbook), Q1, runs=100)
    assert [r["key"] for r in own["rows"]] == ["seller"]


def test_targets_command(deals, targets):
    data = json.loads(run("targets", "--period", "2026Q1", "--branch", "north", "--json"))
    assert data["period"] == "2026Q1"
    assert [(r["kind"], r["key"]) for r in data["rows"]] == [("person", "seller"), ("branch", "bj")]
    assert set(data["rows"][0]) == {
        "kind",
        "key",
        "name",
        "target",
        "booked",
        "weighted",
        "p50",
        "p_hit_target",
    }
    assert "Simulated P50" in run("targets", "--period", "2026Q1", "--lang", "en")
