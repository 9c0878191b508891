"""Win probabilities learned from history over the API: a playbook's active model and how it
compares with the alternatives, one deal's probability explained, and the stage probabilities
an administrator accepts into the playbook."""

from typing import Annotated, Any

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from loudou.api.schemas.common import Day, In, Str40
from loudou.core.i18n import localized
from loudou.playbooks.models import Playbook

# A stage probability as the playbook holds it: a whole percent (not "12", not true, not 12.5).
WholePercent = Annotated[StrictInt, Field(ge=0, le=100)]


class Open(BaseModel):
    """An answer whose documented fields are kept as they are, with any the model adds later
    (a pydantic model: ninja's Schema reads its input through a getter that drops the rest)."""

    model_config = ConfigDict(extra="allow")


class Scores(Open):
    brier: float | None = Field(description="Mean squared error of the probabilities; lower wins.")
    log_loss: float | None = Field(description="Lower is better.")
    auc: float | None = Field(description="0.5 is chance; 1 ranks every won deal first.")
    reliability: list[dict[str, Any]] = Field(
        description="Ten bins of predicted probability: count, mean predicted, share won."
    )


class SuggestedStage(Open):
    reached: int = Field(description="Closed deals (by training time) that reached the stage.")
    won: int = Field(description="Of those, won.")
    rate: float = Field(description="(won + 1) / (reached + 2): the suggested probability, 0–1.")


class WinModelOut(Open):
    """The playbook's active win model (as `loudou model evaluate --json`)."""

    playbook: str
    trained_at: str = Field(description="ISO 8601, UTC.")
    cutoff: str = Field(description="Fit on deals closed before it, evaluated on those after.")
    training: dict[str, int] = Field(description="deals, won, snapshots.")
    evaluation: dict[str, int] = Field(description="deals, snapshots.")
    features: list[str]
    models: dict[str, Scores] = Field(
        description="stage_defaults, stage_rates, naive_bayes, logistic, logistic_uncalibrated: "
        "each scored on the same later deals."
    )
    suggested_stage_probabilities: dict[str, SuggestedStage] = Field(
        description="Per stage, learned from history; accept them with accept-probabilities."
    )
    offered: bool = Field(
        description="False when the per-deal model did not beat the learned stage rates and the "
        "stage defaults on the later deals; predictions then use `used`."
    )
    used: str = Field(description="logistic, stage_rates or stage_defaults.")


class Factor(Open):
    feature: str
    label: str = Field(description="The feature in the caller's language.")
    value: str
    contribution: float = Field(description="How far it moved the log-odds (+ towards won).")
    text: str


class WinProbabilityOut(Open):
    """One deal's learned win probability and the factors that moved it most."""

    opportunity: int
    name: str
    stage: str
    status: str
    probability: float = Field(description="0–1.")
    source: str = Field(description="logistic, stage_rates or stage_defaults.")
    offered: bool
    reason: str | None = Field(description="Why the per-deal model is not offered, or null.")
    stage_default: float = Field(description="The stage's default probability, 0–1.")
    model_trained_at: str
    factors: list[Factor]


class TrainIn(In):
    cutoff: Day | None = Field(
        default=None,
        description="Fit on deals closed before the end of this day; default: chosen so that "
        "the later deals can be evaluated.",
    )


class ProbabilitiesIn(In):
    probabilities: dict[Str40, WholePercent] = Field(
        min_length=1,
        max_length=40,
        description="Open stage key → its new default probability (whole percent 0–100).",
        examples=[{"discover": 12, "intent": 28}],
    )


class StageProbability(Schema):
    key: str
    kind: str = Field(description="account, open or won.")
    name: str = Field(description="In the caller's language.")
    probability: int


class PlaybookVersionOut(Schema):
    """The playbook's current version after the change."""

    key: str
    version: int
    created: bool = Field(description="False when nothing differed: no new version was made.")
    stages: list[StageProbability]


def playbook_version_out(playbook: Playbook, *, created: bool) -> dict[str, Any]:
    return {
        "key": playbook.key,
        "version": playbook.version,
        "created": created,
        "stages": [
            {
                "key": s.key,
                "kind": s.kind,
                "name": localized(s, "name"),
                "probability": s.probability,
            }
            for s in playbook.ordered_stages()
        ],
    }
