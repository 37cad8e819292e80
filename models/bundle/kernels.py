"""numba kernels of the scoring bundle: raw scores and exact path-dependent TreeSHAP.

They take the flattened tree arrays of ``models.bundle.trees`` and nothing else, and follow
LightGBM's rules to the bit (``Tree::NumericalDecision`` in LightGBM's ``tree.h``):

* a value with ``|v| <= kZeroThreshold`` (1e-35 as a float) is zero — LightGBM's C API drops
  such values from a dense row, so they reach the trees as 0.0;
* NaN is 0.0 unless the split's missing type is NaN;
* missing type Zero sends zeros, missing type NaN sends NaNs, the ``default_left`` way;
* otherwise the row goes left when ``value <= threshold`` (ties go left).

TreeSHAP works on each leaf's *merged path*: the distinct features met on the way from the
root, each with its zero fraction ``z`` (the share of training rows that follow the path at
that feature's splits, from LightGBM's node counts) and its one fraction (1 when the row
follows the path at all that feature's splits, else 0). With hot set H (the path's features
whose one fraction is 1), the Shapley value of a path feature i for leaf value v is

* cold i (not in H):  −v · Π_{j∉H} z_j · E(H)
* hot i (in H):       (1 − z_i) · v · Π_{j∉H} z_j · E(H \\ {i})

where E(T) = Σ_{S⊆T} |S|!(D−|S|−1)!/D! · Π_{j∈T\\S} z_j and D is the path's number of
distinct features. These are the path-dependent TreeSHAP values of Lundberg et al. (the sums
LightGBM's ``pred_contrib`` computes by extending and unwinding paths). Where a leaf's D is
small, ``Π_{j∉H} z_j · v`` and ``E(H)`` are tabulated for every subset H once, at load (the
precomputation of FastTreeSHAP v2), so that a row costs O(depth) per leaf; deeper leaves are
computed directly.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

K_ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (``1e-35f`` widened to double)."""
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
"""LightGBM's missing types, as stored in ``missing_type``."""


@njit(cache=True, inline="always")
def goes_left(value: float, threshold: float, missing_type: int, default_left: bool) -> bool:
    """Whether LightGBM sends ``value`` to the left child of a numerical split."""
    if -K_ZERO_THRESHOLD <= value <= K_ZERO_THRESHOLD:
        value = 0.0
    is_nan = np.isnan(value)
    if is_nan and missing_type != MISSING_NAN:
        value = 0.0
        is_nan = False
    if (missing_type == MISSING_ZERO and value == 0.0) or (missing_type == MISSING_NAN and is_nan):
        return default_left
    return value <= threshold


@njit(cache=True)
def row_raw_score(x, tree_root, split_feature, threshold, missing_type, default_left, left_child, right_child,
                  leaf_value) -> float:
    """The raw score (log-odds) of one row: the sum, tree by tree, of the leaf it reaches.
    Children ``< 0`` are leaves ``-(child + 1)``."""
    total = 0.0
    for t in range(tree_root.shape[0]):
        node = tree_root[t]
        while node >= 0:
            if goes_left(x[split_feature[node]], threshold[node], missing_type[node], default_left[node]):
                node = left_child[node]
            else:
                node = right_child[node]
        total += leaf_value[-node - 1]
    return total


@njit(cache=True, parallel=True)
def raw_scores(X, tree_root, split_feature, threshold, missing_type, default_left, left_child, right_child,
               leaf_value):
    """Raw scores of every row of ``X`` (rows in parallel over numba's threads)."""
    out = np.empty(X.shape[0])
    for i in prange(X.shape[0]):
        out[i] = row_raw_score(X[i], tree_root, split_feature, threshold, missing_type, default_left, left_child,
                               right_child, leaf_value)
    return out


@njit(cache=True)
def subset_weight(z, hot, depth, skip) -> float:
    """E(T) = Σ_{S⊆T} |S|!(D−|S|−1)!/D! · Π_{j∈T\\S} z_j for T = the path features flagged in
    ``hot`` except ``skip`` (−1: none), and D = ``depth``: the elementary symmetric
    polynomials e_m of the members' z, weighted by the Shapley weight of the |T| − m members
    in S."""
    e = np.zeros(depth + 1)
    e[0] = 1.0
    n_members = 0
    for k in range(depth):
        if hot[k] and k != skip:
            n_members += 1
            for m in range(n_members, 0, -1):
                e[m] += z[k] * e[m - 1]
    total = 0.0
    for m in range(max(n_members - depth + 1, 0), n_members + 1):  # |S| ≤ D − 1: E of the whole path is never used
        total += e[m] * shapley_weight(n_members - m, depth)
    return total


@njit(cache=True, inline="always")
def shapley_weight(s: int, depth: int) -> float:
    """|S|!(D−|S|−1)!/D! = 1 / (D · C(D−1, |S|))."""
    comb = 1.0
    for k in range(s):
        comb = comb * (depth - 1 - k) / (k + 1)
    return 1.0 / (depth * comb)


@njit(cache=True)
def leaf_paths(split_feature, left_child, right_child, internal_count, leaf_count, n_leaves):
    """Each leaf's path (node, whether the leaf lies left of it, the path feature it belongs to)
    and merged path features (feature, zero fraction), as CSR arrays over the leaves."""
    n_nodes = split_feature.shape[0]
    path_start = np.zeros(n_leaves + 1, dtype=np.int64)
    elem_start = np.zeros(n_leaves + 1, dtype=np.int64)
    # parents, to walk from each leaf up to its root
    node_parent = np.full(n_nodes, -1, dtype=np.int64)
    leaf_parent = np.full(n_leaves, -1, dtype=np.int64)
    leaf_is_left = np.zeros(n_leaves, dtype=np.bool_)
    node_is_left = np.zeros(n_nodes, dtype=np.bool_)
    for node in range(n_nodes):
        for side in range(2):
            child = left_child[node] if side == 0 else right_child[node]
            if child >= 0:
                node_parent[child] = node
                node_is_left[child] = side == 0
            else:
                leaf_parent[-child - 1] = node
                leaf_is_left[-child - 1] = side == 0
    depth = np.zeros(n_leaves, dtype=np.int64)
    for leaf in range(n_leaves):
        d = 0
        node = leaf_parent[leaf]
        while node >= 0:
            d += 1
            node = node_parent[node]
        depth[leaf] = d
    path_start[1:] = np.cumsum(depth)
    path_node = np.empty(path_start[-1], dtype=np.int64)
    path_left = np.empty(path_start[-1], dtype=np.bool_)
    path_elem = np.empty(path_start[-1], dtype=np.int64)
    elem_feature = np.empty(path_start[-1], dtype=np.int64)
    elem_zero = np.empty(path_start[-1])
    n_elems = 0
    for leaf in range(n_leaves):
        # root-first order of the path's nodes
        d = depth[leaf]
        base = path_start[leaf]
        node = leaf_parent[leaf]
        is_left = leaf_is_left[leaf]
        count_below = leaf_count[leaf]
        fractions = np.empty(d)
        for k in range(d - 1, -1, -1):
            path_node[base + k] = node
            path_left[base + k] = is_left
            fractions[k] = count_below / internal_count[node]
            count_below = internal_count[node]
            is_left = node_is_left[node]
            node = node_parent[node]
        elem_start[leaf] = n_elems
        for k in range(d):
            feature = split_feature[path_node[base + k]]
            found = -1
            for e in range(elem_start[leaf], n_elems):
                if elem_feature[e] == feature:
                    found = e
            if found < 0:
                found = n_elems
                elem_feature[found] = feature
                elem_zero[found] = 1.0
                n_elems += 1
            elem_zero[found] *= fractions[k]
            path_elem[base + k] = found - elem_start[leaf]
    elem_start[n_leaves] = n_elems
    return path_start, path_node, path_left, path_elem, elem_start, elem_feature[:n_elems].copy(), elem_zero[:n_elems].copy()


@njit(cache=True)
def subset_tables(elem_start, elem_zero, leaf_value, max_table_features):
    """The FastTreeSHAP-v2 tables of the leaves with at most ``max_table_features`` path
    features: for every subset H (a bit mask over the path features), ``v · Π_{j∉H} z_j`` and
    ``E(H)``. Returns each leaf's table offset (−1: no table) and the two tables."""
    n_leaves = leaf_value.shape[0]
    table_start = np.full(n_leaves, -1, dtype=np.int64)
    size = 0
    for leaf in range(n_leaves):
        d = elem_start[leaf + 1] - elem_start[leaf]
        if d <= max_table_features:
            table_start[leaf] = size
            size += 1 << d
    cold_product = np.empty(size)
    weight = np.empty(size)
    for leaf in range(n_leaves):
        if table_start[leaf] < 0:
            continue
        d = elem_start[leaf + 1] - elem_start[leaf]
        z = elem_zero[elem_start[leaf]:elem_start[leaf + 1]]
        hot = np.empty(d, dtype=np.bool_)
        for mask in range(1 << d):
            product = leaf_value[leaf]
            for e in range(d):
                hot[e] = mask >> e & 1
                if not hot[e]:
                    product *= z[e]
            cold_product[table_start[leaf] + mask] = product
            weight[table_start[leaf] + mask] = subset_weight(z, hot, d, -1)
    return table_start, cold_product, weight


@njit(cache=True)
def row_contributions(x, out, tree_root, tree_node_start, tree_leaf_start, split_feature, threshold, missing_type,
                      default_left, leaf_value, path_start, path_node, path_left, path_elem, elem_start, elem_feature,
                      elem_zero, table_start, cold_product, weight, bias, max_nodes, max_elems):
    """Adds one row's TreeSHAP contributions to ``out`` (n_features + 1; the last is the bias,
    the model's expected raw score)."""
    n_trees = tree_root.shape[0]
    decision = np.empty(max_nodes, dtype=np.bool_)
    hot = np.empty(max_elems, dtype=np.bool_)
    for t in range(n_trees):
        first = tree_node_start[t]
        for node in range(first, tree_node_start[t + 1]):
            decision[node - first] = goes_left(x[split_feature[node]], threshold[node], missing_type[node],
                                               default_left[node])
        for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
            e0 = elem_start[leaf]
            d = elem_start[leaf + 1] - e0
            if d == 0:
                continue
            for e in range(d):
                hot[e] = True
            for p in range(path_start[leaf], path_start[leaf + 1]):
                if decision[path_node[p] - first] != path_left[p]:
                    hot[path_elem[p]] = False
            if table_start[leaf] >= 0:
                mask = 0
                for e in range(d):
                    if hot[e]:
                        mask |= 1 << e
                base = table_start[leaf]
                product = cold_product[base + mask]
                cold = product * weight[base + mask]
                for e in range(d):
                    if hot[e]:
                        out[elem_feature[e0 + e]] += (1.0 - elem_zero[e0 + e]) * product * weight[base + (mask ^ (1 << e))]
                    else:
                        out[elem_feature[e0 + e]] -= cold
            else:
                z = elem_zero[e0:e0 + d]
                product = leaf_value[leaf]
                for e in range(d):
                    if not hot[e]:
                        product *= z[e]
                cold = product * subset_weight(z, hot, d, -1)
                for e in range(d):
                    if hot[e]:
                        out[elem_feature[e0 + e]] += (1.0 - z[e]) * product * subset_weight(z, hot, d, e)
                    else:
                        out[elem_feature[e0 + e]] -= cold
    out[out.shape[0] - 1] += bias


@njit(cache=True, parallel=True)
def contributions(X, tree_root, tree_node_start, tree_leaf_start, split_feature, threshold, missing_type,
                  default_left, leaf_value, path_start, path_node, path_left, path_elem, elem_start, elem_feature,
                  elem_zero, table_start, cold_product, weight, bias, max_nodes, max_elems):
    """TreeSHAP contributions of every row of ``X``: (n, n_features + 1), rows in parallel."""
    out = np.zeros((X.shape[0], X.shape[1] + 1))
    for i in prange(X.shape[0]):
        row_contributions(X[i], out[i], tree_root, tree_node_start, tree_leaf_start, split_feature, threshold,
                          missing_type, default_left, leaf_value, path_start, path_node, path_left, path_elem,
                          elem_start, elem_feature, elem_zero, table_start, cold_product, weight, bias, max_nodes,
                          max_elems)
    return out
