"""The demo company: deterministic, and made of records every gate and approval accepts."""

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Count, Sum
from django.test import override_settings

from loudou.customers.credit_code import credit_code_problem
from loudou.customers.models import Account, Contact
from loudou.demo import DEMO_PASSWORD, DatabaseNotEmpty, generate
from loudou.org.models import Target, User
from loudou.pipeline.models import (
    ApprovalStatus,
    GateOverride,
    Opportunity,
    OpportunityHistory,
    ProjectApproval,
    Quote,
    Status,
)
from loudou.playbooks.models import Stage

TODAY = dt.date(2026, 3, 18)
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # as tests/conftest.py
SEED = 1


def demo_digest() -> str:
    """What a run made, without database ids: counts, amounts per stage and status, names."""
    per_stage = (
        Opportunity.objects.values_list("stage__key", "status")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by("stage__key", "status")
    )
    facts = {
        "per_stage": [[s, st, n, str(a)] for s, st, n, a in per_stage],
        "accounts": Account.objects.count(),
        "targets": Account.objects.filter(is_target=True).count(),
        "contacts": Contact.objects.count(),
        "history": OpportunityHistory.objects.count(),
        "approvals": sorted(
            ProjectApproval.objects.values_list("status").annotate(n=Count("id")).order_by()
        ),
        "overrides": GateOverride.objects.count(),
        "quotes": Quote.objects.count(),
        "monthly_targets": Target.objects.count(),
        "deals": sorted(
            (name, str(amount), str(close))
            for name, amount, close in Opportunity.objects.values_list(
                "name", "amount", "close_date"
            )
        ),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class Undo(Exception):
    """Raised to roll a demo run back once its digest is taken."""


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """One tiny demo company for the module's tests; a first run of the same seed is made and
    rolled back before it, so the two digests can be compared."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        try:
            with transaction.atomic():
                generate(seed=SEED, size="tiny", today=TODAY)
                raise Undo(demo_digest())
        except Undo as undo:
            first_digest = str(undo)
        outer = transaction.atomic()
        outer.__enter__()
        try:
            summary = generate(seed=SEED, size="tiny", today=TODAY)
            yield {"summary": summary, "first": first_digest, "second": demo_digest()}
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def test_the_same_seed_on_the_same_day_gives_the_same_company(demo: Any, db: Any) -> None:
    assert demo["first"] == demo["second"]


def test_the_tiny_company_has_every_outcome(demo: Any, db: Any) -> None:
    summary = demo["summary"]
    assert summary.opportunities == 40
    assert summary.by_status["open"] > 0
    assert summary.by_status["won"] > 0
    assert summary.by_status["lost"] > 0
    assert 0 < summary.target_accounts < summary.accounts


def test_every_won_deal_has_ordered_history_and_a_granted_project_approval(
    demo: Any, db: Any
) -> None:
    won = Opportunity.objects.filter(status=Status.WON)
    assert won.exists()
    for opp in won:
        moments = list(
            OpportunityHistory.objects.filter(opportunity=opp)
            .order_by("id")
            .values_list("valid_from", flat=True)
        )
        assert moments == sorted(moments) and len(set(moments)) == len(moments), opp.name
        assert opp.approvals.filter(status=ApprovalStatus.APPROVED).exists(), opp.name


def test_every_deal_that_reached_project_had_its_approval_or_an_override(
    demo: Any, db: Any
) -> None:
    project = Stage.objects.get(playbook__is_default=True, key="project")
    reached = (
        OpportunityHistory.objects.filter(stage__order__gte=project.order)
        .values_list("opportunity", flat=True)
        .distinct()
    )
    assert reached
    for opp in Opportunity.objects.filter(pk__in=reached):
        approved = opp.approvals.filter(status=ApprovalStatus.APPROVED).exists()
        overridden = GateOverride.objects.filter(opportunity=opp).exists()
        assert approved or overridden, opp.name


def test_history_never_goes_back_in_time_and_stays_in_the_past(demo: Any, db: Any) -> None:
    rows = OpportunityHistory.objects.order_by("opportunity", "id").values_list(
        "opportunity", "valid_from"
    )
    last: dict[int, dt.datetime] = {}
    for opp_id, valid_from in rows:
        assert valid_from > last.get(opp_id, valid_from - dt.timedelta(seconds=1))
        last[opp_id] = valid_from
        assert valid_from.date() < TODAY


def test_every_credit_code_is_valid(demo: Any, db: Any) -> None:
    codes = list(Account.objects.exclude(credit_code=None).values_list("credit_code", flat=True))
    assert codes
    assert [c for c in codes if credit_code_problem(c)] == []


def test_open_deals_mostly_close_in_the_future(demo: Any, db: Any) -> None:
    open_deals = Opportunity.objects.filter(status=Status.OPEN)
    ahead = open_deals.filter(close_date__gte=TODAY).count()
    assert ahead >= open_deals.count() * 0.7


def test_the_predictable_logins_exist(demo: Any, db: Any) -> None:
    users = {
        u.username: u for u in User.objects.filter(username__in=["admin", "seller", "manager"])
    }
    assert users["admin"].is_superuser and users["admin"].level == "admin"
    assert (users["seller"].branch.code, users["seller"].job_role.key) == ("bj", "account_manager")
    assert (users["manager"].branch.code, users["manager"].access_level) == ("bj", "manager")
    assert check_password(DEMO_PASSWORD, users["seller"].password)


def test_the_command_refuses_a_database_that_holds_data(demo: Any, db: Any) -> None:
    before = Opportunity.objects.count()
    with pytest.raises(CommandError, match="already holds data"):
        call_command("demo", "--size", "tiny")
    assert Opportunity.objects.count() == before


def test_the_command_skips_quietly_with_if_empty(demo: Any, db: Any, capsys: Any) -> None:
    call_command("demo", "--size", "tiny", "--if-empty")
    assert "no demo made" in capsys.readouterr().out


def test_the_generator_refuses_a_database_that_holds_data(demo: Any, db: Any) -> None:
    with pytest.raises(DatabaseNotEmpty):
        generate(seed=SEED, size="tiny", today=TODAY)


def test_the_analytics_caches_agree_with_history(demo: Any, db: Any) -> None:
    from loudou.analytics.caches import caches_verify

    assert caches_verify() == []
