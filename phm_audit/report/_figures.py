"""Figures of a report, as lean inline SVG with alt text.

Every figure is drawn with matplotlib's object-oriented API on an explicit Agg canvas (no pyplot,
no global backend), in the Okabe–Ito colour-blind-safe palette, and each group also has its own
marker and line style, so the figures read in grey print. Output is deterministic: a fixed
``svg.hashsalt``, no date or creator in the metadata, and short ids made unique per figure so that
many figures can share one HTML page.

The SVG is vector (it prints sharply at any size) and lean: coordinates to 0.1 pt (0.035 mm),
nearly collinear points of a line merged (``path.simplify``), no ids nobody refers to, no
indentation, and the font family and line-join defaults set once for the page
(:data:`SVG_PAGE_CSS`) rather than on every element.

Compute apart from draw: each ``*_data`` function turns the (disclosure-controlled) tidy table or
curves into a small frame of numbers; each ``*_figure`` function draws such a frame.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import html
import io
import math
import multiprocessing
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from phm_audit._process import die_with_parent
from phm_audit.report._findings import describe_operating_point

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "OKABE_ITO",
    "SVG_PAGE_CSS",
    "Figure",
    "FigureBatch",
    "available_cpus",
    "explain_figure",
    "group_style",
    "judgement_figure",
    "label_choice_figure",
    "label_gap_figure",
    "lean_svg",
    "need_cost_by_percentile",
    "need_cost_data",
    "net_benefit_figure",
    "reliability_figure",
    "shares_figure",
    "thresholds_figure",
]

#: Okabe & Ito (2008) colour-blind-safe palette; black first (the reference group), yellow last
#: (weakest on white paper).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
#: One marker per group, so that groups differ in grey print too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: One line style per group.
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 2, 1, 2)))
#: Most groups a figure draws as separate lines; attributes with more (intersections) are left to tables.
MAX_GROUPS = len(OKABE_ITO)

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

#: The font family matplotlib measured the text with, then common fallbacks.
SVG_FONT_FAMILY = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, Geneva, Arial, Helvetica, sans-serif"
#: What every figure's SVG leaves to the page: its text's font family and the default line joins
#: (matplotlib writes both on each element, or in a ``<style>`` that would apply to the whole page).
SVG_PAGE_CSS = (
    "figure svg * { stroke-linejoin: round; stroke-linecap: butt; }\n"
    f"figure svg text {{ font-family: {SVG_FONT_FAMILY}; }}"
)


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
    """

    id: str
    title: str
    alt: str
    caption: str
    svg: str


def group_style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th group (0 = the reference group).

    Examples
    --------
    >>> group_style(0)["color"]
    '#000000'
    """
    i = index % MAX_GROUPS
    return {"color": OKABE_ITO[i], "marker": MARKERS[i], "linestyle": LINESTYLES[i]}


def _ordered(groups: Sequence[str], reference: str | None) -> list[str]:
    """The reference group first, then the others in their order."""
    out = list(dict.fromkeys(groups))
    if reference is not None and reference in out:
        out.remove(reference)
        out.insert(0, reference)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "fig"


# transforms keep their precision: a rounded scale or matrix would distort what it applies to
_GEOMETRY = re.compile(r'\b(d|x|y|width|height|points)="([^"]*)"')
_DECIMAL = re.compile(r"-?\d+\.\d+")
_PATH_COMMAND = re.compile(r"\s*([MLQCZz])\s*")
_SPACE = re.compile(r"\s+")
_STYLE = re.compile(r'style="([^"]*)"')
_FONT_FAMILY = re.compile(r"font-family:[^;\"]*;?\s*")
_GROUP = re.compile(r"<g\b([^>]*?)(/?)>|</g>")
_GROUP_ID = re.compile(r'^\s*id="[^"]*"\s*$')


def _round_decimal(match: re.Match[str]) -> str:
    text = f"{float(match.group()):.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _lean_geometry(match: re.Match[str]) -> str:
    name, value = match.group(1), _DECIMAL.sub(_round_decimal, match.group(2))
    if name == "d":
        value = _PATH_COMMAND.sub(r"\1", _SPACE.sub(" ", value)).strip()
    return f'{name}="{value}"'


def _lean_style(match: re.Match[str]) -> str:
    style = _FONT_FAMILY.sub("", match.group(1))
    style = re.sub(r"\s*([:;])\s*", r"\1", style).strip().rstrip(";")
    return f'style="{style}"' if style else ""


def _drop_bare_groups(text: str) -> str:
    """Remove ``<g>`` elements whose only attribute is an id (nothing refers to a group), keeping their content."""
    stack: list[bool] = []

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "</g>":
            return "" if stack.pop() else "</g>"
        attributes, closed = match.group(1), match.group(2)
        bare = not attributes.strip() or bool(_GROUP_ID.match(attributes))
        if closed:
            return "" if bare else match.group(0)
        stack.append(bare)
        return "" if bare else match.group(0)

    return _GROUP.sub(sub, text)


def lean_svg(text: str) -> str:
    """Make matplotlib's SVG lean, without changing what it draws.

    Coordinates are rounded to 0.1 pt; path data, styles and the space between tags are written
    compactly; groups that carry only an id are unwrapped (nothing refers to them); the markers of
    a line take their common style from their group; the font family and the default line joins,
    repeated on every element, are left to :data:`SVG_PAGE_CSS`; and ``xlink:href`` becomes ``href``.

    Parameters
    ----------
    text : str
        SVG markup from matplotlib (with ``svg.fonttype = "none"``).

    Returns
    -------
    str

    Examples
    --------
    >>> lean_svg('<g id="a"> <path d="M 0.123456 1 L 2.75 3.04999" style="fill: none; stroke: #000"/> </g>')
    '<path d="M0.1 1L2.8 3" style="fill:none;stroke:#000"/>'
    """
    text = re.sub(r"<style\b[^>]*>.*?</style>", "", text, flags=re.S)
    text = re.sub(r'\s*transform="rotate\(-?0 [^")]*\)"', "", text)
    text = _GEOMETRY.sub(_lean_geometry, text)
    text = _STYLE.sub(_lean_style, text)
    text = text.replace("xlink:href=", "href=")
    text = _drop_bare_groups(text)
    text = re.sub(r"<defs>\s*</defs>", "", text)
    text = re.sub(r">\s+<", "><", text)
    text = re.sub(r"\s+(/?>)", r"\1", text).strip()
    return _MARKER_GROUP.sub(_lift_marker_style, text)


_MARKER_GROUP = re.compile(r'<g( clip-path="[^"]*")?>((?:<use [^>]*/>)+)</g>')
_USE_STYLE = re.compile(r' style="([^"]*)"')


def _lift_marker_style(match: re.Match[str]) -> str:
    """The markers of one line share one style: set it once on their group (they inherit it)."""
    uses = match.group(2)
    styles = set(_USE_STYLE.findall(uses))
    if len(styles) != 1 or uses.count("<use ") != len(_USE_STYLE.findall(uses)):
        return match.group(0)
    return f'<g{match.group(1) or ""} style="{styles.pop()}">{_USE_STYLE.sub("", uses)}</g>'


def _short_ids(text: str, fid: str) -> str:
    """Rename every id of a figure to a short one unique to the page: ``f`` and 8 hexadecimal digits of a
    hash of the figure's id (its HTML anchor), then a counter."""
    prefix = "f" + hashlib.sha1(fid.encode("utf-8")).hexdigest()[:8]
    names = {old: f"{prefix}{i:x}" for i, old in enumerate(dict.fromkeys(re.findall(r'\bid="([^"]+)"', text)))}

    def sub(match: re.Match[str]) -> str:
        name = names.get(match.group(2))
        return match.group(0) if name is None else match.group(1) + name

    return re.sub(r'(\bid="|url\(#|href="#)([^")]+)', sub, text)


def _to_svg(fig: MplFigure, fid: str, alt: str) -> str:
    """Serialise a figure to lean inline SVG, deterministically, with short ids unique to ``fid``."""
    FigureCanvasAgg(fig)  # an explicit Agg canvas: no pyplot state, no interactive backend
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": _RC["svg.hashsalt"], "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)  # the HTML parser puts inline SVG in its namespace
    text = _short_ids(lean_svg(text), fid)
    label = html.escape(alt, quote=True)
    text = re.sub(
        r"<svg\b([^>]*?)\swidth=\"[^\"]*\"\s+height=\"[^\"]*\"",
        lambda m: f'<svg{m.group(1)} role="img" aria-label="{label}"',
        text,
        count=1,
    )
    return text.strip()


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


def _render(fid: str, title: str, alt: str, caption: str, draw: Callable[[], MplFigure]) -> Figure:
    drawing = _Drawing(fid, alt, draw)
    pending = _COLLECTING.get()
    if pending is None:
        return Figure(id=fid, title=title, alt=alt, caption=caption, svg=drawing.svg())
    pending.append(drawing)
    return Figure(id=fid, title=title, alt=alt, caption=caption, svg=_PLACEHOLDER.format(len(pending) - 1))


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


# --- (a) need and cost by score percentile (Obermeyer et al. 2019, Figure 1) --------------------


def need_cost_data(
    curves: pd.DataFrame, model: str, attribute: str, targets: Sequence[str], bands: int = 20
) -> pd.DataFrame:
    """Mean of each target by band of the score's percentile, per group.

    Percentile bins (``bins == "percentile"``) are placed at the mid-rank of the whole population
    (so a score with few distinct values, binned one bin per value, lands at its true percentile)
    and merged into ``bands`` equal bands, each a mean weighted by the bins' published counts.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, group, band, percentile, mean, n``.
    """
    cols = ["target", "group", "band", "percentile", "mean", "n"]
    sub = curves[(curves["model"] == model) & (curves["attribute"] == attribute) & (curves["bins"] == "percentile")]
    sub = sub[sub["target"].isin(targets)]
    if sub.empty:
        return pd.DataFrame(columns=cols)
    first = sub[sub["target"] == sub["target"].iloc[0]]
    pooled = first.assign(_n=pd.to_numeric(first["n"], errors="coerce").fillna(0)).groupby("bin")["_n"].sum()
    total = float(pooled.sum())
    if total <= 0:
        return pd.DataFrame(columns=cols)
    mid = (pooled.cumsum() - pooled / 2) / total * 100
    out = sub.assign(
        percentile=sub["bin"].map(mid).to_numpy(dtype=np.float64),
        _n=pd.to_numeric(sub["n"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
        mean=sub["mean"].to_numpy(dtype=np.float64),
    )
    out = out[np.isfinite(out["_n"]) & np.isfinite(out["mean"]) & (out["_n"] > 0)]
    out = out.assign(band=np.minimum((out["percentile"] // (100 / bands)).astype(int), bands - 1))
    out = out.assign(_w=out["_n"] * out["mean"], _wx=out["_n"] * out["percentile"])
    agg = out.groupby(["target", "group", "band"], sort=False)[["_n", "_w", "_wx"]].sum().reset_index()
    agg["mean"] = agg["_w"] / agg["_n"]
    agg["percentile"] = agg["_wx"] / agg["_n"]
    agg["n"] = agg["_n"]
    return agg[cols].sort_values(["target", "group", "band"], kind="stable").reset_index(drop=True)


def _top_line(op: str | None) -> float | None:
    m = re.fullmatch(r"top_([\d.]+)pct", op or "")
    return 100 - float(m.group(1)) if m else None


def need_cost_by_percentile(
    curves: pd.DataFrame,
    *,
    model: str,
    attribute: str,
    groups: Sequence[str],
    reference: str | None,
    need_target: str,
    cost_target: str,
    operating_point: str | None = None,
) -> Figure | None:
    """Side-by-side panels: mean need and mean cost by percentile of the score, one line per group.

    Where the need lines of two groups part while their cost lines stay together, the score ranks
    the groups alike on cost but not on need (Obermeyer et al. 2019, Figure 1).
    """
    if len(groups) > MAX_GROUPS:
        return None
    data = need_cost_data(curves, model, attribute, [need_target, cost_target])
    if data.empty or not (data["target"] == need_target).any():
        return None
    order = _ordered(groups, reference)
    cut = _top_line(operating_point)
    fid = f"fig-curves-{_slug(model)}-{_slug(attribute)}"

    def draw() -> MplFigure:
        ncol = min(len(order), 4)
        fig, axes = _new_figure(
            ncols=2, axes_height=2.1, left=0.85, wgap=1.0, bottom=0.55 + _legend_height(len(order), ncol, True)
        )
        for ax, target, label in ((axes[0, 0], need_target, "need"), (axes[0, 1], cost_target, "cost")):
            for i, g in enumerate(order):
                d = data[(data["target"] == target) & (data["group"] == g)]
                if d.empty:
                    continue
                ax.plot(
                    d["percentile"],
                    d["mean"],
                    label=g + (" (reference)" if g == reference else ""),
                    **group_style(i),
                    markevery=1,
                )
            if cut is not None:
                ax.axvline(cut, color="#555555", linewidth=0.8, linestyle=(0, (2, 2)))
                ax.annotate(
                    describe_operating_point(str(operating_point)),
                    (cut, 1),
                    xycoords=("data", "axes fraction"),
                    ha="right",
                    va="top",
                    fontsize=7,
                    color="#333333",
                    xytext=(-2, -2),
                    textcoords="offset points",
                )
            ax.set_xlim(0, 100)
            values = data.loc[data["target"] == target, "mean"].to_numpy(dtype=np.float64)
            if values.size and np.nanmin(values) > 0:
                _log_axis(ax, "y", float(np.nanmin(values)), float(np.nanmax(values)))
            ax.set_xlabel(f"percentile of {model} score")
            ax.set_ylabel(f"mean {target} (log scale)")
            ax.set_title(f"{label.capitalize()}: {target}")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, ncol, title=attribute)
        return fig

    top = data[data["percentile"] >= (cut if cut is not None else 95) - 2.5]
    summary = []
    for target, label in ((need_target, "need"), (cost_target, "cost")):
        t = top[top["target"] == target].groupby("group")["mean"].mean()
        if len(t) >= 2:
            summary.append(
                f"among the highest scores, mean {label} ranges from {_fmt(float(t.min()))} ({t.idxmin()}) "
                f"to {_fmt(float(t.max()))} ({t.idxmax()})"
            )
    alt = (
        f"Two line charts for the {model} score by {attribute}: mean {need_target} (left) and mean {cost_target} "
        f"(right) against the percentile of the score, one line per group ({', '.join(order)}). "
        + ("; ".join(summary).capitalize() + "." if summary else "")
    )
    caption = (
        f"Need (left) and cost (right) by percentile of the {model} score, per {attribute} group: means over "
        "bands of 5 percentiles, on log scales. At the same score, a group whose need line lies above the reference "
        "group's while its cost line does not is sicker than its cost suggests."
    )
    return _render(fid, f"Need and cost by score: {model}, {attribute}", alt, caption, draw)


# --- (b) flagged share against high-need share ---------------------------------------------------


def _rows(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for col, value in where.items():
        mask &= (table[col] == value).to_numpy()
    return table[mask]


def _err(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    lo = np.where(np.isfinite(low), np.clip(values - low, 0, None), 0.0)
    hi = np.where(np.isfinite(high), np.clip(high - values, 0, None), 0.0)
    return np.vstack([lo, hi])


def headline_figure(
    table: pd.DataFrame,
    *,
    models: Sequence[str],
    operating_point: str,
    attributes: Mapping[str, tuple[Sequence[str], str | None]],
) -> Figure | None:
    """The headline's figure: each group's share of the flagged over its share of the highest need, every
    model side by side, one panel per attribute (deprivation and ethnicity in the report)."""
    sub = table[
        (table["analysis"] == "fairness")
        & (table["operating_point"] == operating_point)
        & (table["metric"] == "flagged_to_high_need_ratio")
        & table["model"].isin(list(models))
    ]
    panels = []
    for attribute, (groups, reference) in attributes.items():
        rows = sub[sub["attribute"] == attribute]
        if rows.empty or len(groups) > MAX_GROUPS:
            continue
        panels.append((attribute, _ordered(groups, reference)[::-1], rows))
    shown = [m for m in models if (sub["model"] == m).any()]
    if not panels or not shown:
        return None
    heights = [max(len(p[1]), 2) for p in panels]
    op_words = describe_operating_point(operating_point)
    step = 0.8 / max(len(shown), 1)

    def draw() -> MplFigure:
        labels_width = _width([g for p in panels for g in p[1]])
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.42,
            height_ratios=heights,
            left=0.3 + labels_width,
            hgap=0.75,
            bottom=0.5 + _legend_height(len(shown), 3),
        )
        axes = grid[:, 0]
        for ax, (attribute, groups, rows) in zip(axes, panels, strict=True):
            y = np.arange(len(groups))
            for i, model in enumerate(shown):
                f = rows[rows["model"] == model].set_index("group").reindex(groups)
                v = f["value"].to_numpy(dtype=np.float64)
                err = _err(v, f["ci_low"].to_numpy(dtype=np.float64), f["ci_high"].to_numpy(dtype=np.float64))
                style = group_style(i + 1)
                ax.errorbar(
                    v,
                    y - 0.4 + step * (i + 0.5),
                    xerr=err,
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    markersize=3.5,
                    elinewidth=0.8,
                    capsize=0,
                    label=model,
                )
            ax.axvline(1.0, color="black", linewidth=0.8)
            ax.set_yticks(y, groups)
            ax.set_xlabel("share of those flagged / share of the highest need (1 = flagged in proportion to need)")
            ax.set_title(attribute, loc="left")
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 3)
        return fig

    worst = []
    for attribute, _groups, rows in panels:
        r = rows[np.isfinite(rows["value"].to_numpy(dtype=np.float64))]
        if len(r):
            w = r.loc[r["value"].idxmin()]
            worst.append(f"{attribute}: lowest is {w['group']} under {w['model']} ({float(w['value']):.2f})")
    alt = (
        f"Dot plots, one per attribute, at {op_words}: for every model side by side, each group's share of those "
        "flagged divided by its share of the people with the highest need, with 95% intervals; 1 means flagged in "
        "proportion to need, below 1 under-served. " + ("; ".join(worst) + "." if worst else "")
    )
    caption = (
        f"Who each model under-serves at {op_words}: a group's share of those flagged over its share of the people "
        "with the highest need, every model side by side, with 95% intervals. Left of the line at 1: flagged less "
        "than its share of the highest need."
    )
    return _render(f"fig-headline-{_slug(operating_point)}", "Flagged against need, every model", alt, caption, draw)


def shares_figure(
    table: pd.DataFrame,
    *,
    model: str,
    operating_point: str,
    attributes: Mapping[str, tuple[Sequence[str], str | None]],
) -> Figure | None:
    """Per attribute, each group's share of those flagged beside its share of the highest need, with intervals."""
    panels = []
    for attribute, (groups, reference) in attributes.items():
        sub = _rows(table, model=model, analysis="fairness", attribute=attribute, operating_point=operating_point)
        fs = sub[sub["metric"] == "flagged_share"].set_index("group")
        hs = sub[sub["metric"] == "high_need_share"].set_index("group")
        if fs.empty or hs.empty or len(groups) > MAX_GROUPS:
            continue
        panels.append((attribute, _ordered(groups, reference)[::-1], fs, hs, reference))
    if not panels:
        return None
    heights = [max(len(p[1]), 2) for p in panels]
    fid = f"fig-shares-{_slug(model)}-{_slug(operating_point)}"
    op_words = describe_operating_point(operating_point)

    def draw() -> MplFigure:
        labels_width = _width([g for p in panels for g in p[1]])
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.28,
            height_ratios=heights,
            left=0.3 + labels_width,
            hgap=0.75,
            bottom=0.5 + _legend_height(2, 2),
        )
        axes = grid[:, 0]
        for ax, (attribute, groups, fs, hs, _) in zip(axes, panels, strict=True):
            y = np.arange(len(groups))
            for frame, label, style, dy in (
                (hs, "share of the highest need", {"marker": "s", "color": OKABE_ITO[4], "mfc": "white"}, 0.17),
                (fs, "share of those flagged", {"marker": "o", "color": OKABE_ITO[5]}, -0.17),
            ):
                f = frame.reindex(groups)
                v = f["value"].to_numpy(dtype=np.float64)
                err = _err(v, f["ci_low"].to_numpy(dtype=np.float64), f["ci_high"].to_numpy(dtype=np.float64))
                ax.errorbar(100 * v, y + dy, xerr=100 * err, linestyle="none", capsize=2, label=label, **style)
            ax.set_yticks(y, groups)
            ax.set_xlabel("per cent")
            ax.set_title(attribute, loc="left")
            ax.set_xlim(left=0)
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 2)
        return fig

    gaps = []
    for attribute, groups, fs, hs, reference in panels:
        ratio = (fs["value"] / hs["value"]).reindex(groups).drop(reference, errors="ignore")
        ratio = ratio[np.isfinite(ratio.to_numpy(dtype=np.float64))]
        if len(ratio):
            g = str(ratio.idxmin())
            gaps.append(
                f"{attribute}: {g} is {100 * float(hs['value'][g]):.1f}% of the highest need and "
                f"{100 * float(fs['value'][g]):.1f}% of those flagged"
            )
    alt = (
        f"Dot plots, one per attribute, for {model} at {op_words}: each group's share of those flagged (filled "
        "circles) beside its share of the people with the highest need (open squares), with 95% intervals. "
        + ("Largest shortfall by attribute — " + "; ".join(gaps) + "." if gaps else "")
    )
    caption = (
        f"Who is flagged and who has the highest need, at {op_words} of the {model} score. A filled circle to the "
        "left of its open square means the group is under-represented among those flagged, relative to its need."
    )
    return _render(fid, f"Flagged and high-need shares: {model}", alt, caption, draw)


# --- (c) label gap at equal score ----------------------------------------------------------------


def label_gap_figure(
    table: pd.DataFrame,
    *,
    model: str,
    need_targets: Sequence[str],
    attributes: Mapping[str, tuple[Sequence[str], str | None]],
    flag_at: float = 1.1,
) -> Figure | None:
    """Forest plot of the label gap at equal score (need ratio over cost ratio), per group, with intervals."""
    sub = _rows(table, model=model, analysis="calibration", metric="label_gap_at_equal_score")
    sub = sub[sub["target"].isin(need_targets)]
    rows = []
    for attribute, (groups, reference) in attributes.items():
        for g in groups:
            if g == reference:
                continue
            rows.append((attribute, g))
    if sub.empty or not rows:
        return None
    keyed = sub.set_index(["attribute", "group", "target"])
    labels = [f"{a}: {g}" for a, g in rows]
    fid = f"fig-label-gap-{_slug(model)}"
    targets = [t for t in need_targets if t in set(sub["target"])]

    def draw() -> MplFigure:
        fig, axes = _new_figure(
            axes_height=0.22 * len(rows) + 0.2,
            left=0.25 + _width(labels),
            top=0.15,
            bottom=0.55 + (_legend_height(len(targets), len(targets)) if len(targets) > 1 else 0.0),
        )
        ax = axes[0, 0]
        y = np.arange(len(rows))[::-1].astype(float)
        for j, target in enumerate(targets):
            idx = pd.MultiIndex.from_tuples([(a, g, target) for a, g in rows])
            f = keyed.reindex(idx)
            v = f["value"].to_numpy(dtype=np.float64)
            lo, hi = f["ci_low"].to_numpy(dtype=np.float64), f["ci_high"].to_numpy(dtype=np.float64)
            dy = (j - (len(targets) - 1) / 2) * 0.25
            style = group_style(j + 4)
            ax.errorbar(
                v,
                y + dy,
                xerr=_err(v, lo, hi),
                linestyle="none",
                capsize=2,
                color=style["color"],
                marker=style["marker"],
                label=f"need = {target}",
            )
        ax.axvline(1.0, color="black", linewidth=0.9)
        ax.axvline(flag_at, color="#555555", linewidth=0.8, linestyle=(0, (3, 2)))
        ax.set_yticks(y, labels)
        finite = keyed[["value", "ci_low", "ci_high"]].to_numpy(dtype=np.float64)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        low = min(float(finite.min()) if finite.size else 0.9, 0.9)
        high = max(float(finite.max()) if finite.size else 1.2, flag_at * 1.05)
        _log_axis(ax, "x", low, high)
        ax.set_xlabel("label gap at equal score (need ratio / cost ratio; 1 = no gap; log scale)")
        if len(targets) > 1:
            handles, names = ax.get_legend_handles_labels()
            _bottom_legend(fig, handles, names, len(targets))
        return fig

    primary = sub[sub["target"] == targets[0]].set_index(["attribute", "group"])["value"]
    primary = primary.reindex(pd.MultiIndex.from_tuples(rows)).dropna()
    extreme = ""
    if len(primary):
        attribute, group = (str(k) for k in cast(tuple, primary.idxmax()))
        extreme = f" The largest gap is for {attribute} {group} ({_fmt(float(primary.max()))})."
    alt = (
        f"Forest plot for {model}: the label gap at equal score for each group against its reference group, "
        f"with 95% intervals, on a log scale with a line at 1 (no gap) and a dashed line at {flag_at:g} (the flag "
        f"threshold).{extreme}"
    )
    caption = (
        "Label gap = need ratio at equal score / cost ratio at equal score, each by direct standardisation "
        "against the reference group. Above 1: at the same score the group is sicker, relative to the reference, "
        "than its cost shows, so a cost label under-states its need."
    )
    return _render(fid, f"Label gap at equal score: {model}", alt, caption, draw)


# --- (d) reliability diagram ---------------------------------------------------------------------


def reliability_figure(
    curves: pd.DataFrame, *, model: str, attributes: Mapping[str, tuple[Sequence[str], str | None]]
) -> Figure | None:
    """Observed against predicted mean by bin of prediction, per group, one panel per attribute."""
    sub = _rows(curves, model=model, bins="reliability")
    if sub.empty:
        return None
    predicted = sorted(t for t in sub["target"].unique() if str(t).startswith("predicted "))
    if not predicted:
        return None
    target = predicted[0].removeprefix("predicted ")
    panels = [(a, gr) for a, gr in attributes.items() if len(gr[0]) <= MAX_GROUPS and a in set(sub["attribute"])]
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fid = f"fig-reliability-{_slug(model)}"

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=nrows, ncols=ncols, axes_height=1.9, hgap=0.8)
        for k, ax in enumerate(axes.ravel()):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            attribute, (groups, reference) = panels[k]
            lims = [np.inf, -np.inf]
            for i, g in enumerate(_ordered(groups, reference)):
                obs = _rows(sub, attribute=attribute, group=g, target=target).set_index("bin")["mean"]
                pred = _rows(sub, attribute=attribute, group=g, target=f"predicted {target}").set_index("bin")["mean"]
                both = pd.concat([pred.rename("p"), obs.rename("o")], axis=1).dropna()
                if both.empty:
                    continue
                ax.plot(both["p"], both["o"], label=g, **group_style(i))
                lims = [min(lims[0], both.min().min()), max(lims[1], both.max().max())]
            if np.isfinite(lims[0]):
                ax.plot(lims, lims, color="#888888", linewidth=0.8, linestyle=(0, (1, 1)))
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("predicted (mean in bin)")
            ax.set_ylabel("observed (mean in bin)")
            ax.legend(frameon=False, fontsize=6.5)
        return fig

    alt = (
        f"Reliability diagrams for {model}: observed {target} against predicted {target} by bin of prediction, "
        f"one line per group, one panel per attribute ({', '.join(a for a, _ in panels)}); the dotted diagonal "
        "is perfect calibration."
    )
    caption = (
        f"Calibration of {model} on its own scale ({target}), per group. Points below the diagonal: the model "
        "over-predicts for that group; above: it under-predicts."
    )
    return _render(fid, f"Reliability: {model}", alt, caption, draw)


# --- (e) thresholds, net benefit, explanations, judgement, label choice --------------------------


def _fraction(op: pd.Series) -> np.ndarray:
    found = pd.to_numeric(op.str.extract(r"^top_([\d.]+)pct$")[0], errors="coerce")
    return found.to_numpy(dtype=np.float64, na_value=np.nan)


def thresholds_figure(
    table: pd.DataFrame, *, model: str, attributes: Mapping[str, tuple[Sequence[str], str | None]]
) -> Figure | None:
    """Selection rate and unmet-need rate against capacity (share of the population flagged), per group."""
    sub = _rows(table, model=model, analysis="thresholds")
    sub = sub[sub["metric"].isin(["selection_rate", "unmet_need_rate"])]
    panels = [(a, gr) for a, gr in attributes.items() if len(gr[0]) <= MAX_GROUPS and a in set(sub["attribute"])]
    if sub.empty or not panels:
        return None
    sub = sub.assign(_x=_fraction(sub["operating_point"]))
    fid = f"fig-thresholds-{_slug(model)}"

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=len(panels), ncols=2, axes_height=1.5, hgap=0.45, sharex=True)
        for r, (attribute, (groups, reference)) in enumerate(panels):
            for c, metric in enumerate(("selection_rate", "unmet_need_rate")):
                ax = axes[r, c]
                for i, g in enumerate(_ordered(groups, reference)):
                    d = sub[(sub["attribute"] == attribute) & (sub["group"] == g) & (sub["metric"] == metric)]
                    d = d.sort_values("_x")
                    if d.empty:
                        continue
                    ax.plot(d["_x"], 100 * d["value"], label=g, **group_style(i), markevery=max(1, len(d) // 8))
                ax.set_ylabel(("selected" if metric == "selection_rate" else "high need not flagged") + " (%)")
                ax.set_title(f"{attribute}: " + ("selection rate" if c == 0 else "unmet need"), loc="left")
                if r == len(panels) - 1:
                    ax.set_xlabel("capacity (% of the population flagged)")
            # the legend of each attribute's groups goes on the right panel, or the left if that alone has lines
            drawn = [a for a in axes[r] if a.get_legend_handles_labels()[0]]
            if drawn:
                drawn[-1].legend(frameon=False, fontsize=6.5)
        return fig

    alt = (
        f"Line charts for {model}: for each attribute ({', '.join(a for a, _ in panels)}), the share of each group "
        "selected (left) and the share of each group's high-need members left unflagged (right), as capacity "
        "rises from the smallest to the largest share of the population swept."
    )
    caption = (
        f"The threshold sweep of {model}: how selection and unmet need change with capacity, per group. Lines "
        "that stay apart at every capacity show a gap that a larger service does not close."
    )
    return _render(fid, f"Thresholds and capacity: {model}", alt, caption, draw)


def _pt(op: pd.Series) -> np.ndarray:
    found = pd.to_numeric(op.str.extract(r"^pt_([\d.]+)$")[0], errors="coerce")
    return found.to_numpy(dtype=np.float64, na_value=np.nan)


def net_benefit_figure(
    table: pd.DataFrame, *, model: str, attributes: Mapping[str, tuple[Sequence[str], str | None]]
) -> Figure | None:
    """Decision curves: net benefit against threshold probability overall, and per group relative to treat-all."""
    sub = _rows(table, model=model, analysis="net_benefit")
    if sub.empty:
        return None
    sub = sub.assign(_x=_pt(sub["operating_point"]))
    overall = sub[sub["group"] == "all"]
    first_attr = str(sub["attribute"].iloc[0])
    overall = overall[overall["attribute"] == first_attr]
    panels = [(a, gr) for a, gr in attributes.items() if len(gr[0]) <= MAX_GROUPS and a in set(sub["attribute"])]
    n_axes = 1 + len(panels)
    ncols = min(3, n_axes)
    nrows = math.ceil(n_axes / ncols)
    target = str(sub["target"].iloc[0])
    fid = f"fig-net-benefit-{_slug(model)}"
    # each group's net benefit over the better of treating everyone in it and treating no one
    keys = ["attribute", "group", "operating_point"]
    nb = sub[sub["metric"] == "net_benefit"].drop_duplicates(keys).set_index(keys)
    ta = sub[sub["metric"] == "net_benefit_treat_all"].drop_duplicates(keys).set_index(keys)
    gain = nb[["_x"]].copy()
    gain["gain"] = nb["value"] - np.maximum(ta["value"].reindex(nb.index), 0.0)
    gain = gain.reset_index()

    def draw() -> MplFigure:
        fig, axes = _new_figure(nrows=nrows, ncols=ncols, axes_height=1.9, hgap=0.8, left=0.8, wgap=0.95)
        flat = axes.ravel()
        ax = flat[0]
        for k, (metric, label) in enumerate((("net_benefit", model), ("net_benefit_treat_all", "treat all"))):
            d = overall[overall["metric"] == metric].sort_values("_x")
            ax.plot(d["_x"], d["value"], label=label, **group_style(k + (0 if k == 0 else 4)), markevery=5)
        ax.axhline(0, color="#888888", linewidth=0.8, linestyle=(0, (1, 1)), label="treat none")
        ax.set_title("everyone", loc="left")
        ax.set_xlabel("threshold probability")
        ax.set_ylabel("net benefit")
        ax.legend(frameon=False, fontsize=6.5)
        vals = overall[overall["metric"] == "net_benefit"]["value"].to_numpy(dtype=np.float64)
        if np.isfinite(vals).any():
            top = np.nanmax(vals)
            ax.set_ylim(min(-0.25 * abs(top), -0.005), 1.15 * abs(top) + 1e-6)
        for k, (attribute, (groups, reference)) in enumerate(panels, start=1):
            ax = flat[k]
            for i, g in enumerate(_ordered(groups, reference)):
                d = gain[(gain["attribute"] == attribute) & (gain["group"] == g)].sort_values("_x")
                if d.empty:
                    continue
                ax.plot(d["_x"], d["gain"], label=g, **group_style(i), markevery=5)
            ax.axhline(0, color="#888888", linewidth=0.8)
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("threshold probability")
            ax.set_ylabel("net benefit over the best default")
            ax.legend(frameon=False, fontsize=6.5)
        for ax in flat[n_axes:]:
            ax.set_visible(False)
        return fig

    alt = (
        f"Decision curves for {model} predicting {target}: net benefit against threshold probability for everyone "
        "(with treat-all and treat-none), then, per attribute, each group's net benefit over the better of treating "
        "everyone in the group and treating no one; above 0 the model helps that group."
    )
    caption = (
        f"Net benefit of acting on {model} (Vickers & Elkin 2006): NB = TP/N - FP/N x pt/(1 - pt). Per group, the "
        "curves show the model's net benefit minus the better of treat-all and treat-none for that group: a group "
        "whose curve sits at or below 0 gains nothing from the model at that threshold."
    )
    return _render(fid, f"Net benefit: {model}", alt, caption, draw)


def explain_figure(table: pd.DataFrame, *, model: str, top: int = 12) -> Figure | None:
    """Mean |SHAP| per feature and, where present, each feature's contribution to the group gaps."""
    sub = _rows(table, model=model, analysis="explain")
    if sub.empty:
        return None
    imp = sub[sub["metric"] == "mean_abs_shap"]
    if len(imp) and (imp["group"] == "all").any():
        imp = imp[imp["group"] == "all"]
    elif len(imp):
        imp = imp[imp["group"] == imp["group"].iloc[0]]
    imp = imp.drop_duplicates("feature").dropna(subset=["value"]).sort_values("value", ascending=False).head(top)
    gap = sub[(sub["metric"] == "gap_contribution") & (sub["group"] != "all")].dropna(subset=["value"])
    if imp.empty and gap.empty:
        return None
    gap_feats: list[str] = []
    if len(gap):
        strength = gap.assign(_a=gap["value"].abs()).groupby("feature")["_a"].max().sort_values(ascending=False)
        gap_feats = [str(f) for f in strength.index[:top]]
        gap = gap[gap["feature"].isin(gap_feats)]
        pairs = list(dict.fromkeys(zip(gap["attribute"], gap["group"], strict=True)))[:MAX_GROUPS]
    else:
        pairs = []
    n_axes = int(not imp.empty) + int(bool(pairs))
    fid = f"fig-explain-{_slug(model)}"

    def draw() -> MplFigure:
        rows_n = max(len(imp), len(gap_feats), 2)
        imp_width = _width(list(imp["feature"].astype(str))) if not imp.empty else 0.0
        gap_width = _width(gap_feats) if pairs else 0.0
        fig, axes = _new_figure(
            ncols=n_axes,
            axes_height=0.22 * rows_n + 0.2,
            left=0.25 + (imp_width or gap_width),
            wgap=0.35 + gap_width,
            bottom=0.55 + (_legend_height(len(pairs), 4) if pairs else 0.0),
        )
        k = 0
        if not imp.empty:
            ax = axes[0, k]
            y = np.arange(len(imp))[::-1]
            v = imp["value"].to_numpy(dtype=np.float64)
            err = _err(v, imp["ci_low"].to_numpy(dtype=np.float64), imp["ci_high"].to_numpy(dtype=np.float64))
            ax.barh(y, v, color=OKABE_ITO[4], hatch="//", edgecolor="white", xerr=err, capsize=2)
            ax.set_yticks(y, imp["feature"].astype(str))
            ax.set_xlabel("mean |SHAP value|")
            ax.set_title("what drives the score", loc="left")
            k += 1
        if pairs:
            ax = axes[0, k]
            y = np.arange(len(gap_feats))[::-1]
            pos = dict(zip(gap_feats, y, strict=True))
            for i, (attribute, g) in enumerate(pairs):
                d = gap[(gap["attribute"] == attribute) & (gap["group"] == g)]
                style = group_style(i + 1)
                ax.plot(
                    d["value"],
                    [pos[f] for f in d["feature"]],
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    label=f"{attribute}: {g}",
                )
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(y, gap_feats)
            ax.set_xlabel("contribution to the score gap")
            ax.set_title("what makes the groups differ", loc="left")
            handles, names = ax.get_legend_handles_labels()
            _bottom_legend(fig, handles, names, 4)
        return fig

    names = ", ".join(imp["feature"].astype(str).head(3)) if len(imp) else ""
    alt = (
        f"Explanations of {model}: "
        + (f"a bar chart of mean absolute SHAP value per feature (largest: {names})" if names else "")
        + ("; " if names and pairs else "")
        + ("a dot plot of each feature's contribution to the score gap between groups" if pairs else "")
        + "."
    )
    caption = (
        f"Which inputs drive the {model} score, and which of them carry the difference between groups: a feature "
        "that contributes much to a group's gap may stand in for the protected attribute."
    )
    return _render(fid, f"Explanations: {model}", alt, caption, draw)


def judgement_figure(table: pd.DataFrame) -> Figure | None:
    """Share of all need against share of all cost held by those each model flags, with intervals."""
    sub = table[(table["analysis"] == "judgement") & (table["group"] == "all")]
    need = sub[sub["metric"] == "share_of_need_captured"].drop_duplicates("model").set_index("model")
    cost = sub[sub["metric"] == "share_of_cost_captured"].drop_duplicates("model").set_index("model")
    models = [m for m in need.index if m in cost.index]
    if len(models) < 2:
        return None
    op = str(sub["operating_point"].iloc[0])

    def draw() -> MplFigure:
        fig, axes = _new_figure(axes_height=3.0, right=0.6 + _width(models), top=0.15, bottom=0.55)
        ax = axes[0, 0]
        for i, m in enumerate(models):
            x, y = float(need.loc[m, "value"]), float(cost.loc[m, "value"])
            xe = _err(
                np.array([x]),
                np.array([need.loc[m, "ci_low"]], dtype=float),
                np.array([need.loc[m, "ci_high"]], dtype=float),
            )
            ye = _err(
                np.array([y]),
                np.array([cost.loc[m, "ci_low"]], dtype=float),
                np.array([cost.loc[m, "ci_high"]], dtype=float),
            )
            style = group_style(i)
            ax.errorbar(
                100 * x,
                100 * y,
                xerr=100 * xe,
                yerr=100 * ye,
                marker=style["marker"],
                color=style["color"],
                linestyle="none",
                capsize=2,
                label=m,
            )
        ax.set_xlabel("share of all need held by those flagged (%)")
        ax.set_ylabel("share of all cost held by those flagged (%)")
        handles, names = ax.get_legend_handles_labels()
        fig.legend(handles, names, loc="center right", frameon=False)
        return fig

    captured = need["value"].astype(float)
    best = max(models, key=lambda m: float(captured[m]))
    alt = (
        f"Scatter plot at {describe_operating_point(op)}: for each of {len(models)} models, the share of all need "
        f"(x) and of all cost (y) held by the people it flags, with 95% intervals. {best} captures the most need "
        f"({100 * float(captured[best]):.1f}%)."
    )
    caption = (
        f"Actuarial, clinical and judgement-based scores on one footing, at {describe_operating_point(op)}: a "
        "score built for cost sits high on the vertical axis; one built for need sits far to the right."
    )
    return _render("fig-judgement", "Need and cost captured by each model", alt, caption, draw)


def label_choice_figure(
    table: pd.DataFrame, *, attributes: Mapping[str, tuple[Sequence[str], str | None]]
) -> Figure | None:
    """Each group's share of those flagged when the same learner is trained on each label."""
    sub = table[(table["analysis"] == "label_choice") & (table["metric"] == "flagged_share")]
    if sub.empty:
        return None
    models = list(dict.fromkeys(sub["model"]))[:MAX_GROUPS]
    panels = [(a, gr) for a, gr in attributes.items() if len(gr[0]) <= MAX_GROUPS and a in set(sub["attribute"])]
    if not panels:
        return None
    heights = [max(len(gr[0]), 2) for _, gr in panels]
    op = str(sub["operating_point"].iloc[0])

    def draw() -> MplFigure:
        fig, grid = _new_figure(
            nrows=len(panels),
            axes_height=0.3,
            height_ratios=heights,
            left=0.3 + _width([g for _, gr in panels for g in gr[0]]),
            hgap=0.75,
            bottom=0.5 + _legend_height(len(models), 2),
        )
        axes = grid[:, 0]
        for ax, (attribute, (groups, reference)) in zip(axes, panels, strict=True):
            order = _ordered(groups, reference)[::-1]
            y = np.arange(len(order))
            for i, m in enumerate(models):
                d = sub[(sub["attribute"] == attribute) & (sub["model"] == m)].set_index("group").reindex(order)
                v = d["value"].to_numpy(dtype=np.float64)
                err = _err(v, d["ci_low"].to_numpy(dtype=np.float64), d["ci_high"].to_numpy(dtype=np.float64))
                dy = (i - (len(models) - 1) / 2) * (0.7 / max(len(models), 1))
                style = group_style(i)
                ax.errorbar(
                    100 * v,
                    y + dy,
                    xerr=100 * err,
                    linestyle="none",
                    marker=style["marker"],
                    color=style["color"],
                    capsize=1.5,
                    label=m,
                )
            ax.set_yticks(y, order)
            ax.set_title(attribute, loc="left")
            ax.set_xlabel("share of those flagged (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        _bottom_legend(fig, handles, labels, 2)
        return fig

    alt = (
        f"Dot plots at {describe_operating_point(op)}: for each attribute, each group's share of those flagged when "
        f"the same learner is trained on each label ({', '.join(models)}), with 95% intervals."
    )
    caption = (
        "Label choice (Obermeyer et al. 2019, Table 2): the same learner retrained on each candidate label. "
        "Where a group's share moves with the label, the choice of label, not the learner, decides who is flagged."
    )
    return _render("fig-label-choice", "Who is flagged under each label", alt, caption, draw)
