"""Small numeric helpers shared by the audit kernels."""

from __future__ import annotations

import numpy as np

__all__ = ["descending_order", "rank_bins", "safe_div", "top_k_mask"]


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN (undefined), never 0 or inf, where ``den`` is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(den != 0, out, np.nan)


def descending_order(values: np.ndarray) -> np.ndarray:
    """Positions from highest to lowest value; ties keep input order (the documented tie rule)."""
    return np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")


def top_k_mask(values: np.ndarray, k: int, order: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the ``k`` highest values, ties broken by input order."""
    order = descending_order(values) if order is None else order
    mask = np.zeros(values.shape[0], dtype=bool)
    mask[order[:k]] = True
    return mask


def rank_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin people by their score: equal-size rank bins, or one bin per value when values are few.

    Returns
    -------
    bins : ndarray of int
        Each person's bin, 0 = lowest scores.
    low, high : ndarray
        Lowest and highest score in each bin (NaN for an empty bin).
    """
    values = np.asarray(values, dtype=np.float64)
    uniques, inverse = np.unique(values, return_inverse=True)
    if uniques.size <= n_bins:
        bins = inverse.astype(np.int64)
        return bins, uniques.copy(), uniques.copy()
    order = np.argsort(values, kind="stable")
    bins = np.empty(values.size, dtype=np.int64)
    bins[order] = (np.arange(values.size) * n_bins) // values.size
    low = np.full(n_bins, np.nan)
    high = np.full(n_bins, np.nan)
    sorted_vals = values[order]
    edges = (np.arange(n_bins + 1) * values.size + n_bins - 1) // n_bins
    nonempty = edges[1:] > edges[:-1]
    low[nonempty] = sorted_vals[edges[:-1][nonempty]]
    high[nonempty] = sorted_vals[edges[1:][nonempty] - 1]
    return bins, low, high
