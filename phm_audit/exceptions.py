"""All public exceptions and warnings of phm-audit, in one place.

Every error a user can cause by what they pass in (a file, an argument, a column) is a
:class:`PhmInputError`; the command line turns it into a one-line message and exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PhmAuditError",
    "PhmInputError",
    "PhmTypeError",
    "PhmWarning",
    "ScenarioError",
    "UntrustedModelError",
    "closest",
]


class PhmAuditError(Exception):
    """Base class of every error raised on purpose by phm-audit."""


class PhmInputError(PhmAuditError, ValueError):
    """Bad input from the user: a value, a file, a column. The message names it and the fix."""


class PhmTypeError(PhmAuditError, TypeError):
    """An argument of the wrong type."""


class ScenarioError(PhmInputError):
    """A scenario that cannot be found, parsed or validated."""


class UntrustedModelError(PhmInputError):
    """A supplied model file needs types the user has not trusted."""


class PhmWarning(UserWarning):
    """A result that stands but deserves the user's attention (a fallback, a small group)."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``.

    Parameters
    ----------
    name : str
        What the user wrote.
    choices : iterable of str
        What would have been accepted.

    Returns
    -------
    str
        A suffix to append to an error message.

    Examples
    --------
    >>> closest("cost_nxt", ["cost_next", "cost_prior"])
    " (did you mean 'cost_next'?)"
    """
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
