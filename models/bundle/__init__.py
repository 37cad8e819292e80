"""The scoring bundle: a trained model as plain arrays, scored, calibrated and explained by
numba kernels with no LightGBM and no training data (see docs/bundle.md).

Serving imports only this package's top level; the exporter (``models.bundle.export``) needs
LightGBM and is imported by the training side alone.
"""

from models.bundle.explain import Explanation, GroupContribution, Reason, explain_rows
from models.bundle.format import FORMAT_VERSION, BundleError
from models.bundle.scoring import ScoringBundle, load_bundle

__all__ = ["FORMAT_VERSION", "BundleError", "Explanation", "GroupContribution", "Reason", "ScoringBundle",
           "explain_rows", "load_bundle"]
