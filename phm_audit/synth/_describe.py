"""Key figures of a cohort beside the targets of DOMAIN.md, with the tolerances tests use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from phm_audit.exceptions import PhmInputError, closest

__all__ = ["TARGETS", "Target", "describe"]


@dataclass(frozen=True)
class Target:
    """A published (or estimated) figure the generator should reproduce, with its tolerance."""

    section: str
    metric: str
    target: float
    low: float
    high: float
    source: str
    compute: Callable[[pd.DataFrame], float]


def _share(mask: pd.Series | np.ndarray) -> float:
    return float(np.mean(mask))


def _share_of(col: str, value: object) -> Callable[[pd.DataFrame], float]:
    def compute(df: pd.DataFrame) -> float:
        return _share(np.asarray(df[col]) == value)

    return compute


def _rate_in(df: pd.DataFrame, col: str, mask: pd.Series | np.ndarray) -> float:
    m = np.asarray(mask)
    return float(np.mean(np.asarray(df[col])[m])) if m.any() else float("nan")


def _n_rec(df: pd.DataFrame) -> np.ndarray:
    return np.asarray(df["n_ltc_recorded"])


def _top_share(x: np.ndarray, q: float) -> float:
    x = np.sort(np.asarray(x, dtype=np.float64))[::-1]
    k = max(1, round(q * x.size))
    return float(x[:k].sum() / x.sum())


def _multimorbid_age(df: pd.DataFrame, quintile: int, level: float = 0.3) -> float:
    """First age (years) at which the share with >= 2 recorded conditions reaches ``level``."""
    sub = df[np.asarray(df["imd_quintile"]) == quintile]
    ages = np.asarray(sub["age"])
    mm = _n_rec(sub) >= 2
    counts = np.bincount(ages, minlength=105)
    hits = np.bincount(ages, weights=mm, minlength=105)
    # smooth over five-year windows so one noisy year does not decide
    kernel = np.ones(5)
    rate = np.convolve(hits, kernel, "same") / np.maximum(np.convolve(counts, kernel, "same"), 1)
    above = np.nonzero(rate >= level)[0]
    return float(above[0]) if above.size else float("nan")


def _physical_mental(df: pd.DataFrame) -> np.ndarray:
    mental = np.asarray(df["rec_depression"] | df["rec_anxiety"] | df["rec_smi"] | df["rec_dementia"])
    physical = _n_rec(df) - mental.astype(int) > 0
    return mental & physical


def _qof(cond: str, target: float, adult_age: int | None = None) -> Target:
    def compute(df: pd.DataFrame) -> float:
        mask = np.ones(len(df), bool) if adult_age is None else np.asarray(df["age"]) >= adult_age
        return _rate_in(df, f"rec_{cond}", mask)

    who = "" if adult_age is None else f", age {adult_age}+"
    return Target(
        "conditions",
        f"recorded {cond}{who}",
        target,
        target * 0.85,
        target * 1.15,
        "QOF 2019/20 (DOMAIN.md)",
        compute,
    )


def _ea_by_band(band: str, target: float) -> Target:
    return Target(
        "utilisation",
        f"P(emergency admission) {band}",
        target,
        target * 0.75,
        target * 1.25,
        "Health Foundation 2019; QAdmissions (DOMAIN.md [E])",
        lambda df: _share(np.asarray(df["emergency_admissions"])[np.asarray(df["age_band"] == band)] > 0),
    )


def _ratio_q1_q5(col: str, positive: bool = False) -> Callable[[pd.DataFrame], float]:
    def compute(df: pd.DataFrame) -> float:
        x = np.asarray(df[col], dtype=np.float64)
        if positive:
            x = (x > 0).astype(np.float64)
        q = np.asarray(df["imd_quintile"])
        return float(np.mean(x[q == 1]) / np.mean(x[q == 5]))

    return compute


def _secondary_zero(df: pd.DataFrame) -> float:
    total = (
        np.asarray(df["outpatient_attendances"])
        + np.asarray(df["ae_attendances"])
        + np.asarray(df["emergency_admissions"])
        + np.asarray(df["elective_admissions"])
    )
    return _share(total == 0)


def _imd1_given(group: str, target: float) -> Target:
    return Target(
        "population",
        f"P(IMD quintile 1 | {group})",
        target,
        target - 0.03,
        target + 0.03,
        "CRED 2021 from IMD 2019 (DOMAIN.md [E])",
        lambda df: _share(np.asarray(df["imd_quintile"])[np.asarray(df["ethnicity"] == group)] == 1),
    )


TARGETS: tuple[Target, ...] = (
    Target(
        "population",
        "female share",
        0.510,
        0.495,
        0.525,
        "ONS Census 2021",
        lambda df: _share(df["sex"] == "Female"),
    ),
    Target(
        "population",
        "age 65+",
        0.186,
        0.176,
        0.196,
        "ONS Census 2021",
        lambda df: _share(np.asarray(df["age"]) >= 65),
    ),
    Target(
        "population",
        "age 90+",
        0.009,
        0.006,
        0.012,
        "ONS Census 2021",
        lambda df: _share(np.asarray(df["age"]) >= 90),
    ),
    Target(
        "population",
        "age under 15",
        0.174,
        0.160,
        0.190,
        "ONS Census 2021",
        lambda df: _share(np.asarray(df["age"]) < 15),
    ),
    *(
        Target(
            "population",
            f"ethnicity {g}",
            t,
            t * 0.93 - 0.002,
            t * 1.07 + 0.002,
            "ONS Census 2021 TS021",
            _share_of("ethnicity", g),
        )
        for g, t in (
            ("White", 0.817),
            ("Asian", 0.093),
            ("Black", 0.040),
            ("Mixed", 0.029),
            ("Other", 0.021),
        )
    ),
    *(
        Target(
            "population",
            f"IMD quintile {q}",
            0.2,
            0.19,
            0.21,
            "IMD 2019",
            _share_of("imd_quintile", q),
        )
        for q in range(1, 6)
    ),
    _imd1_given("White", 0.179),
    _imd1_given("Asian", 0.30),
    _imd1_given("Black", 0.32),
    _imd1_given("Mixed", 0.28),
    _imd1_given("Other", 0.25),
    Target(
        "population",
        "digitally excluded, adults",
        0.04,
        0.03,
        0.06,
        "Good Things Foundation 2024",
        lambda df: _rate_in(df, "digitally_excluded", np.asarray(df["age"]) >= 18),
    ),
    _qof("hypertension", 0.141),
    _qof("depression", 0.116, adult_age=18),
    _qof("diabetes", 0.071, adult_age=17),
    _qof("asthma", 0.065),
    _qof("ckd", 0.041),
    _qof("cancer", 0.031),
    _qof("chd", 0.031),
    _qof("atrial_fibrillation", 0.021),
    _qof("copd", 0.019),
    _qof("stroke_tia", 0.018),
    _qof("smi", 0.0093),
    _qof("heart_failure", 0.0089),
    _qof("dementia", 0.0078),
    Target(
        "multimorbidity",
        ">= 1 recorded condition",
        0.422,
        0.33,
        0.48,
        "Barnett 2012 (40 conditions; 17 here)",
        lambda df: _share(_n_rec(df) >= 1),
    ),
    Target(
        "multimorbidity",
        ">= 2 recorded conditions",
        0.232,
        0.19,
        0.27,
        "Barnett 2012",
        lambda df: _share(_n_rec(df) >= 2),
    ),
    # Barnett and McLean counted 40 conditions; the generator models 17, so old-age multimorbidity
    # runs a little under their figures and the lower tolerance allows for it.
    Target(
        "multimorbidity",
        ">= 2 conditions, age 85+",
        0.815,
        0.66,
        0.90,
        "Barnett 2012 (40 conditions; 17 here)",
        lambda df: _share(_n_rec(df)[np.asarray(df["age"]) >= 85] >= 2),
    ),
    Target(
        "multimorbidity",
        ">= 2 conditions, age 25-34",
        0.081,
        0.04,
        0.12,
        "McLean 2014",
        lambda df: _share(_n_rec(df)[(np.asarray(df["age"]) >= 25) & (np.asarray(df["age"]) < 35)] >= 2),
    ),
    Target(
        "multimorbidity",
        ">= 2 conditions, age 75+",
        0.761,
        0.60,
        0.86,
        "McLean 2014 (40 conditions; 17 here)",
        lambda df: _share(_n_rec(df)[np.asarray(df["age"]) >= 75] >= 2),
    ),
    Target(
        "multimorbidity",
        "years earlier multimorbidity (30%) in IMD 1 than 5",
        12.5,
        9.0,
        16.0,
        "Barnett 2012",
        lambda df: _multimorbid_age(df, 5) - _multimorbid_age(df, 1),
    ),
    Target(
        "multimorbidity",
        "physical + mental multimorbidity, IMD 1 / IMD 5",
        11.0 / 5.9,
        1.4,
        2.4,
        "Barnett 2012",
        lambda df: (
            _share(_physical_mental(df)[np.asarray(df["imd_quintile"]) == 1])
            / _share(_physical_mental(df)[np.asarray(df["imd_quintile"]) == 5])
        ),
    ),
    _ea_by_band("18-44", 0.04),
    _ea_by_band("45-64", 0.06),
    _ea_by_band("65-74", 0.12),
    _ea_by_band("75-84", 0.20),
    _ea_by_band("85+", 0.35),
    Target(
        "utilisation",
        "emergency admissions per 1,000 a year",
        108.0,
        85.0,
        130.0,
        "Health Foundation 2019",
        lambda df: 1000.0 * float(np.mean(np.asarray(df["emergency_admissions"]))),
    ),
    Target(
        "utilisation",
        "P(emergency admission), IMD 1 / IMD 5",
        1.4,
        1.2,
        1.8,
        "DOMAIN.md [E]; Asaria 2016",
        _ratio_q1_q5("emergency_admissions", positive=True),
    ),
    Target(
        "cost",
        "mean cost a year (GBP)",
        1025.0,
        950.0,
        1100.0,
        "DOMAIN.md [E]",
        lambda df: float(np.mean(np.asarray(df["cost_prior"], dtype=np.float64))),
    ),
    Target(
        "cost",
        "share of cost, top 1%",
        0.30,
        0.25,
        0.36,
        "IFS 2016; Health Foundation 2019",
        lambda df: _top_share(np.asarray(df["cost_prior"]), 0.01),
    ),
    Target(
        "cost",
        "share of cost, top 5%",
        0.50,
        0.44,
        0.58,
        "Health Foundation 2019",
        lambda df: _top_share(np.asarray(df["cost_prior"]), 0.05),
    ),
    Target(
        "cost",
        "no secondary-care use in a year",
        0.35,
        0.30,
        0.40,
        "DOMAIN.md [E]",
        _secondary_zero,
    ),
)


def describe(cohort: pd.DataFrame) -> pd.DataFrame:
    """Compute a cohort's key figures and set them beside the DOMAIN.md targets.

    Parameters
    ----------
    cohort : pandas.DataFrame
        A cohort with the generator's columns (see the data dictionary).

    Returns
    -------
    pandas.DataFrame
        Columns ``section, metric, value, target, low, high, within, source``; ``within`` tells
        whether the value lies in the tolerance ``[low, high]``.

    Raises
    ------
    PhmInputError
        If the cohort lacks a column the figures need.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> table = describe(generate(n=20_000, seed=1))
    >>> list(table.columns)[:3]
    ['section', 'metric', 'value']
    """
    needed = [
        "sex",
        "age",
        "age_band",
        "ethnicity",
        "imd_quintile",
        "digitally_excluded",
        "n_ltc_recorded",
        "emergency_admissions",
        "cost_prior",
        "outpatient_attendances",
        "ae_attendances",
        "elective_admissions",
        "rec_depression",
        "rec_anxiety",
        "rec_smi",
        "rec_dementia",
    ]
    missing = [c for c in needed if c not in cohort.columns]
    if missing:
        hint = closest(missing[0], cohort.columns)
        raise PhmInputError(
            f"cannot describe this cohort: column '{missing[0]}' is missing{hint} "
            f"({len(missing)} missing in all); describe needs a cohort made by 'phm-audit generate'"
        )
    rows = []
    for t in TARGETS:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = t.compute(cohort)
        rows.append(
            {
                "section": t.section,
                "metric": t.metric,
                "value": value,
                "target": t.target,
                "low": t.low,
                "high": t.high,
                "within": bool(t.low <= value <= t.high),
                "source": t.source,
            }
        )
    return pd.DataFrame(rows)
