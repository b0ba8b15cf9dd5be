"""The numbers each figure draws (``phm_audit.report._figure_data``), computed and checked without matplotlib.

One small published (disclosure-controlled) audit: 4,000 people of ``england``, three attributes, two
models, five analyses, plus made-up explanation and label-choice rows (those stages are optional). Each
figure's frame must hold the published rows unchanged (values, intervals, counts; a suppressed value stays
missing, never 0), exactly the audited groups, and the format the metric registry declares.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_audit.audit import AuditSpec, ScoredModel, audit
from phm_audit.audit._metrics import lookup
from phm_audit.audit._result import AuditResult, RowBuilder
from phm_audit.report import DisclosureControl, disclose_result
from phm_audit.report import _figure_data as fd

ROOT = Path(__file__).resolve().parent.parent
OP = "top_3pct"
NUMBERS = ["value", "ci_low", "ci_high", "n"]
FEATURES = [f"feature_{i}" for i in range(14)]


@pytest.fixture(scope="module")
def published(cohort_factory) -> AuditResult:
    """The audit as a report publishes it: disclosure control applied."""
    cohort = cohort_factory("england", 4_000, 11)
    n_ltc = cohort["n_ltc_recorded"].to_numpy(np.float64)
    admissions = cohort["emergency_admissions"].to_numpy(np.float64)
    probability = 1 / (1 + np.exp(-(-3.2 + 0.35 * n_ltc + 0.6 * admissions)))
    models = [
        ScoredModel("prior_cost", cohort["cost_prior"].to_numpy(np.float64), kind="actuarial"),
        ScoredModel("admission_risk", probability, kind="clinical", target="emergency_admission_next"),
    ]
    spec = AuditSpec(
        attributes=("sex", "imd_quintile", "ethnicity"),
        intersections=(),
        analyses=("fairness", "calibration", "thresholds", "net_benefit", "judgement"),
        sweep_fractions=(0.01, 0.03, 0.1),
        n_boot=5,
        seed=1,
    )
    result = audit(cohort, models, spec)
    rows = RowBuilder()
    for i, f in enumerate(FEATURES):
        rows.add(
            model="prior_cost",
            analysis="explain",
            attribute="all",
            groups=["all"],
            metric="mean_abs_shap",
            value=np.nan if i == 3 else 0.4 - 0.02 * i,
            ci_low=0.35 - 0.02 * i,
            ci_high=0.45 - 0.02 * i,
            feature=f,
            n=3000,
        )
        for attribute, groups in (("imd_quintile", ["1", "2", "3", "4"]), ("ethnicity", ["Asian", "Black", "Mixed"])):
            rows.add(
                model="prior_cost",
                analysis="explain",
                attribute=attribute,
                groups=groups,
                metric="gap_contribution",
                value=[0.01 * ((7 * i + 3 * k) % 11) - 0.05 for k in range(len(groups))],
                feature=f,
                n=[500] * len(groups),
            )
    for label, share in (("cost_next", 0.45), ("need_true_next", 0.55)):
        rows.add(
            model=f"learner[{label}]",
            analysis="label_choice",
            attribute="imd_quintile",
            groups=["1", "2", "3", "5"],  # no row for quintile 4
            metric="flagged_share",
            value=[share / 2, 0.2, 0.15, 0.1],
            ci_low=[share / 2 - 0.02, 0.18, 0.1, 0.08],
            ci_high=[share / 2 + 0.02, 0.22, 0.2, 0.12],
            n=600,
            target=label,
            operating_point=OP,
        )
    extra = AuditResult(
        spec=spec,
        models=(),
        groups={},
        cohort=dict(result.cohort),
        notes=(),
        _metrics=rows.frame(),
        _curves=result.curves().iloc[:0],
    )
    return disclose_result(result.merge(extra), DisclosureControl())


def _attributes(result: AuditResult) -> dict[str, tuple[list[str], str | None]]:
    return {a: ([str(g) for g in info["labels"]], str(info["reference"])) for a, info in result.groups.items()}


def _same_rows(frame: pd.DataFrame, table: pd.DataFrame, keys: list[str], numbers: list[str] = NUMBERS) -> int:
    """Every row of ``frame`` holds the numbers of its row of ``table`` (all missing where there is none).

    Returns how many of the frame's values are missing in the table (suppressed or absent).
    """
    rows = table[keys + numbers].merge(frame[keys].drop_duplicates(), on=keys)
    assert not rows.duplicated(keys).any()  # one published row per drawn key
    merged = frame.merge(rows, on=keys, how="left", suffixes=("", "_table"), validate="many_to_one")
    assert len(merged) == len(frame)
    for c in numbers:
        # NaN only where the table's is: a suppressed value is not drawn as 0
        mine = merged[c].to_numpy(np.float64, na_value=np.nan)
        np.testing.assert_array_equal(mine, merged[f"{c}_table"].to_numpy(np.float64, na_value=np.nan), c)
    return int(merged[f"{numbers[0]}_table"].isna().sum())


def _ordered_intervals(frame: pd.DataFrame) -> None:
    """Intervals are drawn as published: low end at most the high end, both missing where suppressed.

    (Not ``ci_low <= value <= ci_high``: disclosure control recomputes a rate from rounded counts, which
    can move it outside its bootstrap interval, the more so with the few resamples of this test.)
    """
    lo, hi = frame["ci_low"].to_numpy(np.float64), frame["ci_high"].to_numpy(np.float64)
    known = np.isfinite(lo) & np.isfinite(hi)
    assert known.any()
    assert (lo[known] <= hi[known]).all()
    hidden = frame["value"].isna().to_numpy()
    assert not (np.isfinite(lo) | np.isfinite(hi))[hidden].any()


def _formats_from_registry(frame: pd.DataFrame, analysis: str) -> None:
    expected = [lookup(str(m), analysis).fmt for m in frame["metric"]]
    assert frame["fmt"].tolist() == expected


def _groups(frame: pd.DataFrame, attribute: str) -> list[str]:
    return list(dict.fromkeys(frame.loc[frame["attribute"] == attribute, "group"]))


def test_the_data_module_imports_no_plotting_library():
    tree = ast.parse(Path(fd.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] in ("matplotlib", "seaborn", "plotly")], imported


def test_every_data_function_runs_where_matplotlib_cannot_be_imported(published, tmp_path):
    pd.to_pickle((published.table(), published.curves(), _attributes(published)), tmp_path / "audit.pkl")
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["matplotlib"] = None  # importing it now raises ImportError
        import pandas as pd
        from phm_audit.report import _figure_data as fd

        table, curves, attributes = pd.read_pickle({str(tmp_path / "audit.pkl")!r})
        frames = {{
            "headline": fd.headline_data(
                table, models=["prior_cost", "admission_risk"], operating_point="{OP}", attributes=attributes
            ),
            "shares": fd.shares_data(table, model="prior_cost", operating_point="{OP}", attributes=attributes),
            "label_gap": fd.label_gap_data(
                table, model="prior_cost", need_targets=["need_true_next"], attributes=attributes
            ),
            "need_cost": fd.need_cost_data(curves, "prior_cost", "ethnicity", ["need_true_next", "cost_next"]),
            "reliability": fd.reliability_data(curves, model="admission_risk", attributes=attributes),
            "thresholds": fd.thresholds_data(table, model="prior_cost", attributes=attributes),
            "net_benefit": fd.net_benefit_data(table, model="admission_risk", attributes=attributes),
            "explain": fd.explain_data(table, model="prior_cost"),
            "judgement": fd.judgement_data(table),
            "label_choice": fd.label_choice_data(table, attributes=attributes),
        }}
        loaded = sorted(m for m in sys.modules if m.startswith("matplotlib."))
        print(json.dumps({{"rows": {{k: len(f) for k, f in frames.items()}}, "loaded": loaded}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert all(n > 0 for n in out["rows"].values()), out["rows"]


def test_headline_holds_every_models_ratio_of_every_audited_group(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.headline_data(table, models=["prior_cost", "admission_risk"], operating_point=OP, attributes=attributes)
    for attribute, (groups, _) in attributes.items():
        for model in ("prior_cost", "admission_risk"):
            assert frame.loc[(frame["attribute"] == attribute) & (frame["model"] == model), "group"].tolist() == groups
    suppressed = _same_rows(
        frame.assign(analysis="fairness", operating_point=OP),
        table,
        ["model", "analysis", "attribute", "group", "operating_point", "metric"],
    )
    assert suppressed > 0  # the small ethnic groups: their ratios are hidden, and stay so
    _ordered_intervals(frame)
    _formats_from_registry(frame, "fairness")
    # a model without rows is not drawn; an attribute with more groups than a figure can tell apart neither
    only = fd.headline_data(table, models=["prior_cost", "nobody"], operating_point=OP, attributes=attributes)
    assert set(only["model"]) == {"prior_cost"}
    many = {"imd_quintile": ([str(i) for i in range(fd.MAX_GROUPS + 1)], "0")}
    assert fd.headline_data(table, models=["prior_cost"], operating_point=OP, attributes=many).empty


def test_shares_hold_both_shares_of_every_group_in_per_cent_format(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.shares_data(table, model="prior_cost", operating_point=OP, attributes=attributes)
    assert list(dict.fromkeys(frame["metric"])) == ["high_need_share", "flagged_share"]
    for attribute, (groups, _) in attributes.items():
        assert _groups(frame, attribute) == groups
    keys = ["model", "analysis", "attribute", "group", "operating_point", "metric"]
    assert _same_rows(frame.assign(model="prior_cost", analysis="fairness", operating_point=OP), table, keys) > 0
    _ordered_intervals(frame)
    _formats_from_registry(frame, "fairness")
    assert set(frame["fmt"]) == {"percent"}
    assert frame["value"].dropna().between(0, 1).all()  # a share, drawn as per cent


def test_label_gap_holds_every_group_but_the_reference_and_spans_all_gaps(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.label_gap_data(table, model="prior_cost", need_targets=["need_true_next"], attributes=attributes)
    for attribute, (groups, reference) in attributes.items():
        assert _groups(frame, attribute) == [g for g in groups if g != reference]
    keys = ["model", "analysis", "attribute", "group", "target", "metric"]
    _same_rows(frame.assign(model="prior_cost", analysis="calibration", metric="label_gap_at_equal_score"), table, keys)
    _ordered_intervals(frame)
    low, high = frame.attrs["span"]
    drawn = frame[["value", "ci_low", "ci_high"]].to_numpy(np.float64)
    drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
    assert 0 < low <= drawn.min() and drawn.max() <= high
    assert fd.label_gap_data(table, model="prior_cost", need_targets=["no_such_target"], attributes=attributes).empty


def test_need_cost_bands_are_count_weighted_means_of_the_published_bins(published):
    curves = published.curves()
    frame = fd.need_cost_data(curves, "prior_cost", "ethnicity", ["need_true_next", "cost_next"])
    assert set(frame["group"]) <= set(published.groups["ethnicity"]["labels"])
    assert frame["band"].between(0, 19).all() and frame["percentile"].between(0, 100).all()
    bins = curves[(curves["model"] == "prior_cost") & (curves["attribute"] == "ethnicity")]
    bins = bins[(bins["bins"] == "percentile") & bins["target"].isin(["need_true_next", "cost_next"])]
    bins = bins[bins["mean"].notna() & (bins["n"] > 0)]  # a suppressed bin is left out, not counted as 0
    bins = bins.assign(total=bins["n"] * bins["mean"]).groupby(["target", "group"])[["n", "total"]].sum()
    drawn = frame.assign(total=frame["n"] * frame["mean"]).groupby(["target", "group"])[["n", "total"]].sum()
    pd.testing.assert_frame_equal(drawn.sort_index(), bins.sort_index(), check_dtype=False, rtol=1e-9)


def test_reliability_pairs_each_bins_predicted_and_observed_mean(published):
    curves, attributes = published.curves(), _attributes(published)
    frame = fd.reliability_data(curves, model="admission_risk", attributes=attributes)
    target = "emergency_admission_next"
    assert set(frame["target"]) == {target}
    for attribute, (groups, _) in attributes.items():
        assert _groups(frame, attribute) == groups
    keys = ["model", "attribute", "group", "target", "bins", "bin"]
    rel = frame.assign(model="admission_risk", bins="reliability")
    _same_rows(rel.rename(columns={"observed": "mean"}), curves, keys, ["mean", "n"])
    predicted = rel.assign(target=f"predicted {target}").rename(columns={"predicted": "mean"}).drop(columns="n")
    _same_rows(predicted, curves, keys, ["mean"])


def test_thresholds_hold_each_groups_sweep_in_order_of_capacity(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.thresholds_data(table, model="prior_cost", attributes=attributes)
    assert set(frame["metric"]) == {"selection_rate", "unmet_need_rate"}
    for attribute, (groups, _) in attributes.items():
        assert set(_groups(frame, attribute)) == set(groups)
    keys = ["model", "analysis", "attribute", "group", "operating_point", "metric"]
    assert _same_rows(frame.assign(model="prior_cost", analysis="thresholds"), table, keys) > 0
    expected = frame["operating_point"].str.extract(r"^top_([\d.]+)pct$")[0].astype(float)
    np.testing.assert_array_equal(frame["x"].to_numpy(), expected.to_numpy())
    assert frame.groupby(["attribute", "group", "metric"])["x"].is_monotonic_increasing.all()
    assert sorted(set(frame["x"])) == [1.0, 3.0, 10.0]
    _ordered_intervals(frame)
    _formats_from_registry(frame, "thresholds")


def test_net_benefit_holds_everyones_curves_and_each_groups_gain_over_the_best_default(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.net_benefit_data(table, model="admission_risk", attributes=attributes)
    overall = frame[frame["metric"] != fd.NET_BENEFIT_GAIN]
    assert set(overall["group"]) == {"all"} and set(overall["metric"]) == {"net_benefit", "net_benefit_treat_all"}
    ops = "pt_" + overall["x"].map(lambda x: f"{x:g}")
    keys = ["model", "analysis", "attribute", "group", "operating_point", "metric"]
    _same_rows(overall.assign(model="admission_risk", analysis="net_benefit", operating_point=ops), table, keys)
    gain = frame[frame["metric"] == fd.NET_BENEFIT_GAIN]
    for attribute, (groups, _) in attributes.items():
        assert set(_groups(gain, attribute)) == set(groups)
    assert gain["ci_low"].isna().all() and gain["ci_high"].isna().all()
    rows = table[(table["model"] == "admission_risk") & (table["analysis"] == "net_benefit")]
    wide = rows.pivot_table(index=["attribute", "group", "operating_point"], columns="metric", values="value")
    at = pd.MultiIndex.from_arrays([gain["attribute"], gain["group"], "pt_" + gain["x"].map(lambda x: f"{x:g}")])
    best = np.maximum(wide["net_benefit_treat_all"], 0.0).reindex(at).to_numpy()
    np.testing.assert_allclose(gain["value"].to_numpy(), wide["net_benefit"].reindex(at).to_numpy() - best)
    for _, d in frame.groupby(["attribute", "group", "metric"]):
        assert d["x"].is_monotonic_increasing


def test_explain_ranks_features_and_keeps_missing_importance_out(published):
    table = published.table()
    frame = fd.explain_data(table, model="prior_cost", top=5)
    imp = frame[frame["metric"] == "mean_abs_shap"]
    assert imp["rank"].tolist() == [0, 1, 2, 3, 4]
    assert imp["value"].is_monotonic_decreasing and imp["value"].notna().all()
    assert "feature_3" not in set(imp["feature"])  # its importance is missing: left out, not drawn as 0
    gap = frame[frame["metric"] == "gap_contribution"]
    assert sorted(set(gap["rank"])) == [0, 1, 2, 3, 4]
    strongest = gap.assign(a=gap["value"].abs()).groupby("feature")["a"].max()
    assert strongest.sort_values(ascending=False, kind="stable").index.tolist()[0] in set(gap[gap["rank"] == 0].feature)
    assert len(set(zip(gap["attribute"], gap["group"], strict=True))) == 7  # every pair: fewer than MAX_GROUPS
    keys = ["model", "analysis", "attribute", "group", "metric", "feature"]
    _same_rows(frame.assign(model="prior_cost", analysis="explain"), table, keys)
    assert fd.explain_data(table, model="admission_risk").empty


def test_judgement_holds_need_and_cost_captured_by_every_model(published):
    table = published.table()
    frame = fd.judgement_data(table)
    assert frame["model"].tolist() == ["prior_cost", "admission_risk"] * 2
    assert frame["metric"].tolist() == ["share_of_need_captured"] * 2 + ["share_of_cost_captured"] * 2
    keys = ["model", "analysis", "group", "operating_point", "metric"]
    _same_rows(frame.assign(analysis="judgement", group="all"), table, keys)
    _ordered_intervals(frame)
    _formats_from_registry(frame, "judgement")
    one = table[~((table["analysis"] == "judgement") & (table["model"] == "admission_risk"))]
    assert fd.judgement_data(one).empty  # one model: nothing to compare


def test_label_choice_holds_every_group_missing_where_no_row(published):
    table, attributes = published.table(), _attributes(published)
    frame = fd.label_choice_data(table, attributes=attributes)
    assert set(frame["attribute"]) == {"imd_quintile"}
    assert list(dict.fromkeys(frame["model"])) == ["learner[cost_next]", "learner[need_true_next]"]
    for _, d in frame.groupby("model"):
        assert d["group"].tolist() == attributes["imd_quintile"][0]
    missing = frame[frame["group"] == "4"]
    assert missing[NUMBERS].isna().all().all()
    keys = ["model", "analysis", "attribute", "group", "metric"]
    _same_rows(frame.assign(analysis="label_choice", metric="flagged_share"), table, keys)
    _ordered_intervals(frame)
    assert set(frame["fmt"]) == {lookup("flagged_share", "label_choice").fmt} == {"percent"}


def test_no_rows_give_empty_frames(published):
    table, curves, attributes = published.table().iloc[:0], published.curves().iloc[:0], _attributes(published)
    frames = [
        fd.headline_data(table, models=["prior_cost"], operating_point=OP, attributes=attributes),
        fd.shares_data(table, model="prior_cost", operating_point=OP, attributes=attributes),
        fd.label_gap_data(table, model="prior_cost", need_targets=["need_true_next"], attributes=attributes),
        fd.need_cost_data(curves, "prior_cost", "sex", ["need_true_next"]),
        fd.reliability_data(curves, model="admission_risk", attributes=attributes),
        fd.thresholds_data(table, model="prior_cost", attributes=attributes),
        fd.net_benefit_data(table, model="prior_cost", attributes=attributes),
        fd.explain_data(table, model="prior_cost"),
        fd.judgement_data(table),
        fd.label_choice_data(table, attributes=attributes),
    ]
    assert all(f.empty for f in frames)
