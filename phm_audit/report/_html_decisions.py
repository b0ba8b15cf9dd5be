"""Sections of the HTML report about decisions: referral thresholds, capacity and allocation, net benefit,
actuarial against clinical judgement, and explanations."""

from __future__ import annotations

from phm_audit.audit import lookup
from phm_audit.audit._result import AuditResult
from phm_audit.report import _figures as figs
from phm_audit.report._document import SWEEP_POINTS
from phm_audit.report._html_tables import (
    SECTIONS,
    Block,
    Cell,
    Index,
    Section,
    Table,
    group_rows,
    group_sizes,
    n_cell,
    single_attributes,
    value_cell,
)
from phm_audit.report._sentences import describe_operating_point, point_info

__all__ = ["explanations_section", "judgement_section", "net_benefit_section", "thresholds_section"]


def _by_another_score(metric: str) -> bool:
    """The allocation's share of the flagged if another score chose them (the registry's family)."""
    decl = lookup(metric, "allocation")
    return decl.family and decl.name == "flagged_share_if_by_"


def _probability(name: str, result: AuditResult) -> str:
    """The threshold probability of a net-benefit operating point, as the audit describes it (``0.05``)."""
    value = point_info(name, result.operating_points).get("value")
    return name if value is None else f"{float(value):g}"


def thresholds_section(result: AuditResult, idx: Index) -> Section:
    sec = Section("thresholds", SECTIONS[6][1])
    present = {a for a in ("thresholds", "allocation", "raise_bar", "referral") if idx.models_with(a)}
    if not present:
        sec.absent = (
            "No threshold, allocation, raising-the-bar or referral analysis is in this result. Add them with "
            "AuditSpec(analyses=[..., 'thresholds', 'allocation', 'raise_bar', 'referral']) (on by default in "
            "phm-audit audit and phm-audit demo)."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "What the cut-off and the capacity do to who gets care: selection and unmet need as capacity grows, "
            "who would be flagged if people were ranked by need, what shrinking capacity ('raising the bar') does, "
            "and who a referral gate turns away among those who need specialist care."
            + (
                " The figures draw the threshold sweep; its values at every capacity are in metrics.csv "
                "(analysis 'thresholds')."
                if "thresholds" in present
                else ""
            ),
        )
    )
    missing = sorted({"thresholds", "allocation", "raise_bar", "referral"} - present)
    if missing:
        sec.blocks.append(Block("p", f"Not in this result: {', '.join(missing)} (add them to AuditSpec.analyses)."))
    sizes = {a: group_sizes(result, a) for a in result.groups}
    rows_ag = group_rows(result)
    models = list(
        dict.fromkeys(m for a in ("thresholds", "allocation", "raise_bar", "referral") for m in idx.models_with(a))
    )
    heads = {
        "flagged_share": "share of those flagged",
        "flagged_share_if_by_need": "share if flagged by need",
        "replacement_share": "share after replacement",
        "equal_tpr_change_in_flagged": "change in flagged with equal tpr",
    }
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.thresholds_figure(idx.rows(model, "thresholds"), model=model, attributes=single_attributes(result))
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        sub = idx.rows(model, "allocation")
        if len(sub):
            op = str(sub["operating_point"].iloc[0])
            metrics = [m for m in heads if (sub["metric"] == m).any()]
            metrics += [m for m in dict.fromkeys(sub["metric"]) if _by_another_score(m) and m not in metrics][:2]
            rows = [
                [
                    Cell(a),
                    Cell(g),
                    n_cell(sizes[a].get(g)),
                    *[value_cell(idx.get(model, "allocation", a, g, op, m), m) for m in metrics],
                ]
                for a, g in rows_ag
            ]
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model} at {describe_operating_point(op, result.operating_points)}: "
                        "counterfactual allocation",
                        ["attribute", "group", "n", *[heads.get(m, m.replace("_", " ")) for m in metrics]],
                        rows,
                        note="Replacement: the healthiest flagged member of the reference group swapped for the "
                        "sickest unflagged member of the group while that raises need (Obermeyer et al. 2019).",
                    ),
                )
            )
        sub = idx.rows(model, "raise_bar")
        if len(sub):
            steps = list(dict.fromkeys(sub["operating_point"]))
            first, last = steps[0], steps[-1]
            rows = [
                [
                    Cell(a),
                    Cell(g),
                    value_cell(idx.get(model, "raise_bar", a, g, first, "unmet_need_rate"), "unmet_need_rate"),
                    value_cell(idx.get(model, "raise_bar", a, g, last, "unmet_need_rate"), "unmet_need_rate"),
                    value_cell(idx.get(model, "raise_bar", a, g, last, "dropped_share"), "dropped_share"),
                ]
                for a, g in rows_ag
            ]
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: raising the bar",
                        [
                            "attribute",
                            "group",
                            f"unmet need at {describe_operating_point(first, result.operating_points)}",
                            f"unmet need at {describe_operating_point(last, result.operating_points)}",
                            "share of those dropped at the last step",
                        ],
                        rows,
                        note="Unmet need: the share of the group's high-need members (fixed at the first step) "
                        "no longer flagged.",
                    ),
                )
            )
        sub = idx.rows(model, "referral")
        if len(sub):
            op = str(sub["operating_point"].iloc[0])
            rows = []
            for a, g in rows_ag:
                rate = idx.get(model, "referral", a, g, op, "refused_rate_among_needing")
                rows.append(
                    [
                        Cell(a),
                        Cell(g),
                        n_cell(rate.get("n") if rate else None),
                        value_cell(rate, "refused_rate_among_needing"),
                        value_cell(idx.get(model, "referral", a, g, op, "refused_rate_ratio"), "refused_rate_ratio"),
                    ]
                )
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: referral gate at {describe_operating_point(op, result.operating_points)}",
                        [
                            "attribute",
                            "group",
                            "n who need specialist care",
                            "refused among them",
                            "ratio to reference",
                        ],
                        rows,
                    ),
                )
            )
    return sec


def net_benefit_section(result: AuditResult, idx: Index) -> Section:
    sec = Section("net-benefit", SECTIONS[7][1])
    models = idx.models_with("net_benefit")
    if not models:
        sec.absent = (
            f"Net benefit needs a model whose scores are probabilities of {result.spec.net_benefit_target} "
            "(a ScoredModel with that target); none was audited, so decision curves are not drawn."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Net benefit weighs true positives against false positives at the odds a decision-maker accepts "
            "(Vickers & Elkin 2006), against treating everyone and treating no one, overall and per group.",
        )
    )
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.net_benefit_figure(idx.rows(model, "net_benefit"), model=model, attributes=single_attributes(result))
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        sub = idx.rows(model, "net_benefit")
        sub = sub[sub["group"] == "all"]
        attribute = str(sub["attribute"].iloc[0]) if len(sub) else ""
        rows = []
        for pt in SWEEP_POINTS["net_benefit"]:
            nb = idx.get(model, "net_benefit", attribute, "all", pt, "net_benefit")
            if nb is None:
                continue
            rows.append(
                [
                    Cell(_probability(pt, result)),
                    value_cell(nb, "net_benefit"),
                    value_cell(
                        idx.get(model, "net_benefit", attribute, "all", pt, "net_benefit_treat_all"),
                        "net_benefit_treat_all",
                    ),
                ]
            )
        if rows:
            sec.blocks.append(
                Block(
                    "table",
                    table=Table(
                        f"{model}: net benefit for everyone",
                        ["threshold probability", "net benefit", "treat all"],
                        rows,
                    ),
                )
            )
    return sec


def judgement_section(result: AuditResult, idx: Index) -> Section:
    sec = Section("judgement", SECTIONS[8][1])
    table = idx.table
    sub = table[table["analysis"] == "judgement"]
    if sub.empty:
        sec.absent = (
            "Actuarial and clinical scores are compared on one footing when two or more models are audited "
            "together (and 'judgement' is among the analyses); this result has fewer."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Mechanical prediction is on average somewhat more accurate than unaided judgement (Grove et al. 2000), "
            "but what a score is accurate about depends on its label. Each score is compared at the same capacity: "
            "how well it ranks high need and high cost (AUROC), how much of all need and cost its flagged hold, and "
            "how many high-need members of each group it reaches.",
        )
    )
    fig = figs.judgement_figure(table)
    if fig is not None:
        sec.blocks.append(Block("figure", figure=fig))
    kinds = {m["name"]: m.get("kind", "") for m in result.models}
    op = str(sub["operating_point"].iloc[0])
    rows = []
    for model in dict.fromkeys(sub["model"]):
        cells = [Cell(str(model)), Cell(str(kinds.get(model, "")))]
        for m in ("auroc_high_need", "auroc_high_cost", "share_of_need_captured", "share_of_cost_captured"):
            cells.append(value_cell(idx.get(str(model), "judgement", "all", "all", op, m), m))
        rows.append(cells)
    sec.blocks.append(
        Block(
            "table",
            table=Table(
                f"Models at {describe_operating_point(op, result.operating_points)}",
                ["model", "kind", "AUROC, high need", "AUROC, high cost", "need captured", "cost captured"],
                rows,
            ),
        )
    )
    models = [str(m) for m in dict.fromkeys(sub["model"])]
    rows = [
        [Cell(a), Cell(g), *[value_cell(idx.get(m, "judgement", a, g, op, "tpr"), "tpr") for m in models]]
        for a, g in group_rows(result)
    ]
    sec.blocks.append(
        Block(
            "table",
            table=Table("Share of each group's high-need members flagged (tpr)", ["attribute", "group", *models], rows),
        )
    )
    return sec


def explanations_section(result: AuditResult, idx: Index) -> Section:
    sec = Section("explanations", SECTIONS[9][1])
    models = idx.models_with("explain")
    if not models:
        sec.absent = (
            "Explanations were not computed for this audit. They need the 'explain' extra "
            "(pip install phm-audit[explain]) and a model that can be explained; phm-audit demo runs them."
        )
        return sec
    sec.blocks.append(
        Block(
            "p",
            "Which inputs drive each score (mean absolute SHAP value), and which of them carry the difference "
            "between groups: an input that explains much of a group's gap may stand in for a protected attribute.",
        )
    )
    for model in models:
        sec.blocks.append(Block("h3", model))
        fig = figs.explain_figure(idx.rows(model, "explain"), model=model)
        if fig is not None:
            sec.blocks.append(Block("figure", figure=fig))
        imp = idx.rows(model, "explain")
        imp = imp[imp["metric"] == "mean_abs_shap"]
        if (imp["group"] == "all").any():
            imp = imp[imp["group"] == "all"]
        imp = imp.drop_duplicates("feature").sort_values("value", ascending=False, na_position="last").head(15)
        if len(imp):
            rows = [
                [
                    Cell(str(r["feature"])),
                    value_cell({str(k): v for k, v in r.items()}, "mean_abs_shap"),
                    n_cell(r["n"]),
                ]
                for r in imp.to_dict(orient="records")
            ]
            sec.blocks.append(
                Block("table", table=Table(f"{model}: mean |SHAP| by feature", ["feature", "mean |SHAP|", "n"], rows))
            )
    return sec
