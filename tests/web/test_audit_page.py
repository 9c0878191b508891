"""The audit log pages: /audit/ (the whole log a reader may read, filtered and exported) and
/audit/<opportunity|account>/<id>/ — for managers, executives and administrators only, and never
an event about another branch's objects."""

import csv
import datetime as dt
import io
import re
import zoneinfo
from typing import Any, get_args

import openpyxl
import pytest
from django.urls import reverse

from loudou.api.schemas.audit import Action, ObjectType, SubjectKind
from loudou.core import clock
from loudou.core.audit import ACTIONS
from loudou.core.audit_words import (
    ACTION_LABELS,
)
from loudou.core.models import AuditEvent
from loudou.core.selectors import (
    ACTION_GROUPS,
    OBJECT_TYPES,
    SUBJECT_KINDS,
    audit_events_visible_to,
)
from loudou.customers.services import account_create, contact_create
from loudou.org.services import user_set_role
from loudou.pipeline import services as ps
from tests.conftest import credit_code

SH_DEAL = "上汽绝密并购项目"
SH_ACCOUNT = "上海汽车集团"
BJ_DEAL = "北京电力财务共享"
OVERRIDE_REASON = "CIO confirmed in person; the written request follows next week"
APPROVAL_COMMENT = "Strategic account, go ahead"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
# 2026-03-10 in Shanghai: from 2026-03-09 16:00 UTC to 2026-03-10 16:00 UTC.
ROLE_CHANGE_DAY = dt.date(2026, 3, 10)


def build_world(org: dict[str, Any], walker: Any) -> dict[str, Any]:
    """A Beijing deal with a manager's gate override and an approved 立项 request, the same in
    Shanghai, and a role change in each branch (on known days, to test the date filter)."""
    manager, sh_manager, admin = org["manager"], org["sh_manager"], org["admin"]
    bj = walker.create(name=BJ_DEAL)
    bj = ps.opportunity_advance(
        opportunity=bj,
        to_stage="intent",
        actor=manager,
        evidence={"interested": "CIO asked for a second meeting"},
        override_reason=OVERRIDE_REASON,
    )
    approval = ps.approval_request(
        opportunity=bj,
        actor=org["seller"],
        requirement="Group finance",
        budget="1200000",
        timeline="Q1",
        selection_team="CIO, CFO",
    )
    ps.approval_decide(approval=approval, actor=manager, approve=True, comment=APPROVAL_COMMENT)

    sh_account = account_create(
        actor=org["sh_seller"],
        name=SH_ACCOUNT,
        credit_code=credit_code(7),
        industry="manufacturing",
        size_band="large",
        organisations_count=30,
        it_need="集团管控",
        product_fit="财务",
    )
    contact_create(account=sh_account, actor=org["sh_seller"], name="上海联系人")
    sh = ps.opportunity_create(
        actor=org["sh_seller"],
        account=sh_account,
        name=SH_DEAL,
        amount="800000",
        close_date=clock.today() + dt.timedelta(days=30),
        source="Referral",
        evidence={"need_found": "CFO described the need"},
    )
    sh = ps.opportunity_advance(
        opportunity=sh, to_stage="intent", actor=sh_manager, override_reason="上海特批"
    )
    sh_approval = ps.approval_request(
        opportunity=sh,
        actor=org["sh_seller"],
        requirement="r",
        budget="900000",
        timeline="t",
        selection_team="s",
    )
    ps.approval_decide(approval=sh_approval, actor=sh_manager, approve=True, comment="上海同意")

    # Role changes on known moments: one on the day (late evening in Shanghai), one the day
    # before in Shanghai (but the same UTC date), one the day after in Shanghai.
    moments = {
        "teammate": dt.datetime(2026, 3, 10, 23, 30, tzinfo=SHANGHAI),
        "sh_seller": dt.datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI),
        "tj_seller": dt.datetime(2026, 3, 11, 0, 30, tzinfo=SHANGHAI),
    }
    for name, moment in moments.items():
        with clock.frozen_at(moment.astimezone(dt.UTC)):
            user_set_role(actor=admin, user=org[name], job_role="implementation_consultant")
    with clock.frozen_at(dt.datetime(2026, 3, 9, 23, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)):
        user_set_role(actor=admin, user=org["seller"], job_role="presales_consultant")
    return {"bj": bj, "sh": sh, "approval": approval, "sh_approval": sh_approval}


@pytest.fixture
def world(org: dict[str, Any], walker: Any) -> dict[str, Any]:
    return build_world(org, walker)


def add_deals(walker: Any, org: dict[str, Any], n: int) -> None:
    """More Beijing deals, each with an override, a quote and an activity."""
    for i in range(n):
        opp = walker.create(name=f"更多项目{i}")
        ps.opportunity_advance(
            opportunity=opp, to_stage="intent", actor=org["manager"], override_reason=f"r{i}"
        )
        ps.quote_create(
            opportunity=opp,
            actor=org["seller"],
            kind="preliminary",
            lines=[{"category": "software", "description": "L", "unit_price": "1"}],
        )
        ps.activity_plan(
            opportunity=opp, actor=org["seller"], kind="call", subject="c", due_on=clock.today()
        )


def body(response: Any) -> str:
    return response.content.decode()


def csv_rows(response: Any) -> list[list[str]]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


# --- who may read ----------------------------------------------------------------------------


def test_every_action_has_a_label_and_a_group() -> None:
    assert set(ACTION_LABELS) == set(ACTIONS)
    grouped = [a for _label, actions in ACTION_GROUPS for a in actions]
    assert sorted(grouped) == sorted(ACTIONS)
    # The API's types list the same values (written out for the type checker).
    assert sorted(get_args(Action)) == sorted(ACTIONS)
    assert list(get_args(ObjectType)) == list(OBJECT_TYPES)
    assert get_args(SubjectKind) == SUBJECT_KINDS


def test_anonymous_visitors_are_sent_to_the_login_page(client: Any, world: dict[str, Any]) -> None:
    for url in (
        reverse("web:audit"),
        reverse("web:audit") + "?export=csv",
        reverse("web:audit-object", args=["opportunity", world["bj"].pk]),
        reverse("web:audit-object", args=["account", world["bj"].account_id]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("web:login")), url


def test_sellers_are_refused_like_on_the_import_page(
    client_for: Any, world: dict[str, Any]
) -> None:
    seller = client_for("seller")
    assert seller.get(reverse("web:import")).status_code == 403
    for url in (
        reverse("web:audit"),
        reverse("web:audit") + "?export=csv",
        # Even their own deal and account: the log is a managers' tool.
        reverse("web:audit-object", args=["opportunity", world["bj"].pk]),
        reverse("web:audit-object", args=["account", world["bj"].account_id]),
        # A hidden object answers the same 403, which tells nothing about it.
        reverse("web:audit-object", args=["opportunity", world["sh"].pk]),
    ):
        response = seller.get(url)
        assert response.status_code == 403, url
        assert BJ_DEAL not in body(response)
        assert SH_DEAL not in body(response)
    dashboard = body(seller.get(reverse("web:dashboard")))
    assert reverse("web:audit") not in dashboard
    deal_page = body(seller.get(reverse("web:opportunity-detail", args=[world["bj"].pk])))
    assert reverse("web:audit-object", args=["opportunity", world["bj"].pk]) not in deal_page


def test_a_manager_reads_their_branch_and_never_shanghai(
    client_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    manager = client_for("manager")
    page = body(manager.get(reverse("web:audit")))
    assert BJ_DEAL in page
    assert OVERRIDE_REASON in page
    for secret in (SH_DEAL, SH_ACCOUNT, "上海特批", "上海同意", "上海联系人", "sh_seller"):
        assert secret not in page, secret
    expected = audit_events_visible_to(org["manager"]).count()
    assert f"{expected} events" in page
    exported = csv_rows(manager.get(reverse("web:audit") + "?export=csv"))
    assert len(exported) == expected + 1
    flat = "\n".join(",".join(r) for r in exported)
    assert BJ_DEAL in flat and SH_DEAL not in flat and "上海特批" not in flat
    # The other branch's object pages do not exist for them.
    for url in (
        reverse("web:audit-object", args=["opportunity", world["sh"].pk]),
        reverse("web:audit-object", args=["account", world["sh"].account_id]),
    ):
        response = manager.get(url)
        assert response.status_code == 404
        assert SH_DEAL not in body(response)
    # A search for the hidden deal finds nothing, and says so.
    searched = body(manager.get(reverse("web:audit"), {"q": SH_DEAL}))
    assert "0 events" in searched and "No events match these filters." in searched


def test_the_shanghai_manager_reads_the_reverse(
    client_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    sh_manager = client_for("sh_manager")
    page = body(sh_manager.get(reverse("web:audit"), {"action": "gate.override"}))
    assert SH_DEAL in page and "上海特批" in page
    assert BJ_DEAL not in page and OVERRIDE_REASON not in page
    everything = body(sh_manager.get(reverse("web:audit")))
    assert BJ_DEAL not in everything and APPROVAL_COMMENT not in everything
    assert "华北电力集团" not in everything  # the Beijing account
    exported = csv_rows(sh_manager.get(reverse("web:audit") + "?export=csv"))
    assert len(exported) - 1 == audit_events_visible_to(org["sh_manager"]).count()
    assert BJ_DEAL not in str(exported)
    assert (
        sh_manager.get(
            reverse("web:audit-object", args=["opportunity", world["bj"].pk])
        ).status_code
        == 404
    )


@pytest.mark.parametrize("name", ["executive", "admin"])
def test_executives_and_administrators_read_everything(
    client_for: Any, world: dict[str, Any], name: str
) -> None:
    client = client_for(name)
    page = body(client.get(reverse("web:audit"), {"action": "gate.override"}))
    assert BJ_DEAL in page and SH_DEAL in page
    total = AuditEvent.objects.count()
    assert f"{total} events" in body(client.get(reverse("web:audit")))
    assert len(csv_rows(client.get(reverse("web:audit") + "?export=csv"))) == total + 1
    for kind, pk in (("opportunity", world["sh"].pk), ("account", world["bj"].account_id)):
        assert client.get(reverse("web:audit-object", args=[kind, pk])).status_code == 200


def test_the_nav_and_the_object_pages_link_to_the_log_for_managers(
    client_for: Any, world: dict[str, Any]
) -> None:
    for name in ("manager", "executive", "admin"):
        client = client_for(name)
        assert f'href="{reverse("web:audit")}"' in body(client.get(reverse("web:dashboard")))
    manager = client_for("manager")
    deal = body(manager.get(reverse("web:opportunity-detail", args=[world["bj"].pk])))
    assert reverse("web:audit-object", args=["opportunity", world["bj"].pk]) in deal
    account = body(manager.get(reverse("web:account-detail", args=[world["bj"].account_id])))
    assert reverse("web:audit-object", args=["account", world["bj"].account_id]) in account
    # An executive does not edit deals but reads their log.
    executive = client_for("executive")
    deal = body(executive.get(reverse("web:opportunity-detail", args=[world["sh"].pk])))
    assert reverse("web:audit-object", args=["opportunity", world["sh"].pk]) in deal


# --- what the log says -----------------------------------------------------------------------


def row_of(page: str, event: AuditEvent) -> str:
    start = page.index(f'id="event-{event.pk}"')
    return page[start : page.index("</tr>", start)]


def test_an_override_and_an_approval_show_who_and_why(
    client_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    ps.key_date_set(
        opportunity=world["bj"], actor=org["seller"], kind="bid", planned=dt.date(2027, 1, 15)
    )
    page = body(client_for("manager").get(reverse("web:audit")))
    key_date = AuditEvent.objects.get(action="keydate.set")
    # A key date's values in words: its kind's label and its fields' names.
    assert "planned:</span> 2027-01-15" in row_of(page, key_date)
    assert "kind:</span> Bid<" in row_of(page, key_date)
    override = AuditEvent.objects.get(action="gate.override", object_id=str(world["bj"].pk))
    row = row_of(page, override)
    assert "Gate overridden" in row
    assert ">manager<" in row  # the actor
    assert OVERRIDE_REASON in row
    # The missing criteria, named from the playbook (not their keys).
    assert "The customer accepts buying packaged software" in row
    assert "stage:</span> Confirm customer intent" in row  # the stage by name, not its key
    assert f'href="{reverse("web:opportunity-detail", args=[world["bj"].pk])}"' in row
    approved = AuditEvent.objects.get(
        action="approval.approve", object_id=str(world["approval"].pk)
    )
    row = row_of(page, approved)
    assert "Project set-up approved" in row and APPROVAL_COMMENT in row and ">manager<" in row
    # The status change as a diff, and the deal the request hangs off, linked.
    assert '<span class="was">Pending</span> → Approved' in row
    assert f'href="{reverse("web:opportunity-detail", args=[world["bj"].pk])}">{BJ_DEAL}</a>' in row
    advance = AuditEvent.objects.get(action="opportunity.advance", object_id=str(world["bj"].pk))
    row = row_of(page, advance)
    assert (
        '<span class="was">Discover potential opportunities</span> → Confirm customer intent' in row
    )
    role = AuditEvent.objects.get(action="user.role_change", object_id=str(org["teammate"].pk))
    row = row_of(page, role)
    assert "Role or branch changed" in row and ">admin<" in row
    assert '<span class="was">Presales consultant</span> → Implementation consultant' in row


def test_filters_narrow_to_exact_counts_and_stay_in_the_links(
    client_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    manager, executive = client_for("manager"), client_for("executive")
    url = reverse("web:audit")

    def count(client: Any, **params: Any) -> int:
        page = body(client.get(url, params))
        shown = int(re.search(r'<span class="muted">(\d+) events?</span>', page).group(1))
        assert page.count('<tr id="event-') == min(shown, 50)
        return shown

    assert count(manager, action="gate.override") == 1
    assert count(executive, action="gate.override") == 2
    assert count(manager, action="approval.approve") == 1
    assert count(executive, action="approval.approve") == 2
    assert count(manager, type="approval") == 2  # requested, approved
    assert count(executive, type="approval") == 4
    # Role changes: teammate and seller in Beijing (the manager's); four in all.
    assert count(manager, action="user.role_change") == 2
    assert count(executive, action="user.role_change") == 4
    by_admin = AuditEvent.objects.filter(actor=org["admin"]).count()
    assert by_admin == 4
    assert count(executive, actor=org["admin"].pk) == 4
    assert (
        count(manager, actor=org["manager"].pk)
        == AuditEvent.objects.filter(actor=org["manager"]).count()
    )
    # Whole days in the reader's zone (Asia/Shanghai): 10 March holds the teammate's (23:30)
    # and sh_seller's (09:00) changes, not the seller's (9 March, 23:00) nor tj_seller's
    # (11 March, 00:30).
    day = ROLE_CHANGE_DAY.isoformat()
    assert count(executive, **{"from": day, "to": day}) == 2
    assert count(manager, **{"from": day, "to": day}) == 1
    assert count(executive, to=day, action="user.role_change") == 3
    assert count(executive, **{"from": day, "action": "user.role_change"}) == 3
    # Free text: the deal's name finds its own events and those of its 立项 request.
    on_deal = AuditEvent.objects.filter(
        object_id=str(world["bj"].pk), content_type__model="opportunity"
    ).count()
    assert count(manager, q="电力财务") == on_deal + 2
    assert count(manager, q="电力财务", type="approval") == 2
    # Unknown values are dropped, not errors.
    assert (
        count(manager, action="nope", type="nope")
        == audit_events_visible_to(org["manager"]).count()
    )
    # The filters are kept in the export links and the pager.
    page = body(executive.get(url, {"action": "user.role_change", "from": day}))
    assert "action=user.role_change&amp;from=2026-03-10&amp;export=csv" in page
    assert '<option value="user.role_change" selected>' in page
    assert 'value="2026-03-10"' in page
    exported = csv_rows(
        executive.get(url, {"action": "user.role_change", "from": day, "export": "csv"})
    )
    assert [r[4] for r in exported[1:]] == ["user.role_change"] * 3


def test_pages_of_fifty_newest_first(
    client_for: Any, world: dict[str, Any], walker: Any, org: dict[str, Any]
) -> None:
    add_deals(walker, org, 3)
    admin = client_for("admin")
    total = AuditEvent.objects.count()
    assert total > 50
    first = body(admin.get(reverse("web:audit")))
    assert first.count('<tr id="event-') == 50
    newest = AuditEvent.objects.order_by("-at", "-id")
    assert f'id="event-{newest[0].pk}"' in first
    second = body(admin.get(reverse("web:audit"), {"page": 2}))
    assert second.count('<tr id="event-') == min(50, total - 50)
    assert f'id="event-{newest[50].pk}"' in second and f'id="event-{newest[0].pk}"' not in second


def test_the_object_page_holds_the_deal_and_what_hangs_off_it(
    client_for: Any, world: dict[str, Any], walker: Any, org: dict[str, Any]
) -> None:
    other = walker.create(name="另一个北京项目")
    manager = client_for("manager")
    page = body(manager.get(reverse("web:audit-object", args=["opportunity", world["bj"].pk])))
    on_deal = AuditEvent.objects.filter(
        content_type__model="opportunity", object_id=str(world["bj"].pk)
    ).count()
    assert f"{on_deal + 2} events" in page  # + the 立项 request and its approval
    assert APPROVAL_COMMENT in page and OVERRIDE_REASON in page
    assert "另一个北京项目" not in page
    assert (
        f'id="event-{AuditEvent.objects.get(object_id=str(other.pk), action="opportunity.create").pk}"'
        not in page
    )
    account = body(
        manager.get(reverse("web:audit-object", args=["account", world["bj"].account_id]))
    )
    # account.create, account.qualify, the contact of the `account` fixture.
    assert "3 events" in account
    assert "Contact added" in account and "王总" in account
    assert manager.get(reverse("web:audit-object", args=["quote", 1])).status_code == 404
    xlsx = manager.get(
        reverse("web:audit-object", args=["opportunity", world["bj"].pk]) + "?export=xlsx"
    )
    assert xlsx.status_code == 200
    content = b"".join(xlsx.streaming_content) if xlsx.streaming else xlsx.content
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet.max_row == on_deal + 2 + 1


def test_reasons_and_names_are_escaped(client_for: Any, org: dict[str, Any], walker: Any) -> None:
    nasty = "<script>alert(\"x\")</script> & 'quotes'"
    opp = walker.create(name=nasty)
    ps.opportunity_advance(
        opportunity=opp, to_stage="intent", actor=org["manager"], override_reason=nasty
    )
    page = body(client_for("manager").get(reverse("web:audit")))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;" in page
    exported = csv_rows(client_for("manager").get(reverse("web:audit") + "?export=csv"))
    assert any(r[9] == nasty for r in exported[1:])


def test_chinese_rendering(client_for: Any, world: dict[str, Any]) -> None:
    page = body(
        client_for("manager", "zh-hans").get(reverse("web:audit"), {"action": "gate.override"})
    )
    assert '<html lang="zh-hans">' in page
    # The playbook's Chinese texts: the missing criterion and, on the advance, the stage names.
    assert "客户接受购买商品化软件（而非自行开发）" in page
    advance = body(
        client_for("manager", "zh-hans").get(
            reverse("web:audit"), {"action": "opportunity.advance"}
        )
    )
    assert "确认客户意向" in advance


def test_the_query_count_does_not_grow_with_the_rows(
    client_for: Any,
    world: dict[str, Any],
    walker: Any,
    org: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    add_deals(walker, org, 1)
    manager = client_for("manager")
    manager.get(reverse("web:audit"))  # warm the content type cache
    with django_assert_max_num_queries(40) as few:
        first = manager.get(reverse("web:audit"))
    assert body(first).count('<tr id="event-') < 50
    add_deals(walker, org, 6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = manager.get(reverse("web:audit"))
    assert body(response).count('<tr id="event-') == 50
