"""The Django admin: every model is reachable, append-only rows stay untouched, and the forms
that change records go through the services (DESIGN.md rule 1)."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.forms import MultiWidget
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loudou.api.services import token_create
from loudou.core.models import AuditEvent
from loudou.customers.models import Account, AccountQualification, Contact
from loudou.customers.services import EDITABLE
from loudou.org.models import Branch, Target
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    ApprovalStatus,
    CriterionEvidence,
    GateOverride,
    LostReason,
    Opportunity,
    OpportunityHistory,
    ProjectApproval,
)
from loudou.pipeline.services.opportunities import UPDATABLE
from tests.conftest import INTENT_EVIDENCE

APPEND_ONLY = [
    AuditEvent,
    AccountQualification,
    OpportunityHistory,
    CriterionEvidence,
    GateOverride,
]


def admin_url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(client: Any, org: dict[str, Any]) -> Any:
    """The test client logged in as the administrator, reading English."""
    client.force_login(org["admin"])
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def walk_a_deal(walker: Any, name: str) -> Opportunity:
    """An opportunity at negotiation with a team, an objection, an activity and a pending 立项
    request on a sibling; every related table gets rows."""
    org = walker.org
    opp = walker.to(walker.create(name=name), "negotiation")
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["teammate"], role="presales_consultant"
    )
    ps.objection_raise(opportunity=opp, actor=org["seller"], text="Too expensive")
    ps.activity_plan(
        opportunity=opp,
        actor=org["seller"],
        kind="demo",
        subject="Demo for the CFO",
        due_on=timezone.localdate() + dt.timedelta(days=7),
    )
    # A manager lets a deal in without the discovery evidence: a gate override.
    walker.create(
        name=f"{name} (override)",
        actor=org["manager"],
        owner=org["seller"],
        evidence={},
        override_reason="Known customer, need confirmed by phone",
    )
    return Opportunity.objects.get(pk=opp.pk)


@pytest.fixture
def deal(walker: Any, org: dict[str, Any]) -> Opportunity:
    opp = walk_a_deal(walker, "财务共享平台")
    target_set(actor=org["admin"], month=dt.date(2025, 1, 1), amount="5000000", user=org["seller"])
    token_create(actor=org["seller"], name="admin pages")
    return opp


@pytest.fixture
def pending_approval(walker: Any, org: dict[str, Any]) -> ProjectApproval:
    opp = walker.create(name="供应链协同")
    opp = ps.opportunity_advance(
        opportunity=opp, to_stage="intent", actor=org["seller"], evidence=INTENT_EVIDENCE
    )
    return ps.approval_request(
        opportunity=opp,
        actor=org["seller"],
        requirement="Supply chain",
        budget="800000",
        timeline="This year",
        selection_team="COO leads",
    )


def post_data(response: Any, **changes: Any) -> dict[str, Any]:
    """What the browser would post back from a change page, with `changes` applied."""
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(field.widget, MultiWidget):
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{i}"] = part
        else:
            data[name] = "on" if value is True else value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    data.update(changes)
    return data


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- every model ------------------------------------------------------------------------------


def loudou_models() -> list[Any]:
    return [m for m in admin.site._registry if m.__module__.startswith("loudou.")]


def test_every_loudou_model_is_registered() -> None:
    from django.apps import apps

    models = {
        m
        for app in (
            "core",
            "org",
            "playbooks",
            "customers",
            "pipeline",
            "analytics",
            "learning",
            "interop",
            "api",
        )
        for m in apps.get_app_config(app).get_models()
    }
    assert models == set(loudou_models())


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_every_changelist_and_change_page_answers(
    staff: Any, deal: Opportunity, pending_approval: Any, language: str
) -> None:
    staff.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from loudou.interop.models import ExternalId

    ExternalId.objects.create(
        source="test",
        kind="opportunity",
        external_id="X-1",
        content_type=ContentType.objects.get_for_model(Opportunity),
        object_id=deal.pk,
        imported_at=timezone.now(),
    )
    from loudou.interop.models import ImportRun, ImportStatus, RememberedMapping

    RememberedMapping.objects.create(
        source="salesforce",
        playbook_key=deal.playbook.key,
        stages={"Prospecting": "discover"},
        updated_at=timezone.now(),
    )

    ImportRun.objects.create(
        actor=deal.owner,
        created_at=timezone.now(),
        format="salesforce",
        playbook=deal.playbook,
        files=["opps.csv"],
        options={},
        upload="",
        status=ImportStatus.DONE,
        report={"new": 1},
    )
    Client().post("/login/", {"username": "seller", "password": "a wrong password"})
    from loudou.learning.models import WinModel

    WinModel.objects.create(
        playbook=deal.playbook,
        trained_at=timezone.now(),
        cutoff=timezone.now(),
        training_deals=0,
        training_won=0,
        training_snapshots=0,
        evaluation_deals=0,
        evaluation_snapshots=0,
    )
    for model in admin.site._registry:
        response = staff.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model
        obj = model._default_manager.order_by("pk").first()
        if model.__module__.startswith("loudou."):
            assert obj is not None, f"the scenario left {model.__name__} empty"
        if obj is not None:
            response = staff.get(admin_url(model, "change", obj.pk))
            assert response.status_code == 200, model


def test_the_site_is_titled_and_speaks_chinese_by_default(client: Any, org: dict[str, Any]) -> None:
    client.force_login(org["admin"])
    response = client.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "loudou 漏斗" in content
    assert '<html lang="zh-hans"' in content


def test_changelists_make_the_same_number_of_queries_for_more_rows(
    staff: Any, walker: Any, deal: Opportunity
) -> None:
    def counts() -> dict[str, int]:
        out = {}
        for model in loudou_models():
            with CaptureQueriesContext(connection) as queries:
                assert staff.get(admin_url(model, "changelist")).status_code == 200
            out[model.__name__] = len(queries)
        return out

    before = counts()
    walk_a_deal(walker, "第二个商机")
    assert counts() == before


def test_a_seller_is_sent_to_the_login_page(client: Any, org: dict[str, Any]) -> None:
    client.force_login(org["seller"])
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    response = client.get(admin_url(Opportunity, "changelist"))
    assert response.status_code == 302


# --- append-only rows -------------------------------------------------------------------------


@pytest.mark.parametrize("model", APPEND_ONLY, ids=lambda m: m.__name__)
def test_append_only_rows_cannot_be_added_changed_or_deleted(
    staff: Any, deal: Opportunity, model: Any
) -> None:
    obj = model.objects.order_by("pk").first()
    stored = model.objects.filter(pk=obj.pk).values().get()

    assert staff.get(admin_url(model, "add")).status_code == 403
    assert staff.post(admin_url(model, "add"), {"reason": "forged"}).status_code == 403
    response = staff.post(admin_url(model, "change", obj.pk), {"reason": "forged", "note": "x"})
    assert response.status_code == 403
    assert staff.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403

    assert model.objects.filter(pk=obj.pk).values().get() == stored
    page = staff.get(admin_url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page


# --- opportunities ----------------------------------------------------------------------------


def test_the_opportunity_form_edits_only_what_opportunity_update_changes(
    staff: Any, deal: Opportunity
) -> None:
    response = staff.get(admin_url(Opportunity, "change", deal.pk))
    form = response.context["adminform"].form
    assert set(form.fields) == UPDATABLE | {"expected_version"}
    assert form["expected_version"].value() == deal.version
    assert staff.get(admin_url(Opportunity, "add")).status_code == 403
    assert staff.post(admin_url(Opportunity, "delete", deal.pk), {"post": "yes"}).status_code == 403


def test_changing_the_amount_writes_history_and_bumps_the_version(
    staff: Any, deal: Opportunity, org: dict[str, Any]
) -> None:
    history = OpportunityHistory.objects.filter(opportunity=deal).count()
    page = staff.get(admin_url(Opportunity, "change", deal.pk))

    response = staff.post(
        admin_url(Opportunity, "change", deal.pk), post_data(page, amount="1234567.89")
    )

    assert response.status_code == 302
    opp = Opportunity.objects.get(pk=deal.pk)
    assert (opp.amount, opp.version) == (Decimal("1234567.89"), deal.version + 1)
    assert (opp.stage_id, opp.status) == (deal.stage_id, deal.status)
    rows = OpportunityHistory.objects.filter(opportunity=deal).order_by("valid_from", "id")
    assert rows.count() == history + 1
    last = rows.last()
    assert (last.action, last.changed, last.amount, last.actor) == (
        "update",
        ["amount"],
        Decimal("1234567.89"),
        org["admin"],
    )
    event = AuditEvent.objects.filter(action="opportunity.update").order_by("-id").first()
    assert (event.actor, event.object_id, event.before["amount"], event.after["amount"]) == (
        org["admin"],
        str(deal.pk),
        "1000000.00",
        "1234567.89",
    )


def test_a_stale_version_is_refused_and_changes_nothing(
    staff: Any, deal: Opportunity, org: dict[str, Any]
) -> None:
    page = staff.get(admin_url(Opportunity, "change", deal.pk))
    # Someone else saves in between.
    ps.opportunity_update(opportunity=deal.pk, actor=org["seller"], source="Trade fair")
    stored = Opportunity.objects.filter(pk=deal.pk).values().get()
    history = OpportunityHistory.objects.filter(opportunity=deal).count()

    response = staff.post(
        admin_url(Opportunity, "change", deal.pk),
        post_data(page, amount="99.00", name="Overwritten"),
        follow=True,
    )

    assert response.status_code == 200
    (message,) = messages_of(response)
    assert "Someone changed" in message
    assert "nothing was changed" in message
    assert Opportunity.objects.filter(pk=deal.pk).values().get() == stored
    assert OpportunityHistory.objects.filter(opportunity=deal).count() == history
    assert not AuditEvent.objects.filter(action="opportunity.update", actor=org["admin"]).exists()


def test_a_refused_value_is_reported_and_changes_nothing(staff: Any, deal: Opportunity) -> None:
    page = staff.get(admin_url(Opportunity, "change", deal.pk))
    stored = Opportunity.objects.filter(pk=deal.pk).values().get()

    response = staff.post(
        admin_url(Opportunity, "change", deal.pk), post_data(page, currency="R1B"), follow=True
    )

    assert any("three-letter currency code" in m for m in messages_of(response))
    assert Opportunity.objects.filter(pk=deal.pk).values().get() == stored


def test_a_won_deal_is_view_only(staff: Any, walker: Any, deal: Opportunity) -> None:
    won = walker.to(deal, "closed")
    page = staff.get(admin_url(Opportunity, "change", won.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = staff.post(admin_url(Opportunity, "change", won.pk), {"amount": "1"})
    assert response.status_code == 403


# --- 立项 requests ----------------------------------------------------------------------------


def test_the_approve_action_decides_through_the_service(
    staff: Any, pending_approval: ProjectApproval, org: dict[str, Any]
) -> None:
    response = staff.post(
        admin_url(ProjectApproval, "changelist"),
        {"action": "approve_selected", "_selected_action": [pending_approval.pk]},
        follow=True,
    )
    assert messages_of(response) == ["1 request approved."]
    pending_approval.refresh_from_db()
    assert (pending_approval.status, pending_approval.decided_by, pending_approval.comment) == (
        ApprovalStatus.APPROVED,
        org["admin"],
        "Approved in the admin",
    )
    assert AuditEvent.objects.filter(action="approval.approve", actor=org["admin"]).count() == 1


def test_deciding_an_already_decided_request_is_reported(
    staff: Any, pending_approval: ProjectApproval
) -> None:
    ps.approval_withdraw(approval=pending_approval, actor=pending_approval.requested_by)
    response = staff.post(
        admin_url(ProjectApproval, "changelist"),
        {"action": "reject_selected", "_selected_action": [pending_approval.pk]},
        follow=True,
    )
    (message,) = messages_of(response)
    assert "already decided" in message
    pending_approval.refresh_from_db()
    assert pending_approval.status == ApprovalStatus.WITHDRAWN


# --- accounts and contacts --------------------------------------------------------------------


def test_account_form_fields_are_the_services_editable_fields() -> None:
    from loudou.customers.admin import EDITABLE_ORDER

    assert set(EDITABLE_ORDER) == EDITABLE


def test_the_account_page_shows_the_icp_fit(staff: Any, account: Account) -> None:
    page = staff.get(admin_url(Account, "change", account.pk)).content.decode()
    assert "ICP fit" in page
    assert "✓" in page
    assert "In a target industry" in page


def test_an_invalid_credit_code_is_shown_and_changes_nothing(staff: Any, account: Account) -> None:
    page = staff.get(admin_url(Account, "change", account.pk))
    stored = Account.objects.filter(pk=account.pk).values().get()
    events = AuditEvent.objects.count()

    response = staff.post(
        admin_url(Account, "change", account.pk),
        post_data(page, credit_code="91110000000000000X", name="Renamed"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "check character is wrong" in errors["credit_code"][0]
    assert Account.objects.filter(pk=account.pk).values().get() == stored
    assert AuditEvent.objects.count() == events


def test_editing_an_account_goes_through_account_update(
    staff: Any, account: Account, org: dict[str, Any]
) -> None:
    page = staff.get(admin_url(Account, "change", account.pk))
    qualifications = account.qualifications.count()

    response = staff.post(
        admin_url(Account, "change", account.pk), post_data(page, employees="5000")
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.employees, account.owner) == (5000, org["seller"])
    event = AuditEvent.objects.filter(action="account.update").get()
    assert (event.actor, event.before["employees"], event.after["employees"]) == (
        org["admin"],
        None,
        5000,
    )
    assert account.qualifications.count() == qualifications + 1


def test_adding_an_account_goes_through_account_create(
    staff: Any, org: dict[str, Any], playbook: Any
) -> None:
    response = staff.post(
        admin_url(Account, "add"),
        {
            "name": "  华东制造集团 ",
            "credit_code": "",
            "size_band": "large",
            "organisations_count": "3",
            "it_need": "",
            "product_fit": "",
            "revenue_currency": "",
            "owner": "",
        },
    )
    assert response.status_code == 302
    created = Account.objects.get(name="华东制造集团")
    assert (created.owner, created.branch, created.credit_code) == (
        org["admin"],
        org["company"],
        None,
    )
    assert AuditEvent.objects.filter(action="account.create", object_id=str(created.pk)).exists()
    assert created.qualifications.count() == 1


def test_editing_a_contact_goes_through_contact_update(
    staff: Any, account: Account, org: dict[str, Any]
) -> None:
    contact = Contact.objects.get(account=account)
    page = staff.get(admin_url(Contact, "change", contact.pk))

    response = staff.post(admin_url(Contact, "change", contact.pk), post_data(page, title="CFO"))

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.title == "CFO"
    event = AuditEvent.objects.get(action="contact.update")
    assert (event.actor, event.before["title"], event.after["title"]) == (
        org["admin"],
        "CIO",
        "CFO",
    )


# --- catalogues and the organisation ----------------------------------------------------------


def test_catalogue_saves_and_deletes_are_audited(staff: Any, org: dict[str, Any]) -> None:
    response = staff.post(
        admin_url(LostReason, "add"),
        {
            "key": "timing",
            "name_zh": "时机不对",
            "name_en": "Bad timing",
            "active": "on",
            "order": "9",
        },
    )
    assert response.status_code == 302
    reason = LostReason.objects.get(key="timing")
    saved = AuditEvent.objects.get(
        action="catalog.save", object_id=str(reason.pk), actor=org["admin"]
    )
    assert (saved.before, saved.after["name_en"]) == (None, "Bad timing")

    response = staff.post(admin_url(LostReason, "delete", reason.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not LostReason.objects.filter(key="timing").exists()
    deleted = AuditEvent.objects.get(action="catalog.delete", object_id=str(reason.pk))
    assert (deleted.actor, deleted.before["key"]) == (org["admin"], "timing")


def test_a_branch_is_created_through_branch_create(staff: Any, org: dict[str, Any]) -> None:
    response = staff.post(
        admin_url(Branch, "add"),
        {"code": "gz", "name": "广州分公司", "name_en": "Guangzhou", "parent": org["company"].pk},
    )
    assert response.status_code == 302
    branch = Branch.objects.get(code="gz")
    assert (branch.parent, branch.name) == (org["company"], "广州分公司")
    assert AuditEvent.objects.filter(action="branch.create", object_id=str(branch.pk)).exists()


def test_a_branch_cannot_move_below_its_own_branches(staff: Any, org: dict[str, Any]) -> None:
    north = org["north"]
    page = staff.get(admin_url(Branch, "change", north.pk))
    response = staff.post(
        admin_url(Branch, "change", north.pk), post_data(page, parent=org["beijing"].pk)
    )
    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    north.refresh_from_db()
    assert north.parent == org["company"]


def test_a_target_is_set_through_target_set(staff: Any, org: dict[str, Any]) -> None:
    response = staff.post(
        admin_url(Target, "add"),
        {
            "branch": org["beijing"].pk,
            "month": "2025-03-15",
            "amount": "3000000",
            "currency": "cny",
        },
    )
    assert response.status_code == 302
    target = Target.objects.get()
    assert (target.scope, target.month, target.amount, target.currency) == (
        "branch",
        dt.date(2025, 3, 1),
        Decimal("3000000.00"),
        "CNY",
    )
    assert AuditEvent.objects.filter(action="target.set", actor=org["admin"]).count() == 1


def test_a_role_change_goes_through_user_set_role(staff: Any, org: dict[str, Any]) -> None:
    seller = org["seller"]
    page = staff.get(admin_url(type(seller), "change", seller.pk))

    response = staff.post(
        admin_url(type(seller), "change", seller.pk),
        post_data(page, access_level="manager", display_name="小王"),
    )

    assert response.status_code == 302
    seller.refresh_from_db()
    assert (seller.access_level, seller.display_name) == ("manager", "小王")
    change = AuditEvent.objects.get(action="user.role_change", object_id=str(seller.pk))
    assert (change.before["access_level"], change.after["access_level"]) == ("seller", "manager")
    update = AuditEvent.objects.get(action="user.update", object_id=str(seller.pk))
    assert update.after == {"display_name": "小王"}


def test_a_user_is_created_through_user_create(staff: Any, org: dict[str, Any]) -> None:
    user_model = type(org["seller"])
    response = staff.post(
        admin_url(user_model, "add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a-Long-pass-2025",
            "password2": "a-Long-pass-2025",
        },
    )
    assert response.status_code == 302
    user = user_model.objects.get(username="newcomer")
    assert user.check_password("a-Long-pass-2025")
    assert (user.access_level, user.is_staff) == ("seller", False)
    event = AuditEvent.objects.get(action="user.create", object_id=str(user.pk))
    assert event.actor == org["admin"]
