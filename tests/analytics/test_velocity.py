"""Time in stage, cycle time to won and stalled deals, checked against hand calculations."""

import datetime as dt
import io
import json
import math
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.velocity import km_median, percentiles, stalled, velocity
from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.playbooks.services import playbook_load_file
from tests.conftest import INTENT_EVIDENCE

NOW = dt.date(2026, 3, 12)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def jan(day: int) -> dt.date:
    return dt.date(2026, 1, 1) + dt.timedelta(days=day - 1)


def by_key(data):
    return {s["key"]: s for s in data["stages"]}


# --- Kaplan–Meier and percentiles on their own ---------------------------------------------


def test_km_median_by_hand():
    # Events at 2, 3, 5 (ended), censored at 3 and 8. n = 5 at risk at first.
    # t=2: n=5, d=1 → S = 4/5 = 0.8
    # t=3: at risk: times ≥ 3 = {3, 3c, 5, 8c} → n=4, d=1 → S = 0.8 × 3/4 = 0.6
    # t=5: at risk {5, 8c} → n=2, d=1 → S = 0.6 × 1/2 = 0.3 ≤ 0.5 → median 5
    assert km_median([2, 3, 3, 5, 8], [True, True, False, True, False]) == 5.0
    # Exactly 0.5 counts: t=1: n=2, d=1 → S = 1/2.
    assert km_median([1, 4], [True, False]) == 1.0
    # Never reaches 0.5: t=1: n=3 → S = 2/3; the rest are censored.
    assert km_median([1, 2, 3], [True, False, False]) is None
    assert km_median([5, 6], [False, False]) is None
    assert km_median([], []) is None
    # Ties: two events at 4 out of 4 at risk → S = 1/2 at t=4.
    assert km_median([4, 4, 7, 9], [True, True, True, False]) == 4.0
    # Not a bound of the plain median: [10, 20], nobody waiting → median 15, KM median 10.
    assert km_median([10, 20], [True, True]) == 10.0
    assert percentiles([10, 20])[0] == 15.0


def test_percentiles_interpolate_linearly():
    # Sorted [10, 20, 30, 40]: median halfway 20–30 = 25; p80 at rank 0.8 × 3 = 2.4 → 30 + 0.4 × 10.
    median, p80 = percentiles([40, 10, 30, 20])
    assert median == pytest.approx(25.0)
    assert p80 == pytest.approx(34.0)
    assert percentiles([]) == (None, None)
    assert percentiles([7.5]) == (7.5, 7.5)


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=40))
def test_km_median_without_censoring_is_the_lower_median(values):
    """With nothing censored, S(t) = 1 − F(t), so S ≤ 0.5 first at the ⌈n/2⌉-th smallest value."""
    ordered = sorted(values)
    assert km_median(values, [True] * len(values)) == ordered[math.ceil(len(values) / 2) - 1]


@given(
    st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), st.booleans()), max_size=40),
)
def test_km_median_is_a_observed_time_or_none(items):
    times = [t for t, _ in items]
    ended = [e for _, e in items]
    result = km_median(times, ended)
    if result is not None:
        assert result >= 0
        assert result in [t for t, e in items if e]
    if not any(ended):
        assert result is None


# --- The funnel: a hand-worked history ------------------------------------------------------


@pytest.fixture
def history(walker, org):
    """Six deals created Jan 1 (10:00) in `discover`; now is Mar 12 (70 days later).

    A: → intent Jan 11; walked to won Feb 10 (project, recognition, negotiation: 0 days each)
    B: → intent Jan 21, still there (50 days)
    C: lost in discover Jan 31
    D: → intent Feb 10, still there (30 days)
    E: still in discover (70 days: over discover's max_days 60 → stalled)
    F: → intent Jan 6, back to discover Jan 16, still there (55 days)
    """
    seller = org["seller"]
    deals = {}
    with clock.frozen_at(at(jan(1))):
        for name in "ABCDEF":
            deals[name] = walker.create(name=name, close_date=dt.date(2026, 4, 30))

    def advance(name, day):
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
    advance("D", jan(41))  # Feb 10
    with clock.frozen_at(at(jan(41))):
        deals["A"] = walker.to(deals["A"], "closed")
    return deals


def test_velocity_by_hand(history, org, playbook):
    with clock.frozen_at(at(NOW)):
        data = velocity(org["manager"], playbook)
    stages = by_key(data)
    assert list(stages) == ["discover", "intent", "project", "recognition", "negotiation"]

    # discover: completed A 10, B 20, C 30 (lost), D 40, F 5 (its first stay);
    # still there: E 70, F 55 (its second stay, from Jan 16).
    # Sorted [5, 10, 20, 30, 40]: median 20; p80 at rank 0.8 × 4 = 3.2 → 30 + 0.2 × 10 = 32.
    # KM, n = 7: t=5 S=6/7; t=10 S=6/7·5/6=5/7; t=20 S=5/7·4/5=4/7≈0.571;
    #            t=30 S=4/7·3/4=3/7≈0.429 ≤ 0.5 → 30.
    assert stages["discover"] | {"name": None} == {
        "key": "discover",
        "name": None,
        "completed_stays": 5,
        "median_days": 20.0,
        "p80_days": 32.0,
        "km_median_days": 30.0,
        "open_stays": 2,
    }
    # intent: completed F 10 (moved back), A 30; still there B 50, D 30.
    # Median of [10, 30] = 20; p80 at rank 0.8 → 10 + 0.8 × 20 = 26.
    # KM, n = 4: t=10 S=3/4; t=30 at risk A, D (censored at 30 counts), B → n=3:
    #            S = 3/4 · 2/3 = 1/2 ≤ 0.5 → 30.
    intent = stages["intent"]
    assert (intent["completed_stays"], intent["open_stays"]) == (2, 2)
    assert (intent["median_days"], intent["p80_days"], intent["km_median_days"]) == (20, 26, 30)
    # A went through project, recognition and negotiation in one moment: stays of 0 days.
    for key in ("project", "recognition", "negotiation"):
        assert stages[key]["completed_stays"] == 1
        assert (stages[key]["median_days"], stages[key]["km_median_days"]) == (0.0, 0.0)
        assert stages[key]["open_stays"] == 0

    # Cycle to won: A, created Jan 1, won Feb 10 = 40 days. Open B, D, E, F are censored at
    # 70 days; lost C is left out. KM: t=40 n=5 → S = 4/5, never ≤ 0.5 → None.
    assert data["cycle_to_won"] == {
        "completed": 1,
        "median_days": 40.0,
        "p80_days": 40.0,
        "km_median_days": None,
    }


def test_velocity_for_a_period_of_entry(history, org, playbook):
    with clock.frozen_at(at(NOW)):
        data = velocity(org["manager"], playbook, entered_from=jan(10), entered_to=jan(31))
    stages = by_key(data)
    # Entered Jan 10–31: discover: only F's second stay (Jan 16, still open, 55 days).
    assert stages["discover"]["completed_stays"] == 0
    assert stages["discover"]["open_stays"] == 1
    assert stages["discover"]["median_days"] is None
    assert stages["discover"]["km_median_days"] is None
    # intent: A (Jan 11, 30 days, completed), B (Jan 21, open 50). KM: t=30 n=2 → S=1/2 → 30.
    assert stages["intent"]["completed_stays"] == 1
    assert stages["intent"]["open_stays"] == 1
    assert stages["intent"]["km_median_days"] == 30.0
    # No deal was created in the period.
    assert data["cycle_to_won"]["completed"] == 0
    assert data["cycle_to_won"]["median_days"] is None


def test_velocity_respects_visibility(history, org, playbook):
    with clock.frozen_at(at(NOW)):
        other = velocity(org["sh_manager"], playbook)
        everyone = velocity(org["executive"], playbook)
    for stage in other["stages"]:
        assert (stage["completed_stays"], stage["open_stays"], stage["median_days"]) == (0, 0, None)
    assert other["cycle_to_won"]["completed"] == 0
    assert by_key(everyone)["discover"]["completed_stays"] == 5


def test_velocity_reads_in_a_few_queries(
    history, walker, org, playbook, django_assert_max_num_queries
):
    """Ten deals or ten thousand: the same few queries (no query per deal or per stay). Velocity:
    the branches, the stays, the deals, their won stays (a fifth, the won history rows, only
    for deals imported as won); stalled: the branches, the stages, the overdue stays, the
    scope's open deals (for a user who sees fewer than all), the deals' details."""
    with clock.frozen_at(at(jan(20))):
        for i in range(4):
            walker.create(name=f"more {i}")
    with clock.frozen_at(at(NOW)):
        velocity(org["manager"], playbook)  # warm the per-process stage cache
        with django_assert_max_num_queries(4):
            velocity(org["manager"], playbook)
        with django_assert_max_num_queries(5):
            data = stalled(org["manager"], playbook)
    assert len(data["deals"]) == 1


# --- Stalled --------------------------------------------------------------------------------


def test_stalled_by_max_days(history, org, playbook):
    with clock.frozen_at(at(NOW)):
        data = stalled(org["manager"], playbook)
        other = stalled(org["sh_manager"], playbook)
    # discover max_days 60: E is 70 days in (stalled, 10 over); F only 55 since Jan 16.
    # intent max_days 60: B 50 and D 30 days: not stalled.
    assert data["as_of"] == "2026-03-12"
    assert [d["name"] for d in data["deals"]] == ["E"]
    deal = data["deals"][0]
    assert deal["id"] == history["E"].pk
    assert deal["account"] == "华北电力集团"
    assert deal["owner"] == "seller"
    assert (deal["stage"], deal["days_in_stage"]) == ("discover", 70.0)
    assert (deal["threshold_days"], deal["threshold_source"]) == (60.0, "max_days")
    assert (deal["amount"], deal["close_date"]) == ("1000000.00", "2026-04-30")
    assert other["deals"] == []


QUICK = """\
key: quick
name: {zh: 快速流程, en: Quick pipeline}
stages:
  - key: lead
    kind: open
    name: {zh: 线索, en: Lead}
    probability: 10
    owners: [account_manager]
  - key: deal
    kind: open
    name: {zh: 商谈, en: Deal}
    probability: 50
    max_days: 30
    owners: [account_manager]
  - key: review
    kind: open
    name: {zh: 评审, en: Review}
    probability: 70
    owners: [account_manager]
  - key: won
    kind: won
    name: {zh: 赢单, en: Won}
    probability: 100
    owners: [account_manager]
"""


def test_stalled_by_historical_p80(walker, org, tmp_path: Path):
    """`lead` has no max_days: its threshold is the p80 of completed lead stays."""
    path = tmp_path / "quick.yaml"
    path.write_text(QUICK, encoding="utf-8")
    quick, _ = playbook_load_file(path=path)
    seller = org["seller"]

    def create(name, day):
        with clock.frozen_at(at(day)):
            return walker.create(name=name, playbook="quick", evidence={})

    def advance(opp, stage, day):
        with clock.frozen_at(at(day)):
            return ps.opportunity_advance(opportunity=opp, to_stage=stage, actor=seller)

    # P1..P4 leave lead after 10, 20, 30, 40 days: p80 = 30 + 0.4 × 10 = 34 (rank 0.8 × 3).
    p = {i: create(f"P{i}", jan(1)) for i in range(1, 5)}
    for i in range(1, 5):
        p[i] = advance(p[i], "deal", jan(1 + 10 * i))
    # P4 moves on to review at once; review has no max_days and no history: never stalled.
    advance(p[4], "review", jan(41))
    create("Q", jan(1))  # 70 days in lead > 34 → stalled by p80, 36 over
    create("R", jan(51))  # 20 days in lead: fine
    with clock.frozen_at(at(NOW)):
        data = stalled(org["manager"], quick)
        data_json = io.StringIO()
        call_command("stalled", "--playbook", "quick", "--json", stdout=data_json)

    # deal (max_days 30): P1 since Jan 11 = 60 days (30 over), P2 50 (20 over), P3 40 (10 over).
    rows = [
        (d["name"], d["stage"], d["days_in_stage"], d["threshold_days"], d["threshold_source"])
        for d in data["deals"]
    ]
    assert rows == [
        ("Q", "lead", 70.0, 34.0, "p80"),
        ("P1", "deal", 60.0, 30.0, "max_days"),
        ("P2", "deal", 50.0, 30.0, "max_days"),
        ("P3", "deal", 40.0, 30.0, "max_days"),
    ]
    assert [d["days_over"] for d in data["deals"]] == [36.0, 30.0, 20.0, 10.0]
    assert json.loads(data_json.getvalue()) == data


# --- Commands -------------------------------------------------------------------------------


def test_velocity_command_json_shape(history):
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("velocity", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"playbook", "stages", "cycle_to_won"}
    assert data["playbook"] == "project-funnel"
    assert set(data["stages"][0]) == {
        "key",
        "name",
        "completed_stays",
        "median_days",
        "p80_days",
        "km_median_days",
        "open_stays",
    }
    assert set(data["cycle_to_won"]) == {"completed", "median_days", "p80_days", "km_median_days"}
    assert data["stages"][0]["p80_days"] == 32.0

    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("velocity", "--from", "2026-01-10", "--to", "2026-01-31", "--json", stdout=out)
    assert json.loads(out.getvalue())["stages"][0]["open_stays"] == 1


def test_stalled_command_json_shape_and_scope(history):
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("stalled", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"playbook", "as_of", "deals"}
    assert set(data["deals"][0]) == {
        "id",
        "name",
        "account",
        "owner",
        "stage",
        "stage_name",
        "days_in_stage",
        "threshold_days",
        "threshold_source",
        "days_over",
        "amount",
        "currency",
        "close_date",
    }
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("stalled", "--as", "sh_manager", "--json", stdout=out)
    assert json.loads(out.getvalue())["deals"] == []
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("stalled", "--branch", "sh", "--json", stdout=out)
    assert json.loads(out.getvalue())["deals"] == []


def test_commands_print_tables(history):
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("velocity", "--lang", "en", stdout=out)
    text = out.getvalue()
    assert "Discover potential opportunities" in text
    assert "32.0" in text  # discover's p80
    assert "Cycle to won" in text

    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command("stalled", "--lang", "en", stdout=out)
    text = out.getvalue()
    assert "2026-03-12" in text
    assert "70.0" in text  # E's days in discover
    assert "60.0 (max days)" in text


# --- Property -------------------------------------------------------------------------------


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 100), st.sampled_from(["stay", "advance", "lose"])),
        min_size=1,
        max_size=5,
    )
)
def test_velocity_figures_are_sane(walker, org, playbook, plan):
    """Property: durations are non-negative, median ≤ p80, and a stage with no completed stay
    has no median or p80 (the KM median need not be ≥ the completed-only median)."""
    seller = org["seller"]
    start = at(dt.date(2026, 1, 1))
    for days, action in plan:
        with clock.frozen_at(start):
            opp = walker.create()
        with clock.frozen_at(start + dt.timedelta(days=days)):
            if action == "advance":
                ps.opportunity_advance(
                    opportunity=opp, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
                )
            elif action == "lose":
                ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")
    with clock.frozen_at(start + dt.timedelta(days=120)):
        data = velocity(org["manager"], playbook)
    for figures in [*data["stages"], data["cycle_to_won"]]:
        count = figures.get("completed_stays", figures.get("completed"))
        values = [figures["median_days"], figures["p80_days"], figures["km_median_days"]]
        assert all(v is None or v >= 0 for v in values)
        if count == 0:
            assert figures["median_days"] is None and figures["p80_days"] is None
        else:
            assert figures["median_days"] <= figures["p80_days"]


def test_cycle_to_won_of_a_deal_without_a_won_stay(history, org, playbook, tmp_path: Path):
    """A won deal with no stay that ended in a win (a history that begins won leaves none): its
    first won history row is its won moment. Beside the hand-worked A (40 days), the imported
    deal counts the days from its creation to its closing (20)."""
    from loudou.analytics.models import OpportunityStay, StayOutcome
    from tests.interop.crm_files import run_import

    (tmp_path / "opportunities.csv").write_text(
        "id,name,account,owner,stage,status,amount,currency,close_date,created_at,closed_at\n"
        "X-1,imported,华北电力集团,seller,closed,won,1000,CNY,2026-02-01,"
        "2026-01-05 10:00,2026-01-25 10:00\n",
        encoding="utf-8",
    )
    with clock.frozen_at(at(NOW)):
        report = run_import("native", str(tmp_path))
        assert report["created"]["opportunities"] == 1, report
        imported = history["A"].__class__.objects.get(name="imported")
        won_stay = OpportunityStay.objects.filter(opportunity=imported, outcome=StayOutcome.WON)
        assert won_stay.count() == 1
        both = velocity(org["manager"], playbook)["cycle_to_won"]
        won_stay.delete()  # the state of a deal whose history begins won
        without = velocity(org["manager"], playbook)["cycle_to_won"]
    # 40 and 20 days: median 30, p80 at rank 0.8 → 20 + 0.8 × 20 = 36.
    assert (both["completed"], both["median_days"], both["p80_days"]) == (2, 30.0, 36.0)
    assert without == both
