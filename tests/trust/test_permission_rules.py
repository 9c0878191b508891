"""Access control, rule by rule: the issue's rules that the table of `matrix.py` cannot say on
its own. Managers approve 立项 and override gates only within their branches (a Shanghai manager
does not even see the Beijing deal, the seller who asked may not approve it); sellers change no
owner, target or playbook, through the web or the API; a forecast filtered on another branch
does not reveal its target. Each runs in the matrix's world, and a refusal must leave every row
of every loudou table as it was.
"""

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.test import Client
from django.urls import reverse

from loudou.api.services import token_create
from loudou.core.models import AuditEvent
from loudou.org.services import target_set
from loudou.pipeline.models import GateOverride, Opportunity, ProjectApproval
from loudou.playbooks.models import Playbook
from tests.trust import matrix as m
from tests.trust import matrix_world
from tests.trust.matrix_requests import api_operations, changed_tables, fingerprint

world = matrix_world.world  # the matrix's world (a fixture, reused as is)


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
