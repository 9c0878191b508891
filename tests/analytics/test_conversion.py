"""Conversion per stage: reached / advanced / lost here / open here, the naive, closed-only and
censoring-aware (Aalen–Johansen) rates, worked by hand on deals moved with the real services."""

import datetime as dt
import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.conversion import (
    ADVANCE,
    CENSORED,
    LOST,
    bootstrap_interval,
    conversion_by_stage,
    cumulative_incidence,
)
from loudou.core import clock
from loudou.pipeline import services as ps

D0 = dt.date(2026, 1, 5)
NOW = 40  # the day the tests read the figures
STAGES = ["discover", "intent", "project", "recognition", "negotiation", "closed"]
COUNTS = ("reached", "advanced", "lost_here", "open_here")
RATES = ("naive", "closed_only", "censored_estimate")


def day(n: int) -> dt.datetime:
    """10:00 on day n after Jan 5 2026, so durations come out in whole days."""
    return timezone.make_aware(dt.datetime.combine(D0 + dt.timedelta(days=n), dt.time(10)))


def counts(data):
    return {s["key"]: tuple(s[k] for k in COUNTS) for s in data["stages"]}


def by_key(data):
    return {s["key"]: s for s in data["stages"]}


@pytest.fixture
def deals(walker, org):
    """Eight deals created by the Beijing seller, read on day 40 (F = the furthest stage):

    A  day 0; day 10 a manager moves it discover → project directly (override): skips intent;
       open at project.                                                              F = project
    B  day 0; intent day 5, project day 10, back to intent day 15, project again day 20; open.
                                                                                     F = project
    C  day 0; lost day 5 at discover, reopened day 8, intent day 12; open.           F = intent
    D  day 0; lost at discover day 7.                                                F = discover
    E  day 0; intent day 4, lost there day 9.                                        F = intent
    F  day 0; still at discover.                                                     F = discover
    G  day 0; intent day 2, project day 3, recognition day 25, negotiation day 26, won day 27.
    H  day 37; still at discover (3 days old on day 40).                             F = discover
    """
    seller, manager = org["seller"], org["manager"]
    made = {}
    with clock.frozen_at(day(0)):
        for name in "ABCDEFG":
            made[name] = walker.create(name=name, close_date=dt.date(2026, 3, 31))
    lose = lambda opp: ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")  # noqa: E731
    steps = [
        (2, "G", lambda opp: walker.to(opp, "intent")),
        (3, "G", lambda opp: walker.to(opp, "project")),
        (4, "E", lambda opp: walker.to(opp, "intent")),
        (5, "B", lambda opp: walker.to(opp, "intent")),
        (5, "C", lose),
        (7, "D", lose),
        (8, "C", lambda opp: ps.opportunity_reopen(opportunity=opp, actor=seller, reason="back")),
        (9, "E", lose),
        (
            10,
            "A",
            lambda opp: ps.opportunity_advance(
                opportunity=opp,
                to_stage="project",
                actor=manager,
                override_reason="The CIO confirmed budget and project in one meeting",
            ),
        ),
        (10, "B", lambda opp: walker.to(opp, "project")),
        (12, "C", lambda opp: walker.to(opp, "intent")),
        (
            15,
            "B",
            lambda opp: ps.opportunity_regress(
                opportunity=opp, to_stage="intent", actor=seller, reason="budget frozen"
            ),
        ),
        (
            20,
            "B",
            lambda opp: ps.opportunity_advance(opportunity=opp, to_stage="project", actor=seller),
        ),
        (25, "G", lambda opp: walker.to(opp, "recognition")),
        (26, "G", lambda opp: walker.to(opp, "negotiation")),
        (27, "G", lambda opp: walker.to(opp, "closed")),
    ]
    for n, name, step in steps:
        with clock.frozen_at(day(n)):
            made[name] = step(made[name])
    with clock.frozen_at(day(37)):
        made["H"] = walker.create(name="H", close_date=dt.date(2026, 3, 31))
    return made


def read(user, playbook, **kw):
    with clock.frozen_at(day(NOW)):
        return conversion_by_stage(user, playbook, **kw)


def test_reached_advanced_lost_and_open_per_stage(deals, org, playbook):
    data = read(org["manager"], playbook)
    assert data["playbook"] == "project-funnel"
    # Default cohort: from the earliest creation day to tomorrow (day 41).
    assert data["cohort"] == {"from": "2026-01-05", "to": "2026-02-15"}
    assert counts(data) == {
        # reached = advanced + lost here + open here
        "discover": (8, 5, 1, 2),  # advanced A B C E G; lost D; open F H
        "intent": (5, 3, 1, 1),  # A counts (skipped), B once (revisited); lost E; open C
        "project": (3, 1, 0, 2),  # A B G; G advanced; A B open
        "recognition": (1, 1, 0, 0),
        "negotiation": (1, 1, 0, 0),
        "closed": (1, 0, 0, 0),  # the won stage: reached = won
    }
    overall = data["overall"]
    assert tuple(overall[k] for k in COUNTS) == (8, 1, 2, 5)


def test_naive_and_closed_only_rates(deals, org, playbook):
    stages = by_key(read(org["manager"], playbook))
    assert [(stages[k]["naive"], stages[k]["closed_only"]) for k in STAGES] == [
        (0.625, 0.8333),  # 5/8, 5/6
        (0.6, 0.75),  # 3/5, 3/4
        (0.3333, 1.0),  # 1/3, 1/1
        (1.0, 1.0),
        (1.0, 1.0),
        (None, None),  # nothing comes after won
    ]
    assert stages["closed"]["censored_estimate"] is None
    assert stages["closed"]["interval"] is None


def test_censoring_aware_estimate_by_hand(deals, org, playbook):
    data = read(org["manager"], playbook)
    stages = by_key(data)
    # discover, clocked from creation: G advances day 2, H censored day 3 (created day 37),
    # E advances 4, B 5, D lost 7, A advances 10, C 12 (its lost-and-reopened spell counts in
    # the stay), F censored 40. Aalen–Johansen, S = chance of no outcome yet:
    #   t=2  at risk 8: CIF = 1/8                      S = 7/8
    #   t=3  H censored
    #   t=4  at risk 6: CIF += 7/8 · 1/6 = 7/48        S = 35/48
    #   t=5  at risk 5: CIF += 35/48 · 1/5 = 7/48      S = 28/48
    #   t=7  at risk 4: lost                           S = 21/48
    #   t=10 at risk 3: CIF += 21/48 · 1/3 = 7/48      S = 14/48
    #   t=12 at risk 2: CIF += 14/48 · 1/2 = 7/48      S = 7/48
    # CIF = 6/48 + 4 · 7/48 = 34/48 = 0.70833: between naive 0.625 and closed-only 0.8333.
    assert stages["discover"]["censored_estimate"] == 0.7083
    # intent, from first reaching intent or later: A 0 days (skipped it), G 1, B 5 advance,
    # E lost at 5, C censored at 28 (after every outcome): CIF = 1/5 + 1/5 + 1/5 = 0.6.
    assert stages["intent"]["censored_estimate"] == 0.6
    # project: G advances after 22 days; A and B are censored at 30: CIF = 1/3.
    assert stages["project"]["censored_estimate"] == 0.3333
    # overall (won vs lost from creation): H censored 3, D lost 7, E lost 9, G won 27, the rest
    # censored 40: S = 6/7 after day 7 and 5/7 after day 9, CIF = 5/7 · 1/5 = 1/7.
    assert data["overall"]["censored_estimate"] == 0.1429
    assert (data["overall"]["naive"], data["overall"]["closed_only"]) == (0.125, 0.3333)
    for figure in [*data["stages"][:-1], data["overall"]]:
        lo, hi = figure["interval"]
        assert 0.0 <= lo <= figure["censored_estimate"] <= hi <= 1.0
    # Seeded: the same data gives the same interval.
    assert read(org["manager"], playbook)["overall"]["interval"] == data["overall"]["interval"]


def test_cohort_window_and_visibility(deals, org, playbook):
    late = read(org["manager"], playbook, date_from=dt.date(2026, 2, 1))
    assert late["cohort"] == {"from": "2026-02-01", "to": "2026-02-15"}
    assert counts(late)["discover"] == (1, 0, 0, 1)  # H only
    early = read(org["manager"], playbook, date_to=dt.date(2026, 1, 6))
    assert early["overall"]["reached"] == 7

    other_branch = read(org["sh_manager"], playbook)
    assert all(c == (0, 0, 0, 0) for c in counts(other_branch).values())
    assert other_branch["overall"] == {
        "reached": 0,
        "advanced": 0,
        "lost_here": 0,
        "open_here": 0,
        "naive": None,
        "closed_only": None,
        "censored_estimate": None,
        "interval": None,
    }
    assert other_branch["cohort"]["to"] == "2026-02-15"
    assert read(org["executive"], playbook)["overall"]["reached"] == 8


def test_command_json_shape(deals, playbook):
    out = io.StringIO()
    with clock.frozen_at(day(NOW)):
        call_command(
            "conversion", "--from", "2026-01-01", "--to", "2026-03-01", "--json", stdout=out
        )
    data = json.loads(out.getvalue())
    assert set(data) == {"playbook", "cohort", "stages", "overall"}
    assert data["cohort"] == {"from": "2026-01-01", "to": "2026-03-01"}
    assert [s["key"] for s in data["stages"]] == STAGES
    keys = {*COUNTS, *RATES, "interval"}
    assert all(set(s) == {"key", *keys} for s in data["stages"])
    assert set(data["overall"]) == keys
    assert data["stages"][0]["censored_estimate"] == 0.7083
    assert len(data["stages"][0]["interval"]) == 2


def test_command_table_names_each_rate(deals):
    out = io.StringIO()
    with clock.frozen_at(day(NOW)):
        call_command("conversion", "--lang", "en", stdout=out)
    text = " ".join(out.getvalue().split())
    for label in ("naive", "closed only", "censoring-aware", "Aalen–Johansen", "Interval (90%)"):
        assert label in text
    assert "62.5 % (5/8)" in text  # each rate shows the deals behind it
    assert "83.3 % (5/6)" in text
    assert "70.8 % (2 of 8 open)" in text


def test_reads_take_a_fixed_number_of_queries(walker, org, playbook, django_assert_max_num_queries):
    """Two queries for the figures (the cohort, and its stays joined in SQL), whatever its size."""
    seller, manager = org["seller"], org["manager"]
    for i in range(10):
        opp = walker.create(name=f"deal {i}")
        if i % 3 == 1:
            ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")
        elif i % 3 == 2:
            ps.opportunity_win(opportunity=opp, actor=manager, override_reason="signed")
    playbook.ordered_stages()
    with django_assert_max_num_queries(6):
        data = conversion_by_stage(manager, playbook)
    assert data["overall"]["reached"] == 10
    assert (data["overall"]["advanced"], data["overall"]["lost_here"]) == (3, 3)


# The estimator alone.


def product_limit(durations, events):
    """Aalen–Johansen in its textbook product-limit form, one distinct time at a time."""
    durations, events = np.asarray(durations, float), np.asarray(events)
    survival, cif = 1.0, 0.0
    for t in np.unique(durations[events != CENSORED]):
        at_risk = (durations >= t).sum()
        advanced = ((durations == t) & (events == ADVANCE)).sum()
        lost = ((durations == t) & (events == LOST)).sum()
        cif += survival * advanced / at_risk
        survival *= 1 - (advanced + lost) / at_risk
    return cif


def test_aalen_johansen_small_cases_by_hand():
    # Advance day 10, lost day 20, open censored day 5: the censored deal leaves before any
    # outcome, so of the two left one advances: CIF = 1/2.
    assert cumulative_incidence([10, 20, 5], [ADVANCE, LOST, CENSORED]) == 0.5
    # Advance 10, censored 15, lost 20, advance 30: CIF = 1/4 at 10 (S = 3/4); at 20 one of two
    # at risk is lost (S = 3/8); at 30 the last advances: CIF = 1/4 + 3/8 = 5/8. Naive says
    # 2/4, closed-only 2/3.
    assert cumulative_incidence([10, 15, 20, 30], [ADVANCE, CENSORED, LOST, ADVANCE]) == 0.625
    # An outcome and a censoring on the same day: the outcome comes first.
    assert cumulative_incidence([5, 5, 9], [ADVANCE, CENSORED, ADVANCE]) == pytest.approx(1.0)
    assert np.isnan(cumulative_incidence([3, 4], [CENSORED, CENSORED]))


outcomes = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from([ADVANCE, LOST, CENSORED])),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(outcomes)
def test_aalen_johansen_equals_the_product_limit_form(deals_outcomes):
    durations, events = zip(*deals_outcomes, strict=True)
    if all(e == CENSORED for e in events):
        return
    estimate = cumulative_incidence(durations, events)
    assert estimate == pytest.approx(product_limit(durations, events), abs=1e-12)
    assert 0.0 <= estimate <= 1.0 + 1e-12


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from([ADVANCE, LOST])), min_size=1))
def test_nothing_censored_gives_the_closed_only_ratio_exactly(deals_outcomes):
    durations, events = zip(*deals_outcomes, strict=True)
    advanced = sum(e == ADVANCE for e in events)
    assert cumulative_incidence(durations, events) == advanced / len(events)


def test_bootstrap_interval_is_seeded_and_clipped():
    durations = np.array([2, 3, 4, 5, 7, 10, 12, 40], float)
    events = np.array([ADVANCE, CENSORED, ADVANCE, ADVANCE, LOST, ADVANCE, ADVANCE, CENSORED])
    first = bootstrap_interval(durations, events)
    assert first == bootstrap_interval(durations, events)
    lo, hi = first
    assert 0.0 <= lo <= 0.7083 <= hi <= 1.0
    assert bootstrap_interval(np.array([]), np.array([], int)) is None


# Properties on deals moved with the real services.

PLANS = ["open", "lose", "intent_open", "intent_lose", "skip_lose", "skip_open", "win"]
CLOSING = ["lose", "intent_lose", "skip_lose", "win"]


def play(walker, org, plan):
    seller, manager = org["seller"], org["manager"]
    for action in plan:
        opp = walker.create()
        if action.startswith("intent"):
            opp = walker.to(opp, "intent")
        elif action.startswith("skip"):
            opp = ps.opportunity_advance(
                opportunity=opp, to_stage="project", actor=manager, override_reason="skip"
            )
        if action.endswith("lose"):
            ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")
        elif action == "win":
            ps.opportunity_win(opportunity=opp, actor=manager, override_reason="signed")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(st.sampled_from(PLANS), min_size=1, max_size=4))
def test_figures_add_up_and_rates_stay_in_bounds(walker, org, playbook, plan):
    play(walker, org, plan)
    data = conversion_by_stage(org["manager"], playbook)
    reached = [s["reached"] for s in data["stages"]]
    assert reached == sorted(reached, reverse=True)
    assert reached[0] <= data["overall"]["reached"]
    for figure in [*data["stages"][:-1], data["overall"]]:
        assert figure["reached"] == figure["advanced"] + figure["lost_here"] + figure["open_here"]
    for figure in [*data["stages"], data["overall"]]:
        for rate in RATES:
            assert figure[rate] is None or 0.0 <= figure[rate] <= 1.0
        if figure["interval"] is not None:
            lo, hi = figure["interval"]
            assert 0.0 <= lo <= hi <= 1.0


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(st.sampled_from(CLOSING), min_size=1, max_size=4))
def test_with_nothing_open_the_estimate_is_the_closed_only_ratio(walker, org, playbook, plan):
    play(walker, org, plan)
    data = conversion_by_stage(org["manager"], playbook)
    for figure in [*data["stages"][:-1], data["overall"]]:
        assert figure["open_here"] == 0
        assert figure["censored_estimate"] == figure["closed_only"]
