"""Shared fixtures: the built-in playbooks, a small organisation, a target account, and a helper
that walks an opportunity down the funnel through the real services."""

import datetime as dt
import os
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone, translation

from loudou.customers.credit_code import check_character
from loudou.customers.services import account_create, contact_create
from loudou.org.services import branch_create, user_create
from loudou.pipeline import services as ps
from loudou.pipeline.catalogs import lost_reasons_load_defaults
from loudou.playbooks.services import playbooks_load_builtin


def pytest_configure(config: Any) -> None:
    del config
    # CI runs the suite against PostgreSQL with LOUDOU_EXPECT_POSTGRES=1: a run that silently
    # fell back to SQLite must fail, not pass.
    if os.environ.get("LOUDOU_EXPECT_POSTGRES") == "1":
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError("LOUDOU_EXPECT_POSTGRES=1 but DATABASE_URL is not PostgreSQL")


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Hashing with PBKDF2 costs ~0.3 s a user here; tests need no strong hashes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_by_default() -> Any:
    """Tests read messages in English unless they switch language themselves."""
    with translation.override("en"):
        yield


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def playbooks(db: Any) -> dict[str, Any]:
    loaded = playbooks_load_builtin()
    lost_reasons_load_defaults()
    return {p.key: p for p in loaded}


@pytest.fixture
def playbook(playbooks: dict[str, Any]) -> Any:
    return playbooks["project-funnel"]


@pytest.fixture
def org(playbooks: dict[str, Any]) -> dict[str, Any]:
    """Company → North (Beijing, Tianjin) and South (Shanghai); users in the seed's roles."""
    return make_org()


def make_org() -> dict[str, Any]:
    """The `org` fixture's branches and people, for fixtures of a wider scope (the playbooks'
    roles must be loaded)."""
    company = branch_create(actor=None, code="hq", name="总部", name_en="Head office")
    north = branch_create(actor=None, code="north", name="华北区", parent=company)
    beijing = branch_create(actor=None, code="bj", name="北京分公司", parent=north)
    tianjin = branch_create(actor=None, code="tj", name="天津分公司", parent=north)
    shanghai = branch_create(actor=None, code="sh", name="上海分公司", parent=company)

    def user(name: str, branch: Any, role: str, level: str = "seller") -> Any:
        return user_create(
            actor=None,
            username=name,
            password="loudou-test-pw-1",
            branch=branch,
            job_role=role,
            access_level=level,
            check_password=False,
        )

    return {
        "company": company,
        "north": north,
        "beijing": beijing,
        "tianjin": tianjin,
        "shanghai": shanghai,
        "seller": user("seller", beijing, "account_manager"),
        "teammate": user("teammate", beijing, "presales_consultant"),
        "tj_seller": user("tj_seller", tianjin, "account_manager"),
        "sh_seller": user("sh_seller", shanghai, "account_manager"),
        "manager": user("manager", beijing, "branch_gm", "manager"),
        "north_manager": user("north_manager", north, "sales_director", "manager"),
        "sh_manager": user("sh_manager", shanghai, "branch_gm", "manager"),
        "executive": user("executive", company, "executive", "executive"),
        "admin": user("admin", company, "executive", "admin"),
    }


def credit_code(n: int) -> str:
    first17 = f"9111{n:013d}"
    return first17 + check_character(first17)


@pytest.fixture
def account(org: dict[str, Any]) -> Any:
    """A target account of the Beijing seller, with a decision maker on the selection team."""
    return make_account(org)


def make_account(org: dict[str, Any]) -> Any:
    """The `account` fixture's account, for fixtures of a wider scope."""
    acc = account_create(
        actor=org["seller"],
        name="华北电力集团",
        credit_code=credit_code(1),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need="集团财务管控需要信息化",
        product_fit="多组织财务与供应链",
    )
    contact_create(
        account=acc, actor=org["seller"], name="王总", title="CIO", selection_part="decision_maker"
    )
    return acc


INTENT_EVIDENCE = {
    "interested": "CIO asked for a second meeting",
    "accepts_packaged": "They said they will not build in-house",
    "preliminary_requirements": "Requirement list received",
    "contacting_vendors": "They also met two vendors",
}
PROJECT_EVIDENCE = {
    "recognises_us": "Positive feedback on the demo",
    "has_requirement": "Formal requirement document",
    "guiding": "White paper sent, direction presentation done",
}
RECOGNITION_EVIDENCE = {"product_accepted": "Outline demo accepted", "shortlisted": "On the list"}
NEGOTIATION_EVIDENCE = {
    "accepted_us": "Accepted",
    "sole_or_shortlisted": "Shortlisted with one other",
}
PRELIMINARY_LINES = [
    {"category": "software", "description": "Licences", "unit_price": "600000"},
    {"category": "implementation", "description": "Implementation", "unit_price": "300000"},
    {"category": "services", "description": "Support", "unit_price": "100000"},
]


class Walker:
    """Moves an opportunity down the default playbook with the real services."""

    def __init__(self, org: dict[str, Any], account: Any) -> None:
        self.org = org
        self.account = account

    def create(self, name: str = "财务共享平台", amount: str = "1000000", **kw: Any) -> Any:
        kw.setdefault("close_date", timezone.localdate() + dt.timedelta(days=60))
        kw.setdefault("source", "Referral")
        kw.setdefault("evidence", {"need_found": "CFO described the need"})
        return ps.opportunity_create(
            actor=kw.pop("actor", self.org["seller"]),
            account=self.account,
            name=name,
            amount=amount,
            **kw,
        )

    def to(self, opp: Any, stage: str) -> Any:
        seller, manager = self.org["seller"], self.org["manager"]
        order = ["discover", "intent", "project", "recognition", "negotiation", "closed"]
        current = order.index(opp.stage.key)
        for step in order[current + 1 : order.index(stage) + 1]:
            if step == "intent":
                opp = ps.opportunity_advance(
                    opportunity=opp, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
                )
            elif step == "project":
                ps.competitor_add(opportunity=opp, actor=seller, name="Competitor A")
                ps.key_date_set(opportunity=opp, actor=seller, kind="bid", planned=opp.close_date)
                approval = ps.approval_request(
                    opportunity=opp,
                    actor=seller,
                    requirement="Group finance",
                    budget="1200000",
                    timeline="Decide by Q1",
                    selection_team="CIO leads, CFO supports",
                )
                ps.approval_decide(approval=approval, actor=manager, approve=True, comment="Go")
                opp = ps.opportunity_advance(
                    opportunity=opp, to_stage="project", actor=seller, evidence=PROJECT_EVIDENCE
                )
            elif step == "recognition":
                ps.quote_create(
                    opportunity=opp,
                    actor=seller,
                    kind="preliminary",
                    lines=PRELIMINARY_LINES,
                    submit=True,
                )
                opp = ps.opportunity_advance(
                    opportunity=opp,
                    to_stage="recognition",
                    actor=seller,
                    evidence=RECOGNITION_EVIDENCE,
                )
            elif step == "negotiation":
                ps.key_date_set(
                    opportunity=opp, actor=seller, kind="negotiation", planned=opp.close_date
                )
                ps.key_date_set(
                    opportunity=opp, actor=seller, kind="signing", planned=opp.close_date
                )
                opp = ps.opportunity_advance(
                    opportunity=opp,
                    to_stage="negotiation",
                    actor=seller,
                    evidence=NEGOTIATION_EVIDENCE,
                )
            elif step == "closed":
                ps.quote_create(
                    opportunity=opp,
                    actor=seller,
                    kind="formal",
                    lines=PRELIMINARY_LINES,
                    submit=True,
                )
                opp = ps.opportunity_win(
                    opportunity=opp, actor=seller, evidence={"contract_signed": "Signed"}
                )
        return opp


@pytest.fixture
def walker(org: dict[str, Any], account: Any) -> Walker:
    return Walker(org, account)
