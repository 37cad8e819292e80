"""Slow, obviously-correct references for the bundle's kernels, and tiny bundles built by
hand: what tests compare the numba scorer against besides LightGBM itself."""

from __future__ import annotations

import math
from itertools import combinations

import hypothesis.strategies as st
import numpy as np

from models.bundle.scoring import ScoringBundle
from models.bundle.trees import TREE_ARRAYS

K_ZERO = float(np.float32(1e-35))


def goes_left(value: float, threshold: float, missing_type: int, default_left: bool) -> bool:
    """LightGBM's NumericalDecision, written out: tiny values are zero, NaN is zero unless the
    missing type is NaN, the missing value follows default_left, else value <= threshold."""
    if not math.isnan(value) and abs(value) <= K_ZERO:
        value = 0.0
    if math.isnan(value) and missing_type != 2:
        value = 0.0
    if missing_type == 1 and value == 0.0:
        return default_left
    if missing_type == 2 and math.isnan(value):
        return default_left
    return value <= threshold


def _child(arrays: dict, node: int, left: bool) -> int:
    return int(arrays["left_child"][node] if left else arrays["right_child"][node])


def raw_score(arrays: dict, x: np.ndarray) -> float:
    """Sum over trees of the leaf the row reaches, walking node by node."""
    total = 0.0
    for root in arrays["tree_root"]:
        node = int(root)
        while node >= 0:
            f = int(arrays["split_feature"][node])
            node = _child(arrays, node, goes_left(float(x[f]), float(arrays["threshold"][node]),
                                                  int(arrays["missing_type"][node]), bool(arrays["default_left"][node])))
        total += float(arrays["leaf_value"][-node - 1])
    return total


def _count(arrays: dict, node: int) -> float:
    return float(arrays["internal_count"][node] if node >= 0 else arrays["leaf_count"][-node - 1])


def conditional_expectation(arrays: dict, node: int, x: np.ndarray, known: frozenset) -> float:
    """E[f(x) | x_S] of one tree, path-dependent: features in ``known`` follow the row, the
    others split the expectation by the training counts of the children (Lundberg's EXPVALUE)."""
    if node < 0:
        return float(arrays["leaf_value"][-node - 1])
    f = int(arrays["split_feature"][node])
    left, right = _child(arrays, node, True), _child(arrays, node, False)
    if f in known:
        left_taken = goes_left(float(x[f]), float(arrays["threshold"][node]), int(arrays["missing_type"][node]),
                               bool(arrays["default_left"][node]))
        return conditional_expectation(arrays, left if left_taken else right, x, known)
    return (_count(arrays, left) * conditional_expectation(arrays, left, x, known)
            + _count(arrays, right) * conditional_expectation(arrays, right, x, known)) / _count(arrays, node)


def shapley_contributions(arrays: dict, x: np.ndarray, n_features: int) -> np.ndarray:
    """Exact Shapley values of the path-dependent value function by enumerating every subset
    of the features the trees use (exponential: tiny trees only); last entry the bias."""
    out = np.zeros(n_features + 1)
    for root in arrays["tree_root"]:
        root = int(root)
        used = sorted({int(arrays["split_feature"][n]) for n in range(len(arrays["split_feature"]))})
        value = {}
        for size in range(len(used) + 1):
            for subset in combinations(used, size):
                value[frozenset(subset)] = conditional_expectation(arrays, root, x, frozenset(subset))
        m = len(used)
        for i in used:
            others = [f for f in used if f != i]
            for size in range(m):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                for subset in combinations(others, size):
                    s = frozenset(subset)
                    out[i] += weight * (value[s | {i}] - value[s])
        out[-1] += value[frozenset()]
    return out


def hand_bundle(arrays: dict, n_features: int, calibration: dict | None = None) -> ScoringBundle:
    """A bundle in memory around hand-made tree arrays (features f0, f1, … in group other)."""
    names = [f"f{j}" for j in range(n_features)]
    meta = {"entity": "village", "horizon_days": 30, "objective": {"kind": "binary", "sigmoid": 1.0},
            "features": [{"name": n, "group": "other", "unit": "ratio", "actionable": False} for n in names],
            "reason_templates": {n: {"zh": f"{n} 为 {{value}}", "en": f"{n} = {{value}}"} for n in names},
            "groups": {"other": {"zh": "其他", "en": "other"}},
            "calibration": calibration or {"method": "identity"},
            "level_thresholds": {"red": 0.3, "orange": 0.15, "yellow": 0.05}}
    return ScoringBundle(meta, arrays)


def random_tree(draw, n_features: int, max_depth: int, thresholds: list[float]) -> dict:
    """One random tree as bundle arrays, drawn with hypothesis's ``draw`` (``st.data().draw``)."""
    nodes = {k: [] for k in ("split_feature", "threshold", "missing_type", "default_left", "left_child",
                             "right_child", "internal_count")}
    leaf_value, leaf_count = [], []

    def grow(depth: int) -> tuple[int, float]:
        if depth == max_depth or (depth > 0 and draw(st.booleans())):
            leaf_value.append(draw(st.floats(-2, 2, allow_nan=False)))
            leaf_count.append(float(draw(st.integers(1, 50))))
            return -len(leaf_value), leaf_count[-1]
        index = len(nodes["split_feature"])
        nodes["split_feature"].append(draw(st.integers(0, n_features - 1)))
        nodes["threshold"].append(draw(st.sampled_from(thresholds)))
        nodes["missing_type"].append(draw(st.integers(0, 2)))
        nodes["default_left"].append(draw(st.booleans()))
        for key in ("left_child", "right_child", "internal_count"):
            nodes[key].append(0)
        left, n_left = grow(depth + 1)
        right, n_right = grow(depth + 1)
        nodes["left_child"][index], nodes["right_child"][index] = left, right
        nodes["internal_count"][index] = n_left + n_right
        return index, n_left + n_right

    root, _ = grow(0)
    arrays = {"tree_root": [root], "tree_node_start": [0, len(nodes["split_feature"])],
              "tree_leaf_start": [0, len(leaf_value)], **nodes, "leaf_value": leaf_value, "leaf_count": leaf_count}
    return {k: np.asarray(arrays[k], dtype=dtype) for k, (dtype, _) in TREE_ARRAYS.items()}


def random_forest(draw, n_features: int, n_trees: int, max_depth: int, thresholds: list[float]) -> dict:
    """Several ``random_tree`` trees of random depths (a lone leaf among them) as one bundle's
    arrays: nodes and leaves numbered tree by tree, children shifted accordingly."""
    trees = [random_tree(draw, n_features, draw(st.integers(0, max_depth)), thresholds) for _ in range(n_trees)]
    out: dict[str, list] = {k: [] for k in TREE_ARRAYS}
    out["tree_node_start"], out["tree_leaf_start"] = [0], [0]
    for tree in trees:
        nodes, leaves = out["tree_node_start"][-1], out["tree_leaf_start"][-1]
        for key in ("tree_root", "left_child", "right_child"):
            out[key] += np.where(tree[key] >= 0, tree[key] + nodes, tree[key] - leaves).tolist()
        for key in ("split_feature", "threshold", "missing_type", "default_left", "internal_count", "leaf_value",
                    "leaf_count"):
            out[key] += tree[key].tolist()
        out["tree_node_start"].append(nodes + len(tree["split_feature"]))
        out["tree_leaf_start"].append(leaves + len(tree["leaf_value"]))
    return {k: np.asarray(out[k], dtype=dtype) for k, (dtype, _) in TREE_ARRAYS.items()}
