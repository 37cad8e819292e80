"""The bundle on disk: ``bundle.json`` (what the model is) and ``trees.npz`` (its trees, and the
arrays of its linear part if it has one, ``models.bundle.linear``).

Format 1 is trees alone; format 2 adds the optional linear part. A bundle without a linear part
is written as format 1, so that a Fengqiao that reads only format 1 still serves it, and one
with a linear part as format 2, which such a Fengqiao refuses rather than scoring it without
its linear part.

Writing records, in ``bundle.json``, the SHA-256 and size of ``trees.npz`` and a SHA-256 of
the JSON's own content; reading checks the format version, the required fields, both
checksums and every array's dtype and length, and refuses a damaged or foreign bundle with a
``BundleError`` that names the file, field or array at fault.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from fengqiao.errors import ConfigurationError
from models.bundle.linear import LINEAR_ARRAYS, TRANSFORM
from models.bundle.trees import TREE_ARRAYS, array_lengths

FORMAT_VERSION = 2
"""The newest bundle layout: trees and an optional linear part."""
TREES_ONLY_VERSION = 1
"""The layout of trees alone; this code reads it and writes it for bundles without a linear part."""
READ_VERSIONS = (TREES_ONLY_VERSION, FORMAT_VERSION)
META_FILE, ARRAYS_FILE = "bundle.json", "trees.npz"
REQUIRED_FIELDS: tuple[str, ...] = (
    "format_version", "entity", "features", "reason_templates", "groups", "objective", "calibration",
    "level_thresholds", "horizon_days", "trees", "arrays", "content_sha256",
)


class BundleError(ConfigurationError):
    """A scoring bundle that cannot be used: missing, damaged, edited or of another format."""


def _content_digest(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "content_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def write_bundle(folder: Path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``trees.npz`` and ``bundle.json`` (with the checksums) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    names = [*TREE_ARRAYS, *(LINEAR_ARRAYS if "linear" in meta else ())]
    np.savez(buffer, **{name: arrays[name] for name in names})
    data = buffer.getvalue()
    (folder / ARRAYS_FILE).write_bytes(data)
    meta = {**meta, "format_version": FORMAT_VERSION if "linear" in meta else TREES_ONLY_VERSION,
            "arrays": {"file": ARRAYS_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    meta["content_sha256"] = _content_digest(meta)
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return folder


def read_meta(folder: Path) -> dict:
    """``bundle.json``, checked: valid JSON, this format version, every required field, and its
    content checksum (an edited file is refused)."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise BundleError(f"{path} does not exist: not a scoring bundle (export one with `fengqiao bundle export`)")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON ({err}): the bundle is damaged") from err
    if not isinstance(meta, dict):
        raise BundleError(f"{path} is not a JSON object: the bundle is damaged")
    version = meta.get("format_version")
    if version not in READ_VERSIONS:
        raise BundleError(f"{path}: format_version is {version!r}, this Fengqiao reads formats "
                          f"{' and '.join(map(str, READ_VERSIONS))}; export the model again with this version")
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise BundleError(f"{path} lacks the field(s) {', '.join(missing)}: the bundle is damaged")
    if meta["content_sha256"] != _content_digest(meta):
        raise BundleError(f"{path} was edited after export: its content no longer matches field content_sha256; "
                          "export the bundle again rather than editing it")
    if "linear" in meta:
        _check_linear(path, meta)
    return meta


def _check_linear(path: Path, meta: dict) -> None:
    """Field ``linear``: only in format 2, with the known transform and finite numbers."""
    linear = meta["linear"]
    if meta["format_version"] == TREES_ONLY_VERSION:
        raise BundleError(f"{path}: field linear needs format_version {FORMAT_VERSION}, the file says "
                          f"{TREES_ONLY_VERSION}; the bundle is damaged")
    if not isinstance(linear, dict) or linear.get("transform") != TRANSFORM:
        raise BundleError(f"{path}: field linear.transform must be {TRANSFORM!r}; the bundle is damaged")
    for key in ("tree_weight", "intercept"):
        value = linear.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
            raise BundleError(f"{path}: field linear.{key} must be a finite number; the bundle is damaged")


def read_arrays(folder: Path, meta: dict) -> dict[str, np.ndarray]:
    """``trees.npz``, checked against ``bundle.json``: size, SHA-256, and each array's dtype
    and length."""
    path = Path(folder) / meta["arrays"]["file"]
    if not path.is_file():
        raise BundleError(f"{path} does not exist: the bundle is incomplete")
    data = path.read_bytes()
    if len(data) != meta["arrays"]["bytes"]:
        raise BundleError(f"{path} is truncated or padded: {len(data)} bytes, bundle.json says "
                          f"{meta['arrays']['bytes']}; the bundle is damaged")
    if hashlib.sha256(data).hexdigest() != meta["arrays"]["sha256"]:
        raise BundleError(f"{path} does not match its checksum (bundle.json field arrays.sha256): the bundle is damaged")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise BundleError(f"{path} cannot be read as arrays ({err}): the bundle is damaged") from err
    trees = meta["trees"]
    expected, lengths = dict(TREE_ARRAYS), array_lengths(int(trees["count"]), int(trees["nodes"]), int(trees["leaves"]))
    if "linear" in meta:
        expected |= LINEAR_ARRAYS
        lengths |= dict.fromkeys(LINEAR_ARRAYS, len(meta["features"]))
    for name, (dtype, kind) in expected.items():
        if name not in arrays:
            part = " of its linear part" if name in LINEAR_ARRAYS else ""
            raise BundleError(f"{path} lacks the array {name!r}{part}: the bundle is damaged")
        array = arrays[name]
        if array.dtype != np.dtype(dtype) or array.shape != (lengths[name],):
            raise BundleError(f"{path}: array {name!r} is {array.dtype}{list(array.shape)}, expected "
                              f"{dtype}[{lengths[name]}] (one per {kind.removesuffix('+1')}"
                              f"{', plus one' if kind.endswith('+1') else ''}); the bundle is damaged")
    _check_structure(path, arrays, len(meta["features"]))
    for name in LINEAR_ARRAYS if "linear" in meta else ():
        if not np.isfinite(arrays[name]).all():
            raise BundleError(f"{path}: array {name!r} holds a value that is not a finite number; "
                              "the bundle is damaged")
    return arrays


def _check_structure(path: Path, arrays: dict[str, np.ndarray], n_features: int) -> None:
    """Children, roots and split features must point inside the arrays, so that a kernel
    never reads out of bounds; thresholds and leaf values must be numbers (the walk of
    ``models.bundle.layout`` relies on it)."""
    n_nodes, n_leaves = len(arrays["split_feature"]), len(arrays["leaf_value"])
    for name in ("left_child", "right_child", "tree_root"):
        child = arrays[name]
        if len(child) and (child.max(initial=-1) >= n_nodes or child.min(initial=0) < -n_leaves):
            raise BundleError(f"{path}: array {name!r} points outside the {n_nodes} nodes and {n_leaves} leaves")
    for name in ("threshold", "leaf_value"):
        if np.isnan(arrays[name]).any():
            raise BundleError(f"{path}: array {name!r} holds NaN, which no LightGBM model has; the bundle is damaged")
    feature = arrays["split_feature"]
    if len(feature) and (feature.min() < 0 or feature.max() >= n_features):
        raise BundleError(f"{path}: array 'split_feature' names a feature outside the {n_features} of bundle.json")
    for name, total in (("tree_node_start", n_nodes), ("tree_leaf_start", n_leaves)):
        start = arrays[name]
        if start[0] != 0 or start[-1] != total or np.any(np.diff(start) < 0):
            raise BundleError(f"{path}: array {name!r} does not partition the {total} entries into trees")
