"""Synthetic, English-NHS-like populations with known ground truth.

Examples
--------
>>> from phm_audit.synth import generate
>>> cohort = generate("no_gap", n=500, seed=1)
>>> sorted(set(cohort.attrs["phm_audit"]["roles"].values()))
['feature', 'id', 'label', 'protected', 'truth']
"""

from phm_audit.synth._generator import BLOCK_SIZE, generate, iter_cohort_chunks
from phm_audit.synth._scenario import KNOBS, Knob, Scenario, list_scenarios, load_scenario
from phm_audit.synth._schema import (
    COLUMNS,
    CONDITIONS,
    SCHEMA_VERSION,
    Column,
    column_roles,
    columns_with_role,
    data_dictionary_markdown,
)

__all__ = [
    "BLOCK_SIZE",
    "COLUMNS",
    "CONDITIONS",
    "KNOBS",
    "SCHEMA_VERSION",
    "Column",
    "Knob",
    "Scenario",
    "column_roles",
    "columns_with_role",
    "data_dictionary_markdown",
    "generate",
    "iter_cohort_chunks",
    "list_scenarios",
    "load_scenario",
]
