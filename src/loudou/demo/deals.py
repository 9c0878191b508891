"""The demo's opportunities: each one walked down the funnel through the real services, with the
clock set to the moment each event happened.

A deal spends a random time in each stage (days to weeks), does the stage's main work there
(visits, competitors, 立项, the project team, quotes, key dates, objections), then advances,
is lost with a reason, or is still there today. A few regress, are reopened, or pass a gate on a
manager's override.
"""

import contextlib
import datetime as dt
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from loudou.core import clock
from loudou.demo import names
from loudou.demo.customers import Customer
from loudou.demo.organisation import SalesOrg
from loudou.demo.timeline import DealClock, ReachedToday
from loudou.org.models import User
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from loudou.playbooks.selectors import playbook_get

OPEN_STAGES = ["discover", "intent", "project", "recognition", "negotiation"]
# The chance a deal that leaves a stage leaves it forward (the rest are lost there).
ADVANCE = {
    "discover": 0.68,
    "intent": 0.66,
    "project": 0.72,
    "recognition": 0.68,
    "negotiation": 0.72,
}
# Median days in each stage; stays are log-normal around it.
DWELL = {"discover": 15, "intent": 22, "project": 30, "recognition": 26, "negotiation": 20}
EARLY_LOSSES = {
    "no_budget": 3,
    "project_cancelled": 2,
    "no_decision": 3,
    "dropped": 2,
    "functionality": 1,
    "other": 1,
}
LATE_LOSSES = {
    "price": 4,
    "competitor_relationship": 3,
    "functionality": 2,
    "no_decision": 2,
    "project_cancelled": 1,
    "no_budget": 1,
    "other": 1,
}
LOST_TO_REASONS = ("price", "competitor_relationship", "functionality")
REOPENABLE = ("no_decision", "project_cancelled", "no_budget")
EVIDENCE = {
    "intent": names.INTENT_NOTES,
    "project": names.PROJECT_NOTES,
    "recognition": names.RECOGNITION_NOTES,
    "negotiation": names.NEGOTIATION_NOTES,
}
ACTIVITY_SHARE = 0.15  # of stays whose work is logged as an activity (each costs two writes)


@dataclass
class Deal:
    """One opportunity being walked, with what has been done on it so far."""

    opp: Opportunity
    seller: User
    approver: User
    clock: DealClock
    stage: str = "discover"
    competitors: list[tuple[str, str]] = field(default_factory=list)
    key_dates: set[str] = field(default_factory=set)
    approved: bool = False
    team: bool = False
    evidenced: set[str] = field(default_factory=set)
    regressed: bool = False
    reopened: bool = False
    fate: str = "advance"
    lost_reason: str = ""
    exit_gap: float = 1.0  # days from the stay's last piece of work to leaving the stage
    formal_total: Decimal | None = None

    @contextlib.contextmanager
    def at(self, days: float) -> Iterator[dt.datetime]:
        """Run the block at the deal's next moment, about `days` after the last one."""
        moment = self.clock.next(days)
        with clock.frozen_at(moment):
            yield moment

    @property
    def day(self) -> dt.date:
        return self.clock.day

    @property
    def vendors(self) -> list[str]:
        return [name for name, kind in self.competitors if kind == "vendor"]


class DealWalker:
    """Creates opportunities and walks them through the services, deterministically from `rng`."""

    def __init__(
        self, org: SalesOrg, rng: random.Random, *, today: dt.date, horizon: dt.datetime
    ) -> None:
        self.org = org
        self.rng = rng
        self.today = today
        self.horizon = horizon
        self.deal_names: set[str] = set()
        # One playbook instance with its stages loaded once: the services take it (and stage
        # objects) as they take keys, without looking them up again for every deal.
        self.playbook = playbook_get()
        self.stages = {s.key: s for s in self.playbook.ordered_stages()}

    # --- the life of a deal ---------------------------------------------------------------

    def run(self, customer: Customer, created: dt.datetime) -> Opportunity:
        """Create an opportunity on `customer` at `created` and live its life up to today."""
        deal = self._create(customer, created)
        try:
            self._walk(deal)
        except ReachedToday:
            self._finish_open(deal)
        return deal.opp

    def _walk(self, deal: Deal) -> None:
        while True:
            self._stay(deal)
            if deal.fate == "lose":
                if not self._lose(deal):
                    return
            elif deal.fate == "regress":
                self._regress(deal)
            elif deal.stage == "negotiation":
                self._win(deal)
                if not self._reopen_won(deal):
                    return
            else:
                self._advance(deal)

    def _stay(self, deal: Deal) -> None:
        """Spend the stay in the current stage doing its main work; decide how it ends."""
        rng = self.rng
        stage = deal.stage
        dwell = DWELL[stage] * math.exp(rng.gauss(0, 0.7))
        deal.fate = "advance" if rng.random() < ADVANCE[stage] else "lose"
        if rng.random() < 0.05:  # stalled: nobody moves it for months
            dwell *= rng.uniform(3, 8)
            deal.fate = "lose" if rng.random() < 0.7 else deal.fate
        if stage in ("recognition", "negotiation") and not deal.regressed and rng.random() < 0.05:
            deal.fate = "regress"
        dwell = min(max(dwell, 1.5), 300)
        work = self._work(stage)
        if deal.fate == "lose":
            work = work[: rng.randint(0, len(work))]
        cuts = sorted(rng.random() for _ in work)
        self._keep_close_date_ahead(deal)
        previous = 0.0
        for step, cut in zip(work, cuts, strict=True):
            step(deal, dwell * (cut - previous))
            previous = cut
            if deal.fate == "lose" and deal.lost_reason:
                break  # the work itself ended the deal (a rejected 立项 dropped)
        deal.exit_gap = max(dwell * (1 - previous), 0.1)

    def _work(self, stage: str) -> Sequence[Callable[[Deal, float], None]]:
        """The main work of a stage, each piece taking the deal and its share of the stay."""
        return {
            "discover": [self._visit],
            "intent": [self._competitors, self._presentation, self._timeline, self._approval],
            "project": [self._team, self._demo, self._preliminary_quote],
            "recognition": [self._schedule, self._meeting],
            "negotiation": [self._objections, self._formal_quote],
        }[stage]

    # --- creating -------------------------------------------------------------------------

    def _create(self, customer: Customer, created: dt.datetime) -> Deal:
        rng = self.rng
        account = customer.account
        seller = account.owner
        approver = (
            self.org.sales_director(customer.branch_code)
            if rng.random() < 0.15
            else self.org.branch_gm(customer.branch_code)
        )
        deal_clock = DealClock(created - dt.timedelta(minutes=1), self.horizon, rng)
        amount = self._amount(customer)
        with clock.frozen_at(deal_clock.next(0)):
            opp = ps.opportunity_create(
                actor=seller,
                account=account,
                playbook=self.playbook,
                name=self._name(account.name),
                amount=amount,
                close_date=deal_clock.day + dt.timedelta(days=rng.randint(90, 240)),
                source=rng.choice(names.SOURCES),
                need=f"{rng.choice(names.NEED_OPENINGS)}：{account.it_need or rng.choice(names.IT_NEEDS)}",
                evidence={"need_found": rng.choice(names.NEED_OPENINGS) + "具体需求"},
            )
        return Deal(opp=opp, seller=seller, approver=approver, clock=deal_clock)

    def _amount(self, customer: Customer) -> Decimal:
        """From about 200 thousand to 20 million yuan; groups buy bigger."""
        median = {3.0: 2_500_000, 1.5: 1_200_000}.get(customer.weight, 900_000)
        value = median * math.exp(self.rng.gauss(0, 0.8))
        value = min(max(value, 200_000), 20_000_000)
        return Decimal(round(value, -4))

    def _name(self, account_name: str) -> str:
        short = account_name
        for suffix in ("集团有限公司", "股份有限公司", "有限公司"):
            short = short.removesuffix(suffix)
        project = self.rng.choice(names.PROJECTS)
        name = f"{short}{project}"
        for phase in ("二期", "三期", "四期", "五期"):
            if name not in self.deal_names:
                break
            name = f"{short}{project}{phase}"
        self.deal_names.add(name)
        return name

    # --- the main work of each stage ------------------------------------------------------

    def _activity(self, deal: Deal, span: float, kind: str) -> None:
        """Now and then a stay's work is logged as an activity, planned and then done."""
        rng = self.rng
        if rng.random() >= ACTIVITY_SHARE:
            return
        with deal.at(span * 0.3):
            due = deal.day + dt.timedelta(days=max(1, round(span * 0.5)))
            activity = ps.activity_plan(
                opportunity=deal.opp,
                actor=deal.seller,
                kind=kind,
                subject=rng.choice(names.ACTIVITY_SUBJECTS[kind]),
                due_on=due,
            )
        with deal.at(span * 0.5):
            ps.activity_complete(
                activity=activity, actor=deal.seller, outcome=rng.choice(names.ACTIVITY_OUTCOMES)
            )

    def _visit(self, deal: Deal, span: float) -> None:
        self._activity(deal, span, "visit")

    def _presentation(self, deal: Deal, span: float) -> None:
        self._activity(deal, span, "presentation")

    def _demo(self, deal: Deal, span: float) -> None:
        self._activity(deal, span, "demo")

    def _meeting(self, deal: Deal, span: float) -> None:
        self._activity(deal, span, "meeting")

    def _competitors(self, deal: Deal, span: float) -> None:
        """Competing vendors and consultants; now and then the customer names none."""
        rng = self.rng
        if deal.competitors or rng.random() < 0.04:
            return
        found = [(v, "vendor") for v in rng.sample(names.VENDORS, rng.choice([1, 1, 1, 1, 1, 2]))]
        if rng.random() < 0.15:
            found.append((rng.choice(names.CONSULTANTS), "consultant"))
        with deal.at(span):
            for name, kind in found:
                ps.competitor_add(opportunity=deal.opp, actor=deal.seller, name=name, kind=kind)
        deal.competitors = found

    def _timeline(self, deal: Deal, span: float) -> None:
        """The customer's timeline: a bid date if there is a tender, else the signing date."""
        if deal.key_dates:
            return
        kind = "bid" if self.rng.random() < 0.35 else "signing"
        with deal.at(span):
            planned = deal.opp.close_date - dt.timedelta(days=30 if kind == "bid" else 0)
            ps.key_date_set(
                opportunity=deal.opp, actor=deal.seller, kind=kind, planned=max(planned, deal.day)
            )
        deal.key_dates.add(kind)

    def _approval(self, deal: Deal, span: float) -> None:
        """立项: the seller asks, a manager of the branch decides; some are sent back first."""
        if deal.approved:
            return
        rng = self.rng
        budget = deal.opp.amount * Decimal(rng.choice(["1.0", "1.1", "1.2", "1.3"]))
        rejected = rng.random() < 0.12
        for attempt in (1, 2):
            with deal.at(span * 0.6 if attempt == 1 else rng.uniform(5, 15)):
                request = ps.approval_request(
                    opportunity=deal.opp,
                    actor=deal.seller,
                    requirement=deal.opp.need,
                    budget=budget,
                    timeline=f"计划{deal.opp.close_date:%Y年%m月}前完成选型签约",
                    selection_team="分管副总牵头，财务、信息部门参与选型，领导高度重视",
                    competition="、".join(name for name, _kind in deal.competitors),
                    strategy="产品方向介绍与行业白皮书引导",
                )
            approve = attempt == 2 or not rejected
            with deal.at(rng.uniform(0.5, 4)):
                ps.approval_decide(
                    approval=request,
                    actor=deal.approver,
                    approve=approve,
                    comment=rng.choice(
                        names.APPROVAL_COMMENTS if approve else names.APPROVAL_REJECTIONS
                    ),
                )
            if approve:
                deal.approved = True
                return
            if rng.random() < 0.4:  # the seller gives up on it
                deal.fate, deal.lost_reason = "lose", rng.choice(["no_budget", "dropped"])
                return

    def _team(self, deal: Deal, span: float) -> None:
        """The project team (项目小组) forms once the 立项 is granted."""
        if deal.team:
            return
        rng = self.rng
        branch_code = next(c for c, b in self.org.branches.items() if b.pk == deal.opp.branch_id)
        region = self.org.region_of(branch_code)
        members = [
            (rng.choice(self.org.in_role("presales_consultant", region)), "presales_consultant")
        ]
        # Bigger projects get a project manager, some an expert, the biggest the sales director.
        if deal.opp.amount >= 1_500_000:
            members.append((rng.choice(self.org.in_role("project_manager")), "project_manager"))
        for role, chance in (("product_expert", 0.12), ("industry_expert", 0.06)):
            if rng.random() < chance:
                members.append((rng.choice(self.org.in_role(role)), role))
        if deal.opp.amount >= 8_000_000:
            members.append((self.org.sales_director(branch_code), "sales_director"))
        with deal.at(span):
            for user, role in members:
                ps.team_member_add(opportunity=deal.opp, actor=deal.seller, user=user, role=role)
        deal.team = True

    def _preliminary_quote(self, deal: Deal, span: float) -> None:
        """A preliminary quote (software, implementation, services); the amount follows it."""
        rng = self.rng
        total = deal.opp.amount * Decimal(rng.uniform(0.9, 1.12))
        with deal.at(span * 0.7):
            quote = ps.quote_create(
                opportunity=deal.opp,
                actor=deal.seller,
                kind="preliminary",
                lines=self._lines(total, discount=0),
                submit=True,
            )
        if rng.random() < 0.5:  # the other half keep the amount they had
            return
        with deal.at(span * 0.3):
            deal.opp = ps.opportunity_update(
                opportunity=deal.opp,
                actor=deal.seller,
                amount=quote.totals()["total"],
                reason="按初步报价调整商机金额",
            )

    def _formal_quote(self, deal: Deal, span: float) -> None:
        with deal.at(span):
            quote = ps.quote_create(
                opportunity=deal.opp,
                actor=deal.seller,
                kind="formal",
                lines=self._lines(deal.opp.amount, discount=self.rng.choice([0, 5, 8, 10, 15])),
                submit=True,
            )
        deal.formal_total = quote.totals()["total"]

    def _lines(self, total: Decimal, *, discount: int) -> list[dict[str, object]]:
        rng = self.rng
        software = (total * Decimal(rng.uniform(0.5, 0.62))).quantize(Decimal(1000))
        implementation = (total * Decimal(rng.uniform(0.25, 0.33))).quantize(Decimal(1000))
        services = max(total.quantize(Decimal(1000)) - software - implementation, Decimal(10000))
        days = max(20, int(implementation / 2500))
        return [
            {
                "category": "software",
                "description": f"集团管理软件许可（{rng.choice([50, 100, 200, 500])}用户）",
                "unit_price": software,
                "discount_percent": discount,
            },
            {
                "category": "implementation",
                "description": f"实施服务（{days}人天）",
                "unit_price": implementation,
            },
            {
                "category": "services",
                "description": "首年运维与技术支持服务",
                "unit_price": services,
            },
        ]

    def _schedule(self, deal: Deal, span: float) -> None:
        """The basic schedule stage 6 asks for: the negotiation and the signing."""
        if {"negotiation", "signing"} <= deal.key_dates:
            return
        with deal.at(span):
            close = max(deal.opp.close_date, deal.day + dt.timedelta(days=7))
            for kind, planned in (
                ("negotiation", close - dt.timedelta(days=10)),
                ("signing", close),
            ):
                if kind in deal.key_dates:
                    continue
                ps.key_date_set(
                    opportunity=deal.opp,
                    actor=deal.seller,
                    kind=kind,
                    planned=max(planned, deal.day),
                )
        deal.key_dates |= {"negotiation", "signing"}

    def _objections(self, deal: Deal, span: float) -> None:
        """The customer's objections, queued and answered (stage 6's main work)."""
        rng = self.rng
        if rng.random() >= 0.5:
            return
        picked = rng.sample(names.OBJECTIONS, rng.choice([1, 1, 2]))
        raised = []
        with deal.at(span * 0.4):
            for text, answer in picked:
                raised.append(
                    (ps.objection_raise(opportunity=deal.opp, actor=deal.seller, text=text), answer)
                )
        with deal.at(span * 0.6):
            for objection, answer in raised:
                ps.objection_answer(objection=objection, actor=deal.seller, answer=answer)

    # --- leaving a stage ------------------------------------------------------------------

    def _advance(self, deal: Deal) -> None:
        rng = self.rng
        to_stage = OPEN_STAGES[OPEN_STAGES.index(deal.stage) + 1]
        actor, override = deal.seller, ""
        if to_stage == "project" and not deal.competitors:
            actor, override = deal.approver, names.OVERRIDE_COMPETITION
        if to_stage == "recognition":
            if rng.random() < 0.04 and (deal.opp.close_date - deal.day).days > 100:
                actor, override = deal.approver, names.OVERRIDE_CLOSE_DATE
            else:
                self._close_within_90_days(deal)
        evidence = None
        if to_stage not in deal.evidenced:
            evidence = {key: rng.choice(notes) for key, notes in EVIDENCE[to_stage].items()}
        with deal.at(deal.exit_gap):
            deal.opp = ps.opportunity_advance(
                opportunity=deal.opp,
                to_stage=self.stages[to_stage],
                actor=actor,
                evidence=evidence,
                override_reason=override,
            )
        deal.evidenced.add(to_stage)
        deal.stage = to_stage

    def _close_within_90_days(self, deal: Deal) -> None:
        """Stage 5 asks for a signing within three months: just before advancing, the seller
        records the date the customer now gives."""
        days_left = (deal.opp.close_date - deal.day).days - round(deal.exit_gap)
        if 14 <= days_left <= 80:
            return
        last_step = min(self.rng.uniform(0.2, 2), deal.exit_gap / 2)
        with deal.at(deal.exit_gap - last_step):
            deal.opp = ps.opportunity_update(
                opportunity=deal.opp,
                actor=deal.seller,
                close_date=deal.day + dt.timedelta(days=self.rng.randint(30, 80)),
                reason="客户确认签约时间",
            )
        deal.exit_gap = last_step

    def _keep_close_date_ahead(self, deal: Deal) -> None:
        """A deal whose expected close has (nearly) passed gets a new date: pushed out."""
        if deal.opp.close_date >= deal.day + dt.timedelta(days=10):
            return
        with deal.at(self.rng.uniform(0.2, 2)):
            deal.opp = ps.opportunity_update(
                opportunity=deal.opp,
                actor=deal.seller,
                close_date=deal.day + dt.timedelta(days=self.rng.randint(30, 100)),
                reason=self.rng.choice(names.PUSH_REASONS),
            )

    def _regress(self, deal: Deal) -> None:
        to_stage = OPEN_STAGES[OPEN_STAGES.index(deal.stage) - 1]
        with deal.at(deal.exit_gap):
            deal.opp = ps.opportunity_regress(
                opportunity=deal.opp,
                to_stage=self.stages[to_stage],
                actor=deal.seller,
                reason=self.rng.choice(names.REGRESS_REASONS),
            )
        deal.stage = to_stage
        deal.regressed = True

    def _lose(self, deal: Deal) -> bool:
        """Lose the deal at its stage; return True if it is later reopened and goes on."""
        rng = self.rng
        early = deal.stage in ("discover", "intent")
        if not deal.lost_reason:
            table = EARLY_LOSSES if early else LATE_LOSSES
            deal.lost_reason = rng.choices(list(table), weights=list(table.values()))[0]
        lost_to = None
        if deal.lost_reason in LOST_TO_REASONS and deal.vendors and rng.random() < 0.8:
            lost_to = rng.choice(deal.vendors)
        with deal.at(deal.exit_gap):
            deal.opp = ps.opportunity_lose(
                opportunity=deal.opp,
                actor=deal.seller,
                reason=deal.lost_reason,
                note=rng.choice(names.LOST_NOTES[deal.lost_reason]),
                lost_to=lost_to,
            )
        if deal.reopened or deal.lost_reason not in REOPENABLE or rng.random() >= 0.15:
            return False
        with deal.at(rng.uniform(30, 150)):
            deal.opp = ps.opportunity_reopen(
                opportunity=deal.opp, actor=deal.seller, reason=rng.choice(names.REOPEN_REASONS)
            )
        deal.reopened = True
        deal.lost_reason = ""
        return True

    def _win(self, deal: Deal) -> None:
        with deal.at(deal.exit_gap):
            deal.opp = ps.opportunity_win(
                opportunity=deal.opp,
                actor=deal.seller,
                evidence={"contract_signed": self.rng.choice(names.SIGNED_NOTES)},
                amount=getattr(deal, "formal_total", None),
            )
        deal.stage = "closed"

    def _reopen_won(self, deal: Deal) -> bool:
        """Now and then the customer reopens a signed deal; the branch manager reopens it."""
        if deal.reopened or self.rng.random() >= 0.015:
            return False
        with deal.at(self.rng.uniform(3, 20)):
            deal.opp = ps.opportunity_reopen(
                opportunity=deal.opp, actor=deal.approver, reason=names.WON_REOPEN_REASONS[0]
            )
        deal.reopened = True
        deal.stage = deal.opp.stage.key
        return True

    def _finish_open(self, deal: Deal) -> None:
        """A deal still open today: most have a close date ahead and a next step planned."""
        rng = self.rng
        if deal.opp.status != "open":
            return
        if deal.opp.close_date < self.today and rng.random() < 0.85:
            moment = deal.clock.last_chance()
            if moment is not None:
                with clock.frozen_at(moment):
                    deal.opp = ps.opportunity_update(
                        opportunity=deal.opp,
                        actor=deal.seller,
                        close_date=self.today + dt.timedelta(days=rng.randint(10, 120)),
                        reason=rng.choice(names.PUSH_REASONS),
                    )
        moment = deal.clock.last_chance()
        if moment is not None and rng.random() < 0.7:
            kind = {"discover": "visit", "intent": "presentation", "project": "demo"}.get(
                deal.stage, "meeting"
            )
            with clock.frozen_at(moment):
                ps.activity_plan(
                    opportunity=deal.opp,
                    actor=deal.seller,
                    kind=kind,
                    subject=rng.choice(names.ACTIVITY_SUBJECTS[kind]),
                    due_on=self.today + dt.timedelta(days=rng.randint(0, 14)),
                )
