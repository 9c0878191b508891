"""Forecast and targets: what a period will bring against what it should (the reverse funnel,
what it still needs, is `analytics.plan`).

Definitions (DESIGN.md, "Definitions the analytics must follow"; docs/analytics-forecast.md):

- **booked**: the amount of the deals in scope won with `closed_on` in the period.
- **weighted**: booked + Σ amount × probability / 100 over the open deals whose expected close
  date is in the period (the deal's effective probability: its override, else its stage's).
- **simulated**: N runs in which each of those open deals wins independently with its
  probability; bookings of a run = booked + the amounts won in it; P10/P50/P90 over the runs and
  the share of runs that reach the target.

Everything reads current opportunity fields through the visibility rule of the scope's actor.
"""

import calendar
import datetime as dt
import re
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from loudou.analytics.scope import Scope
from loudou.analytics.selectors import cents_sum, in_cents, open_now, scoped_spans
from loudou.core.i18n import is_chinese
from loudou.org.access import branch_subtree_ids, managed_branch_ids
from loudou.org.models import Branch, Target, TargetScope, User
from loudou.pipeline.models import Status

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
DEFAULT_RUNS = 10_000
# Cells (runs × deals) drawn at once. Rows are drawn chunk by chunk from one generator, whose
# stream does not depend on the chunking, so the result is the same as one (runs, deals) draw.
# 4e6 cells (32 MB of draws) measured fastest here: 10,000 deals × 10,000 runs in ~0.7 s,
# against ~3 s with 5e7-cell chunks (their temporaries no longer fit the caches).
MAX_DRAW_CELLS = 4_000_000

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """A month or a quarter: `label` as the user wrote it (normalised), first and last day."""

    label: str
    start: dt.date
    end: dt.date

    def months(self) -> list[dt.date]:
        """The first day of each month of the period."""
        return [dt.date(self.start.year, m, 1) for m in range(self.start.month, self.end.month + 1)]


def parse_period(text: str) -> Period:
    """ "2026Q1" (January 1 to March 31) or "2026-03" (the month); ValueError for anything else."""
    value = (text or "").strip().upper()
    if m := _QUARTER.match(value):
        year, quarter = int(m[1]), int(m[2])
        first, last = 3 * quarter - 2, 3 * quarter
    elif (m := _MONTH.match(value)) and 1 <= int(m[2]) <= 12:
        year, first = int(m[1]), int(m[2])
        last = first
    else:
        raise ValueError(
            _("“%(p)s” is not a period: write a quarter like 2026Q1 or a month like 2026-03.")
            % {"p": text}
        )
    if year < 1:
        raise ValueError(_("“%(p)s” is not a period.") % {"p": text})
    end = dt.date(year, last, calendar.monthrange(year, last)[1])
    return Period(label=value, start=dt.date(year, first, 1), end=end)


def money(value: Decimal) -> str:
    """An amount as a string with cents, exact: sub-cent digits (from weighting) are kept."""
    cents = value.quantize(CENT)
    return str(cents if cents == value else value.normalize())


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value(rounding=ROUND_HALF_UP))


def _from_cents(value: float) -> Decimal:
    """A float number of cents (a percentile) as a Decimal amount rounded to the cent."""
    return Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP).scaleb(-2)


# --- the period's deals ---------------------------------------------------------------------


@dataclass
class PeriodDeals:
    """What the scope holds for a period: the booked amount and the open deals closing in it
    (probabilities in percent: whole for the deals' own, to 0.01 when learned)."""

    booked: Decimal
    amounts: list[Decimal]
    probabilities: list[Decimal]

    @property
    def weighted(self) -> Decimal:
        """booked + Σ amount × probability / 100, exact."""
        open_part = sum(
            (a * p / 100 for a, p in zip(self.amounts, self.probabilities, strict=True)), ZERO
        )
        return self.booked + open_part


def period_deals(
    scope: Scope, period: Period, learned: dict[int, float] | None = None
) -> PeriodDeals:
    """Booked amount and the open deals (amount, probability) closing in the period. The
    probability is the deal's own (its override, else its stage's default), or with `learned`
    (`learned_for`: id → probability) the learned one, in percent to 0.01."""
    opps = scope.opportunities()
    booked = opps.filter(
        status=Status.WON, closed_on__gte=period.start, closed_on__lte=period.end
    ).aggregate(total=Sum("amount"))["total"]
    # The effective probability of an open deal (Opportunity.probability): override, else stage.
    rows = (
        opps.filter(status=Status.OPEN, close_date__gte=period.start, close_date__lte=period.end)
        .annotate(p=Coalesce("probability_override", "stage__probability"))
        .order_by("pk")
        .values_list("pk", "amount", "p")
    )
    amounts = [row[1] for row in rows]
    if learned is None:
        probabilities = [Decimal(int(row[2])) for row in rows]
    else:
        # A deal the model could not score (none known) keeps its own probability.
        probabilities = [
            Decimal(repr(round(100 * learned[pk], 2))) if pk in learned else Decimal(int(p))
            for pk, _amount, p in rows
        ]
    return PeriodDeals(booked or ZERO, amounts, probabilities)


#: How the forecast weighs open deals: each deal's own probability, or learned from history.
PROBABILITY_SOURCES = ("deal", "learned")


def learned_for(scope: Scope, period: Period) -> tuple[dict[int, float] | None, dict[str, Any]]:
    """The learned probabilities of the open deals closing in the period, and what they came
    from (`learning.selectors.learned_probabilities`); (None, …) without a model, the forecast
    then uses the deals' own probabilities and says so. Every deal the actor may see is scored,
    whatever the scope's branch, owner or industry filter: the targets view, which sets aside
    the industry filter and narrows per person and branch, uses the same map."""
    from loudou.learning.selectors import learned_probabilities  # learning reads analytics

    everything = replace(scope, branch_ids=None, owner_id=None, industry_id=None)
    rows = (
        everything.opportunities()
        .filter(status=Status.OPEN, close_date__gte=period.start, close_date__lte=period.end)
        .order_by("pk")
        .values_list("pk", "stage__key", "branch_id", "owner_id")
    )
    probabilities, info = learned_probabilities(scope.playbook, list(rows))
    return (None if info["source"] == "none" else probabilities), info


def _weights(
    scope: Scope,
    period: Period,
    probabilities: str,
    learned: tuple[dict[int, float] | None, dict[str, Any]] | None,
) -> tuple[dict[int, float] | None, dict[str, Any]]:
    """What weighs the open deals, and what is said of it: the learned probabilities (`learned`
    when the caller has them, else `learned_for`), or None for each deal's own."""
    if probabilities == "learned":
        return learned if learned is not None else learned_for(scope, period)
    return None, {
        "source": "deal",
        "offered": None,
        "model_trained_at": None,
        "note": _("Each deal's own probability: its override, else its stage's default."),
    }


def period_weighted(scope: Scope, period: Period) -> tuple[Decimal, Decimal, int]:
    """Booked amount, weighted forecast (booked + Σ amount × probability / 100, exact; equal to
    `period_deals(...).weighted`) and the number of open deals closing in the period, summed in
    SQL: for pages that show the weighted figure without simulating.

    The open deals are read from the state spans in force (equal to the current fields, which
    `loudou analytics verify` checks): the `span_open_now` index holds the open deals' current
    spans by close date with their probabilities and amounts, so the sum reads the period's
    range of it and no table row."""
    booked = (
        scope.opportunities()
        .filter(status=Status.WON, closed_on__gte=period.start, closed_on__lte=period.end)
        .aggregate(total=Sum("amount"))["total"]
    )
    spans = scoped_spans(scope.actor, scope.playbook.key, **scope.filters()).filter(
        open_now(), close_date__gte=period.start, close_date__lte=period.end
    )
    weighted, count = Decimal(0), 0
    fast = _weighted_cents(spans) if connection.vendor == "sqlite" else None
    if fast is not None:
        count, cents = fast
        if count:
            weighted += Decimal(cents).scaleb(-4)
    else:
        rows = spans.values_list("probability").annotate(
            deals=Count("*"), cents=cents_sum("amount")
        )
        for probability, deals, cents in rows:
            weighted += Decimal(cents * probability).scaleb(-4)
            count += deals
    booked = booked or ZERO
    return booked, booked + weighted, count


class _Total(Aggregate):
    """SQLite's `total()`: a sum as a float, which never overflows (`sum()` of integers raises)."""

    function = "TOTAL"
    output_field = FloatField()


#: Below this, a float sum of whole numbers is exact (every partial sum is a whole float).
_EXACT_FLOAT = 2**53


def _weighted_cents(spans: Any) -> tuple[int, int] | None:
    """(deals, Σ cents × probability) of `spans` in one sum on SQLite, without the `GROUP BY
    probability` that keeps each integer sum small (a sort of the period's open deals, a quarter
    of the forecast's time at a million deals). The float sum of whole numbers is exact while
    every partial sum stays under 2^53, which the sum of their sizes bounds (a weighted pipeline
    of 9 × 10^11); None above, and the caller sums by probability."""
    product = in_cents("amount") * F("probability")
    sums = spans.aggregate(
        deals=Count("*"),
        total=_Total(product),
        size=_Total(Func(product, function="ABS", output_field=FloatField())),
    )
    if not (sums["size"] or 0.0) < _EXACT_FLOAT:
        return None
    return sums["deals"], int(sums["total"] or 0.0)


# --- simulation -----------------------------------------------------------------------------


@dataclass
class Simulation:
    runs: int
    p10: Decimal
    p50: Decimal
    p90: Decimal
    bookings_cents: Any  # numpy array, one total per run, in cents

    def p_hit(self, target: Decimal | None) -> float | None:
        """Share of runs whose bookings reach the target (None without a target)."""
        if target is None:
            return None
        return float(np.mean(self.bookings_cents >= float(_cents(target))))


def simulate(deals: PeriodDeals, *, runs: int = DEFAULT_RUNS, seed: int = 0) -> Simulation:
    """Monte Carlo bookings: each open deal wins independently with its probability.

    Amounts are whole cents held in float64, so every run's total is exact (below 2^53 cents)
    and the matrix product runs on BLAS. Draws come from numpy's default_rng(seed) as one
    (runs, deals) matrix of single-precision uniforms (half the cost of double precision, and
    2^-24 resolution is far finer than whole-percent probabilities), taken in row chunks of at
    most MAX_DRAW_CELLS cells into one reused buffer.
    """
    if runs < 1:
        raise ValueError(_("The number of simulations must be at least 1."))
    rng = np.random.default_rng(seed)
    booked = float(_cents(deals.booked))
    cents = np.array([_cents(a) for a in deals.amounts], dtype=np.float64)
    p = (np.array([float(x) for x in deals.probabilities]) / 100.0).astype(np.float32)
    totals = np.full(runs, booked, dtype=np.float64)
    n = len(cents)
    if n:
        step = max(1, min(runs, MAX_DRAW_CELLS // n))
        uniforms = np.empty((step, n), dtype=np.float32)
        for first in range(0, runs, step):
            rows = min(step, runs - first)
            drawn = uniforms[:rows]
            rng.random(out=drawn, dtype=np.float32)
            totals[first : first + rows] += (drawn < p).astype(np.float64) @ cents
    p10, p50, p90 = np.percentile(totals, [10, 50, 90])
    return Simulation(runs, _from_cents(p10), _from_cents(p50), _from_cents(p90), totals)


# --- targets --------------------------------------------------------------------------------


def scope_branch_id(scope: Scope) -> int | None:
    """The branch a --branch scope names: the root of its subtree of branch ids."""
    if not scope.branch_ids:
        return None
    parents = dict(Branch.objects.filter(pk__in=scope.branch_ids).values_list("pk", "parent_id"))
    roots = [pk for pk, parent in parents.items() if parent not in scope.branch_ids]
    return roots[0] if len(roots) == 1 else None


def target_amount(
    period: Period, *, user_id: int | None = None, branch_id: int | None = None
) -> Decimal | None:
    """The monthly targets of a person, else a branch, else the company, summed over the period's
    months; None when none of those months has one."""
    months = period.months()
    if user_id is not None:
        rows = Target.objects.filter(scope=TargetScope.USER, user_id=user_id)
    elif branch_id is not None:
        rows = Target.objects.filter(scope=TargetScope.BRANCH, branch_id=branch_id)
    else:
        rows = Target.objects.filter(scope=TargetScope.COMPANY)
    found = rows.filter(month__in=months).aggregate(total=Sum("amount"), n=Count("pk"))
    return found["total"] if found["n"] else None


def may_read_target(
    scope: Scope, *, user_id: int | None = None, branch_id: int | None = None
) -> bool:
    """Whose target the actor may read beside a forecast: their own and those of the people and
    branches they manage; every one for those who see every branch (executives,
    administrators, the command line without --as)."""
    actor = scope.actor
    managed = None if actor is None else managed_branch_ids(actor)
    if managed is None:
        return True
    if user_id is not None:
        return user_id == actor.pk or (
            bool(managed) and User.objects.filter(pk=user_id, branch_id__in=managed).exists()
        )
    return branch_id is not None and branch_id in managed


def scope_target(scope: Scope, period: Period) -> Decimal | None:
    """The target that goes with the scope: the owner's, else the branch's, else the company's;
    none for one industry's deals (targets are set per person, branch and company), and none
    the actor may not read (another branch's person or branch: rule 4)."""
    if scope.industry_id is not None:
        return None
    if scope.owner_id is not None:
        if not may_read_target(scope, user_id=scope.owner_id):
            return None
        return target_amount(period, user_id=scope.owner_id)
    if scope.branch_ids is not None:
        branch_id = scope_branch_id(scope)
        if branch_id is None or not may_read_target(scope, branch_id=branch_id):
            return None
        return target_amount(period, branch_id=branch_id)
    # The company's target is the one everyone sells toward: every reader sees it.
    return target_amount(period)


# --- forecast -------------------------------------------------------------------------------


def forecast(
    scope: Scope,
    period: Period,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = 0,
    probabilities: str = "deal",
    learned: tuple[dict[int, float] | None, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Booked, weighted and simulated bookings of the period, against the scope's target.
    `probabilities`: "deal" (each deal's own) or "learned" (the active win model's; the deals'
    own when no model is trained); `probabilities` in the answer says which was used.
    `learned`: `learned_for(scope, period)` when the caller has it already."""
    by_deal, info = _weights(scope, period, probabilities, learned)
    deals = period_deals(scope, period, by_deal)
    sim = simulate(deals, runs=runs, seed=seed)
    target = scope_target(scope, period)
    return {
        "probabilities": info,
        "period": period.label,
        "booked": money(deals.booked),
        "weighted": money(deals.weighted),
        "simulated": {
            "runs": sim.runs,
            "p10": money(sim.p10),
            "p50": money(sim.p50),
            "p90": money(sim.p90),
        },
        "target": None if target is None else money(target),
        "p_hit_target": sim.p_hit(target),
        "open_deals": len(deals.amounts),
    }


# --- targets view ---------------------------------------------------------------------------


def _row(
    kind: str,
    key: str | None,
    name: str,
    scope: Scope,
    period: Period,
    target: Decimal | None,
    runs: int,
    seed: int,
    learned: dict[int, float] | None = None,
) -> dict[str, Any]:
    deals = period_deals(scope, period, learned)
    sim = simulate(deals, runs=runs, seed=seed)
    return {
        "kind": kind,
        "key": key,
        "name": name,
        "target": None if target is None else money(target),
        "booked": money(deals.booked),
        "weighted": money(deals.weighted),
        "p50": money(sim.p50),
        "p_hit_target": sim.p_hit(target),
    }


def targets_view(
    scope: Scope,
    period: Period,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = 0,
    probabilities: str = "deal",
    learned: tuple[dict[int, float] | None, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Target vs booked vs weighted vs simulated P50 for each person with a target in the period
    (the actor, or people of the branches the actor manages, within the scope), each branch with
    one that the actor manages, and the company (without a branch or owner filter, for those who
    see everything); `probabilities` and `learned` as in `forecast`. Each row counts the deals
    of its subject the actor may see, in every industry: a target is set for all of a person's
    or branch's deals, so it is set against all of them."""
    scope = replace(scope, industry_id=None)
    learned_by_deal, info = _weights(scope, period, probabilities, learned)
    months = period.months()
    managed = managed_branch_ids(scope.actor)
    rows: list[dict[str, Any]] = []

    user_ids = set(
        Target.objects.filter(scope=TargetScope.USER, month__in=months).values_list(
            "user_id", flat=True
        )
    )
    users = User.objects.filter(pk__in=user_ids).order_by("branch__code", "username")
    if scope.owner_id is not None:
        users = users.filter(pk=scope.owner_id)
    for user in users:
        if managed is not None and user.pk != scope.actor.pk and user.branch_id not in managed:
            continue
        if scope.branch_ids is not None and user.branch_id not in scope.branch_ids:
            continue
        rows.append(
            _row(
                "person",
                user.username,
                str(user),
                replace(scope, owner_id=user.pk),
                period,
                target_amount(period, user_id=user.pk),
                runs,
                seed,
                learned_by_deal,
            )
        )

    if scope.owner_id is None:
        branch_ids = set(
            Target.objects.filter(scope=TargetScope.BRANCH, month__in=months).values_list(
                "branch_id", flat=True
            )
        )
        for branch in Branch.objects.filter(pk__in=branch_ids).order_by("code"):
            if managed is not None and branch.pk not in managed:
                continue
            if scope.branch_ids is not None and branch.pk not in scope.branch_ids:
                continue
            rows.append(
                _row(
                    "branch",
                    branch.code,
                    branch.name if is_chinese() else (branch.name_en or branch.name),
                    replace(scope, branch_ids=branch_subtree_ids(branch.pk)),
                    period,
                    target_amount(period, branch_id=branch.pk),
                    runs,
                    seed,
                )
            )

    # The company row only for those who see every deal: a part of the company's bookings set
    # against the company's target would read as a miss.
    if scope.owner_id is None and scope.branch_ids is None and managed is None:
        rows.append(
            _row(
                "company",
                None,
                _("Company"),
                scope,
                period,
                target_amount(period),
                runs,
                seed,
                learned_by_deal,
            )
        )
    return {"period": period.label, "probabilities": info, "rows": rows}
