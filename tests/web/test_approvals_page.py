"""The approvals inbox: a seller's 立项 request reaches the managers of their branch with what was
gathered, only they may decide it, a rejection needs a comment, and the seller sees the decision."""

import re
from typing import Any

import pytest

from loudou.pipeline import services as ps
from loudou.pipeline.models import ProjectApproval


def request_approval(opp: Any, actor: Any, **kw: Any) -> ProjectApproval:
    kw.setdefault("requirement", "集团财务共享中心，覆盖 12 家子公司")
    kw.setdefault("budget", "1200000")
    kw.setdefault("timeline", "Decide by Q1, go live in Q3")
    kw.setdefault("selection_team", "CIO leads, CFO supports")
    kw.setdefault("competition", "Competitor A, consultant firm B")
    kw.setdefault("strategy", "White paper sent, reference visit planned")
    return ps.approval_request(opportunity=opp, actor=actor, **kw)


@pytest.fixture
def pending(walker: Any, org: dict[str, Any]) -> ProjectApproval:
    """A Beijing seller's deal at intent, with its 立项 request waiting."""
    opp = walker.to(walker.create(name="财务共享平台", amount="1500000"), "intent")
    return request_approval(opp, org["seller"])


def state(approval: ProjectApproval) -> tuple[Any, ...]:
    approval.refresh_from_db()
    return (approval.status, approval.decided_by_id, approval.decided_at, approval.comment)


def waiting_ids(html: str) -> list[int]:
    if 'id="waiting"' not in html:  # sellers have no such section
        return []
    section = html[html.index('id="waiting"') : html.index('id="decided"')]
    return [int(pk) for pk in re.findall(r'id="approval-(\d+)"', section)]


def decide(client: Any, approval: ProjectApproval, htmx: bool = False, **data: str) -> Any:
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"/approvals/{approval.pk}/decide/", data, **extra)


def test_the_branch_manager_sees_the_request_with_what_was_gathered(
    pending: ProjectApproval, client_for: Any
) -> None:
    for name in ("manager", "north_manager", "executive"):
        html = client_for(name).get("/approvals/").content.decode()
        assert waiting_ids(html) == [pending.pk], name
    html = client_for("manager").get("/approvals/").content.decode()
    card = html[html.index(f'id="approval-{pending.pk}"') :]
    card = card[: card.index("</article>")]
    for text in (
        "财务共享平台",
        "华北电力集团",
        "集团财务共享中心，覆盖 12 家子公司",
        "Decide by Q1, go live in Q3",
        "CIO leads, CFO supports",
        "Competitor A, consultant firm B",
        "White paper sent, reference visit planned",
        "¥1,500,000",  # the deal's amount
        "¥1,200,000",  # the customer's budget
        "Confirm customer intent",
        f'href="/opportunities/{pending.opportunity_id}/"',
        'name="comment"',
        'value="approve"',
        'value="reject"',
    ):
        assert text in card, text


def test_a_manager_of_another_branch_neither_sees_nor_decides_it(
    pending: ProjectApproval, client_for: Any
) -> None:
    client = client_for("sh_manager")
    html = client.get("/approvals/").content.decode()
    assert waiting_ids(html) == [] and "财务共享平台" not in html
    before = state(pending)
    assert decide(client, pending, decision="approve", comment="ok").status_code == 404
    assert decide(client, pending, htmx=True, decision="reject", comment="no").status_code == 404
    assert decide(client, pending, decision="nonsense").status_code == 404
    assert state(pending) == before and before[0] == "pending"


def test_the_requester_and_other_sellers_cannot_decide(
    pending: ProjectApproval, client_for: Any
) -> None:
    before = state(pending)
    seller = client_for("seller")
    assert 'id="waiting"' not in seller.get("/approvals/").content.decode()
    assert decide(seller, pending, decision="approve", comment="").status_code == 403
    assert decide(client_for("teammate"), pending, decision="approve").status_code == 404
    assert decide(client_for("sh_seller"), pending, decision="approve").status_code == 404
    assert state(pending) == before


def test_a_manager_cannot_decide_their_own_request(
    walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    opp = walker.to(walker.create(name="人力云"), "intent")
    own = request_approval(opp, org["manager"])
    client = client_for("manager")
    assert waiting_ids(client.get("/approvals/").content.decode()) == []
    before = state(own)
    assert decide(client, own, decision="approve", comment="me").status_code == 403
    assert state(own) == before
    # The manager above them decides it.
    assert waiting_ids(client_for("north_manager").get("/approvals/").content.decode()) == [own.pk]


def test_reject_without_a_comment_is_refused_and_keeps_the_request_waiting(
    pending: ProjectApproval, client_for: Any
) -> None:
    client = client_for("manager")
    before = state(pending)
    response = decide(client, pending, decision="reject", comment="   ")
    assert response.status_code == 400
    html = response.content.decode()
    card = html[html.index(f'id="approval-{pending.pk}"') :]
    assert "Say why the request is rejected." in card[: card.index("</article>")]
    assert state(pending) == before
    # In place (htmx): the card comes back alone with the error.
    response = decide(client, pending, htmx=True, decision="reject")
    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" not in html and html.count("<article") == 1
    assert "Say why the request is rejected." in html
    # Neither approve nor reject: refused the same way.
    response = decide(client, pending, htmx=True, decision="maybe", comment="Typed text")
    assert response.status_code == 400
    assert "Choose to approve or to reject the request." in response.content.decode()
    assert "Typed text" in response.content.decode()
    assert state(pending) == before


def test_approve_in_place(pending: ProjectApproval, org: dict[str, Any], client_for: Any) -> None:
    response = decide(
        client_for("manager"), pending, htmx=True, decision="approve", comment="Go, staff it"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-status="approved"' in html and 'name="decision"' not in html
    assert "Go, staff it" in html and "by manager on" in html
    status, decided_by, decided_at, comment = state(pending)
    assert (status, decided_by, comment) == ("approved", org["manager"].pk, "Go, staff it")
    assert decided_at is not None
    # A second decision is refused: the card shows the first one.
    again = decide(client_for("north_manager"), pending, htmx=True, decision="reject", comment="x")
    assert again.status_code == 400
    assert "This request was already decided (Approved)." in again.content.decode()
    assert state(pending)[0] == "approved"


def test_reject_with_a_plain_post_redirects_with_a_message(
    pending: ProjectApproval, client_for: Any
) -> None:
    client = client_for("manager")
    response = decide(client, pending, decision="reject", comment="Budget not confirmed")
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    html = client.get("/approvals/").content.decode()
    assert "Rejected: the seller sees your comment on “财务共享平台”." in html
    decided = html[html.index('id="decided"') : html.index('id="mine"')]
    assert "财务共享平台" in decided and "Budget not confirmed" in decided
    assert waiting_ids(html) == []


def test_the_seller_sees_the_decision_under_my_requests(
    pending: ProjectApproval, client_for: Any
) -> None:
    seller = client_for("seller")
    html = seller.get("/approvals/").content.decode()
    row = html[html.index(f'id="request-{pending.pk}"') :]
    assert 'data-status="pending"' in row[:200] and "Withdraw" in row[: row.index("</tr>")]
    decide(client_for("manager"), pending, decision="reject", comment="Budget not confirmed")
    html = seller.get("/approvals/").content.decode()
    row = html[html.index(f'id="request-{pending.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Rejected" in row and "manager" in row and "Budget not confirmed" in row
    assert "Withdraw" not in row
    assert 'id="waiting"' not in html  # sellers decide nothing


def test_the_requester_withdraws_a_waiting_request(
    pending: ProjectApproval, client_for: Any
) -> None:
    assert client_for("manager").post(f"/approvals/{pending.pk}/withdraw/").status_code == 403
    assert client_for("sh_seller").post(f"/approvals/{pending.pk}/withdraw/").status_code == 404
    assert state(pending)[0] == "pending"
    response = client_for("seller").post(f"/approvals/{pending.pk}/withdraw/")
    assert response.status_code == 302
    assert state(pending)[0] == "withdrawn"


def test_anonymous_users_are_sent_to_sign_in(pending: ProjectApproval, client: Any) -> None:
    for response in (
        client.get("/approvals/"),
        client.post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"}),
        client.post(f"/approvals/{pending.pk}/withdraw/"),
    ):
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert state(pending)[0] == "pending"


def test_decisions_are_post_only(pending: ProjectApproval, client_for: Any) -> None:
    assert client_for("manager").get(f"/approvals/{pending.pk}/decide/").status_code == 405
    assert state(pending)[0] == "pending"


def test_inbox_in_chinese(pending: ProjectApproval, client_for: Any) -> None:
    html = client_for("manager", "zh-hans").get("/approvals/").content.decode()
    assert "确认客户意向" in html  # the stage's Chinese name
    assert "北京分公司" in html


def test_requests_are_escaped(walker: Any, org: dict[str, Any], client_for: Any) -> None:
    evil = '<script>alert("x")</script> & "Q\'s"'
    opp = walker.to(walker.create(name=evil), "intent")
    request_approval(opp, org["seller"], requirement=evil, strategy=evil)
    for name in ("manager", "seller"):
        html = client_for(name).get("/approvals/").content.decode()
        assert "<script>alert" not in html
        assert (
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Q&#x27;s&quot;" in html
        )


def test_inbox_query_count_does_not_grow_with_requests(
    walker: Any, org: dict[str, Any], client_for: Any, django_assert_max_num_queries: Any
) -> None:
    def one(name: str, decide_it: bool = False) -> None:
        approval = request_approval(walker.to(walker.create(name=name), "intent"), org["seller"])
        if decide_it:
            ps.approval_decide(approval=approval, actor=org["manager"], approve=True, comment="ok")

    one("first")
    one("first decided", decide_it=True)
    for name in ("manager", "seller"):
        client = client_for(name)
        client.get("/approvals/")
        with django_assert_max_num_queries(25) as few:
            client.get("/approvals/")
        counts = len(few.captured_queries)
        if name == "manager":
            for i in range(4):
                one(f"more {i}")
                one(f"more decided {i}", decide_it=True)
        with django_assert_max_num_queries(counts):
            html = client.get("/approvals/").content.decode()
        if name == "manager":
            assert len(waiting_ids(html)) == 5
