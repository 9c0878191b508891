"""Forms in the dialog: saving closes it and the page shows what was saved; a refused form
stays open with its message and what was typed."""

from typing import Any

from loudou.customers.models import Contact


def test_adding_a_contact_closes_the_dialog_and_shows_the_contact(
    browse: Any, account: Any
) -> None:
    page = browse("seller")
    page.goto(f"/accounts/{account.pk}/")
    page.locator(f"#contacts a[href$='/accounts/{account.pk}/contacts/new/']").click()
    form = page.locator("#modal[open] form")

    # Refused (no name): the dialog stays open with the error and keeps the title typed.
    form.locator("[name=title]").fill("CFO")
    form.locator("button.primary").click()
    page.locator("#modal[open] .field-error").first.wait_for()
    assert page.locator("#modal[open] [name=title]").input_value() == "CFO"
    assert not Contact.objects.filter(account=account, title="CFO").exists()

    page.locator("#modal[open] [name=name]").fill("李总")
    page.locator("#modal[open] [name=selection_part]").select_option("influencer")
    page.locator("#modal[open] button.primary").click()
    page.locator("#contacts").get_by_text("李总").wait_for()
    assert page.locator("#modal").get_attribute("open") is None
    assert Contact.objects.get(account=account, name="李总").selection_part == "influencer"
