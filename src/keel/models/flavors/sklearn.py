"""scikit-learn estimators and pipelines, saved with skops.

Loading passes skops Keel's own fixed list of trusted types (on top of skops' defaults, which
cover scikit-learn's estimators and NumPy): a file holding any other type is refused with
``PermissionDenied`` before any of it is constructed. The list never comes from the file.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput, PermissionDenied
from keel.models.flavors._base import Flavor, Loaded, proba_of, require

FILE = "model.skops"

# Fitted estimators hold these helper objects; skops does not trust them by default. Review any
# addition: each entry is a type a model file may make Keel construct.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "collections.OrderedDict",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfTweedieLossIdentity",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.HalfGammaLoss",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.DotProduct",
    "sklearn.gaussian_process.kernels.Matern",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    # Pure functions estimators keep a reference to (score functions, pooling).
    "numpy.mean",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
)


def _skops() -> Any:
    return require("skops.io", package="skops", extra="sklearn", purpose="scikit-learn models")


class SklearnFlavor(Flavor):
    name = "sklearn"
    packages = ("sklearn", "skops", "scipy")

    def accepts(self, model: Any) -> bool:
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(model, base.BaseEstimator)

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        _skops().dump(model, folder / FILE)
        cls = type(model)
        return {"file": FILE, "class": f"{cls.__module__}.{cls.__qualname__}"}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        sio = _skops()
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            model = sio.load(folder / FILE, trusted=list(TRUSTED_TYPES))
        except UntrustedTypesFoundException as exc:
            raise PermissionDenied(
                f"the skops file holds types outside Keel's trusted list ({exc}); Keel will not "
                "construct them. Re-log the model with supported types, or log it as a "
                "keel.PythonModel"
            ) from exc
        except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
            raise InvalidInput(f"not a readable skops file: {exc}", field="model") from exc
        # A transformer (no predict) answers with its transform, e.g. an embedding pipeline.
        predict = getattr(model, "predict", None) or getattr(model, "transform", None)
        if not callable(predict):
            raise InvalidInput(
                f"{type(model).__name__} has neither predict nor transform", field="model"
            )
        return Loaded(raw=model, predict=predict, predict_proba=proba_of(model))
