"""The teaching page: one self-contained HTML file (inline CSS, script and SVG; no network).

The precomputed grid is embedded as JSON; the script only looks values up and draws them. Colours
are the Okabe–Ito palette (safe for the common colour-vision deficiencies); every figure has a text
alternative and a table with the same numbers; the sliders are native ``<input type=range>``
elements, operable with the keyboard, with labels and ``aria-valuetext``.
"""

from __future__ import annotations

import html
import json
from typing import Any

from phm_audit._version import __version__
from phm_audit.teach._text import OBERMEYER, Grid, count, exercises, gap_words, steps

__all__ = ["render_page"]

_CSS = r"""
:root { --flagged: #0072B2; --need: #E69F00; --gap: #D55E00; --ink: #1a1a1a; --muted: #555; --rule: #ccc; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; }
header, main, footer { max-width: 980px; margin: 0 auto; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin: 1.2rem 0 0.3rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-top: 1px solid var(--rule); padding-top: 1rem; }
h3 { font-size: 1.1rem; margin-bottom: 0.3rem; }
.lede { color: var(--muted); }
.controls { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 2px solid var(--rule);
  padding: 0.6rem 0; display: grid; grid-template-columns: repeat(3, 1fr); gap: 0.8rem; }
.control label { display: block; font-weight: 600; }
.control output { display: block; color: var(--muted); min-height: 1.5em; }
input[type=range] { width: 100%; }
input[type=range]:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid var(--gap);
  outline-offset: 2px; }
.summary { background: #f4f4f4; border-left: 4px solid var(--flagged); padding: 0.6rem 0.8rem; margin: 1rem 0; }
figure { margin: 1rem 0; }
figcaption { color: var(--muted); font-size: 0.95rem; }
svg { width: 100%; height: auto; font-family: inherit; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; margin: 0.5rem 0 1rem; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.ci { color: var(--muted); font-size: 0.9em; }
.key { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: -0.1em; margin-right: 0.3em; }
.key.flagged { background: var(--flagged); }
.key.need { background: repeating-linear-gradient(45deg, var(--need), var(--need) 3px, #b87d00 3px, #b87d00 4px); }
.step { border: 1px solid var(--rule); border-radius: 6px; padding: 0.4rem 1rem 0.8rem; margin: 1rem 0; }
.step button { font: inherit; padding: 0.3rem 0.8rem; border: 2px solid var(--flagged); background: #fff;
  color: var(--flagged); border-radius: 4px; cursor: pointer; }
.step button:hover { background: #eaf3fa; }
.sources { font-size: 0.9rem; color: var(--muted); }
details { border: 1px solid var(--rule); border-radius: 4px; padding: 0.3rem 0.8rem; margin: 0.5rem 0 1rem; }
summary { cursor: pointer; font-weight: 600; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
footer { color: var(--muted); font-size: 0.9rem; margin: 2rem auto; }
@media (max-width: 700px) { .controls { grid-template-columns: 1fr; position: static; } }
@media print {
  .controls { position: static; border: 0; }
  .step button, noscript { display: none; }
  body { font-size: 11pt; }
  h2 { break-before: auto; }
  figure, table, .step { break-inside: avoid; }
  details { border: 0; padding: 0; }
  a { color: inherit; }
}
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("teach-data").textContent);
  var S = { g: 0, c: 0, l: 0 };
  var LABEL_WORDS = {
    cost_next: "total cost next year", avoidable_cost_next: "avoidable cost next year",
    n_conditions_next: "recorded long-term conditions next year",
    emergency_admission_next: "an emergency admission next year"
  };
  var ATTR_WORDS = { imd_quintile: "Deprivation (IMD quintile; 1 = most deprived)", ethnicity: "Ethnicity" };
  function fixed(x, d) { return x.toFixed(d); }
  function pct(x) { return x === null ? "n/a" : fixed(x * 100, 1) + "%"; }
  function ratio(x) { return x === null ? "n/a" : fixed(x, 2); }
  function count(n) { return n === null ? "*" : String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function gapWords(g) { return fixed(g * 100, 0) + "%"; }
  function capWords(s) { var t = fixed(s * 100, 1); return (t.slice(-2) === ".0" ? t.slice(0, -2) : t) + "%"; }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) {
    return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function interval(e) {
    if (e.value === null) { return "not available (" + (e.reason || "undefined") + ")"; }
    return ratio(e.value) + " (95% interval " + ratio(e.lo) + " to " + ratio(e.hi) + "; n = " + count(e.n) + ")";
  }
  function groupName(attr, g) { return attr === "imd_quintile" ? "Quintile " + g : g; }
  function point() { return D.points[S.g]; }
  function model() { return D.labels[S.l]; }
  function sw(m, attr, key, i) { var v = point().sweep[m][attr][key][i]; return Array.isArray(v) ? v[S.c] : v; }
  function missing(m, attr, key, i) {
    var why = point().sweep[m][attr][key + "_why"];
    var r = why ? point().reasons[why[i][S.c]] : "";
    return "n/a" + (r ? " (" + r + ")" : "");
  }
  function setText(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }

  function drawShares() {
    var m = model(), rows = [], y = 30, W = 640, x0 = 150, x1 = 600, vmax = 0.1;
    D.attributes.forEach(function (attr) {
      D.groups[attr].forEach(function (g, i) {
        [sw(m, attr, "fs_hi", i), sw(m, attr, "hn_hi", i), sw(m, attr, "fs", i), sw(m, attr, "hn", i)].forEach(
          function (v) { if (v !== null && v > vmax) { vmax = v; } });
      });
    });
    vmax = Math.min(1, Math.ceil(vmax * 10) / 10);
    function X(v) { return x0 + (x1 - x0) * v / vmax; }
    var parts = [];
    for (var t = 0; t <= vmax + 1e-9; t += 0.1) {
      parts.push('<line x1="' + X(t) + '" x2="' + X(t) + '" y1="20" y2="HEIGHT" stroke="#ddd"/>');
      parts.push('<text x="' + X(t) + '" y="14" text-anchor="middle" font-size="11" fill="#555">' +
        Math.round(t * 100) + '%</text>');
    }
    D.attributes.forEach(function (attr) {
      parts.push('<text x="0" y="' + (y + 12) + '" font-weight="600" font-size="13">' + esc(ATTR_WORDS[attr]) +
        '</text>');
      y += 20;
      D.groups[attr].forEach(function (g, i) {
        var fs = sw(m, attr, "fs", i), lo = sw(m, attr, "fs_lo", i), hi = sw(m, attr, "fs_hi", i);
        var hn = sw(m, attr, "hn", i);
        parts.push('<text x="' + (x0 - 8) + '" y="' + (y + 14) + '" text-anchor="end" font-size="12">' +
          esc(groupName(attr, g)) + '</text>');
        if (fs !== null) {
          parts.push('<rect x="' + x0 + '" y="' + y + '" width="' + (X(fs) - x0) + '" height="10" fill="#0072B2"/>');
          parts.push('<text x="' + (X(Math.max(fs, hi === null ? fs : hi)) + 4) + '" y="' + (y + 9) +
            '" font-size="10" fill="#0072B2">' + pct(fs) + '</text>');
        } else {
          parts.push('<text x="' + (x0 + 2) + '" y="' + (y + 9) + '" font-size="10">suppressed</text>');
        }
        if (lo !== null && hi !== null) {
          parts.push('<line x1="' + X(lo) + '" x2="' + X(hi) + '" y1="' + (y + 5) + '" y2="' + (y + 5) +
            '" stroke="#000" stroke-width="1.5"/>');
        }
        if (hn !== null) {
          parts.push('<rect x="' + x0 + '" y="' + (y + 11) + '" width="' + (X(hn) - x0) +
            '" height="10" fill="url(#need-hatch)"/>');
          parts.push('<text x="' + (X(hn) + 4) + '" y="' + (y + 20) + '" font-size="10" fill="#8a5d00">' + pct(hn) +
            '</text>');
        }
        y += 28;
      });
      y += 8;
    });
    var H = y + 4;
    var svg = document.getElementById("shares-svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var defs = '<defs><pattern id="need-hatch" width="4" height="4" patternUnits="userSpaceOnUse" ' +
      'patternTransform="rotate(45)"><rect width="4" height="4" fill="#E69F00"/>' +
      '<rect width="1" height="4" fill="#b87d00"/></pattern></defs>';
    var title = '<title id="shares-title">Share of the flagged against share of the highest need, by group</title>';
    var desc = '<desc id="shares-desc">' + esc(sharesDescription()) + '</desc>';
    svg.innerHTML = title + desc + defs + parts.join("").replace(/HEIGHT/g, String(H - 4));
  }

  function sharesDescription() {
    var m = model(), out = [];
    D.attributes.forEach(function (attr) {
      D.groups[attr].forEach(function (g, i) {
        out.push(groupName(attr, g) + ": " + pct(sw(m, attr, "fs", i)) + " of the flagged, " +
          pct(sw(m, attr, "hn", i)) + " of the highest need");
      });
    });
    return "Model trained on " + LABEL_WORDS[m] + ", access gap " + gapWords(D.gaps[S.g]) + ", capacity top " +
      capWords(D.capacities[S.c]) + ". " + out.join("; ") + ".";
  }

  function drawLabelGap() {
    var m = model(), lg = point().label_gap[m], rows = [], lo = 0.8, hi = 1.3;
    D.attributes.forEach(function (attr) {
      D.groups[attr].forEach(function (g, i) {
        var e = lg[attr][i];
        if (e.lo !== null && e.hi !== null && !(e.lo === 1 && e.hi === 1)) {
          rows.push([attr, g, e]); lo = Math.min(lo, e.lo); hi = Math.max(hi, e.hi);
        }
      });
    });
    lo = Math.floor(lo * 10) / 10; hi = Math.ceil(hi * 10) / 10;
    var W = 640, x0 = 150, x1 = 600, H = 30 + rows.length * 22 + 10;
    function X(v) { return x0 + (x1 - x0) * (v - lo) / (hi - lo); }
    var parts = [];
    for (var t = lo; t <= hi + 1e-9; t += 0.1) {
      parts.push('<line x1="' + X(t) + '" x2="' + X(t) + '" y1="20" y2="' + (H - 6) + '" stroke="#eee"/>');
      parts.push('<text x="' + X(t) + '" y="14" text-anchor="middle" font-size="11" fill="#555">' + fixed(t, 1) +
        '</text>');
    }
    parts.push('<line x1="' + X(1) + '" x2="' + X(1) + '" y1="20" y2="' + (H - 6) +
      '" stroke="#000" stroke-dasharray="4 3"/>');
    rows.forEach(function (r, k) {
      var y = 34 + k * 22, e = r[2];
      parts.push('<text x="' + (x0 - 8) + '" y="' + (y + 4) + '" text-anchor="end" font-size="12">' +
        esc(groupName(r[0], r[1])) + '</text>');
      parts.push('<line x1="' + X(e.lo) + '" x2="' + X(e.hi) + '" y1="' + y + '" y2="' + y +
        '" stroke="#D55E00" stroke-width="2"/>');
      if (e.value !== null) {
        parts.push('<circle cx="' + X(e.value) + '" cy="' + y + '" r="4.5" fill="#D55E00"/>');
      }
    });
    var svg = document.getElementById("gap-svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var desc = rows.map(function (r) { return groupName(r[0], r[1]) + ": " + interval(r[2]); }).join("; ");
    svg.innerHTML = '<title id="gap-title">Label gap at equal score, with 95% intervals; 1 = no gap</title>' +
      '<desc id="gap-desc">' + esc("Model trained on " + LABEL_WORDS[m] + ". " + desc + ".") + '</desc>' +
      parts.join("");
  }

  function fillTables() {
    var m = model(), lg = point().label_gap[m], sizes = point().group_sizes;
    D.attributes.forEach(function (attr) {
      D.groups[attr].forEach(function (g, i) {
        var id = attr + "-" + g;
        var fs = sw(m, attr, "fs", i), hn = sw(m, attr, "hn", i), un = sw(m, attr, "un", i);
        setText("fs-" + id, fs === null ? missing(m, attr, "fs", i) : pct(fs));
        setText("fs-ci-" + id, fs === null ? "" : "(" + pct(sw(m, attr, "fs_lo", i)) + " to " +
          pct(sw(m, attr, "fs_hi", i)) + ")");
        setText("hn-" + id, hn === null ? missing(m, attr, "hn", i) : pct(hn));
        setText("hn-ci-" + id, hn === null ? "" : "(" + pct(sw(m, attr, "hn_lo", i)) + " to " +
          pct(sw(m, attr, "hn_hi", i)) + ")");
        var per = sw(m, attr, "left_out_per_100k", i);
        setText("lo-" + id, per === null ? "*" : count(per));
        setText("un-" + id, un === null ? missing(m, attr, "un", i) : pct(un) + " of " +
          count(sw(m, attr, "high_need_n", i)) + " (" + pct(sw(m, attr, "un_lo", i)) + " to " +
          pct(sw(m, attr, "un_hi", i)) + ")");
        setText("size-" + id, count(sizes[attr][i]));
        var e = lg[attr][i];
        setText("lg-" + id, (e.lo === 1 && e.hi === 1) ? "reference group" : interval(e));
      });
    });
    var q1 = D.groups.imd_quintile.indexOf("1");
    setText("label-gap-headline", interval(lg.imd_quintile[q1]));
    ["label", "clinician_judgement", "combined_pathway"].forEach(function (who) {
      var mm = who === "label" ? m : who;
      var j = point().judgement[mm].share_of_need_captured;
      setText("jn-" + who, pct(j.value) + " (" + pct(j.lo) + " to " + pct(j.hi) + ")");
      setText("jf-" + who, pct(sw(mm, "imd_quintile", "fs", q1)));
      setText("jl-" + who, count(sw(mm, "imd_quintile", "left_out_per_100k", q1)));
    });
    setText("jh", pct(sw(m, "imd_quintile", "hn", q1)));
    setText("j-label-name", "Learner trained on " + LABEL_WORDS[m]);
  }

  function summary() {
    var m = model(), q1 = D.groups.imd_quintile.indexOf("1");
    var lg = point().label_gap[m].imd_quintile[q1];
    var places = point().sweep[m].imd_quintile.flagged_n[S.c];
    return "Access gap " + gapWords(D.gaps[S.g]) + "; model trained on " + LABEL_WORDS[m] + "; places for the top " +
      capWords(D.capacities[S.c]) + " of scores (" + count(places) + " of " + count(D.n_audited) +
      " audited people). The most deprived fifth get " + pct(sw(m, "imd_quintile", "fs", q1)) +
      " of the places and hold " + pct(sw(m, "imd_quintile", "hn", q1)) + " of the highest need; " +
      count(sw(m, "imd_quintile", "left_out_per_100k", q1)) +
      " of their high-need people per 100,000 are left out. Their label gap is " + interval(lg) + ".";
  }

  function render() {
    var gap = document.getElementById("gap"), cap = document.getElementById("capacity");
    var lab = document.getElementById("label");
    S.g = Number(gap.value); S.c = Number(cap.value); S.l = Number(lab.value);
    var gw = gapWords(D.gaps[S.g]) + " less planned care at equal need";
    var cw = "top " + capWords(D.capacities[S.c]) + " of scores";
    var lw = LABEL_WORDS[model()];
    gap.setAttribute("aria-valuetext", gw); setText("gap-out", gw);
    cap.setAttribute("aria-valuetext", cw); setText("capacity-out", cw);
    lab.setAttribute("aria-valuetext", lw); setText("label-out", lw);
    drawShares(); drawLabelGap(); fillTables();
    setText("summary", summary());
  }

  ["gap", "capacity", "label"].forEach(function (id) {
    var el = document.getElementById(id);
    el.addEventListener("input", render);
    el.addEventListener("change", render);
  });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-gap]"), function (b) {
    b.addEventListener("click", function () {
      document.getElementById("gap").value = b.getAttribute("data-gap");
      document.getElementById("capacity").value = b.getAttribute("data-capacity");
      document.getElementById("label").value = b.getAttribute("data-label");
      render();
      document.getElementById("explore").scrollIntoView();
      document.getElementById("gap").focus();
    });
  });
  render();
  document.documentElement.setAttribute("data-ready", "1");
})();
"""


def _table_rows(data: dict[str, Any]) -> str:
    rows = []
    for attribute in data["attributes"]:
        heading = "Deprivation (IMD quintile)" if attribute == "imd_quintile" else "Ethnicity"
        rows.append(f'<tr><th colspan="6" scope="colgroup">{heading}</th></tr>')
        for group in data["groups"][attribute]:
            key = html.escape(f"{attribute}-{group}")
            name = f"Quintile {group}" if attribute == "imd_quintile" else group
            rows.append(
                f'<tr><th scope="row">{html.escape(name)}</th>'
                f'<td class="num" id="size-{key}"></td>'
                f'<td class="num"><span id="fs-{key}"></span> <span class="ci" id="fs-ci-{key}"></span></td>'
                f'<td class="num"><span id="hn-{key}"></span> <span class="ci" id="hn-ci-{key}"></span></td>'
                f'<td class="num" id="lo-{key}"></td><td class="num" id="un-{key}"></td></tr>'
            )
    return "\n".join(rows)


def _gap_rows(data: dict[str, Any]) -> str:
    rows = []
    for attribute in data["attributes"]:
        for group in data["groups"][attribute]:
            key = html.escape(f"{attribute}-{group}")
            name = f"Quintile {group}" if attribute == "imd_quintile" else group
            rows.append(f'<tr><th scope="row">{html.escape(name)}</th><td id="lg-{key}"></td></tr>')
    return "\n".join(rows)


def _steps_html(grid: Grid) -> str:
    out = []
    for i, step in enumerate(steps(grid), start=1):
        paragraphs = "".join(f"<p>{p}</p>" for p in step.paragraphs)
        sources = "; ".join(step.sources)
        out.append(
            f'<article class="step" id="step-{step.key}" aria-labelledby="step-{step.key}-title">'
            f'<h3 id="step-{step.key}-title">Step {i}. {html.escape(step.title)}</h3>{paragraphs}'
            f'<p><button type="button" data-gap="{step.gap}" data-capacity="{step.capacity}" '
            f'data-label="{step.label}">Show this view</button></p>'
            f'<p class="sources">Sources: {sources}.</p></article>'
        )
    return "\n".join(out)


def _exercises_html(grid: Grid) -> str:
    out = []
    for i, ex in enumerate(exercises(grid), start=1):
        out.append(
            f'<div class="exercise" id="exercise-{i}"><p><strong>Exercise {i}.</strong> {ex.question}</p>'
            f"<details><summary>Answer</summary><p>{ex.answer}</p></details></div>"
        )
    return "\n".join(out)


def _options(n: int) -> str:
    return str(n - 1)


def render_page(data: dict[str, Any]) -> str:
    """The whole page as a string: deterministic in ``data``.

    Parameters
    ----------
    data : dict
        From :func:`phm_audit.teach.build_teach_data`.

    Returns
    -------
    str
        Self-contained HTML.
    """
    grid = Grid(data)
    c3 = grid.cap_index(0.03)
    g_start = grid.gap_index(0.15)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=True).replace("</", "<\\/")
    gaps_text = ", ".join(gap_words(g) for g in data["gaps"])
    label_names = ", ".join(data["labels"])
    parts = {
        "@@DATA@@": payload,
        "@@CSS@@": _CSS,
        "@@SCRIPT@@": _SCRIPT,
        "@@GAP_MAX@@": _options(len(data["gaps"])),
        "@@GAP_START@@": str(g_start),
        "@@CAP_MAX@@": _options(len(data["capacities"])),
        "@@CAP_START@@": str(c3),
        "@@LABEL_MAX@@": _options(len(data["labels"])),
        "@@TABLE_ROWS@@": _table_rows(data),
        "@@GAP_ROWS@@": _gap_rows(data),
        "@@STEPS@@": _steps_html(grid),
        "@@EXERCISES@@": _exercises_html(grid),
        "@@N_GEN@@": count(data["n_generated"]),
        "@@N_AUD@@": count(data["n_audited"]),
        "@@SEED@@": str(data["seed"]),
        "@@N_BOOT@@": str(data["n_boot"]),
        "@@GAPS@@": gaps_text,
        "@@CROSSED@@": (
            f"{len(data['gaps']) ** 2} cohorts instead of {len(data['gaps'])}, {len(data['gaps'])} times the build time"
        ),
        "@@LABELS@@": html.escape(label_names),
        "@@VERSION@@": html.escape(__version__),
        "@@OBERMEYER@@": OBERMEYER,
        "@@COMMAND@@": html.escape(
            f"phm-audit teach --n {data['n_generated']} --seed {data['seed']} --bootstrap {data['n_boot']} "
            f"--gaps {','.join(f'{100 * g:g}' for g in data['gaps'])}"
        ),
    }
    page = _TEMPLATE
    for key, value in parts.items():
        page = page.replace(key, value)
    return page


_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<title>When a cost label goes wrong: an explorable audit (phm-audit)</title>
<style>@@CSS@@</style>
</head>
<body>
<header>
<h1>When a cost label goes wrong</h1>
<p class="lede">An explorable audit of a population-health risk model, for teaching. Move the sliders to change how
much less planned care some groups get at the same need, how many places the service has, and what the model was
trained to predict; the figure, the label gap and the table change at once. Every number was computed ahead of time
by phm-audit on synthetic people, one generated cohort per access gap, and is published under disclosure
control.</p>
<noscript><p><strong>The sliders need JavaScript.</strong> The guided steps and exercises below state their numbers
in words.</p></noscript>
</header>
<main>
<section id="explore" aria-label="Explore">
<div class="controls" role="group" aria-label="Settings of the audit">
<div class="control"><label for="gap">Access gap (most deprived fifth and minority ethnic groups)</label>
<input type="range" id="gap" name="gap" min="0" max="@@GAP_MAX@@" step="1" value="@@GAP_START@@"
 aria-describedby="gap-help"><output id="gap-out" for="gap"></output>
<span id="gap-help" class="visually-hidden">Planned care at equal need is this much lower for people in the most
deprived fifth of areas and in Asian, Black, Mixed and Other ethnic groups.</span></div>
<div class="control"><label for="capacity">Capacity (places, as a share of the population)</label>
<input type="range" id="capacity" name="capacity" min="0" max="@@CAP_MAX@@" step="1" value="@@CAP_START@@">
<output id="capacity-out" for="capacity"></output></div>
<div class="control"><label for="label">Label the model is trained on</label>
<input type="range" id="label" name="label" min="0" max="@@LABEL_MAX@@" step="1" value="0">
<output id="label-out" for="label"></output></div>
</div>
<p class="summary" id="summary" aria-live="polite"></p>
<figure id="fig-shares">
<svg id="shares-svg" role="img" aria-labelledby="shares-title shares-desc" viewBox="0 0 640 400"></svg>
<figcaption><span class="key flagged"></span>Share of the people flagged (with its 95% interval, black line) and
<span class="key need"></span>share of the people with the highest need (the top k by true need, k the number of
places), for each group. A group whose first bar is shorter than its second gets fewer places than its share of
need. The table below gives the same numbers.</figcaption>
</figure>
<table id="shares-table">
<caption class="visually-hidden">Shares of the flagged and of the highest need, and high-need people left out, by
group</caption>
<thead><tr><th scope="col">Group</th><th scope="col" class="num">People audited</th>
<th scope="col" class="num">Share of the flagged (95% interval)</th>
<th scope="col" class="num">Share of the highest need (95% interval)</th>
<th scope="col" class="num">High-need people left out per 100,000 in the group</th>
<th scope="col" class="num">Unmet-need rate: of the group's high-need people (95% interval)</th></tr></thead>
<tbody>
@@TABLE_ROWS@@
</tbody>
</table>
<h2 id="label-gap-heading">The label gap</h2>
<p>Label gap of the most deprived fifth, at equal score (reference: least deprived fifth):
<strong id="label-gap-headline"></strong></p>
<p>Among people with the same score, the ratio of a group's true need to the reference group's, divided by the
same ratio of cost (direct standardisation over 20 score bins). 1: cost measures both groups' need alike. Above 1:
at the same score the group is sicker than its cost says.</p>
<figure id="fig-gap">
<svg id="gap-svg" role="img" aria-labelledby="gap-title gap-desc" viewBox="0 0 640 260"></svg>
<figcaption>Label gap at equal score for each group against its reference (least deprived fifth; White), with its
95% bootstrap interval; the dashed line is 1. The table gives the same numbers.</figcaption>
</figure>
<table id="gap-table"><thead><tr><th scope="col">Group</th><th scope="col">Label gap (95% interval; n)</th></tr>
</thead><tbody>
@@GAP_ROWS@@
</tbody></table>
<h2 id="judgement-heading">Actuarial tool, clinician, combined pathway</h2>
<table id="judgement-table">
<thead><tr><th scope="col">Who decides</th><th scope="col" class="num">Share of all true need held by the top 3%
(95% interval)</th><th scope="col" class="num">Most deprived fifth: share of the flagged</th>
<th scope="col" class="num">Most deprived fifth: high-need people left out per 100,000</th></tr></thead>
<tbody>
<tr><th scope="row" id="j-label-name">Learner</th><td class="num" id="jn-label"></td><td class="num" id="jf-label">
</td><td class="num" id="jl-label"></td></tr>
<tr><th scope="row">Simulated clinician (reliability 0.7)</th><td class="num" id="jn-clinician_judgement"></td>
<td class="num" id="jf-clinician_judgement"></td><td class="num" id="jl-clinician_judgement"></td></tr>
<tr><th scope="row">Combined pathway (cost tool, then clinician review)</th><td class="num"
 id="jn-combined_pathway"></td><td class="num" id="jf-combined_pathway"></td><td class="num"
 id="jl-combined_pathway"></td></tr>
</tbody>
</table>
<p>The most deprived fifth hold <span id="jh"></span> of the highest need at this capacity. The share of need held
is at the top 3% whatever the capacity slider says; the other columns follow the sliders.</p>
</section>
<section id="steps" aria-labelledby="steps-heading">
<h2 id="steps-heading">Guided steps</h2>
<p>Each step states the numbers of its view; "Show this view" sets the sliders to it.</p>
@@STEPS@@
</section>
<section id="exercises" aria-labelledby="exercises-heading">
<h2 id="exercises-heading">Exercises</h2>
<p>Answers are folded away, computed from the same precomputed audits as the figures.</p>
@@EXERCISES@@
</section>
<section id="about" aria-labelledby="about-heading">
<h2 id="about-heading">How these numbers were made</h2>
<p>For each access gap (@@GAPS@@) phm-audit generated @@N_GEN@@ synthetic people from the <code>no_gap</code>
scenario with planned care at equal need lowered by the gap for the most deprived fifth of areas
(<code>planned_access.imd_q1</code>) and for Asian, Black, Mixed and Other ethnic groups
(<code>planned_access.asian</code>, <code>black</code>, <code>mixed</code>, <code>other</code>); recording of
conditions falls with access as the scenario says. One slider sets both gaps: the two crossed would need a cohort
for every pair of gaps, @@CROSSED@@. The same seed (@@SEED@@) makes them the same people at
every gap.
Half of each cohort trained the same gradient-boosted learner (no ethnicity or deprivation input) on each label
(@@LABELS@@); the other half, about @@N_AUD@@ people, were audited with <code>phm_audit.audit.audit</code>:
calibration at equal score (the label gap), a threshold sweep over 100 capacities from 0.5% to 50%, and actuarial
against clinical judgement at the top 3%, each interval from @@N_BOOT@@ bootstrap replicates. "Highest need" means
the top k people by true need next year (<code>need_true_next</code>, known because the people are synthetic), k the
number of places. A simulated clinician sees true need with correlation 0.7 (an assumption); the combined pathway
auto-enrols the top 1.5% by the cost model and fills further places from the next 10% by the clinician's
judgement.</p>
<p>Disclosure control, as NHS Digital's for secondary-care statistics: counts of 1 to 7 people are suppressed (shown
as * or n/a, with complementary suppression), other counts rounded to the nearest 5, and rates recomputed from the
rounded counts. Shares are shown to one decimal of a percentage. Rebuild this page with
<code>@@COMMAND@@</code>.</p>
<p class="sources">Main source: @@OBERMEYER@@. Made with phm-audit @@VERSION@@; synthetic data, not patients.</p>
</section>
</main>
<footer><p>phm-audit @@VERSION@@ — works offline: no request leaves this page.</p></footer>
<script type="application/json" id="teach-data">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""
