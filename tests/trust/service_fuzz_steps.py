"""The steps of the service fuzz: what hypothesis draws (a pipeline service call by a user of
the world, with texts, amounts, stages, versions and indexes that are often wrong on purpose)
and how a drawn step is called: on which opportunity, approval, objection, activity or quote,
with which evidence and which expected version.
"""

import copy
import datetime as dt
from typing import Any

from hypothesis import strategies as st

from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.pipeline.models import Activity, Objection, Opportunity, ProjectApproval, Quote
from loudou.playbooks.models import StageKind
from tests.conftest import PRELIMINARY_LINES
from tests.trust.service_fuzz_world import EVIDENCE, USERS, World

STAGES = ["discover", "intent", "project", "recognition", "negotiation", "closed", "nowhere"]
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
        "长" * 120,  # as long as the shortest text columns allow (test_text_column_limits.py)
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
