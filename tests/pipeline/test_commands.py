"""The `loudou opportunity` and `loudou approval` commands drive the same services."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.pipeline.models import Opportunity, OpportunityHistory


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_refused_advance_names_the_missing_criteria_and_changes_nothing(walker):
    opp = walker.create()
    with pytest.raises(CommandError) as refused:
        call_command(
            "opportunity",
            "--as",
            "seller",
            "advance",
            str(opp.pk),
            "--to",
            "intent",
            "--evidence",
            "interested=They asked for a demo",
            stdout=io.StringIO(),
            stderr=(err := io.StringIO()),
        )
    assert "cannot enter" in str(refused.value)
    lines = err.getvalue().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "✗ intent.accepts_packaged",
        "✗ intent.preliminary_requirements",
        "✗ intent.contacting_vendors",
    ]
    assert Opportunity.objects.get(pk=opp.pk).version == 1
    assert OpportunityHistory.objects.filter(opportunity=opp).count() == 1


def test_advance_with_evidence_then_show_json(walker):
    opp = walker.create()
    run(
        "opportunity",
        "--as",
        "seller",
        "advance",
        str(opp.pk),
        "--to",
        "intent",
        "--evidence",
        "interested=a",
        "--evidence",
        "accepts_packaged=b",
        "--evidence",
        "preliminary_requirements=c",
        "--evidence",
        "contacting_vendors=d",
        "--expected-version",
        "1",
    )
    out, _err = run("opportunity", "--as", "seller", "--json", "show", str(opp.pk))
    data = json.loads(out)
    assert (data["stage"], data["version"], data["probability"]) == ("intent", 2, 25)
    assert data["gate"]["next_stage"]["key"] == "project"
    assert data["gate"]["required"] == 8


def test_writes_need_a_user_and_other_branches_see_nothing(walker):
    opp = walker.create()
    with pytest.raises(CommandError, match="--as USER"):
        run("opportunity", "lose", str(opp.pk), "--reason", "price")
    with pytest.raises(CommandError, match="No such opportunity"):
        run("opportunity", "--as", "sh_seller", "show", str(opp.pk))
    out, _ = run("opportunity", "--as", "sh_seller", "--json", "list")
    assert json.loads(out) == []


def test_approval_inbox(walker, org):
    from loudou.pipeline import services as ps

    opp = walker.to(walker.create(), "intent")
    approval = ps.approval_request(
        opportunity=opp,
        actor=org["seller"],
        requirement="r",
        budget="1",
        timeline="t",
        selection_team="s",
    )
    out, _ = run("approval", "--as", "manager", "--json", "list")
    assert [row["id"] for row in json.loads(out)] == [approval.pk]
    out, _ = run("approval", "--as", "sh_manager", "--json", "list")
    assert json.loads(out) == []
    with pytest.raises(CommandError):
        run("approval", "--as", "seller", "approve", str(approval.pk))
    out, _ = run("approval", "--as", "manager", "approve", str(approval.pk), "--comment", "ok")
    assert out.strip() == f"{approval.pk}: approved"
