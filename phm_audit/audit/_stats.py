"""Small numeric helpers shared by the audit kernels."""

from __future__ import annotations

import numpy as np

__all__ = ["descending_order", "lowest_counts_masks", "rank_bins", "safe_div", "top_k_mask"]


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
    """Boolean mask of the ``k`` highest values, ties broken by input order.

    With ``order`` (from :func:`descending_order`) the first ``k`` of it; without, an O(N) selection
    of the k-th highest value, the same people: everyone above it, and the earliest of those tied at it.

    Examples
    --------
    >>> top_k_mask(np.array([0.5, 0.9, 0.5, 0.1]), 2)
    array([ True,  True, False, False])
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if order is not None:
        mask = np.zeros(n, dtype=bool)
        mask[order[:k]] = True
        return mask
    if k <= 0 or n == 0:
        return np.zeros(n, dtype=bool)
    if k >= n:
        return np.ones(n, dtype=bool)
    boundary = np.partition(values, n - k)[n - k]
    mask = values > boundary
    mask[np.flatnonzero(values == boundary)[: k - int(np.count_nonzero(mask))]] = True
    return mask


def lowest_counts_masks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For each count m, the mask of the ``m`` lowest values, ties broken by input order (one selection for all).

    Row ``j`` is the mask of the first ``counts[j]`` people of ``np.argsort(values, kind="stable")``.

    Examples
    --------
    >>> lowest_counts_masks(np.array([3.0, 1.0, 1.0, 2.0]), np.array([1, 3])).astype(int)
    array([[0, 1, 0, 0],
           [0, 1, 1, 1]])
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros((counts.size, n), dtype=bool)
    inner = np.flatnonzero((counts > 0) & (counts < n))
    out[counts >= n] = True
    if inner.size:
        bounds = np.partition(values, counts[inner] - 1)[counts[inner] - 1]
        for row, m, boundary in zip(inner.tolist(), counts[inner].tolist(), bounds.tolist(), strict=True):
            mask = values < boundary
            mask[np.flatnonzero(values == boundary)[: m - int(np.count_nonzero(mask))]] = True
            out[row] = mask
    return out


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
