"""Cursor paging of the long lists: `?cursor=` walks a list in the order the client asked for
(the id breaking ties) without skipping or repeating a row while rows are added or removed
between two pages; a cursor is signed, so a forged or garbled one is a 400 problem."""

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core import signing
from django.utils import timezone

from loudou.api.routers import exports as export_router
from loudou.api.routers.accounts import AccountSort
from loudou.api.routers.opportunities import OpportunitySort
from loudou.core import clock
from loudou.customers.models import Contact
from loudou.customers.services import account_create, account_update, contact_create
from loudou.pipeline import services as ps
from loudou.pipeline.models import Activity, Opportunity
from tests.api.conftest import ApiClient

TODAY = timezone.localdate()
CURSOR_KEYS = {"results", "page_size", "next_cursor"}
PAGE_KEYS = {"count", "page", "page_size", "pages", "results"}


def walk(
    client: ApiClient,
    path: str,
    params: dict[str, Any],
    size: int = 2,
    between: Callable[[list[int]], None] | None = None,
) -> list[int]:
    """Every id of a list walked by cursor; `between` runs after the first page."""
    ids: list[int] = []
    cursor = ""
    for pages in range(1, 100):
        response = client.get(path, {**params, "cursor": cursor, "page_size": size})
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == CURSOR_KEYS and body["page_size"] == size
        assert len(body["results"]) <= size
        ids += [row["id"] for row in body["results"]]
        if pages == 1 and between is not None:
            between(list(ids))
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
        assert len(body["results"]) == size  # only the last page may be short
    raise AssertionError("the walk never ended")


def listed(client: ApiClient, path: str, params: dict[str, Any]) -> list[int]:
    """The ids of the list in one page, by page paging."""
    body = client.get(path, {**params, "page_size": 200}).json()
    assert set(body) == PAGE_KEYS
    return [row["id"] for row in body["results"]]


def expected_walk(before: list[int], first_page: list[int], after: list[int]) -> list[int]:
    """What a keyset walk must return: the first page, then every row of the final order that
    sorts after the last row of the first page (and the row itself must still be in it)."""
    last = first_page[-1]
    assert last in after
    return first_page + after[after.index(last) + 1 :]


# --- opportunities: every sort, a row added and two taken out during the walk -----------------


@pytest.fixture
def deals(walker: Any, sh_deal: Any) -> dict[str, Opportunity]:
    """Seven deals of the Beijing seller with ties on every sort key (two created in the same
    instant, equal amounts, names and close dates), two of them at intent."""
    day = dt.timedelta(days=1)
    found = {}
    with clock.frozen_at(timezone.now() - dt.timedelta(days=3)):
        found["alpha"] = walker.create("Alpha", amount="300", close_date=TODAY + 10 * day)
        found["echo1"] = walker.create("Echo", amount="300", close_date=TODAY + 20 * day)
    found["bravo"] = walker.create("Bravo", amount="100", close_date=TODAY + 10 * day)
    found["charlie"] = walker.to(
        walker.create("Charlie", amount="300", close_date=TODAY + 30 * day), "intent"
    )
    found["delta"] = walker.create("Delta", amount="200", close_date=TODAY + 20 * day)
    found["echo2"] = walker.create("Echo", amount="50", close_date=TODAY + 40 * day)
    found["golf"] = walker.to(
        walker.create("Golf", amount="700", close_date=TODAY + 10 * day), "intent"
    )
    found["sh"] = sh_deal
    return found


def opportunity_oracle(sort: str) -> list[int]:
    """The order a sort means, computed in Python: the field, then the id, highest first."""
    field = sort.lstrip("-")
    rows = list(Opportunity.objects.filter(branch__code="bj").select_related("stage"))

    def value(o: Opportunity) -> Any:
        return o.stage.order if field == "stage" else getattr(o, field)

    if sort.startswith("-"):
        return [o.pk for o in sorted(rows, key=lambda o: (value(o), o.pk), reverse=True)]
    return [o.pk for o in sorted(rows, key=lambda o: (value(o), -o.pk))]


@pytest.mark.parametrize("sort", OpportunitySort.__args__)  # type: ignore[attr-defined]
def test_opportunities_walk_each_sort_while_rows_come_and_go(
    deals: dict[str, Opportunity], walker: Any, org: dict[str, Any], api_for: Any, sort: str
) -> None:
    seller = api_for("seller")
    before = listed(seller, "opportunities", {"sort": sort})
    assert before == opportunity_oracle(sort)
    assert deals["sh"].pk not in before and len(before) == 7
    added: list[int] = []

    def meanwhile(first_page: list[int]) -> None:
        # A deal is added, and two leave the seller's view (given to Shanghai): one already
        # shown, one not yet reached.
        added.append(walker.create("Hotel", amount="250", close_date=TODAY).pk)
        for gone in (first_page[0], before[-1]):
            ps.opportunity_reassign(opportunity=gone, actor=org["admin"], owner=org["sh_seller"])

    walked = walk(seller, "opportunities", {"sort": sort}, between=meanwhile)
    after = listed(seller, "opportunities", {"sort": sort})
    assert walked == expected_walk(before, before[:2], after)
    assert len(walked) == len(set(walked))
    # Every row there from start to end was shown exactly once.
    stayed = [pk for pk in before if pk not in (before[0], before[-1])]
    assert all(walked.count(pk) == 1 for pk in stayed)
    assert before[-1] not in walked and deals["sh"].pk not in walked
    # The new deal is the newest: it is already behind a walk by newest first.
    if sort == "-created_at":
        assert added[0] not in walked
    if sort == "created_at":
        assert walked[-1] == added[0]


def test_another_branch_walks_only_its_own(deals: dict[str, Opportunity], api_for: Any) -> None:
    assert walk(api_for("sh_seller"), "opportunities", {}) == [deals["sh"].pk]
    assert walk(api_for("north_manager"), "opportunities", {"branch": "sh"}) == []
    executive = walk(api_for("executive"), "opportunities", {"sort": "name"}, size=3)
    assert sorted(executive) == sorted(o.pk for o in deals.values())


def test_filters_apply_to_every_page(deals: dict[str, Opportunity], api_for: Any) -> None:
    seller = api_for("seller")
    assert walk(seller, "opportunities", {"stage": "intent", "sort": "amount"}, size=1) == [
        deals["charlie"].pk,
        deals["golf"].pk,
    ]
    assert walk(seller, "opportunities", {"q": "Echo", "sort": "name"}, size=1) == [
        deals["echo2"].pk,
        deals["echo1"].pk,
    ]


# --- accounts: every sort, one added and two leaving the filter -------------------------------


@pytest.mark.parametrize("sort", AccountSort.__args__)  # type: ignore[attr-defined]
def test_accounts_walk_each_sort_while_rows_come_and_go(
    org: dict[str, Any], api_for: Any, sort: str
) -> None:
    seller = org["seller"]
    with clock.frozen_at(timezone.now() - dt.timedelta(days=2)):
        for name in ("Kilo", "Lima"):
            account_create(actor=seller, name=name, industry="retail")
    for name in ("Lima", "Mike", "India", "Juliet"):
        account_create(actor=seller, name=name, industry="retail")
    account_create(actor=org["sh_seller"], name="Alpha Shanghai", industry="retail")
    client = api_for("seller")
    params = {"industry": "retail", "sort": sort}
    before = listed(client, "accounts", params)
    assert len(before) == 6

    def meanwhile(first_page: list[int]) -> None:
        account_create(actor=seller, name="November", industry="retail")
        for gone in (first_page[0], before[-1]):
            account_update(
                account=client_account(gone), actor=seller, industry="power"
            )  # leaves the filtered list

    walked = walk(client, "accounts", params, between=meanwhile)
    after = listed(client, "accounts", params)
    assert walked == expected_walk(before, before[:2], after)
    assert len(walked) == len(set(walked)) and before[-1] not in walked
    assert set(before[1:-1]) <= set(walked)


def client_account(pk: int) -> Any:
    from loudou.customers.models import Account

    return Account.objects.get(pk=pk)


# --- activities: nulls in the sort key, rows really deleted -----------------------------------


@pytest.fixture
def activities(walker: Any, org: dict[str, Any], sh_deal: Any) -> dict[str, Activity]:
    """Six activities on a Beijing deal: three done (two in the same instant), three planned
    (no done_at); and one on the Shanghai deal."""
    opp = walker.create()
    seller = org["seller"]
    rows = {
        name: ps.activity_plan(
            opportunity=opp, actor=seller, kind="call", subject=name, due_on=TODAY + dt.timedelta(n)
        )
        for n, name in enumerate(["p1", "d_late", "p2", "d_tie1", "d_tie2", "p3"])
    }
    base = timezone.now() - dt.timedelta(days=1)
    with clock.frozen_at(base + dt.timedelta(hours=5)):
        ps.activity_complete(activity=rows["d_late"], actor=seller, outcome="ok")
    with clock.frozen_at(base):
        ps.activity_complete(activity=rows["d_tie2"], actor=seller, outcome="ok")
        ps.activity_complete(activity=rows["d_tie1"], actor=seller, outcome="ok")
    rows["sh"] = ps.activity_plan(
        opportunity=sh_deal, actor=org["sh_seller"], kind="call", subject="sh", due_on=TODAY
    )
    return rows


def test_nulls_come_last_in_both_directions(activities: dict[str, Activity], api_for: Any) -> None:
    seller = api_for("seller")
    a = {name: row.pk for name, row in activities.items()}
    done_asc = [a["d_tie1"], a["d_tie2"], a["d_late"], a["p1"], a["p2"], a["p3"]]
    done_desc = [a["d_late"], a["d_tie1"], a["d_tie2"], a["p1"], a["p2"], a["p3"]]
    for size in (1, 2, 4):
        assert walk(seller, "activities", {"sort": "done_at"}, size=size) == done_asc
        assert walk(seller, "activities", {"sort": "-done_at"}, size=size) == done_desc
    # Page paging has the same order, on every database.
    assert listed(seller, "activities", {"sort": "done_at"}) == done_asc
    assert listed(seller, "activities", {"sort": "-done_at"}) == done_desc
    by_due = [a[n] for n in ["p1", "d_late", "p2", "d_tie1", "d_tie2", "p3"]]
    assert walk(seller, "activities", {}, size=4) == by_due
    assert walk(seller, "activities", {"sort": "-due_on"}, size=4) == by_due[::-1]
    assert walk(seller, "activities", {"done": False, "sort": "done_at"}, size=1) == [
        a["p1"],
        a["p2"],
        a["p3"],
    ]


@pytest.mark.parametrize("sort", ["done_at", "-done_at", "due_on", "-created_at"])
def test_activities_walk_while_one_is_added_and_one_deleted(
    activities: dict[str, Activity], walker: Any, org: dict[str, Any], api_for: Any, sort: str
) -> None:
    seller = api_for("seller")
    before = listed(seller, "activities", {"sort": sort})
    assert activities["sh"].pk not in before and len(before) == 6
    opp = activities["p1"].opportunity

    def meanwhile(first_page: list[int]) -> None:
        ps.activity_plan(
            opportunity=opp, actor=org["seller"], kind="task", subject="new", due_on=TODAY
        )
        Activity.objects.filter(pk__in=[first_page[0], before[3]]).delete()

    walked = walk(seller, "activities", {"sort": sort}, between=meanwhile)
    after = listed(seller, "activities", {"sort": sort})
    assert walked == expected_walk(before, before[:2], after)
    assert before[3] not in walked
    assert all(walked.count(pk) == 1 for pk in before if pk not in (before[0], before[3]))


def test_activities_of_a_hidden_deal_are_404(activities: dict[str, Activity], api_for: Any) -> None:
    seller = api_for("seller")
    hidden = seller.get("activities", {"opportunity_id": activities["sh"].opportunity_id})
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    sh = walk(api_for("sh_seller"), "activities", {})
    assert sh == [activities["sh"].pk]
    body = seller.get("activities", {"kind": "call", "done": True, "sort": "-done_at"}).json()
    first = body["results"][0]
    assert first["subject"] == "d_late" and first["opportunity_name"] == "财务共享平台"
    assert body["count"] == 3 and body["pages"] == 1


# --- contacts ---------------------------------------------------------------------------------


def test_contacts_walk_while_one_is_added_and_one_deleted(
    account: Any, org: dict[str, Any], api_for: Any, sh_deal: Any
) -> None:
    seller = org["seller"]
    other = account_create(actor=seller, name="北京城建集团")
    for name in ("李工", "张总", "赵经理"):
        contact_create(account=other, actor=seller, name=name)
    contact_create(account=account, actor=seller, name="孙工", title="IT")
    contact_create(account=sh_deal.account, actor=org["sh_seller"], name="上海联系人")
    client = api_for("seller")
    names = [c["account_name"] for c in client.get("contacts").json()["results"]]
    assert "上海汽车集团" not in names
    one = client.get("contacts", {"account_id": account.pk, "sort": "-name"}).json()
    assert [c["name"] for c in one["results"]] == ["王总", "孙工"]
    hidden = client.get("contacts", {"account_id": sh_deal.account_id, "cursor": ""})
    assert hidden.status_code == 404
    assert walk(client, "contacts", {"q": "CIO", "selection_part": "decision_maker"}) == [
        Contact.objects.get(name="王总").pk
    ]
    before = listed(client, "contacts", {})
    assert len(before) == 5

    def meanwhile(first_page: list[int]) -> None:
        contact_create(account=other, actor=seller, name="钱总")
        Contact.objects.filter(pk__in=[first_page[1], before[4]]).delete()

    walked = walk(client, "contacts", {}, between=meanwhile)
    # The row the cursor stood on is gone: the walk goes on from where it was.
    new = Contact.objects.get(name="钱总").pk
    assert [pk for pk in walked if pk != new] == before[:2] + before[2:4]
    after = listed(client, "contacts", {})
    assert [pk for pk in after if pk in walked[2:]] == walked[2:]
    assert walked.count(new) <= 1 and before[4] not in walked


# --- bad cursors ------------------------------------------------------------------------------


def first_cursor(client: ApiClient, path: str, params: dict[str, Any] | None = None) -> str:
    body = client.get(path, {**(params or {}), "cursor": "", "page_size": 1}).json()
    assert body["next_cursor"]
    return str(body["next_cursor"])


def invalid(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json; charset=utf-8"
    body = response.json()
    assert body["code"] == "invalid_cursor" and body["type"] == "urn:loudou:problem:invalid_cursor"
    assert body["title"] == "Invalid cursor" and "cursor" in body["detail"]
    return body


def test_forged_garbled_and_foreign_cursors_are_400(
    deals: dict[str, Opportunity], api_for: Any
) -> None:
    account_create(actor=deals["alpha"].owner, name="Second account")
    seller = api_for("seller")
    good = first_cursor(seller, "opportunities", {"sort": "amount"})
    payload, stamp, signature = good.split(":")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert data["s"] == "amount" and len(data["k"]) == 2
    # The same cursor with the position moved: the signature no longer matches.
    data["k"][1] = 1
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    for cursor in (
        "garbage",
        f"{forged}:{stamp}:{signature}",
        good[:-3],
        good + "x",
        "::",
        "é" * 40,
        first_cursor(seller, "accounts"),  # another list's cursor
    ):
        invalid(seller.get("opportunities", {"sort": "amount", "cursor": cursor}))
    # Another sort than the cursor was made for.
    body = invalid(seller.get("opportunities", {"sort": "-amount", "cursor": good}))
    assert "“amount”" in body["detail"] and "“-amount”" in body["detail"]
    # Signed by us but not a cursor of this version or shape (as after an upgrade).
    salt = "loudou.api.cursor.opportunities"
    for stale in (
        {"v": 0, "s": "amount", "k": ["1.00", 1]},
        {"v": 1, "s": "amount", "k": ["1.00"]},
        {"v": 1, "s": "amount", "k": [None, 1]},
        {"v": 1, "s": "amount", "k": ["lots", 1]},
        {"v": 1, "s": "close_date", "k": ["2026-02-30", 1]},
        ["not", "a", "dict"],
    ):
        cursor = signing.dumps(stale, salt=salt)
        invalid(seller.get("opportunities", {"sort": stale_sort(stale), "cursor": cursor}))
    # The good one still works, and nothing changed.
    assert seller.get("opportunities", {"sort": "amount", "cursor": good}).status_code == 200


def stale_sort(stale: Any) -> str:
    return stale.get("s", "amount") if isinstance(stale, dict) else "amount"


def test_paging_parameters_are_checked(deals: dict[str, Opportunity], api_for: Any) -> None:
    seller = api_for("seller")
    both = seller.get("opportunities", {"cursor": "", "page": 2})
    assert both.status_code == 422
    assert both.json()["errors"] == [{"field": "page", "message": "with_cursor"}]
    too_long = seller.get("accounts", {"cursor": "x" * 2001})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "cursor"
    page = seller.get("opportunities", {"page_size": 3, "page": 2}).json()
    assert set(page) == PAGE_KEYS and (page["count"], page["pages"]) == (7, 3)


def test_anonymous_callers_get_401(anonymous: ApiClient, db: Any) -> None:
    for path in ("opportunities", "accounts", "contacts", "activities", "targets"):
        response = anonymous.get(path, {"cursor": ""})
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_exports_take_no_cursor(deals: dict[str, Opportunity], api_for: Any) -> None:
    assert "cursor" not in export_router.OpportunityExport.model_fields
    assert "cursor" not in export_router.AccountExport.model_fields
    response = api_for("seller").get("exports/opportunities", {"cursor": "x", "header": "keys"})
    assert response.status_code == 200
    assert response.content.decode("utf-8-sig").count("\r\n") == 1 + 7


def test_the_document_describes_both_pagings(db: Any) -> None:
    from django.test import Client

    doc = Client().get("/api/v1/openapi.json").json()
    for path, page in (
        ("/api/v1/opportunities", "OpportunityPage"),
        ("/api/v1/accounts", "AccountPage"),
        ("/api/v1/contacts", "ContactPage"),
        ("/api/v1/activities", "ActivityPage"),
        ("/api/v1/targets", "TargetPage"),
    ):
        get = doc["paths"][path]["get"]
        assert "cursor" in {p["name"] for p in get["parameters"]}
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        refs = [s["$ref"].rsplit("/", 1)[1] for s in schema["anyOf"]]
        assert refs == [page, page.replace("Page", "CursorPage")]
    cursor_page = doc["components"]["schemas"]["OpportunityCursorPage"]
    assert set(cursor_page["required"]) == CURSOR_KEYS
