"""Abuse by text: every text field a user can fill, holding hostile values (markup, quotes,
an RTL override, Arabic and Hebrew, template syntax, a 5,000-character string), rendered by every
page, dialog and fragment that shows it, as the owner and as a manager: markup never comes out
raw, its escaped form does; JSON embedded in pages cannot close its script element; the API
answers JSON (the raw text as data) and its errors never come back as HTML. The hostile world is
`hostile_text.py`; exports are tried in `test_export_formulas.py`, uploads in
`test_upload_refusals.py`."""

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils.html import escape

from loudou.pipeline.models import Opportunity, OpportunityHistory
from tests.trust import hostile_text
from tests.trust.hostile_text import IMG, SCRIPT, World, _api, _client, assert_escaped, hostile

world = hostile_text.world  # the hostile world (a fixture, reused as is)


def pages(w: World) -> list[tuple[str, list[str]]]:
    """(url, tags the page must show) for the pages both the owner and the manager read."""
    main, lost, wait = w.deals["main"], w.deals["lost"], w.deals["wait"]
    deal_tags = [
        "MAIN-NAME:",
        "ACC-NAME:",
        "MAIN-NEED:",
        "MAIN-SRC:",
        "MAIN-EV-recognises_us:",
        "COMP:",
        "KD:",
        "APR-REQ:",
        "APR-OK:",
        "QL1:",
        "QN:",
        "OBJ:",
        "ANS:",
        "OBJQ:",
        "ACT1:",
        "ACT2:",
        "OVR:",
        "REG:",
        "U-evil_seller:",
        "U-evil_mate:",
        "U-evil_manager:",
    ]
    found = [
        ("/", ["MAIN-NAME:", "ACT2:"]),
        ("/board/", ["MAIN-NAME:", "WAIT-NAME:", "ACC-NAME:"]),
        ("/opportunities/", ["MAIN-NAME:", "WAIT-NAME:", "ACC-NAME:"]),
        ("/opportunities/?status=lost", ["LOST-NAME:"]),
        ("/opportunities/?" + "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", ["MAIN-NAME:"]),
        (f"/opportunities/{main.pk}/", deal_tags),
        (f"/opportunities/{main.pk}/edit/", ["MAIN-NAME:", "MAIN-NEED:", "MAIN-SRC:"]),
        (f"/opportunities/{lost.pk}/", ["LOST-NAME:", "LOSTN:", "LOSTTO:"]),
        (f"/opportunities/{wait.pk}/", ["WAIT-NAME:", "WAPR-REQ:", "WAPR-STRAT:"]),
        ("/accounts/", ["ACC-NAME:"]),
        ("/accounts/?q=%3Cscript%3E", ["ACC-NAME:"]),
        (
            f"/accounts/{w.account.pk}/",
            ["ACC-NAME:", "ACC-NEED:", "ACC-FIT:", "CON-NAME:", "CON-TITLE:", "MAIN-NAME:"],
        ),
        (f"/accounts/{w.account.pk}/edit/", ["ACC-NAME:", "ACC-NEED:", "ACC-FIT:"]),
        (
            f"/accounts/{w.account.pk}/contacts/{w.contact.pk}/edit/",
            ["CON-NAME:", "CON-TITLE:"],
        ),
        ("/approvals/", ["WAIT-NAME:"]),
        ("/funnel/", ["U-evil_seller:"]),
        ("/funnel/deals/?stage=recognition", ["MAIN-NAME:"]),
        ("/funnel/deals/?stage=intent", ["WAIT-NAME:"]),
        ("/analytics/", []),
        ("/analytics/conversion/", []),
        ("/analytics/velocity/", []),
        ("/analytics/stalled/", []),
        ("/analytics/flow/", []),
        ("/analytics/forecast/", []),
        ("/preferences/", []),
    ]
    return found


ROLES = ["owner", "manager"]


def audit_pages(w: World) -> list[tuple[str, list[str]]]:
    """The audit log, global and per object, when the installation has it (managers read it)."""
    try:
        resolve("/audit/")
    except Resolver404:
        return []
    return [("/audit/", ["MAIN-NAME:", "U-evil_seller:"])]


@pytest.mark.parametrize("role", ROLES)
def test_every_page_shows_hostile_text_escaped(world: World, role: str) -> None:
    client = _client(getattr(world, role))
    checked = 0
    for url, tags in pages(world):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        # A page with no user text at all (analytics of an empty window) still shows the
        # user's own hostile name in the top bar: the escaped form is always there.
        assert_escaped(html, f"{role} {url}", tags)
        checked += 1
    assert checked >= 25


def test_owner_only_pages(world: World) -> None:
    client = _client(world.owner)
    html = client.get("/preferences/tokens/").content.decode()
    assert_escaped(html, "tokens", ["TOKEN:"])


def test_manager_only_pages(world: World) -> None:
    client = _client(world.manager)
    for url, tags in [
        ("/?view=team", ["MAIN-NAME:"]),
        ("/approvals/", ["WAIT-NAME:", "WAPR-REQ:", "U-evil_seller:"]),
        ("/import/", ["U-evil_seller:"]),  # the default-owner choice
        *audit_pages(world),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), url, tags)


def _move(client: Client, opp: Any, **data: str) -> Any:
    return client.post(
        f"/opportunities/{opp.pk}/move/",
        {"version": str(opp.version), "from": "page", **data},
        HTTP_HX_REQUEST="true",
    )


@pytest.mark.parametrize("role", ROLES)
def test_move_dialogs_show_hostile_text_escaped(world: World, role: str) -> None:
    client = _client(getattr(world, role))
    main, lost, wait = world.deals["main"], world.deals["lost"], world.deals["wait"]
    before = OpportunityHistory.objects.count()
    dialogs = [
        ("gate", _move(client, wait, to_stage="project"), ["WAIT-NAME:"]),
        ("lose", _move(client, main, to_stage="__lost__"), ["MAIN-NAME:", "COMP:"]),
        ("regress", _move(client, main, to_stage="intent"), ["MAIN-NAME:"]),
        ("reopen", _move(client, lost, to_stage="__reopen__"), ["LOST-NAME:"]),
        # Refused moves echo what was typed: it comes back escaped.
        (
            "lose refused",
            _move(client, main, to_stage="__lost__", reason="no-such", note=SCRIPT + IMG),
            ["MAIN-NAME:"],
        ),
        (
            "gate refused",
            _move(
                client,
                wait,
                to_stage="project",
                **{"evidence.project.guiding": SCRIPT + IMG},
            ),
            ["WAIT-NAME:"],
        ),
    ]
    for name, response, tags in dialogs:
        # 409: the gate dialog after a refused move says what is missing.
        assert response.status_code in (200, 400, 409), (name, response.status_code)
        assert_escaped(response.content.decode(), f"{role} {name}", tags)
    assert OpportunityHistory.objects.count() == before


def test_refused_section_forms_echo_hostile_input_escaped(world: World) -> None:
    client = _client(world.owner)
    main = world.deals["main"]
    posts = [
        ("evidence/", {"criterion": "no.such", "note": SCRIPT + IMG}),
        ("competitors/", {"name": SCRIPT + IMG, "kind": "no-such-kind"}),
        ("objections/", {"text": "   "}),
        ("activities/", {"kind": "visit", "subject": SCRIPT + IMG, "due_on": "not a date"}),
        ("quotes/", {"kind": "formal", "notes": SCRIPT + IMG}),
        ("key-dates/", {"kind": "custom", "label": SCRIPT + IMG, "planned": ""}),
    ]
    before = (OpportunityHistory.objects.count(), Opportunity.objects.get(pk=main.pk).version)
    for path, data in posts:
        response = client.post(f"/opportunities/{main.pk}/{path}", data, HTTP_HX_REQUEST="true")
        assert response.status_code == 400, (path, response.status_code)
        assert_escaped(response.content.decode(), path, ["MAIN-NAME:"])
    assert (OpportunityHistory.objects.count(), Opportunity.objects.get(pk=main.pk).version) == (
        before
    )


def test_plan_prefill_from_the_query_is_escaped(world: World) -> None:
    client = _client(world.owner)
    main = world.deals["main"]
    html = client.get(f"/opportunities/{main.pk}/", {"plan": SCRIPT + IMG}).content.decode()
    assert_escaped(html, "plan", ["MAIN-NAME:"])
    assert escape(SCRIPT + IMG) in html


def test_a_javascript_url_never_becomes_a_link(world: World) -> None:
    """The only link built from user text is the contact's mailto:, which cannot run script."""
    html = _client(world.owner).get(f"/accounts/{world.account.pk}/").content.decode()
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert "mailto:javascript:alert(1)" in hrefs
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]


# --- the API: JSON, the raw text as data, errors never HTML ---------------------------------


def test_the_api_returns_hostile_text_as_json_data(world: World) -> None:
    api = _api(world.owner)
    main = world.deals["main"]
    response = api.get(f"/api/v1/opportunities/{main.pk}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["name"] == hostile("MAIN-NAME:")
    listed = api.get("/api/v1/opportunities", {"q": SCRIPT})
    assert listed["Content-Type"].startswith("application/json")
    account = api.get(f"/api/v1/accounts/{world.account.pk}").json()
    assert account["name"] == hostile("ACC-NAME:")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "opportunities/{pk}/advance", {"to_stage": SCRIPT + IMG}),
        ("post", "opportunities/{pk}/lose", {"reason": SCRIPT + IMG}),
        ("patch", "opportunities/{pk}", {"name": "", "version": 1}),
        ("patch", "opportunities/{pk}", {"currency": SCRIPT}),
        ("get", "opportunities/999999", None),
        ("get", "opportunities?page=" + SCRIPT, None),
        ("post", "opportunities/{pk}/advance", SCRIPT),
    ],
)
def test_api_errors_are_problem_json_never_html(
    world: World, method: str, path: str, body: Any
) -> None:
    api = _api(world.owner)
    main = world.deals["main"]
    before = (OpportunityHistory.objects.count(), Opportunity.objects.get(pk=main.pk).version)
    url = "/api/v1/" + path.format(pk=main.pk)
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs = {
            "data": body if isinstance(body, str) else json.dumps(body),
            "content_type": "application/json",
        }
    response = getattr(api, method)(url, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].split(";")[0] in (
        "application/problem+json",
        "application/json",
    ), response["Content-Type"]
    assert not response["Content-Type"].startswith("text/html")
    json.loads(response.content)
    assert (OpportunityHistory.objects.count(), Opportunity.objects.get(pk=main.pk).version) == (
        before
    )
