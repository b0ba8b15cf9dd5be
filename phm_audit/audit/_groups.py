"""Turn protected attributes (and their intersections) into integer group codes with labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from phm_audit._checks import check_columns
from phm_audit.exceptions import PhmInputError, closest

__all__ = ["Grouping", "encode_groups", "intersection_name"]

MISSING = "(missing)"


def intersection_name(attributes: Sequence[str]) -> str:
    """Name of an intersection of attributes, as used in results: ``"ethnicity x imd_quintile"``."""
    return " x ".join(attributes)


@dataclass(frozen=True)
class Grouping:
    """People sorted into the groups of one attribute or intersection.

    Attributes
    ----------
    attribute : str
        Attribute name (``"ethnicity x imd_quintile"`` for an intersection).
    codes : ndarray of int
        Each person's group, ``0 .. len(labels) - 1``.
    labels : tuple of str
        Group labels, in a stable order (categories, or sorted values).
    reference : int
        Index of the reference group.
    components : tuple of str
        The attributes of an intersection (empty for one attribute).
    parts : tuple of tuple of str
        For an intersection, each label's component labels, in the order of ``components`` (so that
        nothing ever splits a label on ``" | "``, which a group name may contain).
    strata : ndarray of int, optional
        Each stratum's group (the strata of :mod:`phm_audit.audit._cells`): the cells of a stratum
        add up to its group's.
    counts : ndarray of int, optional
        The groups' sizes, where ``codes`` does not hold one entry per person (an engine's strata).
    """

    attribute: str
    codes: np.ndarray
    labels: tuple[str, ...]
    reference: int
    components: tuple[str, ...] = ()
    parts: tuple[tuple[str, ...], ...] = ()
    strata: np.ndarray | None = None
    counts: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON-ready description kept in ``AuditResult.groups``: labels, sizes, reference (and parts)."""
        out: dict[str, Any] = {
            "labels": list(self.labels),
            "sizes": [int(x) for x in self.sizes],
            "reference": self.labels[self.reference],
        }
        if self.components:
            out["components"] = list(self.components)
            out["parts"] = [list(p) for p in self.parts]
        return out

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    @property
    def sizes(self) -> np.ndarray:
        if self.counts is not None:
            return self.counts
        return np.bincount(self.codes, minlength=self.n_groups)

    @property
    def canonical(self) -> np.ndarray:
        """The groups in the order of their labels: the order a bootstrap draws in, whatever the engine.

        A categorical column keeps its categories' order in memory, where an engine sorts the values;
        the draws follow this order in both, so the intervals agree.
        """
        return np.argsort(np.asarray(self.labels, dtype=object).astype(str), kind="stable")

    def by_stratum(self) -> np.ndarray:
        """Each stratum's group; an error if the grouping was made without strata."""
        assert self.strata is not None, "a grouping for cells is made with its strata"
        return self.strata


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _encode_one(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = [_label(c) for c in column.cat.categories]
        codes = column.cat.codes.to_numpy().astype(np.int64)
    else:
        values = column.to_numpy()
        uniques, codes = np.unique(
            column.astype(str).to_numpy() if values.dtype == object else values, return_inverse=True
        )
        cats = [_label(u) for u in uniques]
        codes = codes.astype(np.int64)
        if column.isna().any():
            codes = np.where(column.isna().to_numpy(), -1, codes)
            cats = [c for c in cats if c not in ("nan", "None", "<NA>")]
            _, codes_clean = np.unique(codes[codes >= 0], return_inverse=True)
            codes[codes >= 0] = codes_clean
    if (codes < 0).any():
        codes = np.where(codes < 0, len(cats), codes)
        cats.append(MISSING)
    return codes, cats


def encode_groups(
    frame: pd.DataFrame,
    attributes: Sequence[str],
    *,
    reference: str | None = None,
    drop_empty: bool = True,
    weights: np.ndarray | None = None,
) -> Grouping:
    """Encode one attribute, or the intersection of several, as group codes.

    Parameters
    ----------
    frame : pandas.DataFrame
        The cohort or table.
    attributes : sequence of str
        One column, or several for an intersection.
    reference : str, optional
        Label of the reference group; default the largest group.
    drop_empty : bool, default True
        Leave out categories (or combinations) that nobody is in.
    weights : ndarray of int, optional
        How many people each row of ``frame`` stands for (a table of strata and their sizes); the
        groups' sizes, and so the default reference, count them.

    Returns
    -------
    Grouping

    Raises
    ------
    PhmInputError
        For a missing column, a column with a single value, or a reference group that does not exist.
    """
    check_columns(frame, attributes, "protected attribute")
    name = intersection_name(attributes)
    parts = [_encode_one(frame[a]) for a in attributes]
    for a, (part_codes, part_labels) in zip(attributes, parts, strict=True):
        present = np.unique(part_codes)
        if present.size < 2:
            value = part_labels[int(present[0])] if present.size else "nothing"
            raise PhmInputError(
                f"column '{a}' has a single value ('{value}'); a disparity needs at least two groups — "
                "choose another attribute or check the extract"
            )
    codes = parts[0][0].copy()
    labels = list(parts[0][1])
    pieces: list[tuple[str, ...]] = [(lab,) for lab in labels]
    for part_codes, part_labels in parts[1:]:
        codes = codes * len(part_labels) + part_codes
        labels = [f"{a} | {b}" for a in labels for b in part_labels]
        pieces = [(*a, b) for a in pieces for b in part_labels]
    if drop_empty:
        present = np.flatnonzero(np.bincount(codes, weights=weights, minlength=len(labels)))
        remap = np.full(len(labels), -1, dtype=np.int64)
        remap[present] = np.arange(present.size)
        codes = remap[codes]
        labels = [labels[i] for i in present]
        pieces = [pieces[i] for i in present]
    sizes = np.bincount(codes, weights=weights, minlength=len(labels))
    if reference is None:
        ref = int(np.argmax(sizes))
    else:
        ref_label = _label(reference)
        if ref_label not in labels:
            raise PhmInputError(
                f"reference group '{ref_label}' does not exist in '{name}'{closest(ref_label, labels)}; "
                f"groups: {', '.join(labels[:12])}{' ...' if len(labels) > 12 else ''}"
            )
        ref = labels.index(ref_label)
    counts = None if weights is None else sizes.astype(np.int64)
    if len(attributes) > 1:
        return Grouping(
            attribute=name,
            codes=codes,
            labels=tuple(labels),
            reference=ref,
            components=tuple(attributes),
            parts=tuple(pieces),
            counts=counts,
        )
    return Grouping(attribute=name, codes=codes, labels=tuple(labels), reference=ref, counts=counts)
