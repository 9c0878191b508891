"""Fixtures of the Django admin tests: the administrator's client, a deal with rows in every
related table, a pending 立项 request; the admin's URLs, and what a browser posts back from a
change page."""

import datetime as dt
from typing import Any

import pytest
from django.forms import MultiWidget
from django.urls import reverse
from django.utils import timezone

from loudou.api.services import token_create
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity, ProjectApproval
from tests.conftest import INTENT_EVIDENCE


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
