"""SVG post-processing of the report's figures: lean markup, ids unique to the page, alt text.

matplotlib writes SVG for a standalone file; a report puts dozens of figures inline in one HTML page.
:func:`finish_svg` turns the one into the other without changing what is drawn: no XML prolog,
doctype, metadata or comments; coordinates to 0.1 pt (0.035 mm); path data, styles and the space
between tags written compactly; no ids nobody refers to; the font family and line-join defaults set
once for the page (:data:`SVG_PAGE_CSS`) rather than on every element; each remaining id renamed to a
short one unique to its figure; and the alt text on the ``<svg>`` element as ``aria-label``.

Text in, text out: this module draws nothing and imports no plotting library.
"""

from __future__ import annotations

import hashlib
import html
import re

__all__ = ["SVG_FONT_FAMILY", "SVG_PAGE_CSS", "finish_svg", "lean_svg", "short_ids", "standalone_svg"]

#: The font family matplotlib measured the text with, then common fallbacks.
SVG_FONT_FAMILY = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, Geneva, Arial, Helvetica, sans-serif"
#: What every figure's SVG leaves to the page: its text's font family and the default line joins
#: (matplotlib writes both on each element, or in a ``<style>`` that would apply to the whole page).
SVG_PAGE_CSS = (
    "figure svg * { stroke-linejoin: round; stroke-linecap: butt; }\n"
    f"figure svg text {{ font-family: {SVG_FONT_FAMILY}; }}"
)

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


def short_ids(text: str, fid: str) -> str:
    """Rename every id of a figure to a short one unique to the page: ``f`` and 8 hexadecimal digits of a
    hash of the figure's id (its HTML anchor), then a counter.

    Parameters
    ----------
    text : str
        SVG markup of one figure.
    fid : str
        The figure's id.

    Returns
    -------
    str

    Examples
    --------
    >>> short_ids('<clipPath id="p1a"/><g clip-path="url(#p1a)"/>', "fig-x")
    '<clipPath id="fe42fd0940"/><g clip-path="url(#fe42fd0940)"/>'
    """
    prefix = "f" + hashlib.sha1(fid.encode("utf-8")).hexdigest()[:8]
    names = {old: f"{prefix}{i:x}" for i, old in enumerate(dict.fromkeys(re.findall(r'\bid="([^"]+)"', text)))}

    def sub(match: re.Match[str]) -> str:
        name = names.get(match.group(2))
        return match.group(0) if name is None else match.group(1) + name

    return re.sub(r'(\bid="|url\(#|href="#)([^")]+)', sub, text)


def finish_svg(text: str, fid: str, alt: str) -> str:
    """matplotlib's SVG of one figure made fit to sit inline in a page of many figures.

    Parameters
    ----------
    text : str
        What matplotlib's ``savefig(format="svg")`` wrote (with ``svg.fonttype = "none"``).
    fid : str
        The figure's id: its ids are renamed to short ones made from it (:func:`short_ids`).
    alt : str
        Alt text, set as the ``aria-label`` of the ``<svg>`` element (``role="img"``).

    Returns
    -------
    str
        Lean inline SVG (:func:`lean_svg`), without prolog, doctype, metadata, comments, namespaces
        or a fixed width and height (the page sizes it).
    """
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)  # the HTML parser puts inline SVG in its namespace
    text = short_ids(lean_svg(text), fid)
    label = html.escape(alt, quote=True)
    text = re.sub(
        r"<svg\b([^>]*?)\swidth=\"[^\"]*\"\s+height=\"[^\"]*\"",
        lambda m: f'<svg{m.group(1)} role="img" aria-label="{label}"',
        text,
        count=1,
    )
    return text.strip()


def standalone_svg(text: str) -> str:
    """A figure's inline SVG (:func:`finish_svg`) as a file of its own: the XML prolog, the SVG namespaces
    and the styles the page gave it (:data:`SVG_PAGE_CSS`) put back; what is drawn is unchanged.

    Examples
    --------
    >>> standalone_svg('<svg viewBox="0 0 1 1" role="img"><path d="M0 0"/></svg>').splitlines()[1][:40]
    '<svg xmlns="http://www.w3.org/2000/svg" '
    """
    names = ' xmlns="http://www.w3.org/2000/svg"'
    if "xlink:" in text:
        names += ' xmlns:xlink="http://www.w3.org/1999/xlink"'
    style = SVG_PAGE_CSS.replace("figure svg ", "")
    body = re.sub(r"<svg\b([^>]*)>", lambda m: f"<svg{names}{m.group(1)}><style>{style}</style>", text, count=1)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
