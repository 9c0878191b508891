"""Scores of probability forecasts, and the alternatives a learned model is compared with.

Every model is scored on the same evaluation snapshots: Brier score (mean squared error of the
probability; lower is better; always 0.25 for a coin), log loss (lower is better), AUC (how well
the probabilities rank won above lost; 0.5 is chance) and a reliability curve (10 equal bins of
predicted probability: mean predicted, share won, snapshots) that shows calibration.

The alternatives:
- `stage_defaults`: the playbook's default probability of the deal's stage at the snapshot;
- `StageRates`: per stage, the share of the training deals that reached it and were won, shrunk
  from the company to the branch to the person (Beta-binomial with a prior strength estimated
  by the method of moments: empirical Bayes);
- `NaiveBayes`: Odoo's predictive lead scoring, rebuilt: a naive Bayes over categorical fields
  trained on closed deals with their *final* values (Odoo's stage rule: a lost deal counts in its
  last stage and the earlier ones, a won deal in every stage), +0.1 smoothing. It has no notion
  of time: the flaw the comparison shows.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from loudou.learning import anchored
from loudou.learning.features import Deal, History, Snapshot
from loudou.pipeline.models import Status

EPS = 1e-6
BINS = 10


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def auc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a random won snapshot scores above a random lost one
    (ties count a half), from the ranks (Mann–Whitney). None without both outcomes."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    # Average ranks of ties.
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """Per bin of predicted probability [k/10, (k+1)/10): snapshots, mean predicted, share won."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for k in range(bins):
        mask = index == k
        n = int(mask.sum())
        rows.append(
            {
                "bin": f"{k / bins:.1f}–{(k + 1) / bins:.1f}",
                "count": n,
                "predicted": round(float(p[mask].mean()), 4) if n else None,
                "observed": round(float(y[mask].mean()), 4) if n else None,
            }
        )
    return rows


def scores(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    area = auc(p, y)
    return {
        "brier": round(brier(p, y), 5),
        "log_loss": round(log_loss(p, y), 5),
        "auc": None if area is None else round(area, 5),
        "reliability": reliability(p, y),
    }


#: Resamples of the paired bootstrap, and its seed (the intervals are reproducible).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261127


def brier_difference(
    p: np.ndarray, baseline: np.ndarray, y: np.ndarray, deals: np.ndarray
) -> dict[str, Any]:
    """Brier(p) − Brier(baseline) on the same snapshots (negative: p is better), with a 90 %
    interval from a paired bootstrap that resamples *deals*, not snapshots: the snapshots of one
    deal share its outcome, and resampling them one by one would make the interval too narrow.
    `better_share`: the share of resamples in which p scored lower."""
    ids, index = np.unique(deals, return_inverse=True)
    loss = (p - y) ** 2 - (baseline - y) ** 2
    per_deal = np.bincount(index, weights=loss, minlength=len(ids))
    snaps = np.bincount(index, minlength=len(ids)).astype(float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = np.empty(BOOTSTRAP_RESAMPLES)
    # Each resample's difference: the summed loss of the deals drawn over their snapshots;
    # drawn in blocks so memory stays ~10 MB whatever the number of deals.
    block = max(1, 1_000_000 // max(len(ids), 1))
    for start in range(0, BOOTSTRAP_RESAMPLES, block):
        stop = min(start + block, BOOTSTRAP_RESAMPLES)
        draws = rng.integers(0, len(ids), size=(stop - start, len(ids)))
        resampled[start:stop] = per_deal[draws].sum(axis=1) / snaps[draws].sum(axis=1)
    low, high = np.quantile(resampled, [0.05, 0.95])
    return {
        "difference": round(float(loss.mean()), 5),
        "interval": [round(float(low), 5), round(float(high), 5)],
        "better_share": round(float((resampled < 0).mean()), 3),
        "deals": len(ids),
        "resamples": BOOTSTRAP_RESAMPLES,
    }


def stage_defaults(history: History, snapshots: list[Snapshot]) -> np.ndarray:
    return np.array([history.stage_default.get(s.stage, 0.0) for s in snapshots])


def prior_strength(wins: Sequence[int], totals: Sequence[int]) -> float:
    """Empirical Bayes: the Beta prior strength m (in deals) that makes the groups' rates vary as
    much as they do beyond binomial noise (method of moments), between 2 and 500."""
    n = np.array(totals, dtype=float)
    w = np.array(wins, dtype=float)
    keep = n > 0
    if keep.sum() < 2:
        return 20.0
    n, w = n[keep], w[keep]
    p = w.sum() / n.sum()
    rates = w / n
    observed = np.average((rates - p) ** 2, weights=n)
    noise = p * (1 - p) * np.mean(1 / n)
    between = observed - noise
    if between <= 0 or p in (0.0, 1.0):
        return 500.0
    return float(np.clip(p * (1 - p) / between - 1, 2.0, 500.0))


class StageRates:
    """Win rate of the deals that reached each stage, company → branch → person (shrunk)."""

    def __init__(self, history: History, deals: list[Deal]) -> None:
        order = history.stage_order
        self.company: dict[str, tuple[int, int]] = {}
        # Keyed (stage, id); a stored model's tables may also hold the id None (`from_json`).
        by_branch: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0])
        by_owner: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0])
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for deal in deals:
            won = deal.status == Status.WON
            furthest = max(order.get(span[0], 0) for span in deal.spans)
            owner = deal.spans[-1][2]
            for stage in history.open_stages:
                if won or order[stage] <= furthest:  # reached (a won deal reached every stage)
                    for table, key in (
                        (totals, stage),
                        (by_branch, (stage, deal.branch_id)),
                        (by_owner, (stage, owner)),
                    ):
                        table[key][0] += won  # type: ignore[index]
                        table[key][1] += 1  # type: ignore[index]
        self.totals, self.by_branch, self.by_owner = totals, by_branch, by_owner
        self.m_branch = prior_strength(*zip(*by_branch.values(), strict=True)) if by_branch else 20
        self.m_owner = prior_strength(*zip(*by_owner.values(), strict=True)) if by_owner else 20

    def company_rate(self, stage: str) -> float:
        won, total = self.totals.get(stage, (0, 0))
        return (won + 1.0) / (total + 2.0)

    def rate(
        self, stage: str, branch_id: int, owner_id: int, leave_out: bool | None = None
    ) -> float:
        """The shrunk rate; `leave_out` (the deal's outcome) takes one counted deal out of
        every level first, so a deal of the fit part is never scored by its own outcome."""
        out = (int(leave_out), 1) if leave_out is not None else (0, 0)

        def less(counts: Sequence[int]) -> tuple[int, int]:
            # Clamped: a deal reassigned since is counted under its last owner, not this one.
            return max(counts[0] - out[0], 0), max(counts[1] - out[1], 0)

        won, total = less(self.totals.get(stage, (0, 0)))
        p = (won + 1.0) / (total + 2.0)
        won, total = less(self.by_branch.get((stage, branch_id), (0, 0)))
        p = (won + self.m_branch * p) / (total + self.m_branch)
        won, total = less(self.by_owner.get((stage, owner_id), (0, 0)))
        return (won + self.m_owner * p) / (total + self.m_owner)

    def predict(self, snapshots: list[Snapshot]) -> np.ndarray:
        return np.array([self.rate(s.stage, s.branch_id, s.owner_id) for s in snapshots])

    def anchor(self, snapshots: list[Snapshot], counted: dict[int, bool]) -> np.ndarray:
        """The log-odds of each snapshot's stage rate, its own deal left out when the deal is
        among those counted (`counted`: id → won), for `anchored.AnchoredLogistic`."""
        return anchored.logit(
            np.array(
                [
                    self.rate(s.stage, s.branch_id, s.owner_id, counted.get(s.opportunity_id))
                    for s in snapshots
                ]
            )
        )

    def to_json(self) -> dict[str, Any]:
        """The counts and prior strengths as plain JSON (keys "stage|id"), for `from_json`."""
        return {
            "company": {k: list(v) for k, v in self.totals.items()},
            "branch": {f"{k[0]}|{k[1]}": list(v) for k, v in self.by_branch.items()},
            "owner": {f"{k[0]}|{k[1]}": list(v) for k, v in self.by_owner.items()},
            "m_branch": self.m_branch,
            "m_owner": self.m_owner,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StageRates":
        """The stage rates stored with a model (predictions when the model falls back to them)."""
        rates = cls.__new__(cls)

        def keyed(table: dict[str, list[int]]) -> dict[tuple[str, int | None], list[int]]:
            out: dict[tuple[str, int | None], list[int]] = {}
            for key, value in table.items():
                stage, _sep, ident = key.rpartition("|")
                out[(stage, None if ident == "None" else int(ident))] = value
            return out

        rates.totals = dict(data["company"])
        rates.by_branch = keyed(data["branch"])
        rates.by_owner = keyed(data["owner"])
        rates.m_branch, rates.m_owner = data["m_branch"], data["m_owner"]
        return rates

    def suggested(self) -> dict[str, dict[str, Any]]:
        """Per stage: deals that reached it, won, and the company rate (the suggested default
        probability of a later increment)."""
        return {
            stage: {"reached": total, "won": won, "rate": round((won + 1.0) / (total + 2.0), 4)}
            for stage, (won, total) in self.totals.items()
        }


class NaiveBayes:
    """Odoo-style predictive lead scoring over stage, industry, size band, owner and branch,
    trained on closed deals with their final values."""

    FIELDS = ("stage", "industry", "size_band", "owner", "branch")
    SMOOTHING = 0.1

    def __init__(self, history: History, deals: list[Deal]) -> None:
        order = history.stage_order
        self.counts: dict[str, dict[Any, list[float]]] = {
            name: defaultdict(lambda: [0.0, 0.0]) for name in self.FIELDS
        }
        self.won = sum(d.status == Status.WON for d in deals)
        self.lost = len(deals) - self.won
        for deal in deals:
            won = deal.status == Status.WON
            final_stage = deal.spans[-1][0]
            for stage in history.open_stages:
                if won or order[stage] <= order.get(final_stage, 0):
                    self.counts["stage"][stage][0 if won else 1] += 1
            for name, value in (
                ("industry", deal.industry or "-"),
                ("size_band", deal.size_band or "-"),
                ("owner", deal.spans[-1][2]),
                ("branch", deal.branch_id),
            ):
                self.counts[name][value][0 if won else 1] += 1

    def predict(self, snapshots: list[Snapshot]) -> np.ndarray:
        total = self.won + self.lost
        out = []
        for s in snapshots:
            log_won = np.log(max(self.won, 1) / total)
            log_lost = np.log(max(self.lost, 1) / total)
            values = {
                "stage": s.stage,
                "industry": s.industry,
                "size_band": s.size_band,
                "owner": s.owner_id,
                "branch": s.branch_id,
            }
            for name, value in values.items():
                won, lost = self.counts[name].get(value, (0.0, 0.0))
                log_won += np.log((won + self.SMOOTHING) / (self.won + self.SMOOTHING))
                log_lost += np.log((lost + self.SMOOTHING) / (self.lost + self.SMOOTHING))
            out.append(1.0 / (1.0 + np.exp(log_lost - log_won)))
        return np.array(out)
