"""numba kernels of the scoring bundle: raw scores and exact path-dependent TreeSHAP.

They take the flattened tree arrays of ``models.bundle.trees`` and the walk layout built from
them at load (``models.bundle.layout``), and follow LightGBM's rules to the bit
(``Tree::NumericalDecision`` in LightGBM's ``tree.h``):

* a value with ``|v| <= kZeroThreshold`` (1e-35 as a float) is zero — LightGBM's C API drops
  such values from a dense row, so they reach the trees as 0.0;
* NaN is 0.0 unless the split's missing type is NaN;
* missing type Zero sends zeros, missing type NaN sends NaNs, the ``default_left`` way;
* otherwise the row goes left when ``value <= threshold`` (ties go left).

``slot_values`` applies these rules once per row and split kind, so that every decision in
both kernels is a single comparison ``vals[slot] <= threshold``.

TreeSHAP works on each leaf's *merged path*: the distinct features met on the way from the
root, each with its zero fraction ``z`` (the share of training rows that follow the path at
that feature's splits, from LightGBM's node counts) and its one fraction (1 when the row
follows the path at all that feature's splits, else 0). With hot set H (the path's features
whose one fraction is 1), the Shapley value of a path feature i for leaf value v is

* cold i (not in H):  −v · Π_{j∉H} z_j · E(H)
* hot i (in H):       (1 − z_i) · v · Π_{j∉H} z_j · E(H \\ {i})

where E(T) = Σ_{S⊆T} |S|!(D−|S|−1)!/D! · Π_{j∈T\\S} z_j and D is the path's number of
distinct features. These are the path-dependent TreeSHAP values of Lundberg et al. (the sums
LightGBM's ``pred_contrib`` computes by extending and unwinding paths). Per leaf and row the
kernel finds the hot features from bit sets (the row's decisions in the tree against each
feature's precomputed path bits, ``element_masks``), builds the elementary symmetric
polynomials of the hot z (O(h²)) and removes each hot feature from them by a forward
recurrence (O(h) each), so a leaf costs O(D²) with no tables and no branch on the row's
decisions: FastTreeSHAP-v2 subset tables (2^D entries per leaf) were measured slower here, since
for hundreds of trees they do not fit in cache (docs/decisions/005-treeshap-without-tables.md).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

K_ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (``1e-35f`` widened to double)."""


@njit(cache=True)
def slot_values(x, slots, vals):
    """Writes into ``vals`` each slot's value of row ``x`` with LightGBM's missing-value rules
    applied (``models.bundle.layout``), and −inf into the leaves' slot (the last)."""
    n = slots.shape[0]
    for s in range(n):
        slot = slots[s]
        v = x[slot.feature]
        v = slot.zero if abs(v) <= K_ZERO_THRESHOLD else v
        vals[s] = slot.nan if np.isnan(v) else v
    vals[n] = -np.inf


@njit(cache=True)
def row_raw_score(x, nodes, lane_root, tree_lane, active, slots, vals, lane_node) -> float:
    """The raw score (log-odds) of one row: every tree walked a step at a time, deepest trees
    first (``models.bundle.layout``), then the leaves summed in tree order. ``vals`` and
    ``lane_node`` are scratch (one per slot plus one, one per tree)."""
    slot_values(x, slots, vals)
    for k in range(lane_root.shape[0]):
        lane_node[k] = lane_root[k]
    for step in range(active.shape[0]):
        for k in range(active[step]):
            node = nodes[lane_node[k]]
            lane_node[k] = node.first + np.uint32(not vals[node.slot] <= node.threshold)
    total = 0.0
    for t in range(tree_lane.shape[0]):
        total += nodes[lane_node[tree_lane[t]]].threshold
    return total


@njit(cache=True)
def raw_scores(X, out, nodes, lane_root, tree_lane, active, slots):
    """Writes the raw score of every row of ``X`` into ``out``, on the calling thread."""
    vals = np.empty(slots.shape[0] + 1)
    lane_node = np.empty(lane_root.shape[0], dtype=np.uint32)
    for i in range(X.shape[0]):
        out[i] = row_raw_score(X[i], nodes, lane_root, tree_lane, active, slots, vals, lane_node)


BLOCK_ROWS = 256
"""Rows per parallel task of ``raw_scores_parallel``."""


@njit(cache=True, parallel=True)
def raw_scores_parallel(X, out, nodes, lane_root, tree_lane, active, slots):
    """``raw_scores`` with blocks of rows in parallel over numba's threads."""
    n = X.shape[0]
    for block in prange((n + BLOCK_ROWS - 1) // BLOCK_ROWS):
        start = block * BLOCK_ROWS
        stop = min(start + BLOCK_ROWS, n)
        raw_scores(X[start:stop], out[start:stop], nodes, lane_root, tree_lane, active, slots)


def shapley_weights(max_features: int) -> np.ndarray:
    """``w[D, s] = s!(D−s−1)!/D!`` for paths of D ≤ ``max_features`` distinct features."""
    w = np.zeros((max_features + 1, max_features + 1))
    for d in range(1, max_features + 1):
        for s in range(d):
            w[d, s] = 1.0 / (d * math.comb(d - 1, s))
    return w


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
def element_masks(path_start, path_node, path_left, path_elem, elem_start, tree_node_start, tree_leaf_start, words):
    """Per merged path feature (element) of every leaf, which of its tree's internal nodes it
    splits on (``mask``, bit j = the tree's node j, in ``words`` 64-bit words) and which way the
    leaf lies at each (``side``, bit set = left): a row is hot on the element when its decisions
    agree with ``side`` on all of ``mask``."""
    n_elems = elem_start[elem_start.shape[0] - 1]
    mask = np.zeros((n_elems, words), dtype=np.uint64)
    side = np.zeros((n_elems, words), dtype=np.uint64)
    for t in range(tree_leaf_start.shape[0] - 1):
        first = tree_node_start[t]
        for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
            for p in range(path_start[leaf], path_start[leaf + 1]):
                j = path_node[p] - first
                bit = np.uint64(1) << np.uint64(j % 64)
                e = elem_start[leaf] + path_elem[p]
                mask[e, j // 64] |= bit
                if path_left[p]:
                    side[e, j // 64] |= bit
    return mask, side


TREE_PARTS = 8
"""A row's contributions are summed over this many consecutive runs of trees, each from zero,
then run after run: the numbers are the same whether a row's runs are computed on one thread
(``contributions``) or spread over several (``row_contributions``)."""


@njit(cache=True)
def part_contributions(x, out, part, tree_node_start, tree_leaf_start, node_slot, threshold, slots, leaf_value,
                       elem_start, elem_feature, elem_zero, elem_mask, elem_side, weights, max_elems):
    """Adds to ``out`` (n_features + 1) one row's TreeSHAP contributions from the trees of run
    ``part`` of ``TREE_PARTS``. Per tree the row's decisions are a bit set (a node's decision
    is its slot's value ≤ its threshold, ``models.bundle.layout``); an element is hot when they
    agree with its ``elem_side`` on its ``elem_mask`` (``element_masks``), which takes no
    branch. ``weights[D, s]`` is the Shapley weight s!(D−s−1)!/D!."""
    n_trees = tree_node_start.shape[0] - 1
    words = elem_mask.shape[1]
    vals = np.empty(slots.shape[0] + 1)
    slot_values(x, slots, vals)
    decision = np.empty(words, dtype=np.uint64)
    hot_zero = np.empty(max_elems)
    hot_elem = np.empty(max_elems, dtype=np.int64)
    cold_zero = np.empty(max_elems)
    cold_feature = np.empty(max_elems, dtype=np.int64)
    poly = np.empty(max_elems + 1)
    for t in range(part * n_trees // TREE_PARTS, (part + 1) * n_trees // TREE_PARTS):
        first = tree_node_start[t]
        decision[:] = 0
        for node in range(first, tree_node_start[t + 1]):
            j = node - first
            decision[j // 64] |= np.uint64(vals[node_slot[node]] <= threshold[node]) << np.uint64(j % 64)
        for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
            e0 = elem_start[leaf]
            d = elem_start[leaf + 1] - e0
            # split the path features into hot (z, element) and cold (z, feature): every entry is
            # written to both lists and only one list's length grows, so no branch depends on the row
            h = 0
            c = 0
            for e in range(e0, e0 + d):
                disagree = np.uint64(0)
                for w in range(words):
                    disagree |= (decision[w] ^ elem_side[e, w]) & elem_mask[e, w]
                is_hot = disagree == 0
                z = elem_zero[e]
                hot_zero[h] = z
                hot_elem[h] = e
                cold_zero[c] = z
                cold_feature[c] = elem_feature[e]
                h += is_hot
                c += not is_hot
            product = leaf_value[leaf]  # v·Π_cold z
            for k in range(c):
                product *= cold_zero[k]
            # e_m of the hot z
            poly[0] = 1.0
            for k in range(h):
                poly[k + 1] = 0.0
                zk = hot_zero[k]
                for m in range(k + 1, 0, -1):
                    poly[m] += zk * poly[m - 1]
            if c > 0:
                cold = 0.0
                for m in range(h + 1):
                    cold += poly[m] * weights[d, h - m]
                cold *= product
                for k in range(c):
                    out[cold_feature[k]] -= cold
            for k in range(h):
                # e_m of the hot set without k by the forward recurrence e'_m = e_m − z_k e'_{m−1}
                # (stable: z ≤ 1), then E(H \ {k})
                zk = hot_zero[k]
                previous = 1.0
                total = weights[d, h - 1]
                for m in range(1, h):
                    previous = poly[m] - zk * previous
                    total += previous * weights[d, h - 1 - m]
                out[elem_feature[hot_elem[k]]] += (1.0 - zk) * product * total


@njit(cache=True)
def sum_parts(parts, out, bias):
    """Writes into ``out`` the runs' contributions ``parts`` (TREE_PARTS, n_features + 1)
    summed in run order, plus the bias (the model's expected raw score) in the last place."""
    for k in range(out.shape[0]):
        total = 0.0
        for part in range(TREE_PARTS):
            total += parts[part, k]
        out[k] = total
    out[out.shape[0] - 1] += bias


@njit(cache=True, parallel=True)
def row_contributions(x, out, tree_node_start, tree_leaf_start, node_slot, threshold, slots, leaf_value, elem_start,
                      elem_feature, elem_zero, elem_mask, elem_side, weights, bias, max_elems):
    """Writes one row's TreeSHAP contributions into ``out`` (n_features + 1; the last is the
    bias), its runs of trees in parallel: a single row's explanation uses every thread."""
    parts = np.zeros((TREE_PARTS, out.shape[0]))
    for part in prange(TREE_PARTS):
        part_contributions(x, parts[part], part, tree_node_start, tree_leaf_start, node_slot, threshold, slots,
                           leaf_value, elem_start, elem_feature, elem_zero, elem_mask, elem_side, weights, max_elems)
    sum_parts(parts, out, bias)


@njit(cache=True, parallel=True)
def contributions(X, tree_node_start, tree_leaf_start, node_slot, threshold, slots, leaf_value, elem_start,
                  elem_feature, elem_zero, elem_mask, elem_side, weights, bias, max_elems):
    """TreeSHAP contributions of every row of ``X``: (n, n_features + 1), rows in parallel."""
    out = np.empty((X.shape[0], X.shape[1] + 1))
    for i in prange(X.shape[0]):
        parts = np.zeros((TREE_PARTS, X.shape[1] + 1))
        for part in range(TREE_PARTS):
            part_contributions(X[i], parts[part], part, tree_node_start, tree_leaf_start, node_slot, threshold, slots,
                               leaf_value, elem_start, elem_feature, elem_zero, elem_mask, elem_side, weights,
                               max_elems)
        sum_parts(parts, out[i], bias)
    return out
