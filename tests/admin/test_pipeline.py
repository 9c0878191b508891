"""The admin's pipeline forms go through the services (DESIGN.md rule 1): an opportunity changes
through opportunity_update (history, version, audit; a stale version or a refused value changes
nothing; a won deal is view-only), 立项 requests are decided through the service, and the
catalogue's saves and deletes are audited."""

from decimal import Decimal
from typing import Any

from loudou.core.models import AuditEvent
from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    ApprovalStatus,
    LostReason,
    Opportunity,
    OpportunityHistory,
    ProjectApproval,
)
from loudou.pipeline.services.opportunities import UPDATABLE
from tests.admin.conftest import admin_url, messages_of, post_data

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


# --- catalogues -------------------------------------------------------------------------------


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
