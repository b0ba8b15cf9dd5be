"""The demo's pipeline: the whole product on the embedded default scenario (``phm-audit demo`` runs it).

Generates the default cohort, fits every built-in model on one half, audits them on the other half
(bias, cost-versus-need calibration, label choice, thresholds, allocation, net benefit, judgement,
explanations); :mod:`phm_audit.cli._demo` writes the report to ``reports/demo/``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from phm_audit.audit import AuditResult, AuditSpec

__all__ = ["DEMO_MODELS", "build_demo_result"]

DEMO_MODELS = (
    "actuarial_cost",
    "actuarial_avoidable_cost",
    "clinical_need",
    "emergency_admission",
    "ltc_count",
    "frailty_index",
    "prior_cost",
    "clinician_judgement",
)
#: The model the demo explains with SHAP.
EXPLAINED_MODEL = "actuarial_cost"

#: ``step(text)`` returns a context manager around one stage (``Progress.step`` prints and times it).
Step = Callable[[str], contextlib.AbstractContextManager[Any]]


def build_demo_result(
    *,
    n: int = 200_000,
    seed: int = 7,
    scenario: str = "england",
    n_boot: int = 200,
    explain: bool = True,
    step: Step | None = None,
    equity_attributes: tuple[str, ...] | None = None,
) -> tuple[AuditResult, dict[str, Any]]:
    """Everything the demo computes before it writes the report.

    Generates the cohort, fits every model of :data:`DEMO_MODELS` on one half and scores the other,
    adds the combined pathway, audits them all, retrains the cost learner on each label and, with
    ``explain``, explains the cost model with SHAP. The fitted cost model is the one explained: it
    is not fitted twice. Label choice and the explanations need nothing from the audit, so they run
    in a second thread while the audit runs (on copies of the cohort, with one OpenMP thread); the
    result is the same as running them one after the other.

    Parameters
    ----------
    n : int, default 200_000
        People to generate.
    seed : int, default 7
        Seed of the cohort, the split, the bootstrap and the explanations.
    scenario : str, default "england"
        Scenario of the cohort.
    n_boot : int, default 200
        Bootstrap replicates.
    explain : bool, default True
        Run the SHAP explanations.
    step : callable, optional
        ``step(text)`` returns a context manager around each stage (for progress messages or
        timings); default none.
    equity_attributes : tuple of str, optional
        The attributes the headline ranks first (``AuditSpec.equity_attributes``); default Core20PLUS5.

    Returns
    -------
    (result, provenance) : tuple
        The audit (before disclosure control) and the provenance items for the report.

    Examples
    --------
    >>> result, provenance = build_demo_result(n=4000, n_boot=5, explain=False)
    >>> provenance["n_generated"], len(result.models) > len(DEMO_MODELS)
    (4000, True)
    """
    from phm_audit.audit import AuditSpec, ScoredModel, audit, combined_pathway_scores
    from phm_audit.models import get_model
    from phm_audit.pipeline import score_models, split_for_audit
    from phm_audit.synth import generate

    stage: Step = step or (lambda _text: contextlib.nullcontext())
    with stage(f"generating {n:,} people ({scenario}, seed {seed})"):
        cohort = generate(scenario, n, seed=seed, n_jobs=-1)
    models = [get_model(name) for name in DEMO_MODELS]
    with stage(f"fitting {len(DEMO_MODELS)} built-in models on half the cohort and scoring the other half"):
        audited, train = split_for_audit(cohort, seed=seed)
        scored = score_models(models, audited, train=train)  # fits the built-in models in place
    by_name = {m.name: m for m in scored}
    pathway = combined_pathway_scores(
        by_name["actuarial_cost"].scores, by_name["clinician_judgement"].scores, auto_share=0.015, review_share=0.10
    )
    scored.append(ScoredModel("combined_pathway", pathway, kind="judgement"))
    spec = AuditSpec(n_boot=n_boot, seed=seed, equity_attributes=equity_attributes)
    fitted = next(m for m in models if m.name == EXPLAINED_MODEL) if explain else None
    if explain:
        from phm_audit.audit._explainers import import_shap

        import_shap()  # import shap (which warns on import) here: warning filters belong to the process, not a thread
    # label choice and the explanations do not need the audit: they run alongside it, on their own
    # copies of the people, with one OpenMP thread (the audit takes the other core)
    side = _Background(_label_choice_and_explanations, train.copy(), audited.copy(), fitted, spec, seed)
    side.start()
    with stage(f"auditing {len(scored)} models on {len(audited):,} people") as tick:
        result = audit(audited, scored, spec, progress=tick)
    what = "retraining the cost learner on each label (label choice)" + (
        f" and explaining {EXPLAINED_MODEL} with SHAP on a 5,000-person sample" if explain else ""
    )
    with stage(what + ", alongside the audit"):
        for extra in side.result():
            result = result.merge(extra)
    provenance = {
        "command": "phm-audit demo",
        "scenario": scenario,
        "seed": seed,
        "n_generated": n,
        "n_trained": len(train),
        "n_audited": len(audited),
    }
    return result, provenance


def _label_choice_and_explanations(
    train: pd.DataFrame, audited: pd.DataFrame, fitted: Any, spec: AuditSpec, seed: int
) -> list[AuditResult]:
    """The label-choice analysis and, given a fitted model, its explanations: one audit of the two analyses."""
    import dataclasses

    from threadpoolctl import threadpool_limits

    from phm_audit.audit import audit
    from phm_audit.pipeline import fit_label_scores

    # one OpenMP thread for the learners fitted here: the audit runs on the other core, and OpenMP
    # threads that outnumber the free cores spin against each other
    with threadpool_limits(limits=1, user_api="openmp"):
        given = fit_label_scores(train, audited)
        side = dataclasses.replace(spec, analyses=("label_choice", "explanations"), explain_sample_size=5000)
        return [audit(audited, [], side, label_scores=given, fitted=[fitted] if fitted is not None else ())]


class _Background:
    """Run ``func(*args)`` in a daemon thread; :meth:`result` waits and returns its value or raises its error."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self._func, self._args = func, args
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="phm-audit-demo", daemon=True)

    def _run(self) -> None:
        try:
            self._value = self._func(*self._args)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def start(self) -> None:
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
