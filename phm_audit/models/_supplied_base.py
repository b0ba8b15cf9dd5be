"""What every wrapper of a model a user brings shares: a name, a target, kind ``supplied``, one score check."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from phm_audit._checks import as_scores

__all__ = ["SuppliedRiskModel", "exit_text", "first_line"]


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def exit_text(exc: SystemExit) -> str:
    """Words for user code that called ``sys.exit``: phm-audit reports it instead of ending silently."""
    return (
        f"called sys.exit({exc.code!r}) instead of returning scores; a model must return one score per person "
        "(raise an exception to report a problem)"
    )


class SuppliedRiskModel(abc.ABC):
    """A model a user brings, already fitted: what the wrappers of a model file, a table of scores and a
    callable share.

    A subclass says how messages name it (:attr:`noun`), computes the raw scores
    (:meth:`_raw_scores`) and, where it can, checks a cohort (:meth:`_check`); :meth:`score` checks
    that there is one finite number per person.

    Parameters
    ----------
    name : str
        Name in results.
    target : str, default "unknown"
        What the model predicts, if known.
    features : sequence of str, default ()
        Cohort columns read, where the model says (a table of scores and a callable do not).
    """

    kind: ClassVar[str] = "supplied"
    #: How messages name the model: ``model 'name'``, ``scores 'name'``, ``callable 'name'``.
    noun: ClassVar[str] = "model"

    def __init__(self, *, name: str, target: str = "unknown", features: Sequence[str] = ()) -> None:
        self.name = name
        self.target = target
        self.features: list[str] = list(features)

    @property
    def who(self) -> str:
        """The model as messages name it, for example ``callable 'mymodels:risk'``."""
        return f"{self.noun} '{self.name}'"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}{self._repr_extra()})"

    def _repr_extra(self) -> str:
        return ""

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Score every person of ``cohort`` and check the scores.

        Parameters
        ----------
        cohort : pandas.DataFrame
            The people to score, with the columns the model reads (a table of scores: ``patient_id``).

        Returns
        -------
        ndarray of float64, shape (len(cohort),)
            One finite score per person, in the row order of ``cohort``.

        Raises
        ------
        PhmInputError
            The model cannot score the cohort (the message says why), or returned the wrong shape,
            non-numeric, NaN or infinite values.
        """
        return as_scores(self._raw_scores(cohort), len(cohort), self.who)

    def fit(self, cohort: pd.DataFrame | None = None) -> Self:
        """Check ``cohort`` where the model can (a model file: that it has the estimator's features) and
        return ``self``; a supplied model comes fitted."""
        if cohort is not None:
            self._check(cohort)
        return self

    def _check(self, cohort: pd.DataFrame) -> None:
        """Raise :class:`~phm_audit.exceptions.PhmInputError` where ``cohort`` cannot be scored (default: no check)."""
        return None  # a table of scores and a callable can only be checked by scoring

    @abc.abstractmethod
    def _raw_scores(self, cohort: pd.DataFrame) -> Any:
        """The scores of ``cohort`` before they are checked (each wrapper computes them its own way)."""
