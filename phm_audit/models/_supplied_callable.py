"""A Python function a user brings, ``module:function``, that scores a cohort without seeing its outcomes."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from phm_audit.exceptions import PhmInputError, closest
from phm_audit.models._supplied_base import SuppliedRiskModel, exit_text, first_line
from phm_audit.models._validation import columns_of_role

__all__ = ["CallableRiskModel", "load_callable"]


class CallableRiskModel(SuppliedRiskModel):
    """A Python function ``f(cohort) -> scores``, named ``module:function``.

    The function sees the cohort without its outcome-year ``label`` and ground-truth ``truth``
    columns, so it cannot read outcomes; its result is checked (one finite number per person).

    Parameters
    ----------
    func : callable
        Takes a DataFrame, returns an array-like of scores in its row order.
    name : str
        Name in results (default the ``module:function`` spec).
    target : str, default "unknown"
        What the scores predict, if known.
    """

    noun = "callable"

    def __init__(self, func: Callable[[pd.DataFrame], Any], *, name: str, target: str = "unknown") -> None:
        self.func = func
        super().__init__(name=name, target=target)

    def _raw_scores(self, cohort: pd.DataFrame) -> Any:
        """Call the function on the cohort's id, protected and feature columns (its outcomes hidden)."""
        hidden = columns_of_role(cohort, "label", "truth")
        view = cohort.drop(columns=hidden)
        try:
            out = self.func(view)
        except SystemExit as exc:  # the user's function tried to end phm-audit: a bad model, not a finished run
            raise PhmInputError(f"{self.who} {exit_text(exc)}") from None
        except Exception as exc:  # the user's function failed: one line naming it
            raise PhmInputError(f"{self.who} raised {first_line(exc)}") from None
        return out


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    """Let ``phm-audit`` import a module from the current folder, as ``python -m`` would."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def load_callable(spec: str, *, name: str | None = None, target: str = "unknown") -> CallableRiskModel:
    """Import ``module:function`` and wrap it as a model of kind ``supplied``.

    Importing a module runs its code, as for any Python import; name only modules you trust. The
    current folder is searched too.

    Parameters
    ----------
    spec : str
        ``package.module:function`` (the function may be an attribute path, ``module:Class.method``).
    name : str, optional
        Name in results; default ``spec``.
    target : str, default "unknown"
        What the scores predict, if known.

    Returns
    -------
    CallableRiskModel

    Raises
    ------
    PhmInputError
        A malformed spec, a module that cannot be imported, or a name that is not a callable in it.

    Examples
    --------
    >>> model = load_callable("numpy:zeros_like")
    >>> model.kind
    'supplied'
    """
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise PhmInputError(f"--model-callable '{spec}' must be MODULE:FUNCTION, for example mymodels:risk")
    module_name, attr = module_name.strip(), attr.strip()
    try:
        with _cwd_on_path():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PhmInputError(
            f"cannot import module '{module_name}' of '{spec}' ({exc}); put {module_name.split('.')[0]}.py in the "
            "current folder or on PYTHONPATH"
        ) from None
    except SystemExit as exc:
        raise PhmInputError(f"importing module '{module_name}' of '{spec}' {exit_text(exc)}") from None
    except Exception as exc:  # importing the user's module failed
        raise PhmInputError(f"importing module '{module_name}' of '{spec}' raised {first_line(exc)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            choices = [n for n in dir(obj) if not n.startswith("_")]
            raise PhmInputError(f"'{spec}': {module_name} has no '{attr}'{closest(part, choices)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PhmInputError(f"'{spec}' is a {type(obj).__name__}, not a function taking the cohort")
    return CallableRiskModel(obj, name=name or str(spec), target=target)
