"""Access control, proven: every web page and API operation tried as every role, for reading and
for each write, against the one table of `matrix.py`.

- A web route or API operation without an entry in the table fails (and so does an entry whose
  endpoint is gone).
- Each case runs as every role in a savepoint rolled back afterwards, so every role starts from
  the same world; a write that is not `ok` must leave the database exactly as it was (every row
  of every loudou table), an `ok` write must change it.
- No answer to a Beijing user (pages, exports, searches, analytics, error pages) names a Shanghai
  object, and no answer to a Shanghai user names a Beijing one.
- Then the issue's rules one by one: managers approve 立项 and override gates only within their
  branches; sellers change no owner, target or playbook, through the web or the API.
"""

import dataclasses
import datetime as dt
import functools
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from loudou.api.api import api as ninja_api
from loudou.api.services import token_create
from loudou.core.models import AuditEvent
from loudou.customers.services import account_create, contact_create
from loudou.interop import runs
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from loudou.pipeline.models import GateOverride, Opportunity, ProjectApproval
from loudou.playbooks.models import Playbook
from tests.conftest import Walker, credit_code
from tests.trust import matrix as m

SALESFORCE_CSV = (
    "Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),"
    "Amount,Close Date,Created Date,Won,Closed\n"
    "006B1,华能集团财务共享,华能集团,seller,Prospecting,10,1200000,2026/12/31,2026-09-01,0,0\n"
)


# --- the endpoints ------------------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    return ninja_api.get_openapi_schema(path_prefix="/api/v1/")


def api_operations() -> list[str]:
    """Every operation of the OpenAPI document, as "METHOD /api/v1/path"."""
    return sorted(
        f"{method.upper()} {path}" for path, ops in _openapi()["paths"].items() for method in ops
    )


def web_endpoints() -> dict[str, str]:
    """Every route of the URL conf outside the API operations: url name (or, unnamed, the
    route) → route. The Django admin is one entry, `admin/`."""
    operation_paths = {path.removeprefix("/") for path in _openapi()["paths"]}
    found: dict[str, str] = {}

    def walk(resolver: URLResolver, prefix: str, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route.startswith("admin/"):
                    found["admin/"] = "admin/"
                    continue
                inner = ":".join(n for n in (namespace, pattern.namespace) if n)
                walk(pattern, route, inner)
                continue
            assert isinstance(pattern, URLPattern)
            if re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) in operation_paths:
                continue  # an API operation: the OpenAPI part covers it
            key = f"{namespace}:{pattern.name}" if namespace and pattern.name else route
            found.setdefault(key, route)

    walk(get_resolver(), "", "")
    return found


def test_every_endpoint_has_an_entry_in_the_table() -> None:
    web, operations = web_endpoints(), api_operations()
    assert len(web) >= 60 and len(operations) >= 70
    missing = sorted(set(web) - set(m.WEB)) + sorted(set(operations) - set(m.API))
    stale = sorted(set(m.WEB) - set(web)) + sorted(set(m.API) - set(operations))
    assert not missing, (
        "Endpoints without an entry in tests/trust/matrix.py (say what each role may do): "
        + ", ".join(missing)
    )
    assert not stale, "Entries in tests/trust/matrix.py for endpoints that are gone: " + ", ".join(
        stale
    )
    for table in (m.WEB, m.API):
        for key, cases in table.items():
            assert cases, key
            for case in cases:
                assert set(case.expect) == set(m.ROLES), (key, case.label)


# --- the world ----------------------------------------------------------------------------------


@pytest.fixture
def world(
    org: dict[str, Any], playbook: Any, settings: Any, tmp_path: Path, monkeypatch: Any
) -> Any:
    """Beijing deals and account (names with 京密) and Shanghai ones (names with 绝密, amounts
    7654321) with every kind of row around them; returns the ids the table refers to."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())  # an import runs in the request
    seller, teammate, manager = org["seller"], org["teammate"], org["manager"]
    sh_seller, sh_manager = org["sh_seller"], org["sh_manager"]
    today = dt.date.today()

    account = account_create(
        actor=seller,
        name="京密客户集团",
        credit_code=credit_code(21),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need="集团财务管控",
        product_fit="多组织财务",
    )
    contact = contact_create(
        account=account, actor=seller, name="京密王总", title="CIO", selection_part="decision_maker"
    )
    beijing = Walker(org, account)
    deal = beijing.to(beijing.create(name="京密商机-一", amount="1000000"), "intent")
    ps.team_member_add(opportunity=deal, actor=seller, user=teammate, role="presales_consultant")
    member = ps.team_member_add(opportunity=deal, actor=seller, user=manager, role="branch_gm")
    approval = ps.approval_request(
        opportunity=deal,
        actor=seller,
        requirement="京密需求",
        budget="1200000",
        timeline="Q1",
        selection_team="CIO",
    )
    row = ps.competitor_add(opportunity=deal, actor=seller, name="Kingdee")
    ps.key_date_set(opportunity=deal, actor=seller, kind="bid", planned=today)
    objection = ps.objection_raise(opportunity=deal, actor=seller, text="京密异议")
    quote = ps.quote_create(opportunity=deal, actor=seller, kind="preliminary", lines=m.LINES)
    activity = ps.activity_plan(
        opportunity=deal, actor=seller, kind="call", subject="京密拜访", due_on=today
    )
    fresh = beijing.create(name="京密商机-二", amount="500000")
    ps.team_member_add(opportunity=fresh, actor=seller, user=teammate, role="presales_consultant")
    lost = beijing.create(name="京密商机-三", amount="300000")
    ps.team_member_add(opportunity=lost, actor=seller, user=teammate, role="presales_consultant")
    ps.opportunity_lose(opportunity=lost, actor=seller, reason="price")
    target_set(actor=manager, user=seller, month=today.replace(day=1), amount="3000000")

    sh_account = account_create(
        actor=sh_seller,
        name="绝密客户-XYZ",
        credit_code=credit_code(22),
        industry="manufacturing",
        size_band="large",
        organisations_count=30,
        it_need="绝密需求",
        product_fit="财务",
    )
    contact_create(
        account=sh_account,
        actor=sh_seller,
        name="绝密联系人-XYZ",
        title="CFO",
        selection_part="decision_maker",
    )
    shanghai = Walker({**org, "seller": sh_seller, "manager": sh_manager}, sh_account)
    sh_deal = shanghai.to(shanghai.create(name="绝密项目-XYZ", amount="7654321"), "recognition")
    shanghai.to(shanghai.create(name="绝密项目-赢", amount="7654321"), "closed")
    sh_lost = shanghai.create(name="绝密项目-输", amount="7654321")
    ps.opportunity_lose(opportunity=sh_lost, actor=sh_seller, reason="price")
    sh_pending = shanghai.create(name="绝密项目-待批", amount="7654321")
    ps.approval_request(
        opportunity=sh_pending,
        actor=sh_seller,
        requirement="绝密需求",
        budget="7654321",
        timeline="Q1",
        selection_team="绝密团队",
    )
    ps.activity_plan(
        opportunity=sh_deal, actor=sh_seller, kind="visit", subject="绝密拜访", due_on=today
    )
    ps.objection_raise(opportunity=sh_deal, actor=sh_seller, text="绝密异议")
    target_set(actor=sh_manager, user=sh_seller, month=today.replace(day=1), amount="7654321")

    def make_upload() -> dict[str, Any]:
        upload = runs.upload_create(
            actor=manager,
            fmt="salesforce",
            playbook=playbook,
            files=[("opps.csv", SALESFORCE_CSV.encode())],
        )
        return {"new_upload": upload.token}

    def upload_form() -> dict[str, Any]:
        data = io.BytesIO(SALESFORCE_CSV.encode())
        data.name = "opps.csv"
        return {"format": "salesforce", "playbook": playbook.key, "file": data}

    queued = runs.upload_create(
        actor=manager,
        fmt="salesforce",
        playbook=playbook,
        files=[("opps.csv", SALESFORCE_CSV.encode())],
    )
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)
    run = runs.import_run_queue(actor=manager, upload=queued, playbook=playbook)
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())
    web_token, _secret = token_create(actor=seller, name="web token")

    for opp in (deal, fresh, lost):
        opp.refresh_from_db()
    return {
        "org": org,
        "deal": deal.pk,
        "deal_version": deal.version,
        "fresh": fresh.pk,
        "fresh_version": fresh.version,
        "lost": lost.pk,
        "lost_version": lost.version,
        "account": account.pk,
        "contact": contact.pk,
        "approval": approval.pk,
        "member": member.pk,
        "row": row.pk,
        "objection": objection.pk,
        "quote": quote.pk,
        "activity": activity.pk,
        "sh_account": sh_account.pk,
        "sh_deal": sh_deal.pk,
        "shanghai": org["shanghai"].pk,
        "seller": seller.pk,
        "teammate": teammate.pk,
        "tj_seller": org["tj_seller"].pk,
        "sh_seller": sh_seller.pk,
        "playbook_key": playbook.key,
        "upload": make_upload()["new_upload"],
        "run": run.pk,
        "web_token": web_token.pk,
        "make_upload": make_upload,
        "upload_form": upload_form,
    }


# --- trying a case ------------------------------------------------------------------------------

# Written by reading, not a change of the world: when the API was last used with a token.
NOT_STATE = {("api.ApiToken", "last_used_at"), ("org.User", "last_login")}


@functools.cache
def _snapshot_queries() -> list[tuple[str, str]]:
    """(model label, SQL reading every row of its table) for every loudou model."""
    queries = []
    quote = connection.ops.quote_name
    for model in apps.get_models():
        meta = model._meta
        if not model.__module__.startswith("loudou.") or meta.proxy or not meta.managed:
            continue
        columns = ", ".join(
            quote(f.column)
            for f in meta.concrete_fields
            if (meta.label, f.attname) not in NOT_STATE
        )
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        queries.append((meta.label, f"SELECT {columns} FROM {table} ORDER BY {pk}"))
    return queries


def fingerprint() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every loudou table (less the fields in NOT_STATE), read with plain SQL."""
    rows = {}
    with connection.cursor() as cursor:
        for label, sql in _snapshot_queries():
            cursor.execute(sql)
            rows[label] = cursor.fetchall()
    return rows


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


def text_of(response: Any) -> str:
    """The answer as text; an XLSX workbook (a zip) as the text of its XML parts."""
    if getattr(response, "streaming", False):
        data = b"".join(response.streaming_content)
    else:
        data = response.content
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as workbook:
            data = b"\n".join(workbook.read(name) for name in workbook.namelist())
    return data.decode("utf-8", "replace")


LOGIN_PATHS = (resolve_url(settings.LOGIN_URL), "/admin/login/")


def outcome_of(response: Any, *, is_api: bool) -> str:
    status = response.status_code
    if is_api and status == 401:
        return m.LOGIN
    if 300 <= status < 400:
        location = response.get("Location", "")
        return m.LOGIN if location.startswith(LOGIN_PATHS) else m.OK
    if 200 <= status < 300:
        return m.OK
    return {404: m.HIDDEN, 403: m.FORBIDDEN, 400: m.REFUSED, 409: m.REFUSED, 422: m.REFUSED}.get(
        status, f"status {status}"
    )


class Tally:
    """Cases tried and failures, reported together at the end."""

    def __init__(self) -> None:
        self.tried = 0
        self.failures: list[str] = []
        self.endpoints: set[str] = set()

    def check(self) -> None:
        print(f"\n{len(self.endpoints)} endpoints, {self.tried} cases, {len(self.failures)} failed")
        assert not self.failures, (
            f"{len(self.failures)} of {self.tried} cases failed:\n" + "\n".join(self.failures)
        )


def _value(spec: Any, w: dict[str, Any]) -> Any:
    return spec(w) if callable(spec) else spec


def try_case(
    tally: Tally,
    endpoint: str,
    case: m.Case,
    role: str,
    client: Client,
    url_for: Callable[[dict[str, Any]], str],
    w: dict[str, Any],
    *,
    is_api: bool,
    headers: dict[str, str],
) -> None:
    """Send the case as `role` in a savepoint rolled back afterwards; judge the answer."""
    tally.tried += 1
    tally.endpoints.add(endpoint)
    title = f"{case.title(endpoint)} as {role}"
    method = case.method
    writes = method != "get"
    with transaction.atomic():
        ids = {**w, **(case.prepare(w) if case.prepare else {})}
        url = url_for(ids)
        query = _value(case.query, ids)
        if query:
            url += "?" + urlencode(query)
        body = _value(case.body, ids)
        before = fingerprint() if writes else None
        if method == "get":
            response = client.get(url, **headers)
        elif method == "delete":
            response = client.delete(url, **headers)
        elif is_api and not case.multipart:
            response = getattr(client, method)(
                url, data=json.dumps(body or {}), content_type="application/json", **headers
            )
        else:
            response = client.post(url, body or {}, **headers)
        after = fingerprint() if writes else None
        transaction.set_rollback(True)
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME, None)
    text = text_of(response)
    wanted, got = case.expect[role], outcome_of(response, is_api=is_api)
    if got != wanted:
        snippet = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[:300]
        tally.failures.append(
            f"{title}: expected {wanted}, got {got} ({response.status_code}): {snippet}"
        )
    if writes and before is not None and after is not None:
        changed = changed_tables(before, after)
        if got != m.OK and changed:
            tally.failures.append(f"{title}: refused ({got}) but changed {', '.join(changed)}")
        if got == m.OK and case.writes and role != "anonymous" and not changed:
            tally.failures.append(f"{title}: answered ok but changed nothing")
    secrets = (
        m.SH_SECRETS
        if role in m.BEIJING_ROLES
        else m.BJ_SECRETS
        if role in m.SHANGHAI_ROLES
        else ()
    )
    leaked = [s for s in secrets if s in text]
    if leaked:
        at = text.find(leaked[0])
        tally.failures.append(f"{title}: LEAK of {leaked}: …{text[max(at - 80, 0) : at + 80]}…")


def web_clients(org: dict[str, Any]) -> dict[str, Client]:
    clients = {"anonymous": Client(HTTP_ACCEPT_LANGUAGE="en")}
    for role, username in m.USERNAMES.items():
        clients[role] = Client(HTTP_ACCEPT_LANGUAGE="en")
        clients[role].force_login(org[username])
    return clients


def web_url(key: str, case: m.Case) -> Callable[[dict[str, Any]], str]:
    def build(ids: dict[str, Any]) -> str:
        kwargs = {
            name: key[1:] if key.startswith("=") else ids[key] for name, key in case.args.items()
        }
        if ":" in key:
            return reverse(key, kwargs=kwargs)
        if key == "api/^(?P<rest>.*)$":
            return "/api/" + kwargs["rest"]
        return "/" + key

    return build


def test_every_web_page_as_every_role(world: dict[str, Any]) -> None:
    tally = Tally()
    clients = web_clients(world["org"])
    for key, cases in m.WEB.items():
        for case in cases:
            for role in m.ROLES:
                try_case(
                    tally,
                    key,
                    case,
                    role,
                    clients[role],
                    web_url(key, case),
                    world,
                    is_api=False,
                    headers={},
                )
                if case.fresh_clients:
                    clients = web_clients(world["org"])
    tally.check()


def api_url(key: str, case: m.Case) -> Callable[[dict[str, Any]], str]:
    template = key.split(" ", 1)[1]

    def build(ids: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(ids[case.args.get(name, m.API_PATH_ARGS[name])])

        return re.sub(r"\{(\w+)\}", fill, template)

    return build


def test_every_api_operation_as_every_role(world: dict[str, Any]) -> None:
    tally = Tally()
    org = world["org"]
    tokens = {"anonymous": {}}
    for role, username in m.USERNAMES.items():
        _token, secret = token_create(actor=org[username], name="matrix")
        tokens[role] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for key, cases in m.API.items():
        method = key.split(" ", 1)[0].lower()
        for case in cases:
            case = dataclasses.replace(case, method=method)
            for role in m.ROLES:
                try_case(
                    tally,
                    key,
                    case,
                    role,
                    Client(HTTP_ACCEPT_LANGUAGE="en"),
                    api_url(key, case),
                    world,
                    is_api=True,
                    headers=tokens[role],
                )
    tally.check()


# --- the rules, one by one ------------------------------------------------------------


def _api_client(org: dict[str, Any], username: str) -> Callable[..., Any]:
    _token, secret = token_create(actor=org[username], name="rules")
    client = Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_AUTHORIZATION=f"Bearer {secret}")

    def call(method: str, path: str, body: Any = None) -> Any:
        if method == "get":
            return client.get(path)
        return getattr(client, method)(
            path, data=json.dumps(body or {}), content_type="application/json"
        )

    return call


def _deal_state(pk: int) -> tuple[Any, ...]:
    opp = Opportunity.objects.get(pk=pk)
    return (opp.version, opp.stage_id, opp.status, opp.owner_id, opp.branch_id, opp.history.count())


def test_managers_approve_and_override_only_within_their_branches(world: dict[str, Any]) -> None:
    org, deal, approval = world["org"], world["deal"], world["approval"]
    decision = f"/api/v1/opportunities/{deal}/approvals/{approval}/decision"
    advance = f"/api/v1/opportunities/{deal}/advance"
    override = {"to_stage": "project", "override_reason": "CEO sponsor"}
    sh_api, seller_api = _api_client(org, "sh_manager"), _api_client(org, "seller")
    before = (fingerprint(), _deal_state(deal))

    # The Shanghai manager does not even see the Beijing deal: 404, through the API and the web.
    assert sh_api("post", decision, {"approve": True}).status_code == 404
    assert sh_api("post", advance, override).status_code == 404
    sh_web = Client(HTTP_ACCEPT_LANGUAGE="en")
    sh_web.force_login(org["sh_manager"])
    answer = sh_web.post(reverse("web:approval-decide", args=[approval]), {"decision": "approve"})
    assert answer.status_code == 404 and "京密" not in answer.content.decode()
    answer = sh_web.post(
        reverse("web:opportunity-move", args=[deal]),
        {"to_stage": "project", "version": world["deal_version"], "override_reason": "x"},
    )
    assert answer.status_code == 404 and "京密" not in answer.content.decode()
    # The seller who asked may neither approve it nor pass the gate without it: 403.
    assert seller_api("post", decision, {"approve": True}).json()["code"] == "permission_denied"
    assert seller_api("post", advance, override).json()["code"] == "permission_denied"
    after = (fingerprint(), _deal_state(deal))
    assert changed_tables(before[0], after[0]) == []
    assert before[1] == after[1]
    assert ProjectApproval.objects.get(pk=approval).status == "pending"

    # The Beijing manager may: approved, then past the gate, both in the audit log.
    events = AuditEvent.objects.count()
    manager_api = _api_client(org, "manager")
    answer = manager_api("post", decision, {"approve": True, "comment": "Go"})
    assert answer.status_code == 200 and answer.json()["status"] == "approved"
    answer = manager_api(
        "post",
        f"/api/v1/opportunities/{world['fresh']}/advance",
        {**override, "to_stage": "project"},
    )
    assert answer.status_code == 200 and answer.json()["stage"]["key"] == "project"
    overridden = GateOverride.objects.get(opportunity_id=world["fresh"])
    assert (overridden.actor, overridden.reason) == (org["manager"], "CEO sponsor")
    actions = list(
        AuditEvent.objects.order_by("id")[events:].values_list("action", "actor__username")
    )
    assert ("approval.approve", "manager") in actions and ("gate.override", "manager") in actions


def test_sellers_change_no_owner_target_or_playbook(world: dict[str, Any]) -> None:
    org, deal = world["org"], world["deal"]
    seller_web = Client(HTTP_ACCEPT_LANGUAGE="en")
    seller_web.force_login(org["seller"])
    playbook = Playbook.objects.get(key=world["playbook_key"], is_current=True)
    apis = {name: _api_client(org, name) for name in ("seller", "teammate")}
    before = fingerprint()

    # Owners, through the API: the seller and his teammate are refused, nothing changes.
    for username in ("seller", "teammate"):
        answer = apis[username](
            "post", f"/api/v1/opportunities/{deal}/reassign", {"owner_id": world["teammate"]}
        )
        assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")
    # Targets, through the API: not even his own.
    answer = apis["seller"](
        "post",
        "/api/v1/targets",
        {"scope": "user", "user_id": world["seller"], "month": "2027-01", "amount": "1"},
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")
    # Playbooks: the settings (Django admin) send a seller to their own sign-in page.
    change = reverse("admin:playbooks_playbook_change", args=[playbook.pk])
    for answer in (seller_web.get(change), seller_web.post(change, {"name_en": "Mine"})):
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    # Owners, through the web: the new-deal form refuses another owner; the edit form and the
    # new-account form have no owner a seller may set (what is posted is ignored).
    answer = seller_web.post(
        reverse("web:opportunity-create"),
        {
            "account": world["account"],
            "owner": world["teammate"],
            "name": "Not mine",
            "amount": "1",
            "close_date": m.FUTURE,
            "source": "Referral",
            "evidence.discover.need_found": "x",
        },
    )
    assert answer.status_code == 400 and "Choose an owner you manage." in answer.content.decode()
    assert changed_tables(before, fingerprint()) == []

    answer = seller_web.post(
        reverse("web:opportunity-edit", args=[deal]),
        {
            "version": world["deal_version"],
            "name": "京密商机-一",
            "amount": "1000000",
            "close_date": m.FUTURE,
            "currency": "CNY",
            "owner": world["teammate"],
        },
    )
    assert answer.status_code == 302
    assert Opportunity.objects.get(pk=deal).owner_id == world["seller"]
    answer = seller_web.post(
        reverse("web:account-create"),
        {"name": "他人客户", "organisations_count": "1", "owner": world["teammate"]},
    )
    assert answer.status_code == 302
    from loudou.customers.models import Account

    assert Account.objects.get(name="他人客户").owner_id == world["seller"]
    # Playbooks change through the API only by an administrator (accepting stage probabilities,
    # or training the model that suggests them); targets only through POST /targets.
    writes = [op for op in api_operations() if not op.startswith("GET ")]
    assert [op for op in writes if "playbook" in op or "target" in op] == [
        "POST /api/v1/targets",
        "POST /api/v1/win-models/{playbook_key}/accept-probabilities",
        "POST /api/v1/win-models/{playbook_key}/train",
    ]
    before = fingerprint()
    answer = apis["seller"](
        "post",
        f"/api/v1/win-models/{world['playbook_key']}/accept-probabilities",
        {"probabilities": {"discover": 12}},
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")
    assert changed_tables(before, fingerprint()) == []


def test_a_forecast_does_not_reveal_another_branchs_target(world: dict[str, Any]) -> None:
    """Targets are read by their person and the managers above (GET /targets); a forecast
    filtered on a Shanghai seller or branch must not show their target to a Beijing user."""
    org = world["org"]
    month = dt.date.today().replace(day=1)
    target_set(actor=org["sh_manager"], branch=org["shanghai"], month=month, amount="7654321")
    period = m.PERIOD["period"]
    for username in ("seller", "manager"):
        call = _api_client(org, username)
        listed = call("get", "/api/v1/targets").json()["results"]
        assert "7654321.00" not in [t["amount"] for t in listed]
        for scope in ("owner=sh_seller", "branch=sh"):
            report = call("get", f"/api/v1/analytics/forecast?period={period}&{scope}")
            assert report.status_code == 200
            assert report.json()["target"] is None, (username, scope, report.json()["target"])
