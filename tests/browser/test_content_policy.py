"""The Content-Security-Policy (no inline script, scripts from this site only) leaves every
page working: the charts draw, the menus apply, nothing is refused in the console."""

from typing import Any

import pytest

from loudou.core.security import CONTENT_SECURITY_POLICY

PAGES_WITH_CHARTS = [
    "/funnel/",
    "/analytics/conversion/",
    "/analytics/velocity/",
    "/analytics/flow/",
    "/analytics/forecast/?period={close:%Y-%m}",  # the month the deals close in
]
OTHER_PAGES = [
    "/",
    "/analytics/",
    "/board/",
    "/opportunities/",
    "/accounts/",
    "/approvals/",
    "/import/",
]


@pytest.fixture
def deals(walker: Any) -> list[Any]:
    """Deals at three stages, so each chart has something to draw."""
    made = [walker.create(name=f"CSP 项目 {i}", amount=str(100000 * (i + 1))) for i in range(3)]
    walker.to(made[1], "intent")
    walker.to(made[2], "project")
    return made


def test_every_page_works_under_the_policy(browse: Any, deals: list[Any]) -> None:
    page = browse("manager")
    charts = [url.format(close=deals[0].close_date) for url in PAGES_WITH_CHARTS]
    for url in OTHER_PAGES + charts:
        response = page.goto(url)
        assert response.status == 200, url
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for url in charts:
        page.goto(url)
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
    # A filter menu applies on change (a data attribute now, not an inline handler).
    page.goto("/opportunities/")
    with page.expect_navigation():
        page.locator("select[name=status]").select_option("all")
    assert "status=all" in page.url
    # The opportunity page, the API docs and the settings (admin) pages load their scripts.
    page.goto(f"/opportunities/{deals[2].pk}/")
    page.goto("/api/v1/docs")
    page.locator(".swagger-ui .info").wait_for()


def test_the_admin_works_under_the_policy(browse: Any, deals: list[Any]) -> None:
    page = browse("admin")
    page.goto("/admin/")
    page.goto("/admin/pipeline/opportunity/")
    page.locator("#result_list").wait_for()
    page.goto(f"/admin/pipeline/opportunity/{deals[0].pk}/change/")
