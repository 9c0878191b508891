"""The analytics, with the same JSON documents as the CLI's `--json` (the same functions make
them): funnel, conversion, velocity, stalled, flow, forecast, plan, targets.

Each takes the CLI's scope: `playbook` (key), `branch` (code, with the branches below), `owner`
(user name) and `industry` (key of the accounts' industry), and reads only what the caller may
see."""

import datetime as dt
import json
from typing import Any, Literal

from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.flow import pipeline_flow
from loudou.analytics.forecast import forecast, parse_period, targets_view
from loudou.analytics.plan import plan
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import funnel_snapshot
from loudou.analytics.velocity import stalled, velocity
from loudou.api.auth import ApiRequest
from loudou.api.schemas.common import FIRST_DAY, LAST_DAY, Amount, Day, Str40, Str60, Str200
from loudou.api.selectors import branch_ids_for, industry_id_for, user_id_for
from loudou.core.cli import dump_json
from loudou.core.errors import NotFound, ValidationFailed
from loudou.playbooks.selectors import playbook_get

router = Router(tags=["analytics"])
MAX_SIMULATIONS = 100_000
Report = dict[str, Any]


class ScopeParams(Schema):
    playbook: Str60 | None = Field(default=None, description="Playbook key; default playbook.")
    branch: Str40 | None = Field(default=None, description="Branch code, with those below it.")
    owner: Str200 | None = Field(default=None, description="Owner's user name.")
    industry: Str40 | None = Field(default=None, description="Industry key of the accounts.")


class DateRange(ScopeParams):
    date_from: Day | None = Field(default=None, alias="from")
    date_to: Day | None = Field(default=None, alias="to")


class FlowParams(ScopeParams):
    date_from: Day = Field(alias="from", description="First day of the period.")
    date_to: Day = Field(alias="to", description="Last day of the period.")
    window_from: Day | None = Field(default=None, description="Default: from.")
    window_to: Day | None = Field(default=None, description="Default: to.")


class PeriodParams(ScopeParams):
    period: Str40 = Field(description="A quarter (2026Q1) or a month (2026-03).")
    simulations: int = Field(default=10_000, ge=1, le=MAX_SIMULATIONS)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    probabilities: Literal["deal", "learned"] = Field(
        default="deal",
        description="deal: each deal's own probability (override, else its stage's default); "
        "learned: the active win model's (the deals' own when none is trained). The answer's "
        "`probabilities` says which was used.",
    )


class PlanParams(ScopeParams):
    period: Str40 = Field(description="A quarter (2026Q1) or a month (2026-03).")
    target: Amount = Field(description="The bookings to reach.")


class FunnelParams(ScopeParams):
    as_of: Day | None = Field(default=None, description="As of the end of this day.")


def _scope(request: ApiRequest, params: ScopeParams) -> Scope:
    try:
        playbook = playbook_get(params.playbook)
    except NotFound:
        raise ValidationFailed(
            _("No such playbook: %(key)s.") % {"key": params.playbook},
            details={"playbook": "unknown"},
        ) from None
    return Scope(
        actor=request.auth,
        playbook=playbook,
        branch_ids=branch_ids_for(params.branch),
        owner_id=user_id_for(params.owner),
        industry_id=industry_id_for(params.industry),
    )


def _cli_json(data: Any) -> Any:
    """The document exactly as `--json` prints it (decimals as strings, dates ISO 8601)."""
    return json.loads(dump_json(data))


def _period(text: str) -> Any:
    try:
        period = parse_period(text)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"period": "invalid"}) from None
    if not FIRST_DAY <= period.start <= LAST_DAY:
        raise ValidationFailed(
            _("“%(p)s” is too far from today.") % {"p": text}, details={"period": "range"}
        )
    return period


def _ordered(start: dt.date | None, end: dt.date | None, *, strict: bool) -> None:
    if start and end and (start >= end if strict else start > end):
        raise ValidationFailed(_("“from” must be before “to”."), details={"from": "after_to"})


@router.get("/funnel", response=Report, summary="Funnel snapshot (loudou funnel --json)")
def funnel(request: ApiRequest, params: Query[FunnelParams]) -> Any:
    """Target accounts, open deals per stage (count, amount, weighted), won and lost."""
    scope = _scope(request, params)
    data = funnel_snapshot(
        scope.actor,
        scope.playbook,
        as_of=params.as_of,
        **scope.filters(),
    )
    return _cli_json(data)


@router.get("/conversion", response=Report, summary="Conversion (loudou conversion --json)")
def conversion(request: ApiRequest, params: Query[DateRange]) -> Any:
    """Per stage for deals created in [from, to): reached, advanced, lost, open; naive,
    closed-only and censoring-aware rates with a 90 % interval."""
    scope = _scope(request, params)
    _ordered(params.date_from, params.date_to, strict=True)
    try:
        data = conversion_by_stage(
            scope.actor,
            scope.playbook,
            date_from=params.date_from,
            date_to=params.date_to,
            **scope.filters(),
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    return _cli_json(data)


@router.get("/velocity", response=Report, summary="Time in stage (loudou velocity --json)")
def velocity_report(request: ApiRequest, params: Query[DateRange]) -> Any:
    """Median and p80 of completed stays, Kaplan–Meier median, cycle time to won; `from` and
    `to` bound the day a stay was entered."""
    scope = _scope(request, params)
    _ordered(params.date_from, params.date_to, strict=False)
    data = velocity(
        scope.actor,
        scope.playbook,
        entered_from=params.date_from,
        entered_to=params.date_to,
        **scope.filters(),
    )
    return _cli_json(data)


@router.get("/stalled", response=Report, summary="Stalled deals (loudou stalled --json)")
def stalled_report(request: ApiRequest, params: Query[ScopeParams]) -> Any:
    """Open deals in their stage longer than its max days (or its historical p80)."""
    scope = _scope(request, params)
    data = stalled(scope.actor, scope.playbook, **scope.filters())
    return _cli_json(data)


@router.get("/flow", response=Report, summary="Pipeline flow (loudou flow --json)")
def flow(request: ApiRequest, params: Query[FlowParams]) -> Any:
    """Start + created + pulled in − pushed out ± amount changes − won − lost = end."""
    scope = _scope(request, params)
    data = pipeline_flow(
        scope.actor,
        scope.playbook,
        date_from=params.date_from,
        date_to=params.date_to,
        window_from=params.window_from,
        window_to=params.window_to,
        **scope.filters(),
    )
    return _cli_json(data)


@router.get("/forecast", response=Report, summary="Forecast (loudou forecast --json)")
def forecast_report(request: ApiRequest, params: Query[PeriodParams]) -> Any:
    """Booked, weighted, simulated P10/P50/P90 and the chance of meeting the target."""
    scope = _scope(request, params)
    try:
        data = forecast(
            scope,
            _period(params.period),
            runs=params.simulations,
            seed=params.seed,
            probabilities=params.probabilities,
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    return _cli_json(data)


@router.get("/plan", response=Report, summary="Reverse funnel 倒推 (loudou plan --json)")
def plan_report(request: ApiRequest, params: Query[PlanParams]) -> Any:
    """The pipeline each stage needs, and by when, to meet `target` in the period."""
    scope = _scope(request, params)
    return _cli_json(plan(scope, _period(params.period), params.target))


@router.get("/targets", response=Report, summary="Targets (loudou targets --json)")
def targets_report(request: ApiRequest, params: Query[PeriodParams]) -> Any:
    """Target vs booked vs weighted vs simulated P50, per person, branch and the company."""
    scope = _scope(request, params)
    data = targets_view(
        scope,
        _period(params.period),
        runs=params.simulations,
        seed=params.seed,
        probabilities=params.probabilities,
    )
    return _cli_json(data)
