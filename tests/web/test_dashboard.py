"""My dashboard: exact pipeline by stage, what each deal needs next, overdue activities, coming
key dates, stalled deals, approvals, targets; visibility, languages, escaping and a query count
that does not grow with the deals."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loudou.core import clock
from loudou.org.services import target_set
from loudou.pipeline import services as ps


def stage_row(response: Any, key: str) -> Any:
    return next(g for g in response.context["stages"] if g.column.stage.key == key)


@pytest.fixture
def sh_deal(org: dict[str, Any], sh_account: Any) -> Any:
    """A deal of the Shanghai seller on an account of their own (another branch)."""
    account = sh_account
    deal = ps.opportunity_create(
        actor=org["sh_seller"],
        account=account,
        name="上海财务云",
        amount="3000000",
        close_date=timezone.localdate() + dt.timedelta(days=20),
        source="Event",
        evidence={"need_found": "CFO"},
    )
    ps.activity_plan(
        opportunity=deal,
        actor=org["sh_seller"],
        kind="call",
        subject="上海的逾期电话",
        due_on=timezone.localdate() - dt.timedelta(days=3),
    )
    ps.key_date_set(
        opportunity=deal,
        actor=org["sh_seller"],
        kind="bid",
        planned=timezone.localdate() + dt.timedelta(days=5),
    )
    return deal


@pytest.fixture
def deals(walker: Any) -> dict[str, Any]:
    """The Beijing seller's deals: two in discover (1,000,000 + 500,000), one in intent
    (2,000,000)."""
    return {
        "a": walker.create(name="财务共享平台", amount="1000000"),
        "b": walker.create(name="供应链协同", amount="500000"),
        "c": walker.to(walker.create(name="人力云", amount="2000000"), "intent"),
    }


def test_anonymous_is_sent_to_login(db: Any, client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_counts_and_amounts_per_stage_are_exact(
    deals: dict[str, Any], sh_deal: Any, client_for: Any
) -> None:
    response = client_for("seller").get("/")
    assert response.status_code == 200
    discover, intent = stage_row(response, "discover"), stage_row(response, "intent")
    assert (discover.column.count, discover.column.amount) == (2, Decimal("1500000"))
    # discover weighs 10 %, intent 25 %
    assert discover.column.weighted == Decimal("150000")
    assert (intent.column.count, intent.column.amount, intent.column.weighted) == (
        1,
        Decimal("2000000"),
        Decimal("500000"),
    )
    assert stage_row(response, "project").column.count == 0
    assert [d.card.opportunity.name for d in discover.deals] == ["财务共享平台", "供应链协同"]
    assert response.context["open_count"] == 3
    assert response.context["open_amount"] == Decimal("3500000")
    html = response.content.decode()
    assert "¥1,500,000" in html and "¥3,500,000" in html
    for deal in deals.values():
        assert f'href="/opportunities/{deal.pk}/"' in html


def test_a_missing_criterion_of_the_next_stage_is_shown(
    deals: dict[str, Any], client_for: Any
) -> None:
    response = client_for("seller").get("/")
    item = next(
        d
        for d in stage_row(response, "discover").deals
        if d.card.opportunity.name == "财务共享平台"
    )
    # discover → intent: four required checks, none recorded yet
    assert [s.criterion.key for s in item.missing] == [
        "interested",
        "accepts_packaged",
        "preliminary_requirements",
        "contacting_vendors",
    ]
    html = response.content.decode()
    assert "The customer is interested in our products and services" in html
    assert "0/4" in html


def test_evidence_removes_a_criterion_from_what_is_missing(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    ps.evidence_record(
        opportunity=deals["a"], actor=org["seller"], criterion="interested", note="Asked again"
    )
    response = client_for("seller").get("/")
    item = next(
        d
        for d in stage_row(response, "discover").deals
        if d.card.opportunity.name == "财务共享平台"
    )
    assert [s.criterion.key for s in item.missing] == [
        "accepts_packaged",
        "preliminary_requirements",
        "contacting_vendors",
    ]
    assert (item.card.held, item.card.required) == (1, 4)


def test_overdue_activities_are_listed_and_done_or_future_ones_are_not(
    deals: dict[str, Any], sh_deal: Any, org: dict[str, Any], client_for: Any
) -> None:
    seller, today = org["seller"], timezone.localdate()
    late = ps.activity_plan(
        opportunity=deals["a"],
        actor=seller,
        kind="visit",
        subject="Visit the CFO",
        due_on=today - dt.timedelta(days=4),
    )
    done = ps.activity_plan(
        opportunity=deals["a"],
        actor=seller,
        kind="call",
        subject="Done call",
        due_on=today - dt.timedelta(days=2),
    )
    ps.activity_complete(activity=done, actor=seller, outcome="ok")
    ps.activity_plan(
        opportunity=deals["b"], actor=seller, kind="demo", subject="Future demo", due_on=today
    )
    response = client_for("seller").get("/")
    assert response.context["activities_count"] == 1
    assert [a.pk for a in response.context["activities"]] == [late.pk]
    html = response.content.decode()
    assert "Visit the CFO" in html and "4 days late" in html
    assert "Done call" not in html and "Future demo" not in html
    assert "上海的逾期电话" not in html


def test_key_dates_of_the_next_30_days_are_listed(
    deals: dict[str, Any], sh_deal: Any, org: dict[str, Any], client_for: Any
) -> None:
    seller, today = org["seller"], timezone.localdate()
    ps.key_date_set(
        opportunity=deals["a"], actor=seller, kind="signing", planned=today + dt.timedelta(days=12)
    )
    ps.key_date_set(
        opportunity=deals["b"], actor=seller, kind="bid", planned=today + dt.timedelta(days=45)
    )
    response = client_for("seller").get("/")
    # 45 days ahead is past the window; deal c (intent) has no key date yet.
    names = [(k.opportunity.name, k.kind) for k in response.context["key_dates"]]
    assert names == [("财务共享平台", "signing")]
    assert response.context["key_dates_count"] == 1
    html = response.content.decode()
    assert "in 12 days" in html and "Signing" in html
    assert "上海财务云" not in html


def test_a_stalled_deal_is_shown(walker: Any, org: dict[str, Any], client_for: Any) -> None:
    # discover allows 60 days; this deal entered it 70 days ago.
    with clock.frozen_at(timezone.now() - dt.timedelta(days=70)):
        old = walker.create(name="停滞的项目", amount="800000")
    walker.create(name="新项目", amount="100000")
    response = client_for("seller").get("/")
    assert [s["id"] for s in response.context["stalled"]] == [old.pk]
    assert response.context["stalled"][0]["whole_days"] == 70
    html = response.content.decode()
    section = html[html.index('id="stalled"') :]
    assert "停滞的项目" in section and "limit 60" in section
    assert "新项目" not in section


def test_approvals_waiting_show_for_the_manager_and_not_for_the_seller(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    ps.approval_request(
        opportunity=deals["c"],
        actor=org["seller"],
        requirement="Group finance",
        budget="1200000",
        timeline="Q1",
        selection_team="CIO",
    )
    manager = client_for("manager").get("/")
    assert manager.context["approvals_count"] == 1
    assert [a.opportunity.name for a in manager.context["approvals"]] == ["人力云"]
    html = manager.content.decode()
    assert 'href="/approvals/"' in html and "Approvals waiting for me" in html
    seller = client_for("seller").get("/")
    assert seller.context["approvals_count"] == 0
    assert 'id="approvals"' not in seller.content.decode()
    # The Shanghai manager manages another branch: nothing waits for them.
    assert client_for("sh_manager").get("/").context["approvals_count"] == 0


def test_target_of_the_month_and_quarter_against_won_and_weighted(
    deals: dict[str, Any], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    today = timezone.localdate()
    target_set(actor=org["manager"], month=today, amount="4000000", user=org["seller"])
    won = walker.to(walker.create(name="已赢项目", amount="1000000"), "closed")
    assert won.status == "won" and won.closed_on == today
    response = client_for("seller").get("/")
    month = dict(response.context["periods"])["month"]
    assert month.target == Decimal("4000000")
    assert month.won == Decimal("1000000")
    assert month.won_share == 25
    quarter = dict(response.context["periods"])["quarter"]
    assert quarter.target == Decimal("4000000")  # the only month with a target
    assert quarter.won == Decimal("1000000")
    html = response.content.decode()
    assert "¥4,000,000" in html and "25%" in html


def test_the_month_without_target_says_so(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller").get("/")
    month = dict(response.context["periods"])["month"]
    assert month.target is None
    assert "No target is set for" in response.content.decode()


def test_another_branchs_deals_never_appear(
    deals: dict[str, Any], sh_deal: Any, org: dict[str, Any], client_for: Any
) -> None:
    for name in ("seller", "manager", "tj_seller"):
        html = client_for(name).get("/").content.decode()
        assert "上海财务云" not in html and "上海汽车集团" not in html
    # The Beijing manager's branch view counts Beijing's deals only.
    manager = client_for("manager").get("/")
    assert manager.context["scope"].view == "branch"
    assert manager.context["open_count"] == 3
    assert "财务共享平台" in manager.content.decode()
    # Mine: the manager owns none.
    mine = client_for("manager").get("/?view=mine")
    assert mine.context["open_count"] == 0
    assert "You have no open opportunity" in mine.content.decode()
    # A seller cannot switch to the branch view.
    seller = client_for("seller").get("/?view=branch")
    assert seller.context["scope"].view == "mine"
    assert not seller.context["is_manager"]
    # The Shanghai seller sees their own deal only.
    sh = client_for("sh_seller").get("/")
    assert sh.context["open_count"] == 1 and "上海财务云" in sh.content.decode()


def test_empty_lists_say_so_in_a_sentence(db: Any, org: dict[str, Any], client_for: Any) -> None:
    html = client_for("seller").get("/").content.decode()
    assert "You have no open opportunity in this playbook yet" in html
    assert "Nothing overdue" in html
    assert "No bid, negotiation or signing date is planned in the next 30 days" in html
    assert "No deal has stayed in its stage longer than the stage allows" in html


def test_chinese_page_shows_the_playbook_in_chinese(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller", "zh-hans").get("/")
    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert "发掘潜在商机" in html and "确认客户意向" in html
    assert "客户对我方产品和服务有兴趣" in html
    assert "Discover potential opportunities" not in html


def test_names_with_markup_render_as_text(
    walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    deal = walker.create(name='<script>alert("x")</script> & "Q"', amount="10")
    ps.activity_plan(
        opportunity=deal,
        actor=org["seller"],
        kind="task",
        subject="<img src=x onerror=alert(1)>",
        due_on=timezone.localdate() - dt.timedelta(days=1),
    )
    html = client_for("seller").get("/").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Q&quot;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def _dashboard_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured)


@pytest.mark.parametrize("who", ["seller", "manager"])
def test_query_count_does_not_grow_with_the_deals(
    walker: Any, org: dict[str, Any], client_for: Any, who: str, django_assert_max_num_queries: Any
) -> None:
    seller, today = org["seller"], timezone.localdate()

    def add_deals(n: int) -> None:
        for i in range(n):
            deal = walker.create(name=f"D{i}", amount="1000")
            ps.activity_plan(
                opportunity=deal,
                actor=seller,
                kind="call",
                subject=f"call {i}",
                due_on=today - dt.timedelta(days=1),
            )
            ps.key_date_set(
                opportunity=deal, actor=seller, kind="bid", planned=today + dt.timedelta(days=3)
            )
        walker.to(walker.create(name="intent deal", amount="1000"), "intent")

    add_deals(2)
    client = client_for(who)
    first = _dashboard_queries(client)
    add_deals(12)
    with django_assert_max_num_queries(first):
        client.get("/")
    assert client.get("/").context["open_count"] == 16
