"""Bootstrap intervals by resampling counts, not rows.

Every audit statistic here is a function of per-cell counts and per-cell sums, where a cell is,
for example, (group, flagged, high need) or (group, score bin). Resampling N people with
replacement gives cell counts that are exactly multinomial; given the counts, a cell's sum is the
sum of that many draws from the cell's own values. Small cells are resampled exactly (draws of
indices into the cell); large cells use the normal limit of the sum, with the cell's covariance
across the summed columns. Each replicate costs O(cells), not O(people).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CellTable", "cell_table", "grouped_table", "moments_table", "percentile_interval"]

EXACT_BELOW = 200


@dataclass(frozen=True)
class CellTable:
    """Counts and sums per cell for the observed data and for each bootstrap replicate.

    Attributes
    ----------
    counts : ndarray, shape (1 + B, C)
        Row 0 is the observed data; rows 1..B are replicates.
    sums : ndarray, shape (1 + B, C, K)
        Sums of the K value columns per cell, same layout.
    """

    counts: np.ndarray
    sums: np.ndarray

    @property
    def n_boot(self) -> int:
        return self.counts.shape[0] - 1


def _cell_moments(cells: np.ndarray, n_cells: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(cells, minlength=n_cells).astype(np.float64)
    k = values.shape[1]
    sums = np.empty((n_cells, k))
    for j in range(k):
        sums[:, j] = np.bincount(cells, weights=values[:, j], minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
    centred = values - means[cells]
    cov = np.empty((n_cells, k, k))
    for a in range(k):
        for b in range(a, k):
            s = np.bincount(cells, weights=centred[:, a] * centred[:, b], minlength=n_cells)
            cov[:, a, b] = cov[:, b, a] = s / np.maximum(counts, 1)
    return counts, sums, cov


def cell_table(
    cells: np.ndarray,
    n_cells: int,
    values: np.ndarray | None = None,
    *,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> CellTable:
    """Observed and bootstrapped counts and sums per cell.

    Parameters
    ----------
    cells : ndarray of int, shape (N,)
        Each person's cell, ``0 .. n_cells - 1``.
    n_cells : int
        Number of cells.
    values : ndarray, shape (N, K), optional
        Columns to sum per cell (for example need and cost).
    n_boot : int, default 200
        Bootstrap replicates (0 for point estimates only).
    rng : numpy.random.Generator, optional
        Random source; pass a seeded one for reproducible intervals.

    Returns
    -------
    CellTable
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n = cells.size
    vals = np.zeros((n, 0)) if values is None else np.asarray(values, dtype=np.float64).reshape(n, -1)
    k = vals.shape[1]
    counts, sums, cov = _cell_moments(cells, n_cells, vals)
    out_counts = np.empty((1 + n_boot, n_cells))
    out_sums = np.empty((1 + n_boot, n_cells, k))
    out_counts[0], out_sums[0] = counts, sums
    if n_boot == 0 or n == 0:
        return CellTable(out_counts, out_sums)
    boot_counts = _draw(counts, sums, cov, out_counts, out_sums, n_boot, rng)
    if k == 0:
        return CellTable(out_counts, out_sums)
    # small cells: exact resampling of the cell's own values
    small = np.flatnonzero((counts > 0) & (counts < EXACT_BELOW))
    if small.size:
        is_small = np.zeros(n_cells, dtype=bool)
        is_small[small] = True
        inside = np.flatnonzero(is_small[cells])  # only the people of small cells are sorted
        order = inside[np.argsort(cells[inside], kind="stable")]
        local = np.zeros(n_cells, dtype=np.int64)
        local[small] = np.arange(small.size)
        starts = np.concatenate([[0], np.cumsum(counts[small])[:-1]]).astype(np.int64)
        draws = boot_counts[:, small].astype(np.int64)  # (B, S)
        total = int(draws.sum())
        flat = draws.ravel()
        which = np.repeat(np.arange(flat.size), flat)  # index into (B, S)
        cell_of = small[which % small.size]
        pos = (rng.random(total) * counts[cell_of]).astype(np.int64)
        members = order[starts[local[cell_of]] + pos]
        for j in range(k):
            s = np.bincount(which, weights=vals[members, j], minlength=flat.size).reshape(n_boot, small.size)
            out_sums[1:, small, j] = s
    return CellTable(out_counts, out_sums)


def _draw(
    counts: np.ndarray,
    sums: np.ndarray,
    cov: np.ndarray,
    out_counts: np.ndarray,
    out_sums: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    smooth: bool = False,
) -> np.ndarray:
    """Replicates 1..B of the counts (multinomial) and of the sums (normal limit of a sum of m draws).

    ``smooth`` takes the covariance's root by Cholesky, which moves little when the covariance moves
    little (an engine's sums differ from another's in the last digits); the eigenvectors of a matrix
    with close eigenvalues can turn far.
    """
    n_cells, k = sums.shape
    n = round(float(counts.sum()))
    boot_counts = rng.multinomial(n, counts / n, size=n_boot).astype(np.float64)
    out_counts[1:] = boot_counts
    if k == 0:
        return boot_counts
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
    # the normal limit of a sum of m draws from the cell, correlated across the K columns
    root = _cholesky_root(cov) if smooth else _eigen_root(cov)  # (C, K, K), root @ root.T == cov
    z = rng.standard_normal((n_boot, n_cells, k))
    noise = np.einsum("cij,bcj->bci", root, z)
    out_sums[1:] = boot_counts[:, :, None] * means[None] + np.sqrt(boot_counts)[:, :, None] * noise
    return boot_counts


def _eigen_root(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def _cholesky_root(cov: np.ndarray) -> np.ndarray:
    """Cholesky roots of a stack of covariances, by their correlations; a column of variance 0 gets no noise.

    The correlations' diagonal is raised by 1e-10 so that a factor exists for columns that move together
    exactly (a singular covariance).
    """
    sd = np.sqrt(np.clip(np.einsum("cii->ci", cov), 0.0, None))
    scale = np.where(sd > 0, sd, 1.0)
    live = (sd[:, :, None] > 0) & (sd[:, None, :] > 0)
    corr = np.clip(np.where(live, cov / (scale[:, :, None] * scale[:, None, :]), 0.0), -1.0, 1.0)
    np.einsum("cii->ci", corr)[...] = 1.0 + 1e-10
    return sd[:, :, None] * np.linalg.cholesky(corr)


def moments_table(
    counts: np.ndarray,
    sums: np.ndarray | None = None,
    cross: np.ndarray | None = None,
    *,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> CellTable:
    """Observed and bootstrapped counts and sums per cell, from each cell's count, sums and cross-products.

    The aggregate-first form of :func:`cell_table`: what a data engine's ``GROUP BY`` returns is
    enough, and no person's value is read. Counts are multinomial as there; every cell's sums use
    the normal limit, with the covariance ``cross / m - mean mean^T`` (small cells included, which
    :func:`cell_table` resamples exactly from their members).

    Parameters
    ----------
    counts : ndarray, shape (C,)
    sums : ndarray, shape (C, K), optional
        Sums of K value columns per cell (none: counts only).
    cross : ndarray, shape (C, K, K), optional
        Sums of products of each pair of value columns per cell (with ``sums``).
    n_boot : int, default 200
    rng : numpy.random.Generator, optional

    Returns
    -------
    CellTable
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    counts = np.asarray(counts, dtype=np.float64).ravel()
    if sums is None or cross is None:
        sums, cross = np.zeros((counts.size, 0)), np.zeros((counts.size, 0, 0))
    sums = np.asarray(sums, dtype=np.float64).reshape(counts.size, -1)
    k = sums.shape[1]
    cross = np.asarray(cross, dtype=np.float64).reshape(counts.size, k, k)
    out_counts = np.empty((1 + n_boot, counts.size))
    out_sums = np.empty((1 + n_boot, counts.size, k))
    out_counts[0], out_sums[0] = counts, sums
    if n_boot == 0 or counts.sum() == 0:
        return CellTable(out_counts, out_sums)
    safe = np.maximum(counts, 1)[:, None]
    means = sums / safe
    second = cross / safe[:, :, None]
    cov = second - means[:, :, None] * means[:, None, :]
    # A variance below the rounding of E[x^2] - mean^2 is 0: two engines that add in other orders
    # differ there in the last digits, and the square root of the noise would magnify the difference.
    diag = np.einsum("cii->ci", cov)
    flat = np.abs(diag) <= 1e-9 * np.abs(np.einsum("cii->ci", second))
    cov = np.where(flat[:, :, None] | flat[:, None, :], 0.0, cov)
    _draw(counts, sums, cov, out_counts, out_sums, n_boot, rng, smooth=True)
    return CellTable(out_counts, out_sums)


def grouped_table(
    order: np.ndarray,
    counts: np.ndarray,
    sums: np.ndarray | None = None,
    cross: np.ndarray | None = None,
    *,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`moments_table` of cells by (group, ...), drawn with the groups in ``order``.

    ``counts`` has shape (G, ...), ``sums`` (G, ..., K) and ``cross`` (G, ..., K, K); the groups
    are put in ``order`` (a grouping's :attr:`~phm_audit.audit._groups.Grouping.canonical` order)
    for the draws and back after, so the replicates do not depend on the order an engine lists the
    groups in.

    Returns
    -------
    counts, sums : ndarray
        Shapes (1 + B, G, ...) and (1 + B, G, ..., K).
    """
    counts = np.asarray(counts, dtype=np.float64)
    k = 0 if sums is None else np.asarray(sums).shape[-1]
    t = moments_table(
        counts[order].ravel(),
        None if sums is None else np.asarray(sums)[order].reshape(-1, k),
        None if cross is None else np.asarray(cross)[order].reshape(-1, k, k),
        n_boot=n_boot,
        rng=rng,
    )
    back = np.argsort(order)
    reps = t.counts.shape[0]
    return t.counts.reshape(reps, *counts.shape)[:, back], t.sums.reshape(reps, *counts.shape, k)[:, back]


def percentile_interval(
    replicates: np.ndarray, *, level: float = 0.95, min_valid: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis, ignoring undefined replicates.

    Parameters
    ----------
    replicates : ndarray, shape (B, ...)
        Bootstrap values; NaN where a replicate leaves the statistic undefined.
    level : float, default 0.95
    min_valid : float, default 0.5
        Share of replicates that must be defined; otherwise the interval is NaN.

    Returns
    -------
    (low, high) : tuple of ndarray
        Linear-interpolated quantiles (numpy's default method) of the defined replicates.
    """
    shape = replicates.shape[1:]
    b = replicates.shape[0]
    if b == 0:
        return np.full(shape, np.nan), np.full(shape, np.nan)
    flat = replicates.reshape(b, -1)
    valid = np.isfinite(flat)
    m = valid.sum(axis=0)
    ordered = np.sort(np.where(valid, flat, np.inf), axis=0)  # undefined replicates sort last
    alpha = (1 - level) / 2
    cols = np.arange(flat.shape[1])

    def quantile(q: float) -> np.ndarray:
        pos = q * np.maximum(m - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
        frac = pos - lo
        a, c = ordered[lo, cols], ordered[hi, cols]
        with np.errstate(invalid="ignore"):
            out = a + (c - a) * frac
        return np.where(frac == 0, a, out)

    enough = (m >= min_valid * b) & (m > 0)
    low = np.where(enough, quantile(alpha), np.nan).reshape(shape)
    high = np.where(enough, quantile(1 - alpha), np.nan).reshape(shape)
    return low, high
