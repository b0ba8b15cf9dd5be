"""Compare a report with its committed golden files: keyed rows and numbers within a stated tolerance.

A golden file pins what a report says, not the last digits of its floats. Another CPU, BLAS kernel or
package build changes a sum in its 14th significant digit (the test suite has seen
``...616623233056871`` against ``...616623233041848``), so:

* tables (``metrics.csv``, ``curves.csv``) are parsed with round-trip precision and compared row by row,
  keyed by their identifying columns: the same rows, counts (``n``) exactly, every other number within
  ``RTOL`` relative (``ATOL`` absolute near zero), the same reasons;
* JSON is compared as a tree: the same keys and lengths, numbers within ``RTOL``, text as below; file
  hashes are checked against the files themselves elsewhere, not against a golden digest of float text;
* text (``summary.md``, the HTML less its drawings, JSON strings) must match word for word, and each
  number in it must match or differ by one unit in its last displayed digit (a value sitting on a
  rounding boundary flips there when its last binary digit changes). The values behind the text are
  held to ``RTOL`` in the tables.

``RTOL = 1e-9`` suits values computed the same way on another machine: floating-point reordering moves
a double by about 1e-15 relative, and a sum over 20,000 people by at most about 1e-12; a real change to
an estimate (a different bin, person or weight) moves it by far more than 1e-9.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._result import AuditResult

RTOL = 1e-9
ATOL = 1e-12

METRIC_KEYS = ("model", "analysis", "attribute", "group", "operating_point", "metric", "target", "feature")
CURVE_KEYS = ("model", "attribute", "target", "bins", "group", "bin")
COUNT_COLUMNS = ("n",)

_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def read_golden_csv(path: Path | str) -> pd.DataFrame:
    """Read a report table as phm-audit writes it: empty cells are missing, floats round-trip exactly."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip", low_memory=False)


def _key_frame(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for k in keys:
        out[k] = out[k].astype(object).where(out[k].notna(), "").astype(str)
    return out.set_index(list(keys)).sort_index()


def table_differences(
    produced: pd.DataFrame,
    golden: pd.DataFrame,
    keys: Sequence[str],
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    most: int = 10,
) -> list[str]:
    """What differs between two tables keyed by ``keys``; an empty list when they agree.

    Parameters
    ----------
    produced, golden : pandas.DataFrame
        The tables, each as read by :func:`read_golden_csv`.
    keys : sequence of str
        Columns that identify a row (present in both; their values are compared as text).
    rtol, atol : float
        Tolerance for every numeric column but the counts in ``COUNT_COLUMNS``, which must be equal.
    most : int
        At most this many differences are described.
    """
    keys = [k for k in keys if k in golden.columns]
    if list(produced.columns) != list(golden.columns):
        return [f"columns differ: {list(produced.columns)} against {list(golden.columns)}"]
    a, b = _key_frame(produced, keys), _key_frame(golden, keys)
    if a.index.has_duplicates or b.index.has_duplicates:
        return [f"the key {keys} does not identify a row"]
    out = [f"row {key} is new" for key in a.index.difference(b.index)[:most]]
    out += [f"row {key} is missing" for key in b.index.difference(a.index)[:most]]
    if out:
        return out
    a = a.loc[b.index]
    for column in b.columns:
        x, y = a[column], b[column]
        numeric = pd.api.types.is_numeric_dtype(y) or (y.isna().all() and pd.api.types.is_numeric_dtype(x))
        if numeric and pd.api.types.is_numeric_dtype(x):
            xv, yv = x.to_numpy(np.float64), y.to_numpy(np.float64)
            if column in COUNT_COLUMNS:
                bad = ~((xv == yv) | (np.isnan(xv) & np.isnan(yv)))
            else:
                bad = ~np.isclose(xv, yv, rtol=rtol, atol=atol, equal_nan=True)
        else:
            xs, ys = x.fillna("").astype(str).to_numpy(), y.fillna("").astype(str).to_numpy()
            bad = np.array([bool(text_differences(s, t)) for s, t in zip(xs, ys, strict=True)], dtype=bool)
        for key in b.index[bad][:most]:
            out.append(f"{column} at {key}: {a.at[key, column]!r} against golden {b.at[key, column]!r}")
    return out[:most]


def _numbers(text: str) -> tuple[list[str], list[str]]:
    parts = _NUMBER.split(text)
    return parts, _NUMBER.findall(text)


def _value(token: str) -> float:
    return float(token.replace(",", "").replace("−", "-"))


def _last_digit(token: str) -> float:
    mantissa = re.split(r"[eE]", token)[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(re.split(r"[eE]", token)[1]) if re.search(r"[eE]", token) else 0
    return 10.0 ** (exponent - decimals)


def numbers_agree(produced: str, golden: str, *, rtol: float = RTOL) -> bool:
    """Whether two displayed numbers agree: equal within ``rtol``, or one unit apart in the last digit shown."""
    x, y = _value(produced), _value(golden)
    if math.isclose(x, y, rel_tol=rtol, abs_tol=ATOL):
        return True
    unit = max(_last_digit(produced), _last_digit(golden))
    return abs(x - y) <= unit * (1 + 1e-9)


def text_differences(produced: str, golden: str, *, most: int = 10) -> list[str]:
    """Where two texts differ in words, or in a number by more than its last displayed digit."""
    words_a, numbers_a = _numbers(produced)
    words_b, numbers_b = _numbers(golden)
    if words_a != words_b or len(numbers_a) != len(numbers_b):
        for i, (s, t) in enumerate(zip(produced.splitlines(), golden.splitlines(), strict=False)):
            if _numbers(s)[0] != _numbers(t)[0] or len(_numbers(s)[1]) != len(_numbers(t)[1]):
                return [f"line {i + 1}: {s[:200]!r} against golden {t[:200]!r}"]
        return [f"the texts differ in length: {produced.count(chr(10))} against {golden.count(chr(10))} lines"]
    out = []
    for s, t in zip(numbers_a, numbers_b, strict=True):
        if not numbers_agree(s, t):
            out.append(f"number {s} against golden {t}")
            if len(out) >= most:
                break
    return out


def json_differences(produced: Any, golden: Any, path: str = "$", *, rtol: float = RTOL) -> list[str]:
    """Where two JSON trees differ: keys, lengths, numbers beyond ``rtol``, text as :func:`text_differences`.

    A 64-hex-digit digest is compared only for its form: digests of float text change with the last digit.
    """
    if isinstance(golden, dict):
        if not isinstance(produced, dict) or list(produced) != list(golden):
            return [f"{path}: keys {list(produced) if isinstance(produced, dict) else type(produced).__name__}"]
        return [d for k in golden for d in json_differences(produced[k], golden[k], f"{path}.{k}", rtol=rtol)]
    if isinstance(golden, list):
        if not isinstance(produced, list) or len(produced) != len(golden):
            return [f"{path}: a list of {len(golden)} items expected"]
        return [
            d
            for i, (p, g) in enumerate(zip(produced, golden, strict=True))
            for d in json_differences(p, g, f"{path}[{i}]", rtol=rtol)
        ]
    if isinstance(golden, bool) or golden is None:
        return [] if produced is golden else [f"{path}: {produced!r} against golden {golden!r}"]
    if isinstance(golden, int | float):
        if isinstance(produced, bool) or not isinstance(produced, int | float):
            return [f"{path}: {produced!r} against golden {golden!r}"]
        if isinstance(golden, int) and isinstance(produced, int):
            return [] if produced == golden else [f"{path}: {produced} against golden {golden}"]
        return (
            []
            if math.isclose(produced, golden, rel_tol=rtol, abs_tol=ATOL)
            else [f"{path}: {produced!r} against golden {golden!r}"]
        )
    if isinstance(golden, str):
        if not isinstance(produced, str):
            return [f"{path}: {produced!r} against golden {golden!r}"]
        if _DIGEST.match(golden):
            return [] if _DIGEST.match(produced) else [f"{path}: not a SHA-256 digest: {produced!r}"]
        return [f"{path}: {d}" for d in text_differences(produced, golden)]
    return [] if produced == golden else [f"{path}: {produced!r} against golden {golden!r}"]


def golden_differences(produced: dict[str, Any], folder: Path) -> dict[str, list[str]]:
    """Compare each produced file (name to content, as :func:`report_contents` makes) with ``folder``'s golden.

    Returns
    -------
    dict
        File name to its differences; files that agree are left out.
    """
    out: dict[str, list[str]] = {}
    for name, content in produced.items():
        path = folder / name
        if not path.exists():
            out[name] = [f"missing golden file {path}"]
            continue
        if name.endswith(".csv"):
            keys = METRIC_KEYS if name == "metrics.csv" else CURVE_KEYS
            diff = table_differences(content, read_golden_csv(path), keys)
        elif name.endswith(".json"):
            diff = json_differences(content, json.loads(path.read_text(encoding="utf-8")))
        else:
            diff = text_differences(content, path.read_text(encoding="utf-8"))
        if diff:
            out[name] = diff
    return out


GOLDEN_DIR = Path(__file__).parent / "golden" / "report_small"


def golden_cohort() -> pd.DataFrame:
    """The committed input of the golden report (``england``, 20,000 people, seed 17)."""
    from phm_audit.synth._cohort import read_cohort

    cohort = read_cohort(GOLDEN_DIR / "cohort.parquet")
    cohort.attrs["phm_audit"].pop("source", None)  # the folder it sits in differs between machines
    return cohort


def small_audit() -> AuditResult:
    """The golden report's audit: two models, two attributes, a short threshold sweep, 30 replicates."""
    from phm_audit.audit import AuditSpec, audit

    cohort = golden_cohort()
    spec = AuditSpec(
        attributes=("imd_quintile", "ethnicity"),
        intersections=(),
        operating_points=("top_pct:3",),
        analyses=("fairness", "calibration", "thresholds"),
        sweep_fractions=(0.01, 0.03, 0.1),
        n_score_bins=20,
        n_boot=30,
        seed=4,
    )
    scores = {
        "prior_cost": cohort["cost_prior"].to_numpy(np.float64),
        "ltc_count": cohort["n_ltc_recorded"].to_numpy(np.float64),
    }
    return audit(cohort, scores, spec)
