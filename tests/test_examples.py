"""The teaching demos in examples/ run end to end on a small cohort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


def test_the_four_demos_exist():
    assert {p.name for p in EXAMPLES} >= {
        "plot_label_choice.py",
        "plot_referral_thresholds.py",
        "plot_actuarial_vs_clinical.py",
        "plot_audit_your_model.py",
    }


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    text = script.read_text(encoding="utf-8")
    assert text.startswith("# ---\n# jupyter:") and "# %% [markdown]" in text  # opens as a notebook
    env = {**os.environ, "PHM_AUDIT_EXAMPLE_N": "20000", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
