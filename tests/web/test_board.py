"""The board and the opportunity list: columns with exact totals, cards, filters, visibility,
and a query count that does not grow with the deals shown."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from loudou.pipeline.board import BoardFilters, board_columns


@pytest.fixture
def deals(walker: Any, org: dict[str, Any], sh_account: Any) -> dict[str, Any]:
    """Two deals in discover (1,000,000 and 500,000) and one in intent (2,000,000) for the
    Beijing seller, and one in discover for the Shanghai seller on an account of their own."""
    from loudou.pipeline.services import opportunity_create

    a = walker.create(name="财务共享平台", amount="1000000")
    b = walker.create(name="供应链协同", amount="500000")
    c = walker.to(walker.create(name="人力云", amount="2000000"), "intent")
    d = opportunity_create(
        actor=org["sh_seller"],
        account=sh_account,
        name="上海财务云",
        amount="3000000",
        close_date=timezone.localdate() + dt.timedelta(days=30),
        source="Event",
        evidence={"need_found": "CFO"},
    )
    return {"a": a, "b": b, "c": c, "d": d}


def column(columns: list[Any], key: str) -> Any:
    return next(c for c in columns if c.stage.key == key)


def test_columns_count_and_sum_exactly_what_the_user_may_see(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any
) -> None:
    seller_columns = board_columns(org["seller"], playbook, BoardFilters())
    discover = column(seller_columns, "discover")
    assert (discover.count, discover.amount) == (2, Decimal("1500000"))
    # discover has probability 10 % in the seed playbook
    assert discover.weighted == Decimal("150000")
    intent = column(seller_columns, "intent")
    assert (intent.count, intent.amount, intent.weighted) == (
        1,
        Decimal("2000000"),
        Decimal("500000"),
    )
    assert [c.opportunity.name for c in discover.cards] == ["财务共享平台", "供应链协同"]

    executive = board_columns(org["executive"], playbook, BoardFilters())
    assert column(executive, "discover").count == 3
    assert column(executive, "discover").amount == Decimal("4500000")
    sh_seller = board_columns(org["sh_seller"], playbook, BoardFilters())
    assert [c.opportunity.name for c in column(sh_seller, "discover").cards] == ["上海财务云"]
    assert column(sh_seller, "intent").count == 0


def test_filters_narrow_by_owner_branch_industry_quarter_and_search(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any
) -> None:
    def names(filters: BoardFilters) -> set[str]:
        cols = board_columns(org["executive"], playbook, filters)
        return {card.opportunity.name for col in cols for card in col.cards}

    assert names(BoardFilters(owner_id=org["sh_seller"].pk)) == {"上海财务云"}
    assert names(BoardFilters(branch_id=org["north"].pk)) == {
        "财务共享平台",
        "供应链协同",
        "人力云",
    }
    industry = deals["d"].account.industry_id
    assert names(BoardFilters(industry_id=industry)) == {"上海财务云"}
    assert names(BoardFilters(search="供应链")) == {"供应链协同"}
    assert names(BoardFilters(source="Event")) == {"上海财务云"}  # e.g. an import's format
    close = deals["d"].close_date
    quarter = f"{close.year}Q{(close.month - 1) // 3 + 1}"
    assert "上海财务云" in names(BoardFilters(quarter=quarter))
    assert names(BoardFilters(quarter="1999Q1")) == set()
    assert BoardFilters(quarter="2026Q4").quarter_range() == (
        dt.date(2026, 10, 1),
        dt.date(2026, 12, 31),
    )
    assert BoardFilters(quarter="nonsense").quarter_range() is None


def test_card_shows_gate_progress_toward_the_next_stage(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any
) -> None:
    cards = {
        card.opportunity.name: card
        for col in board_columns(org["seller"], playbook, BoardFilters())
        for card in col.cards
    }
    # discover → intent has four required check criteria and no evidence yet
    assert (cards["财务共享平台"].held, cards["财务共享平台"].required) == (0, 4)
    assert cards["财务共享平台"].next_stage.key == "intent"
    assert cards["人力云"].next_stage.key == "project"
    assert cards["人力云"].required > cards["人力云"].held


def test_board_page_renders_columns_and_cards(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller").get("/board/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "财务共享平台" in html and "人力云" in html
    assert "上海财务云" not in html
    assert 'data-drop-stage="intent"' in html
    assert "0/4" in html


def test_board_in_chinese_shows_the_playbook_stage_names(
    deals: dict[str, Any], client_for: Any
) -> None:
    html = client_for("seller", "zh-hans").get("/board/").content.decode()
    assert "发掘潜在商机" in html and "确认客户意向" in html
    assert "看板" in html or "销售漏斗" in html or "商机" in html


def test_anonymous_is_sent_to_sign_in(db: Any, client: Any) -> None:
    for url in ["/board/", "/opportunities/", "/board/discover/more/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_show_more_pages_through_a_column(
    walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    for i in range(35):
        walker.create(name=f"商机{i:02d}", amount="1000")
    html = client_for("seller").get("/board/").content.decode()
    assert html.count('class="deal') == 20
    assert "Show more (15 left)" in html
    more = client_for("seller").get("/board/discover/more/?offset=20&total=35").content.decode()
    assert more.count('class="deal') == 15
    assert "商机34" in more and "商机00" not in more


def test_board_query_count_does_not_grow_with_deals(
    walker: Any, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    # One query per non-empty column loads its cards, so fill every column first: then more
    # deals in the same columns must cost nothing more.
    client = client_for("seller")
    stages = ["discover", "intent", "project", "recognition", "negotiation"]
    for key in stages:
        walker.to(walker.create(name=f"first {key}"), key)
    client.get("/board/")  # warm the per-process stage cache
    with django_assert_max_num_queries(30) as few:
        client.get("/board/")
    for i in range(10):
        walker.to(walker.create(name=f"more {i}"), stages[i % 5])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/board/")
    assert response.content.decode().count('class="deal') == 15


def test_list_sorts_filters_status_and_hides_other_branches(
    deals: dict[str, Any], client_for: Any
) -> None:
    client = client_for("seller")
    html = client.get("/opportunities/?sort=-amount").content.decode()
    assert html.index("人力云") < html.index("财务共享平台") < html.index("供应链协同")
    assert "上海财务云" not in html
    html = client.get("/opportunities/?sort=amount").content.decode()
    assert html.index("供应链协同") < html.index("财务共享平台") < html.index("人力云")
    assert "人力云" not in client.get("/opportunities/?status=won").content.decode()
    # The import report links here with its source: the list says so and keeps it in its form.
    html = client_for("executive").get("/opportunities/?source=Event").content.decode()
    assert "上海财务云" in html and "人力云" not in html
    assert 'name="source" value="Event"' in html and "Imported from Event" in html


def test_names_render_as_text(walker: Any, client_for: Any) -> None:
    walker.create(name='<script>alert("x")</script>')
    for url in ["/board/", "/opportunities/"]:
        html = client_for("seller").get(url).content.decode()
        assert '<script>alert("x")' not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
