"""The bundle as an MLflow pyfunc model: logged with a signature and an input example, and
served by ``load_bundle`` from a registry alias (``models:/village-risk@champion``) or by
MLflow's own ``pyfunc.load_model`` (which returns calibrated probabilities)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from models.bundle.scoring import ScoringBundle, load_bundle

BUNDLE_ARTIFACT = "bundle"
"""The artifact key (and folder) of the bundle inside the logged model."""
SERVING_PACKAGES = ("fengqiao", "numpy", "numba", "pandas", "pyarrow", "mlflow")
"""What scoring a bundle needs (never LightGBM), pinned to the versions that logged it — stated,
so that MLflow does not infer them by running the model in a subprocess (tens of seconds)."""


def serving_requirements() -> list[str]:
    """``SERVING_PACKAGES`` as pip requirements at their installed versions."""
    return [f"{name}=={version(name)}" for name in SERVING_PACKAGES]


class BundleModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: a DataFrame of the bundle's features in, calibrated probabilities out."""

    def load_context(self, context) -> None:
        self.bundle: ScoringBundle = load_bundle(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        X = model_input[self.bundle.feature_names].to_numpy(dtype=float)
        return self.bundle.probability(X)


def log_bundle(folder: Path, input_example: pd.DataFrame, registered_model_name: str | None = None) -> ModelInfo:
    """Log the bundle in ``folder`` to the active run as pyfunc model ``model`` (registering
    it under ``registered_model_name`` if given)."""
    bundle = load_bundle(folder)
    example = input_example[bundle.feature_names].astype(float)
    signature = infer_signature(example, bundle.probability(example.to_numpy()))
    return mlflow.pyfunc.log_model(name="model", python_model=BundleModel(), artifacts={BUNDLE_ARTIFACT: str(folder)},
                                   signature=signature, input_example=example, pip_requirements=serving_requirements(),
                                   registered_model_name=registered_model_name)
