"""The reads under the fast flow, as-of funnel and weighted forecast: amounts, dates and texts as
numpy columns (`loudou.analytics.rows`), exactly as SQL computes them; the flow's ordering of the
spans (`flow._by_deal`), which trusts the index's order only after checking it; and the weighted
forecast's one-sum read."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics import flow as flow_module
from loudou.analytics import forecast, rows
from loudou.analytics.flow import _by_deal, pipeline_flow
from loudou.analytics.forecast import parse_period, period_deals, period_weighted
from loudou.analytics.models import StateSpan
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import end_of_day, in_cents
from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from tests.analytics.test_flow import at, d, summary, walked_flow

# Amounts with cents, some that a binary float cannot hold (0.1, 0.29), the largest a money field
# holds, and some above the bound where the numpy read hands over to SQL.
AMOUNTS = [
    Decimal("0.00"),
    Decimal("0.01"),
    Decimal("0.10"),
    Decimal("0.29"),
    Decimal("1234.56"),
    Decimal("4999999.99"),
    Decimal("9999999999999.99"),
    Decimal("10000000000000.00"),
    Decimal("9999999999999999.99"),
    Decimal("1000000"),
]


@pytest.fixture
def deals(walker):
    return [walker.create(name=f"deal {i}") for i in range(3)]


def read(qs, *fields):
    """columns() as {id: tuple of Python values}."""
    ids, *values = rows.columns(qs, "pk", *fields)
    return {
        int(pk): tuple(v.item() if hasattr(v, "item") else v for v in row)
        for pk, *row in zip(ids, *values, strict=True)
    }


@pytest.mark.parametrize("amount", AMOUNTS)
def test_amounts_read_as_sql_cents(deals, amount):
    """Whatever the amount, the numpy read equals the cents SQL computes (`in_cents`), and under
    10^13 the exact cents of the decimal."""
    Opportunity.objects.filter(pk=deals[0].pk).update(amount=amount)
    Opportunity.objects.filter(pk=deals[1].pk).update(amount=Decimal("12.34"))
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in deals])
    (cents,) = rows.columns(qs, "amount")
    assert cents.dtype == np.int64
    assert read(qs, "amount") == read(qs, in_cents("amount"))
    if amount < Decimal("1e13"):
        assert read(qs, "amount")[deals[0].pk] == (int(amount * 100),)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(0, 10**15 - 1), min_size=3, max_size=3))
def test_random_amounts_read_exactly(deals, cents):
    for opp, value in zip(deals, cents, strict=True):
        Opportunity.objects.filter(pk=opp.pk).update(amount=Decimal(value).scaleb(-2))
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in deals])
    assert read(qs, "amount") == {o.pk: (c,) for o, c in zip(deals, cents, strict=True)}
    assert read(qs, "amount") == read(qs, in_cents("amount"))


def test_dates_and_texts(deals):
    Opportunity.objects.filter(pk=deals[0].pk).update(close_date=dt.date(1969, 12, 31))
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in deals])
    ids, close, status = rows.columns(qs, "pk", "close_date", rows.Text("status"))
    assert close.dtype == np.dtype("datetime64[D]") and status.dtype.kind == "S"
    got = {int(i): (c.item(), s.decode()) for i, c, s in zip(ids, close, status, strict=True)}
    assert got == {pk: (c, s) for pk, c, s in qs.values_list("pk", "close_date", "status")}
    assert rows.columns(qs.none(), rows.Text("status"))[0].size == 0


def test_texts_refuse_commas_and_other_fields(deals):
    Opportunity.objects.filter(pk=deals[0].pk).update(name="one, two")
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in deals])
    with pytest.raises(ValueError):
        rows.columns(qs, rows.Text("name"))
    with pytest.raises(TypeError):
        rows.columns(qs, rows.Text("amount"))
    # Texts of different lengths, one of them empty, and not ASCII.
    Opportunity.objects.filter(pk=deals[0].pk).update(name="")
    Opportunity.objects.filter(pk=deals[1].pk).update(name="财务共享平台")
    assert read(qs, rows.Text("name")) == {
        pk: (name.encode(),) for pk, name in qs.values_list("pk", "name")
    }


def test_spans_read_from_both_indexes_match_the_orm(deals, org):
    seller = org["seller"]
    ps.opportunity_update(opportunity=deals[0], actor=seller, amount="1234.56")
    spans = StateSpan.objects.all()
    got = read(spans, "opportunity_id", "valid_from", rows.Text("status"), "amount", "close_date")
    expected = {
        pk: (opp, rows.moment(start), status.encode(), int(amount * 100), close)
        for pk, opp, start, status, amount, close in spans.values_list(
            "pk", "opportunity_id", "valid_from", "status", "amount", "close_date"
        )
    }
    assert {
        pk: (o, np.datetime64(v, "us"), s, c, np.datetime64(k, "D").astype(dt.date))
        for pk, (o, v, s, c, k) in got.items()
    } == expected


def reference_order(first_deal, deal, valid_from, row_id):
    """The order (deal, valid_from, id) with the spans at the start first, by Python's sort."""
    keys = [(int(x), -1, -1, i) for i, x in enumerate(first_deal)]
    keys += [
        (int(x), int(v.astype(np.int64)), int(r), first_deal.size + i)
        for i, (x, v, r) in enumerate(zip(deal, valid_from, row_id, strict=True))
    ]
    return [k[-1] for k in sorted(keys)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 6), unique=True, max_size=5),
    st.lists(st.tuples(st.integers(1, 6), st.integers(0, 4)), max_size=25),
    st.booleans(),
)
def test_by_deal_orders_like_a_full_sort(first, later, presorted):
    """Whatever order the spans arrive in, `_by_deal` gives (deal, valid_from, id) or, with a
    tie in valid_from inside a deal and no ids, None; with the ids, always the full order."""
    if presorted:
        later = sorted(later, key=lambda x: x[1])
    first_deal = np.array(first, dtype=np.int64)
    deal = np.array([x for x, _ in later], dtype=np.int64)
    valid_from = np.array([10 + v for _, v in later], dtype="datetime64[us]")
    row_id = np.array(np.random.default_rng(len(later)).permutation(len(later)), dtype=np.int64)
    expected = reference_order(first_deal, deal, valid_from, row_id)
    order = _by_deal(first_deal, deal, valid_from)
    tie = len(set(later)) < len(later)  # two spans of a deal start at the same moment
    assert (order is None) == tie
    if order is not None:
        assert order.tolist() == expected
    assert _by_deal(first_deal, deal, valid_from, row_id).tolist() == expected


def test_flow_with_cents_and_changes_at_one_moment(walker, org, playbook, monkeypatch):
    """Amounts with cents and two changes of a deal at the same moment (the spans then tie in
    valid_from and their ids decide): the flow equals the plain walk over history."""
    seller = org["seller"]
    with clock.frozen_at(at(d(3, 1))):
        a = walker.create(name="A", amount="1000.10", close_date=d(5, 15))
        b = walker.create(name="B", amount="2000.29", close_date=d(9, 15))
    with clock.frozen_at(at(d(4, 10))):
        ps.opportunity_update(opportunity=a, actor=seller, amount="1200.55")
        ps.opportunity_update(opportunity=a, actor=seller, close_date=d(8, 1))
        ps.opportunity_update(opportunity=b, actor=seller, close_date=d(6, 1))
        ps.opportunity_update(opportunity=b, actor=seller, amount="2100.01")
    with clock.frozen_at(at(d(5, 2))):
        c = walker.create(name="C", amount="0.29", close_date=d(6, 30))
        ps.opportunity_lose(opportunity=c, actor=seller, reason="price")
    reads = []

    def spy(qs, *fields):
        reads.append(fields)
        return rows.columns(qs, *fields)

    monkeypatch.setattr(flow_module, "columns", spy)
    flow = pipeline_flow(org["manager"], playbook, date_from=d(4, 1), date_to=d(6, 30))
    assert "id" in reads[-1]  # the tie was seen, and the ids read to order it
    walked = walked_flow(playbook, end_of_day(d(3, 31)), end_of_day(d(6, 30)), d(4, 1), d(6, 30))
    assert {b: (flow[b]["count"], flow[b]["amount"]) for b in walked} == walked
    assert summary(flow)["pulled_in"] == (1, "2000.29")  # came in before its raise
    assert summary(flow)["pushed_out"] == (1, "1200.55")
    assert summary(flow)["lost"] == (1, "0.29")


@pytest.mark.parametrize(
    ("amount", "one_sum"),
    [("1234.56", True), ("99999999999.99", True), ("50000000000000.25", False)],
    ids=["small", "1e11", "5e13"],
)
def test_weighted_forecast_is_exact_at_any_size(
    walker, org, playbook, monkeypatch, is_postgres, amount, one_sum
):
    """The weighted forecast's one-sum read (SQLite) and its read by probability give the same
    Decimal, digit for digit, equal to the deals' own sum; from 2^53 cents × percent (5 × 10^13
    at 10 %) the one sum hands over to the read by probability. The previous version of
    `period_weighted` was the read by probability."""
    with clock.frozen_at(at(d(3, 1))):
        walker.create(name="big", amount=amount, close_date=d(5, 15))
        walker.create(name="small", amount="0.29", close_date=d(6, 1))
    scope = Scope(actor=org["manager"], playbook=playbook)
    for period in (parse_period("2026Q2"), parse_period("2027Q1")):  # two deals, none
        with clock.frozen_at(at(d(3, 2))):
            fast = period_weighted(scope, period)
            with monkeypatch.context() as patched:
                patched.setattr(forecast, "_weighted_cents", lambda spans: None)
                by_probability = period_weighted(scope, period)
            assert [str(x) for x in fast] == [str(x) for x in by_probability]
            if one_sum:  # (above, SQLite's float storage already differs from the ORM's read)
                assert fast[1] == period_deals(scope, period).weighted
    if not is_postgres:  # the one sum is SQLite's (PostgreSQL sums numerics exactly)
        spans = StateSpan.objects.filter(status="open", valid_to__gt=at(d(3, 2)))
        assert (forecast._weighted_cents(spans) is not None) == one_sum
