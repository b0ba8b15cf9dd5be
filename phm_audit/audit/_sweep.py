"""The threshold sweep: every per-group metric at every capacity, from one sort by score.

How it is computed
------------------
Let k_1 < k_2 < ... < k_T be the capacities. In the stable descending order of the scores (the tie
rule of :mod:`phm_audit.audit._operating_points`), the person at position p is flagged at capacity
k_j exactly when p < k_j, so the first capacity that flags them, their *bucket*, is the number of
k_j <= p. With one sort by score each person gets a score bucket b_s, and with one sort by need a
need bucket b_n (high need at capacity k_j = among the k_j highest need). At capacity k_j:

- flagged = b_s <= j; high need = b_n <= j; flagged with high need = max(b_s, b_n) <= j.

So one ``np.bincount`` per quantity over (group, bucket) cells, then a cumulative sum along the
buckets, gives every count and every need total for every group at every capacity. The cost is the
two sorts, O(N log N), plus O(N + G x T) counting; there is no pass per threshold and no N x G
array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._operating_points import capacity_for_share, check_scores
from phm_audit.exceptions import PhmInputError

__all__ = ["DEFAULT_SWEEP_FRACTIONS", "OVERALL", "SWEEP_COLUMNS", "SWEEP_METRICS", "threshold_sweep"]

#: Default capacities of the sweep: 100 shares of the population from 0.5% to 50%.
DEFAULT_SWEEP_FRACTIONS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.005, 0.5, 100))

#: Metrics of the sweep, in the order of the output.
SWEEP_METRICS: tuple[str, ...] = (
    "selection_rate",
    "flagged_share",
    "high_need_share",
    "need_captured",
    "unmet_need_rate",
    "tpr",
    "fpr",
    "ppv",
)

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


def _check_fractions(fractions: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    fr = np.atleast_1d(np.asarray(DEFAULT_SWEEP_FRACTIONS if fractions is None else fractions, dtype=np.float64))
    if fr.ndim != 1 or fr.size == 0:
        raise PhmInputError(f"fractions must be a non-empty list of shares of the population; got shape {fr.shape}")
    bad = ~np.isfinite(fr) | (fr <= 0) | (fr > 1)
    if bad.any():
        raise PhmInputError(
            f"fractions must be shares of the population in (0, 1], e.g. 0.03 for the top 3%; got {float(fr[bad][0])!r}"
        )
    ks = np.array([capacity_for_share(f, n) for f in fr], dtype=np.int64)  # a loop over thresholds, not people
    if (ks == 0).any():
        raise PhmInputError(
            f"fraction {float(fr[ks == 0][0])!r} of a population of {n:,} is a capacity of 0 people; "
            "use larger fractions"
        )
    return fr, ks


def _check_need(need: Any, n: int) -> np.ndarray:
    values = check_scores(need, name="need")
    if values.size != n:
        raise PhmInputError(f"need has {values.size:,} values but scores has {n:,}; pass one need per person")
    return values


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


def _buckets(values: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Each person's first capacity index j with them among the ks[j] highest values (stable tie rule).

    ``ks`` must be sorted ascending; people flagged at no capacity get ``len(ks)``.
    """
    n = values.size
    order = np.argsort(-values, kind="stable")
    # positions p in the sorted order fall in bucket j = #{ks <= p}: runs of equal buckets
    run_lengths = np.diff(np.concatenate(([0], ks, [n])))
    by_position = np.repeat(np.arange(ks.size + 1, dtype=np.intp), run_lengths)
    buckets = np.empty(n, dtype=np.intp)
    buckets[order] = by_position
    return buckets


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
    capacity, but is computed with one sort and cumulative counts (see the module notes).

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
        100 points from 0.005 to 0.5. Any order; the output keeps it.
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
    Cost: one stable sort by score and (for the default high need) one by need, O(N log N), plus
    O(N + G x T) counting for G groups and T capacities. ``need_captured`` is non-decreasing in k
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
    score = check_scores(scores)
    n = score.size
    need_values = _check_need(need, n)
    codes, labels = _encode(groups, n, group_names)
    n_groups = len(labels)
    if len(set(labels)) != n_groups:
        raise PhmInputError(f"group labels must be distinct as text; got {labels}")
    if overall and OVERALL in labels:
        raise PhmInputError(
            f"a group is called '{OVERALL}', the label of the whole-population rows; rename it or pass overall=False"
        )
    fr, ks = _check_fractions(fractions, n)
    fixed_high = None if high_need is None else _check_high_need(high_need, n)

    # the distinct capacities, ascending; results are mapped back to the caller's order at the end
    uniq_ks, back = np.unique(ks, return_inverse=True)
    t = uniq_ks.size
    side = t + 1
    cells = codes * side  # a person's row of (group, bucket) cells
    size = n_groups * side

    def cumulative(index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        # (G, T): cumulative count (or weight) per group over buckets 0..j
        hist = np.bincount(cells + index, weights=weights, minlength=size).reshape(n_groups, side)
        return np.cumsum(hist, axis=1)[:, :t].astype(np.float64)

    score_bucket = _buckets(score, uniq_ks)
    flagged = cumulative(score_bucket)
    need_flagged = cumulative(score_bucket, need_values)
    group_size = np.bincount(codes, minlength=n_groups).astype(np.float64)
    group_need = np.bincount(codes, weights=need_values, minlength=n_groups)
    if fixed_high is None:
        need_bucket = _buckets(need_values, uniq_ks)
        high = cumulative(need_bucket)
        both = cumulative(np.maximum(score_bucket, need_bucket))
    else:
        high = np.repeat(np.bincount(codes[fixed_high], minlength=n_groups).astype(np.float64)[:, None], t, axis=1)
        both = np.cumsum(
            np.bincount((cells + score_bucket)[fixed_high], minlength=size).reshape(n_groups, side), axis=1
        )[:, :t].astype(np.float64)

    sizes = np.repeat(group_size[:, None], t, axis=1)
    needs = np.repeat(group_need[:, None], t, axis=1)
    if overall:
        flagged, need_flagged, high, both, sizes, needs = (
            np.vstack([a, a.sum(axis=0, keepdims=True)]) for a in (flagged, need_flagged, high, both, sizes, needs)
        )
        labels = [*labels, OVERALL]
    rows_g = len(labels)
    total_flagged = np.broadcast_to(uniq_ks.astype(np.float64)[None, :], (rows_g, t))
    total_high = np.broadcast_to(high[:n_groups].sum(axis=0, keepdims=True), (rows_g, t))
    parts = {  # metric: (numerator, denominator), each (groups, capacities)
        "selection_rate": (flagged, sizes),
        "flagged_share": (flagged, total_flagged),
        "high_need_share": (high, total_high),
        "need_captured": (need_flagged, needs),
        "unmet_need_rate": (high - both, high),
        "tpr": (both, high),
        "fpr": (flagged - both, sizes - high),
        "ppv": (both, flagged),
    }
    num = np.stack([parts[m][0] for m in SWEEP_METRICS])[:, :, back]  # (metrics, groups, fractions)
    den = np.stack([parts[m][1] for m in SWEEP_METRICS])[:, :, back]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)

    m_count, n_fr = len(SWEEP_METRICS), fr.size
    shape = (m_count, rows_g, n_fr)
    group_n = sizes[:, 0].astype(np.int64)
    return pd.DataFrame(
        {
            "group": np.broadcast_to(np.asarray(labels, dtype=object)[None, :, None], shape).ravel(),
            "fraction": np.broadcast_to(fr[None, None, :], shape).ravel(),
            "k": np.broadcast_to(ks[None, None, :], shape).ravel(),
            "metric": np.broadcast_to(np.asarray(SWEEP_METRICS, dtype=object)[:, None, None], shape).ravel(),
            "value": value.ravel(),
            "numerator": num.ravel(),
            "denominator": den.ravel(),
            "n": np.broadcast_to(group_n[None, :, None], shape).ravel(),
        },
        columns=list(SWEEP_COLUMNS),
    )
