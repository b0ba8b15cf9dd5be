"""The precomputed grid behind the teaching page: one generated cohort and one audit per access gap.

Every number the page shows comes from :func:`phm_audit.audit.audit` on a cohort made by
:func:`phm_audit.synth.generate`, after :func:`phm_audit.report.disclose_result`; the page only looks
values up. One grid point is one access gap, applied alike to the most deprived fifth
(``planned_access.imd_q1``) and to the four minority ethnic groups (``planned_access.asian``,
``black``, ``mixed``, ``other``) on top of the null scenario ``no_gap``. Every grid point uses the same
seed, so it holds the same people with the same illnesses: only their access to planned care (and,
through it, the recording of their conditions) changes from one point to the next.

A point fits the same learner on each of the four labels, a simulated clinician and the combined
pathway, and audits all six models on the audited half: calibration at equal score (the label gap),
the 100-point threshold sweep, and actuarial versus clinical judgement at the top 3%.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from phm_audit._checks import check_int
from phm_audit.exceptions import PhmInputError, PhmTypeError

if TYPE_CHECKING:
    import pandas as pd

    from phm_audit.audit import AuditResult

__all__ = [
    "ATTRIBUTES",
    "DATA_VERSION",
    "DEFAULT_GAPS",
    "JUDGEMENT_MODELS",
    "MINORITY_KNOBS",
    "build_teach_data",
    "grid_point_result",
    "scenario_overrides",
]

#: Layout version of the data embedded in the page.
DATA_VERSION = "1.0"
#: Access gaps of the default grid: planned care this much lower at equal need.
DEFAULT_GAPS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
#: The attributes the page shows, in order.
ATTRIBUTES = ("imd_quintile", "ethnicity")
#: Scenario knobs of the minority ethnic groups that one access gap sets (with ``planned_access.imd_q1``).
MINORITY_KNOBS = ("planned_access.asian", "planned_access.black", "planned_access.mixed", "planned_access.other")
#: Decision makers compared in the judgement step, beside the learner trained on each label.
JUDGEMENT_MODELS = ("clinician_judgement", "combined_pathway")
#: The base scenario: equal access and recording at equal need, before the gap is applied.
BASE_SCENARIO = "no_gap"
#: The learner retrained on each label (a gradient-boosted model, no ethnicity or deprivation input).
LEARNER = "actuarial_cost"
#: Combined pathway of the US programme (Obermeyer et al. 2019), as in ``phm-audit demo``.
AUTO_SHARE, REVIEW_SHARE = 0.015, 0.10
#: The capacity of the judgement analysis and of the guided steps' default view.
PRIMARY = "top_pct:3"
NEED = "need_true_next"
#: Shares and rates are written with this many decimals (the page shows at most 1 decimal of a percentage).
DECIMALS = 4

Progress = Callable[[int, int, str], None]


def scenario_overrides(gap: float) -> dict[str, float]:
    """Scenario knobs for one access gap: planned care ``1 - gap`` times as much at equal need.

    Parameters
    ----------
    gap : float
        Share by which planned care at equal need is lower, in [0, 0.9].

    Returns
    -------
    dict of str to float
        Overrides for :func:`phm_audit.synth.generate` on top of ``no_gap``.

    Examples
    --------
    >>> scenario_overrides(0.15)["planned_access.imd_q1"]
    0.85
    """
    g = _check_gap(gap)
    access = round(1.0 - g, 10)
    return {"planned_access.imd_q1": access, **dict.fromkeys(MINORITY_KNOBS, access)}


def _check_gap(gap: object) -> float:
    if isinstance(gap, bool) or not isinstance(gap, int | float):
        raise PhmTypeError(f"an access gap must be a number such as 0.15; got {gap!r}")
    g = float(gap)
    if not (math.isfinite(g) and 0.0 <= g <= 0.9):
        raise PhmInputError(f"access gap {gap!r} is outside 0 to 0.9; give shares such as 0, 0.05, ..., 0.3")
    return g


def check_gaps(gaps: Sequence[float]) -> tuple[float, ...]:
    """Validate the grid of access gaps: at least two, rising, each in [0, 0.9]."""
    if isinstance(gaps, str | bytes):
        raise PhmTypeError(f"gaps must be a list of numbers such as [0, 0.1, 0.3]; got {gaps!r}")
    out = tuple(_check_gap(g) for g in gaps)
    if len(out) < 2:
        raise PhmInputError(f"the access-gap grid needs at least two values, e.g. 0 and 0.3; got {list(out)}")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise PhmInputError(f"access gaps must rise without repeats, e.g. 0,0.05,0.1; got {list(out)}")
    return out


def grid_point_result(gap: float, *, n: int, seed: int, n_boot: int) -> tuple[AuditResult, int]:
    """The disclosed audit of one grid point, and the number of people audited.

    Parameters
    ----------
    gap : float
        Access gap of the point (see :func:`scenario_overrides`).
    n : int
        People generated; half are audited, the other half train the learners.
    seed : int
        Seed of the cohort, the split, the learners' sampling, the clinician's noise and the bootstrap.
    n_boot : int
        Bootstrap replicates of every interval.

    Returns
    -------
    (result, n_audited) : tuple
        The audit after disclosure control (:func:`phm_audit.report.disclose_result`) and the exact
        number of people audited (not published; it scales counts to "per 100,000").
    """
    from threadpoolctl import threadpool_limits

    from phm_audit.audit import AuditSpec, ScoredModel, audit, combined_pathway_scores
    from phm_audit.models import LABELS, fit_and_score, get_model
    from phm_audit.pipeline import split_for_audit
    from phm_audit.report import DisclosureControl, disclose_result
    from phm_audit.synth import generate

    cohort = generate(BASE_SCENARIO, n, seed=seed, overrides=scenario_overrides(gap))
    audited, train = split_for_audit(cohort, seed=seed)
    scored: list[ScoredModel] = []
    # one OpenMP thread: on a shared machine, threads that outnumber the free cores spin against each other
    with threadpool_limits(limits=1, user_api="openmp"):
        for label in LABELS:
            model = get_model(LEARNER, label=label)
            scored.append(ScoredModel(label, fit_and_score(model, train, audited), kind=model.kind))
    clinician = get_model("clinician_judgement", seed=seed)
    judged = fit_and_score(clinician, train, audited)
    scored.append(ScoredModel("clinician_judgement", judged, kind="judgement"))
    pathway = combined_pathway_scores(scored[0].scores, judged, auto_share=AUTO_SHARE, review_share=REVIEW_SHARE)
    scored.append(ScoredModel("combined_pathway", pathway, kind="judgement"))
    common: dict[str, Any] = {
        "attributes": ATTRIBUTES,
        "intersections": (),
        "operating_points": (PRIMARY,),
        "need_targets": (NEED,),
        "high_need_target": NEED,
        "n_boot": n_boot,
        "seed": seed,
    }
    # calibration (the label gap) for the learners only: the page shows it per label; the sweep for all
    # six; the judgement comparison of all six at the top 3%
    labels = len(LABELS)
    result = audit(audited, scored[:labels], AuditSpec(**common, analyses=("calibration", "thresholds")))
    result = result.merge(audit(audited, scored[labels:], AuditSpec(**common, analyses=("thresholds",))))
    result = result.merge(audit(audited, scored, AuditSpec(**common, analyses=("judgement",))))
    return disclose_result(result, DisclosureControl()), len(audited)


def _num(x: Any, decimals: int = DECIMALS) -> float | None:
    """A JSON number (rounded) or ``None`` for a missing value."""
    if x is None:
        return None
    v = float(x)
    return round(v, decimals) if math.isfinite(v) else None


def _count(x: Any) -> int | None:
    if x is None:
        return None
    v = float(x)
    return round(v) if math.isfinite(v) else None


def _point_data(result: AuditResult) -> dict[str, Any]:
    """Everything the page needs from one disclosed audit, as plain lists."""
    import numpy as np

    from phm_audit.audit._sweep_rows import DEFAULT_FRACTIONS, fraction_name

    table = result.table()
    models = [m["name"] for m in result.models]
    ops = [fraction_name(f) for f in DEFAULT_FRACTIONS]
    op_index = {op: j for j, op in enumerate(ops)}
    reasons: dict[str, int] = {"": 0}
    sizes = {a: result.groups[a]["sizes"] for a in ATTRIBUTES}
    sweep: dict[str, dict[str, dict[str, list[Any]]]] = {}
    th = table[table["analysis"] == "thresholds"]
    for model in models:
        sweep[model] = {}
        for attribute in ATTRIBUTES:
            labels = result.groups[attribute]["labels"]
            g_index = {g: i for i, g in enumerate(labels)}
            cell = th[(th["model"] == model) & (th["attribute"] == attribute)]
            out: dict[str, list[Any]] = {}
            for metric, key in (("flagged_share", "fs"), ("high_need_share", "hn"), ("unmet_need_rate", "un")):
                rows = cell[cell["metric"] == metric]
                value = np.full((len(labels), len(ops)), np.nan)
                lo, hi, nn = value.copy(), value.copy(), value.copy()
                gi = rows["group"].map(g_index).to_numpy(np.int64)
                oi = rows["operating_point"].map(op_index).to_numpy(np.int64)
                value[gi, oi] = rows["value"].to_numpy(np.float64)
                lo[gi, oi] = rows["ci_low"].to_numpy(np.float64)
                hi[gi, oi] = rows["ci_high"].to_numpy(np.float64)
                nn[gi, oi] = pd_float(rows["n"])
                out[key] = [[_num(v) for v in row] for row in value]
                out[key + "_lo"] = [[_num(v) for v in row] for row in lo]
                out[key + "_hi"] = [[_num(v) for v in row] for row in hi]
                if metric == "flagged_share":
                    # the number flagged (rounded), the same for every group at one capacity
                    out["flagged_n"] = [
                        _count(np.nanmax(nn[:, j])) if np.isfinite(nn[:, j]).any() else None for j in range(len(ops))
                    ]
                if metric == "unmet_need_rate":
                    out["high_need_n"] = [[_count(v) for v in row] for row in nn]
                    # high-need people left out = unmet-need rate x high-need members: from rounded counts
                    left = value * nn
                    group_n = np.array([np.nan if s is None else float(s) for s in sizes[attribute]])
                    per = np.where(group_n[:, None] > 0, left / group_n[:, None] * 100_000, np.nan)
                    out["left_out"] = [[_count(v) for v in row] for row in left]
                    out["left_out_per_100k"] = [[_count(v) for v in row] for row in per]
                # why a value is missing: an index into the point's list of reasons (0: not missing)
                why = np.zeros((len(labels), len(ops)), dtype=np.int64)
                gone = ~np.isfinite(rows["value"].to_numpy(np.float64))
                if gone.any():
                    codes = [reasons.setdefault(str(r), len(reasons)) for r in rows["reason"].to_numpy()[gone]]
                    why[gi[gone], oi[gone]] = codes
                    out[key + "_why"] = why.tolist()
            sweep[model][attribute] = out
    cal = table[(table["analysis"] == "calibration") & (table["metric"] == "label_gap_at_equal_score")]
    cal = cal[cal["target"] == NEED]
    label_gap: dict[str, dict[str, list[Any]]] = {}
    for model in [m for m in models if m in set(cal["model"])]:  # the learners (calibration is run for them)
        label_gap[model] = {}
        for attribute in ATTRIBUTES:
            rows = cal[(cal["model"] == model) & (cal["attribute"] == attribute)].set_index("group")
            entries = []
            for group in result.groups[attribute]["labels"]:
                r = rows.loc[group]
                entries.append(
                    {
                        "value": _num(r["value"]),
                        "lo": _num(r["ci_low"]),
                        "hi": _num(r["ci_high"]),
                        "n": _count(r["n"]),
                        "reason": str(r["reason"] or ""),
                    }
                )
            label_gap[model][attribute] = entries
    jt = table[(table["analysis"] == "judgement") & (table["attribute"] == "all")]
    judgement: dict[str, dict[str, Any]] = {}
    for model in models:
        judgement[model] = {}
        for metric in ("share_of_need_captured", "share_of_cost_captured", "auroc_high_need"):
            r = jt[(jt["model"] == model) & (jt["metric"] == metric)].iloc[0]
            judgement[model][metric] = {"value": _num(r["value"]), "lo": _num(r["ci_low"]), "hi": _num(r["ci_high"])}
    return {
        "n_audited": result.cohort["n"],
        "group_labels": {a: [str(g) for g in result.groups[a]["labels"]] for a in ATTRIBUTES},
        "group_sizes": {a: list(sizes[a]) for a in ATTRIBUTES},
        "sweep": sweep,
        "label_gap": label_gap,
        "judgement": judgement,
        "reasons": list(reasons),
    }


def _point(gap: float, n: int, seed: int, n_boot: int) -> dict[str, Any]:
    result, _ = grid_point_result(gap, n=n, seed=seed, n_boot=n_boot)
    return _point_data(result)


def _resolve_jobs(n_jobs: object, points: int) -> int:
    import os

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise PhmInputError(
            f"n_jobs must be a whole number of workers, at least 1, or -1 for every core; got {n_jobs!r}"
        )
    cores = os.cpu_count() or 1
    return max(1, min(points, cores if n_jobs == -1 else n_jobs))


def _die_with_parent() -> None:
    """Worker initialiser: ask Linux to end this worker when its parent ends (elsewhere, a no-op)."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent ended before the signal was armed
        os._exit(1)


def pd_float(series: pd.Series) -> Any:
    """A pandas column of counts (possibly nullable) as float64, missing as NaN."""
    import numpy as np

    return series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)


def build_teach_data(
    *,
    n: int = 100_000,
    seed: int = 7,
    gaps: Sequence[float] = DEFAULT_GAPS,
    n_boot: int = 200,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Audit one generated cohort per access gap and collect what the teaching page shows.

    Parameters
    ----------
    n : int, default 100_000
        People generated per grid point; half are audited (the page's figures are for them), half
        train the learners.
    seed : int, default 7
        Seed of every grid point (the same people at every gap).
    gaps : sequence of float, default (0, 0.05, ..., 0.3)
        Access gaps of the grid, rising.
    n_boot : int, default 200
        Bootstrap replicates of every interval.
    n_jobs : int, default 1
        Worker processes, one grid point each at a time (``-1``: every core). Does not change the
        data: every point is computed from its own inputs alone. Workers end when this process ends.
    progress : callable, optional
        Called as ``progress(done, total, text)`` before each grid point and at the end.

    Returns
    -------
    dict
        JSON-ready: the grid (gaps, capacities, labels, models, groups) and, per gap, the disclosed
        sweep of flagged and high-need shares and of high-need people left out, the label gaps with
        their intervals, and the judgement comparison. Deterministic in ``(n, seed, gaps, n_boot)``.

    Examples
    --------
    A bad grid fails before any work:

    >>> build_teach_data(gaps=(0.3, 0.0))
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: access gaps must rise without repeats, e.g. 0,0.05,0.1; got [0.3, 0.0]
    """
    from phm_audit.audit._sweep_rows import DEFAULT_FRACTIONS
    from phm_audit.models import LABELS

    n = check_int(n, "n", 2000)
    seed = check_int(seed, "seed", 0)
    n_boot = check_int(n_boot, "n_boot", 0)
    grid = check_gaps(gaps)
    jobs = _resolve_jobs(n_jobs, len(grid))
    start = time.perf_counter()
    points: list[dict[str, Any]] = []
    if jobs == 1:
        for i, gap in enumerate(grid):
            if progress is not None:
                progress(i, len(grid), f"access gap {100 * gap:g}%")
            points.append(_point(gap, n, seed, n_boot))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no fork of a process that may hold OpenMP threads
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent) as pool:
            futures = [pool.submit(_point, gap, n, seed, n_boot) for gap in grid]
            for i, future in enumerate(futures):  # in grid order, whatever order they finish in
                if progress is not None:
                    progress(i, len(grid), f"access gap {100 * grid[i]:g}%")
                points.append(future.result())
    if progress is not None:
        progress(len(grid), len(grid), f"{len(grid)} grid points in {time.perf_counter() - start:.0f} s")
    first = points[0]
    for p in points[1:]:
        if p["group_labels"] != first["group_labels"]:
            raise PhmInputError("the grid points hold different groups; use one seed and n for every point")
    return {
        "version": DATA_VERSION,
        "scenario": BASE_SCENARIO,
        "n_generated": n,
        "n_audited": first["n_audited"],
        "seed": seed,
        "n_boot": n_boot,
        "gaps": list(grid),
        "capacities": [float(f) for f in DEFAULT_FRACTIONS],
        "labels": list(LABELS),
        "models": [*LABELS, *JUDGEMENT_MODELS],
        "attributes": list(ATTRIBUTES),
        "groups": first["group_labels"],
        "learner": LEARNER,
        "auto_share": AUTO_SHARE,
        "review_share": REVIEW_SHARE,
        "points": points,
    }
