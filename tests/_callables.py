"""Functions for the ``module:function`` loader tests (``load_callable("_callables:risk")``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

NOT_A_FUNCTION = 3


def risk(cohort: pd.DataFrame) -> np.ndarray:
    """A plausible score: recorded conditions, then age."""
    return cohort["n_ltc_recorded"].to_numpy(np.float64) + cohort["age"].to_numpy(np.float64) / 200


def sees(cohort: pd.DataFrame) -> np.ndarray:
    """How many label or truth columns the callable was shown (should be 0), as a score per person."""
    hidden = [c for c in ("cost_next", "need_true", "need_true_next", "has_diabetes") if c in cohort.columns]
    return np.full(len(cohort), float(len(hidden)))


def raises(cohort: pd.DataFrame) -> np.ndarray:
    raise ValueError("the vendor's model needs column frailty_score")


def wrong_shape(cohort: pd.DataFrame) -> np.ndarray:
    return np.zeros((len(cohort), 2))


def too_short(cohort: pd.DataFrame) -> np.ndarray:
    return np.zeros(len(cohort) - 1)


def with_nan(cohort: pd.DataFrame) -> np.ndarray:
    out = np.ones(len(cohort))
    out[::7] = np.nan
    return out


def words(cohort: pd.DataFrame) -> list[str]:
    return ["high"] * len(cohort)


def as_series(cohort: pd.DataFrame) -> pd.Series:
    return cohort["cost_prior"].astype("float64")
