"""The world the service fuzz plays in: the users of the `org` fixture it acts as, accounts in
Beijing, Tianjin and Shanghai (each with a decision maker) and five deals at several stages,
two of them with a team member who does not own them; the visibility rule written out independently of
the code under test (who may see a deal, who manages a branch); and the snapshots a step is
judged by (every deal's version, stage, status, owner and amount, the row counts of everything
around a deal, and the history rows).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from loudou.core import clock
from loudou.core.models import AuditEvent
from loudou.customers.models import Account
from loudou.customers.services import account_create, contact_create
from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    Activity,
    CriterionEvidence,
    GateOverride,
    KeyDate,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    OpportunityHistory,
    ProjectApproval,
    Quote,
    TeamMember,
)
from tests.conftest import (
    INTENT_EVIDENCE,
    NEGOTIATION_EVIDENCE,
    PROJECT_EVIDENCE,
    RECOGNITION_EVIDENCE,
    credit_code,
)

USERS = [
    "seller",
    "teammate",
    "tj_seller",
    "sh_seller",
    "manager",
    "north_manager",
    "sh_manager",
    "executive",
    "admin",
]
EVIDENCE = {
    "discover": {"need_found": "CFO described the need"},
    "intent": INTENT_EVIDENCE,
    "project": PROJECT_EVIDENCE,
    "recognition": RECOGNITION_EVIDENCE,
    "negotiation": NEGOTIATION_EVIDENCE,
    "closed": {"contract_signed": "Signed"},
}


@dataclass
class World:
    org: dict[str, Any]
    accounts: list[Account]
    deals: list[int]
    managed: dict[str, set[int]] = field(default_factory=dict)

    def user(self, name: str) -> Any:
        return self.org[name]


@pytest.fixture
def world(org: dict[str, Any], account: Account, walker: Any) -> World:
    """Accounts in Beijing, Tianjin and Shanghai (each with a decision maker); five deals."""

    def branch_account(owner: str, name: str, n: int) -> Account:
        found = account_create(
            actor=org[owner],
            name=name,
            credit_code=credit_code(n),
            industry="power",
            size_band="large",
            organisations_count=5,
            it_need="集团管控",
            product_fit="财务",
        )
        contact_create(
            account=found, actor=org[owner], name="李总", selection_part="decision_maker"
        )
        return found

    tj = branch_account("tj_seller", "天津港集团", 21)
    sh = branch_account("sh_seller", "上海汽车集团", 22)
    close = clock.today() + dt.timedelta(days=60)

    def deal(owner: str, acc: Account, name: str) -> Any:
        return ps.opportunity_create(
            actor=org[owner],
            account=acc,
            name=name,
            amount="800000",
            close_date=close,
            source="Referral",
            evidence=EVIDENCE["discover"],
        )

    deals = [
        walker.create(name="北京·发掘"),
        walker.to(walker.create(name="北京·立项"), "project"),
        walker.to(walker.create(name="北京·谈判"), "negotiation"),
        ps.opportunity_advance(
            opportunity=deal("tj_seller", tj, "天津·意向"),
            to_stage="intent",
            actor=org["tj_seller"],
            evidence=INTENT_EVIDENCE,
        ),
        deal("sh_seller", sh, "上海·发掘"),
    ]
    # Team members see deals outside their own: a colleague, and a seller of another region.
    for deal_index, member in ((0, "teammate"), (2, "sh_seller")):
        ps.team_member_add(
            opportunity=deals[deal_index],
            actor=org["seller"],
            user=org[member],
            role="presales_consultant",
        )
    b = {k: org[k].pk for k in ("beijing", "tianjin", "shanghai", "north", "company")}
    return World(
        org=org,
        accounts=[account, tj, sh],
        deals=[d.pk for d in deals],
        managed={
            "manager": {b["beijing"]},
            "north_manager": {b["north"], b["beijing"], b["tianjin"]},
            "sh_manager": {b["shanghai"]},
        },
    )


# --- the rule, written out independently of the code under test --------------------------


def may_see(w: World, user_name: str, opp: Opportunity) -> bool:
    user = w.user(user_name)
    if user_name in ("executive", "admin"):
        return True
    if opp.owner_id == user.pk or opp.branch_id in w.managed.get(user_name, set()):
        return True
    return TeamMember.objects.filter(opportunity_id=opp.pk, user_id=user.pk).exists()


def manages(w: World, user_name: str, branch_id: int) -> bool:
    return user_name in ("executive", "admin") or branch_id in w.managed.get(user_name, set())


# --- snapshots ---------------------------------------------------------------------------

COUNTED = [
    OpportunityHistory,
    AuditEvent,
    CriterionEvidence,
    ProjectApproval,
    Quote,
    TeamMember,
    OpportunityCompetitor,
    Objection,
    Activity,
    KeyDate,
    GateOverride,
    Account,
]


def state() -> dict[str, Any]:
    return {
        "deals": {
            row[0]: row[1:]
            for row in Opportunity.objects.values_list(
                "pk", "version", "stage_id", "status", "owner_id", "amount", "name", "budget"
            )
        },
        "counts": [m.objects.count() for m in COUNTED],
        "approvals": list(ProjectApproval.objects.order_by("pk").values_list("pk", "status")),
        "activities": list(Activity.objects.order_by("pk").values_list("pk", "done_at")),
        "quotes": list(Quote.objects.order_by("pk").values_list("pk", "submitted_at")),
        "objections": list(Objection.objects.order_by("pk").values_list("pk", "status")),
    }


def history_rows() -> dict[int, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in OpportunityHistory.objects.values_list(
            "pk",
            "opportunity_id",
            "valid_from",
            "stage_id",
            "status",
            "amount",
            "currency",
            "close_date",
            "probability",
            "owner_id",
            "forecast_category",
            "actor_id",
            "action",
            "reason",
        )
    }
