"""Small checks shared by the models stage; messages name the argument, the value and the fix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from phm_audit.exceptions import PhmInputError, closest
from phm_audit.synth._cohort import cohort_roles

__all__ = [
    "check_no_outcomes",
    "columns_of_role",
    "format_list",
    "id_normal",
    "id_uniform",
    "patient_ids",
]

ID_COLUMN = "patient_id"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array: a fast, well-mixed, platform-independent hash."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _id_hash(ids: pd.Series | np.ndarray, seed: int, salt: int) -> np.ndarray:
    values = np.asarray(ids)
    if values.dtype.kind in "iu":
        keys = values.astype(np.int64).view(np.uint64)
    else:
        # Text or other ids: pandas' stable hash of the value, then the same mixing.
        keys = pd.util.hash_array(values.astype(str).astype(object), categorize=False)
    key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) ^ np.uint64(salt))[0]
    return _splitmix64(keys ^ key)


def id_uniform(ids: pd.Series | np.ndarray, *, seed: int, salt: int = 0) -> np.ndarray:
    """A number in (0, 1) per id that depends only on the id, ``seed`` and ``salt``.

    Parameters
    ----------
    ids : array-like
        Person identifiers.
    seed, salt : int
        Choose the stream; ``salt`` separates uses (the split, the judgement noise).

    Returns
    -------
    ndarray of float64
    """
    h = _id_hash(ids, seed, salt)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def id_normal(ids: pd.Series | np.ndarray, *, seed: int, salt: int = 0) -> np.ndarray:
    """A standard normal number per id, deterministic in the id, ``seed`` and ``salt``."""
    return np.asarray(ndtri(id_uniform(ids, seed=seed, salt=salt)), dtype=np.float64)


def patient_ids(cohort: pd.DataFrame, who: str = "cohort") -> pd.Series:
    """Return the ``patient_id`` column, checking it exists and is unique."""
    if ID_COLUMN not in cohort.columns:
        raise PhmInputError(f"{who} has no '{ID_COLUMN}' column{closest(ID_COLUMN, map(str, cohort.columns))}")
    ids = cohort[ID_COLUMN]
    if ids.isna().any():
        raise PhmInputError(f"{who} has {int(ids.isna().sum())} empty '{ID_COLUMN}' value(s); every person needs one")
    dup = ids.duplicated(keep=False)
    if dup.any():
        first = ids[dup].iloc[:3].tolist()
        raise PhmInputError(
            f"{who} has {int(ids.duplicated().sum())} duplicate '{ID_COLUMN}' value(s) (e.g. {first}); "
            "each person must appear once"
        )
    return ids


def check_no_outcomes(who: str, features: Sequence[str], cohort: pd.DataFrame, *, allow_truth: bool) -> None:
    """Refuse ``features`` that are outcome-year labels, or ground truth unless ``allow_truth``."""
    roles = ("label",) if allow_truth else ("label", "truth")
    forbidden = set(columns_of_role(cohort, *roles))
    bad = [c for c in features if c in forbidden]
    if bad:
        raise PhmInputError(
            f"{who} may not read {format_list(bad)}: outcome-year labels and ground truth are never model "
            "inputs; use baseline 'feature' columns (see the data dictionary)"
        )


def columns_of_role(cohort: pd.DataFrame, *roles: str) -> list[str]:
    """The columns of ``cohort`` whose role (from its metadata or the schema) is one of ``roles``."""
    return [c for c, r in cohort_roles(cohort).items() if r in roles]


def format_list(items: Sequence[str], limit: int = 8) -> str:
    """``a, b, c`` or ``a, b, ... and 12 more``."""
    items = [str(i) for i in items]
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} ... and {len(items) - limit} more"
