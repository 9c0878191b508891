"""Stage operations from the web: one endpoint behind board drags and the opportunity page's
buttons. It answers with a dialog when something is needed (missing criteria to evidence or
override, a reason to move back or to lose) and, once the move is done, tells the page to
refresh. A refusal changes nothing and keeps what the user typed."""

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.errors import Conflict, GateRefused, LoudouError
from loudou.core.i18n import localized
from loudou.org.access import manages_branch
from loudou.pipeline.gates import gate_check, stages_between
from loudou.pipeline.models import LostReason, Opportunity, Status
from loudou.pipeline.selectors import opportunity_get
from loudou.pipeline.services import (
    evidence_record,
    opportunity_advance,
    opportunity_lose,
    opportunity_regress,
    opportunity_reopen,
    opportunity_win,
)
from loudou.playbooks.models import CriterionKind, Stage, StageKind
from loudou.web.views.base import acting_user, int_param, login_required, service_errors

WON, LOST, REOPEN = "__won__", "__lost__", "__reopen__"


def _done(request: HttpRequest, message: str) -> HttpResponse:
    """204 with the events the page listens to: close the dialog, refresh the board or page."""
    response = HttpResponse(status=204)
    events: dict[str, Any] = {"closeModal": True, "showMessage": message}
    if request.POST.get("from") == "page":
        response["HX-Refresh"] = "true"
    else:
        events["boardChanged"] = True
    response["HX-Trigger"] = json.dumps(events)
    return response


def _target(opp: Opportunity, key: str) -> Stage | None:
    if key == WON:
        return next(s for s in opp.playbook.ordered_stages() if s.kind == StageKind.WON)
    return next((s for s in opp.playbook.ordered_stages() if s.key == key), None)


def _evidence_from(request: HttpRequest) -> dict[str, str]:
    """evidence.<stage>.<criterion> fields with a note (empty ones are skipped)."""
    notes = {
        name.removeprefix("evidence."): request.POST.get(name, "").strip()
        for name in request.POST
        if name.startswith("evidence.")
    }
    return {key: note for key, note in notes.items() if note}


def _dialog(
    request: HttpRequest, opp: Opportunity, kind: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    base = {
        "opp": opp,
        "kind": kind,
        "version": request.POST.get("version") or opp.version,
        "origin": request.POST.get("from", "board"),
        "posted": request.POST,
        "is_manager": manages_branch(acting_user(request), opp.branch_id),
    }
    base.update(context)
    return render(request, "web/moves/dialog.html", base, status=status)


def _gate_dialog(
    request: HttpRequest, opp: Opportunity, target: Stage, error: LoudouError | None
) -> HttpResponse:
    missing = gate_check(opp, target)
    typed = _evidence_from(request)
    rows = [
        {
            "state": s,
            "field": f"evidence.{s.criterion.stage.key}.{s.criterion.key}",
            "typed": typed.get(f"{s.criterion.stage.key}.{s.criterion.key}", ""),
            "takes_evidence": s.criterion.kind == CriterionKind.CHECK,
            "is_approval": s.criterion.kind == CriterionKind.APPROVAL,
        }
        for s in missing
    ]
    context = {
        "target": target,
        "target_key": request.POST.get("to_stage"),
        "missing": rows,
        "skipped": [s for s in stages_between(opp, target) if s.pk != target.pk],
        "override_reason": request.POST.get("override_reason", ""),
    }
    if error is not None and not isinstance(error, GateRefused):
        context.update(service_errors(error))
    return _dialog(request, opp, "gate", context, status=409 if error else 200)


@login_required
@require_POST
def move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a deal to the stage named by `to_stage` (a stage key, __won__, __lost__ or
    __reopen__), with `version` read when the page was drawn."""
    opp = opportunity_get(request.user, pk)
    key = request.POST.get("to_stage", "")
    version = int_param(request.POST.get("version"))
    try:
        if key == LOST:
            return _lose(request, opp, version)
        if key == REOPEN:
            return _reopen(request, opp, version)
        target = _target(opp, key)
        if target is None or target.kind == StageKind.ACCOUNT:
            return _dialog(request, opp, "error", {"error": _("Unknown stage.")}, status=400)
        if opp.status != Status.OPEN:
            return _dialog(
                request,
                opp,
                "error",
                {"error": _("This opportunity is closed; reopen it first.")},
                status=400,
            )
        if target.order < opp.stage.order:
            return _regress(request, opp, target, version)
        return _advance(request, opp, target, version)
    except Conflict as error:
        return _dialog(request, opp, "error", service_errors(error), status=409)


def _advance(
    request: HttpRequest, opp: Opportunity, target: Stage, version: int | None
) -> HttpResponse:
    # Evidence is saved first, each note on its own, so it is kept even when the gate still
    # refuses (for a criterion the record has to change for, or a missing 立项 approval).
    for criterion, note in _evidence_from(request).items():
        try:
            evidence_record(opportunity=opp.pk, criterion=criterion, actor=request.user, note=note)
        except LoudouError as error:
            return _gate_dialog(request, opp, target, error)
    try:
        if target.kind == StageKind.WON:
            opportunity_win(
                opportunity=opp.pk,
                actor=request.user,
                expected_version=version,
                override_reason=request.POST.get("override_reason", ""),
            )
        else:
            opportunity_advance(
                opportunity=opp.pk,
                to_stage=target,
                actor=request.user,
                expected_version=version,
                override_reason=request.POST.get("override_reason", ""),
            )
    except Conflict:
        raise
    except LoudouError as error:
        opp.refresh_from_db()
        return _gate_dialog(request, opp, target, error)
    name = localized(target, "name")
    if target.kind == StageKind.WON:
        return _done(request, _("“%(n)s” is won.") % {"n": opp.name})
    return _done(request, _("“%(n)s” moved to %(s)s.") % {"n": opp.name, "s": name})


def _regress(
    request: HttpRequest, opp: Opportunity, target: Stage, version: int | None
) -> HttpResponse:
    reason = request.POST.get("reason", "")
    context: dict[str, Any] = {"target": target, "target_key": target.key, "reason": reason}
    if "reason" not in request.POST:
        return _dialog(request, opp, "regress", context)
    try:
        opportunity_regress(
            opportunity=opp.pk,
            to_stage=target,
            actor=request.user,
            reason=reason,
            expected_version=version,
        )
    except Conflict:
        raise
    except LoudouError as error:
        context.update(service_errors(error))
        return _dialog(request, opp, "regress", context, status=400)
    return _done(
        request,
        _("“%(n)s” moved back to %(s)s.") % {"n": opp.name, "s": localized(target, "name")},
    )


def _lose(request: HttpRequest, opp: Opportunity, version: int | None) -> HttpResponse:
    context: dict[str, Any] = {
        "reasons": LostReason.objects.filter(active=True),
        "competitors": [c.competitor for c in opp.competitors.select_related("competitor")],
    }
    if "reason" not in request.POST:
        return _dialog(request, opp, "lose", context)
    try:
        opportunity_lose(
            opportunity=opp.pk,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
            lost_to=request.POST.get("lost_to", "").strip() or None,
            expected_version=version,
        )
    except Conflict:
        raise
    except LoudouError as error:
        context.update(service_errors(error))
        return _dialog(request, opp, "lose", context, status=400)
    return _done(request, _("“%(n)s” is marked lost.") % {"n": opp.name})


def _reopen(request: HttpRequest, opp: Opportunity, version: int | None) -> HttpResponse:
    reason = request.POST.get("reason", "")
    context: dict[str, Any] = {"reason": reason}
    if "reason" not in request.POST:
        return _dialog(request, opp, "reopen", context)
    try:
        opportunity_reopen(
            opportunity=opp.pk, actor=request.user, reason=reason, expected_version=version
        )
    except Conflict:
        raise
    except LoudouError as error:
        context.update(service_errors(error))
        return _dialog(request, opp, "reopen", context, status=400)
    return _done(request, _("“%(n)s” is open again.") % {"n": opp.name})


urlpatterns = [
    path("opportunities/<int:pk>/move/", move, name="opportunity-move"),
]
