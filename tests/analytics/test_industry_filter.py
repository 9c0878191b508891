"""The industry filter of the analytics (issue: "filtered by branch, owner, industry and period"):
the same narrowing in the selectors, the CLI, the web pages and the API, and the figures per
industry add up to the figures for all."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.flow import pipeline_flow
from loudou.analytics.forecast import forecast, parse_period
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import funnel_snapshot
from loudou.analytics.velocity import stalled, velocity
from loudou.customers.models import Industry
from loudou.customers.services import account_create
from tests.conftest import credit_code


@pytest.fixture
def deals(walker: Any, org: dict[str, Any]) -> dict[str, Any]:
    """Beijing deals: two on the power account (1,000,000 in discover, 2,000,000 in intent) and
    one on a finance account (500,000 in discover)."""
    finance = account_create(
        actor=org["seller"],
        name="中信银行",
        credit_code=credit_code(31),
        industry="finance",
        size_band="large",
        organisations_count=20,
        it_need="财务共享",
        product_fit="财务",
    )
    a = walker.create(name="电力财务", amount="1000000")
    b = walker.to(walker.create(name="电力人力", amount="2000000"), "intent")
    walker.account = finance
    c = walker.create(name="银行财务", amount="500000")
    return {"a": a, "b": b, "c": c, "power": Industry.objects.get(key="power").pk,
            "finance": Industry.objects.get(key="finance").pk}  # fmt: skip


def stage_counts(snapshot: dict[str, Any]) -> dict[str, tuple[int, Decimal]]:
    return {s["key"]: (s["count"], Decimal(s["amount"])) for s in snapshot["stages"] if s["count"]}


def test_each_analytic_narrows_to_the_industry(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any
) -> None:
    seller, power, finance = org["seller"], deals["power"], deals["finance"]
    assert stage_counts(funnel_snapshot(seller, playbook, industry_id=power)) == {
        "discover": (1, Decimal("1000000.00")),
        "intent": (1, Decimal("2000000.00")),
    }
    assert stage_counts(funnel_snapshot(seller, playbook, industry_id=finance)) == {
        "discover": (1, Decimal("500000.00"))
    }
    reached = {
        s["key"]: s["reached"]
        for s in conversion_by_stage(seller, playbook, industry_id=power, resamples=0)["stages"]
    }
    assert (reached["discover"], reached["intent"]) == (2, 1)
    finance_velocity = velocity(seller, playbook, industry_id=finance)["stages"]
    assert sum(s["open_stays"] for s in finance_velocity) == 1
    assert stalled(seller, playbook, industry_id=finance)["deals"] == []
    today = timezone.localdate()
    flow = pipeline_flow(
        seller,
        playbook,
        date_from=today,
        date_to=today,
        window_from=today,
        window_to=today + dt.timedelta(days=400),
        industry_id=finance,
    )
    assert (flow["created"]["count"], flow["created"]["amount"]) == (1, Decimal("500000.00"))
    period = parse_period(
        f"{deals['a'].close_date.year}Q{(deals['a'].close_date.month - 1) // 3 + 1}"
    )
    scoped = forecast(Scope(seller, playbook, industry_id=finance), period, runs=100)
    assert scoped["target"] is None  # targets are per person, branch and company


def test_the_parts_add_up_to_the_whole(
    deals: dict[str, Any], org: dict[str, Any], playbook: Any
) -> None:
    whole = funnel_snapshot(org["executive"], playbook)
    parts = [
        funnel_snapshot(org["executive"], playbook, industry_id=i)
        for i in Industry.objects.values_list("pk", flat=True)
    ]
    for index, stage in enumerate(whole["stages"]):
        assert stage["count"] == sum(p["stages"][index]["count"] for p in parts)
        assert Decimal(stage["amount"]) == sum(Decimal(p["stages"][index]["amount"]) for p in parts)


def test_the_command_line_takes_an_industry_key(deals: dict[str, Any], playbook: Any) -> None:
    out = StringIO()
    call_command("funnel", "--industry", "finance", "--as", "seller", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert {s["key"]: s["count"] for s in doc["stages"] if s["count"]} == {"discover": 1}
    with pytest.raises(CommandError, match="No industry 'steel'"):
        call_command("funnel", "--industry", "steel", stdout=StringIO())
