"""Signing in and out, the language switch, and what a user of another branch gets: 404."""

from typing import Any

import pytest

from loudou.org.models import User
from loudou.pipeline.models import Opportunity
from tests.browser.conftest import PASSWORD, switch_language


def test_sign_in_shows_who_is_signed_in_and_sign_out_returns_to_login(
    browse: Any, org: dict[str, Any]
) -> None:
    page = browse()
    page.goto("/board/")
    page.wait_for_url("**/login/?next=/board/")
    page.locator("input[name=username]").fill("seller")
    page.locator("input[name=password]").fill("wrong password")
    page.locator("form:has(input[name=password]) button").click()
    assert page.get_by_role("alert").inner_text() == (
        "The user name or password is not right. Both are case-sensitive."
    )
    # What was typed as the user name stays.
    assert page.locator("input[name=username]").input_value() == "seller"

    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form:has(input[name=password]) button").click()
    page.wait_for_url("**/board/")
    whoami = page.locator(".whoami").inner_text()
    assert "seller" in whoami and "Account manager" in whoami

    page.locator(".topbar form:has(button.link) button").click()
    page.wait_for_url("**/login/")
    page.goto("/board/")
    page.wait_for_url("**/login/?next=/board/")


def test_the_language_switch_translates_the_page_and_is_remembered(
    browse: Any, org: dict[str, Any]
) -> None:
    page = browse("seller", "en")
    page.goto("/board/")
    assert page.locator("h1").inner_text() == "Pipeline"
    assert page.locator(".whoami small").inner_text().startswith("Account manager")

    switch_language(page, "zh-hans")
    assert page.url.endswith("/board/")  # back on the same page
    assert page.locator("h1").inner_text() == "销售漏斗"
    assert page.locator(".whoami small").inner_text().startswith("客户经理")
    assert User.objects.get(pk=org["seller"].pk).language == "zh-hans"

    # Remembered on the user: a new browser that asks for English still gets Chinese.
    other = browse("seller", "en")
    other.goto("/opportunities/")
    assert other.locator("html").get_attribute("lang") == "zh-hans"

    switch_language(other, "en")
    assert other.locator("h1").inner_text() == "Pipeline"
    assert User.objects.get(pk=org["seller"].pk).language == "en"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_seller_of_another_branch_gets_404_for_a_deal(
    browse: Any, walker: Any, language: str
) -> None:
    opp = walker.create(name="北京的商机")
    page = browse("sh_seller", language)
    response = page.goto(f"/opportunities/{opp.pk}/")
    assert response is not None and response.status == 404
    assert "北京的商机" not in page.content()
    # The board and the list do not show it either.
    page.goto("/board/")
    assert page.locator(f".deal[data-id='{opp.pk}']").count() == 0
    page.goto("/opportunities/")
    assert "北京的商机" not in page.locator("main").inner_text()
    # Nor can the move endpoint be used on it (with a valid CSRF token: the 404 is the
    # visibility rule, not a CSRF refusal).
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.post(
        f"/opportunities/{opp.pk}/move/",
        form={"to_stage": "intent", "version": str(opp.version)},
        headers={"X-CSRFToken": token},
    )
    assert answer.status == 404
    assert Opportunity.objects.get(pk=opp.pk).stage.key == "discover"
