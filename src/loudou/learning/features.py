"""A deal as it was at a moment t: the features a win model learns from and predicts with.

Everything is read once per playbook into memory (`History.load`) and every feature of a snapshot
at t uses only what was recorded before t:

- the tracked fields (stage, status, amount, probability, owner, expected close date) come from
  the state span in force at t (`valid_from <= t < valid_to`), i.e. from append-only history;
- days in the current stage from the stage stay entered last at or before t; age from creation;
- criteria: the latest evidence per criterion *recorded before t* (`CriterionEvidence.recorded_at`);
- activity recency: activities *done before t* (`Activity.done_at`);
- competitors: the competing vendors *named before t*, dated by the audit log's `competitor.add`
  events (the rows themselves carry no date; a competitor entered without an event, e.g. by an
  import that names none, is not counted);
- the owner's and the branch's win rate over the deals *closed before t*, shrunk toward the
  company's rate then with a Beta prior worth `PRIOR_DEALS` deals.

Left out, because the facts carry no date of their own: team members' roles beyond what
history says, objections' content. Account attributes (industry, size band, group membership)
and the deal's branch are read as they are now: they are not historised, and are taken as
stable.

Times are floats in days since the epoch (UTC) throughout.
"""

import bisect
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Count, Q
from django.db.models.functions import Cast

from loudou.analytics.models import OpportunityStay, StateSpan
from loudou.core.models import AuditEvent
from loudou.pipeline.models import Activity, CriterionEvidence, Opportunity, Status
from loudou.playbooks.models import Playbook, Stage, StageKind

DAY = 86_400.0
#: Snapshots of a deal while it is open: at each stage entry and every this many days.
SNAPSHOT_EVERY_DAYS = 30
#: At most this many snapshots per deal (evenly thinned), so long deals do not dominate.
MAX_SNAPSHOTS_PER_DEAL = 12
#: Strength of the Beta prior of the owner's and the branch's win rate, in deals.
PRIOR_DEALS = 20.0

#: Numeric features (one-hot groups are added per playbook and data: stage:, industry:, size:).
NUMERIC = (
    "probability",
    "amount",
    "days_in_stage",
    "age",
    "days_to_close",
    "criteria_satisfied",
    "days_since_activity",
    "no_activity",
    "competitors",
    "in_group",
    "owner_win_rate",
    "branch_win_rate",
)


def days(moment: dt.datetime) -> float:
    """An aware datetime as days since the epoch."""
    return moment.timestamp() / DAY


def from_days(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value * DAY, tz=dt.UTC)


def date_days(day: dt.date) -> float:
    return (day - dt.date(1970, 1, 1)).days + 0.5


@dataclass
class Deal:
    """What is known of one opportunity, each fact with its time."""

    pk: int
    created: float
    branch_id: int
    industry: str
    size_band: str
    in_group: bool
    status: str  # final (current) status
    closed: float | None  # when it closed for good (won/lost now), else None
    span_from: list[float] = field(default_factory=list)
    spans: list[tuple[str, str, int, float, int, float]] = field(default_factory=list)
    stay_from: list[float] = field(default_factory=list)
    evidence: list[tuple[float, int, bool]] = field(default_factory=list)
    activities: list[float] = field(default_factory=list)
    competitors: list[float] = field(default_factory=list)

    def span_at(self, t: float) -> tuple[str, str, int, float, int, float] | None:
        """(stage key, status, owner id, amount, probability, close day) in force at t."""
        i = bisect.bisect_right(self.span_from, t) - 1
        return self.spans[i] if i >= 0 else None


@dataclass
class Snapshot:
    """One deal at one moment: its features (by name), the raw values shown when explaining,
    the categories the baselines use, and the outcome (None while open)."""

    opportunity_id: int
    at: float
    values: dict[str, float]
    shown: dict[str, str]
    stage: str
    owner_id: int
    branch_id: int
    industry: str
    size_band: str
    won: bool | None


class WinRates:
    """Deals closed before t, won and in total, by owner, by branch and for the company."""

    def __init__(self, deals: list[Deal], owner_at_close: dict[int, int]) -> None:
        closed = sorted(
            ((d.closed, d.status == Status.WON, d) for d in deals if d.closed is not None),
            key=lambda c: (c[0], c[2].pk),
        )
        self.times = [c[0] for c in closed]
        self.wins = np.concatenate([[0], np.cumsum([c[1] for c in closed])]).tolist()
        self.by_owner: dict[int, tuple[list[float], list[int]]] = {}
        self.by_branch: dict[int, tuple[list[float], list[int]]] = {}
        owners: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        branches: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        for time, won, deal in closed:
            owners[owner_at_close[deal.pk]].append((time, won))
            branches[deal.branch_id].append((time, won))
        for target, groups in ((self.by_owner, owners), (self.by_branch, branches)):
            for key, rows in groups.items():
                target[key] = ([r[0] for r in rows], [0, *np.cumsum([r[1] for r in rows]).tolist()])

    @staticmethod
    def _before(series: tuple[list[float], list[int]] | None, t: float) -> tuple[int, int]:
        if series is None:
            return 0, 0
        n = bisect.bisect_left(series[0], t)
        return int(series[1][n]), n

    def company(self, t: float) -> float:
        n = bisect.bisect_left(self.times, t)
        return (self.wins[n] + 1.0) / (n + 2.0)

    def shrunk(self, kind: str, key: int, t: float) -> float:
        """The win rate of the owner or branch `key` over deals closed before t, shrunk toward
        the company's: (won + m·p) / (closed + m) with m = PRIOR_DEALS."""
        series = (self.by_owner if kind == "owner" else self.by_branch).get(key)
        won, total = self._before(series, t)
        prior = self.company(t)
        return (won + PRIOR_DEALS * prior) / (total + PRIOR_DEALS)


class RatesNow:
    """`WinRates` as of now, from counts: every deal closed so far, won and in total, for the
    company and for the owners and branches of `deals` (a closed deal's owner at close is its
    owner now: the last state span is the current one). Two grouped queries instead of every
    deal's rows; for snapshots taken now (explaining a deal, predicting the open pipeline)."""

    def __init__(self, playbook: Playbook, deals: Any) -> None:
        closed = Opportunity.objects.filter(
            playbook__key=playbook.key, status__in=(Status.WON, Status.LOST)
        ).order_by()
        won = Count("pk", filter=Q(status=Status.WON))
        totals = closed.aggregate(won=won, total=Count("pk"))
        self.totals = (totals["won"], totals["total"])
        owners = {s[2] for d in deals for s in d.spans}
        branches = {d.branch_id for d in deals}
        self.by_owner = {
            owner: (w, n)
            for owner, w, n in closed.filter(owner_id__in=owners)
            .values("owner_id")
            .annotate(won=won, total=Count("pk"))
            .values_list("owner_id", "won", "total")
        }
        self.by_branch = {
            branch: (w, n)
            for branch, w, n in closed.filter(branch_id__in=branches)
            .values("branch_id")
            .annotate(won=won, total=Count("pk"))
            .values_list("branch_id", "won", "total")
        }

    def company(self, t: float) -> float:
        won, total = self.totals
        return (won + 1.0) / (total + 2.0)

    def shrunk(self, kind: str, key: int, t: float) -> float:
        won, total = (self.by_owner if kind == "owner" else self.by_branch).get(key, (0, 0))
        return (won + PRIOR_DEALS * self.company(t)) / (total + PRIOR_DEALS)


class History:
    """Everything the snapshots of one playbook's deals need, read once."""

    def __init__(
        self, playbook: Playbook, *, only: int | None = None, open_only: bool = False
    ) -> None:
        """With `only` (one opportunity's id: explaining one deal) only that deal's facts are
        read, and the owners' and branches' win rates come from counts of the deals closed so
        far (`RatesNow`): one deal's explanation reads neither the history nor the rows of the
        other deals. With `open_only` the same for every open deal (predicting the open
        pipeline, for the forecast). Either way the snapshots are good for now only."""
        self.playbook = playbook
        # The deals read (`own`, on Opportunity) and their facts (`mine`, on the related rows).
        own: dict[str, object] = {}
        mine: dict[str, object] = {}
        if only is not None:
            own, mine = {"pk": only}, {"opportunity_id": only}
        elif open_only:
            own, mine = {"status": Status.OPEN}, {"opportunity__status": Status.OPEN}
        current = playbook.ordered_stages()
        self.open_stages = [s.key for s in current if s.kind == StageKind.OPEN]
        self.stage_order = {s.key: s.order for s in current}
        self.stage_default = {s.key: s.probability / 100.0 for s in current}
        key_of = dict(Stage.objects.filter(playbook__key=playbook.key).values_list("pk", "key"))
        opps = Opportunity.objects.filter(playbook__key=playbook.key, **own).order_by()
        rows = opps.values_list(
            "pk",
            "created_at",
            "branch_id",
            "account__industry__key",
            "account__size_band",
            "account__parent_id",
            "status",
        )
        self.deals: dict[int, Deal] = {
            pk: Deal(
                pk,
                days(created),
                branch,
                industry or "",
                size or "",
                parent is not None,
                status,
                None,
            )
            for pk, created, branch, industry, size, parent, status in rows
        }
        spans = StateSpan.objects.filter(playbook__key=playbook.key, **mine)
        spans = spans.order_by("opportunity_id", "valid_from", "id")
        for (
            opp_id,
            stage_id,
            status,
            owner,
            amount,
            probability,
            close_date,
            valid_from,
        ) in spans.values_list(
            "opportunity_id",
            "stage_id",
            "status",
            "owner_id",
            "amount",
            "probability",
            "close_date",
            "valid_from",
        ):
            deal = self.deals.get(opp_id)
            if deal is None:
                continue
            deal.span_from.append(days(valid_from))
            deal.spans.append(
                (key_of[stage_id], status, owner, float(amount), probability, date_days(close_date))
            )
        owner_at_close: dict[int, int] = {}
        for deal in self.deals.values():
            if deal.spans and deal.status != Status.OPEN:
                deal.closed = deal.span_from[-1]
                owner_at_close[deal.pk] = deal.spans[-1][2]
        for opp_id, entered in (
            OpportunityStay.objects.filter(opportunity__playbook__key=playbook.key, **mine)
            .order_by("opportunity_id", "entered_at")
            .values_list("opportunity_id", "entered_at")
        ):
            if opp_id in self.deals:
                self.deals[opp_id].stay_from.append(days(entered))
        for opp_id, recorded, criterion, satisfied in (
            CriterionEvidence.objects.filter(opportunity__playbook__key=playbook.key, **mine)
            .order_by("opportunity_id", "recorded_at", "id")
            .values_list("opportunity_id", "recorded_at", "criterion_id", "satisfied")
        ):
            self.deals[opp_id].evidence.append((days(recorded), criterion, satisfied))
        for opp_id, done in (
            Activity.objects.filter(
                opportunity__playbook__key=playbook.key, done_at__isnull=False, **mine
            )
            .order_by("opportunity_id", "done_at")
            .values_list("opportunity_id", "done_at")
        ):
            assert done is not None  # the filter keeps only done activities
            self.deals[opp_id].activities.append(days(done))
        self._competitors(opps)
        self.rates: WinRates | RatesNow = (
            RatesNow(playbook, self.deals.values())
            if mine
            else WinRates(list(self.deals.values()), owner_at_close)
        )
        self._snapshots: dict[tuple[int, float], Snapshot | None] = {}

    def _competitors(self, opps: Any) -> None:
        """When each competing vendor was named on the deals read (`opps`). `OpportunityCompetitor`
        rows carry no date; the audit log does (`competitor.add`, recorded on the opportunity
        when the vendor was added): a competitor counts from that moment on. Consultants are not
        competitors."""
        events = AuditEvent.objects.filter(
            action="competitor.add",
            content_type=ContentType.objects.get_for_model(Opportunity),
            object_id__in=opps.annotate(key=Cast("pk", CharField())).values("key"),
        )
        for object_id, at, after in events.order_by("at", "id").values_list(
            "object_id", "at", "after"
        ):
            deal = self.deals.get(int(object_id))
            if deal is not None and (after or {}).get("kind", "vendor") == "vendor":
                deal.competitors.append(days(at))

    # -- snapshots -------------------------------------------------------------------------

    def closed_deals(self) -> list[Deal]:
        """Deals closed for good (won or lost now), by closing time."""
        closed = [d for d in self.deals.values() if d.closed is not None]
        return sorted(closed, key=lambda d: (d.closed, d.pk))

    def moments(
        self, deal: Deal, *, start: float | None = None, until: float | None = None
    ) -> list[float]:
        """The moments a closed deal is snapshotted: each stage entry and every
        SNAPSHOT_EVERY_DAYS days from creation while open, before it closed; with `start`, only
        moments at or after it, plus `start` itself if the deal was open then; with `until`, only
        moments at or before it (the horizon rule of `training`)."""
        end = deal.closed if deal.closed is not None else math.inf
        found = set(deal.stay_from)
        step = deal.created
        while step < end:
            found.add(step)
            step += SNAPSHOT_EVERY_DAYS
        if start is not None:
            found = {t for t in found if t >= start}
            if deal.created <= start < end:
                found.add(start)
        if until is not None:
            found = {t for t in found if t <= until}
        usable = []
        for t in sorted(found):
            span = deal.span_at(t)
            if t < end and span is not None and span[1] == Status.OPEN:
                usable.append(t)
        if len(usable) > MAX_SNAPSHOTS_PER_DEAL:
            picks = np.linspace(0, len(usable) - 1, MAX_SNAPSHOTS_PER_DEAL).round().astype(int)
            usable = [usable[i] for i in sorted(set(picks.tolist()))]
        return usable

    def snapshot(self, deal: Deal, t: float) -> Snapshot | None:
        """The deal as it was at t (None if it did not exist yet). Uses only facts dated before t
        (spans: in force at t). Remembered: training and the refit for use ask for many of the
        same moments."""
        key = (deal.pk, t)
        if key not in self._snapshots:
            self._snapshots[key] = self._snapshot(deal, t)
        return self._snapshots[key]

    def _snapshot(self, deal: Deal, t: float) -> Snapshot | None:
        span = deal.span_at(t)
        if span is None:
            return None
        stage, _status, owner, amount, probability, close_day = span
        i = bisect.bisect_right(deal.stay_from, t) - 1
        entered = deal.stay_from[i] if i >= 0 else deal.created
        in_stage = max(0.0, t - entered)
        age = max(0.0, t - deal.created)
        latest: dict[int, bool] = {}
        for recorded, criterion, satisfied in deal.evidence:
            if recorded >= t:
                break
            latest[criterion] = satisfied
        criteria = sum(latest.values())
        competitors = bisect.bisect_left(deal.competitors, t)
        done = bisect.bisect_left(deal.activities, t)
        since = t - deal.activities[done - 1] if done else None
        to_close = max(-730.0, min(730.0, close_day - t))
        owner_rate = self.rates.shrunk("owner", owner, t)
        branch_rate = self.rates.shrunk("branch", deal.branch_id, t)
        values = {
            "probability": probability / 100.0,
            "amount": math.log10(1.0 + max(amount, 0.0)),
            "days_in_stage": math.log1p(in_stage),
            "age": math.log1p(age),
            "days_to_close": to_close / 30.0,
            "criteria_satisfied": float(criteria),
            "days_since_activity": math.log1p(since if since is not None else age),
            "no_activity": 0.0 if since is not None else 1.0,
            "competitors": float(competitors),
            "in_group": 1.0 if deal.in_group else 0.0,
            "owner_win_rate": owner_rate,
            "branch_win_rate": branch_rate,
            f"stage:{stage}": 1.0,
            f"industry:{deal.industry or '-'}": 1.0,
            f"size:{deal.size_band or '-'}": 1.0,
        }
        shown = {
            "probability": f"{probability} %",
            "amount": f"{amount:,.0f}",
            "days_in_stage": f"{in_stage:.0f}",
            "age": f"{age:.0f}",
            "days_to_close": f"{close_day - t:.0f}",
            "criteria_satisfied": str(criteria),
            "days_since_activity": "—" if since is None else f"{since:.0f}",
            "no_activity": "yes" if since is None else "no",
            "competitors": str(competitors),
            "in_group": "yes" if deal.in_group else "no",
            "owner_win_rate": f"{owner_rate:.0%}",
            "branch_win_rate": f"{branch_rate:.0%}",
        }
        won = None if deal.closed is None else deal.status == Status.WON
        return Snapshot(
            deal.pk, t, values, shown, stage, owner, deal.branch_id, deal.industry or "-",
            deal.size_band or "-", won,
        )  # fmt: skip

    def snapshots(
        self, deals: list[Deal], *, start: float | None = None, until: float | None = None
    ) -> list[Snapshot]:
        out = []
        for deal in deals:
            for t in self.moments(deal, start=start, until=until):
                snap = self.snapshot(deal, t)
                if snap is not None:
                    out.append(snap)
        return out


def feature_names(snapshots: list[Snapshot], open_stages: list[str]) -> list[str]:
    """The model's inputs: the numeric features, then one column per stage, industry and size
    band seen in `snapshots` (sorted, so the order is deterministic)."""
    seen = {name for s in snapshots for name in s.values if ":" in name}
    stages = [f"stage:{key}" for key in open_stages]
    others = sorted(name for name in seen if not name.startswith("stage:"))
    return [*NUMERIC, *stages, *others]


def matrix(snapshots: list[Snapshot], names: list[str]) -> np.ndarray:
    """The snapshots' features as rows, in the order of `names` (absent one-hots: 0)."""
    out = np.zeros((len(snapshots), len(names)))
    index = {name: j for j, name in enumerate(names)}
    for i, snap in enumerate(snapshots):
        for name, value in snap.values.items():
            j = index.get(name)
            if j is not None:
                out[i, j] = value
    return out


def outcomes(snapshots: list[Snapshot]) -> np.ndarray:
    return np.array([1.0 if s.won else 0.0 for s in snapshots])


def load(playbook: Playbook) -> History:
    return History(playbook)
