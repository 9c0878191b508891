"""How conversion reads its cohort (`loudou.analytics.cohorts`): the datetimes decoded from
SQLite's texts, the deal and stage read as one key or apart, the reads split over two
connections, and the shortcuts of the estimator's bookkeeping. Each gives what the plain way
gives, to the last bit."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.analytics import cohorts, conversion, rows, sqlite_times
from loudou.analytics.models import OpportunityStay
from loudou.analytics.selectors import day_start
from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity

moments = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
)


def sqlite_text(values, width=None):
    """Datetimes as Django writes them to SQLite (UTC, microseconds only when not zero), None as
    the filler of an open stay's exit; comma-separated, as group_concat gives them."""
    texts = []
    for value in values:
        if value is None:
            texts.append(sqlite_times.NO_EXIT[: width or 19])
        else:
            texts.append(str(value.astimezone(dt.UTC).replace(tzinfo=None)))
    return ",".join(texts).encode()


def expected(values):
    """As `rows.columns` and `rows.seconds` read them (the exact microseconds / 10⁶; that is
    `datetime.timestamp()` until the microseconds outgrow a float's 53 bits, in 2255)."""
    moments = np.array(
        [np.datetime64("NaT", "us") if v is None else rows.moment(v) for v in values]
    )
    return rows.seconds(moments)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(moments, st.none()), min_size=1, max_size=30), st.booleans())
def test_sqlite_datetimes_decode_to_the_timestamp(values, whole_seconds):
    if whole_seconds:  # one width (19), as the bench data: the fixed-width decoding
        values = [None if v is None else v.replace(microsecond=0) for v in values]
    got = sqlite_times.sqlite_seconds(sqlite_text(values), len(values))
    np.testing.assert_array_equal(got, expected(values))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(moments, st.none()), min_size=1, max_size=30))
def test_sqlite_datetimes_with_microseconds_decode_to_the_timestamp(values):
    # Every value with microseconds: width 26, the filler cut to it.
    values = [None if v is None else v.replace(microsecond=v.microsecond or 1) for v in values]
    got = sqlite_times.sqlite_seconds(sqlite_text(values, 26), len(values))
    np.testing.assert_array_equal(got, expected(values))


@pytest.mark.parametrize(
    "text",
    [
        b"2026-02-30 10:00:00",  # no such day
        b"2026-13-01 10:00:00",
        b"2026-01-01 24:00:00",
        b"2026-01-01 10:00:6x",
    ],
)
def test_sqlite_datetimes_that_are_not_refuse_to_decode(text):
    with pytest.raises(ValueError):
        sqlite_times.sqlite_seconds(b"2026-01-01 10:00:00," + text, 2)


def test_sqlite_datetimes_of_another_count_refuse_to_decode():
    with pytest.raises(ValueError):
        sqlite_times.sqlite_seconds(b"2026-01-01 10:00:00,2026-01-01 10:00:01", 3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.integers(0, 60).map(float), st.floats(0, 60)), min_size=1),
)
def test_time_ranks_are_those_of_unique(durations):
    t = np.array(durations)
    times, inverse = np.unique(t, return_inverse=True)
    whole = conversion._whole_days(t)
    rank, n_times = (conversion._day_ranks if whole else conversion._unique_ranks)(t)
    assert n_times == times.size
    np.testing.assert_array_equal(rank, inverse)


def _cells_by_unique(t, e):
    """`_outcome_cells` the plain way: np.unique's ranks, cells counted."""
    times, rank = np.unique(t, return_inverse=True)
    per_cell = np.bincount(rank.ravel() * 3 + e, minlength=3 * times.size)
    cells = np.flatnonzero(per_cell)
    return cells // 3, cells % 3, per_cell[cells], times.size


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(0, 5000).filter(lambda d: d == 0 or d >= 2.0**-40),
                # a microsecond in days, the packed range's ends, ties
                st.sampled_from([0.0, -0.0, 2.0**-40, 1e-6 / 86_400, 0.5, 1.0, 131_071.9]),
            ),
            st.integers(0, 2),
        ),
        min_size=1,
    )
)
def test_cells_by_packed_sort_are_those_of_unique(pairs):
    t = np.array([d for d, _ in pairs])
    e = np.array([o for _, o in pairs], dtype=np.int64)
    got = conversion._sorted_cells(t, e)
    assert got is not None
    expected = _cells_by_unique(t, e)
    for ours, theirs in zip(got[:3], expected[:3], strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert got[3] == expected[3]


@pytest.mark.parametrize("outside", [2.0**-41, 2.0**17, -1.0, np.nan, np.inf])
def test_durations_outside_the_packed_range_take_the_general_way(outside):
    t = np.array([1.5, outside, 3.0])
    e = np.array([1, 2, 0])
    assert conversion._sorted_cells(t, e) is None
    got, expected = conversion._outcome_cells(t, e), _cells_by_unique(t, e)
    for ours, theirs in zip(got[:3], expected[:3], strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert got[3] == expected[3] == 3


@pytest.mark.parametrize("spread", [1, 10**9])  # a table of ids, or a binary search
def test_id_positions(spread):
    ids = np.array([3, 5, 8, 13]) * spread
    wanted = np.array([5, 4, 13, 1, 100, 3]) * spread
    np.testing.assert_array_equal(rows.id_positions(ids, wanted), [1, -1, 3, -1, -1, 0])
    assert rows.id_positions(ids[:0], wanted).tolist() == [-1] * 6


# The cohort as read, against `rows.columns` (the general read of every other analytic).

MOMENTS = [
    dt.datetime(2026, 3, 12, 9, 30, 15, 123457, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 12, 9, 30, 16, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 2, 8, 0, 0, 500001, tzinfo=dt.UTC),
]


def make_deals(walker, org):
    """Deals created, moved, lost and won at moments with and without microseconds."""
    seller, manager = org["seller"], org["manager"]
    made = []
    for i, moment in enumerate(MOMENTS):
        with clock.frozen_at(moment):
            made.append(walker.create(name=f"deal {i}"))
    with clock.frozen_at(MOMENTS[2] + dt.timedelta(days=1, microseconds=7)):
        made[0] = walker.to(made[0], "intent")
        ps.opportunity_lose(opportunity=made[1], actor=seller, reason="price")
        ps.opportunity_win(opportunity=made[3], actor=manager, override_reason="signed")
    return made


def cohort(user, playbook, **kw):
    end = day_start(dt.date(2026, 5, 1))
    return cohorts.read_cohort(
        user, playbook, start=None, end=end, branch_ids=None, owner_id=None, **kw
    )


def assert_read_as_rows_would(got, qs):
    ids, created = rows.columns(qs, "pk", "created_at")
    order = np.argsort(ids)
    np.testing.assert_array_equal(got.ids, ids[order])
    np.testing.assert_array_equal(got.created, rows.seconds(created[order]))
    stays = OpportunityStay.objects.filter(opportunity__in=qs.values("pk"))
    deal, stage, entered, exited = rows.columns(
        stays, "opportunity_id", "stage_id", "entered_at", "exited_at"
    )
    want = sorted(
        zip(deal, stage, rows.seconds(entered), rows.seconds(exited), strict=True),
        key=lambda r: (r[0], r[2]),
    )
    have = sorted(
        zip(got.ids[got.stay_deal], got.stay_stage, got.entered, got.exited, strict=True),
        key=lambda r: (r[0], r[2]),
    )
    assert len(have) == len(want) > len(got.ids)
    for a, b in zip(have, want, strict=True):
        assert a[:3] == b[:3]
        assert a[3] == b[3] or (np.isnan(a[3]) and np.isnan(b[3]))


def test_the_cohort_is_read_exactly(walker, org, playbook):
    make_deals(walker, org)
    for user in (org["executive"], org["manager"]):  # the scan of every deal, the general read
        got = cohort(user, playbook)
        assert_read_as_rows_would(got, Opportunity.objects.visible_to(user))
        assert got.first_created == MOMENTS[0]


def test_deal_and_stage_read_apart_give_the_same(walker, org, playbook, monkeypatch):
    make_deals(walker, org)
    joined = conversion_of(org, playbook)
    monkeypatch.setattr(cohorts, "_KEY_LIMIT", 0)  # as if deal × multiplier could overflow
    assert conversion_of(org, playbook) == joined


def conversion_of(org, playbook):
    with clock.frozen_at(dt.datetime(2026, 4, 20, tzinfo=dt.UTC)):
        return [
            conversion.conversion_by_stage(org[user], playbook, **kw)
            for user in ("executive", "manager")
            for kw in ({}, {"date_from": dt.date(2026, 3, 20)})
        ]


def test_reads_on_two_connections_give_the_same(
    transactional_db, walker, org, playbook, monkeypatch, read_calls
):
    """Outside a transaction, a large read runs partly in a worker thread on a connection of its
    own (committed data only: hence a transactional test)."""
    made = make_deals(walker, org)
    alone = conversion_of(org, playbook)
    read_calls.clear()
    monkeypatch.setattr(cohorts, "_PARALLEL_STAYS", 0)
    assert conversion_of(org, playbook) == alone
    assert read_calls and all(read_calls)
    assert conversion_of(org, playbook)[0]["overall"]["reached"] == len(made)
