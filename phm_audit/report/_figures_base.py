"""What every figure of a report shares: style, layout, rendering to SVG and drawing in batches.

Every figure is drawn with matplotlib's object-oriented API on an explicit Agg canvas (no pyplot,
no global backend), in the Okabe–Ito colour-blind-safe palette, and each group also has its own
marker and line style, so the figures read in grey print. Output is deterministic: a fixed
``svg.hashsalt``, no date or creator in the metadata, and short ids made unique per figure so that
many figures can share one HTML page (:func:`phm_audit.report._svg.finish_svg`).

A figure is made by :func:`_render` from a function that draws it; inside a :class:`FigureBatch`
that function is kept and called later, in forked worker processes if asked.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import math
import multiprocessing
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from phm_audit._process import die_with_parent
from phm_audit.report._figure_data import MAX_GROUPS
from phm_audit.report._svg import finish_svg

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "OKABE_ITO",
    "Figure",
    "FigureBatch",
    "available_cpus",
    "group_style",
]

#: Okabe & Ito (2008) colour-blind-safe palette; black first (the reference group), yellow last
#: (weakest on white paper).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
#: One marker per group, so that groups differ in grey print too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: One line style per group.
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 2, 1, 2)))
# (each of the three holds MAX_GROUPS styles: a figure draws at most that many groups)

_WIDTH = 7.2  # inches: fits an A4 page with margins
_RC: dict[str, Any] = {
    "svg.hashsalt": "phm-audit",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d0d0d0",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    # merge points closer to a straight line than 1/9 pt: invisible, and a sweep of 100 capacities
    # becomes a few dozen segments
    "path.simplify": True,
    # a fixed title position: matplotlib otherwise measures every axes' decorations to place each
    # title, which was a sixth of the drawing time; no figure has anything above its axes
    "axes.titley": 1.0,
}


@dataclass(frozen=True)
class Figure:
    """A rendered figure.

    Attributes
    ----------
    id : str
        Unique, stable identifier (used as the HTML anchor and to prefix SVG ids).
    title : str
        Short title.
    alt : str
        Alt text: what the figure shows and what it says, for people who cannot see it.
    caption : str
        Caption printed under the figure.
    svg : str
        Inline SVG markup (no XML prolog, no external references).
    data : pandas.DataFrame or None
        Exactly the numbers the figure draws (the frame of its ``*_data`` function in
        :mod:`phm_audit.report._figure_data`), for a release bundle to publish beside it.
    """

    id: str
    title: str
    alt: str
    caption: str
    svg: str
    data: pd.DataFrame | None = field(default=None, compare=False, repr=False)


def group_style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th group (0 = the reference group).

    Examples
    --------
    >>> group_style(0)["color"]
    '#000000'
    """
    i = index % MAX_GROUPS
    return {"color": OKABE_ITO[i], "marker": MARKERS[i], "linestyle": LINESTYLES[i]}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "fig"


def _to_svg(fig: MplFigure, fid: str, alt: str) -> str:
    """Serialise a figure to lean inline SVG, deterministically, with short ids unique to ``fid``."""
    FigureCanvasAgg(fig)  # an explicit Agg canvas: no pyplot state, no interactive backend
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": _RC["svg.hashsalt"], "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return finish_svg(buf.getvalue(), fid, alt)


_CHAR = 0.06  # inches per character of a tick label at 7.5 pt
_LEGEND_ROW = 0.21  # inches per row of a legend at 8 pt


def _width(labels: Sequence[Any]) -> float:
    """Inches taken by the longest of ``labels`` as tick labels."""
    return _CHAR * max((len(str(x)) for x in labels), default=4)


def _new_figure(
    *,
    nrows: int = 1,
    ncols: int = 1,
    axes_height: float = 2.0,
    height_ratios: Sequence[float] | None = None,
    left: float = 0.75,
    right: float = 0.15,
    top: float = 0.3,
    bottom: float = 0.5,
    hgap: float = 0.75,
    wgap: float = 0.85,
    **kw: Any,
) -> tuple[MplFigure, np.ndarray]:
    """A figure of the page's width, its height from its rows; margins and gaps in inches.

    The layout is computed here rather than by a layout engine: much faster for the dozens of figures
    of a report, and the margins are sized from the labels they must hold.
    """
    ratios = list(height_ratios) if height_ratios is not None else [1.0] * nrows
    # margins sized from very long labels (a group name of 120 characters) would leave no room for the
    # axes: they are capped, and such a label runs past the edge instead (tables show it whole)
    left, right, wgap = min(left, 0.4 * _WIDTH), min(right, 0.25 * _WIDTH), min(wgap, 0.25 * _WIDTH)
    axes_total = axes_height * sum(ratios)
    height = top + bottom + (nrows - 1) * hgap + axes_total
    axes_width = (_WIDTH - left - right - (ncols - 1) * wgap) / ncols
    fig = MplFigure(figsize=(_WIDTH, height))
    grid: dict[str, Any] = {
        "left": left / _WIDTH,
        "right": 1 - right / _WIDTH,
        "bottom": bottom / height,
        "top": 1 - top / height,
        "hspace": hgap / (axes_total / nrows),
        "wspace": wgap / max(axes_width, 0.5),
        "height_ratios": ratios,
    }
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=grid, **kw)
    return fig, axes


def _legend_height(n_entries: int, ncol: int, title: bool = False) -> float:
    return _LEGEND_ROW * (math.ceil(n_entries / max(ncol, 1)) + int(title)) + 0.1


def _bottom_legend(fig: MplFigure, handles: Any, labels: Any, ncol: int, title: str | None = None) -> None:
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False, title=title)


@dataclass(frozen=True)
class _Drawing:
    """How to draw one figure: its id, its alt text and a function that returns the matplotlib figure."""

    fid: str
    alt: str
    draw: Callable[[], MplFigure]

    def svg(self) -> str:
        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            return _to_svg(self.draw(), self.fid, self.alt)


#: While a :class:`FigureBatch` collects, the drawings of the figures made; otherwise None.
_COLLECTING: contextvars.ContextVar[list[_Drawing] | None] = contextvars.ContextVar("phm_audit_figures", default=None)
_PLACEHOLDER = "<!--phm-audit figure {}-->"
_PLACEHOLDERS = re.compile(r"<!--phm-audit figure (\d+)-->")


def _render(
    fid: str, title: str, alt: str, caption: str, draw: Callable[[], MplFigure], data: pd.DataFrame | None = None
) -> Figure:
    drawing = _Drawing(fid, alt, draw)
    pending = _COLLECTING.get()
    if pending is None:
        return Figure(id=fid, title=title, alt=alt, caption=caption, svg=drawing.svg(), data=data)
    pending.append(drawing)
    return Figure(id=fid, title=title, alt=alt, caption=caption, svg=_PLACEHOLDER.format(len(pending) - 1), data=data)


#: The drawings forked worker processes draw (they inherit this list; nothing is pickled but the SVG text).
_FORKED: list[_Drawing] = []
_FORK_LOCK = threading.Lock()


def _draw_forked(index: int) -> str:
    return _FORKED[index].svg()


def _can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class FigureBatch:
    """Figures made while the batch collects are drawn later, all together, in ``n_jobs`` processes.

    Inside ``with batch.collecting():`` every figure function returns a :class:`Figure` whose ``svg``
    is a placeholder; :meth:`start` begins drawing them (in forked worker processes when ``n_jobs``
    is above 1, on Linux) and :meth:`fill` puts the SVG in place of the placeholders of a page. The
    SVG is the same, byte for byte, however many processes draw it.

    Examples
    --------
    >>> from phm_audit.report._figures import judgement_figure
    >>> batch = FigureBatch()
    >>> with batch.collecting():
    ...     fig = judgement_figure(pd.DataFrame(columns=["analysis", "group", "metric", "model"]))
    >>> fig is None and batch.fill("<p>no figure</p>")
    '<p>no figure</p>'
    """

    def __init__(self) -> None:
        self.drawings: list[_Drawing] = []
        self._pool: Any = None
        self._async: Any = None
        self._svgs: list[str] | None = None
        self._locked = False

    @contextlib.contextmanager
    def collecting(self) -> Iterator[FigureBatch]:
        """Within this block, figures are recorded here instead of drawn."""
        token = _COLLECTING.set(self.drawings)
        try:
            yield self
        finally:
            _COLLECTING.reset(token)

    def start(self, n_jobs: int = 1) -> None:
        """Begin drawing: in ``n_jobs`` forked processes if that is above 1 (Linux), else when filled.

        Forked workers inherit the drawings and send back only SVG text. Drawing in processes is
        for programs that own their process (``phm-audit demo``): forking a process whose other
        threads hold locks can hang the workers, so the default is 1.
        """
        jobs = min(int(n_jobs), len(self.drawings))
        if jobs <= 1 or self._locked or not _can_fork():
            return
        _FORK_LOCK.acquire()  # one forked batch at a time: the workers read the module's list
        self._locked = True
        try:
            _FORKED[:] = self.drawings
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork in a process with threads (here: idle BLAS/OpenMP
                # workers); the forked workers only draw with matplotlib
                warnings.simplefilter("ignore", DeprecationWarning)
                # workers end with this process, however it ends (kill -9 included)
                self._pool = multiprocessing.get_context("fork").Pool(
                    jobs, initializer=die_with_parent, initargs=(os.getpid(),)
                )
            self._async = self._pool.map_async(_draw_forked, range(len(self.drawings)), chunksize=1)
        except BaseException:
            self.close()
            raise

    def svgs(self) -> list[str]:
        """The SVG of every figure, in the order they were made (waits for the workers)."""
        if self._svgs is None:
            if self._async is not None:
                try:
                    self._svgs = list(self._async.get())
                finally:
                    self.close()
            else:
                self._svgs = [d.svg() for d in self.drawings]
        return self._svgs

    def fill(self, text: str) -> str:
        """``text`` with every figure's placeholder replaced by its SVG."""
        if not self.drawings:
            return text
        svgs = self.svgs()
        return _PLACEHOLDERS.sub(lambda m: svgs[int(m.group(1))], text)

    def close(self) -> None:
        """Stop the workers, if any are still running (after an error elsewhere)."""
        pool, self._pool = self._pool, None
        if self._svgs is None:
            self._async = None  # svgs() draws here, if it is still asked for
        try:
            if pool is not None:
                if self._svgs is None:
                    pool.terminate()
                else:
                    pool.close()
                pool.join()
        finally:
            if self._locked:
                self._locked = False
                _FORKED.clear()
                _FORK_LOCK.release()


def _fmt(x: float, digits: int = 2) -> str:
    if not math.isfinite(x):
        return "undefined"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits + 1}g}"


_NICE = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


def _plain_number(x: float, _pos: object = None) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:g}"


def _log_axis(ax: Axes, axis: str, low: float, high: float) -> None:
    """A log scale with a few plain-number ticks (0.5, 1, 2 rather than 5 x 10^-1)."""
    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    if high > 5 or high / max(low, 1e-12) > 30:  # counts and costs: 1, 2, 5 in each decade
        lo_exp, hi_exp = math.floor(math.log10(max(low, 1e-12))), math.ceil(math.log10(high))
        ticks = [m * 10.0**e for e in range(lo_exp, hi_exp + 1) for m in (1, 2, 5)]
    else:
        ticks = list(_NICE)
    ticks = [t for t in ticks if low / 1.05 <= t <= high * 1.05] or [low, high]
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(_plain_number))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def _err(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    lo = np.where(np.isfinite(low), np.clip(values - low, 0, None), 0.0)
    hi = np.where(np.isfinite(high), np.clip(high - values, 0, None), 0.0)
    return np.vstack([lo, hi])


def _shown(frame: pd.DataFrame, column: str = "value") -> np.ndarray:
    """A column of a figure's frame as drawn: per cent where the metric's format (``fmt``) is percent."""
    v = frame[column].to_numpy(dtype=np.float64)
    return np.where(frame["fmt"].to_numpy() == "percent", 100 * v, v) if "fmt" in frame else v


def _scale(frame: pd.DataFrame) -> np.ndarray:
    """What each row's interval is multiplied by to be drawn (100 for a percent)."""
    return np.where(frame["fmt"].to_numpy() == "percent", 100.0, 1.0)


def _interval(frame: pd.DataFrame) -> np.ndarray:
    """The error bars of a frame's rows as drawn: below and above each value (0 where an end is missing)."""
    v = frame["value"].to_numpy(dtype=np.float64)
    err = _err(v, frame["ci_low"].to_numpy(dtype=np.float64), frame["ci_high"].to_numpy(dtype=np.float64))
    return err * _scale(frame) if "fmt" in frame else err
