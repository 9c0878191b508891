"""The opportunity page: who may open it, what it shows (in both languages), every section action
through the real services, refusals that change nothing, escaping, and a query count that does
not grow with the deal's rows. The create and edit forms: test_opportunity_form.py."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    Activity,
    CriterionEvidence,
    KeyDate,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    ProjectApproval,
    Quote,
    TeamMember,
)

pytestmark = pytest.mark.django_db


def url(opp: Opportunity, suffix: str = "") -> str:
    return f"/opportunities/{opp.pk}/{suffix}"


def snapshot(opp: Opportunity) -> tuple[Any, ...]:
    """What a refused action must leave alone."""
    opp.refresh_from_db()
    return (
        opp.version,
        opp.stage_id,
        opp.status,
        opp.amount,
        opp.history.count(),
        TeamMember.objects.filter(opportunity=opp).count(),
        CriterionEvidence.objects.filter(opportunity=opp).count(),
        ProjectApproval.objects.filter(opportunity=opp).count(),
        OpportunityCompetitor.objects.filter(opportunity=opp).count(),
        KeyDate.objects.filter(opportunity=opp).count(),
        Quote.objects.filter(opportunity=opp).count(),
        Objection.objects.filter(opportunity=opp).count(),
        Activity.objects.filter(opportunity=opp).count(),
    )


# --- who may open the page ----------------------------------------------------------------


def test_page_renders_for_owner_teammate_and_manager(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.create(name="集团财务共享")
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["teammate"], role="presales_consultant"
    )
    for name in ("seller", "teammate", "manager", "north_manager", "executive"):
        response = client_for(name).get(url(opp))
        assert response.status_code == 200, name
        html = response.content.decode()
        assert "集团财务共享" in html
        assert "华北电力集团" in html


def test_page_is_404_for_sellers_of_other_branches_and_outsiders(
    walker: Any, client_for: Any
) -> None:
    opp = walker.create()
    for name in ("tj_seller", "sh_seller", "sh_manager", "teammate"):
        assert client_for(name).get(url(opp)).status_code == 404, name
    assert client_for("seller").get("/opportunities/999999/").status_code == 404


def test_anonymous_is_sent_to_sign_in(walker: Any, client: Any) -> None:
    opp = walker.create()
    for path in (url(opp), url(opp, "edit/"), "/opportunities/new/"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login/" in response["Location"]
    response = client.post(url(opp, "objections/"), {"text": "Too expensive"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Objection.objects.count() == 0


# --- what it shows ---------------------------------------------------------------------------


def test_page_shows_header_path_and_the_next_stages_criteria(walker: Any, client_for: Any) -> None:
    opp = walker.create(amount="1000000", budget="1200000")
    html = client_for("seller").get(url(opp)).content.decode()
    assert "¥1,000,000" in html  # amount
    assert "¥100,000" in html  # weighted: 10 % in discovery
    assert f"version {opp.version}" in html
    assert "Discover potential opportunities" in html
    assert "Confirm customer intent" in html  # the next stage
    assert "has been found in a target customer: who, what need" in html  # definition
    assert "The customer is interested in our products and services" in html
    assert "CFO described the need" in html  # the evidence recorded at creation
    assert "recorded by seller" in html
    assert "Account manager" in html  # owners
    assert "Visit target customers and find potential needs" in html  # main work
    assert 'class="step current"' in html
    assert '"to_stage": "intent"' in html  # advance goes through the shared move endpoint
    assert '"from": "page"' in html
    assert f"/opportunities/{opp.pk}/move/" in html


def test_page_in_chinese_shows_the_playbooks_chinese_texts(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    html = client_for("seller", "zh-hans").get(url(opp)).content.decode()
    assert "发掘潜在商机" in html
    assert "在目标客户中发现了具体的潜在需求" in html
    assert "确认客户意向" in html
    assert "客户对我方产品和服务有兴趣" in html
    assert "拜访目标客户，发现潜在需求" in html
    assert "客户经理" in html
    assert "Confirm customer intent" not in html


def test_history_shows_a_stage_change_with_its_reason(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.to(walker.create(), "intent")
    ps.opportunity_regress(
        opportunity=opp, to_stage="discover", actor=org["seller"], reason="Budget frozen until Q3"
    )
    html = client_for("seller").get(url(opp)).content.decode()
    history = html[html.index('id="history"') :]
    assert "Moved back" in history
    assert "Budget frozen until Q3" in history
    assert "Confirm customer intent" in history and "Discover potential opportunities" in history
    assert "Opportunity created" in history
    assert history.index("Moved back") < history.index("Opportunity created")  # newest first


def test_history_shows_overrides_and_approval_decisions(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.to(walker.create(), "project")
    ps.opportunity_advance(
        opportunity=opp,
        to_stage="recognition",
        actor=org["manager"],
        override_reason="Strategic account, CEO sponsor",
    )
    html = client_for("seller").get(url(opp)).content.decode()
    history = html[html.index('id="history"') :]
    assert "Gate overridden into" in history
    assert "Strategic account, CEO sponsor" in history
    assert "Project set-up (立项) approved" in history


def test_closed_deal_shows_reopen_and_no_section_forms(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.create()
    ps.opportunity_lose(opportunity=opp, actor=org["seller"], reason="no_budget", note="Frozen")
    html = client_for("seller").get(url(opp)).content.decode()
    assert '"to_stage": "__reopen__"' in html
    assert 'class="step lost"' in html
    assert url(opp, "objections/") not in html
    assert url(opp, "team/") not in html


def test_executive_reads_without_forms(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    html = client_for("executive").get(url(opp)).content.decode()
    assert url(opp, "team/") not in html
    assert "/move/" not in html


def test_names_and_needs_with_script_render_as_text(walker: Any, client_for: Any) -> None:
    opp = walker.create(name='<script>alert("x")</script> "Q"', need="<b>bold</b> & 'quoted'")
    ps.objection_raise(opportunity=opp, actor=walker.org["seller"], text="<img src=x onerror=1>")
    html = client_for("seller").get(url(opp)).content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &quot;Q&quot;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in html
    assert "<img src=x" not in html
    edit = client_for("seller").get(url(opp, "edit/")).content.decode()
    assert '<script>alert("x")</script>' not in edit


# --- query count ----------------------------------------------------------------------------


def _grow(opp: Opportunity, org: Any, start: int, stop: int) -> None:
    """Rows of every kind the page lists: team members, quotes with lines, activities (done and
    not), objections, competitors, history rows and evidence."""
    seller = org["seller"]
    people = [org["teammate"], org["manager"], org["north_manager"]]
    roles = ["presales_consultant", "product_expert", "industry_expert", "project_manager"]
    for i in range(start, stop):
        ps.team_member_add(
            opportunity=opp, actor=seller, user=people[i % 3], role=roles[(i // 3) % 4]
        )
        ps.quote_create(
            opportunity=opp,
            actor=seller,
            kind="preliminary",
            lines=[
                {"category": "software", "description": f"L{i}", "unit_price": "100"},
                {"category": "services", "description": f"S{i}", "unit_price": "50"},
            ],
            submit=i % 2 == 0,
        )
        act = ps.activity_plan(
            opportunity=opp,
            actor=seller,
            kind="call",
            subject=f"Call {i}",
            due_on=timezone.localdate() + dt.timedelta(days=i - 2),
        )
        if i % 2:
            ps.activity_complete(activity=act, actor=seller, outcome="ok")
        ps.objection_raise(opportunity=opp, actor=seller, text=f"Objection {i}")
        ps.competitor_add(opportunity=opp, actor=seller, name=f"Vendor {i}")
        ps.opportunity_update(opportunity=opp, actor=seller, amount=str(1000000 + i))
        ps.evidence_record(
            opportunity=opp, criterion="intent.interested", actor=seller, note=f"Note {i}"
        )


@pytest.mark.parametrize("viewer", ["seller", "manager"])
def test_page_query_count_does_not_grow_with_rows(
    walker: Any, client_for: Any, org: Any, viewer: str, django_assert_max_num_queries: Any
) -> None:
    opp = walker.create()
    client = client_for(viewer)
    client.get(url(opp))  # warm the per-process playbook cache
    _grow(opp, org, 0, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(opp)).status_code == 200
    _grow(opp, org, 2, 12)
    with django_assert_max_num_queries(28):
        response = client.get(url(opp))
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as many:
        client.get(url(opp))
    assert len(many) == len(few)
    assert "Call 11" in response.content.decode()


# --- section actions -----------------------------------------------------------------------


def test_team_add_and_remove(walker: Any, client_for: Any, org: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    response = client.post(
        url(opp, "team/"), {"user": org["teammate"].pk, "role": "presales_consultant"}
    )
    assert response.status_code == 302 and response["Location"].endswith("#team")
    member = TeamMember.objects.get(opportunity=opp)
    assert (member.user, member.role.key) == (org["teammate"], "presales_consultant")
    # the teammate now sees the deal and may work on it
    assert client_for("teammate").get(url(opp)).status_code == 200
    response = client.post(url(opp, f"team/{member.pk}/remove/"))
    assert response.status_code == 302
    assert not TeamMember.objects.filter(opportunity=opp).exists()


def test_team_add_by_htmx_rerenders_the_section_with_a_notice(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.create()
    response = client_for("seller").post(
        url(opp, "team/"),
        {"user": org["teammate"].pk, "role": "presales_consultant"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "teammate joined the project team as Presales consultant." in html
    assert 'id="team"' in html and 'id="opp-head"' in html and 'id="path"' in html


def test_team_add_refusals_change_nothing(walker: Any, client_for: Any, org: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    data = {"user": org["teammate"].pk, "role": "presales_consultant"}
    assert client_for("tj_seller").post(url(opp, "team/"), data).status_code == 404
    response = client_for("seller").post(url(opp, "team/"), {"user": "", "role": "x"})
    assert response.status_code == 400 and "Choose a colleague." in response.content.decode()
    response = client_for("seller").post(url(opp, "team/"), {**data, "role": "astronaut"})
    assert response.status_code == 400 and "Unknown role" in response.content.decode()
    response = client_for("executive").post(url(opp, "team/"), data)
    assert (
        response.status_code == 400 and "Executives read opportunities" in response.content.decode()
    )
    assert snapshot(opp) == before
    ps.opportunity_lose(opportunity=opp, actor=org["seller"], reason="no_budget")
    before = snapshot(opp)
    response = client_for("seller").post(url(opp, "team/"), data)
    assert response.status_code == 400 and "reopen it first" in response.content.decode()
    assert snapshot(opp) == before


def test_rows_of_another_deal_cannot_be_reached_through_this_one(
    walker: Any, client_for: Any, org: Any
) -> None:
    mine, other = walker.create(name="A"), walker.create(name="B")
    member = ps.team_member_add(
        opportunity=other, actor=org["seller"], user=org["teammate"], role="product_expert"
    )
    response = client_for("seller").post(url(mine, f"team/{member.pk}/remove/"))
    assert response.status_code == 404
    assert TeamMember.objects.filter(pk=member.pk).exists()


def test_evidence_record_from_the_page(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    data = {"criterion": "intent.interested", "note": "Asked for a demo", "satisfied": "1"}
    response = client_for("seller").post(url(opp, "evidence/"), data)
    assert response.status_code == 302 and response["Location"].endswith("#path")
    row = CriterionEvidence.objects.filter(opportunity=opp).latest("id")
    assert (row.criterion.key, row.note, row.satisfied) == ("interested", "Asked for a demo", True)
    html = client_for("seller").get(url(opp)).content.decode()
    assert "Asked for a demo" in html


def test_evidence_without_note_is_refused_and_keeps_nothing(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    response = client_for("seller").post(
        url(opp, "evidence/"), {"criterion": "intent.interested", "note": " "}
    )
    assert response.status_code == 400
    assert "needs a note" in response.content.decode()
    assert snapshot(opp) == before
    assert (
        client_for("sh_seller")
        .post(url(opp, "evidence/"), {"criterion": "intent.interested", "note": "x"})
        .status_code
        == 404
    )
    assert snapshot(opp) == before


def approval_data(**overrides: str) -> dict[str, str]:
    data = {
        "requirement": "Group finance consolidation",
        "budget": "1,200,000",
        "timeline": "Decide by Q1",
        "selection_team": "CIO leads, CFO supports",
        "competition": "Vendor X",
        "strategy": "White paper",
    }
    data.update(overrides)
    return data


def test_approval_request_and_withdraw(walker: Any, client_for: Any, org: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    page = client_for("seller").get(url(opp)).content.decode()
    assert 'id="approval"' in page and url(opp, "approval/") in page
    response = client_for("seller").post(url(opp, "approval/"), approval_data())
    assert response.status_code == 302 and response["Location"].endswith("#approval")
    approval = ProjectApproval.objects.get(opportunity=opp)
    assert (approval.status, approval.budget) == ("pending", Decimal("1200000.00"))
    html = client_for("seller").get(url(opp)).content.decode()
    assert "Waiting for a manager's decision" in html
    assert url(opp, f"approval/{approval.pk}/withdraw/") in html
    # only the requester withdraws
    response = client_for("manager").post(url(opp, f"approval/{approval.pk}/withdraw/"))
    assert response.status_code == 400
    approval.refresh_from_db()
    assert approval.status == "pending"
    response = client_for("seller").post(url(opp, f"approval/{approval.pk}/withdraw/"))
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "withdrawn"


def test_approval_decision_is_shown_with_the_comment(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.to(walker.create(), "intent")
    approval = ps.approval_request(opportunity=opp, actor=org["seller"], **approval_data())
    ps.approval_decide(
        approval=approval, actor=org["manager"], approve=False, comment="Budget not confirmed"
    )
    html = client_for("seller").get(url(opp)).content.decode()
    assert "Rejected" in html and "Budget not confirmed" in html
    assert "manager decided on" in html


def test_approval_request_missing_fields_keeps_input(walker: Any, client_for: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    before = snapshot(opp)
    response = client_for("seller").post(
        url(opp, "approval/"), approval_data(timeline="", requirement="Typed requirement")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "A project set-up request needs the requirement" in html
    assert "Typed requirement" in html
    assert snapshot(opp) == before


def test_competitor_add_and_update(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    response = client.post(
        url(opp, "competitors/"), {"name": "金蝶", "kind": "vendor", "notes": "Strong in SMB"}
    )
    assert response.status_code == 302
    row = OpportunityCompetitor.objects.get(opportunity=opp)
    assert (row.competitor.name, row.notes, row.active) == ("金蝶", "Strong in SMB", True)
    response = client.post(url(opp, f"competitors/{row.pk}/"), {"notes": "Dropped out"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.notes, row.active) == ("Dropped out", False)
    before = snapshot(opp)
    response = client.post(url(opp, "competitors/"), {"name": "金蝶", "kind": "vendor"})
    assert response.status_code == 400 and "already recorded" in response.content.decode()
    assert snapshot(opp) == before


def test_key_date_set_and_refused(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    response = client.post(url(opp, "key-dates/"), {"kind": "bid", "planned": "2030-03-01"})
    assert response.status_code == 302
    assert KeyDate.objects.get(opportunity=opp).planned == dt.date(2030, 3, 1)
    response = client.post(url(opp, "key-dates/"), {"kind": "bid", "planned": "2030-04-02"})
    assert KeyDate.objects.get(opportunity=opp).planned == dt.date(2030, 4, 2)  # moved
    before = snapshot(opp)
    response = client.post(url(opp, "key-dates/"), {"kind": "custom", "planned": "2030-05-01"})
    assert response.status_code == 400 and "Name the key date." in response.content.decode()
    response = client.post(url(opp, "key-dates/"), {"kind": "signing", "planned": ""})
    assert response.status_code == 400 and "needs a planned date" in response.content.decode()
    assert snapshot(opp) == before


def quote_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "kind": "preliminary",
        "currency": "CNY",
        "notes": "First round",
        "category": ["software", "implementation", "services", "services"],
        "description": ["Licences", "Implementation", "Support", ""],
        "quantity": ["2", "1", "1", "1"],
        "unit_price": ["300000", "250000", "100000", ""],
        "discount_percent": ["10", "0", "", "0"],
        "submit_now": "1",
    }
    data.update(overrides)
    return data


def test_quote_with_several_lines_and_submit(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    response = client.post(url(opp, "quotes/"), quote_data())
    assert response.status_code == 302 and response["Location"].endswith("#quotes")
    quote = Quote.objects.get(opportunity=opp)
    assert (quote.version, quote.lines.count()) == (1, 3)  # the empty row is ignored
    assert quote.totals()["total"] == Decimal("890000.00")  # 540,000 + 250,000 + 100,000
    assert quote.submitted_at is not None
    response = client.post(url(opp, "quotes/"), quote_data(submit_now=""))
    draft = Quote.objects.get(opportunity=opp, version=2)
    assert draft.submitted_at is None
    html = client.get(url(opp)).content.decode()
    assert "¥890,000" in html and "v2" in html and "Draft" in html
    response = client.post(url(opp, f"quotes/{draft.pk}/submit/"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.submitted_at is not None


def test_quote_with_a_bad_line_keeps_every_row(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    data = quote_data(description=["Licences", "", "Support", ""])
    response = client_for("seller").post(url(opp, "quotes/"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 2 needs a description." in html
    assert 'value="Licences"' in html and 'value="250000"' in html and 'value="Support"' in html
    assert snapshot(opp) == before


def test_quote_line_row_for_the_form(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    response = client_for("seller").post(url(opp, "quotes/line/"), {"category": "services"})
    assert response.status_code == 200
    assert '<option value="services" selected>' in response.content.decode()
    assert client_for("sh_seller").post(url(opp, "quotes/line/")).status_code == 404


def test_objection_raise_and_answer(walker: Any, client_for: Any, org: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    assert client.post(url(opp, "objections/"), {"text": "Price too high"}).status_code == 302
    objection = Objection.objects.get(opportunity=opp)
    assert objection.status == "queued"
    response = client.post(url(opp, f"objections/{objection.pk}/answer/"), {"answer": ""})
    assert response.status_code == 400 and "Write the answer." in response.content.decode()
    response = client.post(
        url(opp, f"objections/{objection.pk}/answer/"), {"answer": "Phased licences"}
    )
    assert response.status_code == 302
    objection.refresh_from_db()
    assert (objection.status, objection.answer, objection.answered_by) == (
        "answered",
        "Phased licences",
        org["seller"],
    )
    assert client_for("tj_seller").post(url(opp, "objections/"), {"text": "x"}).status_code == 404
    assert Objection.objects.filter(opportunity=opp).count() == 1


def test_activity_plan_complete_and_overdue_mark(walker: Any, client_for: Any, org: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    due = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    response = client.post(
        url(opp, "activities/"),
        {"kind": "visit", "subject": "Visit the CFO", "due_on": due, "owner": org["teammate"].pk},
    )
    assert response.status_code == 302
    activity = Activity.objects.get(opportunity=opp)
    assert (activity.owner, activity.kind) == (org["teammate"], "visit")
    html = client.get(url(opp)).content.decode()
    assert "3 days overdue" in html
    response = client.post(url(opp, f"activities/{activity.pk}/complete/"), {"outcome": "Met"})
    assert response.status_code == 302
    activity.refresh_from_db()
    assert activity.done_at is not None and activity.outcome == "Met"
    before = snapshot(opp)
    response = client.post(url(opp, "activities/"), {"kind": "call", "subject": "", "due_on": due})
    assert response.status_code == 400 and "needs a subject" in response.content.decode()
    response = client.post(url(opp, f"activities/{activity.pk}/complete/"), {"outcome": "again"})
    assert response.status_code == 400 and "already done" in response.content.decode()
    assert snapshot(opp) == before


def test_plan_link_prefills_the_activity_subject(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    html = client_for("seller").get(url(opp) + "?plan=Visit+the+CIO").content.decode()
    assert 'value="Visit the CIO"' in html


def test_section_actions_are_post_only(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    assert client_for("seller").get(url(opp, "objections/")).status_code == 405
