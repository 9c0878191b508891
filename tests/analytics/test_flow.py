"""The pipeline flow (waterfall) between two dates, from history."""

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.flow import BUCKETS, flow_balances, pipeline_flow, start_of_day
from loudou.analytics.selectors import end_of_day, states_at
from loudou.core import clock
from loudou.core.errors import ValidationFailed
from loudou.pipeline import services as ps
from loudou.pipeline.models import OpportunityHistory
from tests.conftest import INTENT_EVIDENCE, PRELIMINARY_LINES

Q2 = {"date_from": dt.date(2026, 4, 1), "date_to": dt.date(2026, 6, 30)}


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def d(month: int, day: int) -> dt.date:
    return dt.date(2026, month, day)


def run(*args: str) -> str:
    """`loudou flow ARGS` for Q2 2026; its standard output."""
    out = io.StringIO()
    call_command("flow", "--from", "2026-04-01", "--to", "2026-06-30", *args, stdout=out)
    return out.getvalue()


def summary(flow):
    """{bucket: (count, amount as str)} for exact comparison."""
    return {b: (flow[b]["count"], str(flow[b]["amount"])) for b in BUCKETS}


@pytest.fixture
def waterfall(walker, org):
    """Deals with a known past around Q2 2026 (the period and close window Apr 1 – Jun 30):

    A  Mar 1 1,000,000 close May 15; Apr 10 raised to 1,200,000         start, end, +200,000
    B  Mar 2   500,000 close Jun 10; May 20 won at 480,000              start, won 480,000, −20,000
    C  Mar 3   300,000 close Jun 20; Apr 20 lost                        start, lost 300,000
    D  Mar 4   400,000 close Jun 30; May 5 close Aug 15 and 350,000;    start, pushed out 350,000,
       Jun 1 raised to 380,000 (outside the pipeline: ignored)          −50,000
    E  Apr 15  600,000 close Jun 15; Jun 5 raised to 650,000            created 600,000, +50,000
    F  Feb 1   700,000 close Sep 30; May 10 close Jun 25 and 750,000    pulled in 750,000
    G  May 1   200,000 close Jun 5; won Jun 5                           created and won 200,000
    H  Mar 5   250,000 close Jun 30; lost Mar 10; reopened May 15       pulled in 250,000
    K  Jan 10  800,000 close Jun 30; untouched                          start, end
    I  Mar 6   900,000 close Dec 31; Jun 1 raised                       never in: ignored
    L  Jul 5   100,000 close Jun 30 (after the period)                  ignored
    """
    seller = org["seller"]

    def create(day, name, amount, close):
        with clock.frozen_at(at(day)):
            return walker.create(name=name, amount=amount, close_date=close)

    def on(day, fn, **kw):
        with clock.frozen_at(at(day)):
            return fn(actor=seller, **kw)

    k = create(d(1, 10), "K", "800000", d(6, 30))
    f = create(d(2, 1), "F", "700000", d(9, 30))
    a = create(d(3, 1), "A", "1000000", d(5, 15))
    b = create(d(3, 2), "B", "500000", d(6, 10))
    c = create(d(3, 3), "C", "300000", d(6, 20))
    dd = create(d(3, 4), "D", "400000", d(6, 30))
    h = create(d(3, 5), "H", "250000", d(6, 30))
    i = create(d(3, 6), "I", "900000", d(12, 31))
    on(d(3, 10), ps.opportunity_lose, opportunity=h, reason="price")
    on(d(4, 10), ps.opportunity_update, opportunity=a, amount="1200000")
    e = create(d(4, 15), "E", "600000", d(6, 15))
    on(d(4, 20), ps.opportunity_lose, opportunity=c, reason="price")
    g = create(d(5, 1), "G", "200000", d(6, 5))
    on(d(5, 5), ps.opportunity_update, opportunity=dd, close_date=d(8, 15), amount="350000")
    on(d(5, 10), ps.opportunity_update, opportunity=f, close_date=d(6, 25), amount="750000")
    on(d(5, 15), ps.opportunity_reopen, opportunity=h, reason="Budget came back")
    with clock.frozen_at(at(d(5, 20))):
        b = walker.to(b, "negotiation")
        ps.quote_create(
            opportunity=b, actor=seller, kind="formal", lines=PRELIMINARY_LINES, submit=True
        )
        ps.opportunity_win(
            opportunity=b, actor=seller, evidence={"contract_signed": "Signed"}, amount="480000"
        )
    on(d(6, 1), ps.opportunity_update, opportunity=dd, amount="380000")
    on(d(6, 1), ps.opportunity_update, opportunity=i, amount="950000")
    with clock.frozen_at(at(d(6, 5))):
        walker.to(g, "closed")
    on(d(6, 5), ps.opportunity_update, opportunity=e, amount="650000")
    create(d(7, 5), "L", "100000", d(6, 30))
    return {"A": a, "B": b, "C": c, "D": dd, "E": e, "F": f, "G": g, "H": h, "I": i, "K": k}


def test_flow_each_bucket_by_hand(waterfall, org, playbook):
    flow = pipeline_flow(org["manager"], playbook, **Q2)
    assert summary(flow) == {
        "start": (5, "3000000.00"),  # A, B, C, D, K
        "created": (2, "800000.00"),  # E 600,000 + G 200,000
        "pulled_in": (2, "1000000.00"),  # F 750,000 + H 250,000
        "pushed_out": (1, "350000.00"),  # D at the amount it had when pushed
        "amount_change": (0, "180000.00"),  # A +200,000, B −20,000, D −50,000, E +50,000
        "won": (2, "680000.00"),  # B won at 480,000 + G 200,000
        "lost": (1, "300000.00"),  # C
        "end": (5, "3650000.00"),  # A 1.2M, E 650k, F 750k, H 250k, K 800k
    }
    assert flow["window"] == {"from": d(4, 1), "to": d(6, 30)}
    assert flow_balances(flow)


def test_flow_with_another_close_window(waterfall, org, playbook):
    """Q2 activity seen from the Q3 close window: F (Sep 30) was in it and moved out to June
    (pushed out, even though earlier); D moved in to Aug 15 (pulled in) and was raised after."""
    flow = pipeline_flow(org["manager"], playbook, **Q2, window_from=d(7, 1), window_to=d(9, 30))
    assert summary(flow) == {
        "start": (1, "700000.00"),
        "created": (0, "0.00"),
        "pulled_in": (1, "350000.00"),
        "pushed_out": (1, "750000.00"),
        "amount_change": (0, "80000.00"),  # F +50,000 before leaving, D +30,000 after entering
        "won": (0, "0.00"),
        "lost": (0, "0.00"),
        "end": (1, "380000.00"),
    }
    assert flow_balances(flow)


def test_flow_negative_amount_change(walker, org, playbook):
    with clock.frozen_at(at(d(3, 1))):
        opp = walker.create(name="X", amount="500000", close_date=d(6, 30))
    with clock.frozen_at(at(d(5, 1))):
        ps.opportunity_update(opportunity=opp, actor=org["seller"], amount="200000")
    flow = pipeline_flow(org["manager"], playbook, **Q2)
    assert flow["amount_change"] == {"count": 0, "amount": Decimal("-300000.00")}
    assert (flow["end"]["count"], flow["end"]["amount"]) == (1, Decimal("200000.00"))


def test_period_starts_at_midnight(walker, org, playbook):
    """A change at 00:00 on `from` belongs to the period; one a moment before it, to the start.
    A change at 23:59:59 on `to` belongs to the period."""
    before = timezone.make_aware(dt.datetime(2026, 3, 31, 23, 59, 59, 999999))
    with clock.frozen_at(before):
        walker.create(name="before", amount="100", close_date=d(5, 1))
    with clock.frozen_at(at(d(4, 1), 0)):
        walker.create(name="midnight", amount="20", close_date=d(5, 1))
    last = timezone.make_aware(dt.datetime(2026, 6, 30, 23, 59, 59))
    with clock.frozen_at(last):
        late = walker.create(name="late", amount="3", close_date=d(5, 1))
    flow = pipeline_flow(org["manager"], playbook, **Q2)
    assert (flow["start"]["count"], flow["start"]["amount"]) == (1, Decimal("100.00"))
    assert (flow["created"]["count"], flow["created"]["amount"]) == (2, Decimal("23.00"))
    with clock.frozen_at(timezone.make_aware(dt.datetime(2026, 7, 1, 0, 0))):
        ps.opportunity_lose(opportunity=late, actor=org["seller"], reason="price")
    assert pipeline_flow(org["manager"], playbook, **Q2)["lost"]["count"] == 0
    assert start_of_day(d(4, 1)) == end_of_day(d(3, 31))


def test_flow_respects_visibility_and_scope(waterfall, org, playbook):
    zero = {b: (0, "0.00") for b in BUCKETS}
    assert summary(pipeline_flow(org["sh_manager"], playbook, **Q2)) == zero
    assert summary(pipeline_flow(org["tj_seller"], playbook, **Q2)) == zero
    everyone = summary(pipeline_flow(org["executive"], playbook, **Q2))
    assert everyone == summary(pipeline_flow(org["manager"], playbook, **Q2))
    assert everyone["end"] == (5, "3650000.00")
    shanghai = {org["shanghai"].pk}
    assert summary(pipeline_flow(org["executive"], playbook, **Q2, branch_ids=shanghai)) == zero
    mine = pipeline_flow(org["executive"], playbook, **Q2, owner_id=org["seller"].pk)
    assert summary(mine) == everyone


def test_flow_rejects_reversed_dates(org, playbook):
    with pytest.raises(ValidationFailed, match="before it starts"):
        pipeline_flow(org["manager"], playbook, date_from=d(6, 30), date_to=d(4, 1))
    with pytest.raises(CommandError, match="before it starts"):
        run("--window-from", "2026-06-30", "--window-to", "2026-04-01")


def test_flow_command_json_shape(waterfall):
    data = json.loads(run("--json"))
    assert list(data) == ["from", "to", "window", *BUCKETS]
    assert data["from"] == "2026-04-01" and data["to"] == "2026-06-30"
    assert data["window"] == {"from": "2026-04-01", "to": "2026-06-30"}
    assert data["start"] == {"count": 5, "amount": "3000000.00"}
    assert data["pulled_in"] == {"count": 2, "amount": "1000000.00"}
    assert data["amount_change"] == {"count": 0, "amount": "180000.00"}
    assert data["end"] == {"count": 5, "amount": "3650000.00"}
    for bucket in BUCKETS:
        assert set(data[bucket]) == {"count", "amount"}
        assert isinstance(data[bucket]["count"], int)
        assert isinstance(data[bucket]["amount"], str)
    assert flow_balances(data)

    args = ["--window-from", "2026-07-01", "--window-to", "2026-09-30", "--as", "sh_manager"]
    data = json.loads(run(*args, "--json"))
    assert data["window"] == {"from": "2026-07-01", "to": "2026-09-30"}
    assert data["end"] == {"count": 0, "amount": "0.00"}


def test_flow_command_table(waterfall):
    text = run()
    for label in ("Pipeline at the start", "Created", "Pulled in", "Pushed out", "Won", "Lost"):
        assert label in text
    assert "3,650,000.00" in text and "+180,000.00" in text


# ---------------------------------------------------------------------------------------------
# Property: the parts add up, for random histories and random periods and windows.

DAY0 = dt.date(2026, 1, 1)
OPS = ["amount", "close", "both", "advance", "regress", "lose", "reopen"]

op_strategy = st.tuples(
    st.integers(0, 40),  # days after the previous event of the deal
    st.sampled_from([0, 1, 14]),  # and hours (0: at the same moment)
    st.sampled_from(OPS),
    st.integers(0, 3_000_000),
    st.integers(0, 240),  # new close date, days after DAY0
)
deal_strategy = st.tuples(
    st.integers(0, 150),  # created, days after DAY0
    st.sampled_from([0, 10, 23]),  # at this hour (0: exactly midnight)
    st.integers(0, 3_000_000),
    st.integers(0, 240),
    st.lists(op_strategy, max_size=4),
)
period_strategy = st.tuples(
    st.integers(0, 240),  # from, days after DAY0
    st.integers(0, 120),  # length in days
    st.one_of(st.none(), st.tuples(st.integers(0, 240), st.integers(0, 150))),  # window
)


@pytest.fixture
def won_deals(walker, org):
    """Two deals won through every gate (too slow to generate per example)."""
    for name, created, won in (("W1", d(2, 1), d(3, 20)), ("W2", d(4, 1), d(5, 25))):
        with clock.frozen_at(at(created)):
            opp = walker.create(name=name, amount="400000", close_date=won)
        with clock.frozen_at(at(won)):
            walker.to(opp, "closed")


def walked_flow(playbook, start_at, end_at, w_from, w_to):
    """The flow's buckets by the module docstring's walk, deal by deal in plain Python over the
    history rows themselves (no spans, no numpy): the reference the vectorised walk must equal."""
    buckets = {b: [0, Decimal("0.00")] for b in BUCKETS}

    def add(bucket, value):
        buckets[bucket][0] += 1
        buckets[bucket][1] += value

    rows = OpportunityHistory.objects.filter(
        opportunity__playbook__key=playbook.key, valid_from__lte=end_at
    ).order_by("opportunity_id", "valid_from", "id")
    per_deal = {}
    for row in rows:
        per_deal.setdefault(row.opportunity_id, []).append(row)
    for history in per_deal.values():
        before = [r for r in history if r.valid_from <= start_at]
        s = before[-1] if before else None
        walk = [r for r in history if r.valid_from > start_at]

        def in_pipeline(r):
            return r.status == "open" and w_from <= r.close_date <= w_to

        inside = in_start = s is not None and in_pipeline(s)
        was_open = s is not None and s.status == "open"
        entry = exit_ = None
        for r in walk:
            now_in = in_pipeline(r)
            won_here = r.status == "won" and was_open and w_from <= r.close_date <= w_to
            if (now_in or won_here) and not inside and entry is None:
                entry = r.amount
            was_open = r.status == "open"
            if inside and not now_in:
                exit_ = r.amount
            inside = now_in
        if not in_start and entry is None:
            continue
        base = s.amount if in_start else entry
        add("start" if in_start else "created" if s is None else "pulled_in", base)
        last = walk[-1] if walk else s
        final = exit_ if not inside and last.status == "open" else last.amount
        add("end" if inside else "pushed_out" if last.status == "open" else last.status, final)
        buckets["amount_change"][1] += final - base
    buckets["amount_change"][0] = 0
    return {b: tuple(v) for b, v in buckets.items()}


def pipeline_at(user, playbook, moment, w_from, w_to):
    states = states_at(user, playbook.key, moment)
    inside = [s for s in states if s.status == "open" and w_from <= s.close_date <= w_to]
    return len(inside), sum((s.amount for s in inside), Decimal("0.00"))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deals=st.lists(deal_strategy, min_size=1, max_size=5),
    periods=st.lists(period_strategy, min_size=1, max_size=3),
)
def test_flow_parts_add_up(walker, org, playbook, won_deals, deals, periods):
    """Property: end = start + created + pulled_in − pushed_out + amount_change − won − lost in
    count and amount, and start and end equal the pipeline read directly from history."""
    seller = org["seller"]
    events = []
    for n, (c_day, c_hour, amount, close, ops) in enumerate(deals):
        when = timezone.make_aware(dt.datetime.combine(DAY0, dt.time(c_hour)))
        when += dt.timedelta(days=c_day)
        events.append((when, n, 0, ("create", amount, close)))
        for k, (days, hours, kind, value, new_close) in enumerate(ops, start=1):
            when += dt.timedelta(days=days, hours=hours)
            events.append((when, n, k, (kind, value, new_close)))
    events.sort(key=lambda e: e[:3])
    opps: dict[int, object] = {}
    state: dict[int, tuple[str, str]] = {}  # status, stage
    for when, n, _k, (kind, value, close_offset) in events:
        close = DAY0 + dt.timedelta(days=close_offset)
        with clock.frozen_at(when):
            if kind == "create":
                opps[n] = walker.create(name=f"P{n}", amount=str(value), close_date=close)
                state[n] = ("open", "discover")
                continue
            status, stage = state[n]
            opp = opps[n]
            if kind == "reopen":
                if status == "lost":
                    ps.opportunity_reopen(opportunity=opp, actor=seller, reason="back")
                    state[n] = ("open", stage)
            elif status != "open":
                pass
            elif kind == "amount":
                ps.opportunity_update(opportunity=opp, actor=seller, amount=str(value))
            elif kind == "close":
                ps.opportunity_update(opportunity=opp, actor=seller, close_date=close)
            elif kind == "both":
                ps.opportunity_update(
                    opportunity=opp, actor=seller, amount=str(value), close_date=close
                )
            elif kind == "advance" and stage == "discover":
                ps.opportunity_advance(
                    opportunity=opp, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
                )
                state[n] = ("open", "intent")
            elif kind == "regress" and stage == "intent":
                ps.opportunity_regress(
                    opportunity=opp, to_stage="discover", actor=seller, reason="back"
                )
                state[n] = ("open", "discover")
            elif kind == "lose":
                ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")
                state[n] = ("lost", stage)

    manager = org["manager"]
    for start_day, length, window in periods:
        date_from = DAY0 + dt.timedelta(days=start_day)
        date_to = date_from + dt.timedelta(days=length)
        w_from, w_to = date_from, date_to
        if window is not None:
            w_from = DAY0 + dt.timedelta(days=window[0])
            w_to = w_from + dt.timedelta(days=window[1])
        flow = pipeline_flow(
            manager,
            playbook,
            date_from=date_from,
            date_to=date_to,
            window_from=w_from,
            window_to=w_to,
        )
        assert flow_balances(flow)
        start = (flow["start"]["count"], flow["start"]["amount"])
        end = (flow["end"]["count"], flow["end"]["amount"])
        assert start == pipeline_at(manager, playbook, start_of_day(date_from), w_from, w_to)
        assert end == pipeline_at(manager, playbook, end_of_day(date_to), w_from, w_to)
        for bucket in BUCKETS:
            assert flow[bucket]["count"] >= 0
            if bucket != "amount_change":
                assert flow[bucket]["amount"] >= 0
        walked = walked_flow(playbook, start_of_day(date_from), end_of_day(date_to), w_from, w_to)
        assert {b: (flow[b]["count"], flow[b]["amount"]) for b in BUCKETS} == walked


def test_a_deal_won_early_counts_as_pulled_in_and_won(walker, org, playbook):
    """Won on Feb 10 although expected on Apr 30: February's "won" is its bookings."""
    with clock.frozen_at(at(d(1, 5))):
        opp = walker.create(name="early", amount="400000", close_date=d(4, 30))
    with clock.frozen_at(at(d(2, 10))):
        walker.to(opp, "closed")

    flow = pipeline_flow(org["manager"], playbook, date_from=d(2, 1), date_to=d(2, 28))

    assert summary(flow)["start"] == (0, "0.00")
    assert (flow["pulled_in"]["count"], flow["pulled_in"]["amount"]) == (1, Decimal("400000.00"))
    assert (flow["won"]["count"], flow["won"]["amount"]) == (1, Decimal("400000.00"))
    assert flow_balances(flow)
