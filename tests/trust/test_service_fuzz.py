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
intent and the Shanghai seller's at discover. The world is `service_fuzz_world.py`, what a step
draws and calls `service_fuzz_steps.py`; the too-long texts the fuzz found on PostgreSQL are
tried one by one in `test_text_column_limits.py`.
"""

from typing import Any

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.caches import caches_verify
from loudou.core.errors import LoudouError, NotFound
from loudou.pipeline.gates import gate_check
from loudou.pipeline.models import GateOverride, Opportunity
from loudou.playbooks.models import Stage
from tests.trust import service_fuzz_world
from tests.trust.service_fuzz_steps import OPERATIONS, deal_of, run
from tests.trust.service_fuzz_world import USERS, World, history_rows, manages, may_see, state

world = service_fuzz_world.world  # the fuzz's world (a fixture, reused as is)

# Operations that may move a deal's stage forward (c).
FORWARD = {"advance", "win"}
# Figures for the report, summed over examples (read by the last test of the module).
FIGURES = {"examples": 0, "steps": 0, "refused": 0, "done": 0, "not_found": 0}


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
