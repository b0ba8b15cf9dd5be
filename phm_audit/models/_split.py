"""Training never overlaps the audited people: the train/audit split and its checks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import as_scores, check_int
from phm_audit.exceptions import PhmInputError, PhmTypeError
from phm_audit.models._protocol import RiskModel
from phm_audit.models._validation import ID_COLUMN, id_uniform, patient_ids

__all__ = ["check_disjoint", "fit_and_score", "split_cohort"]

_SPLIT_SALT = 0x5B17


def _with_attrs(frame: pd.DataFrame, attrs: Mapping[Any, Any], **split: Any) -> pd.DataFrame:
    frame.attrs = copy.deepcopy(dict(attrs))
    meta = frame.attrs.get("phm_audit")
    if isinstance(meta, dict):
        meta["split"] = split
    return frame


def split_cohort(
    cohort: pd.DataFrame, *, train_fraction: float = 0.5, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a cohort into disjoint training and audited people.

    This is how phm-audit keeps training apart from the audit: each person goes to one part only,
    decided by a seeded hash of their ``patient_id`` (SplitMix64 of the id mixed with the seed, read as
    a number in (0, 1); below ``train_fraction`` means training). A person's part depends only on their
    id and the seed — not on row order, cohort size or who else is in the cohort — so the same seed
    always puts the same person on the same side. The parts' sizes are binomial around
    ``train_fraction``, not exact.

    Parameters
    ----------
    cohort : pandas.DataFrame
        People with a unique ``patient_id``.
    train_fraction : float, default 0.5
        Expected share of people used for training, in (0, 1).
    seed : int, default 0
        Seed of the hash.

    Returns
    -------
    (train, audit) : tuple of pandas.DataFrame
        Row subsets in the cohort's order, each with a copy of the cohort's ``attrs`` (its metadata
        gains a ``split`` entry: part, seed and train_fraction).

    Raises
    ------
    PhmInputError
        No or duplicate ``patient_id``, a fraction outside (0, 1), or a part left empty.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> cohort = generate("england", 1000, seed=1)
    >>> train, audit = split_cohort(cohort, seed=1)
    >>> len(train) + len(audit) == len(cohort), set(train.patient_id) & set(audit.patient_id)
    (True, set())
    """
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, int | float | np.floating):
        raise PhmTypeError(f"train_fraction must be a number; got {train_fraction!r}")
    if not 0 < float(train_fraction) < 1:
        raise PhmInputError(f"train_fraction must be between 0 and 1 (exclusive); got {train_fraction}")
    seed = check_int(seed, "seed")
    ids = patient_ids(cohort)
    in_train = id_uniform(ids.to_numpy(), seed=seed, salt=_SPLIT_SALT) < float(train_fraction)
    n_train = int(in_train.sum())
    if n_train == 0 or n_train == len(cohort):
        raise PhmInputError(
            f"splitting {len(cohort):,} people with train_fraction={train_fraction} left one part empty; "
            "use a larger cohort or a fraction nearer 0.5"
        )
    info = {"seed": int(seed), "train_fraction": float(train_fraction)}
    train = _with_attrs(cohort.loc[in_train], cohort.attrs, part="train", **info)
    audit = _with_attrs(cohort.loc[~in_train], cohort.attrs, part="audit", **info)
    return train, audit


def _origin(frame: pd.DataFrame) -> tuple[Any, Any] | None:
    meta = frame.attrs.get("phm_audit") or {}
    if "seed" not in meta or "scenario" not in meta:
        return None
    return meta["scenario"], meta["seed"]


def check_disjoint(train: pd.DataFrame, audit: pd.DataFrame) -> None:
    """Refuse to train on people who are also audited.

    Two generated cohorts hold the same people when they share scenario and seed (ids are numbered
    from 1 in every cohort, so different seeds are different people even where ids coincide). Without
    that metadata (a CSV extract), a shared ``patient_id`` with the same age and sex is taken to be the
    same person.

    Parameters
    ----------
    train, audit : pandas.DataFrame
        Training and audited people.

    Raises
    ------
    PhmInputError
        Some people are in both; the message says how many and how to fix it.
    """
    if ID_COLUMN not in train.columns or ID_COLUMN not in audit.columns:
        return
    shared = np.intersect1d(train[ID_COLUMN].to_numpy(), audit[ID_COLUMN].to_numpy())
    if shared.size == 0:
        return
    a, b = _origin(train), _origin(audit)
    if a is not None and b is not None:
        same = a == b
    else:
        cols = [c for c in ("age", "sex", "ethnicity") if c in train.columns and c in audit.columns]
        if not cols:
            same = True
        else:
            left = train.loc[train[ID_COLUMN].isin(shared), [ID_COLUMN, *cols]].set_index(ID_COLUMN).sort_index()
            right = audit.loc[audit[ID_COLUMN].isin(shared), [ID_COLUMN, *cols]].set_index(ID_COLUMN).sort_index()
            same = bool((left.astype(str).to_numpy() == right.astype(str).to_numpy()).all())
    if same:
        raise PhmInputError(
            f"the training and audited cohorts share {shared.size:,} people (same patient_id"
            + (", same scenario and seed" if a is not None and b is not None else ", same age and sex")
            + "); a model must not be audited on people it was trained on: use split_cohort "
            "(or, on the command line, leave out --train-cohort), or generate the training cohort with another seed"
        )


def fit_and_score(model: RiskModel, train: pd.DataFrame, audit: pd.DataFrame) -> np.ndarray:
    """Fit ``model`` on ``train`` and return its scores on ``audit``.

    Parameters
    ----------
    model : RiskModel
        A new or refittable model.
    train : pandas.DataFrame
        Training people; must not be audited people (checked with :func:`check_disjoint`).
    audit : pandas.DataFrame
        Audited people.

    Returns
    -------
    ndarray of float64, shape (len(audit),)
        Finite scores, in ``audit``'s row order.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import get_model, split_cohort
    >>> train, audit = split_cohort(generate("england", 2000, seed=1))
    >>> fit_and_score(get_model("prior_cost"), train, audit).dtype
    dtype('float64')
    """
    check_disjoint(train, audit)
    fitted = model.fit(train)
    if fitted is not model:
        raise PhmInputError(f"fit of model '{model.name}' returned {type(fitted).__name__}, not the model itself")
    return as_scores(model.score(audit), len(audit), f"model '{model.name}'")
