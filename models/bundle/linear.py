"""A bundle's optional linear part: a logistic regression blended with the trees in log-odds.

A blended bundle (``bundle.json`` field ``linear``, arrays ``linear_fill``, ``linear_center``
and ``linear_coef`` in ``trees.npz``, one entry per feature) scores

    raw = tree_weight · Σ trees + Σ_j coef_j · (t_j − center_j) + intercept,
    t_j = sign(x_j) · log(1 + |x_j|), NaN → fill_j,

with ``coef`` and ``intercept`` already weighted by the linear part's share. Each feature's
term is its exact Shapley value (centred on the training rows' mean), so a row's
contributions are the trees' TreeSHAP values times ``tree_weight`` plus these terms, and its
bias the trees' expectation times ``tree_weight`` plus ``intercept``: they still add up to the
raw score.
"""

from __future__ import annotations

import math

from numba import njit

LINEAR_ARRAYS: dict[str, tuple[str, str]] = {name: ("float64", "features")
                                             for name in ("linear_fill", "linear_center", "linear_coef")}
"""The linear part's arrays in ``trees.npz``: dtype and length (one entry per feature), as
``models.bundle.trees.TREE_ARRAYS``."""
TRANSFORM = "signed_log1p"
"""The one transform of the features the linear part knows (``bundle.json`` field ``linear.transform``)."""


@njit(cache=True)
def _term(v, fill, center, coef):
    t = fill if math.isnan(v) else math.copysign(math.log1p(abs(v)), v)
    return coef * (t - center)


@njit(cache=True)
def blend_scores(X, out, tree_weight, fill, center, coef, intercept):
    """Turns the trees' raw scores in ``out`` into the blend's, for the rows of ``X``."""
    for i in range(X.shape[0]):
        total = 0.0
        for j in range(X.shape[1]):
            total += _term(X[i, j], fill[j], center[j], coef[j])
        out[i] = tree_weight * out[i] + total + intercept


@njit(cache=True)
def blend_contributions(X, out, tree_weight, fill, center, coef, intercept):
    """Turns the trees' contributions in ``out`` (n, features + 1; the last the bias) into the
    blend's."""
    features = X.shape[1]
    for i in range(X.shape[0]):
        for j in range(features):
            out[i, j] = tree_weight * out[i, j] + _term(X[i, j], fill[j], center[j], coef[j])
        out[i, features] = tree_weight * out[i, features] + intercept
