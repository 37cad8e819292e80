"""LightGBM trees as flat node arrays: the form the bundle stores and the kernels read.

``flatten_trees`` turns the ``tree_info`` of ``Booster.dump_model()`` (a plain dict, so this
module needs no LightGBM) into arrays over all trees. Internal nodes are numbered tree by tree
in depth-first order, leaves likewise; a child ``>= 0`` is an internal node, a child ``< 0`` is
leaf ``-(child + 1)``. Splits the kernels cannot follow (categorical) are refused here.
"""

from __future__ import annotations

import numpy as np

from fengqiao.errors import ConfigurationError

MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
"""LightGBM's missing types and their codes in ``missing_type`` (see ``kernels``)."""

TREE_ARRAYS: dict[str, tuple[str, str]] = {
    "tree_root": ("int64", "trees"),
    "tree_node_start": ("int64", "trees+1"),
    "tree_leaf_start": ("int64", "trees+1"),
    "split_feature": ("int64", "nodes"),
    "threshold": ("float64", "nodes"),
    "missing_type": ("uint8", "nodes"),
    "default_left": ("bool", "nodes"),
    "left_child": ("int64", "nodes"),
    "right_child": ("int64", "nodes"),
    "internal_count": ("float64", "nodes"),
    "leaf_value": ("float64", "leaves"),
    "leaf_count": ("float64", "leaves"),
}
"""Every array of a bundle's ``trees.npz``: dtype and length (per tree, node or leaf)."""


class UnsupportedModelError(ConfigurationError):
    """A model the bundle's kernels cannot score exactly (categorical splits, linear trees,
    an objective other than binary)."""


def text_thresholds(model_text: str) -> list[list[float]]:
    """Each tree's split thresholds (by split index) from a LightGBM model text. The JSON dump
    clips thresholds to ±1e300 (LightGBM's ``AvoidInf``) where the model holds ±inf — a split
    of NaN against every number — so the exact values are read from the text."""
    out = []
    for block in model_text.split("\nTree=")[1:]:
        tree_text = block.split("\n\n", 1)[0]
        line = next((ln for ln in tree_text.splitlines() if ln.startswith("threshold=")), "threshold=")
        out.append([float(v) for v in line.removeprefix("threshold=").split()])
    return out


def flatten_trees(tree_info: list[dict], thresholds: list[list[float]]) -> dict[str, np.ndarray]:
    """The arrays of ``TREE_ARRAYS`` from a LightGBM dump's ``tree_info``, with the exact
    ``thresholds`` of ``text_thresholds``."""
    if len(thresholds) != len(tree_info):
        raise UnsupportedModelError(f"the model text has {len(thresholds)} trees, its dump {len(tree_info)}")
    nodes: dict[str, list] = {k: [] for k in ("split_feature", "threshold", "missing_type", "default_left",
                                               "left_child", "right_child", "internal_count")}
    leaf_value: list[float] = []
    leaf_count: list[float] = []
    roots, node_start, leaf_start = [], [0], [0]

    def visit(node: dict, tree: int) -> int:
        if "leaf_value" in node or "split_index" not in node:
            if "leaf_coeff" in node or "leaf_const" in node:
                raise UnsupportedModelError(f"tree {tree} has linear leaves (linear_tree=true): the bundle scores "
                                            "constant leaves only; train without linear_tree")
            leaf_value.append(float(node["leaf_value"]))
            leaf_count.append(float(node.get("leaf_count", 0)))
            return -len(leaf_value)
        if node.get("decision_type", "<=") != "<=":
            raise UnsupportedModelError(f"tree {tree} has a categorical split (decision_type "
                                        f"{node['decision_type']!r}) on feature {node['split_feature']}: the bundle "
                                        "supports numerical features only; encode categories as numbers")
        index = len(nodes["split_feature"])
        nodes["split_feature"].append(int(node["split_feature"]))
        nodes["threshold"].append(thresholds[tree][int(node["split_index"])])
        nodes["missing_type"].append(MISSING_TYPES[str(node.get("missing_type", "None"))])
        nodes["default_left"].append(bool(node.get("default_left", True)))
        nodes["internal_count"].append(float(node["internal_count"]))
        nodes["left_child"].append(0)
        nodes["right_child"].append(0)
        nodes["left_child"][index] = visit(node["left_child"], tree)
        nodes["right_child"][index] = visit(node["right_child"], tree)
        return index

    for tree, info in enumerate(tree_info):
        if info.get("is_linear"):
            raise UnsupportedModelError(f"tree {tree} is a linear tree (linear_tree=true): the bundle scores constant "
                                        "leaves only; train without linear_tree")
        roots.append(visit(info["tree_structure"], tree))
        node_start.append(len(nodes["split_feature"]))
        leaf_start.append(len(leaf_value))
    arrays = {"tree_root": roots, "tree_node_start": node_start, "tree_leaf_start": leaf_start, **nodes,
              "leaf_value": leaf_value, "leaf_count": leaf_count}
    return {name: np.asarray(arrays[name], dtype=dtype) for name, (dtype, _) in TREE_ARRAYS.items()}


def array_lengths(n_trees: int, n_nodes: int, n_leaves: int) -> dict[str, int]:
    """The length each array of ``TREE_ARRAYS`` must have."""
    per = {"trees": n_trees, "trees+1": n_trees + 1, "nodes": n_nodes, "leaves": n_leaves}
    return {name: per[kind] for name, (_, kind) in TREE_ARRAYS.items()}


def expected_value(arrays: dict[str, np.ndarray]) -> float:
    """The model's expected raw score (TreeSHAP's bias): per tree the leaf values weighted by
    their training-row counts, as LightGBM's ``Tree::ExpectedValue``; a one-leaf tree's leaf."""
    total = 0.0
    for t, root in enumerate(arrays["tree_root"]):
        leaves = slice(arrays["tree_leaf_start"][t], arrays["tree_leaf_start"][t + 1])
        values = arrays["leaf_value"][leaves]
        if root < 0:
            total += float(values[0])
        else:
            total += float(np.sum(arrays["leaf_count"][leaves] / arrays["internal_count"][root] * values))
    return total
