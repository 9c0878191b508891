"""Win probabilities learned from the closed deals: a playbook's active model (the comparison
with the stage defaults, the learned stage rates and naive Bayes), training one, accepting the
suggested stage probabilities into the playbook (administrators), and one deal's probability
with the factors that moved it (whoever may see the deal)."""

from typing import Any

from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import Body, Router
from ninja.responses import Status

from loudou.api.auth import ApiRequest
from loudou.api.errors import problem
from loudou.api.schemas.common import Id, Str60
from loudou.api.schemas.learning import (
    PlaybookVersionOut,
    ProbabilitiesIn,
    TrainIn,
    WinModelOut,
    WinProbabilityOut,
    playbook_version_out,
)
from loudou.core.errors import NotFound, ValidationFailed
from loudou.learning.selectors import win_explain, win_model_active, win_model_summary
from loudou.learning.services import win_model_train
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_get
from loudou.playbooks.services import playbook_probabilities_accept

router = Router(tags=["learning"])


def _playbook(key: str) -> Playbook:
    try:
        return playbook_get(key)
    except NotFound:
        raise NotFound(_("No such playbook.")) from None


@router.get("/win-models/{playbook_key}", response=WinModelOut, summary="A playbook's win model")
def win_model_detail(request: ApiRequest, playbook_key: Str60) -> Any:
    """The playbook's active win model: when and on what it was trained, each model's Brier
    score, log loss, AUC and reliability on the same later deals, whether the per-deal model is
    offered, and the stage probabilities suggested by history. 404 when none is trained (only the
    stage defaults are offered then)."""
    playbook = _playbook(playbook_key)
    model = win_model_active(playbook)
    if model is None:
        raise NotFound(
            _("No win model is trained for playbook %(p)s: only stage defaults are offered.")
            % {"p": playbook.key}
        )
    return win_model_summary(model)


@router.post(
    "/win-models/{playbook_key}/train",
    response={201: WinModelOut},
    summary="Train a playbook's win model",
)
def win_model_new(
    request: ApiRequest, playbook_key: Str60, payload: Body[TrainIn | None] = None
) -> Any:
    """Learn win probabilities from the playbook's closed deals (fit before `cutoff`, evaluated
    after it) and make the model the active one; administrators only (403 otherwise). Too little
    history: 422 `validation_failed` saying how many deals there are and how many are needed
    (`counts`), and nothing changes. Takes seconds on a large company."""
    playbook = _playbook(playbook_key)
    try:
        model = win_model_train(
            playbook=playbook, actor=request.auth, cutoff=payload.cutoff if payload else None
        )
    except ValidationFailed as exc:
        return _too_little_history(request, exc)
    return Status(201, win_model_summary(model))


def _too_little_history(request: ApiRequest, exc: ValidationFailed) -> HttpResponse:
    """The refusal with its counts (closed, won, lost before and after the cutoff)."""
    counts = exc.details.get("counts")
    extra: dict[str, Any] = {"counts": counts} if isinstance(counts, dict) else {}
    return problem(request, exc.code, exc.message, **extra)


@router.post(
    "/win-models/{playbook_key}/accept-probabilities",
    response=PlaybookVersionOut,
    summary="Accept stage probabilities into the playbook",
)
def stage_probabilities_accept(
    request: ApiRequest, playbook_key: Str60, payload: ProbabilitiesIn
) -> Any:
    """Make the given default probabilities of open stages (those the model suggests, say) a new
    version of the playbook; administrators only (403 otherwise). Open deals keep the version
    they were created under, new deals get the new probabilities. The values follow the
    playbook's rules (whole percents, never decreasing down the funnel; 422 naming each wrong
    stage). Nothing different: `created` false and no new version. Audited."""
    playbook = _playbook(playbook_key)
    accepted = playbook_probabilities_accept(
        playbook=playbook, actor=request.auth, probabilities=dict(payload.probabilities)
    )
    return playbook_version_out(accepted, created=accepted.pk != playbook.pk)


@router.get(
    "/opportunities/{opportunity_id}/win-probability",
    response=WinProbabilityOut,
    summary="A deal's learned win probability, explained",
)
def opportunity_win_probability(request: ApiRequest, opportunity_id: Id) -> Any:
    """The deal's win probability from its playbook's active model, the stage default beside it,
    and the factors that moved it most; when the per-deal model is not offered, the probability
    it fell back to and why (`reason`). 404 when you may not see the deal or no model is trained
    for its playbook."""
    return win_explain(request.auth, opportunity_id)
