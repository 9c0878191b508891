"""Stage operations: gates, overrides, versions, regress, lose, reopen, win."""

import datetime as dt

import pytest
from django.utils import timezone

from loudou.core.errors import Conflict, GateRefused, NotFound, PermissionDenied, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.pipeline import services as ps
from loudou.pipeline.models import (
    CriterionEvidence,
    GateOverride,
    Opportunity,
    OpportunityHistory,
    Status,
)


def db_state(opp):
    """Everything a refused stage operation must leave as it was."""
    row = Opportunity.objects.get(pk=opp.pk)
    return {
        "stage": row.stage.key,
        "status": row.status,
        "version": row.version,
        "history": OpportunityHistory.objects.filter(opportunity=opp).count(),
        "evidence": CriterionEvidence.objects.filter(opportunity=opp).count(),
        "overrides": GateOverride.objects.filter(opportunity=opp).count(),
        "audit": AuditEvent.objects.count(),
    }


def test_gate_refuses_and_lists_the_missing_criteria(walker, org):
    opp = walker.create()
    before = db_state(opp)

    with pytest.raises(GateRefused) as refused:
        ps.opportunity_advance(
            opportunity=opp,
            to_stage="intent",
            actor=org["seller"],
            evidence={"interested": "Yes, they asked for a demo"},
        )

    assert [m["key"] for m in refused.value.missing] == [
        "accepts_packaged",
        "preliminary_requirements",
        "contacting_vendors",
    ]
    assert "cannot enter “Confirm customer intent”" in refused.value.message
    assert "3 criteria do not hold" in refused.value.message
    # The evidence given with the refused call was rolled back with it.
    assert db_state(opp) == before


def test_gate_message_is_in_the_users_language(walker, org):
    from django.utils import translation

    opp = walker.create()
    with translation.override("zh-hans"), pytest.raises(GateRefused) as refused:
        ps.opportunity_advance(opportunity=opp, to_stage="intent", actor=org["seller"])
    assert "客户对我方产品和服务有兴趣" in refused.value.message
    assert refused.value.missing[0]["text"] == "客户对我方产品和服务有兴趣"


def test_skipping_a_stage_needs_the_skipped_stages_criteria_too(walker, org):
    opp = walker.create()
    with pytest.raises(GateRefused) as refused:
        ps.opportunity_advance(
            opportunity=opp,
            to_stage="project",
            actor=org["seller"],
            evidence={
                "interested": "a",
                "accepts_packaged": "b",
                "preliminary_requirements": "c",
                "contacting_vendors": "d",
            },
        )
    stages = {m["stage"] for m in refused.value.missing}
    assert stages == {"project"}
    assert "approved" in [m["key"] for m in refused.value.missing]


def test_project_stage_needs_an_approved_project_set_up(walker, org):
    opp = walker.to(walker.create(), "intent")
    ps.competitor_add(opportunity=opp, actor=org["seller"], name="SAP")
    ps.key_date_set(opportunity=opp, actor=org["seller"], kind="bid", planned=dt.date(2027, 1, 5))
    approval = ps.approval_request(
        opportunity=opp,
        actor=org["seller"],
        requirement="Group finance",
        budget="900000",
        timeline="Q1",
        selection_team="CIO",
    )
    evidence = {"recognises_us": "a", "has_requirement": "b", "guiding": "c"}
    with pytest.raises(GateRefused) as refused:
        ps.opportunity_advance(
            opportunity=opp, to_stage="project", actor=org["seller"], evidence=evidence
        )
    assert [m["key"] for m in refused.value.missing] == ["approved"]
    assert "waiting for a manager" in refused.value.missing[0]["reason"]

    ps.approval_decide(approval=approval, actor=org["manager"], approve=True, comment="ok")
    opp = ps.opportunity_advance(
        opportunity=opp, to_stage="project", actor=org["seller"], evidence=evidence
    )
    assert opp.stage.key == "project"


def test_an_override_needs_a_manager_of_the_branch_and_a_reason(walker, org):
    opp = walker.create()
    before = db_state(opp)
    with pytest.raises(PermissionDenied):
        ps.opportunity_advance(
            opportunity=opp, to_stage="intent", actor=org["seller"], override_reason="Trust me"
        )
    assert db_state(opp) == before
    # A manager of another branch cannot even see the deal.
    with pytest.raises(NotFound):
        ps.opportunity_advance(
            opportunity=opp, to_stage="intent", actor=org["sh_manager"], override_reason="x"
        )
    assert db_state(opp) == before

    opp = ps.opportunity_advance(
        opportunity=opp,
        to_stage="intent",
        actor=org["north_manager"],
        override_reason="Strategic account; CIO confirmed verbally",
    )
    assert opp.stage.key == "intent"
    override = GateOverride.objects.get(opportunity=opp)
    assert override.actor == org["north_manager"]
    assert override.reason == "Strategic account; CIO confirmed verbally"
    assert [m["key"] for m in override.missing] == [
        "interested",
        "accepts_packaged",
        "preliminary_requirements",
        "contacting_vendors",
    ]
    assert AuditEvent.objects.filter(action="gate.override", object_id=str(opp.pk)).count() == 1


def test_a_stale_version_is_a_conflict_and_changes_nothing(walker, org):
    opp = walker.create()
    ps.opportunity_update(
        opportunity=opp, actor=org["seller"], amount="2000000", expected_version=1
    )
    before = db_state(opp)
    with pytest.raises(Conflict) as conflict:
        ps.opportunity_update(
            opportunity=opp, actor=org["seller"], amount="3000000", expected_version=1
        )
    assert conflict.value.current_version == 2
    assert db_state(opp) == before
    assert Opportunity.objects.get(pk=opp.pk).amount == 2000000


def test_other_branches_cannot_see_or_touch_an_opportunity(walker, org):
    opp = walker.create()
    for outsider in ("sh_seller", "tj_seller", "sh_manager"):
        with pytest.raises(NotFound):
            ps.opportunity_update(opportunity=opp, actor=org[outsider], name="hijack")
    assert Opportunity.objects.get(pk=opp.pk).name == "财务共享平台"


def test_visibility_rule(walker, org):
    opp = walker.create()
    ps.team_member_add(
        opportunity=opp, actor=org["seller"], user=org["sh_seller"], role="industry_expert"
    )
    visible = {
        name: Opportunity.objects.visible_to(user).filter(pk=opp.pk).exists()
        for name, user in org.items()
        if hasattr(user, "username")
    }
    assert visible == {
        "seller": True,
        "teammate": False,  # same branch, not on the team
        "tj_seller": False,
        "sh_seller": True,  # on the project team
        "manager": True,
        "north_manager": True,
        "sh_manager": False,
        "executive": True,
        "admin": True,
    }


def test_regress_needs_a_reason_and_an_earlier_stage(walker, org):
    opp = walker.to(walker.create(), "intent")
    with pytest.raises(ValidationFailed):
        ps.opportunity_regress(opportunity=opp, to_stage="discover", actor=org["seller"], reason="")
    with pytest.raises(ValidationFailed):
        ps.opportunity_regress(
            opportunity=opp, to_stage="project", actor=org["seller"], reason="later"
        )
    opp = ps.opportunity_regress(
        opportunity=opp, to_stage="discover", actor=org["seller"], reason="Customer froze budget"
    )
    last = OpportunityHistory.objects.filter(opportunity=opp).latest("valid_from", "id")
    assert (last.action, last.stage.key, last.reason) == (
        "regress",
        "discover",
        "Customer froze budget",
    )


def test_lose_then_reopen_at_the_same_stage(walker, org):
    opp = walker.to(walker.create(), "intent")
    opp = ps.opportunity_lose(
        opportunity=opp,
        actor=org["seller"],
        reason="price",
        lost_to="Competitor A",
        note="20% cheaper",
    )
    assert (opp.status, opp.stage.key, opp.lost_reason.key, str(opp.lost_to)) == (
        "lost",
        "intent",
        "price",
        "Competitor A",
    )
    assert opp.probability == 0
    with pytest.raises(ValidationFailed):
        ps.opportunity_advance(opportunity=opp, to_stage="project", actor=org["seller"])
    with pytest.raises(ValidationFailed):
        ps.opportunity_lose(opportunity=opp, actor=org["seller"], reason="nosuch")

    opp = ps.opportunity_reopen(opportunity=opp, actor=org["seller"], reason="They came back")
    assert (opp.status, opp.stage.key, opp.lost_reason) == ("open", "intent", None)


def test_unknown_lost_reason_is_refused_and_changes_nothing(walker, org):
    opp = walker.create()
    before = db_state(opp)
    with pytest.raises(ValidationFailed):
        ps.opportunity_lose(opportunity=opp, actor=org["seller"], reason="nosuch")
    assert db_state(opp) == before


def test_win_needs_the_won_stage_criteria(walker, org):
    opp = walker.to(walker.create(), "negotiation")
    with pytest.raises(GateRefused) as refused:
        ps.opportunity_win(opportunity=opp, actor=org["seller"])
    assert [m["key"] for m in refused.value.missing] == ["formal_quote", "contract_signed"]


def test_reopening_a_won_deal_is_for_managers(walker, org):
    opp = walker.to(walker.create(), "closed")
    with pytest.raises(PermissionDenied):
        ps.opportunity_reopen(opportunity=opp, actor=org["seller"], reason="Contract cancelled")
    opp = ps.opportunity_reopen(opportunity=opp, actor=org["manager"], reason="Contract cancelled")
    assert (opp.status, opp.stage.key) == (Status.OPEN, "negotiation")


def test_executives_read_but_do_not_edit(walker, org):
    opp = walker.create()
    with pytest.raises(PermissionDenied):
        ps.opportunity_update(opportunity=opp, actor=org["executive"], name="x")


def test_negative_amount_is_refused(walker, org):
    with pytest.raises(ValidationFailed) as refused:
        walker.create(amount="-5")
    assert "cannot be negative" in refused.value.message
    assert Opportunity.objects.count() == 0


def test_non_target_account_needs_an_override_to_open_an_opportunity(org, playbook):
    from loudou.customers.services import account_create

    small = account_create(actor=org["seller"], name="小作坊", size_band="small")
    assert small.is_target is False
    with pytest.raises(GateRefused) as refused:
        ps.opportunity_create(
            actor=org["seller"],
            account=small,
            name="x",
            amount="1000",
            close_date=dt.date(2027, 1, 1),
            source="web",
            evidence={"need_found": "asked"},
        )
    assert [m["key"] for m in refused.value.missing] == ["target_account"]
    assert Opportunity.objects.count() == 0
    opp = ps.opportunity_create(
        actor=org["manager"],
        owner=org["seller"],
        account=small,
        name="x",
        amount="1000",
        close_date=dt.date(2027, 1, 1),
        source="web",
        evidence={"need_found": "asked"},
        override_reason="Pilot for a new segment",
    )
    assert GateOverride.objects.get(opportunity=opp).stage.key == "discover"


def test_history_has_one_row_per_change_with_the_changed_fields(walker, org):
    opp = walker.create()
    ps.opportunity_update(
        opportunity=opp, actor=org["seller"], amount="1500000", close_date=dt.date(2027, 3, 1)
    )
    ps.opportunity_update(opportunity=opp, actor=org["seller"], name="renamed only")
    rows = list(OpportunityHistory.objects.filter(opportunity=opp).order_by("valid_from", "id"))
    assert [r.action for r in rows] == ["create", "update"]
    assert rows[1].changed == ["amount", "close_date"]
    assert rows[1].amount == 1500000
    # The rename changed no tracked field: no history row, but an audit event and a new version.
    assert Opportunity.objects.get(pk=opp.pk).version == 3
    assert (
        AuditEvent.objects.filter(action="opportunity.update", object_id=str(opp.pk)).count() == 2
    )


def test_approval_rules(walker, org):
    opp = walker.to(walker.create(), "intent")
    with pytest.raises(ValidationFailed):
        ps.approval_request(
            opportunity=opp,
            actor=org["seller"],
            requirement="",
            budget="1",
            timeline="",
            selection_team="",
        )
    approval = ps.approval_request(
        opportunity=opp,
        actor=org["seller"],
        requirement="r",
        budget="500000",
        timeline="t",
        selection_team="s",
    )
    assert Opportunity.objects.get(pk=opp.pk).budget == 500000
    with pytest.raises(ValidationFailed):
        ps.approval_request(
            opportunity=opp,
            actor=org["seller"],
            requirement="r",
            budget="1",
            timeline="t",
            selection_team="s",
        )
    with pytest.raises(PermissionDenied):
        ps.approval_decide(approval=approval, actor=org["seller"], approve=True)
    with pytest.raises(NotFound):
        ps.approval_decide(approval=approval, actor=org["sh_manager"], approve=True)
    with pytest.raises(ValidationFailed):
        ps.approval_decide(approval=approval, actor=org["manager"], approve=False, comment="")
    decided = ps.approval_decide(
        approval=approval, actor=org["manager"], approve=False, comment="Budget not confirmed"
    )
    assert decided.status == "rejected"
    with pytest.raises(ValidationFailed):
        ps.approval_decide(approval=approval, actor=org["manager"], approve=True)
    again = ps.approval_request(
        opportunity=opp,
        actor=org["seller"],
        requirement="r",
        budget="500000",
        timeline="t",
        selection_team="s",
    )
    assert again.status == "pending"


def test_can_see_agrees_with_visible_to_for_every_user(walker, org):
    """The instance check used under the row lock is the same rule as the queryset."""
    mine = walker.create(name="mine")
    teamed = walker.create(name="teamed")
    ps.team_member_add(
        opportunity=teamed, actor=org["seller"], user=org["sh_seller"], role="industry_expert"
    )
    users = [u for u in org.values() if hasattr(u, "username")]
    for opp in (mine, teamed):
        for user in users:
            expected = Opportunity.objects.visible_to(user).filter(pk=opp.pk).exists()
            assert Opportunity.objects.can_see(user, opp) is expected, (opp.name, user.username)


def test_an_override_reason_when_nothing_is_missing_records_no_override(walker, org):
    opp = walker.create()
    opp = ps.opportunity_advance(
        opportunity=opp,
        to_stage="intent",
        actor=org["manager"],
        evidence={
            "interested": "a",
            "accepts_packaged": "b",
            "preliminary_requirements": "c",
            "contacting_vendors": "d",
        },
        override_reason="Just in case",
    )
    assert GateOverride.objects.filter(opportunity=opp).count() == 0
    last = OpportunityHistory.objects.filter(opportunity=opp).latest("valid_from", "id")
    assert (last.action, last.reason) == ("advance", "")


def test_an_overdue_close_date_does_not_count_as_signing_soon(walker, org):
    from loudou.pipeline.gates import criteria_states

    opp = walker.to(walker.create(), "project")
    ps.opportunity_update(
        opportunity=opp, actor=org["seller"], close_date=timezone.localdate() - dt.timedelta(days=3)
    )
    opp = Opportunity.objects.get(pk=opp.pk)
    recognition = next(s for s in opp.playbook.ordered_stages() if s.key == "recognition")
    [soon] = [s for s in criteria_states(opp, [recognition]) if s.criterion.key == "likely_soon"]
    assert soon.holds is False
    assert "has passed" in soon.reason


def test_activities_are_completed_by_their_owner_or_the_deals_editors(walker, org):
    opp = walker.create()
    due = timezone.localdate()
    mine = ps.activity_plan(
        opportunity=opp, actor=org["seller"], kind="call", subject="CIO", due_on=due
    )
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        ps.activity_complete(activity=mine, actor=org["executive"], outcome="done by someone else")
    mine.refresh_from_db()
    assert (mine.done_at, mine.outcome, AuditEvent.objects.count()) == (None, "", before)
    with pytest.raises(NotFound):
        ps.activity_complete(activity=mine, actor=org["sh_seller"])
    assert ps.activity_complete(activity=mine, actor=org["manager"], outcome="Met").outcome == "Met"
    theirs = ps.activity_plan(
        opportunity=opp,
        actor=org["seller"],
        kind="call",
        subject="CFO",
        due_on=due,
        owner=org["executive"],
    )
    assert ps.activity_complete(activity=theirs, actor=org["executive"]).done_at is not None


def test_an_empty_currency_keeps_the_deals_currency(walker, org):
    opp = walker.create(currency="USD")
    for empty in (None, ""):
        opp = ps.opportunity_update(
            opportunity=opp, actor=org["seller"], currency=empty, amount="5"
        )
        assert opp.currency == "USD"
    assert (
        ps.opportunity_update(opportunity=opp, actor=org["seller"], currency="eur").currency
        == "EUR"
    )
