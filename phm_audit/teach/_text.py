"""The words of the teaching page: guided steps and exercises, each stating numbers read from the grid.

Every number here is looked up in the precomputed data (:func:`phm_audit.teach.build_teach_data`)
and formatted exactly as the page's script formats it (``Number.prototype.toFixed``: halves away from
zero), so the words and the live read-outs agree.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["Exercise", "Grid", "Step", "exercises", "fixed", "pct", "steps"]

Q1, Q5 = "1", "5"
COST, CONDITIONS = "cost_next", "n_conditions_next"
PRIMARY_SHARE = 0.03

LABEL_WORDS = {
    "cost_next": "total cost next year",
    "avoidable_cost_next": "avoidable cost next year",
    "n_conditions_next": "recorded long-term conditions next year",
    "emergency_admission_next": "an emergency admission next year",
    "clinician_judgement": "a clinician's judgement",
    "combined_pathway": "the combined pathway",
}


def fixed(x: float, decimals: int) -> str:
    """``x`` with ``decimals`` decimals, rounding halves away from zero as JavaScript's ``toFixed`` does.

    Examples
    --------
    >>> fixed(0.125, 2), fixed(2.5, 0), fixed(1.0, 2)
    ('0.13', '3', '1.00')
    """
    q = Decimal(1).scaleb(-decimals)
    return str(Decimal(x).quantize(q, rounding=ROUND_HALF_UP))


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal (``"n/a"`` when missing), as the page shows it.

    Examples
    --------
    >>> pct(0.2107), pct(None)
    ('21.1%', 'n/a')
    """
    return "n/a" if x is None else fixed(x * 100, 1) + "%"


def ratio(x: float | None) -> str:
    """A ratio with two decimals, as the page shows it."""
    return "n/a" if x is None else fixed(x, 2)


def count(x: int | None) -> str:
    """A (rounded) count with thousands separators; ``*`` when suppressed."""
    return "*" if x is None else f"{x:,}"


def gap_words(gap: float) -> str:
    """``0.15`` -> ``"15%"``."""
    return f"{fixed(gap * 100, 0)}%"


def capacity_words(share: float) -> str:
    """``0.03`` -> ``"3%"``, ``0.005`` -> ``"0.5%"``."""
    text = fixed(share * 100, 1)
    return (text[:-2] if text.endswith(".0") else text) + "%"


class Grid:
    """Look-ups into the precomputed data by gap, model, attribute, group and capacity."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.gaps: list[float] = list(data["gaps"])
        self.capacities: list[float] = list(data["capacities"])

    def gap_index(self, gap: float) -> int:
        """Index of the grid's gap closest to ``gap``."""
        return min(range(len(self.gaps)), key=lambda i: (abs(self.gaps[i] - gap), i))

    def cap_index(self, share: float) -> int:
        """Index of the sweep's capacity closest to ``share``."""
        return min(range(len(self.capacities)), key=lambda i: (abs(self.capacities[i] - share), i))

    def group_index(self, attribute: str, group: str) -> int:
        return list(self.data["groups"][attribute]).index(group)

    def sweep(self, g: int, model: str, attribute: str, key: str, group: str, c: int) -> Any:
        return self.data["points"][g]["sweep"][model][attribute][key][self.group_index(attribute, group)][c]

    def label_gap(self, g: int, model: str, attribute: str, group: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.data["points"][g]["label_gap"][model][attribute][
            self.group_index(attribute, group)
        ]
        return entry

    def judgement(self, g: int, model: str, metric: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.data["points"][g]["judgement"][model][metric]
        return entry

    def n_audited(self) -> str:
        return count(self.data["n_audited"])


@dataclass(frozen=True)
class Step:
    """One guided step: a title, paragraphs (HTML), the view it sets, and its sources."""

    key: str
    title: str
    paragraphs: tuple[str, ...]
    gap: int
    capacity: int
    label: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Exercise:
    """A question and its answer (HTML), the answer computed from the grid."""

    question: str
    answer: str


def _interval(entry: dict[str, Any]) -> str:
    if entry["value"] is None:
        return f"not available ({html.escape(entry['reason'] or 'undefined')})"
    return (
        f"{ratio(entry['value'])} (95% interval {ratio(entry['lo'])} to {ratio(entry['hi'])}; n = {count(entry['n'])})"
    )


def _excludes_one(entry: dict[str, Any]) -> bool | None:
    if entry["lo"] is None or entry["hi"] is None:
        return None
    return bool(entry["lo"] > 1 or entry["hi"] < 1)


def _points_diff(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    return fixed(abs(a - b) * 100, 1) + " percentage points"


def _first_minority(grid: Grid) -> str:
    groups = grid.data["groups"]["ethnicity"]
    return "Black" if "Black" in groups else next(g for g in groups if g != "White")


OBERMEYER = (
    "Obermeyer Z, Powers B, Vogeli C, Mullainathan S. Dissecting racial bias in an algorithm used to manage the "
    "health of populations. <i>Science</i> 2019;366:447–453"
)
TUDOR_HART = "Tudor Hart J. The inverse care law. <i>Lancet</i> 1971;297:405–412"
GROVE = (
    "Grove WM, Zald DH, Lebow BS, Snitz BE, Nelson C. Clinical versus mechanical prediction: a meta-analysis. "
    "<i>Psychological Assessment</i> 2000;12:19–30"
)
FAZEL = (
    "Fazel S, Singh JP, Doll H, Grann M. Use of risk assessment instruments to predict violence and antisocial "
    "behaviour in 73 samples involving 24 827 people. <i>BMJ</i> 2012;345:e4692"
)
RCPSYCH = "Royal College of Psychiatrists. Assessment and management of risk to others (CR201), 2017"
MCCARTNEY = (
    "McCartney G, et al. Is the inverse care law still relevant? Planned admissions and social class. "
    "<i>BMJ Open</i> 2013"
)
BARNETT = (
    "Barnett K, et al. Epidemiology of multimorbidity and implications for health care, research, and medical "
    "education. <i>Lancet</i> 2012;380:37–43"
)
KAISER = (
    "Operating points in use: top 2% (GP Avoiding Unplanned Admissions enhanced service, 2014); 1–5% (Kaiser pyramid)"
)
NHSD = "NHS Digital, disclosure control for secondary-care statistics (counts of 1–7 suppressed, others rounded to 5)"


def steps(grid: Grid) -> list[Step]:
    """The five guided steps, with the numbers of the view each one sets."""
    d = grid.data
    c3 = grid.cap_index(PRIMARY_SHARE)
    g_mid = grid.gap_index(0.15)
    g_max = len(grid.gaps) - 1
    g_zero = 0
    labels = list(d["labels"])
    cost, _cond = labels.index(COST), labels.index(CONDITIONS)
    minority = _first_minority(grid)
    n_aud = grid.n_audited()
    gm, gx, gz = gap_words(grid.gaps[g_mid]), gap_words(grid.gaps[g_max]), gap_words(grid.gaps[g_zero])

    def fs(g: int, model: str, group: str, attribute: str = "imd_quintile", c: int = c3) -> Any:
        return grid.sweep(g, model, attribute, "fs", group, c)

    def hn(g: int, group: str, attribute: str = "imd_quintile", c: int = c3, model: str = COST) -> Any:
        return grid.sweep(g, model, attribute, "hn", group, c)

    out = []
    # 1. a model trained on cost
    out.append(
        Step(
            key="cost-label",
            title="A model trained on cost",
            paragraphs=(
                f"The view: an access gap of {gm} (people in the most deprived fifth of areas and in minority "
                f"ethnic groups receive {gm} less planned care than others at the same need; the default England "
                "scenario assumes about 15% and 12%), a learner trained on total cost next year, and places for "
                f"the top 3% of scores. Of the people the model flags, <strong>{pct(fs(g_mid, COST, Q1))}</strong> "
                f"live in the most deprived fifth, who make up <strong>{pct(hn(g_mid, Q1))}</strong> of the people "
                f"with the highest need (the top 3% by true need). For {minority} people the two shares are "
                f"{pct(fs(g_mid, COST, minority, 'ethnicity'))} and {pct(hn(g_mid, minority, 'ethnicity'))}.",
                "Cost stands in for need, and people who get less care cost less, so a model that predicts cost "
                "well sees them as healthier than they are: the inverse care law (Tudor Hart 1971) turned into a "
                "referral list. In the United States, Obermeyer et al. found that Black patients were 17.7% of the "
                "people a cost-trained algorithm auto-enrolled (the top 3%); in their simulation of enrolling by "
                "health instead, the share rose to 46.5% (a figure the authors later corrected to about 59%), and "
                "at the same risk score Black patients had 26.3% more chronic illness. The figures on this page are "
                "from phm-audit's synthetic population, not from the US study.",
            ),
            gap=g_mid,
            capacity=c3,
            label=cost,
            sources=(OBERMEYER, TUDOR_HART),
        )
    )
    # 2. the label gap and its fix
    lg = grid.label_gap(g_max, COST, "imd_quintile", Q1)
    lg_cond = grid.label_gap(g_max, CONDITIONS, "imd_quintile", Q1)
    excl = _excludes_one(lg)
    verdict = {
        True: "The interval excludes 1: at the same score, cost under-measures this group's need.",
        False: "The interval includes 1: at this size, the audit cannot tell the gap from chance.",
        None: "The interval is not available.",
    }[excl]
    out.append(
        Step(
            key="label-gap",
            title="The label gap, and what fixes it",
            paragraphs=(
                f"Move the access gap to {gx}. The <em>label gap</em> compares, among people with the same score, "
                "a group's true need with its cost, each relative to the reference group (the least deprived "
                "fifth): 1 means cost measures both groups' need alike. For the most deprived fifth it is "
                f"<strong>{_interval(lg)}</strong>. {verdict}",
                f"The cost model gives the most deprived fifth {pct(fs(g_max, COST, Q1))} of its places against "
                f"{pct(hn(g_max, Q1))} of the highest need. Retrain the same learner on recorded long-term "
                f"conditions (the label slider): their share becomes {pct(fs(g_max, CONDITIONS, Q1))}. A label "
                "closer to need helps, but here only partly, because recording depends on access too: a "
                "condition is diagnosed and coded less often when care is harder to reach. The label gap itself "
                f"barely moves with the label ({ratio(lg_cond['value'])} for the conditions-trained model): it "
                "measures cost against need in the data, so it is the diagnostic to report, and the flagged shares "
                "show what a different label would change. Obermeyer et al. compared total cost, avoidable cost "
                "and active chronic conditions in the same way.",
            ),
            gap=g_max,
            capacity=c3,
            label=cost,
            sources=(OBERMEYER,),
        )
    )
    # 3. raising the bar
    caps = [grid.cap_index(s) for s in (0.05, 0.03, 0.01)]
    cap_words = [capacity_words(grid.capacities[c]) for c in caps]

    def per100k(g: int, group: str, c: int, model: str = COST) -> str:
        return count(grid.sweep(g, model, "imd_quintile", "left_out_per_100k", group, c))

    def unmet(g: int, group: str, c: int) -> str:
        return pct(grid.sweep(g, COST, "imd_quintile", "un", group, c))

    out.append(
        Step(
            key="raise-bar",
            title="Raising the bar",
            paragraphs=(
                "When the budget for case management falls year on year, the service raises its threshold: fewer "
                "places, given to the highest scores. Move the capacity slider down from 5% to 1% with the "
                f"cost-trained model at a {gm} access gap. The most deprived fifth's share of the flagged goes "
                f"{pct(fs(g_mid, COST, Q1, c=caps[0]))} → {pct(fs(g_mid, COST, Q1, c=caps[1]))} → "
                f"{pct(fs(g_mid, COST, Q1, c=caps[2]))} at {', '.join(cap_words)}, against shares of the highest "
                f"need of {pct(hn(g_mid, Q1, c=caps[0]))}, {pct(hn(g_mid, Q1, c=caps[1]))} and "
                f"{pct(hn(g_mid, Q1, c=caps[2]))}.",
                "Of the most deprived fifth's people with the highest need (the top k by true need, k the number "
                f"of places), the model leaves out {unmet(g_mid, Q1, caps[0])}, {unmet(g_mid, Q1, caps[1])} and "
                f"{unmet(g_mid, Q1, caps[2])}; of the least deprived fifth's, {unmet(g_mid, Q5, caps[0])}, "
                f"{unmet(g_mid, Q5, caps[1])} and {unmet(g_mid, Q5, caps[2])}. Per 100,000 people in the most "
                f"deprived fifth, that is {per100k(g_mid, Q1, caps[0])}, {per100k(g_mid, Q1, caps[1])} and "
                f"{per100k(g_mid, Q1, caps[2])} high-need people without a place. Services in England work at the "
                "top 1–5% (the GP enhanced service used the top 2%).",
            ),
            gap=g_mid,
            capacity=caps[1],
            label=cost,
            sources=(KAISER, MCCARTNEY),
        )
    )
    # 4. actuarial versus clinical judgement
    jc = grid.judgement(g_mid, COST, "share_of_need_captured")
    jj = grid.judgement(g_mid, "clinician_judgement", "share_of_need_captured")
    jp = grid.judgement(g_mid, "combined_pathway", "share_of_need_captured")

    def share(entry: dict[str, Any]) -> str:
        return f"{pct(entry['value'])} (95% interval {pct(entry['lo'])} to {pct(entry['hi'])})"

    out.append(
        Step(
            key="judgement",
            title="An actuarial tool against clinical judgement, and a combined pathway",
            paragraphs=(
                f"At a {gm} access gap and the top 3%, the people the cost-trained model flags hold "
                f"{share(jc)} of all true need in the population; a simulated clinician who sees true need "
                f"through noise (correlation 0.7 with it, an assumption) flags people holding {share(jj)}; a "
                f"combined pathway, in which the tool auto-enrols the top {capacity_words(d['auto_share'])} and a "
                f"clinician reviews the next {capacity_words(d['review_share'])} and fills the remaining places, "
                f"{share(jp)}. The most deprived fifth's share of the flagged is "
                f"{pct(fs(g_mid, COST, Q1))} (tool), {pct(fs(g_mid, 'clinician_judgement', Q1))} (clinician) and "
                f"{pct(fs(g_mid, 'combined_pathway', Q1))} (combined), against {pct(hn(g_mid, Q1))} of the highest "
                "need. The table under the figure shows all three at the capacity and gap you choose.",
                "Mechanical prediction is on average about 10% more accurate than clinical judgement (Grove et al. "
                "2000, 136 studies), yet a tool trained on the wrong label can be accurate about the wrong thing; "
                "actuarial tools 'should not be sole determinants' of decisions about people (Fazel et al. 2012), "
                "and the Royal College of Psychiatrists (2017) prefers structured professional judgement. The US "
                "programme that Obermeyer et al. studied auto-enrolled the top 3% and referred the 55th–97th "
                "percentiles to a clinician.",
            ),
            gap=g_mid,
            capacity=c3,
            label=cost,
            sources=(GROVE, FAZEL, RCPSYCH, OBERMEYER),
        )
    )
    # 5. the null world
    lg0 = grid.label_gap(g_zero, COST, "imd_quintile", Q1)
    excl0 = _excludes_one(lg0)
    verdict0 = {
        True: "Its interval excludes 1 at this size: chance alone does this about 1 time in 20.",
        False: "Its interval includes 1: no label gap is found where none was planted.",
        None: "Its interval is not available.",
    }[excl0]
    out.append(
        Step(
            key="null-world",
            title="The null world",
            paragraphs=(
                f"Set the access gap to {gz}: need still differs between groups (deprivation brings conditions "
                "10–15 years earlier; diabetes is commoner in South Asian and Black people), but care and its "
                "recording follow need alike for everyone. The label gap for the most deprived fifth is "
                f"{_interval(lg0)}. {verdict0}",
                f"The cost-trained model gives the most deprived fifth {pct(fs(g_zero, COST, Q1))} of its places, "
                f"the conditions-trained model {pct(fs(g_zero, CONDITIONS, Q1))}, a difference of "
                f"{_points_diff(fs(g_zero, COST, Q1), fs(g_zero, CONDITIONS, Q1))}; their share of the highest "
                f"need is {pct(hn(g_zero, Q1))}. At a {gx} access gap the two labels differ by "
                f"{_points_diff(fs(g_max, COST, Q1), fs(g_max, CONDITIONS, Q1))}. Where access is equal, the "
                "choice of label matters little for who is flagged: it is the access gap that makes cost a biased "
                f"measure of need. (All on {n_aud} audited people, the same people at every access gap.)",
            ),
            gap=g_zero,
            capacity=c3,
            label=cost,
            sources=(OBERMEYER, BARNETT),
        )
    )
    return out


def exercises(grid: Grid) -> list[Exercise]:
    """Exercises whose answers are computed from the grid."""
    d = grid.data
    c3 = grid.cap_index(PRIMARY_SHARE)
    n_aud = grid.n_audited()
    g_max = len(grid.gaps) - 1
    g_mid = grid.gap_index(0.15)
    out = []
    # 1. where the interval first excludes 1
    rows = []
    first = None
    for g, gap in enumerate(grid.gaps):
        entry = grid.label_gap(g, COST, "imd_quintile", Q1)
        rows.append(f"{gap_words(gap)}: {_interval(entry)}")
        if first is None and _excludes_one(entry):
            first = g
    if first is None:
        answer = "On this grid the interval never excludes 1. "
    else:
        lo = grid.label_gap(first, COST, "imd_quintile", Q1)["lo"]
        answer = (
            f"At an access gap of <strong>{gap_words(grid.gaps[first])}</strong> (the interval's lower end is "
            f"{fixed(lo, 3)}). "
        )
    answer += (
        "The label gap of the most deprived fifth (cost-trained model) at each gap: " + "; ".join(rows) + ". With more "
        "people the intervals narrow and a smaller gap is detected; with fewer, a real gap can go unseen: "
        "an interval that includes 1 is not evidence that there is no gap."
    )
    out.append(
        Exercise(
            question=f"With {n_aud} audited people, at what access gap does the interval of the most deprived "
            "fifth's label gap first exclude 1?",
            answer=answer,
        )
    )
    # 2. how many high-need people a need label brings in
    for g in dict.fromkeys((g_max, g_mid)):
        left_cost = grid.sweep(g, COST, "imd_quintile", "left_out", Q1, c3)
        left_cond = grid.sweep(g, CONDITIONS, "imd_quintile", "left_out", Q1, c3)
        per_cost = grid.sweep(g, COST, "imd_quintile", "left_out_per_100k", Q1, c3)
        per_cond = grid.sweep(g, CONDITIONS, "imd_quintile", "left_out_per_100k", Q1, c3)
        if None in (left_cost, left_cond, per_cost, per_cond):
            ans = "The counts are suppressed by disclosure control at this size."
        else:
            more = left_cost - left_cond
            if more > 0:
                verdict = f"the need label brings in <strong>{count(more)}</strong> more"
            elif more == 0:
                verdict = "the need label brings in <strong>none</strong> (the same number left out)"
            else:
                verdict = (
                    f"the need label brings in <strong>none</strong>: it leaves out {count(-more)} more. It flags "
                    f"more of the fifth ({pct(grid.sweep(g, CONDITIONS, 'imd_quintile', 'fs', Q1, c3))} of its "
                    f"places against {pct(grid.sweep(g, COST, 'imd_quintile', 'fs', Q1, c3))}), but recorded "
                    "conditions are a noisier measure of true need than cost is here, so fewer of those it flags "
                    "are among the highest need: a fairer share is not the same as reaching the people in need"
                )
            ans = (
                f"The cost-trained model leaves out {count(left_cost)} of the most deprived fifth's high-need "
                f"people, the conditions-trained model {count(left_cond)}: {verdict}. Of {n_aud} audited people; "
                f"{count(per_cost)} against {count(per_cond)} left out per 100,000 people in the fifth; counts "
                "rounded to 5 by disclosure control."
            )
        out.append(
            Exercise(
                question=f"At a {gap_words(grid.gaps[g])} access gap and 3% capacity, how many high-need people in "
                "the most deprived fifth (quintile 1) does a need label (recorded conditions) bring in, compared "
                "with the cost label?",
                answer=ans,
            )
        )
    # 3. which label is closest to need
    labels = list(d["labels"])
    target = grid.sweep(g_mid, COST, "imd_quintile", "hn", Q1, c3)
    dist = {
        lab: abs(grid.sweep(g_mid, lab, "imd_quintile", "fs", Q1, c3) - target)
        for lab in labels
        if grid.sweep(g_mid, lab, "imd_quintile", "fs", Q1, c3) is not None and target is not None
    }
    if dist:
        best = min(dist, key=lambda k: (dist[k], labels.index(k)))
        shares = "; ".join(
            f"{LABEL_WORDS[lab]}: {pct(grid.sweep(g_mid, lab, 'imd_quintile', 'fs', Q1, c3))}" for lab in labels
        )
        ans = (
            f"<strong>{LABEL_WORDS[best].capitalize()}</strong>. The most deprived fifth's share of the flagged, by "
            f"label: {shares}; their share of the highest need is {pct(target)}."
        )
    else:
        ans = "The shares are suppressed by disclosure control at this size."
    out.append(
        Exercise(
            question=f"At a {gap_words(grid.gaps[g_mid])} access gap and 3% capacity, which label flags the most "
            "deprived fifth closest to their share of the highest need?",
            answer=ans,
        )
    )
    # 4. the null world
    a = grid.sweep(0, COST, "imd_quintile", "fs", Q1, c3)
    b = grid.sweep(0, CONDITIONS, "imd_quintile", "fs", Q1, c3)
    a_max = grid.sweep(g_max, COST, "imd_quintile", "fs", Q1, c3)
    b_max = grid.sweep(g_max, CONDITIONS, "imd_quintile", "fs", Q1, c3)
    out.append(
        Exercise(
            question=f"By how many percentage points does the most deprived fifth's share of the flagged differ "
            f"between the cost and the conditions label at a {gap_words(grid.gaps[0])} access gap, and at "
            f"{gap_words(grid.gaps[g_max])}? (3% capacity)",
            answer=f"<strong>{_points_diff(a, b)}</strong> at {gap_words(grid.gaps[0])} ({pct(a)} against {pct(b)}), "
            f"and <strong>{_points_diff(a_max, b_max)}</strong> at {gap_words(grid.gaps[g_max])} ({pct(a_max)} "
            f"against {pct(b_max)}).",
        )
    )
    return out


def is_missing(x: Any) -> bool:
    """True for ``None`` and NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))
