"""The opportunity form: create (the account preselected, the first stage's criteria on the form,
refusals that keep what was typed) and edit (history with the reason, a stale version is a
conflict that changes nothing)."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from tests.web.test_opportunity_page import snapshot, url

pytestmark = pytest.mark.django_db


# --- the opportunity form -------------------------------------------------------------------


def create_data(account: Any, **overrides: str) -> dict[str, str]:
    data = {
        "account": str(account.pk),
        "playbook": "project-funnel",
        "name": "资金管理平台",
        "need": "CFO wants group-wide cash visibility",
        "amount": "2,500,000",
        "currency": "CNY",
        "budget": "3000000",
        "close_date": (timezone.localdate() + dt.timedelta(days=120)).isoformat(),
        "source": "Referral",
        "evidence.discover.need_found": "CFO described the need in the kickoff",
    }
    data.update(overrides)
    return data


def test_create_form_preselects_the_account(account: Any, client_for: Any) -> None:
    html = client_for("seller").get(f"/opportunities/new/?account={account.pk}").content.decode()
    assert f'<option value="{account.pk}" selected>' in html
    assert 'name="evidence.discover.need_found"' in html  # the first stage's check criterion


def test_create_redirects_to_the_new_deal(account: Any, client_for: Any, org: Any) -> None:
    response = client_for("seller").post("/opportunities/new/", create_data(account))
    opp = Opportunity.objects.get(name="资金管理平台")
    assert response.status_code == 302
    assert response["Location"] == url(opp)
    assert (opp.amount, opp.budget, opp.owner, opp.stage.key) == (
        Decimal("2500000.00"),
        Decimal("3000000.00"),
        org["seller"],
        "discover",
    )
    assert opp.evidence.get().note == "CFO described the need in the kickoff"


def test_create_with_invalid_input_keeps_what_was_typed(account: Any, client_for: Any) -> None:
    data = create_data(account, amount="lots", need="Typed need <kept>")
    response = client_for("seller").post("/opportunities/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "“lots” is not an amount." in html
    assert 'value="资金管理平台"' in html
    assert "Typed need &lt;kept&gt;" in html
    assert "CFO described the need in the kickoff" in html
    assert Opportunity.objects.count() == 0


def test_create_refused_by_the_gate_says_why(account: Any, client_for: Any) -> None:
    data = create_data(account)
    del data["evidence.discover.need_found"]
    response = client_for("seller").post("/opportunities/new/", data)
    assert response.status_code == 400
    assert "A concrete potential need has been found" in response.content.decode()
    assert Opportunity.objects.count() == 0


def test_create_in_chinese_says_the_error_in_chinese(account: Any, client_for: Any) -> None:
    data = create_data(account, close_date="")
    response = client_for("seller", "zh-hans").post("/opportunities/new/", data)
    assert response.status_code == 400
    assert "An expected close date is required." not in response.content.decode()
    assert Opportunity.objects.count() == 0


def test_a_seller_cannot_create_for_an_account_they_cannot_see(
    account: Any, client_for: Any
) -> None:
    response = client_for("sh_seller").post("/opportunities/new/", create_data(account))
    assert response.status_code == 400
    assert "Choose the customer account" in response.content.decode()
    assert Opportunity.objects.count() == 0
    html = client_for("sh_seller").get("/opportunities/new/").content.decode()
    assert account.name not in html


# --- the edit form -------------------------------------------------------------------------


def edit_data(opp: Opportunity, **overrides: str) -> dict[str, str]:
    data = {
        "version": str(opp.version),
        "name": opp.name,
        "need": opp.need,
        "amount": "1500000",
        "currency": "CNY",
        "budget": "",
        "close_date": opp.close_date.isoformat(),
        "source": opp.source,
        "probability_override": "",
        "reason": "Scope grew",
    }
    data.update(overrides)
    return data


def test_edit_saves_and_writes_history_with_the_reason(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    response = client_for("seller").post(url(opp, "edit/"), edit_data(opp))
    assert response.status_code == 302 and response["Location"] == url(opp)
    opp.refresh_from_db()
    assert opp.amount == Decimal("1500000.00")
    assert opp.history.order_by("-id").first().reason == "Scope grew"


def test_edit_with_a_stale_version_is_a_conflict_and_changes_nothing(
    walker: Any, client_for: Any, org: Any
) -> None:
    opp = walker.create()
    stale = edit_data(opp, amount="7777777", name="My typed name")
    ps.opportunity_update(opportunity=opp, actor=org["manager"], amount="2000000")
    before = snapshot(opp)
    response = client_for("seller").post(url(opp, "edit/"), stale)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Someone else changed this opportunity while you were editing" in html
    assert 'value="7777777"' in html and 'value="My typed name"' in html
    assert "¥2,000,000" in html  # what is saved now
    assert snapshot(opp) == before


def test_edit_with_invalid_date_keeps_input(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    response = client_for("seller").post(
        url(opp, "edit/"), edit_data(opp, close_date="someday", amount="42")
    )
    assert response.status_code == 400
    assert "An expected close date is required." in response.content.decode()
    assert 'value="42"' in response.content.decode()
    assert snapshot(opp) == before


def test_edit_is_404_for_other_branches(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = snapshot(opp)
    assert client_for("tj_seller").get(url(opp, "edit/")).status_code == 404
    assert client_for("tj_seller").post(url(opp, "edit/"), edit_data(opp)).status_code == 404
    assert snapshot(opp) == before
