"""The methods section of the HTML report: intervals, ties, the rules of the findings, false discoveries, the
headline's mechanisms, disclosure control, the data and the limitations."""

from __future__ import annotations

from phm_audit.audit._result import AuditResult
from phm_audit.report._control import DisclosureControl, sentence
from phm_audit.report._html_tables import SECTIONS, Block, Section
from phm_audit.report._rules import FindingRules

__all__ = ["methods_section"]


def methods_section(
    result: AuditResult, disclosure: DisclosureControl, rules: FindingRules, synthetic: bool
) -> Section:
    sec = Section("methods", SECTIONS[10][1])
    spec = result.spec
    level = f"{100 * spec.confidence:g}%"
    paras = [
        (
            "Intervals",
            f"Every interval is a {level} percentile interval from {spec.n_boot} bootstrap replicates. The bootstrap "
            "resamples counts, not rows: each statistic is a function of counts and sums per cell (for example group "
            "by flagged by high need), and resampling people with replacement makes the cell counts multinomial; "
            "given a cell's count, its sum is resampled exactly from the cell's own values for small cells and from "
            "the normal limit of the sum for large ones. Replicates in which a statistic is undefined are left out, "
            "and an interval needs at least half the replicates to be defined. With 0 replicates there are no "
            "intervals, and no finding can be graded flag.",
        ),
        (
            "Ties",
            "Operating points flag the k highest scores. People with equal scores are taken in their input order "
            "(a stable sort), so exactly k people are flagged and the rule is reproducible; 'high need' is the same "
            "number of people with the highest need, by the same tie rule.",
        ),
        (
            "Equal score and equal need",
            "Ratios at equal score compare a group with the reference group within bins of the score and combine "
            "the bins by direct standardisation, each bin weighted by the group's own count there "
            "(sum of n_g,b x mean_g,b over sum of n_g,b x mean_ref,b); bins where either group is empty are left out "
            "and counted in metrics.csv (bins_left_out, people_left_out). The selection ratio at equal need does "
            "the same within bands of need (percentiles " + ", ".join(f"{x:g}" for x in spec.need_strata) + ").",
        ),
        (
            "Label gap",
            "The label gap is the need ratio at equal score over the cost ratio at equal score. A group can be "
            "sicker at the same score under any label (its need ratio alone exceeds 1); the label gap isolates the "
            "part due to cost standing in for need: where access to care is equal it stays at 1, and above 1 a "
            "cost-trained score under-rates the group's need.",
        ),
        (
            "Findings",
            f"Graded by FindingRules: flag a share ratio below {rules.share_ratio:g} or a selection ratio at equal "
            f"need below {rules.selection_ratio:g} with the interval below 1; a tpr difference of "
            f"{100 * rules.tpr_gap:g} points or more with the interval below 0; a need ratio above "
            f"{rules.need_ratio:g} or a label gap above {rules.label_gap:g} with the interval above 1; an unmet-need "
            f"gap of {100 * rules.unmet_need_gap:g} points or more with the interval above 0; a referral refusal "
            f"ratio above {rules.refused_ratio:g} with the interval above 1. Review: the interval excludes parity "
            "but the effect is smaller"
            + (
                "; or the effect reaches the threshold but the interval includes parity or is missing"
                if rules.review_uncertain
                else ""
            )
            + "; or the value is not reported, with its reason. Ok otherwise.",
        ),
        (
            "False discoveries",
            (
                "Every graded comparison (model x attribute x group x metric x operating point) is one test of "
                "parity. Its two-sided p-value is read from its bootstrap percentile interval by the normal "
                "approximation on the comparison's scale (the logarithm for a ratio): the half of the interval "
                "facing parity over the normal quantile of the interval's level is the standard error, so the "
                "p-value is below 1 minus the level exactly when the interval excludes parity. The "
                "Benjamini-Hochberg procedure (scipy.stats.false_discovery_control) is applied once over all of "
                f"them at a false discovery rate of {100 * rules.false_discovery_rate:g}%, and only a discovery "
                "can be a flag; an interval that excludes parity but is not a discovery is graded review. Flags "
                "bounded from a suppressed count have no interval and are graded on their exact bound. The raw "
                "per-cell intervals are in metrics.csv; each finding in audit.json carries its p_value and q_value."
                if rules.false_discovery_rate is not None
                else "No multiplicity control was applied (FindingRules false_discovery_rate=None): each interval "
                "is graded on its own, so about one in twenty comparisons without an effect excludes parity by "
                "chance."
            )
            + (
                f" A comparison at equal score (need ratio, label gap) of a group of fewer than "
                f"{rules.min_calibration_n:,} people is graded review at most: over so few people in each score "
                "bin its bootstrap interval is too narrow (FindingRules min_calibration_n)."
                if rules.min_calibration_n
                else ""
            ),
        ),
        (
            "One finding per effect",
            "The cells of one model, attribute, group and metric at every operating point are one finding, graded "
            "by the worst of them; the same effect (attribute, group, metric, grade and direction) in several "
            "models is one finding, led by the largest. Each lists its cells, with their grades, beneath.",
        ),
        (
            "Headline and mechanisms",
            "The headline says who is under-served (share of the flagged over share of the highest need graded "
            "flag) and whether a score under-states a group's need, and why. Label: the model ranks by cost and "
            "the label gap at equal score (need ratio over cost ratio) is a flag, so a cost label under-states the "
            "group's need; a need label would fix it. Base rate: the model is not trained on cost and the need "
            "ratio at equal score is a flag: at the same score the group is sicker, as a noisy score of a group "
            "with more need shows (the label gap describes cost against need in the population and is much the "
            "same for every score, so it does not implicate such a score); calibration within groups or a "
            "group-aware threshold would fix it. For a model of unknown label the data decide (label gap a flag "
            "with the cost ratio at 1: label; need ratio a flag with the label gap at 1: base rate). Need measured "
            "by need_true_next is ground truth, known only on a synthetic cohort; any other need measure is a "
            "recorded proxy, which carries the access gap it should detect, and statements give the other measure "
            "beside. Capacity and allocation statements read the threshold sweep at twice the capacity and the "
            "counterfactual allocation by need or by a need-trained model. People affected are per 100,000 of the "
            "audited population, computed from published (disclosure-controlled) shares and counts only.",
        ),
        (
            "Disclosure control",
            (
                f"{sentence(disclosure.describe())}. Rates are recomputed from rounded numerators and "
                "denominators; differences and ratios against the reference group from those rates; a statistic on "
                "a suppressed count is suppressed with it; and within every partition of a total (the groups of an "
                "attribute, the cells of an intersection sharing one component, the bins of a curve) a second cell "
                "is suppressed wherever one alone would be, so that no suppressed count can be recovered by "
                "subtraction. Curve means are suppressed where a bin holds too few people. The report holds no "
                "row-level data."
                if disclosure.enabled
                else "Disclosure control was switched off for this report: counts of 1 to 7 people are published "
                "exactly. Do not publish it."
            ),
        ),
        (
            "Data",
            "The data are synthetic: a structural causal model of an English-NHS-like population in which every "
            "mechanism that separates cost from need (unequal access to planned care, under-recording of diagnoses) "
            "is a named, documented scenario setting. Findings describe the scenario, not any real population or "
            "model in use."
            if synthetic
            else "The data were supplied by the user; phm-audit checked their columns and values but cannot check "
            "how they were collected or whether the outcomes measure what they are named for (PROBAST outcome "
            "domain).",
        ),
        (
            "Limitations",
            "Groups smaller than the minimum size are not reported. Intersections are fine-grained and their "
            "intervals wide. A model can pass every check here and still cause fairness-related harm through how "
            "it is used; these results assess the score, not the service around it. Reporting follows TRIPOD+AI "
            "(item 3c, health inequalities).",
        ),
    ]
    for title, text in paras:
        sec.blocks.append(Block("h3", title))
        sec.blocks.append(Block("p", text))
    return sec
