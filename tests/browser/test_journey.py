"""The main journey of issue 3, clicked through in a real browser in English and in Chinese:
a seller creates an account and an opportunity, is refused at a gate and sees why (in the
page's language), records evidence, requests 立项; a manager approves it in the inbox; the
seller advances, adds a preliminary quote (software / implementation / services), reaches
negotiation and wins. A seller of another branch cannot open the deal (404).

Only the people, branches and playbooks come from fixtures; everything else is typed and
clicked, and each step is checked both on the page and in the database."""

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from loudou.core.i18n import localized
from loudou.customers.models import Account
from loudou.pipeline.models import Opportunity, ProjectApproval, Quote
from loudou.playbooks.models import Stage
from tests.conftest import credit_code

LANGUAGES = ["en", "zh-hans"]
TEXTS = {
    "en": {
        "account": "North China Energy Group",
        "deal": "Group finance shared-service platform",
        "contact": "Wang Wei",
        "need": "The CFO wants one ledger for the 12 member companies",
        "competitor": "Kingdee",
        "comment": "Go ahead: staff a project manager",
        "evidence": "Said so in the meeting on {}",
    },
    "zh-hans": {
        "account": "华北能源集团",
        "deal": "集团财务共享平台",
        "contact": "王伟",
        "need": "财务总监希望12家成员企业统一账簿",
        "competitor": "金蝶",
        "comment": "同意立项，请配备项目经理",
        "evidence": "客户在会上确认：{}",
    },
}
PRELIMINARY = [
    ("software", "ERP licences", "600000"),
    ("implementation", "Implementation", "300000"),
    ("services", "First-year support", "100000"),
]


def criteria_of(playbook: Any, stage_key: str, language: str, keys: list[str]) -> list[str]:
    stage = Stage.objects.get(playbook=playbook, key=stage_key)
    by_key = {c.key: c for c in stage.criteria.all()}
    return [localized(by_key[k], "text", language) for k in keys]


def stage_name(playbook: Any, key: str, language: str) -> str:
    return localized(Stage.objects.get(playbook=playbook, key=key), "name", language)


def gate_dialog(page: Any) -> Any:
    dialog = page.locator("#modal[open] [data-dialog='gate']")
    dialog.wait_for()
    return dialog


def listed_criteria(dialog: Any) -> list[str]:
    return dialog.locator("ul.criteria li strong").all_inner_texts()


def advance_button(page: Any, stage_key: str) -> Any:
    return page.locator(f'#opp-head button[hx-vals*=\'"to_stage": "{stage_key}"\']')


def fill_evidence_and_move(
    page: Any, dialog: Any, stage_key: str, keys: list[str], text: str
) -> None:
    for key in keys:
        dialog.locator(f"textarea[name='evidence.{stage_key}.{key}']").fill(text.format(key))
    with page.expect_navigation():  # the move answers HX-Refresh: the page reloads
        dialog.locator("button.primary").click()


def current_stage(opp: Any) -> tuple[str, str, int]:
    opp = Opportunity.objects.select_related("stage").get(pk=opp.pk)
    return opp.stage.key, opp.status, opp.version


def section_form(page: Any, section: str, action: str) -> Any:
    """The form of a section of the opportunity page that posts to `action`, unfolded."""
    form = page.locator(f"#{section} form[hx-post$='{action}']").first
    if not form.is_visible():
        page.locator(f"#{section} details:has(form[hx-post$='{action}']) > summary").first.click()
    form.wait_for()
    return form


def add_key_date(page: Any, kind: str, planned: dt.date) -> None:
    form = section_form(page, "dates", "/key-dates/")
    form.locator("select[name=kind]").select_option(kind)
    form.locator("input[name=planned]").fill(planned.isoformat())
    form.locator("button.primary").click()
    page.locator("#dates table.data tbody tr").filter(has_text=planned.isoformat()).first.wait_for()


def add_quote(page: Any, kind: str, lines: list[tuple[str, str, str]]) -> None:
    quotes = page.locator("#quotes")
    form = section_form(page, "quotes", "/quotes/")
    form.locator("select[name=kind]").select_option(kind)
    rows = form.locator("#quote-lines tr.quote-line")
    assert rows.count() == len(lines)
    for i, (category, description, price) in enumerate(lines):
        row = rows.nth(i)
        assert row.locator("select[name=category]").input_value() == category
        row.locator("input[name=description]").fill(description)
        row.locator("input[name=unit_price]").fill(price)
    form.locator("input[name=submit_now]").check()
    shown = quotes.locator("details.quote").count()
    form.locator("button.primary").last.click()
    expect(quotes.locator("details.quote")).to_have_count(shown + 1)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_main_journey(browse: Any, org: dict[str, Any], playbook: Any, language: str) -> None:
    text = TEXTS[language]
    today = timezone.localdate()
    seller = browse("seller", language)

    # --- a new account, qualified as a target, with a decision maker ---------------------
    seller.goto("/accounts/new/")
    form = seller.locator("form.account-form")
    form.locator("[name=name]").fill(text["account"])
    form.locator("[name=credit_code]").fill(credit_code(501))
    form.locator("[name=industry]").select_option("power")
    form.locator("[name=size_band]").select_option("large")
    form.locator("[name=organisations_count]").fill("12")
    form.locator("[name=it_need]").fill(text["need"])
    form.locator("[name=product_fit]").fill("Multi-organisation finance")
    form.locator("button.primary").click()
    seller.wait_for_url(re.compile(r"/accounts/\d+/$"))
    account = Account.objects.get(name=text["account"])
    assert seller.url.endswith(f"/accounts/{account.pk}/")
    assert (account.owner_id, account.is_target) == (org["seller"].pk, True)
    assert seller.locator("h1").inner_text() == text["account"]
    assert seller.locator("#icp li[data-criterion] .mark.yes").count() == 5

    seller.locator(f"#contacts a[href$='/accounts/{account.pk}/contacts/new/']").click()
    contact_form = seller.locator("#modal[open] form")
    contact_form.locator("[name=name]").fill(text["contact"])
    contact_form.locator("[name=title]").fill("CFO")
    contact_form.locator("[name=selection_part]").select_option("decision_maker")
    # Saved, the dialog answers HX-Refresh and the page reloads: wait for that reload (a goto
    # here would race it and be aborted).
    with (
        seller.expect_navigation(),
        seller.expect_response(lambda r: r.request.method == "POST") as answer,
    ):
        contact_form.locator("button.primary").click()
    assert answer.value.status == 204
    seller.locator("#contacts").get_by_text(text["contact"]).wait_for()

    # --- a new opportunity from the account page ------------------------------------------
    seller.locator(".pagehead .actions a.primary").click()
    seller.wait_for_url(re.compile(rf"/opportunities/new/\?account={account.pk}$"))
    form = seller.locator("form.opp-form")
    assert form.locator("select[name=account]").input_value() == str(account.pk)
    form.locator("[name=name]").fill(text["deal"])
    form.locator("[name=need]").fill(text["need"])
    form.locator("[name=amount]").fill("1000000")
    form.locator("[name=close_date]").fill((today + dt.timedelta(days=60)).isoformat())
    form.locator("[name=source]").fill("Referral")
    form.locator("textarea[name='evidence.discover.need_found']").fill(text["need"])
    form.locator("button.primary").click()
    seller.wait_for_url(re.compile(r"/opportunities/\d+/$"))
    opp = Opportunity.objects.get(name=text["deal"])
    assert seller.url.endswith(f"/opportunities/{opp.pk}/")
    assert current_stage(opp) == ("discover", "open", opp.version)
    assert seller.locator("#opp-head h1").inner_text() == text["deal"]

    # --- refused at the gate of "intent": the dialog says why, in the page's language -----
    intent_keys = [
        "interested",
        "accepts_packaged",
        "preliminary_requirements",
        "contacting_vendors",
    ]
    advance_button(seller, "intent").click()
    dialog = gate_dialog(seller)
    assert stage_name(playbook, "intent", language) in dialog.locator("h2").inner_text()
    assert listed_criteria(dialog) == criteria_of(playbook, "intent", language, intent_keys)
    assert current_stage(opp)[0] == "discover"  # refused: nothing moved
    fill_evidence_and_move(seller, dialog, "intent", intent_keys, text["evidence"])
    assert current_stage(opp)[0] == "intent"
    assert seller.locator("#path li[aria-current=step]").inner_text().strip() == stage_name(
        playbook, "intent", language
    )

    # --- stage 4 needs 立项 and facts: the gate lists them, the seller gathers them --------
    advance_button(seller, "project").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(
        playbook,
        "project",
        language,
        [
            "recognises_us",
            "has_requirement",
            "has_budget",
            "has_timeline",
            "others_involved",
            "guiding",
            "approved",
        ],
    )  # the selection team holds: the account has a decision maker
    assert dialog.locator("a[href$='#approval']").count() == 1
    dialog.locator("[data-close-modal]").first.click()
    seller.locator("#modal").wait_for(state="hidden")

    form = section_form(seller, "competitors", "/competitors/")
    form.locator("[name=name]").fill(text["competitor"])
    form.locator("button.primary").click()
    seller.locator("#competitors .rows li strong").filter(has_text=text["competitor"]).wait_for()
    add_key_date(seller, "bid", today + dt.timedelta(days=30))

    request = section_form(seller, "approval", "/approval/")
    request.locator("[name=requirement]").fill(text["need"])
    request.locator("[name=budget]").fill("1200000")
    request.locator("[name=timeline]").fill("Decide by the end of the quarter")
    request.locator("[name=selection_team]").fill(f"{text['contact']} (CFO) decides")
    request.locator("button.primary").click()
    seller.locator("#approval .pill.warn").wait_for()
    pending = ProjectApproval.objects.get(opportunity=opp)
    assert (pending.status, pending.budget) == ("pending", Decimal("1200000"))

    # --- the manager approves in the inbox -------------------------------------------------
    manager = browse("manager", language)
    manager.goto("/approvals/")
    card = manager.locator(f"#approval-{pending.pk}")
    assert card.get_attribute("data-status") == "pending"
    assert card.locator("h3").inner_text() == text["deal"]
    card.locator("textarea[name=comment]").fill(text["comment"])
    card.locator("button[name=decision][value=approve]").click()
    manager.locator(f"#approval-{pending.pk}[data-status=approved]").wait_for()
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by_id) == ("approved", org["manager"].pk)

    # --- the seller sees the decision and advances to stage 4 ------------------------------
    seller.reload()
    assert seller.locator("#approval .pill.ok").first.is_visible()
    assert text["comment"] in seller.locator("#approval").inner_text()
    project_keys = ["recognises_us", "has_requirement", "guiding"]
    advance_button(seller, "project").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(playbook, "project", language, project_keys)
    fill_evidence_and_move(seller, dialog, "project", project_keys, text["evidence"])
    assert current_stage(opp)[0] == "project"

    # --- a preliminary quote: software, implementation and services -----------------------
    add_quote(seller, "preliminary", PRELIMINARY)
    quote = Quote.objects.get(opportunity=opp, kind="preliminary")
    assert quote.submitted_at is not None
    assert sorted(quote.lines.values_list("category", "unit_price")) == sorted(
        (c, Decimal(p)) for c, _d, p in PRELIMINARY
    )
    recognition_keys = ["product_accepted", "shortlisted"]
    advance_button(seller, "recognition").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(
        playbook, "recognition", language, recognition_keys
    )  # the quote and the close date within 90 days hold
    fill_evidence_and_move(seller, dialog, "recognition", recognition_keys, text["evidence"])
    assert current_stage(opp)[0] == "recognition"

    # --- negotiation needs the schedule ------------------------------------------------------
    add_key_date(seller, "negotiation", today + dt.timedelta(days=40))
    add_key_date(seller, "signing", today + dt.timedelta(days=55))
    negotiation_keys = ["accepted_us", "sole_or_shortlisted"]
    advance_button(seller, "negotiation").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(
        playbook, "negotiation", language, negotiation_keys
    )
    fill_evidence_and_move(seller, dialog, "negotiation", negotiation_keys, text["evidence"])
    assert current_stage(opp)[0] == "negotiation"

    # --- won: the formal quote first, then the signed contract ------------------------------
    advance_button(seller, "__won__").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(
        playbook, "closed", language, ["formal_quote", "contract_signed"]
    )
    dialog.locator("[data-close-modal]").first.click()
    add_quote(seller, "formal", PRELIMINARY)
    advance_button(seller, "__won__").click()
    dialog = gate_dialog(seller)
    assert listed_criteria(dialog) == criteria_of(playbook, "closed", language, ["contract_signed"])
    fill_evidence_and_move(seller, dialog, "closed", ["contract_signed"], text["evidence"])
    stage, status, _version = current_stage(opp)
    assert (stage, status) == ("closed", "won")
    assert seller.locator("#opp-head .pill.ok").is_visible()
    history = seller.locator("#history").inner_text()
    for key in ["intent", "project", "recognition", "negotiation"]:
        assert stage_name(playbook, key, language) in history

    # --- a seller of another branch cannot open it ------------------------------------------
    outsider = browse("sh_seller", language)
    response = outsider.goto(f"/opportunities/{opp.pk}/")
    assert response is not None and response.status == 404
    assert text["deal"] not in outsider.content()
    assert outsider.locator("html").get_attribute("lang") == language
