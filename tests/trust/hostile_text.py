"""The hostile world of the escaping tests: values mixing markup, quotes, an RTL override,
Arabic and Hebrew and template syntax, cut to each field's length (`hostile`); a Beijing seller,
manager and teammate with hostile display names; a target account and contact, and deals at
project (every section filled), lost, regressed and waiting for 立项, whose every text field is
hostile. `assert_escaped` is the check every page gets; `_client` and `_api` sign a user in on
the web and on the API.
"""

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from loudou.api.services import token_create
from loudou.core import clock
from loudou.customers.services import account_create, account_qualify, contact_create
from loudou.org.services import user_create
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from tests.conftest import (
    INTENT_EVIDENCE,
    NEGOTIATION_EVIDENCE,
    PROJECT_EVIDENCE,
    RECOGNITION_EVIDENCE,
    credit_code,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
QUOTES = "'\""
RTL = "\u202egnp.exe\u202c"
BIDI = "شركة الكهرباء חברת החשמל"
TEMPLATE = "{{ 7|add:7 }}{% now 'Y' %}"
PARTS = [SCRIPT, IMG, QUOTES, RTL, BIDI, TEMPLATE]
# What may never come out of a page as markup.
RAW = ["<script>alert(1)", "<img src=x onerror", "alert(1)</script>"]
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
LONG = ("长文本" + SCRIPT + "x" * 72) * 50  # 5,000 characters
assert len(LONG) == 5000


def hostile(tag: str, limit: int = 200) -> str:
    """`tag` then as many hostile parts as fit in `limit` characters (the field's length)."""
    text = tag
    for part in PARTS:
        if len(text) + len(part) > limit:
            break
        text += part
    assert SCRIPT in text
    return text


def marker(tag: str) -> str:
    """What a page shows of a hostile value, escaped, however much of it the page truncates."""
    return escape(tag + SCRIPT)


@dataclass
class World:
    """Users, an account and deals whose every text field is hostile."""

    owner: Any
    manager: Any
    account: Any
    contact: Any
    deals: dict[str, Any]
    tags: set[str] = field(default_factory=set)


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _api(user: Any) -> Client:
    _token, secret = token_create(actor=user, name="escaping test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def world(org: dict[str, Any]) -> World:
    """A Beijing seller and manager with hostile display names; a target account and contact;
    deals at project (with every section filled), lost, regressed, and one waiting for 立项."""
    admin, beijing = org["admin"], org["beijing"]

    def person(name: str, role: str, level: str) -> Any:
        return user_create(
            actor=admin,
            username=name,
            password="loudou-test-pw-1",
            display_name=hostile(f"U-{name}:", 120),
            branch=beijing,
            job_role=role,
            access_level=level,
            check_password=False,
        )

    owner = person("evil_seller", "account_manager", "seller")
    manager = person("evil_manager", "branch_gm", "manager")
    mate = person("evil_mate", "presales_consultant", "seller")
    account = account_create(
        actor=owner,
        name=hostile("ACC-NAME:"),
        credit_code=credit_code(66),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need=hostile("ACC-NEED:", 5000) + LONG,
        product_fit=hostile("ACC-FIT:", 5000),
    )
    account_qualify(account=account, actor=manager, override=True, reason=hostile("ACC-QUAL:"))
    contact = contact_create(
        account=account,
        actor=owner,
        name=hostile("CON-NAME:", 120),
        title=hostile("CON-TITLE:", 120),
        phone=SCRIPT,
        email="javascript:alert(1)",
        selection_part="decision_maker",
    )
    close = clock.today() + dt.timedelta(days=30)

    def create(tag: str) -> Any:
        return ps.opportunity_create(
            actor=owner,
            account=account,
            name=hostile(f"{tag}-NAME:"),
            amount="1000000",
            close_date=close,
            need=hostile(f"{tag}-NEED:", 5000) + LONG,
            source=hostile(f"{tag}-SRC:", 120),
            evidence={"need_found": hostile(f"{tag}-EV0:", 5000)},
        )

    def ev(tag: str, evidence: dict[str, str]) -> dict[str, str]:
        return {k: hostile(f"{tag}-EV-{k}:", 5000) for k in evidence}

    # The main deal, at project, every section filled.
    main = create("MAIN")
    main = ps.opportunity_advance(
        opportunity=main, to_stage="intent", actor=owner, evidence=ev("MAIN", INTENT_EVIDENCE)
    )
    ps.competitor_add(
        opportunity=main, actor=owner, name=hostile("COMP:", 120), notes=hostile("COMPN:", 5000)
    )
    ps.key_date_set(
        opportunity=main, actor=owner, kind="custom", planned=close, label=hostile("KD:", 120)
    )
    ps.key_date_set(opportunity=main, actor=owner, kind="bid", planned=close)
    ps.team_member_add(opportunity=main, actor=owner, user=mate, role="presales_consultant")
    approval = ps.approval_request(
        opportunity=main,
        actor=owner,
        requirement=hostile("APR-REQ:", 5000),
        budget="1200000",
        timeline=hostile("APR-TL:", 5000),
        selection_team=hostile("APR-SEL:", 5000),
        competition=hostile("APR-COMP:", 5000),
        strategy=hostile("APR-STRAT:", 5000),
    )
    ps.approval_decide(
        approval=approval, actor=manager, approve=True, comment=hostile("APR-OK:", 5000)
    )
    main = ps.opportunity_advance(
        opportunity=main, to_stage="project", actor=owner, evidence=ev("MAIN", PROJECT_EVIDENCE)
    )
    lines = [
        {"category": "software", "description": hostile("QL1:"), "unit_price": "600000"},
        {"category": "implementation", "description": hostile("QL2:"), "unit_price": "3000"},
        {"category": "services", "description": hostile("QL3:"), "unit_price": "100000"},
    ]
    ps.quote_create(
        opportunity=main,
        actor=owner,
        kind="preliminary",
        lines=lines,
        notes=hostile("QN:", 5000),
        submit=True,
    )
    objection = ps.objection_raise(opportunity=main, actor=owner, text=hostile("OBJ:", 5000))
    ps.objection_answer(objection=objection, actor=owner, answer=hostile("ANS:", 5000))
    ps.objection_raise(opportunity=main, actor=owner, text=hostile("OBJQ:", 5000))
    done = ps.activity_plan(
        opportunity=main,
        actor=owner,
        kind="visit",
        subject=hostile("ACT1:"),
        due_on=clock.today() - dt.timedelta(days=3),
        notes=hostile("ACTN:", 5000),
    )
    ps.activity_complete(activity=done, actor=owner, outcome=hostile("ACTO:", 5000))
    ps.activity_plan(
        opportunity=main,
        actor=owner,
        kind="call",
        subject=hostile("ACT2:"),
        due_on=clock.today() - dt.timedelta(days=1),  # overdue: the dashboard lists it
        owner=owner,
    )
    main = ps.opportunity_advance(
        opportunity=main,
        to_stage="recognition",
        actor=owner,
        evidence=ev("MAIN", RECOGNITION_EVIDENCE),
    )
    ps.quote_create(
        opportunity=main,
        actor=owner,
        kind="preliminary",
        lines=[lines[0]],
        notes=hostile("QN2:", 5000),
    )
    # A manager's gate override with a hostile reason.
    main = ps.opportunity_advance(
        opportunity=main,
        to_stage="negotiation",
        actor=manager,
        evidence=ev("MAIN", NEGOTIATION_EVIDENCE),
        override_reason=hostile("OVR:", 5000),
    )
    main = ps.opportunity_regress(
        opportunity=main, to_stage="recognition", actor=owner, reason=hostile("REG:", 5000)
    )
    main = ps.opportunity_update(
        opportunity=main, actor=owner, amount="1100000", reason=hostile("UPD:", 5000)
    )

    lost = ps.opportunity_lose(
        opportunity=create("LOST"),
        actor=owner,
        reason="price",
        note=hostile("LOSTN:", 5000),
        lost_to=hostile("LOSTTO:", 120),
    )
    waiting = ps.opportunity_advance(
        opportunity=create("WAIT"), to_stage="intent", actor=owner, evidence=INTENT_EVIDENCE
    )
    ps.approval_request(
        opportunity=waiting,
        actor=owner,
        requirement=hostile("WAPR-REQ:", 5000),
        budget="900000",
        timeline=hostile("WAPR-TL:", 5000),
        selection_team=hostile("WAPR-SEL:", 5000),
        competition=hostile("WAPR-COMP:", 5000),
        strategy=hostile("WAPR-STRAT:", 5000),
    )
    token_create(actor=owner, name=hostile("TOKEN:", 100))
    return World(
        owner=owner,
        manager=manager,
        account=account,
        contact=contact,
        deals={"main": main, "lost": lost, "wait": Opportunity.objects.get(pk=waiting.pk)},
    )


def assert_escaped(html: str, where: str, tags: list[str]) -> None:
    """No hostile markup comes out raw; each tag's value is there, escaped; JSON embedded in the
    page keeps `<` and `>` escaped so that it cannot close its script element."""
    for raw in RAW:
        assert raw not in html, f"{where}: raw {raw!r} at {html.find(raw)}"
    assert ESCAPED_SCRIPT in html, f"{where}: no escaped value at all"
    missing = [t for t in tags if marker(t) not in html]
    assert not missing, f"{where}: {missing} not shown escaped"
    for body in re.findall(
        r"<script[^>]*type=\"application/json\"[^>]*>(.*?)</script>", html, re.S
    ):
        assert "<" not in body and ">" not in body, f"{where}: {body[:200]}"
        json.loads(body)
