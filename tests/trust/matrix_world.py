"""The permission matrix's world: a Beijing account and deals (names with 京密) and Shanghai
ones (names with 绝密, amounts 7654321), with every kind of row around the Beijing deal (its
team, a pending 立项 request, a competitor, a key date, an objection, a quote, an activity),
targets of both branches, an import upload and run of the Beijing manager and an API token of
the seller. The `world` fixture returns the ids the tables of `matrix.py` refer to; the matrix
tests, the rules tests and the CSRF tests all run in it.
"""

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from loudou.api.services import token_create
from loudou.customers.services import account_create, contact_create
from loudou.interop import runs, uploads
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from tests.conftest import Walker, credit_code
from tests.trust import matrix as m

SALESFORCE_CSV = (
    "Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),"
    "Amount,Close Date,Created Date,Won,Closed\n"
    "006B1,华能集团财务共享,华能集团,seller,Prospecting,10,1200000,2026/12/31,2026-09-01,0,0\n"
)


@pytest.fixture
def world(
    org: dict[str, Any], playbook: Any, settings: Any, tmp_path: Path, monkeypatch: Any
) -> Any:
    """Beijing deals and account (names with 京密) and Shanghai ones (names with 绝密, amounts
    7654321) with every kind of row around them; returns the ids the table refers to."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())  # an import runs in the request
    seller, teammate, manager = org["seller"], org["teammate"], org["manager"]
    sh_seller, sh_manager = org["sh_seller"], org["sh_manager"]
    today = dt.date.today()

    account = account_create(
        actor=seller,
        name="京密客户集团",
        credit_code=credit_code(21),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need="集团财务管控",
        product_fit="多组织财务",
    )
    contact = contact_create(
        account=account, actor=seller, name="京密王总", title="CIO", selection_part="decision_maker"
    )
    beijing = Walker(org, account)
    deal = beijing.to(beijing.create(name="京密商机-一", amount="1000000"), "intent")
    ps.team_member_add(opportunity=deal, actor=seller, user=teammate, role="presales_consultant")
    member = ps.team_member_add(opportunity=deal, actor=seller, user=manager, role="branch_gm")
    approval = ps.approval_request(
        opportunity=deal,
        actor=seller,
        requirement="京密需求",
        budget="1200000",
        timeline="Q1",
        selection_team="CIO",
    )
    row = ps.competitor_add(opportunity=deal, actor=seller, name="Kingdee")
    ps.key_date_set(opportunity=deal, actor=seller, kind="bid", planned=today)
    objection = ps.objection_raise(opportunity=deal, actor=seller, text="京密异议")
    quote = ps.quote_create(opportunity=deal, actor=seller, kind="preliminary", lines=m.LINES)
    activity = ps.activity_plan(
        opportunity=deal, actor=seller, kind="call", subject="京密拜访", due_on=today
    )
    fresh = beijing.create(name="京密商机-二", amount="500000")
    ps.team_member_add(opportunity=fresh, actor=seller, user=teammate, role="presales_consultant")
    lost = beijing.create(name="京密商机-三", amount="300000")
    ps.team_member_add(opportunity=lost, actor=seller, user=teammate, role="presales_consultant")
    ps.opportunity_lose(opportunity=lost, actor=seller, reason="price")
    target_set(actor=manager, user=seller, month=today.replace(day=1), amount="3000000")

    sh_account = account_create(
        actor=sh_seller,
        name="绝密客户-XYZ",
        credit_code=credit_code(22),
        industry="manufacturing",
        size_band="large",
        organisations_count=30,
        it_need="绝密需求",
        product_fit="财务",
    )
    contact_create(
        account=sh_account,
        actor=sh_seller,
        name="绝密联系人-XYZ",
        title="CFO",
        selection_part="decision_maker",
    )
    shanghai = Walker({**org, "seller": sh_seller, "manager": sh_manager}, sh_account)
    sh_deal = shanghai.to(shanghai.create(name="绝密项目-XYZ", amount="7654321"), "recognition")
    shanghai.to(shanghai.create(name="绝密项目-赢", amount="7654321"), "closed")
    sh_lost = shanghai.create(name="绝密项目-输", amount="7654321")
    ps.opportunity_lose(opportunity=sh_lost, actor=sh_seller, reason="price")
    sh_pending = shanghai.create(name="绝密项目-待批", amount="7654321")
    ps.approval_request(
        opportunity=sh_pending,
        actor=sh_seller,
        requirement="绝密需求",
        budget="7654321",
        timeline="Q1",
        selection_team="绝密团队",
    )
    ps.activity_plan(
        opportunity=sh_deal, actor=sh_seller, kind="visit", subject="绝密拜访", due_on=today
    )
    ps.objection_raise(opportunity=sh_deal, actor=sh_seller, text="绝密异议")
    target_set(actor=sh_manager, user=sh_seller, month=today.replace(day=1), amount="7654321")

    def make_upload() -> dict[str, Any]:
        upload = uploads.upload_create(
            actor=manager,
            fmt="salesforce",
            playbook=playbook,
            files=[("opps.csv", SALESFORCE_CSV.encode())],
        )
        return {"new_upload": upload.token}

    def upload_form() -> dict[str, Any]:
        data = io.BytesIO(SALESFORCE_CSV.encode())
        data.name = "opps.csv"
        return {"format": "salesforce", "playbook": playbook.key, "file": data}

    queued = uploads.upload_create(
        actor=manager,
        fmt="salesforce",
        playbook=playbook,
        files=[("opps.csv", SALESFORCE_CSV.encode())],
    )
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)
    run = runs.import_run_queue(actor=manager, upload=queued, playbook=playbook)
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())
    web_token, _secret = token_create(actor=seller, name="web token")

    for opp in (deal, fresh, lost):
        opp.refresh_from_db()
    return {
        "org": org,
        "deal": deal.pk,
        "deal_version": deal.version,
        "fresh": fresh.pk,
        "fresh_version": fresh.version,
        "lost": lost.pk,
        "lost_version": lost.version,
        "account": account.pk,
        "contact": contact.pk,
        "approval": approval.pk,
        "member": member.pk,
        "row": row.pk,
        "objection": objection.pk,
        "quote": quote.pk,
        "activity": activity.pk,
        "sh_account": sh_account.pk,
        "sh_deal": sh_deal.pk,
        "shanghai": org["shanghai"].pk,
        "seller": seller.pk,
        "teammate": teammate.pk,
        "tj_seller": org["tj_seller"].pk,
        "sh_seller": sh_seller.pk,
        "playbook_key": playbook.key,
        "upload": make_upload()["new_upload"],
        "run": run.pk,
        "web_token": web_token.pk,
        "make_upload": make_upload,
        "upload_form": upload_form,
    }
