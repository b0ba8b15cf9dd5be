"""The cohort's columns: name, role, dtype and meaning, in one table.

This table is the single source of truth for the cohort. The data dictionary
(``synthetic_data/DATA_DICTIONARY.md``) is rendered from it, readers use it to restore dtypes
after a CSV round trip, and the audit uses the roles to keep ground truth away from models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

__all__ = [
    "AGE_BANDS",
    "COLUMNS",
    "CONDITIONS",
    "CONDITION_LABELS",
    "ETHNICITIES",
    "ROLES",
    "SCHEMA_VERSION",
    "SEXES",
    "Column",
    "column_roles",
    "columns_with_role",
    "data_dictionary_markdown",
]

SCHEMA_VERSION = "1.0"

Role = Literal["id", "protected", "feature", "label", "truth"]
ROLES: tuple[Role, ...] = ("id", "protected", "feature", "label", "truth")

ETHNICITIES = ("White", "Asian", "Black", "Mixed", "Other")
SEXES = ("Female", "Male")
AGE_BANDS = ("0-17", "18-44", "45-64", "65-74", "75-84", "85+")

#: Long-term conditions the generator models, with the words used in reports.
CONDITION_LABELS: dict[str, str] = {
    "hypertension": "hypertension",
    "diabetes": "diabetes",
    "copd": "COPD",
    "asthma": "asthma",
    "chd": "coronary heart disease",
    "heart_failure": "heart failure",
    "atrial_fibrillation": "atrial fibrillation",
    "stroke_tia": "stroke or TIA",
    "ckd": "chronic kidney disease (stages 3-5)",
    "depression": "depression",
    "smi": "serious mental illness",
    "dementia": "dementia",
    "cancer": "cancer",
    "painful_condition": "a chronic painful condition (arthritis, back pain)",
    "hearing_loss": "hearing loss",
    "anxiety": "anxiety",
    "thyroid": "thyroid disease",
}
CONDITIONS: tuple[str, ...] = tuple(CONDITION_LABELS)


@dataclass(frozen=True)
class Column:
    """One column of the cohort.

    Parameters
    ----------
    name : str
        Column name.
    role : {"id", "protected", "feature", "label", "truth"}
        What the column is for; ``truth`` columns are never model inputs.
    dtype : str
        The pandas dtype the generator writes (``category`` columns list their categories).
    description : str
        What the column means, in words for the data dictionary.
    unit : str
        Unit or coding.
    """

    name: str
    role: Role
    dtype: str
    description: str
    unit: str = ""


def _build_columns() -> tuple[Column, ...]:
    cols: list[Column] = [
        Column(
            "patient_id",
            "id",
            "int64",
            "Pseudonymous person identifier, unique in a cohort.",
            "integer",
        ),
        Column("practice_id", "id", "int32", "GP practice the person is registered with.", "integer"),
        Column(
            "ethnicity",
            "protected",
            "category",
            "Ethnic group, ONS 2021 high-level categories.",
            " / ".join(ETHNICITIES),
        ),
        Column(
            "imd_quintile",
            "protected",
            "int8",
            "Index of Multiple Deprivation 2019 quintile of the person's area.",
            "1 = most deprived, 5 = least",
        ),
        Column("sex", "protected", "category", "Sex as registered.", " / ".join(SEXES)),
        Column(
            "age_band",
            "protected",
            "category",
            "Age band at the start of the baseline year.",
            ", ".join(AGE_BANDS),
        ),
        Column(
            "digitally_excluded",
            "protected",
            "bool",
            "Does not use the internet (cannot book or consult online).",
            "true / false",
        ),
        Column(
            "age",
            "feature",
            "int16",
            "Age in whole years at the start of the baseline year.",
            "years",
        ),
    ]
    for cond, label in CONDITION_LABELS.items():
        cols.append(
            Column(
                f"rec_{cond}",
                "feature",
                "bool",
                f"Recorded diagnosis of {label} in the GP record at baseline.",
                "true / false",
            )
        )
    cols += [
        Column(
            "n_ltc_recorded",
            "feature",
            "int8",
            "Number of the modelled long-term conditions recorded at baseline.",
            "count",
        ),
        Column(
            "frailty_deficits_recorded",
            "feature",
            "int8",
            "Recorded deficits of the 36 in an electronic-frailty-index-like count (eFI = count / 36).",
            "count, 0-36",
        ),
        Column("gp_contacts", "feature", "int16", "GP practice contacts in the baseline year.", "count"),
        Column(
            "outpatient_attendances",
            "feature",
            "int16",
            "Outpatient attendances in the baseline year.",
            "count",
        ),
        Column("ae_attendances", "feature", "int16", "A&E attendances in the baseline year.", "count"),
        Column(
            "emergency_admissions",
            "feature",
            "int16",
            "Emergency hospital admissions in the baseline year.",
            "count",
        ),
        Column(
            "elective_admissions",
            "feature",
            "int16",
            "Elective (planned) admissions in the baseline year.",
            "count",
        ),
        Column(
            "cost_prior",
            "feature",
            "float32",
            "Cost of GP and hospital care in the baseline year.",
            "GBP",
        ),
        Column(
            "cost_next",
            "label",
            "float32",
            "Cost of GP and hospital care in the outcome year.",
            "GBP",
        ),
        Column(
            "avoidable_cost_next",
            "label",
            "float32",
            "Outcome-year cost of A&E attendances and ambulatory-care-sensitive emergency admissions.",
            "GBP",
        ),
        Column(
            "planned_cost_next",
            "label",
            "float32",
            "Outcome-year cost of planned care: GP contacts, outpatient attendances, elective admissions.",
            "GBP",
        ),
        Column(
            "emergency_cost_next",
            "label",
            "float32",
            "Outcome-year cost of emergency care: A&E attendances and emergency admissions.",
            "GBP",
        ),
        Column(
            "emergency_admission_next",
            "label",
            "bool",
            "At least one emergency admission in the outcome year.",
            "true / false",
        ),
        Column(
            "n_conditions_next",
            "label",
            "int8",
            "Recorded active chronic conditions at the end of the outcome year "
            "(the health measure of Obermeyer et al.).",
            "count",
        ),
    ]
    for cond, label in CONDITION_LABELS.items():
        cols.append(
            Column(
                f"has_{cond}",
                "truth",
                "bool",
                f"Ground truth: the person has {label} at baseline.",
                "true / false",
            )
        )
    cols += [
        Column(
            "n_conditions_true",
            "truth",
            "int8",
            "Ground truth: number of modelled conditions the person has at baseline.",
            "count",
        ),
        Column(
            "frailty_true",
            "truth",
            "float32",
            "Ground truth: eFI-like frailty index at baseline (deficits / 36).",
            "0-1",
        ),
        Column(
            "need_true",
            "truth",
            "float32",
            "Ground truth: health-care need in the baseline year, as the cost of care the person "
            "would receive with equal access.",
            "GBP",
        ),
        Column(
            "need_true_next",
            "truth",
            "float32",
            "Ground truth: health-care need in the outcome year; expected cost_next where access is equal.",
            "GBP",
        ),
        Column(
            "need_planned_true_next",
            "truth",
            "float32",
            "Ground truth: the part of need_true_next met by planned care (GP, outpatient, elective) "
            "where access is equal.",
            "GBP",
        ),
        Column(
            "n_conditions_true_next",
            "truth",
            "int8",
            "Ground truth: number of modelled conditions the person has at the end of the outcome year.",
            "count",
        ),
        Column(
            "access_planned",
            "truth",
            "float32",
            "Ground truth: multiplier on planned care received at equal need (1 = equal access).",
            "ratio",
        ),
        Column(
            "access_emergency",
            "truth",
            "float32",
            "Ground truth: multiplier on emergency care for illness at equal need "
            "(above 1 where missed planned care returns as emergencies).",
            "ratio",
        ),
        Column(
            "recording_multiplier",
            "truth",
            "float32",
            "Ground truth: multiplier on the probability that a true condition is recorded.",
            "ratio",
        ),
        Column(
            "specialist_need_next",
            "truth",
            "bool",
            "Ground truth: the person needs specialist (secondary) care in the outcome year.",
            "true / false",
        ),
    ]
    return tuple(cols)


COLUMNS: tuple[Column, ...] = _build_columns()
_BY_NAME = {c.name: c for c in COLUMNS}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "ethnicity": ETHNICITIES,
    "sex": SEXES,
    "age_band": AGE_BANDS,
}


def column_roles() -> dict[str, Role]:
    """Return the role of every column of a generated cohort.

    Returns
    -------
    dict of str to str
        ``{column name: role}`` in schema order.

    Examples
    --------
    >>> column_roles()["need_true_next"]
    'truth'
    """
    return {c.name: c.role for c in COLUMNS}


def columns_with_role(role: Role) -> list[str]:
    """Return the names of the columns that have ``role``, in schema order.

    Parameters
    ----------
    role : {"id", "protected", "feature", "label", "truth"}
        The role to select.

    Returns
    -------
    list of str

    Examples
    --------
    >>> columns_with_role("id")
    ['patient_id', 'practice_id']
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return [c.name for c in COLUMNS if c.role == role]


def pandas_dtype(name: str) -> pd.CategoricalDtype | str:
    """Return the pandas dtype of schema column ``name`` (a ``CategoricalDtype`` for categories)."""
    col = _BY_NAME[name]
    if col.dtype == "category":
        return pd.CategoricalDtype(list(CATEGORIES[name]), ordered=name == "age_band")
    return col.dtype


def data_dictionary_markdown() -> str:
    """Render the data dictionary as Markdown, from the schema.

    Returns
    -------
    str
        The text of ``synthetic_data/DATA_DICTIONARY.md``.
    """
    lines = [
        "# Data dictionary of the synthetic cohort",
        "",
        "Generated from `phm_audit/synth/_schema.py` by `phm-audit data-dictionary`; do not edit by hand",
        "(a test fails when this file and the schema drift apart).",
        "",
        f"Schema version {SCHEMA_VERSION}. One row per person registered with a GP practice; a baseline",
        "year (features) and an outcome year (labels). Roles:",
        "",
        "- `id`: identifiers;",
        "- `protected`: attributes audited for disparity;",
        "- `feature`: what a model may see (demographics and the *recorded* baseline year);",
        "- `label`: observed outcome-year targets a model may be trained on;",
        "- `truth`: the generator's ground truth, never a model input.",
        "",
        "| column | role | dtype | unit / coding | description |",
        "|---|---|---|---|---|",
    ]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | {c.role} | {c.dtype} | {c.unit} | {c.description} |")
    lines.append("")
    return "\n".join(lines)
