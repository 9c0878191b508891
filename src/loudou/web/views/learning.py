"""The win model page (the analytics tab "Win model") and the learned probability on the deal
page.

The model page shows, for one playbook, what the predictions use now and why: the state in words
(no model, offered, or not offered with the reason), how the model was trained, the comparison of
the models on the later deals, the reliability curve (plotly, data from a json_script element)
with its table, the features kept and dropped, and the stage probabilities history suggests,
which an administrator may accept into the playbook (a new playbook version). Every figure on it
is company-wide: no branch's or person's rate is shown (every signed-in user may read it).

The deal page loads the deal's learned probability lazily (`deal_probability`, htmx on load), so
the page itself runs no model and adds no query."""

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, NotFound, PermissionDenied
from loudou.core.i18n import localized
from loudou.learning import training
from loudou.learning.models import WinModel
from loudou.learning.selectors import (
    fallback_reason,
    suggested_percent,
    win_explain,
    win_model_active,
    win_model_summary,
)
from loudou.learning.services import win_model_train
from loudou.learning.words import FeatureWords
from loudou.org.models import AccessLevel
from loudou.pipeline.models import Opportunity, Status
from loudou.pipeline.selectors import opportunity_get
from loudou.playbooks.models import Playbook, StageKind
from loudou.playbooks.selectors import playbook_get
from loudou.playbooks.services import playbook_probabilities_accept
from loudou.web.views.base import (
    acting_user,
    htmx_redirect,
    login_required,
    require_post,
    service_errors,
)

#: The models compared, in the order of the table.
MODELS = ("stage_defaults", "stage_rates", "naive_bayes", "logistic", "logistic_uncalibrated")
#: The models drawn on the reliability curve (the three a reader chooses between), and colours.
CURVE = {"stage_defaults": "#8a97ad", "stage_rates": "#3aa76d", "logistic": "#2f6fe4"}


def _model_names() -> dict[str, tuple[str, str]]:
    """Each compared model: its name and one line on what it is, for a sales director."""
    return {
        "stage_defaults": (
            _("Stage defaults"),
            _("The playbook's default probability of the stage the deal was in."),
        ),
        "stage_rates": (
            _("Learned stage rates"),
            _(
                "The share of past deals that reached the stage and were won (the company's, "
                "adjusted toward the branch's and the owner's record when they have enough deals)."
            ),
        ),
        "naive_bayes": (
            _("Naive Bayes (as in Odoo)"),
            _(
                "Odoo's lead scoring rebuilt: learns from closed deals as they ended, ignoring "
                "when things were known."
            ),
        ),
        "logistic": (
            _("Learned per-deal model"),
            _(
                "Starts from the learned stage rate and adds what was known about the deal at "
                "that moment (time in stage, criteria with evidence, activity …), as far as "
                "history supports it; calibrated when that helps."
            ),
        ),
        "logistic_uncalibrated": (
            _("Per-deal model, uncalibrated"),
            _("The same regression without its calibration map: shows what calibration did."),
        ),
    }


def _used_words(used: str) -> str:
    """What the predictions use, as a sentence."""
    return {
        "logistic": _("The learned per-deal model: each open deal gets its own probability."),
        "stage_rates": _(
            "The learned stage rates: each open deal gets the won share of past deals that "
            "reached its stage."
        ),
        "stage_defaults": _("The stage default probabilities of the playbook."),
    }.get(used, used)


def _calibration_words(calibration: dict[str, Any]) -> tuple[str, str]:
    """The calibration method kept and why, in the user's language (the stored reason is a
    fixed English sentence of `training.choose_calibration`)."""
    method = calibration.get("method", "none")
    names = {
        "none": _("none"),
        "sigmoid": _("sigmoid (Platt scaling)"),
        "isotonic": _("isotonic"),
    }
    reason = calibration.get("reason") or ""
    if reason.startswith("no method lowered"):
        reason = _(
            "Neither sigmoid nor isotonic calibration lowered the Brier score on the later half "
            "of the calibration window without spoiling the ranking, so none is applied."
        )
    elif reason.endswith("lowered the Brier score on the later half of the window"):
        reason = _(
            "It lowered the Brier score on the later half of the calibration window without "
            "spoiling the ranking of the deals."
        )
    elif reason.startswith("the calibration window lacks"):
        reason = _("The calibration window lacks won or lost deals in one of its halves.")
    elif reason.startswith("the sigmoid refitted"):
        reason = _("The sigmoid refitted on the whole window reversed the ranking: not applied.")
    return names.get(method, method), reason


@dataclass
class ModelQuery:
    """What the model page is asked about: one playbook (the analytics tabs carry its key)."""

    playbook: Playbook
    problems: list[str] = field(default_factory=list)

    def params(self, **extra: Any) -> str:
        """The query string the analytics tabs carry from page to page."""
        return urlencode({"playbook": self.playbook.key, **extra})


def _query(request: HttpRequest, key: str | None = None) -> ModelQuery:
    problems = []
    try:
        playbook = playbook_get(key or request.GET.get("playbook") or None)
    except NotFound:
        playbook = playbook_get(None)
        problems.append(_("There is no such playbook: showing the default one."))
    return ModelQuery(playbook, problems)


def _is_admin(request: HttpRequest) -> bool:
    return getattr(request.user, "level", None) == AccessLevel.ADMIN


def _closed_counts(playbook: Playbook) -> dict[str, int]:
    """The playbook's closed deals now, company-wide (all its versions): one query."""
    counts = Opportunity.objects.filter(playbook__key=playbook.key).aggregate(
        won=Count("pk", filter=Q(status=Status.WON)),
        lost=Count("pk", filter=Q(status=Status.LOST)),
    )
    return {"won": counts["won"], "lost": counts["lost"], "closed": counts["won"] + counts["lost"]}


def _comparison(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per compared model with its three scores; the best of each in bold (`best`)."""
    names = _model_names()
    found = summary["models"]
    rows = []
    for key in MODELS:
        if key not in found:
            continue
        metrics = found[key]
        rows.append(
            {
                "key": key,
                "name": names[key][0],
                "about": names[key][1],
                "brier": metrics.get("brier"),
                "log_loss": metrics.get("log_loss"),
                "auc": metrics.get("auc"),
                # Formatted as the CLI and `fallback_reason` do (Python's rounding of the float).
                "shown": {
                    m: "—" if metrics.get(m) is None else f"{metrics[m]:.4f}"
                    for m in ("brier", "log_loss", "auc")
                },
                "used": key == summary["used"],
                "best": set(),
            }
        )
    for metric, pick in (("brier", min), ("log_loss", min), ("auc", max)):
        values = [r[metric] for r in rows if r[metric] is not None]
        if values:
            best = pick(values)
            for row in rows:
                if row[metric] == best:
                    row["best"].add(metric)
    return rows


def _pct(rate: float | None) -> str:
    """A fraction as "62.5%", or — when there is none (an empty bin)."""
    return "—" if rate is None else f"{100 * rate:.1f}%"


def _bin_label(label: str) -> str:
    """A bin "0.1–0.2" of the evaluation as "10–20%"."""
    low, _sep, high = label.partition("–")
    try:
        return f"{round(100 * float(low))}–{round(100 * float(high))}%"
    except ValueError:
        return label


def _reliability(summary: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The reliability curve's chart data (one trace per model: the bins with snapshots,
    predicted against share won) and the table of every bin for every model drawn."""
    names = _model_names()
    traces = []
    table: list[dict[str, Any]] = []
    for key, colour in CURVE.items():
        rows = summary["models"].get(key, {}).get("reliability")
        if not rows:
            continue
        filled = [r for r in rows if r["count"]]
        traces.append(
            {
                "key": key,
                "name": names[key][0],
                "colour": colour,
                "bins": [_bin_label(r["bin"]) for r in filled],
                "predicted": [r["predicted"] for r in filled],
                "observed": [r["observed"] for r in filled],
                "count": [r["count"] for r in filled],
            }
        )
        for i, row in enumerate(rows):
            if len(table) <= i:
                table.append({"bin": _bin_label(row["bin"]), "models": []})
            table[i]["models"].append(
                {
                    "count": row["count"],
                    "predicted": _pct(row["predicted"]),
                    "observed": _pct(row["observed"]),
                }
            )
    chart = {
        "traces": traces,
        "diagonal": _("Perfectly calibrated"),
        "x": _("Predicted probability (mean of the bin)"),
        "y": _("Share of the deals won"),
        "snapshots": _("snapshots"),
        "predicted": _("predicted"),
        "observed": _("won"),
    }
    return chart, table


def _suggestions(
    model: WinModel, playbook: Playbook, values: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The stage probabilities history suggests, beside the playbook's current defaults (open
    stages of its current version, in order). `values`: what the admin typed (kept on error);
    by default a stage is ticked when the suggestion differs from its default."""
    suggested = model.parameters.get("suggested_stage_probabilities", {})
    rows = []
    for stage in playbook.ordered_stages():
        if stage.kind != StageKind.OPEN or stage.key not in suggested:
            continue
        item = suggested[stage.key]
        percent = suggested_percent(item["rate"])
        typed = (values or {}).get(stage.key)
        rows.append(
            {
                "stage": stage,
                "key": stage.key,
                "current": stage.probability,
                "reached": item["reached"],
                "won": item["won"],
                "suggested": percent,
                "checked": typed["checked"] if typed else percent != stage.probability,
                "value": typed["value"] if typed else str(percent),
            }
        )
    return rows


def _refit(model: WinModel) -> dict[str, Any] | None:
    """When the numbers in use were refitted on every deal closed by training time: when, and
    on how many deals."""
    refit = model.parameters.get("refit")
    if not refit:
        return None
    try:
        at = dt.datetime.fromisoformat(refit["at"])
    except (KeyError, TypeError, ValueError):
        return None
    return {"at": at, "deals": refit.get("deals")}


def _differences(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """How sure the comparison is: each pair's Brier difference on the later deals with its 90%
    interval from resampling the deals, and how often the first model came out better."""
    pairs = {
        "logistic_vs_stage_defaults": _("Per-deal model against the stage defaults"),
        "logistic_vs_stage_rates": _("Per-deal model against the learned stage rates"),
        "stage_rates_vs_stage_defaults": _("Learned stage rates against the stage defaults"),
    }
    found = summary.get("brier_differences") or {}
    rows = []
    for key, label in pairs.items():
        item = found.get(key)
        if not item or item.get("interval") is None:
            continue
        low, high = item["interval"]
        rows.append(
            {
                "key": key,
                "label": label,
                "difference": _signed4(item["difference"]),
                "low": _signed4(low),
                "high": _signed4(high),
                "better": f"{100 * item['better_share']:.0f}%",
                "resamples": item.get("resamples"),
                "sure": high < 0,
            }
        )
    return rows


def _signed4(value: float) -> str:
    return f"{value:+.4f}".replace("-", "−")


def _model_context(request: HttpRequest, query: ModelQuery) -> dict[str, Any]:
    """Everything the model page shows for the query's playbook."""
    model = win_model_active(query.playbook)
    context: dict[str, Any] = {
        "query": query,
        "playbooks": Playbook.objects.filter(is_current=True).order_by("key"),
        "model": model,
        "is_admin": _is_admin(request),
        "counts": _closed_counts(query.playbook),
        "minimums": {
            "closed": training.MIN_CLOSED,
            "each": training.MIN_EACH,
            "evaluation": training.MIN_EVALUATION,
            # The cutoff falls where this share of the closed deals had closed.
            "total": math.ceil(training.MIN_CLOSED / training.CUTOFF_SHARE),
        },
        "train": {},
        "accept": {"field_errors": {}},
    }
    if model is None:
        context["state"] = "none"
        return context
    summary = win_model_summary(model)
    chart, bins = _reliability(summary)
    method, reason = _calibration_words(model.parameters.get("calibration") or {})
    selection = summary.get("feature_selection") or {}
    leaks = summary.get("dropped_as_leaks") or {}
    words = FeatureWords(query.playbook, summary["features"])
    context.update(
        {
            "state": "offered" if model.offered else "not_offered",
            "reason": fallback_reason(model),
            "summary": summary,
            "used": _used_words(summary["used"]),
            "horizon": summary.get("horizon_days"),
            "censored": summary.get("censored_deals"),
            "calibration": {"method": method, "reason": reason},
            "features": [words(name) for name in summary["features"]],
            "dropped_leaks": [(words(name), auc) for name, auc in leaks.items()],
            "dropped_selection": [words(name) for name in selection.get("dropped") or []],
            "excluded": [words(name) for name in summary.get("excluded") or []],
            "comparison": _comparison(summary),
            "chart": chart,
            "bins": bins,
            "curve_names": [t["name"] for t in chart["traces"]],
            "suggestions": _suggestions(model, query.playbook),
            "training_lost": model.training_deals - model.training_won,
            "refit": _refit(model),
            "differences": _differences(summary),
        }
    )
    return context


@login_required
def model_page(request: HttpRequest) -> HttpResponse:
    """The win model of a playbook: what predictions use and why, the comparison of the models
    on the later deals, the reliability curve, and the stage probabilities history suggests."""
    return render(request, "web/learning/model.html", _model_context(request, _query(request)))


def _require_admin(request: HttpRequest) -> None:
    """Only an administrator trains a model or changes a playbook (the services check it too)."""
    if not _is_admin(request):
        raise PermissionDenied(_("Only an administrator may do this."))


def _page_url(playbook: Playbook) -> str:
    return reverse("web:analytics-model") + "?" + urlencode({"playbook": playbook.key})


@login_required
@require_post
def model_train(request: HttpRequest) -> HttpResponse:
    """Train the playbook's win model now (administrators). Too little history is said in the
    train box, the stage defaults staying in use."""
    _require_admin(request)
    query = _query(request, request.POST.get("playbook"))
    try:
        model = win_model_train(playbook=query.playbook, actor=acting_user(request))
    except LoudouError as error:
        if isinstance(error, PermissionDenied):
            raise
        context = _model_context(request, query)
        context["train"] = service_errors(error)
        template = "web/learning/_train.html" if request.htmx else "web/learning/model.html"  # type: ignore[attr-defined]
        return render(request, template, context, status=400)
    if model.offered:
        text = _("Win model trained: the learned per-deal model is offered.")
    else:
        text = _("Win model trained: the learned per-deal model is not offered (see why below).")
    messages.success(request, text)
    return htmx_redirect(request, _page_url(query.playbook))


def _typed_probabilities(
    request: HttpRequest, model: WinModel, playbook: Playbook
) -> tuple[dict[str, int], dict[str, dict[str, Any]], dict[str, str]]:
    """The ticked stages and their percents as typed: (probabilities, values kept for the
    form, errors per stage key)."""
    ticked = set(request.POST.getlist("accept"))
    probabilities: dict[str, int] = {}
    values: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    suggested = model.parameters.get("suggested_stage_probabilities", {})
    for stage in playbook.ordered_stages():
        if stage.kind != StageKind.OPEN or stage.key not in suggested:
            continue
        raw = (request.POST.get(f"probability_{stage.key}") or "").strip()
        values[stage.key] = {"checked": stage.key in ticked, "value": raw}
        if stage.key not in ticked:
            continue
        try:
            percent = int(raw)
        except ValueError:
            percent = -1
        if not 0 <= percent <= 100:
            errors[stage.key] = _("Enter a whole percent from 0 to 100.")
            continue
        probabilities[stage.key] = percent
    return probabilities, values, errors


@login_required
@require_post
def model_accept(request: HttpRequest) -> HttpResponse:
    """Accept the ticked suggested stage probabilities into the playbook (administrators): a new
    playbook version; refusals re-render the form with what was typed."""
    _require_admin(request)
    query = _query(request, request.POST.get("playbook"))
    model = win_model_active(query.playbook)
    if model is None:
        raise NotFound(_("No win model is trained for this playbook."))
    probabilities, values, errors = _typed_probabilities(request, model, query.playbook)
    problem: dict[str, Any] = {}
    if errors:
        problem = {"error": _("Some percents are not valid."), "field_errors": errors}
    elif not probabilities:
        problem = {"error": _("Tick at least one stage to accept its suggested probability.")}
    else:
        try:
            current = playbook_probabilities_accept(
                playbook=query.playbook,
                actor=acting_user(request),
                probabilities=probabilities,
            )
        except LoudouError as error:
            if isinstance(error, PermissionDenied):
                raise
            problem = service_errors(error)
            # The service names a stage's error "probabilities.<stage key>".
            problem["field_errors"] = {
                key.removeprefix("probabilities."): message
                for key, message in problem["field_errors"].items()
            }
    if problem:
        context = _model_context(request, query)
        context["accept"] = {"field_errors": {}, **problem}
        context["suggestions"] = _suggestions(model, query.playbook, values)
        return render(request, "web/learning/model.html", context, status=400)
    stages = {s.key: s for s in current.ordered_stages()}
    listed = ", ".join(
        f"{localized(stages[key], 'name') if key in stages else key} {percent}%"
        for key, percent in probabilities.items()
    )
    messages.success(
        request,
        _("Playbook %(name)s version %(version)s now uses these default probabilities: %(list)s.")
        % {"name": localized(current, "name"), "version": current.version, "list": listed},
    )
    return htmx_redirect(request, _page_url(current))


# --- the deal page --------------------------------------------------------------------------


def _signed(contribution: float) -> str:
    """A change in log-odds as "+1.08" or "−0.40" ("0.00" when it rounds to nothing)."""
    if round(contribution, 2) == 0:
        return "0.00"
    return f"{contribution:+.2f}".replace("-", "−")


def _direction(contribution: float) -> str:
    """The factor row's class: it raised the probability, lowered it, or hardly moved it."""
    if round(contribution, 2) == 0:
        return "flat"
    return "up" if contribution > 0 else "down"


@login_required
def deal_probability(request: HttpRequest, pk: int) -> HttpResponse:
    """The learned win probability of one deal with the factors that moved it, or the line that
    says only the stage default is used (loaded into the deal page by htmx). 404 for a deal the
    user may not see."""
    opp = opportunity_get(request.user, pk)
    model = win_model_active(opp.playbook)
    context: dict[str, Any] = {"opp": opp, "model": model, "explained": None}
    if model is not None and opp.status == Status.OPEN:
        explained = win_explain(request.user, pk)
        factors = explained["factors"]
        widest = max((abs(f["contribution"]) for f in factors), default=0) or 1
        explained["factors"] = [
            {
                **f,
                "width": round(100 * abs(f["contribution"]) / widest),
                "signed": _signed(f["contribution"]),
                "direction": _direction(f["contribution"]),
            }
            for f in factors
        ]
        explained["percent"] = _pct(explained["probability"])
        explained["default_percent"] = f"{round(100 * explained['stage_default'])}%"
        explained["source_words"] = {
            "logistic": _("learned per-deal model"),
            "stage_rates": _("learned stage rates"),
            "stage_defaults": _("stage defaults"),
        }.get(explained["source"], explained["source"])
        context["explained"] = explained
    return render(request, "web/learning/_deal_probability_panel.html", context)


urlpatterns = [
    path("analytics/model/", model_page, name="analytics-model"),
    path("analytics/model/train/", model_train, name="analytics-model-train"),
    path("analytics/model/accept/", model_accept, name="analytics-model-accept"),
    path(
        "opportunities/<int:pk>/win-probability/",
        deal_probability,
        name="opportunity-win-probability",
    ),
]
