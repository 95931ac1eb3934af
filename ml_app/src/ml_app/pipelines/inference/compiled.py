"""The fitted preprocessor and classifier compiled for serving: numpy and treelite, not sklearn.

scikit-learn's ``ColumnTransformer.transform`` spends ~7 ms on input checks and per-column pandas
work for a one-row frame, and ``HistGradientBoostingClassifier.predict_proba`` ~1.5 ms (OpenMP
threads started on every call, oversubscribing the cores when the machine is busy). The
arithmetic itself is microseconds. :func:`compile_model` reads the *fitted* objects once and
returns a :class:`CompiledModel` that computes the same numbers:

* the preprocessor becomes a :class:`NumpyPreprocessor`: one float matrix of the numeric columns
  (``log1p`` where the fitted pipeline has it, the fitted imputation values, missing-value
  indicators for the columns that had missing values in training), booleans as floats, one-hot
  codes against the fitted categories (unknown categories give all zeros, as
  ``handle_unknown="ignore"``), in ``get_feature_names_out`` order;
* a ``HistGradientBoostingClassifier`` becomes a treelite model, predicted with treelite's GTIL
  on one thread for small batches (0.05 ms for a 300-tree model and one row, no thread start-up);
  GTIL is a reference interpreter (slower per row than scikit-learn's own compiled predictor), so
  batches above ``gtil_max_rows`` go to the fitted estimator's predictor on the compiled features;
* a ``StandardScaler`` + ``LogisticRegression`` pipeline becomes its affine map and a sigmoid.

Anything else (another transformer, another estimator) raises :class:`NotCompilable`: the model
then serves through scikit-learn itself (``CompiledModel`` with ``compiled=False``), still correct,
only slower. Tests prove compiled == scikit-learn within 1e-9 on random and adversarial rows.

Heavy libraries (treelite, scikit-learn) are imported where they are used, so importing this
module (at pipeline registration, or when a served model is unpickled) costs nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# The functions ``fit_preprocessor`` wraps in FunctionTransformers, by qualified name, as numpy.
_FUNCTIONS = {"numpy.log1p": np.log1p, "ml_app.pipelines.training.nodes.as_float": None}


class NotCompilable(TypeError):
    """A fitted object this compiler does not know; serve it through scikit-learn instead."""


@dataclass(frozen=True)
class _Impute:
    """Numeric columns: optional log1p, fitted fill values, then missing-value indicators."""

    columns: tuple[str, ...]
    log1p: bool
    fill: np.ndarray  # one value per column
    indicators: np.ndarray  # positions (in columns) that get an indicator


@dataclass(frozen=True)
class _AsFloat:
    columns: tuple[str, ...]


@dataclass(frozen=True)
class _OneHot:
    column: str
    categories: np.ndarray  # object array of the fitted categories, in order


class NumpyPreprocessor:
    """``ColumnTransformer.transform`` of one fitted preprocessor, as a float64 matrix.

    The output layout (which input column lands in which output columns) is worked out once;
    a call reads each input column's array once and writes straight into one preallocated
    matrix, so a one-row call is tens of microseconds, not milliseconds.
    """

    _SMALL = 64  # up to this many rows, one-hot compares values; above, pandas hashes them

    def __init__(self, blocks: list[_Impute | _AsFloat | _OneHot], names: list[str]) -> None:
        self.blocks = blocks
        self.feature_names = names
        self.inputs: list[str] = []
        self._plan = []
        position = 0
        for block in blocks:
            columns = (block.column,) if isinstance(block, _OneHot) else block.columns
            sources = list(range(len(self.inputs), len(self.inputs) + len(columns)))
            self.inputs.extend(columns)
            width = len(columns)
            if isinstance(block, _Impute):
                width += len(block.indicators)
            elif isinstance(block, _OneHot):
                width = len(block.categories)
            self._plan.append((block, sources, position, position + width))
            position += width
        if position != len(names):
            raise NotCompilable(f"{position} compiled features for {len(names)} names")
        self._positions: dict[tuple, np.ndarray] = {}
        self._last: tuple[pd.Index | None, np.ndarray | None] = (None, None)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": (None, None)}  # a frame's Index is no model state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_last": (None, None), **state})  # pickled before _last existed

    def _arrays(self, frame: pd.DataFrame) -> list[Any]:
        # the column positions, looked up once per column layout (get_indexer on pandas 3's
        # Arrow-backed column names costs ~0.2 ms; building the key ~25 us)
        columns = frame.columns
        if columns is self._last[0]:  # the same (immutable) Index as the last call: same layout
            positions = self._last[1]
        else:
            positions = self._lookup(columns)
            self._last = (columns, positions)
        get = getattr(frame, "_get_column_array", None)  # what FastContract uses: no Series
        if get is None:
            return [frame.iloc[:, i].to_numpy() for i in positions]
        return [get(i) for i in positions]

    def _lookup(self, columns: pd.Index) -> np.ndarray:
        key = tuple(columns)
        positions = self._positions.get(key)
        if positions is None:
            positions = columns.get_indexer(self.inputs)
            if (positions < 0).any():
                missing = [c for c, i in zip(self.inputs, positions, strict=True) if i < 0]
                raise KeyError(f"columns missing from the input: {missing}")
            if len(self._positions) > 16:
                self._positions.clear()
            self._positions[key] = positions
        return positions

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        arrays = self._arrays(frame)
        out = np.zeros((len(frame), len(self.feature_names)), dtype=np.float64)
        for block, sources, start, stop in self._plan:
            if isinstance(block, _OneHot):
                _one_hot(arrays[sources[0]], block.categories, out[:, start:stop], self._SMALL)
                continue
            k = len(sources)
            x = out[:, start : start + k]
            for j, source in enumerate(sources):
                x[:, j] = np.asarray(arrays[source], dtype=np.float64)
            if isinstance(block, _Impute):
                if block.log1p:
                    np.log1p(x, out=x)
                missing = np.isnan(x)
                if missing.any():
                    np.copyto(x, block.fill, where=missing)  # fill broadcasts over rows
                    if len(block.indicators):
                        out[:, start + k : stop] = missing[:, block.indicators]
        return out


def _one_hot(values: Any, categories: np.ndarray, out: np.ndarray, small: int) -> None:
    """Write the one-hot codes of ``values`` into ``out`` (zeros for unknown values)."""
    nan_category = np.asarray(pd.isna(categories), dtype=bool)  # None/NaN seen in fit
    if len(values) > small and not nan_category.any():
        codes = pd.Categorical(values, categories=categories).codes  # -1: unknown or missing
        rows = np.flatnonzero(codes >= 0)
        out[rows, codes[rows]] = 1.0
        return
    objects = np.asarray(values, dtype=object)
    out[:] = objects[:, np.newaxis] == categories[np.newaxis, :]
    if nan_category.any():
        out[:, nan_category] = pd.isna(objects)[:, np.newaxis]


def compile_preprocessor(preprocessor: Any) -> NumpyPreprocessor:
    """A :class:`NumpyPreprocessor` equal to the fitted ``ColumnTransformer``, or NotCompilable."""
    from sklearn.compose import ColumnTransformer

    if not isinstance(preprocessor, ColumnTransformer):
        raise NotCompilable(f"preprocessor {type(preprocessor).__name__}")
    blocks: list[_Impute | _AsFloat | _OneHot] = []
    for name, transformer, columns in preprocessor.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise NotCompilable(f"transformer {name}: columns must be a list of names")
        blocks.extend(_compile_transformer(name, transformer, tuple(columns)))
    names = list(preprocessor.get_feature_names_out())
    return NumpyPreprocessor(blocks, names)


def _compile_transformer(name: str, transformer: Any, columns: tuple[str, ...]) -> list:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    steps = (
        [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    )
    functions = [_function(s) for s in steps[:-1]]
    last = steps[-1]
    if isinstance(last, SimpleImputer) and functions in ([], ["numpy.log1p"]):
        return [_impute(last, columns, log1p=bool(functions))]
    if len(steps) == 1 and isinstance(last, FunctionTransformer):
        function = _function(last)
        if function == "numpy.log1p":
            raise NotCompilable(f"transformer {name}: log1p without imputation")
        return [_AsFloat(columns)]
    if len(steps) == 1 and isinstance(last, OneHotEncoder):
        encoder = last
        if (
            encoder.drop_idx_ is not None
            or encoder.handle_unknown != "ignore"
            or getattr(encoder, "_infrequent_enabled", False)
        ):
            raise NotCompilable(f"transformer {name}: one-hot options")
        return [
            _OneHot(column, np.asarray(categories, dtype=object))
            for column, categories in zip(columns, encoder.categories_, strict=True)
        ]
    raise NotCompilable(f"transformer {name}: {[type(s).__name__ for s in steps]}")


def _function(step: Any) -> str:
    from sklearn.preprocessing import FunctionTransformer

    if not isinstance(step, FunctionTransformer) or step.kw_args or step.validate:
        raise NotCompilable(f"step {type(step).__name__}")
    func = step.func
    qualified = f"{getattr(func, '__module__', None) or 'numpy'}.{func.__name__}"
    if qualified not in _FUNCTIONS:
        raise NotCompilable(f"function {qualified}")
    return qualified


def _impute(imputer: Any, columns: tuple[str, ...], log1p: bool) -> _Impute:
    if not pd.isna(imputer.missing_values):
        raise NotCompilable("imputer: only NaN as the missing value")
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if np.isnan(fill).any():
        if not imputer.keep_empty_features:
            raise NotCompilable("imputer: features dropped for being empty")
        fill = np.where(np.isnan(fill), 0.0, fill)  # what sklearn fills empty features with
    indicator = imputer.indicator_
    if indicator is None:
        positions = np.array([], dtype=np.intp)
    else:
        if indicator.features != "missing-only" or indicator.sparse not in ("auto", False):
            raise NotCompilable("imputer: indicator options")
        positions = np.asarray(indicator.features_, dtype=np.intp)
    return _Impute(columns, log1p, fill, positions)


class _Treelite:
    """A tree ensemble as treelite: GTIL on one thread for small batches, else the estimator."""

    def __init__(self, estimator: Any, gtil_max_rows: int) -> None:
        import treelite

        self.estimator = estimator
        self.gtil_max_rows = gtil_max_rows
        self._model = treelite.sklearn.import_model(estimator)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = state["_model"].serialize_bytes()  # treelite models do not pickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import treelite

        state = dict(state)
        state["_model"] = treelite.Model.deserialize_bytes(state["_model"])
        self.__dict__.update(state)

    def predict(self, features: np.ndarray, names: list[str]) -> np.ndarray:
        if len(features) <= self.gtil_max_rows:
            from treelite import gtil

            # one thread: a small batch is faster than starting threads, and never oversubscribes
            return gtil.predict(self._model, features, nthread=1)[:, 0, 0]
        frame = pd.DataFrame(features, columns=names, copy=False)
        return self.estimator.predict_proba(frame)[:, 1]


class _Logistic:
    """StandardScaler + LogisticRegression (binary) as the same arithmetic in numpy."""

    def __init__(self, estimator: Any) -> None:
        scaler, regression = (s for _, s in estimator.steps)
        self.mean = np.zeros(regression.n_features_in_) if scaler.mean_ is None else scaler.mean_
        self.scale = np.ones(regression.n_features_in_) if scaler.scale_ is None else scaler.scale_
        self.coef_t = np.asarray(regression.coef_, dtype=np.float64).T  # as sklearn multiplies
        self.intercept = np.asarray(regression.intercept_, dtype=np.float64)

    def predict(self, features: np.ndarray, names: list[str]) -> np.ndarray:
        with np.errstate(over="ignore"):  # exp overflow gives 0, the right limit
            scaled = (features - self.mean) / self.scale
            if not np.isfinite(scaled).all():  # scikit-learn refuses these rows the same way
                raise ValueError(
                    "Input X contains infinity or a value too large for dtype('float64') once "
                    "standardized: the logistic-regression model cannot score it."
                )
            z = (scaled @ self.coef_t + self.intercept).ravel()
            return 1.0 / (1.0 + np.exp(-z))


def _compile_classifier(classifier: Any, gtil_max_rows: int) -> _Treelite | _Logistic:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(classifier, HistGradientBoostingClassifier):
        if classifier.n_trees_per_iteration_ != 1 or classifier.is_categorical_ is not None:
            raise NotCompilable("HistGradientBoostingClassifier: binary, no categorical features")
        return _Treelite(classifier, gtil_max_rows)
    if isinstance(classifier, Pipeline) and len(classifier.steps) == 2:
        scaler, regression = (s for _, s in classifier.steps)
        if (
            isinstance(scaler, StandardScaler)
            and isinstance(regression, LogisticRegression)
            and len(regression.classes_) == 2
        ):
            return _Logistic(classifier)
    raise NotCompilable(f"classifier {type(classifier).__name__}")


class CompiledModel:
    """Fraud probabilities from instances, computing what ``preprocessor`` + ``classifier`` do.

    ``compiled`` says whether both parts were compiled; if not, :meth:`predict_proba` is the
    scikit-learn call itself. Pickles (treelite models are kept as their serialized bytes).
    """

    def __init__(
        self, preprocessor: Any, classifier: Any, gtil_max_rows: int = 256, enabled: bool = True
    ) -> None:
        self.preprocessor = preprocessor
        self.classifier = classifier
        try:
            if not enabled:
                raise NotCompilable("compilation is switched off (training.compile.enabled)")
            self._features = compile_preprocessor(preprocessor)
            self._scorer = _compile_classifier(classifier, gtil_max_rows)
            self.compiled = True
        except NotCompilable as reason:
            logger.warning("Serving through scikit-learn: cannot compile %s.", reason)
            self._features = self._scorer = None
            self.compiled = False

    @property
    def kind(self) -> str:
        return type(self._scorer).__name__.lstrip("_").lower() if self.compiled else "sklearn"

    def features(self, instances: pd.DataFrame) -> np.ndarray:
        """The classifier's input matrix, as ``preprocessor.transform`` would give it."""
        if not self.compiled:
            return self.preprocessor.transform(instances).to_numpy(dtype=np.float64)
        return self._features.transform(instances)

    def predict_proba(self, instances: pd.DataFrame) -> np.ndarray:
        """P(fraud) per row of ``instances`` (contract-valid TransactionInstance rows)."""
        if not self.compiled:
            return self.classifier.predict_proba(self.preprocessor.transform(instances))[:, 1]
        return self._scorer.predict(self.features(instances), self._features.feature_names)

    def reference_proba(self, instances: pd.DataFrame) -> np.ndarray:
        """The same probabilities through scikit-learn (what the compiled path must equal)."""
        return self.classifier.predict_proba(self.preprocessor.transform(instances))[:, 1]
