"""``teach(out, ...)``: build the grid, render the page, write it atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from phm_audit.exceptions import PhmInputError
from phm_audit.teach._build import DEFAULT_GAPS, Progress, build_teach_data

__all__ = ["DEFAULT_OUT", "teach", "write_page"]

#: Where ``phm-audit teach`` writes the page unless told otherwise.
DEFAULT_OUT = Path("reports") / "teach" / "index.html"


def _check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.suffix.lower() not in (".html", ".htm"):
        raise PhmInputError(
            f"the page must be an .html file; got '{path}' (for example --out reports/teach/index.html)"
        )
    if path.is_dir():
        raise PhmInputError(f"'{path}' is a folder; give the page's file name, e.g. '{path / 'index.html'}'")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise PhmInputError(f"cannot write '{path}': '{parent}' is a file, not a folder; choose another --out")
    return path


def write_page(text: str, out: str | os.PathLike[str]) -> Path:
    """Write ``text`` to ``out`` whole or not at all (a temporary file beside it, then a rename).

    Nothing else in the folder is touched; the folder is created if missing.
    """
    path = _check_out(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # only the temporary file this call made
        raise
    return path


def teach(
    out: str | os.PathLike[str] = DEFAULT_OUT,
    *,
    n: int = 100_000,
    seed: int = 7,
    gaps: Sequence[float] = DEFAULT_GAPS,
    n_boot: int = 200,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> Path:
    """Write the explorable teaching page.

    Parameters
    ----------
    out : path, default ``reports/teach/index.html``
        The page (an ``.html`` file); written atomically, nothing else in its folder is touched.
    n : int, default 100_000
        People generated per grid point (half audited, half train the learners).
    seed : int, default 7
        Seed of every cohort, split, learner and bootstrap: the same seed gives the same bytes.
    gaps : sequence of float, default (0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
        Access gaps of the grid, rising, each in [0, 0.9].
    n_boot : int, default 200
        Bootstrap replicates of every interval.
    n_jobs : int, default 1
        Worker processes (``-1``: every core); does not change the page.
    progress : callable, optional
        ``progress(done, total, text)`` for each grid point.

    Returns
    -------
    pathlib.Path
        The page written.

    Raises
    ------
    PhmInputError
        A bad ``out``, ``n``, ``seed``, ``gaps``, ``n_boot`` or ``n_jobs``, before any work is done.

    Examples
    --------
    ``teach()`` writes ``reports/teach/index.html`` from the default grid; a wrong file name fails at once:

    >>> teach("reports/teach/page.txt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phm_audit.exceptions.PhmInputError: the page must be an .html file; got 'reports/teach/page.txt' (...)
    """
    from phm_audit.teach._page import render_page

    _check_out(out)
    data = build_teach_data(n=n, seed=seed, gaps=gaps, n_boot=n_boot, n_jobs=n_jobs, progress=progress)
    return write_page(render_page(data), out)
