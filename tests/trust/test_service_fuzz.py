"""hypothesis drives random sequences of pipeline service calls by random users of the `org`
fixture (sellers of three branches, managers of a branch, of a region and of another branch, an
executive, an administrator) on random opportunities, and checks after every step:

(a) a call a service refuses (a LoudouError) changed nothing: no opportunity's version, stage,
    status, owner or amount, and no row of history, audit, evidence, approvals, quotes, team,
    competitors, objections, activities, key dates or overrides;
(b) a call on an opportunity the user may not see is refused with NotFound, never done and never
    a PermissionDenied that would admit the deal exists;
(c) a stage only moves forward by advance or win, and then only when the gate's criteria held
    (checked again with `gate_check` on the state before the move) or a manager of the deal's
    branch overrode it;
(d) history is append-only: earlier rows are unchanged and new ids only grow;
and at the end of each example (e) `caches_verify()` finds no difference and each user sees
exactly the opportunities the visibility rule gives (owner, team, managed branches, executive
and administrator see all).

Any exception from a service that is not a LoudouError is a defect: the test fails and
hypothesis prints the shortest sequence of calls that raises it.

Each example runs inside a transaction that is rolled back at its end, so examples start from
the same deals: one of the Beijing seller at discover (with the Beijing teammate on its team), one
at project, one at negotiation (with the Shanghai seller on its team), the Tianjin seller's at
intent and the Shanghai seller's at discover.
"""

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.core.errors import LoudouError, NotFound, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.customers.models import Account
from loudou.customers.services import account_create, contact_create, contact_update
from loudou.org.models import User
from loudou.org.services import user_create
from loudou.pipeline import services as ps
from loudou.pipeline.gates import gate_check
from loudou.pipeline.models import (
    Activity,
    CriterionEvidence,
    GateOverride,
    KeyDate,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    OpportunityHistory,
    ProjectApproval,
    Quote,
    TeamMember,
)
from loudou.playbooks.models import Stage, StageKind
from tests.conftest import (
    INTENT_EVIDENCE,
    NEGOTIATION_EVIDENCE,
    PRELIMINARY_LINES,
    PROJECT_EVIDENCE,
    RECOGNITION_EVIDENCE,
    credit_code,
)

USERS = [
    "seller",
    "teammate",
    "tj_seller",
    "sh_seller",
    "manager",
    "north_manager",
    "sh_manager",
    "executive",
    "admin",
]
STAGES = ["discover", "intent", "project", "recognition", "negotiation", "closed", "nowhere"]
EVIDENCE = {
    "discover": {"need_found": "CFO described the need"},
    "intent": INTENT_EVIDENCE,
    "project": PROJECT_EVIDENCE,
    "recognition": RECOGNITION_EVIDENCE,
    "negotiation": NEGOTIATION_EVIDENCE,
    "closed": {"contract_signed": "Signed"},
}
CRITERIA = [f"{stage}.{key}" for stage, keys in EVIDENCE.items() for key in keys] + [
    "project.has_budget",  # a field criterion: takes no evidence
    "no_such_criterion",
]
TEXTS = st.sampled_from(
    [
        "Customer confirmed",
        "",
        "   ",
        "<script>alert(1)</script>\"'",
        "\u202e反向 שלום مرحبا",
        "长" * 120,  # as long as the shortest text columns allow (see the test below)
    ]
)
TOO_LONG_NAME = "名" * 201
AMOUNTS = st.sampled_from(["1000000", "0", "-5", "abc", "1e400", "12345.678", ""])
INDEX = st.integers(min_value=0, max_value=30)
# The deals' owner and manager more often: more calls get past the visibility rule.
USER = st.sampled_from([*USERS, "seller", "seller", "manager"])
FLAG = st.booleans()


def op(operation: str, **params: Any) -> Any:
    return st.fixed_dictionaries({"op": st.just(operation), "user": USER, **params})


OPERATIONS = st.one_of(
    op(
        "create",
        account=st.integers(0, 2),
        owner=st.none() | USER,
        name=TEXTS | st.just(TOO_LONG_NAME),
        amount=AMOUNTS,
    ),
    op("evidence", deal=INDEX, criterion=st.sampled_from(CRITERIA), note=TEXTS),
    op(
        "advance",
        deal=INDEX,
        to=st.sampled_from(STAGES),
        evidence=FLAG,
        override=FLAG,
        version=st.sampled_from(["none", "current", "stale"]),
    ),
    op("regress", deal=INDEX, to=st.sampled_from(STAGES), reason=TEXTS, version=FLAG),
    op("win", deal=INDEX, evidence=FLAG, override=FLAG, amount=st.none() | AMOUNTS),
    op(
        "lose",
        deal=INDEX,
        reason=st.sampled_from(["price", "dropped", "no-such-reason"]),
        lost_to=st.none() | TEXTS,
    ),
    op("reopen", deal=INDEX, reason=TEXTS),
    op(
        "update",
        deal=INDEX,
        field=st.sampled_from(
            ["name", "amount", "budget", "probability_override", "close_date", "source", "stage"]
        ),
        text=TEXTS,
        amount=AMOUNTS,
        number=st.integers(-5, 105),
        version=st.sampled_from(["none", "current", "stale"]),
    ),
    op("reassign", deal=INDEX, owner=USER),
    op("request", deal=INDEX, requirement=TEXTS, budget=AMOUNTS),
    op("decide", approval=INDEX, approve=FLAG, comment=TEXTS),
    op("withdraw", approval=INDEX),
    op(
        "team",
        deal=INDEX,
        member=USER,
        role=st.sampled_from(["presales_consultant", "no_such_role"]),
    ),
    op("competitor", deal=INDEX, name=TEXTS),
    op("objection", deal=INDEX, text=TEXTS),
    op("answer", objection=INDEX, text=TEXTS),
    op("activity", deal=INDEX, kind=st.sampled_from(["call", "visit", "nap"]), subject=TEXTS),
    op("complete", activity=INDEX, outcome=TEXTS),
    op(
        "quote",
        deal=INDEX,
        kind=st.sampled_from(["preliminary", "formal", "draft"]),
        lines=st.sampled_from(["full", "partial", "bad"]),
        submit=FLAG,
    ),
    op("submit", quote=INDEX),
    op(
        "key_date",
        deal=INDEX,
        kind=st.sampled_from(["bid", "negotiation", "signing", "custom"]),
        label=TEXTS,
    ),
)
# Operations that may move a deal's stage forward (c).
FORWARD = {"advance", "win"}
# Figures for the report, summed over examples (read by the last test of the module).
FIGURES = {"examples": 0, "steps": 0, "refused": 0, "done": 0, "not_found": 0}


@dataclass
class World:
    org: dict[str, Any]
    accounts: list[Account]
    deals: list[int]
    managed: dict[str, set[int]] = field(default_factory=dict)

    def user(self, name: str) -> Any:
        return self.org[name]


@pytest.fixture
def world(org: dict[str, Any], account: Account, walker: Any) -> World:
    """Accounts in Beijing, Tianjin and Shanghai (each with a decision maker); five deals."""

    def branch_account(owner: str, name: str, n: int) -> Account:
        found = account_create(
            actor=org[owner],
            name=name,
            credit_code=credit_code(n),
            industry="power",
            size_band="large",
            organisations_count=5,
            it_need="集团管控",
            product_fit="财务",
        )
        contact_create(
            account=found, actor=org[owner], name="李总", selection_part="decision_maker"
        )
        return found

    tj = branch_account("tj_seller", "天津港集团", 21)
    sh = branch_account("sh_seller", "上海汽车集团", 22)
    close = clock.today() + dt.timedelta(days=60)

    def deal(owner: str, acc: Account, name: str) -> Any:
        return ps.opportunity_create(
            actor=org[owner],
            account=acc,
            name=name,
            amount="800000",
            close_date=close,
            source="Referral",
            evidence=EVIDENCE["discover"],
        )

    deals = [
        walker.create(name="北京·发掘"),
        walker.to(walker.create(name="北京·立项"), "project"),
        walker.to(walker.create(name="北京·谈判"), "negotiation"),
        ps.opportunity_advance(
            opportunity=deal("tj_seller", tj, "天津·意向"),
            to_stage="intent",
            actor=org["tj_seller"],
            evidence=INTENT_EVIDENCE,
        ),
        deal("sh_seller", sh, "上海·发掘"),
    ]
    # Team members see deals outside their own: a colleague, and a seller of another region.
    for deal_index, member in ((0, "teammate"), (2, "sh_seller")):
        ps.team_member_add(
            opportunity=deals[deal_index],
            actor=org["seller"],
            user=org[member],
            role="presales_consultant",
        )
    b = {k: org[k].pk for k in ("beijing", "tianjin", "shanghai", "north", "company")}
    return World(
        org=org,
        accounts=[account, tj, sh],
        deals=[d.pk for d in deals],
        managed={
            "manager": {b["beijing"]},
            "north_manager": {b["north"], b["beijing"], b["tianjin"]},
            "sh_manager": {b["shanghai"]},
        },
    )


# --- the rule, written out independently of the code under test --------------------------


def may_see(w: World, user_name: str, opp: Opportunity) -> bool:
    user = w.user(user_name)
    if user_name in ("executive", "admin"):
        return True
    if opp.owner_id == user.pk or opp.branch_id in w.managed.get(user_name, set()):
        return True
    return TeamMember.objects.filter(opportunity_id=opp.pk, user_id=user.pk).exists()


def manages(w: World, user_name: str, branch_id: int) -> bool:
    return user_name in ("executive", "admin") or branch_id in w.managed.get(user_name, set())


# --- snapshots ---------------------------------------------------------------------------

COUNTED = [
    OpportunityHistory,
    AuditEvent,
    CriterionEvidence,
    ProjectApproval,
    Quote,
    TeamMember,
    OpportunityCompetitor,
    Objection,
    Activity,
    KeyDate,
    GateOverride,
    Account,
]


def state() -> dict[str, Any]:
    return {
        "deals": {
            row[0]: row[1:]
            for row in Opportunity.objects.values_list(
                "pk", "version", "stage_id", "status", "owner_id", "amount", "name", "budget"
            )
        },
        "counts": [m.objects.count() for m in COUNTED],
        "approvals": list(ProjectApproval.objects.order_by("pk").values_list("pk", "status")),
        "activities": list(Activity.objects.order_by("pk").values_list("pk", "done_at")),
        "quotes": list(Quote.objects.order_by("pk").values_list("pk", "submitted_at")),
        "objections": list(Objection.objects.order_by("pk").values_list("pk", "status")),
    }


def history_rows() -> dict[int, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in OpportunityHistory.objects.values_list(
            "pk",
            "opportunity_id",
            "valid_from",
            "stage_id",
            "status",
            "amount",
            "currency",
            "close_date",
            "probability",
            "owner_id",
            "forecast_category",
            "actor_id",
            "action",
            "reason",
        )
    }


# --- one step ----------------------------------------------------------------------------


def pick(rows: list[int], index: int) -> int | None:
    return rows[index % len(rows)] if rows else None


def _evidence_up_to(opp: Opportunity, to: str) -> dict[str, str]:
    keys = [s.key for s in opp.playbook.ordered_stages() if s.kind != StageKind.ACCOUNT]
    if to not in keys:
        return {}
    found: dict[str, str] = {}
    for key in keys[: keys.index(to) + 1]:
        found.update({f"{key}.{c}": note for c, note in EVIDENCE.get(key, {}).items()})
    return found


def _version(opp: Opportunity, how: str | bool) -> int | None:
    if how in ("none", False):
        return None
    return opp.version - 1 if how == "stale" else opp.version


LINES = {
    "full": PRELIMINARY_LINES,
    "partial": PRELIMINARY_LINES[:1],
    "bad": [{"category": "hardware", "description": "Servers", "unit_price": "1"}],
}


def run(w: World, step: dict[str, Any]) -> tuple[Any, int | None]:
    """Call the step's service; the opportunity it acts on (None when there is none)."""
    actor = w.user(step["user"])
    name = step["op"]
    if name == "create":
        owner = w.user(step["owner"]) if step["owner"] else None
        opp = ps.opportunity_create(
            actor=actor,
            account=w.accounts[step["account"]],
            name=step["name"],
            amount=step["amount"],
            close_date=clock.today() + dt.timedelta(days=30),
            owner=owner,
            source="Event",
            evidence=EVIDENCE["discover"],
        )
        w.deals.append(opp.pk)
        return opp, None
    if name in ("decide", "withdraw"):
        pk = pick(
            list(ProjectApproval.objects.order_by("pk").values_list("pk", flat=True)),
            step["approval"],
        )
        if pk is None:
            return None, None
        deal = ProjectApproval.objects.get(pk=pk).opportunity_id
        if name == "decide":
            return ps.approval_decide(
                approval=pk, actor=actor, approve=step["approve"], comment=step["comment"]
            ), deal
        return ps.approval_withdraw(approval=pk, actor=actor), deal
    if name == "answer":
        pk = pick(
            list(Objection.objects.order_by("pk").values_list("pk", flat=True)), step["objection"]
        )
        if pk is None:
            return None, None
        deal = Objection.objects.get(pk=pk).opportunity_id
        return ps.objection_answer(objection=pk, actor=actor, answer=step["text"]), deal
    if name == "complete":
        pk = pick(
            list(Activity.objects.order_by("pk").values_list("pk", flat=True)), step["activity"]
        )
        if pk is None:
            return None, None
        found = Activity.objects.get(pk=pk)
        result = ps.activity_complete(activity=pk, actor=actor, outcome=step["outcome"])
        return result, found.opportunity_id
    if name == "submit":
        pk = pick(list(Quote.objects.order_by("pk").values_list("pk", flat=True)), step["quote"])
        if pk is None:
            return None, None
        deal = Quote.objects.get(pk=pk).opportunity_id
        return ps.quote_submit(quote=pk, actor=actor), deal

    pk = pick(w.deals, step["deal"])
    assert pk is not None
    opp = Opportunity.objects.select_related("playbook", "stage").get(pk=pk)
    if name == "evidence":
        return ps.evidence_record(
            opportunity=pk, criterion=step["criterion"], actor=actor, note=step["note"]
        ), pk
    if name == "advance":
        return ps.opportunity_advance(
            opportunity=pk,
            to_stage=step["to"],
            actor=actor,
            evidence=_evidence_up_to(opp, step["to"]) if step["evidence"] else None,
            expected_version=_version(opp, step["version"]),
            override_reason="Manager's call" if step["override"] else "",
        ), pk
    if name == "regress":
        return ps.opportunity_regress(
            opportunity=pk,
            to_stage=step["to"],
            actor=actor,
            reason=step["reason"],
            expected_version=_version(opp, step["version"]),
        ), pk
    if name == "win":
        return ps.opportunity_win(
            opportunity=pk,
            actor=actor,
            evidence=_evidence_up_to(opp, "closed") if step["evidence"] else None,
            override_reason="Signed on paper" if step["override"] else "",
            amount=step["amount"],
        ), pk
    if name == "lose":
        return ps.opportunity_lose(
            opportunity=pk, actor=actor, reason=step["reason"], lost_to=step["lost_to"] or None
        ), pk
    if name == "reopen":
        return ps.opportunity_reopen(opportunity=pk, actor=actor, reason=step["reason"]), pk
    if name == "update":
        value: Any = {
            "name": step["text"],
            "source": step["text"],
            "amount": step["amount"],
            "budget": step["amount"],
            "probability_override": step["number"],
            "close_date": clock.today() + dt.timedelta(days=step["number"]),
            "stage": "closed",
        }[step["field"]]
        return ps.opportunity_update(
            opportunity=pk,
            actor=actor,
            expected_version=_version(opp, step["version"]),
            **{step["field"]: value},
        ), pk
    if name == "reassign":
        return ps.opportunity_reassign(
            opportunity=pk, actor=actor, owner=w.user(step["owner"]), reason="Territory"
        ), pk
    if name == "request":
        return ps.approval_request(
            opportunity=pk,
            actor=actor,
            requirement=step["requirement"],
            budget=step["budget"],
            timeline="Decide by Q1",
            selection_team="CIO leads",
        ), pk
    if name == "team":
        return ps.team_member_add(
            opportunity=pk, actor=actor, user=w.user(step["member"]), role=step["role"]
        ), pk
    if name == "competitor":
        return ps.competitor_add(opportunity=pk, actor=actor, name=step["name"]), pk
    if name == "objection":
        return ps.objection_raise(opportunity=pk, actor=actor, text=step["text"]), pk
    if name == "activity":
        return ps.activity_plan(
            opportunity=pk,
            actor=actor,
            kind=step["kind"],
            subject=step["subject"],
            due_on=clock.today() + dt.timedelta(days=3),
        ), pk
    if name == "quote":
        return ps.quote_create(
            opportunity=pk,
            actor=actor,
            kind=step["kind"],
            lines=copy.deepcopy(LINES[step["lines"]]),
            submit=step["submit"],
        ), pk
    if name == "key_date":
        return ps.key_date_set(
            opportunity=pk,
            actor=actor,
            kind=step["kind"],
            planned=clock.today() + dt.timedelta(days=20),
            label=step["label"],
        ), pk
    raise AssertionError(name)


def deal_of(w: World, step: dict[str, Any]) -> int | None:
    """The opportunity a step acts on, known before it runs (for the visibility check)."""
    lists = {
        "approval": (ProjectApproval, "approval"),
        "objection": (Objection, "objection"),
        "activity": (Activity, "activity"),
        "quote": (Quote, "quote"),
    }
    for key, (model, param) in lists.items():
        if param in step and key == param:
            pk = pick(list(model.objects.order_by("pk").values_list("pk", flat=True)), step[param])
            return None if pk is None else model.objects.get(pk=pk).opportunity_id
    return pick(w.deals, step["deal"]) if "deal" in step else None


def check_step(w: World, step: dict[str, Any], history: dict[int, tuple[Any, ...]]) -> dict:
    """Run one step and check (a) to (d); returns the history after it."""
    before = state()
    target = deal_of(w, step)
    opp_before = (
        Opportunity.objects.select_related("playbook", "stage").get(pk=target) if target else None
    )
    visible = opp_before is None or may_see(w, step["user"], opp_before)
    overrides_before = GateOverride.objects.count()
    try:
        _result, _deal = run(w, step)
    except LoudouError as error:
        FIGURES["refused"] += 1
        # (a) a refusal changes nothing.
        assert state() == before, f"refused {type(error).__name__}: {error} but changed data"
        if not visible:
            # (b) a deal the user may not see is not found, never "denied".
            assert isinstance(error, NotFound), f"{type(error).__name__} for a hidden deal"
            FIGURES["not_found"] += 1
        elif isinstance(error, NotFound) and step["op"] != "create":
            raise AssertionError(f"NotFound for a deal {step['user']} may see: {error}") from None
    else:
        FIGURES["done"] += 1
        # (b) nothing is done to a deal the user may not see.
        assert visible, f"{step['op']} by {step['user']} succeeded on a hidden deal"
        if opp_before is not None:
            check_stage_move(w, step, opp_before, overrides_before)
    # (d) history is append-only.
    after = history_rows()
    for pk, row in history.items():
        assert after.get(pk) == row, f"history row {pk} changed or vanished"
    new = set(after) - set(history)
    assert not history or not new or min(new) > max(history), "history ids went back"
    return after


def check_stage_move(
    w: World, step: dict[str, Any], before: Opportunity, overrides_before: int
) -> None:
    """(c) forward moves only by advance or win, through the gate or a branch manager's
    override."""
    after = Opportunity.objects.select_related("stage").get(pk=before.pk)
    if after.stage.order <= before.stage.order:
        return
    assert step["op"] in FORWARD, f"{step['op']} moved {before.stage.key} → {after.stage.key}"
    overrides = GateOverride.objects.filter(opportunity_id=before.pk).order_by("-pk")
    if GateOverride.objects.count() > overrides_before:
        assert manages(w, step["user"], before.branch_id), "override by a non-manager"
        assert overrides.first().actor_id == w.user(step["user"]).pk
        return
    # No override: the gate must hold on the data as it was when the move was checked (the
    # evidence the move recorded included, the stage and the closing fields as before).
    probe = Opportunity.objects.select_related("playbook", "stage").get(pk=before.pk)
    probe.stage = Stage.objects.get(pk=before.stage_id)
    probe.status, probe.amount, probe.closed_on = before.status, before.amount, before.closed_on
    missing = gate_check(probe, after.stage)
    assert not missing, f"entered {after.stage.key} with {[m.criterion.key for m in missing]}"


def check_end(w: World) -> None:
    """(e) the analytics caches agree with history; visibility is the rule for everyone."""
    assert caches_verify() == []
    for name in USERS:
        user = w.user(name)
        seen = set(Opportunity.objects.visible_to(user).values_list("pk", flat=True))
        expected = {o.pk for o in Opportunity.objects.all() if may_see(w, name, o)}
        assert seen == expected, name
        for opp in Opportunity.objects.all():
            assert Opportunity.objects.can_see(user, opp) == (opp.pk in expected), (name, opp.pk)


class Rollback(Exception):
    """Raised at the end of an example to roll its writes back."""


def run_example(w: World, steps: list[dict[str, Any]]) -> None:
    deals = list(w.deals)
    try:
        with transaction.atomic():
            history = history_rows()
            for step in steps:
                history = check_step(w, step, history)
                FIGURES["steps"] += 1
            check_end(w)
            raise Rollback
    except Rollback:
        pass
    finally:
        w.deals[:] = deals
    FIGURES["examples"] += 1


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)
@given(steps=st.lists(OPERATIONS, min_size=3, max_size=14))
def test_random_operations_keep_the_invariants(world: World, steps: list[dict[str, Any]]) -> None:
    run_example(world, steps)


def test_the_fuzz_ran(world: World) -> None:
    """The figures of the run above (printed with -s), and a sanity floor: examples ran and both
    refusals and successes happened."""
    print(f"\nservice fuzz: {FIGURES}")
    if FIGURES["examples"]:
        assert FIGURES["done"] > 0 and FIGURES["refused"] > 0 and FIGURES["not_found"] > 0


# --- the defect the fuzz found on PostgreSQL: text longer than its column -------------------

LONG = "长" * 121  # one more than the 120-character columns hold


def _too_long_calls(w: World) -> dict[str, Any]:
    org, deal, acc = w.org, w.deals[0], w.accounts[0]
    seller = org["seller"]
    contact = acc.contacts.first()
    close = clock.today() + dt.timedelta(days=30)
    return {
        "key_date.label": lambda: ps.key_date_set(
            opportunity=deal, actor=seller, kind="custom", planned=close, label=LONG
        ),
        "competitor.name": lambda: ps.competitor_add(opportunity=deal, actor=seller, name=LONG),
        "lose.lost_to": lambda: ps.opportunity_lose(
            opportunity=deal, actor=seller, reason="price", lost_to=LONG
        ),
        "opportunity.source (create)": lambda: ps.opportunity_create(
            actor=seller,
            account=acc,
            name="新商机",
            amount="1",
            close_date=close,
            source=LONG,
            evidence=EVIDENCE["discover"],
        ),
        "opportunity.source (update)": lambda: ps.opportunity_update(
            opportunity=deal, actor=seller, source=LONG
        ),
        "account.name": lambda: account_create(
            actor=seller, name="长" * 201, credit_code=credit_code(31), organisations_count=1
        ),
        "contact.name": lambda: contact_create(account=acc, actor=seller, name=LONG),
        "contact.title": lambda: contact_create(account=acc, actor=seller, name="张", title=LONG),
        "contact.phone": lambda: contact_create(
            account=acc, actor=seller, name="张", phone="1" * 41
        ),
        "contact.name (update)": lambda: contact_update(contact=contact, actor=seller, name=LONG),
        "user.display_name": lambda: user_create(
            actor=org["admin"],
            username="long_name",
            password="loudou-test-pw-1",
            display_name=LONG,
            branch=org["beijing"],
            check_password=False,
        ),
    }


TOO_LONG = [
    "key_date.label",
    "competitor.name",
    "lose.lost_to",
    "opportunity.source (create)",
    "opportunity.source (update)",
    "account.name",
    "contact.name",
    "contact.title",
    "contact.phone",
    "contact.name (update)",
    "user.display_name",
]


@pytest.mark.parametrize("case", TOO_LONG)
def test_text_longer_than_its_column_is_a_validation_error(world: World, case: str) -> None:
    """Found by the fuzz on PostgreSQL: these services save text longer than its column holds,
    which PostgreSQL refuses with a DataError (a server error, not a message), and SQLite keeps
    whole. Each must refuse with a ValidationFailed naming the field, and change nothing."""
    call = _too_long_calls(world)[case]
    before = (state(), User.objects.count())
    # A DataError on PostgreSQL must not break the test's transaction: a savepoint around it.
    with transaction.atomic(), pytest.raises(ValidationFailed):
        call()
    assert (state(), User.objects.count()) == before
