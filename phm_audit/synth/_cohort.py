"""Cohorts on disk: read a generated cohort back with its dtypes and column roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._io import read_dataset, read_table
from phm_audit.exceptions import PhmInputError
from phm_audit.synth._schema import CATEGORIES, COLUMNS, SCHEMA_VERSION, column_roles, pandas_dtype

__all__ = ["cohort_roles", "read_cohort"]

_SCHEMA = {c.name: c for c in COLUMNS}


def _coerce(df: pd.DataFrame) -> pd.DataFrame:
    for name in df.columns:
        col = _SCHEMA.get(str(name))
        if col is None:
            continue
        target: Any = pandas_dtype(col.name)
        if str(df[name].dtype) == str(target):
            continue
        try:
            if col.dtype == "bool" and df[name].dtype == object:
                values = df[name].astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False})
                if values.isna().any():
                    raise ValueError("not true/false")
                df[name] = values.astype(bool)
            else:
                df[name] = df[name].astype(target)
        except (ValueError, TypeError) as exc:
            raise PhmInputError(
                f"column '{name}' cannot be read as {col.dtype} ({exc}); "
                "check the file was written by 'phm-audit generate'"
            ) from None
        if col.dtype == "category" and df[name].isna().any():
            row = int(np.flatnonzero(df[name].isna().to_numpy())[0])
            raise PhmInputError(
                f"column '{name}' has a value outside {', '.join(CATEGORIES[col.name])} at row {row + 1}; "
                "use the categories of the data dictionary"
            )
    return df


def cohort_roles(cohort: pd.DataFrame) -> dict[str, str]:
    """Return the role of each column of ``cohort``.

    Roles come from the cohort's metadata when it has them, otherwise from the generator's schema;
    columns the schema does not know get no role.

    Parameters
    ----------
    cohort : pandas.DataFrame

    Returns
    -------
    dict of str to str
    """
    meta = cohort.attrs.get("phm_audit") or {}
    roles = dict(meta.get("roles") or column_roles())
    return {str(c): roles[str(c)] for c in cohort.columns if str(c) in roles}


def read_cohort(path: str | Path) -> pd.DataFrame:
    """Read a cohort written by ``phm-audit generate``: a file, or a Parquet dataset folder.

    Parquet keeps the cohort's metadata (roles, scenario, seed); CSV gets the roles from the schema.
    A dataset folder is read whole, its parts in order, into one DataFrame (see
    :func:`phm_audit._io.read_dataset`). Known columns get their schema dtypes back.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` or ``.csv`` file, or a folder of ``.parquet`` parts.

    Returns
    -------
    pandas.DataFrame
    """
    df = _coerce(read_dataset(path) if Path(path).is_dir() else read_table(path))
    meta = dict(df.attrs.get("phm_audit") or {})
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta["roles"] = cohort_roles(df)
    meta.setdefault("source", str(path))
    df.attrs["phm_audit"] = meta
    return df
