"""The threshold sweep as a tidy table: every per-group metric at every capacity, from one sort by score.

How it is computed
------------------
Through the audit's own kernel, :mod:`phm_audit.audit._sweep_rows` (``analysis = thresholds``):
the same capacities (:func:`~phm_audit.audit._sweep_rows.capacities`), the same buckets
(:func:`~phm_audit.audit._sweep_rows.buckets_from_order`: a person's first capacity at which they
are among the k highest scores, or the k highest need) and the same cumulative sums per group
(:func:`~phm_audit.audit._sweep_rows.sweep_counts`) and metric definitions
(:meth:`~phm_audit.audit._sweep_rows.SweepCounts.parts`), without the bootstrap. This module only
checks the arguments and lays the counts out as a long table. The cost is three sorts, O(N log N),
plus counting over at most G x (T + 1)^2 cells; there is no pass per threshold and no N x G array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import as_scores
from phm_audit.audit._stats import descending_order, safe_div
from phm_audit.audit._sweep_rows import DEFAULT_FRACTIONS, SWEEP_METRICS, buckets_from_order, capacities, sweep_counts
from phm_audit.exceptions import PhmInputError

__all__ = ["DEFAULT_SWEEP_FRACTIONS", "OVERALL", "SWEEP_COLUMNS", "SWEEP_METRICS", "threshold_sweep"]

#: Default capacities of the sweep: the audit's (``AuditSpec.sweep_fractions`` left out), 100 shares
#: of the population from 0.5% to 50% in steps of 0.5%.
DEFAULT_SWEEP_FRACTIONS: tuple[float, ...] = DEFAULT_FRACTIONS

#: Columns of the frame :func:`threshold_sweep` returns.
SWEEP_COLUMNS: tuple[str, ...] = ("group", "fraction", "k", "metric", "value", "numerator", "denominator", "n")

#: Label of the whole-population rows.
OVERALL = "all"


def _label(value: object) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _encode(groups: Any, n: int, group_names: Sequence[Any] | None) -> tuple[np.ndarray, list[str]]:
    """Integer codes 0..G-1 per person and the G group labels (as strings)."""
    if group_names is not None:
        labels = [_label(g) for g in group_names]
        codes = np.asarray(groups)
        if codes.ndim != 1 or codes.shape[0] != n:
            raise PhmInputError(f"groups must hold one code per person ({n:,}); got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise PhmInputError(
                f"with group_names, groups must be integer codes 0..{len(labels) - 1}; got dtype {codes.dtype}. "
                "Pass the labels themselves as groups and leave group_names out"
            )
        if len(labels) == 0:
            raise PhmInputError("group_names is empty; give one name per group code")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= len(labels):
            raise PhmInputError(
                f"groups holds codes from {low} to {high} but group_names names {len(labels)} groups "
                f"(codes 0..{len(labels) - 1}); give one name per code"
            )
        return codes.astype(np.intp, copy=False), labels
    if isinstance(groups, pd.Series | pd.Index):
        groups = groups.array
    if isinstance(groups, pd.Categorical) or isinstance(getattr(groups, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(groups)
        if len(cat) != n:
            raise PhmInputError(f"groups must hold one label per person ({n:,}); got {len(cat):,}")
        codes = np.asarray(cat.codes, dtype=np.intp)
        if (codes < 0).any():
            raise PhmInputError(
                f"groups has {int((codes < 0).sum()):,} missing labels; fill them, e.g. with '(missing)', "
                "or drop those people"
            )
        return codes, [_label(c) for c in cat.categories]
    values = np.asarray(groups)
    if values.ndim != 1 or values.shape[0] != n:
        raise PhmInputError(f"groups must hold one label per person ({n:,}); got shape {values.shape}")
    if values.dtype.kind in "ib" or (values.dtype.kind == "u" and values.dtype.itemsize < 8):
        ints = values.astype(np.int64, copy=False)
        low = int(ints.min())
        span = int(ints.max()) - low + 1
        if span <= max(1_000_000, 2 * n):
            # small integer labels (quintiles, codes): a lookup table is O(N) and sorted for free
            present = np.flatnonzero(np.bincount(ints - low, minlength=span))
            table = np.full(span, -1, dtype=np.intp)
            table[present] = np.arange(present.size)
            return table[ints - low], [_label(v) for v in (values.dtype.type(p + low) for p in present)]
    missing = pd.isna(values)
    if missing.any():
        raise PhmInputError(
            f"groups has {int(missing.sum()):,} missing labels; fill them, e.g. with '(missing)', or drop those people"
        )
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # labels of mixed types cannot be sorted: keep the order of first appearance
        codes, uniques = pd.factorize(values, sort=False)
    return np.asarray(codes, dtype=np.intp), [_label(u) for u in uniques]


def _check_fractions(fractions: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The caller's fractions, the capacities of the distinct ones (ascending), and each fraction's index into them."""
    fr = np.atleast_1d(np.asarray(DEFAULT_SWEEP_FRACTIONS if fractions is None else fractions, dtype=np.float64))
    if fr.ndim != 1 or fr.size == 0:
        raise PhmInputError(f"fractions must be a non-empty list of shares of the population; got shape {fr.shape}")
    bad = ~np.isfinite(fr) | (fr <= 0) | (fr > 1)
    if bad.any():
        raise PhmInputError(
            f"fractions must be shares of the population in (0, 1], e.g. 0.03 for the top 3%; got {float(fr[bad][0])!r}"
        )
    distinct, back = np.unique(fr, return_inverse=True)
    distinct, ks = capacities(n, distinct, minimum=0)
    if (ks == 0).any():
        raise PhmInputError(
            f"fraction {float(distinct[ks == 0][0])!r} of a population of {n:,} is a capacity of 0 people; "
            "use larger fractions"
        )
    return fr, ks, back.reshape(-1)


def _check_high_need(high_need: Any, n: int) -> np.ndarray:
    mask = np.asarray(high_need)
    if mask.ndim != 1 or mask.shape[0] != n:
        raise PhmInputError(f"high_need must hold one value per person ({n:,}); got shape {mask.shape}")
    if mask.dtype != np.bool_:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise PhmInputError(
                f"high_need must be boolean (True = high need); got dtype {mask.dtype}. "
                "Pass e.g. need >= cut, or leave it out to use the k people with the highest need"
            )
        mask = mask.astype(bool)
    return mask


def threshold_sweep(
    scores: Any,
    groups: Any,
    *,
    need: Any,
    high_need: Any = None,
    fractions: Sequence[float] | np.ndarray | None = None,
    group_names: Sequence[Any] | None = None,
    overall: bool = True,
) -> pd.DataFrame:
    """Per-group selection and need metrics at every capacity of a sweep, from one sort by score.

    At each capacity k = ceil(f x N) for a share ``f`` of the population, the k highest scores are
    flagged, with the tie rule of :func:`phm_audit.audit.flag`: descending score, then ascending
    position in the input. The result equals flagging with ``flag(scores, "top_k:k")`` at each
    capacity, but is computed with one sort and cumulative counts, by the kernel of the audit's
    threshold sweep (``analysis = thresholds``; see the module notes), so its numbers are the audit's.

    Parameters
    ----------
    scores : array-like of float, shape (N,)
        One finite score per person (higher = higher risk).
    groups : array-like, shape (N,)
        Each person's group label (any dtype, or a pandas Categorical, whose categories give the
        groups and their order, unused ones included as empty groups). Without ``group_names`` the
        groups are reported in sorted order. Missing labels are an error.
    need : array-like of float, shape (N,)
        Each person's need (ground truth such as ``need_true_next`` or a proxy), finite. It weights
        ``need_captured`` and, unless ``high_need`` is given, defines who has high need.
    high_need : array-like of bool, shape (N,), optional
        A fixed definition of high need. Default: at capacity k, the k people with the highest need
        ("the same number of people with the highest need"), ties broken by the same stable rule
        applied to need; high need then changes with k.
    fractions : sequence of float, optional
        Capacities as shares of the population, in (0, 1]. Default :data:`DEFAULT_SWEEP_FRACTIONS`,
        the audit's grid (``AuditSpec.sweep_fractions`` left out): 100 points from 0.005 to 0.5 in
        steps of 0.005. Any order; the output keeps it.
    group_names : sequence, optional
        Labels of the groups when ``groups`` holds integer codes 0..G-1 (group ``i`` is called
        ``group_names[i]``; codes never used are reported as empty groups).
    overall : bool, default True
        Also report the whole population as group ``"all"``.

    Returns
    -------
    pandas.DataFrame
        A tidy long table with one row per group, capacity and metric, and columns

        - ``group`` (str): the group label, and ``"all"`` for the whole population;
        - ``fraction`` (float) and ``k`` (int): the share of the population and the capacity;
        - ``metric`` (str), ``value`` (float): ``value = numerator / denominator``;
        - ``numerator``, ``denominator`` (float): the counts (or need totals) the value is made of.
          ``value`` is NaN exactly when ``denominator`` is 0 (never 0, never inf), so the
          denominator tells why a value is undefined;
        - ``n`` (int): the group's size (N for ``"all"``).

        With F the group's flagged count, H its high-need count, TP those both flagged and high
        need, n its size, the metrics are: ``selection_rate`` = F / n; ``flagged_share`` = F / k
        (the group's share of everyone flagged); ``high_need_share`` = H / (everyone with high need);
        ``need_captured`` = need of the flagged members / need of all members; ``unmet_need_rate``
        = (H - TP) / H (the false-negative rate: high-need members not flagged); ``tpr`` = TP / H;
        ``fpr`` = (F - TP) / (n - H); ``ppv`` = TP / F.

    Raises
    ------
    PhmInputError
        If the arrays differ in length, scores or need are missing or infinite, groups has missing
        labels, a fraction lies outside (0, 1] or rounds to 0 people, or a group is called "all"
        while ``overall`` is on.

    See Also
    --------
    phm_audit.audit.flag : who one operating point flags.

    Notes
    -----
    Cost: one stable sort by score, (for the default high need) one by need and one of the
    (group, score bucket, need bucket) cells, O(N log N), plus counting over at most G x (T + 1)^2
    cells for G groups and T capacities. ``need_captured`` is non-decreasing in k
    when need is non-negative.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    >>> groups = np.array(["a", "b", "a", "b", "a", "b", "a", "b"])
    >>> need = np.array([5.0, 1.0, 4.0, 0.0, 3.0, 9.0, 2.0, 0.0])
    >>> sweep = threshold_sweep(scores, groups, need=need, fractions=[0.25, 0.5])
    >>> cols = ["group", "k", "value", "numerator", "denominator"]
    >>> print(sweep.query("metric == 'selection_rate'")[cols].to_string(index=False))
    group  k  value  numerator  denominator
        a  2   0.25        1.0          4.0
        a  4   0.50        2.0          4.0
        b  2   0.25        1.0          4.0
        b  4   0.50        2.0          4.0
      all  2   0.25        2.0          8.0
      all  4   0.50        4.0          8.0
    >>> print(sweep.query("metric == 'tpr' and k == 2")[cols].to_string(index=False))
    group  k  value  numerator  denominator
        a  2    1.0        1.0          1.0
        b  2    0.0        0.0          1.0
      all  2    0.5        1.0          2.0

    A group with nobody flagged has no ppv (NaN, denominator 0); one whose flagged members all lack
    high need has a ppv of 0.

    >>> one = threshold_sweep(scores, groups, need=need, fractions=[0.125])
    >>> print(one.query("metric == 'ppv'")[cols].to_string(index=False))
    group  k  value  numerator  denominator
        a  1    0.0        0.0          1.0
        b  1    NaN        0.0          0.0
      all  1    0.0        0.0          1.0
    """
    score = as_scores(scores, None, "scores", verb="has", noun="values")
    n = score.size
    need_values = as_scores(need, n, "need", verb="has", noun="values")
    codes, labels = _encode(groups, n, group_names)
    n_groups = len(labels)
    if len(set(labels)) != n_groups:
        raise PhmInputError(f"group labels must be distinct as text; got {labels}")
    if overall and OVERALL in labels:
        raise PhmInputError(
            f"a group is called '{OVERALL}', the label of the whole-population rows; rename it or pass overall=False"
        )
    fr, ks, back = _check_fractions(fractions, n)
    fixed_high = None if high_need is None else _check_high_need(high_need, n)

    # the audit's kernel, on the distinct capacities (ascending); mapped back to the caller's order at the end
    t = ks.size
    score_buckets = buckets_from_order(descending_order(score), ks)
    if fixed_high is None:
        need_buckets = buckets_from_order(descending_order(need_values), ks)
    else:  # a fixed high need: high at every capacity (bucket 0) or at none (bucket t)
        need_buckets = np.where(fixed_high, 0, t)
    counts = sweep_counts(codes, n_groups, score_buckets, need_buckets, need_values, t)
    tables = [counts, counts.pooled()] if overall else [counts]
    if overall:
        labels = [*labels, OVERALL]
    parts = [(c.parts(), c.flagged.shape[1:]) for c in tables]  # replicate 0 of each: (groups, capacities)

    def laid_out(side: int) -> np.ndarray:
        # numerators (side 0) or denominators (1) as (metrics, groups, fractions in the caller's order)
        blocks = [np.stack([np.broadcast_to(p[m][side][0], shape) for m in SWEEP_METRICS]) for p, shape in parts]
        return np.concatenate(blocks, axis=1)[:, :, back]

    num, den = laid_out(0), laid_out(1)
    value = safe_div(num, den)
    rows_g = len(labels)
    group_n = np.concatenate([c.size[0, :, 0] for c in tables]).astype(np.int64)

    m_count, n_fr = len(SWEEP_METRICS), fr.size
    shape = (m_count, rows_g, n_fr)
    return pd.DataFrame(
        {
            "group": np.broadcast_to(np.asarray(labels, dtype=object)[None, :, None], shape).ravel(),
            "fraction": np.broadcast_to(fr[None, None, :], shape).ravel(),
            "k": np.broadcast_to(ks[back][None, None, :], shape).ravel(),
            "metric": np.broadcast_to(np.asarray(SWEEP_METRICS, dtype=object)[:, None, None], shape).ravel(),
            "value": value.ravel(),
            "numerator": num.ravel(),
            "denominator": den.ravel(),
            "n": np.broadcast_to(group_n[None, :, None], shape).ravel(),
        },
        columns=list(SWEEP_COLUMNS),
    )
