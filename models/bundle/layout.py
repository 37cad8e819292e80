"""The in-memory layout the scoring kernels walk, built from a bundle's tree arrays at load.

The bundle stores trees as LightGBM has them (``models.bundle.trees``); walking them as such
costs a branchy missing-value test and a mispredicted jump at every node. At load the trees
are rearranged so that a step costs one comparison and no branch:

* **Slots.** Each distinct (feature, missing type, default direction) of the splits is a slot.
  Per row, ``kernels.slot_values`` writes each slot's value once, with LightGBM's
  missing-value rules already applied: a value the split treats as missing becomes −inf where
  it goes left (−inf ≤ every threshold) and NaN where it goes right (NaN ≤ nothing); other
  values become what LightGBM compares (|v| ≤ kZeroThreshold is 0, NaN is 0 where the
  missing type is not NaN). A node's decision is then ``vals[slot] <= threshold``.
* **Nodes.** One 16-byte record per node (``NODE``): threshold, slot, and ``first``, the index
  of its left child; the right child is ``first + 1`` (children are laid out in pairs,
  breadth first, tree by tree). A leaf is a record whose threshold holds its value, whose slot
  always reads −inf and whose ``first`` is itself, so stepping from a leaf stays there.
* **Lanes.** Trees are ordered by depth, deepest first (``lane_root``); ``active[s]`` trees
  are still walking at step s. A row takes every tree one step at a time, so the steps of
  different trees are independent and the processor overlaps them; the leaves are then summed
  in the model's tree order (``tree_lane``), as LightGBM sums them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.bundle.trees import MISSING_TYPES

NODE = np.dtype([("threshold", np.float64), ("slot", np.uint32), ("first", np.uint32)])
"""A node record: split threshold (a leaf: its value), slot, index of the left child."""
SLOT = np.dtype([("feature", np.int64), ("zero", np.float64), ("nan", np.float64)])
"""A slot: the feature it reads, what a zero (|v| ≤ kZeroThreshold) becomes, what NaN becomes."""

MISSING_NONE, MISSING_ZERO = MISSING_TYPES["None"], MISSING_TYPES["Zero"]
GOES_LEFT, GOES_RIGHT = -np.inf, np.nan
"""What a missing value becomes in its slot: ≤ every threshold, or ≤ none."""


@dataclass(frozen=True)
class WalkLayout:
    """The arrays of the walk (see the module): ``nodes`` (``NODE``), ``slots`` (``SLOT``; the
    leaves' slot is ``len(slots)``, one past them), ``lane_root`` / ``tree_lane`` (uint32,
    one per tree), ``active`` (int64, one per step), and ``node_slot`` (uint32, the slot of
    each internal node of the bundle's own numbering, for TreeSHAP's decisions)."""

    nodes: np.ndarray
    slots: np.ndarray
    lane_root: np.ndarray
    tree_lane: np.ndarray
    active: np.ndarray
    node_slot: np.ndarray


def _slots(arrays: dict[str, np.ndarray], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The slot table and each internal node's slot."""
    missing, left = arrays["missing_type"].astype(np.int64), arrays["default_left"]
    sentinel = np.where(left, GOES_LEFT, GOES_RIGHT)
    zero = np.where(missing == MISSING_ZERO, sentinel, 0.0)
    nan = np.where(missing == MISSING_NONE, 0.0, sentinel)
    kind = np.where(missing == MISSING_NONE, 0, 1 + 2 * missing + left)  # the default way matters unless None
    keys, first_seen, node_slot = np.unique(kind * n_features + arrays["split_feature"], return_index=True,
                                            return_inverse=True)
    slots = np.empty(len(keys), dtype=SLOT)
    slots["feature"] = keys % n_features
    slots["zero"], slots["nan"] = zero[first_seen], nan[first_seen]
    return slots, node_slot.astype(np.uint32)


def build_layout(arrays: dict[str, np.ndarray], n_features: int) -> WalkLayout:
    """The walk layout of a bundle's ``arrays`` (``models.bundle.trees.TREE_ARRAYS``)."""
    slots, node_slot = _slots(arrays, n_features)
    leaf_slot = len(slots)
    threshold, left, right, leaf_value = (arrays[k] for k in ("threshold", "left_child", "right_child", "leaf_value"))
    n_trees = len(arrays["tree_root"])
    nodes = np.empty(len(threshold) + len(leaf_value), dtype=NODE)
    roots, depths = np.empty(n_trees, dtype=np.uint32), np.empty(n_trees, dtype=np.int64)
    free = 0
    for tree, root in enumerate(arrays["tree_root"].tolist()):
        roots[tree], depths[tree] = free, -1
        level = [(root, free)]
        free += 1
        while level:
            depths[tree] += 1
            below = []
            for node, at in level:
                if node < 0:
                    nodes[at] = (leaf_value[-node - 1], leaf_slot, at)
                else:
                    nodes[at] = (threshold[node], node_slot[node], free)
                    below += [(int(left[node]), free), (int(right[node]), free + 1)]
                    free += 2
            level = below
    order = np.argsort(-depths, kind="stable")
    tree_lane = np.empty(n_trees, dtype=np.uint32)
    tree_lane[order] = np.arange(n_trees)
    active = np.array([np.count_nonzero(depths > s) for s in range(int(depths.max(initial=0)))], dtype=np.int64)
    return WalkLayout(nodes, slots, roots[order], tree_lane, active, node_slot)
