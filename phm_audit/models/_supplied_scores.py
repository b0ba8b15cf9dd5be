"""A table of scores a user brings (for vendors who share scores but not models), checked person by
person against the cohort."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._io import read_table
from phm_audit.exceptions import PhmInputError, closest
from phm_audit.models._supplied_base import SuppliedRiskModel, first_line
from phm_audit.models._validation import ID_COLUMN, format_list, patient_ids

__all__ = ["ScoresTableRiskModel", "load_scores_table"]


class ScoresTableRiskModel(SuppliedRiskModel):
    """Precomputed scores keyed by ``patient_id``, for vendors who share scores but not models.

    Use :func:`load_scores_table` to make one; it checks the table against the cohort.

    Parameters
    ----------
    scores : pandas.Series
        Scores indexed by patient id (unique).
    name : str
        Name in results.
    target : str, default "unknown"
        What the scores predict, if known.
    """

    noun = "scores"

    def __init__(self, scores: pd.Series, *, name: str, target: str = "unknown") -> None:
        self.scores = scores
        super().__init__(name=name, target=target)

    def _repr_extra(self) -> str:
        return f", n={len(self.scores)}"

    def _raw_scores(self, cohort: pd.DataFrame) -> Any:
        """Each person's score, looked up by ``patient_id``; every person must have one."""
        ids = _keys(patient_ids(cohort), self.scores.index)
        found = self.scores.reindex(ids)
        missing = found.isna().to_numpy()
        if missing.any():
            example = format_list([str(i) for i in np.asarray(ids)[missing][:5]], limit=5)
            raise PhmInputError(
                f"{self.who} have no score for {int(missing.sum()):,} of the {len(cohort):,} people "
                f"scored (e.g. patient_id {example})"
            )
        return found.to_numpy(np.float64)


def _keys(ids: pd.Series | pd.Index, like: pd.Index) -> pd.Index:
    """Ids comparable with ``like``: integers stay integers, anything else is compared as text."""
    values = pd.Index(ids)
    if values.dtype.kind == "f" and like.dtype.kind in "iu" and bool(np.all(np.mod(values.to_numpy(), 1) == 0)):
        values = values.astype(np.int64)  # a CSV column of ids with a gap reads as float
    if values.dtype.kind in "iu" and like.dtype.kind in "iu":
        return values.astype(np.int64)
    return values.astype(str)


def _read_scores_file(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if p.suffix.lower() != ".csv" or not p.is_file():
        return read_table(p)
    try:
        # round_trip: a score written by 'phm-audit score' reads back to the same float64, bit for bit
        return pd.read_csv(p, low_memory=False, float_precision="round_trip")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PhmInputError(f"cannot read {p} as csv: {first_line(exc)}") from None


def load_scores_table(
    path: str | Path | pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    id_column: str = ID_COLUMN,
    score_column: str | None = None,
    name: str | None = None,
    target: str = "unknown",
    scored: pd.DataFrame | None = None,
) -> ScoresTableRiskModel:
    """Load a CSV or Parquet table of precomputed scores and check it against ``cohort``.

    Every person of the cohort (or of ``scored``) must have exactly one finite numeric score, and
    every id of the table must be a person of the cohort. All problems are reported at once.

    Parameters
    ----------
    path : str, Path or pandas.DataFrame
        The table (``.csv`` or ``.parquet``), or the table itself.
    cohort : pandas.DataFrame
        The people the scores are for.
    id_column : str, default "patient_id"
        Column of the table holding the person id.
    score_column : str, optional
        Column holding the score; default ``score`` if present, else the only other column.
    name : str, optional
        Name in results; default the file name without extension (``scores`` for a DataFrame).
    target : str, default "unknown"
        What the scores predict, if known.
    scored : pandas.DataFrame, optional
        The people who will be scored, a part of ``cohort`` (for example the audited half of a
        split): each of them must have a score, and the table may also hold other people of the
        cohort. Default: the whole cohort, so the table must hold exactly the cohort's people.

    Returns
    -------
    ScoresTableRiskModel
        A ``RiskModel`` of kind ``supplied``.

    Raises
    ------
    PhmInputError
        Missing, duplicate or unknown ids; empty, non-numeric, NaN or infinite scores; a row count
        different from the cohort's (when ``scored`` is not given). One message lists every problem.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"patient_id": [1, 2, 3]})
    >>> table = pd.DataFrame({"patient_id": [3, 1, 2], "score": [0.3, 0.1, 0.2]})
    >>> load_scores_table(table, cohort).score(cohort).tolist()
    [0.1, 0.2, 0.3]
    """
    if isinstance(path, pd.DataFrame):
        table, label = path, name or "scores"
    else:
        table, label = _read_scores_file(path), str(path)
    who = f"scores table {label}"
    columns = [str(c) for c in table.columns]
    if id_column not in table.columns:
        raise PhmInputError(
            f"{who} has no id column '{id_column}'{closest(id_column, columns)}; columns: {format_list(columns)}"
        )
    if score_column is None:
        others = [c for c in columns if c != id_column]
        if "score" in others:
            score_column = "score"
        elif len(others) == 1:
            score_column = others[0]
        else:
            raise PhmInputError(
                f"{who} has {len(others)} columns besides '{id_column}' ({format_list(others) or 'none'}); "
                "name the score column with --score-column (score_column= in Python)"
            )
    elif score_column not in table.columns:
        raise PhmInputError(f"{who} has no column '{score_column}'{closest(score_column, columns)}")
    cohort_ids = patient_ids(cohort)
    problems: list[str] = []
    if scored is None and len(table) != len(cohort):
        problems.append(f"it has {len(table):,} rows for {len(cohort):,} people in the cohort")
    raw_ids = table[id_column]
    empty_ids = raw_ids.isna()
    if empty_ids.any():
        problems.append(f"{int(empty_ids.sum()):,} row(s) have no {id_column}")
    ids = _keys(raw_ids[~empty_ids], pd.Index(cohort_ids))
    wanted = _keys(cohort_ids, ids)
    dup = ids.duplicated()
    if dup.any():
        problems.append(
            f"{int(dup.sum()):,} duplicate id(s) (e.g. {format_list(ids[dup].unique()[:5].tolist(), limit=5)})"
        )
    unknown = ids.unique().difference(wanted)
    if len(unknown):
        problems.append(f"{len(unknown):,} id(s) not in the cohort (e.g. {format_list(unknown[:5].tolist(), limit=5)})")
    if scored is None:
        missing = wanted.difference(ids)
        if len(missing):
            problems.append(
                f"{len(missing):,} person(s) of the cohort have no score "
                f"(e.g. {format_list(missing[:5].tolist(), limit=5)})"
            )
    else:
        needed = _keys(patient_ids(scored, "the people to score"), ids)
        absent = ~needed.isin(ids)
        if absent.any():
            problems.append(
                f"{int(absent.sum()):,} of the {len(needed):,} people to score have no score "
                f"(first missing: patient_id {needed[absent][0]})"
            )
    raw = table[score_column]
    values = pd.to_numeric(raw, errors="coerce")
    non_numeric = values.isna() & raw.notna()
    if non_numeric.any():
        i = int(np.flatnonzero(non_numeric.to_numpy())[0])
        problems.append(f"{int(non_numeric.sum()):,} non-numeric score(s) (first: '{raw.iloc[i]}' at row {i + 1})")
    empty = raw.isna() | (values.isna() & ~non_numeric)
    if empty.any():
        problems.append(
            f"{int(empty.sum()):,} missing or NaN score(s) "
            f"(first at row {int(np.flatnonzero(empty.to_numpy())[0]) + 1})"
        )
    inf = np.isinf(values.to_numpy(np.float64, na_value=np.nan))
    if inf.any():
        problems.append(f"{int(inf.sum()):,} infinite score(s) (first at row {int(np.flatnonzero(inf)[0]) + 1})")
    if problems:
        raise PhmInputError(f"{who}: {'; '.join(problems)}; give one finite numeric score per person of the cohort")
    scores = pd.Series(values.to_numpy(np.float64), index=ids, name=score_column)
    default = "scores" if isinstance(path, pd.DataFrame) else Path(path).stem
    return ScoresTableRiskModel(scores, name=name or default, target=target)
