"""``ScoringBundle``: a loaded bundle that scores, calibrates, levels and explains rows.

It needs nothing but the bundle folder — no LightGBM, no training data. Arrays are read-only
and the kernels keep no state, so one bundle serves concurrent requests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numba
import numpy as np

from models.bundle import kernels, linear
from models.bundle.format import META_FILE, BundleError, read_arrays, read_meta
from models.bundle.layout import build_layout
from models.bundle.trees import expected_value
from models.levels import LEVEL_NAMES, levels_by_threshold

SINGLE_ROW_BELOW = 8
"""Fewer rows than this are scored one by one on the calling thread, without waking numba's
thread pool (whose start-up costs more than a few rows)."""
FLOAT64 = np.dtype(np.float64)


def compiled_entry(kernel, *args):
    """The compiled entry of numba ``kernel`` for exactly the types of ``args`` (compiled, or
    loaded from numba's cache, now). Calling it skips numba's per-call type dispatch (about
    half a microsecond for seven arrays); it must only ever get arguments of those types."""
    signature = tuple(numba.typeof(a) for a in args)
    kernel.compile(signature)
    return kernel.get_overload(signature)


def _takes_compiled_rows(X: object, n_features: int) -> bool:
    """Whether ``X`` is of the very type ``compiled_entry`` was built for: a writable, aligned,
    C-contiguous float64 ndarray of (n, n_features)."""
    if type(X) is not np.ndarray or X.dtype is not FLOAT64 or X.ndim != 2 or X.shape[1] != n_features:
        return False
    flags = X.flags
    return flags.c_contiguous and flags.writeable and flags.aligned


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def calibrate(raw: np.ndarray, sigmoid: float, calibration: dict) -> np.ndarray:
    """Calibrated probabilities from raw scores (log-odds): LightGBM's probability
    1 / (1 + exp(−sigmoid · raw)), then the bundle's calibration exactly as
    ``models.calibration.ScoreCalibrator`` applies it — ``identity``; ``isotonic``
    (linear interpolation between breakpoints, clipped to their range, plus ``shift`` times the
    uncalibrated probability); ``platt`` (a logistic curve on the clipped logit) — clipped to
    ``clip``."""
    p = 1.0 / (1.0 + np.exp(-sigmoid * np.asarray(raw, dtype=float)))
    method = calibration["method"]
    if method == "identity":
        return p
    if method == "isotonic":
        x, y = np.asarray(calibration["x"], dtype=float), np.asarray(calibration["y"], dtype=float)
        q = np.interp(np.clip(p, x[0], x[-1]), x, y) + calibration["shift"] * p
    elif method == "platt":
        eps = calibration["logit_clip"]
        clipped = np.clip(p, eps, 1 - eps)
        q = 1.0 / (1.0 + np.exp(-(calibration["coef"] * np.log(clipped / (1 - clipped)) + calibration["intercept"])))
    else:
        raise BundleError(f"{META_FILE}: unknown calibration method {method!r} (identity, isotonic or platt)")
    low, high = calibration["clip"]
    return np.clip(q, low, high)


class ScoringBundle:
    """A scoring bundle in memory. ``X`` everywhere is float64 (n, n_features) in
    ``feature_names`` order, NaN where missing."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray], version: str = "file"):
        self.meta = meta
        self.version = str(version)
        self.entity: str = meta["entity"]
        self.feature_names: list[str] = [f["name"] for f in meta["features"]]
        self._n_features = len(self.feature_names)
        self.feature_groups: list[str] = [f["group"] for f in meta["features"]]
        self.actionable: list[bool] = [bool(f["actionable"]) for f in meta["features"]]
        self.group_names: list[str] = list(dict.fromkeys(self.feature_groups))
        self.group_index = _read_only(np.array([self.group_names.index(g) for g in self.feature_groups], dtype=np.int64))
        """Each feature's group, as an index into ``group_names``."""
        self._sigmoid = float(meta["objective"]["sigmoid"])
        self._calibration = {k: np.asarray(v, dtype=float) if k in ("x", "y") else v
                             for k, v in meta["calibration"].items()}  # breakpoints as arrays once, not per call
        calibrate(np.zeros(1), self._sigmoid, self._calibration)  # refuses an unknown method now, not per request
        level = meta["level_thresholds"]
        self._thresholds = (level["red"], level["orange"], level["yellow"])
        self._trees = {k: _read_only(np.ascontiguousarray(v)) for k, v in arrays.items()}
        t = self._trees
        self._layout = layout = build_layout(t, len(self.feature_names))
        self._walk = tuple(_read_only(a) for a in (layout.nodes, layout.lane_root, layout.tree_lane, layout.active,
                                                    layout.slots))
        self._score_few = compiled_entry(kernels.raw_scores, np.zeros((1, self._n_features)), np.zeros(1), *self._walk)
        path_start, path_node, path_left, path_elem, elem_start, elem_feature, elem_zero = kernels.leaf_paths(
            t["split_feature"], t["left_child"], t["right_child"], t["internal_count"], t["leaf_count"],
            len(t["leaf_value"]))
        words = (int(np.diff(t["tree_node_start"]).max(initial=0)) + 63) // 64
        elem_mask, elem_side = kernels.element_masks(path_start, path_node, path_left, path_elem, elem_start,
                                                     t["tree_node_start"], t["tree_leaf_start"], max(words, 1))
        trees_bias = self.bias = expected_value(t)
        """The model's expected raw score: TreeSHAP's bias, blended with the linear part's intercept."""
        self._linear = None
        """The linear part's arguments of ``linear.blend_scores`` after the rows and the output, or None."""
        if "linear" in meta:
            part = meta["linear"]
            self._linear = (float(part["tree_weight"]), *(t[name] for name in linear.LINEAR_ARRAYS),
                            float(part["intercept"]))
            self.bias = self._linear[0] * trees_bias + self._linear[-1]
        max_elems = int(max(np.diff(elem_start).max(initial=0), 1))
        self._shap = tuple(_read_only(a) for a in (
            t["tree_node_start"], t["tree_leaf_start"], layout.node_slot, t["threshold"], layout.slots,
            t["leaf_value"], elem_start, elem_feature, elem_zero, elem_mask, elem_side,
            kernels.shapley_weights(max_elems)))
        self._shap += (trees_bias, max_elems)

    def _rows(self, X: np.ndarray) -> np.ndarray:
        """``X`` as the kernels take it: float64, C-contiguous, (n, n_features). An array that
        is so already passes with no conversion (the single-row path counts microseconds)."""
        if type(X) is not np.ndarray or X.dtype is not FLOAT64 or not X.flags.c_contiguous or X.ndim != 2:
            X = np.asarray(X, dtype=np.float64)
            X = np.ascontiguousarray(X[None, :] if X.ndim == 1 else X)
        if X.ndim != 2 or X.shape[1] != self._n_features:
            raise ValueError(f"expected rows of {self._n_features} features (in the bundle's feature_names "
                             f"order), got an array of shape {X.shape}")
        return X

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds), as LightGBM's ``predict(raw_score=True)``. A few rows of the
        kernels' own type (a request's row) go straight to the compiled kernel."""
        if _takes_compiled_rows(X, self._n_features) and X.shape[0] < SINGLE_ROW_BELOW:
            out = np.empty(X.shape[0])
            self._score_few(X, out, *self._walk)
        else:
            X = self._rows(X)
            out = np.empty(X.shape[0])
            (kernels.raw_scores if X.shape[0] < SINGLE_ROW_BELOW else kernels.raw_scores_parallel)(X, out, *self._walk)
        if self._linear is not None:
            linear.blend_scores(X, out, *self._linear)
        return out

    def probability_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw scores (see ``calibrate``)."""
        return calibrate(raw, self._sigmoid, self._calibration)

    def probability(self, X: np.ndarray) -> np.ndarray:
        """The calibrated probability of an incident within ``meta['horizon_days']`` days."""
        return self.probability_from_raw(self.raw_score(X))

    def levels(self, p: np.ndarray) -> np.ndarray:
        """Level names red / orange / yellow / blue by the bundle's thresholds."""
        return levels_by_threshold(p, self._thresholds, LEVEL_NAMES)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact path-dependent TreeSHAP contributions (n, n_features + 1), the last column the
        bias; each row sums to its raw score (LightGBM's ``pred_contrib``; with a linear part,
        the blend of ``models.bundle.linear``). A few rows are taken one at a time, each with its
        trees spread over numba's threads; more, rows in parallel."""
        X = self._rows(X)
        if len(X) < SINGLE_ROW_BELOW:
            out = np.empty((len(X), X.shape[1] + 1))
            for row, target in zip(X, out):
                kernels.row_contributions(row, target, *self._shap)
        else:
            out = kernels.contributions(X, *self._shap)
        if self._linear is not None:
            linear.blend_contributions(X, out, *self._linear)
        return out


def _bundle_folder(root: Path) -> Path:
    """The folder holding ``bundle.json`` at or below ``root`` (an MLflow model keeps it in
    its artifacts)."""
    if (root / META_FILE).is_file():
        return root
    found = sorted(root.rglob(META_FILE))
    if not found:
        raise BundleError(f"no {META_FILE} at or below {root}: not a scoring bundle")
    return found[0].parent


def _registry_version(uri: str) -> str:
    """The registry version a ``models:/name@alias`` or ``models:/name/3`` URI resolves to."""
    from mlflow import MlflowClient

    name, _, rest = uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    if rest:
        return str(client.get_model_version_by_alias(name, rest).version)
    name, _, number = name.partition("/")
    return number or "latest"


def is_registry_uri(source: str | Path) -> bool:
    """Whether ``source`` names an MLflow model (``models:/…``, ``runs:/…``) rather than a folder."""
    return str(source).startswith(("models:/", "runs:/"))


def download_bundle(uri: str, dst: Path) -> tuple[Path, str]:
    """Download the bundle of an MLflow model URI (``models:/village-risk@champion``,
    ``runs:/<run>/model``) into ``dst``: its folder and the registry version it resolved to
    (``run`` for a run's model). MLflow must already point at the store. Raises ``BundleError``
    for an unknown model, version or alias."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        version = _registry_version(uri) if uri.startswith("models:/") else "run"
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except MlflowException as err:
        raise BundleError(f"cannot load the model {uri}: {err.message}") from err
    return _bundle_folder(local), version


def load_bundle(source: str | Path) -> ScoringBundle:
    """A bundle from a folder, or from an MLflow model URI (``models:/village-risk@champion``,
    ``runs:/<run>/model``) whose artifacts are downloaded to a temporary folder. Raises
    ``BundleError`` for a missing, damaged or incompatible bundle."""
    text = str(source)
    if is_registry_uri(text):
        with tempfile.TemporaryDirectory() as tmp:
            folder, version = download_bundle(text, Path(tmp))
            meta = read_meta(folder)
            return ScoringBundle(meta, read_arrays(folder, meta), version)
    folder = _bundle_folder(Path(source))
    meta = read_meta(folder)
    return ScoringBundle(meta, read_arrays(folder, meta), str(meta.get("model_version") or "file"))
