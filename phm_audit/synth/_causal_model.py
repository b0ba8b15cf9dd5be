"""The structural causal model behind the synthetic cohort: one block of people at a time.

demographics -> true conditions and frailty -> need -> access -> recording -> utilisation and cost,
for a baseline year and an outcome year. Every step works on whole columns of a block of people,
drawn from the block's own random stream (see :mod:`phm_audit.synth._generator`, which runs the blocks).

Figures and their sources are in ``../shared/DOMAIN.md``; the ones marked [E] there are estimates
used as defaults, and so are the ones marked "estimate" here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from phm_audit.synth._schema import CONDITIONS, ETHNICITIES

__all__ = ["draw_practice_access", "generate_block", "practice_count"]

# ---------------------------------------------------------------------------------------------
# Demographics (ONS Census 2021; DOMAIN.md "Population")
_BAND_SHARES = np.array([0.21, 0.35, 0.255, 0.096, 0.064, 0.026])
_BAND_SHARES = _BAND_SHARES / _BAND_SHARES.sum()
_BAND_LO = np.array([0, 18, 45, 65, 75, 85])
_BAND_HI = np.array([18, 45, 65, 75, 85, 85])
_OLDEST_SCALE = 5.0 / math.log(2.6 / 0.9)  # 90+ is 0.9% of all, 85+ is 2.6%
_FEMALE_BY_BAND = np.array([0.49, 0.50, 0.505, 0.52, 0.55, 0.64])
_ETHNIC_SHARES = np.array([0.817, 0.093, 0.040, 0.029, 0.021])
_ETHNIC_SHARES = _ETHNIC_SHARES / _ETHNIC_SHARES.sum()
# DOMAIN.md's age gradient of digital exclusion (2% at 18-44 ... 50% at 85+) gives about 8% of
# adults offline, twice the 4% it cites from Good Things Foundation 2024; the gradient is kept and
# scaled so that 4% of adults are offline.
_DIGITAL_BY_BAND = np.array([0.0, 0.02, 0.05, 0.15, 0.30, 0.50]) * 0.46


def _imd_given_ethnicity() -> np.ndarray:
    """P(IMD quintile | ethnic group), rows White..Other, columns quintile 1..5.

    Minority groups take P(quintile 1) from DOMAIN.md and a linear decline across quintiles;
    White takes what is left so that every quintile holds 20% of people.
    """
    p1 = {"Asian": 0.30, "Black": 0.32, "Mixed": 0.28, "Other": 0.25}
    out = np.zeros((5, 5))
    for i, group in enumerate(ETHNICITIES[1:], start=1):
        d = (5 * p1[group] - 1) / 10
        out[i] = p1[group] - d * np.arange(5)
    out[0] = (0.2 - _ETHNIC_SHARES[1:] @ out[1:]) / _ETHNIC_SHARES[0]
    return out


_IMD_GIVEN_ETH = _imd_given_ethnicity()
_IMD_CUM = np.cumsum(_IMD_GIVEN_ETH, axis=1)

# ---------------------------------------------------------------------------------------------
# True conditions: prevalence by age (logit-linear between knots), then odds ratios.
# Knot values are true prevalence at the age shown, chosen so that *recorded* prevalence matches
# QOF 2019/20 (DOMAIN.md); hypertension follows OpenSAFELY (Open Heart 2023).
_AGE_KNOTS = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 105], dtype=float)
_PREV_KNOTS: dict[str, list[float]] = {
    "hypertension": [1e-4, 3e-4, 0.003, 0.012, 0.045, 0.13, 0.26, 0.42, 0.58, 0.66, 0.70],
    "diabetes": [0.002, 0.003, 0.005, 0.014, 0.04, 0.085, 0.14, 0.18, 0.19, 0.16, 0.14],
    "copd": [1e-5, 1e-5, 1e-4, 0.001, 0.005, 0.015, 0.038, 0.065, 0.085, 0.08, 0.07],
    "asthma": [0.045, 0.085, 0.075, 0.065, 0.06, 0.062, 0.066, 0.07, 0.07, 0.065, 0.06],
    "chd": [1e-5, 1e-5, 1e-4, 0.001, 0.005, 0.02, 0.05, 0.10, 0.16, 0.20, 0.20],
    "heart_failure": [1e-5, 1e-5, 1e-4, 3e-4, 0.001, 0.003, 0.008, 0.022, 0.055, 0.10, 0.12],
    "atrial_fibrillation": [1e-5, 1e-5, 1e-4, 3e-4, 0.001, 0.004, 0.016, 0.05, 0.11, 0.16, 0.17],
    "stroke_tia": [1e-5, 1e-4, 5e-4, 0.001, 0.003, 0.008, 0.02, 0.045, 0.08, 0.10, 0.10],
    "ckd": [1e-5, 1e-4, 5e-4, 0.001, 0.003, 0.01, 0.03, 0.09, 0.20, 0.30, 0.32],
    "depression": [1e-4, 0.005, 0.09, 0.13, 0.145, 0.145, 0.125, 0.105, 0.10, 0.10, 0.10],
    "smi": [1e-5, 3e-4, 0.006, 0.010, 0.012, 0.013, 0.012, 0.010, 0.008, 0.007, 0.006],
    "dementia": [1e-5, 1e-5, 1e-5, 1e-5, 1e-4, 3e-4, 0.002, 0.012, 0.06, 0.20, 0.35],
    "cancer": [1e-4, 3e-4, 0.001, 0.004, 0.01, 0.025, 0.05, 0.09, 0.13, 0.14, 0.14],
    # Four common conditions of Barnett et al.'s 40, so that multimorbidity is not undercounted
    # (estimates of their age patterns).
    "painful_condition": [1e-4, 0.002, 0.02, 0.04, 0.07, 0.11, 0.17, 0.28, 0.40, 0.46, 0.48],
    "hearing_loss": [0.002, 0.003, 0.005, 0.007, 0.012, 0.025, 0.07, 0.22, 0.42, 0.58, 0.62],
    "anxiety": [1e-4, 0.01, 0.06, 0.065, 0.06, 0.055, 0.045, 0.04, 0.035, 0.03, 0.03],
    "thyroid": [0.001, 0.002, 0.007, 0.015, 0.025, 0.04, 0.06, 0.075, 0.085, 0.09, 0.09],
}
# Calibration offsets on the logit scale (see benchmarks/calibrate_generator.py).
_OFFSETS: dict[str, float] = {
    "hypertension": 0.356,
    "diabetes": -0.396,
    "copd": -0.06,
    "asthma": -0.263,
    "chd": 0.046,
    "heart_failure": -0.014,
    "atrial_fibrillation": 0.317,
    "stroke_tia": 0.009,
    "ckd": 0.599,
    "depression": -0.192,
    "smi": -0.126,
    "dementia": -0.244,
    "cancer": -0.231,
    "painful_condition": 0.0,
    "hearing_loss": 0.0,
    "anxiety": 0.0,
    "thyroid": 0.0,
}
_LOGIT_KNOTS = {c: np.log(np.array(v) / (1 - np.array(v))) for c, v in _PREV_KNOTS.items()}
# Odds ratios, female versus male (estimates).
_OR_FEMALE = {
    "hypertension": 0.9,
    "diabetes": 0.75,
    "copd": 0.9,
    "asthma": 1.2,
    "chd": 0.5,
    "heart_failure": 0.7,
    "atrial_fibrillation": 0.7,
    "stroke_tia": 0.9,
    "ckd": 1.2,
    "depression": 1.8,
    "smi": 0.9,
    "dementia": 1.3,
    "cancer": 1.0,
    "painful_condition": 1.4,
    "hearing_loss": 0.8,
    "anxiety": 1.8,
    "thyroid": 4.0,
}
# Odds ratios versus White after age, sex and deprivation. Diabetes from DOMAIN.md; the others
# are estimates (hypertension higher in Black people, CHD in Asian people, COPD lower in minority
# groups, who smoke less).
_OR_ETHNICITY: dict[str, dict[str, float]] = {
    "diabetes": {"Asian": 3.0, "Black": 2.2, "Mixed": 1.3, "Other": 1.5},
    "hypertension": {"Black": 1.4},
    "chd": {"Asian": 1.4},
    "copd": {"Asian": 0.5, "Black": 0.4, "Mixed": 0.8, "Other": 0.6},
}
# Extra odds ratio per quintile step towards deprivation, beyond the earlier onset (estimates
# chosen so the crude QOF gradients of DOMAIN.md are reached or exceeded).
_OR_DEPRIVATION_STEP = {
    "copd": 1.12,
    "diabetes": 1.05,
    "smi": 1.13,
    "depression": 1.12,
    "asthma": 1.02,
    "painful_condition": 1.08,
    "anxiety": 1.10,
}
_MORBIDITY_LOADING = 0.9  # shared latent morbidity: conditions cluster in the same people

# Recording: probability a true condition is in the GP record when access is equal (estimates).
_RECORDING = {
    "hypertension": 0.78,
    "diabetes": 0.92,
    "copd": 0.82,
    "asthma": 0.88,
    "chd": 0.92,
    "heart_failure": 0.85,
    "atrial_fibrillation": 0.82,
    "stroke_tia": 0.92,
    "ckd": 0.62,
    "depression": 0.72,
    "smi": 0.92,
    "dementia": 0.66,
    "cancer": 0.96,
    "painful_condition": 0.75,
    "hearing_loss": 0.6,
    "anxiety": 0.65,
    "thyroid": 0.95,
}
_RECORDING_OTHER_DEFICITS = 0.8

# Frailty (eFI, Clegg 2016): 36 deficits, 9 of them tied to modelled conditions (respiratory
# disease counts once for COPD or asthma; arthritis is the painful condition).
_FRAILTY_LINKED = (
    "hypertension",
    "diabetes",
    "atrial_fibrillation",
    "ckd",
    "stroke_tia",
    "heart_failure",
    "chd",
    "dementia",
    "painful_condition",
    "hearing_loss",
    "thyroid",
)
_N_OTHER_DEFICITS = 36 - len(_FRAILTY_LINKED) - 1

# Need: the yearly cost of the care a person needs, with equal access (GBP, estimates). Two parts:
# routine care everyone needs (little spread), and care for illness, which grows with conditions
# and frailty and is spread widely by lasting severity and by each year's acute illness.
_AGE_KNOTS_COST = np.array([0, 5, 18, 45, 65, 75, 85, 105], dtype=float)
_ROUTINE_COST = np.array([320, 190, 220, 280, 360, 420, 510, 550], dtype=float)
_ILLNESS_AGE_COST = np.array([120, 60, 650, 380, 260, 560, 1400, 1600], dtype=float)
_ROUTINE_SD = 0.35
_CONDITION_COST = {
    "hypertension": 100,
    "diabetes": 650,
    "copd": 1100,
    "asthma": 150,
    "chd": 1000,
    "heart_failure": 3200,
    "atrial_fibrillation": 800,
    "stroke_tia": 1300,
    "ckd": 900,
    "depression": 250,
    "smi": 1000,
    "dementia": 3000,
    "cancer": 1600,
    "painful_condition": 150,
    "hearing_loss": 60,
    "anxiety": 150,
    "thyroid": 80,
}
_FRAILTY_COEF = 4.0
_ILLNESS_SCALE = 0.40

# Care and unit costs (NHS reference costs, rounded; estimates).
_GP_COST, _OP_COST, _AE_COST = 39.0, 130.0, 250.0
_EA_COST, _EL_COST = 2900.0, 1500.0
# Admission costs are spread as widely as their mean (exponential): case mix varies a great deal.
_EA_SHAPE, _EL_SHAPE = 1.0, 1.0
# How each part of need is met: routine care by GP, outpatients and A&E; care for illness also by
# elective and emergency admissions. Shares of the planned and of the emergency part.
_ROUTINE_PLANNED = {"gp": 0.75, "op": 0.25}
_ROUTINE_PLANNED_SHARE = 0.85  # routine care is mostly planned; the rest is A&E
_ILLNESS_PLANNED = {"gp": 0.25, "op": 0.45, "el": 0.30}
_ILLNESS_EMERGENCY = {"ae": 0.15, "ea": 0.85}
_ACSC_BASE, _ACSC_LTC = 0.12, 0.28
_ACSC_CONDITIONS = (
    "copd",
    "asthma",
    "diabetes",
    "heart_failure",
    "chd",
    "atrial_fibrillation",
    "hypertension",
)
_SPECIALIST_HALF = 6000.0  # need at which half of people need specialist care


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    return np.interp(x, xp, fp).astype(np.float64, copy=False)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=key)


def draw_practice_access(knobs: Mapping[str, float], n_practices: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(_seed_sequence(seed, 0))
    sd = knobs["practice_access_sd"]
    return np.exp(sd * rng.standard_normal(n_practices) - sd * sd / 2)


def practice_count(n: int, knobs: Mapping[str, float]) -> int:
    per_quintile = max(1, round(n / knobs["practice_list_size"] / 5))
    return 5 * per_quintile


def _utilisation(
    rng: np.random.Generator,
    need: tuple[np.ndarray, np.ndarray],
    access: np.ndarray,
    emergency: tuple[np.ndarray, np.ndarray],
    planned_share: float,
    acsc_p: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw one year's care from need; expected total cost equals need where access is equal."""
    routine, illness = need
    r_planned = routine * _ROUTINE_PLANNED_SHARE * access
    i_planned = illness * planned_share * access
    r_urgent = routine * (1.0 - _ROUTINE_PLANNED_SHARE) * emergency[0]
    i_urgent = illness * (1.0 - planned_share) * emergency[1]
    gp = rng.poisson((r_planned * _ROUTINE_PLANNED["gp"] + i_planned * _ILLNESS_PLANNED["gp"]) / _GP_COST)
    op = rng.poisson((r_planned * _ROUTINE_PLANNED["op"] + i_planned * _ILLNESS_PLANNED["op"]) / _OP_COST)
    el = rng.poisson(i_planned * _ILLNESS_PLANNED["el"] / _EL_COST)
    ae = rng.poisson((r_urgent + i_urgent * _ILLNESS_EMERGENCY["ae"]) / _AE_COST)
    ea = rng.poisson(i_urgent * _ILLNESS_EMERGENCY["ea"] / _EA_COST)
    ea_acsc = rng.binomial(ea, acsc_p)
    el_cost = rng.gamma(_EL_SHAPE * el, _EL_COST / _EL_SHAPE)
    acsc_cost = rng.gamma(_EA_SHAPE * ea_acsc, _EA_COST / _EA_SHAPE)
    other_ea_cost = rng.gamma(_EA_SHAPE * (ea - ea_acsc), _EA_COST / _EA_SHAPE)
    planned_cost = gp * _GP_COST + op * _OP_COST + el_cost
    emergency_cost = ae * _AE_COST + acsc_cost + other_ea_cost
    return {
        "gp": gp,
        "op": op,
        "el": el,
        "ae": ae,
        "ea": ea,
        "planned_cost": planned_cost,
        "emergency_cost": emergency_cost,
        "avoidable_cost": ae * _AE_COST + acsc_cost,
    }


def _emergency_multiplier(access: np.ndarray, planned_share: float, substitution: float) -> np.ndarray:
    """Emergency care at equal need: a share ``substitution`` of missed planned care comes back."""
    if planned_share >= 1.0:
        return np.ones_like(access)
    return np.maximum(1.0 + substitution * planned_share * (1.0 - access) / (1.0 - planned_share), 0.0)


def _lognormal(rng: np.random.Generator, sd: float, size: int) -> np.ndarray:
    """Multipliers with mean 1 and log-scale spread ``sd``."""
    return np.exp(sd * rng.standard_normal(size) - sd * sd / 2)


def _need(
    rng: np.random.Generator,
    age: np.ndarray,
    has: np.ndarray,
    frailty: np.ndarray,
    severity: np.ndarray,
    shock_sd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One year's need, as routine care and care for illness (GBP at equal access)."""
    a = age.astype(np.float64)
    routine = _interp(a, _AGE_KNOTS_COST, _ROUTINE_COST) * _lognormal(rng, _ROUTINE_SD, a.size)
    cost = np.array([_CONDITION_COST[c] for c in CONDITIONS], dtype=np.float64)
    illness = (_interp(a, _AGE_KNOTS_COST, _ILLNESS_AGE_COST) + has @ cost) * np.exp(_FRAILTY_COEF * frailty)
    return routine, _ILLNESS_SCALE * illness * severity * _lognormal(rng, shock_sd, a.size)


def generate_block(
    knobs: Mapping[str, float],
    seed: int,
    index: int,
    start: int,
    size: int,
    practice_access: np.ndarray,
) -> dict[str, np.ndarray]:
    """Generate ``size`` people of block ``index`` (ids start + 1 ...)."""
    rng = np.random.default_rng(_seed_sequence(seed, 1, index))
    # --- demographics
    band = np.searchsorted(np.cumsum(_BAND_SHARES)[:-1], rng.random(size), side="right")
    u = rng.random(size)
    age = np.where(
        band < 5,
        _BAND_LO[band] + np.floor(u * (_BAND_HI[band] - _BAND_LO[band])),
        np.minimum(85 + np.floor(-_OLDEST_SCALE * np.log1p(-u)), 104),
    ).astype(np.int16)
    female = rng.random(size) < _FEMALE_BY_BAND[band]
    eth = np.searchsorted(np.cumsum(_ETHNIC_SHARES)[:-1], rng.random(size), side="right")
    imd_idx = (rng.random(size)[:, None] > _IMD_CUM[eth][:, :4]).sum(axis=1)
    imd = (imd_idx + 1).astype(np.int8)
    p_digital = _DIGITAL_BY_BAND[band] * np.where(imd == 1, knobs["digital_exclusion_imd_q1_multiplier"], 1.0)
    excluded = rng.random(size) < np.minimum(p_digital, 1.0)
    n_practices = practice_access.size
    practice = imd_idx + 5 * rng.integers(0, n_practices // 5, size)

    # --- access (planned care at equal need), and what follows from it
    f_eth = np.array(
        [
            1.0,
            knobs["planned_access.asian"],
            knobs["planned_access.black"],
            knobs["planned_access.mixed"],
            knobs["planned_access.other"],
        ]
    )
    f_imd = np.array([knobs["planned_access.imd_q1"], knobs["planned_access.imd_q2"], 1.0, 1.0, 1.0])
    access = (
        f_eth[eth]
        * f_imd[imd_idx]
        * np.where(excluded, knobs["planned_access.digitally_excluded"], 1.0)
        * practice_access[practice]
    )
    ps = knobs["planned_share"]
    emergency = (
        _emergency_multiplier(access, _ROUTINE_PLANNED_SHARE, knobs["emergency_substitution"]),
        _emergency_multiplier(access, ps, knobs["emergency_substitution"]),
    )
    recording = access ** knobs["recording_access_elasticity"]

    # --- true conditions
    age_eff = age + knobs["deprivation_onset_shift_years"] * (3 - imd) / 4.0
    z = rng.standard_normal(size)
    n_cond = len(CONDITIONS)
    prob = np.empty((size, n_cond))
    for j, cond in enumerate(CONDITIONS):  # a loop over 13 conditions, not over people
        logit = _interp(age_eff, _AGE_KNOTS, _LOGIT_KNOTS[cond]) + _OFFSETS[cond] + _MORBIDITY_LOADING * z
        logit += np.where(female, math.log(_OR_FEMALE[cond]), 0.0)
        ors = _OR_ETHNICITY.get(cond)
        if ors:
            logit += np.log(np.array([1.0] + [ors.get(g, 1.0) for g in ETHNICITIES[1:]]))[eth]
        if cond in _OR_DEPRIVATION_STEP:
            logit += math.log(_OR_DEPRIVATION_STEP[cond]) * (3 - imd)
        prob[:, j] = _expit(logit)
    has = rng.random((size, n_cond)) < prob

    # --- frailty
    linked = [CONDITIONS.index(c) for c in _FRAILTY_LINKED]
    resp = [CONDITIONS.index("copd"), CONDITIONS.index("asthma")]
    p_other = _expit(-4.7 + 0.05 * (age_eff - 40) + 0.4 * z)
    other = rng.binomial(_N_OTHER_DEFICITS, p_other)
    frailty = (has[:, linked].sum(axis=1) + has[:, resp].any(axis=1) + other) / 36.0

    # --- recording at baseline
    rec_p = np.minimum(np.array([_RECORDING[c] for c in CONDITIONS])[None, :] * recording[:, None], 1.0)
    rec = has & (rng.random((size, n_cond)) < rec_p)
    other_rec = rng.binomial(other, np.minimum(_RECORDING_OTHER_DEFICITS * recording, 1.0))
    frailty_rec = rec[:, linked].sum(axis=1) + rec[:, resp].any(axis=1) + other_rec

    # --- need, baseline year
    sd_s, sd_a = knobs["severity_sd"], knobs["annual_shock_sd"]
    severity = np.exp(sd_s * (0.5 * z + math.sqrt(0.75) * rng.standard_normal(size)) - sd_s * sd_s / 2)
    need0 = _need(rng, age, has, frailty, severity, sd_a)
    acsc_cols = [CONDITIONS.index(c) for c in _ACSC_CONDITIONS]
    acsc_p0 = np.where(has[:, acsc_cols].any(axis=1), _ACSC_BASE + _ACSC_LTC, _ACSC_BASE)
    year0 = _utilisation(rng, need0, access, emergency, ps, acsc_p0)

    # --- outcome year: onsets, frailty, recording catch-up, need and care
    onset = ~has & (rng.random((size, n_cond)) < knobs["condition_onset_rate"] * prob)
    has1 = has | onset
    other1 = other + rng.binomial(_N_OTHER_DEFICITS - other, 0.01 + 0.5 * p_other * knobs["condition_onset_rate"])
    frailty1 = (has1[:, linked].sum(axis=1) + has1[:, resp].any(axis=1) + other1) / 36.0
    catch = has1 & ~rec & (rng.random((size, n_cond)) < knobs["recording_catch_up"] * rec_p)
    rec1 = rec | catch
    need1 = _need(rng, age + 1, has1, frailty1, severity, sd_a)
    acsc_p1 = np.where(has1[:, acsc_cols].any(axis=1), _ACSC_BASE + _ACSC_LTC, _ACSC_BASE)
    year1 = _utilisation(rng, need1, access, emergency, ps, acsc_p1)
    specialist = rng.random(size) < need1[1] / (need1[1] + _SPECIALIST_HALF)

    i16 = np.iinfo(np.int16).max
    out: dict[str, np.ndarray] = {
        "patient_id": np.arange(start + 1, start + size + 1, dtype=np.int64),
        "practice_id": (practice + 1).astype(np.int32),
        "ethnicity": eth.astype(np.int8),
        "imd_quintile": imd,
        "sex": np.where(female, 0, 1).astype(np.int8),
        "age_band": band.astype(np.int8),
        "digitally_excluded": excluded,
        "age": age,
    }
    for j, cond in enumerate(CONDITIONS):
        out[f"rec_{cond}"] = rec[:, j]
    out["n_ltc_recorded"] = rec.sum(axis=1).astype(np.int8)
    out["frailty_deficits_recorded"] = frailty_rec.astype(np.int8)
    out["gp_contacts"] = np.minimum(year0["gp"], i16).astype(np.int16)
    out["outpatient_attendances"] = np.minimum(year0["op"], i16).astype(np.int16)
    out["ae_attendances"] = np.minimum(year0["ae"], i16).astype(np.int16)
    out["emergency_admissions"] = np.minimum(year0["ea"], i16).astype(np.int16)
    out["elective_admissions"] = np.minimum(year0["el"], i16).astype(np.int16)
    out["cost_prior"] = (year0["planned_cost"] + year0["emergency_cost"]).astype(np.float32)
    out["cost_next"] = (year1["planned_cost"] + year1["emergency_cost"]).astype(np.float32)
    out["avoidable_cost_next"] = year1["avoidable_cost"].astype(np.float32)
    out["planned_cost_next"] = year1["planned_cost"].astype(np.float32)
    out["emergency_cost_next"] = year1["emergency_cost"].astype(np.float32)
    out["emergency_admission_next"] = year1["ea"] > 0
    out["n_conditions_next"] = rec1.sum(axis=1).astype(np.int8)
    for j, cond in enumerate(CONDITIONS):
        out[f"has_{cond}"] = has[:, j]
    out["n_conditions_true"] = has.sum(axis=1).astype(np.int8)
    out["frailty_true"] = frailty.astype(np.float32)
    out["need_true"] = (need0[0] + need0[1]).astype(np.float32)
    out["need_true_next"] = (need1[0] + need1[1]).astype(np.float32)
    out["need_planned_true_next"] = (need1[0] * _ROUTINE_PLANNED_SHARE + need1[1] * ps).astype(np.float32)
    out["n_conditions_true_next"] = has1.sum(axis=1).astype(np.int8)
    out["access_planned"] = access.astype(np.float32)
    out["access_emergency"] = emergency[1].astype(np.float32)
    out["recording_multiplier"] = recording.astype(np.float32)
    out["specialist_need_next"] = specialist
    return out
