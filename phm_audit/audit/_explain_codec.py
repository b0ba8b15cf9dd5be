"""The columns a model's score is attributed to, and those columns as one float matrix and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.exceptions import PhmInputError, PhmTypeError

__all__ = ["FeatureCodec", "attribution_columns"]


def attribution_columns(model: Any, cohort: pd.DataFrame, notes: list[str]) -> list[str]:
    """The columns to attribute the score to: the model's features, or, for a model that lists none (a
    supplied callable), every ``feature`` and ``protected`` column of the cohort (a note says so)."""
    missing = [a for a in ("name", "features", "score") if not hasattr(model, a)]
    if missing:
        raise PhmTypeError(
            "explain needs a fitted risk model with 'name', 'features' and 'score(cohort)'; "
            f"{type(model).__name__} has no {', '.join(repr(a) for a in missing)}"
        )
    features = [str(f) for f in model.features]
    if features:
        return features
    roles = (cohort.attrs.get("phm_audit") or {}).get("roles") or {}
    seen = [str(c) for c in cohort.columns if roles.get(c) in ("feature", "protected")]
    if not seen:
        raise PhmInputError(
            f"model '{model.name}' lists no features and the cohort does not say which of its columns are "
            "features (no column roles), so there is nothing to attribute its score to"
        )
    notes.append(
        f"{model.name}: it lists no features, so its score is attributed to the {len(seen)} feature and protected "
        "columns it can see (a column it does not read gets 0)"
    )
    return seen


class FeatureCodec:
    """The model's feature columns as a float matrix (bool as 0/1, categories as codes), and back.

    Parameters
    ----------
    frame : pandas.DataFrame
        People whose columns give the dtypes and the categories (text columns: their sorted values).
    features : sequence of str
        The columns, in the matrix's column order.
    """

    def __init__(self, frame: pd.DataFrame, features: Sequence[str]) -> None:
        self.features = list(features)
        self.dtypes = {f: frame[f].dtype for f in self.features}
        self.categories: dict[str, pd.Index] = {}
        for f in self.features:
            col = frame[f]
            if isinstance(col.dtype, pd.CategoricalDtype):
                self.categories[f] = col.cat.categories
            elif not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                self.categories[f] = pd.Index(sorted(col.dropna().astype(str).unique()))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The features of ``frame`` as a float64 matrix, one column per feature (missing as NaN)."""
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, f in enumerate(self.features):
            col = frame[f]
            if f in self.categories:
                codes = pd.Categorical(col.astype(str) if col.dtype == object else col, categories=self.categories[f])
                vals = codes.codes.astype(np.float64)
                vals[vals < 0] = np.nan
                out[:, j] = vals
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """A frame of the features from a matrix made by :meth:`encode`, in their original dtypes."""
        data: dict[str, Any] = {}
        for j, f in enumerate(self.features):
            v = matrix[:, j]
            dtype = self.dtypes[f]
            if f in self.categories:
                codes = np.where(np.isfinite(v), v, -1).astype(np.int64)
                data[f] = pd.Categorical.from_codes(codes, categories=self.categories[f])
            elif pd.api.types.is_bool_dtype(dtype):
                data[f] = v != 0
            elif pd.api.types.is_integer_dtype(dtype) and np.isfinite(v).all():
                data[f] = np.rint(v).astype(dtype)
            elif isinstance(dtype, np.dtype) and dtype.kind == "f":
                data[f] = v.astype(dtype)  # back to float32 where it was, so the score is computed alike
            else:
                data[f] = v
        return pd.DataFrame(data)
