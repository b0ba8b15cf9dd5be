"""The result of an audit: one immutable type, a tidy table, and ``to_dict()`` for JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from phm_audit.audit._spec import AuditSpec

__all__ = ["METRIC_COLUMNS", "REASON_CODES", "AuditResult", "RowBuilder"]

#: Columns of the tidy metrics table (the first ten are the published contract).
METRIC_COLUMNS = (
    "model",
    "analysis",
    "attribute",
    "group",
    "operating_point",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "target",
    "feature",
    "reason",
    "reason_code",
)
#: The codes of ``reason_code``: why a value is missing, for programs (``reason`` says it in words).
REASON_CODES = (
    "",  # the value is defined
    "undefined",  # the analysis could not define it (a zero denominator, a group too small); see reason
    "suppressed",  # disclosure control: it counts, or is made of, fewer people than the threshold
    "suppressed_complement",  # disclosure control: its complement (1 minus it) counts too few people
    "suppressed_secondary",  # disclosure control: hidden so that a smaller suppressed value cannot be derived
)
CURVE_COLUMNS = (
    "model",
    "attribute",
    "group",
    "target",
    "bins",
    "bin",
    "score_low",
    "score_high",
    "mean",
    "ci_low",
    "ci_high",
    "n",
)
RESULT_SCHEMA_VERSION = "1.1"


class RowBuilder:
    """Collects rows of the tidy table, a vector of groups at a time, and builds the frame once."""

    _NUMERIC = ("value", "ci_low", "ci_high", "n")

    def __init__(self) -> None:
        self._cols: dict[str, list[np.ndarray]] = {c: [] for c in METRIC_COLUMNS}

    def add(
        self,
        *,
        model: str,
        analysis: str,
        attribute: str,
        groups: Sequence[str],
        metric: str,
        value: np.ndarray | Sequence[float] | float,
        ci_low: np.ndarray | Sequence[float] | float = math.nan,
        ci_high: np.ndarray | Sequence[float] | float = math.nan,
        n: np.ndarray | Sequence[float] | float = math.nan,
        operating_point: str = "",
        target: str = "",
        feature: str = "",
        reason: np.ndarray | Sequence[str] | str = "",
    ) -> None:
        """Add one row per group; scalars are broadcast."""
        size = len(groups)

        def vec(x: Any, dtype: Any = np.float64) -> np.ndarray:
            arr = np.asarray(x, dtype=dtype)
            return np.broadcast_to(arr, (size,)).copy() if arr.ndim == 0 else arr.reshape(size).copy()

        values = vec(value)
        finite = np.isfinite(values)
        reasons = vec(reason, object)
        # a number that is not defined must say why
        reasons[~finite & (reasons == "")] = "undefined"
        values[~finite] = np.nan
        fixed = {
            "model": model,
            "analysis": analysis,
            "attribute": attribute,
            "operating_point": operating_point,
            "metric": metric,
            "target": target,
            "feature": feature,
        }
        for col, text in fixed.items():
            self._cols[col].append(np.full(size, text, dtype=object))
        self._cols["reason_code"].append(np.where(reasons == "", "", "undefined").astype(object))
        self._cols["group"].append(np.asarray(list(groups), dtype=object))
        self._cols["value"].append(values)
        self._cols["ci_low"].append(vec(ci_low))
        self._cols["ci_high"].append(vec(ci_high))
        self._cols["n"].append(vec(n))
        self._cols["reason"].append(reasons)

    def extend(self, frame: pd.DataFrame) -> None:
        """Add the rows of a tidy table made elsewhere (another result's :meth:`AuditResult.table`)."""
        if len(frame) == 0:
            return
        for col in METRIC_COLUMNS:
            if col in frame.columns:
                values = frame[col].to_numpy(dtype=np.float64 if col in self._NUMERIC else object, na_value=np.nan)
            elif col == "reason_code":
                values = np.where(frame["reason"].to_numpy(dtype=object) == "", "", "undefined").astype(object)
            else:
                values = np.full(len(frame), "", dtype=object)
            self._cols[col].append(values)

    def frame(self) -> pd.DataFrame:
        if not self._cols["model"]:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in METRIC_COLUMNS})
        data = {c: np.concatenate(parts) for c, parts in self._cols.items()}
        out = pd.DataFrame(data)
        for col in METRIC_COLUMNS:
            if col not in self._NUMERIC:
                out[col] = out[col].astype(str)
        out["n"] = out["n"].round().astype("Int64")
        return out[list(METRIC_COLUMNS)]


def cohort_summary(cohort: pd.DataFrame, high_need_target: str | None, **extra: Any) -> dict[str, Any]:
    """What a result says of its people: how many, and the scenario, seed and source a cohort records."""
    meta = cohort.attrs.get("phm_audit") or {}
    scenario = meta.get("scenario") or {}
    return {
        "n": len(cohort),
        "scenario": scenario.get("name") if isinstance(scenario, Mapping) else scenario,
        "seed": meta.get("seed"),
        "source": meta.get("source"),
        "high_need_target": high_need_target,
        **extra,
    }


def _freeze(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in frame.columns:
        arr = frame[col].to_numpy()
        if isinstance(arr, np.ndarray):
            arr.setflags(write=False)
    return frame


def _concat(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    # an empty frame carries no dtypes worth keeping; concatenating it warns in pandas 2.x
    parts = [f for f in (a, b) if len(f)]
    if not parts:
        return a.copy()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()


def _json_value(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if x is pd.NA:
        return None
    return x


@dataclass(frozen=True)
class AuditResult:
    """Everything an audit found. Every number in every report comes from here.

    Use :meth:`table` for the tidy metrics table, :meth:`curves` for calibration curves by score
    bin, :meth:`get` to filter, and :meth:`to_dict` for JSON.

    Attributes
    ----------
    spec : AuditSpec
        The questions asked.
    models : tuple of dict
        Name, kind and target of each audited model.
    groups : mapping
        Per attribute: group labels, sizes and the reference group.
    cohort : mapping
        Size and provenance of the audited population.
    notes : tuple of str
        What was skipped and why (a target the cohort lacks, an analysis not applicable).
    primary_operating_point : str
        Canonical name of the decision the single-decision analyses use (allocation, raising the bar,
        judgement), e.g. ``top_3pct``; empty where none ran.
    operating_points : mapping
        For each value of the table's ``operating_point`` column, what it means as structured fields
        (see :func:`phm_audit.audit.describe_point`): kind, value, place, fraction, step and words.
    """

    spec: AuditSpec
    models: tuple[Mapping[str, Any], ...]
    groups: Mapping[str, Mapping[str, Any]]
    cohort: Mapping[str, Any]
    notes: tuple[str, ...]
    _metrics: pd.DataFrame = field(repr=False)
    _curves: pd.DataFrame = field(repr=False)
    primary_operating_point: str = ""
    operating_points: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.operating_points:
            from phm_audit.audit._operating_points import describe_point

            names: list[str] = []
            if "operating_point" in self._metrics:
                names = [str(n) for n in self._metrics["operating_point"].unique()]
            object.__setattr__(self, "operating_points", {n: describe_point(n) for n in names})
        points = {k: MappingProxyType(dict(v)) for k, v in self.operating_points.items()}
        object.__setattr__(self, "operating_points", MappingProxyType(points))
        object.__setattr__(self, "_metrics", _freeze(self._metrics))
        object.__setattr__(self, "_curves", _freeze(self._curves))
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))
        object.__setattr__(self, "cohort", MappingProxyType(dict(self.cohort)))

    def table(self) -> pd.DataFrame:
        """The tidy metrics table (a copy): one row per model, analysis, attribute, group, operating point
        and metric, with ``value, ci_low, ci_high, n`` and the ``reason`` where a value is undefined."""
        return self._metrics.copy()

    def curves(self) -> pd.DataFrame:
        """Mean outcome by score bin, per model, attribute, group and target (a copy)."""
        return self._curves.copy()

    def get(self, **where: Any) -> pd.DataFrame:
        """Rows of the table whose columns equal the given values, e.g. ``get(metric="tpr", group="1")``."""
        frame = self._metrics
        mask = np.ones(len(frame), dtype=bool)
        for col, value in where.items():
            if col not in frame.columns:
                raise KeyError(f"no column '{col}' in the metrics table; columns: {', '.join(frame.columns)}")
            # compare a writable copy: the table is frozen, and pandas before 2.2 cannot compare read-only objects
            mask &= (frame[col].copy(deep=True) == value).to_numpy()
        return frame[mask].copy()

    def value(self, **where: Any) -> float:
        """The single value matching ``where`` (raises if none or several match)."""
        rows = self.get(**where)
        if len(rows) != 1:
            raise KeyError(f"{len(rows)} rows match {where}; add filters to pick one")
        return float(rows["value"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary with ``schema_version``."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{str(k): _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "spec": self.spec.to_dict(),
            "models": [dict(m) for m in self.models],
            "groups": {k: dict(v) for k, v in self.groups.items()},
            "cohort": dict(self.cohort),
            "notes": list(self.notes),
            "primary_operating_point": self.primary_operating_point,
            "operating_points": {k: dict(v) for k, v in self.operating_points.items()},
            "metrics": records(self._metrics),
            "curves": records(self._curves),
        }

    def merge(self, other: AuditResult) -> AuditResult:
        """Combine two results on the same cohort (for example, a label-choice analysis added to an audit)."""
        theirs = {m["name"]: m for m in other.models}
        names = {m["name"] for m in self.models}
        # a model both describe (audited here, explained there) keeps what each says of it
        models = tuple({**theirs.get(m["name"], {}), **m} for m in self.models)
        return AuditResult(
            spec=self.spec,
            models=models + tuple(m for m in other.models if m["name"] not in names),
            groups={**other.groups, **self.groups},
            cohort=self.cohort,
            notes=self.notes + tuple(n for n in other.notes if n not in self.notes),
            _metrics=_concat(self._metrics, other._metrics),
            _curves=_concat(self._curves, other._curves),
            primary_operating_point=self.primary_operating_point or other.primary_operating_point,
            operating_points={**other.operating_points, **self.operating_points},
        )
