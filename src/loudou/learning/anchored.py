"""A logistic regression anchored on the learned stage rates.

The per-deal model does not start from nothing: its log-odds are those of the deal's learned
stage rate (company → branch → owner, `evaluation.StageRates`) plus what the deal's own features
add or take away:

    logit p = logit(stage rate) + b + Σ w_j · (x_j − mean_j) / scale_j

`b` and `w` are fitted by penalised maximum likelihood, the penalty pulling both towards zero, so
a strongly regularised model *is* the stage rates and a feature moves a deal only as far as the
fit part's evidence carries it. The strength is chosen on the calibration window (later deals)
among `C_GRID`, with C = 0 (the stage rates themselves) among the candidates: the anchored
model never does worse on the window than the rates it starts from. This is what the plain
regression lacked: on data where the deal's own features say little (the Maven CRM file), its
fitted intercept followed the fit part's base rate and over-predicted later deals.

The first column of X is the anchor (the stage rate's log-odds: an offset, not scaled, with a
fixed coefficient of 1); the class follows scikit-learn's estimator protocol, so the calibration
maps (`CalibratedClassifierCV(FrozenEstimator(model))`) work on it unchanged.
"""

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin

#: The regularisation strengths tried (scikit-learn's C: the weight of the data's log loss
#: against ½‖w‖²); 0 keeps w = b = 0, the stage rates themselves.
C_GRID = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Newton's method stops when no weight moves more than this, or after this many steps.
NEWTON_TOLERANCE = 1e-9
NEWTON_ITERATIONS = 100
#: The name the anchor column has among a model's features.
ANCHOR = "stage_rate"


def logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


class AnchoredLogistic(ClassifierMixin, BaseEstimator):
    """Logistic regression with the first column of X as an offset (see the module's doc)."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AnchoredLogistic":
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.classes_ = np.array([0.0, 1.0])
        offset, rest = X[:, 0], X[:, 1:]
        self.mean_ = rest.mean(axis=0) if len(rest) else np.zeros(rest.shape[1])
        scale = rest.std(axis=0) if len(rest) else np.ones(rest.shape[1])
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = np.hstack([np.ones((len(rest), 1)), (rest - self.mean_) / self.scale_])
        weights = np.zeros(z.shape[1])
        if self.C > 0:
            weights = self._newton(offset, z, y)
        self.intercept_ = np.array([float(weights[0])])
        self.coef_ = np.array([weights[1:]])
        return self

    def _newton(self, offset: np.ndarray, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Minimise C·Σ log loss + ½‖w‖² by Newton's method with step halving: the objective
        is strictly convex, and with ~20 inputs a Newton step (one small linear solve) is far
        cheaper than the hundreds of gradient steps a quasi-Newton solver takes."""

        def objective(w: np.ndarray) -> float:
            t = offset + z @ w
            return self.C * float(np.sum(np.logaddexp(0.0, t) - y * t)) + 0.5 * float(w @ w)

        w = np.zeros(z.shape[1])
        value = objective(w)
        for _iteration in range(NEWTON_ITERATIONS):
            p = expit(offset + z @ w)
            gradient = self.C * (z.T @ (p - y)) + w
            hessian = self.C * (z.T @ (z * (p * (1.0 - p))[:, None])) + np.eye(len(w))
            step = np.linalg.solve(hessian, gradient)
            size = 1.0
            while size > 1e-6:
                candidate = w - size * step
                candidate_value = objective(candidate)
                if candidate_value <= value:
                    break
                size /= 2.0
            else:
                break  # no step lowers the objective: at the minimum to rounding
            w, improvement, value = candidate, value - candidate_value, candidate_value
            if float(np.max(np.abs(size * step))) < NEWTON_TOLERANCE or improvement < 1e-12:
                break
        return w

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return (
            X[:, 0] + self.intercept_[0] + ((X[:, 1:] - self.mean_) / self.scale_) @ self.coef_[0]
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(float)

    def stored(self) -> dict[str, Any]:
        """The numbers `training.raw_logit` applies: the anchor as a column with mean 0, scale 1
        and coefficient 1, then the features."""
        return {
            "coefficients": [1.0, *self.coef_[0].tolist()],
            "intercept": float(self.intercept_[0]),
            "mean": [0.0, *self.mean_.tolist()],
            "scale": [1.0, *self.scale_.tolist()],
        }
