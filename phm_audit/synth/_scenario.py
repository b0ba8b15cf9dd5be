"""Scenarios: named sets of knobs for the generator, read from YAML and validated on load.

Every mechanism that makes cost differ from need is a knob here, with a documented default
(the ``england`` scenario), so that a scenario can switch it off (``no_gap``) or strengthen it
(``high_gap``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from phm_audit.exceptions import ScenarioError, closest

__all__ = ["KNOBS", "Knob", "Scenario", "list_scenarios", "load_scenario", "scenario_dir"]

Kind = Literal["probability", "multiplier", "nonnegative", "positive_int"]


@dataclass(frozen=True)
class Knob:
    """One scenario knob: its default (the ``england`` value), what values it takes, what it does."""

    name: str
    default: float
    kind: Kind
    doc: str


_KNOB_LIST = [
    Knob(
        "planned_access.imd_q1",
        0.85,
        "multiplier",
        "Planned care (GP, outpatient, elective) received at equal need in IMD quintile 1 (most deprived).",
    ),
    Knob(
        "planned_access.imd_q2",
        0.92,
        "multiplier",
        "Planned care received at equal need in IMD quintile 2.",
    ),
    Knob(
        "planned_access.asian",
        0.88,
        "multiplier",
        "Planned care received at equal need by Asian people.",
    ),
    Knob(
        "planned_access.black",
        0.86,
        "multiplier",
        "Planned care received at equal need by Black people.",
    ),
    Knob(
        "planned_access.mixed",
        0.90,
        "multiplier",
        "Planned care received at equal need by people of Mixed ethnicity.",
    ),
    Knob(
        "planned_access.other",
        0.88,
        "multiplier",
        "Planned care received at equal need by people of Other ethnicity.",
    ),
    Knob(
        "planned_access.digitally_excluded",
        0.93,
        "multiplier",
        "Planned care received at equal need by people who are digitally excluded.",
    ),
    Knob(
        "practice_access_sd",
        0.05,
        "nonnegative",
        "Spread (log scale) of practice-level access, unrelated to any protected group.",
    ),
    Knob(
        "emergency_substitution",
        0.10,
        "probability",
        "Share of the cost of missed planned care that returns as emergency care.",
    ),
    Knob(
        "planned_share",
        0.60,
        "probability",
        "Share of need met by planned care when access is equal.",
    ),
    Knob(
        "recording_access_elasticity",
        0.3,
        "nonnegative",
        "Recording probability is multiplied by access_planned to this power (0 = recording unaffected by access).",
    ),
    Knob(
        "recording_catch_up",
        0.30,
        "probability",
        "Chance in the outcome year that a true but unrecorded condition gets recorded (before the access effect).",
    ),
    Knob(
        "condition_onset_rate",
        0.04,
        "probability",
        "Yearly onset of a condition, as a share of the person's own probability of having it.",
    ),
    Knob(
        "deprivation_onset_shift_years",
        12.0,
        "nonnegative",
        "Years earlier that conditions start in IMD quintile 1 than in quintile 5 (Barnett 2012: 10-15).",
    ),
    Knob(
        "digital_exclusion_imd_q1_multiplier",
        1.5,
        "nonnegative",
        "Digital exclusion in IMD quintile 1 relative to the age-specific rate.",
    ),
    Knob(
        "severity_sd",
        0.8,
        "nonnegative",
        "Spread (log scale) of lasting personal severity at the same conditions.",
    ),
    Knob("annual_shock_sd", 0.4, "nonnegative", "Spread (log scale) of year-to-year acute illness."),
    Knob(
        "practice_list_size",
        9000,
        "positive_int",
        "Average number of people registered with a practice.",
    ),
]
#: Every knob, by its dotted name.
KNOBS: Mapping[str, Knob] = MappingProxyType({k.name: k for k in _KNOB_LIST})

_TOP_KEYS = ("name", "description", "base", "knobs")


def scenario_dir() -> Path:
    """Return the folder of the built-in scenario files."""
    return Path(__file__).parent / "scenarios"


@dataclass(frozen=True)
class Scenario:
    """A validated set of knob values.

    Parameters
    ----------
    name : str
        Scenario name.
    description : str
        What the scenario is for.
    knobs : mapping of str to float
        Every knob in :data:`KNOBS`, by dotted name.
    source : str
        Where it was read from (a built-in name or a file path), for provenance.
    """

    name: str
    description: str
    knobs: Mapping[str, float] = field(repr=False)
    source: str = ""

    def __getitem__(self, key: str) -> float:
        return self.knobs[key]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description of the scenario."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "knobs": dict(self.knobs),
        }


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _check_knob(name: str, value: Any, where: str) -> float:
    if name not in KNOBS:
        raise ScenarioError(
            f"{where}: unknown knob '{name}'{closest(name, KNOBS)}; 'phm-audit scenarios' lists the knobs"
        )
    knob = KNOBS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ScenarioError(f"{where}: knob '{name}' must be a number; got {value!r}") from None
    v = float(value)
    if not math.isfinite(v):
        raise ScenarioError(f"{where}: knob '{name}' must be finite; got {value!r}")
    if knob.kind == "probability" and not 0.0 <= v <= 1.0:
        raise ScenarioError(f"{where}: knob '{name}' is a probability and must lie in [0, 1]; got {v}")
    if knob.kind == "multiplier" and not 0.0 < v <= 2.0:
        raise ScenarioError(f"{where}: knob '{name}' is a multiplier and must lie in (0, 2]; got {v}")
    if knob.kind == "nonnegative" and v < 0:
        raise ScenarioError(f"{where}: knob '{name}' must be 0 or more; got {v}")
    if knob.kind == "positive_int" and (v < 1 or v != int(v)):
        raise ScenarioError(f"{where}: knob '{name}' must be a whole number of at least 1; got {value!r}")
    return v


def list_scenarios() -> list[str]:
    """Return the names of the built-in scenarios.

    Examples
    --------
    >>> "england" in list_scenarios()
    True
    """
    return sorted(p.stem for p in scenario_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"scenario file {path} is not valid YAML{at}; check its indentation and colons") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario file {path} must be a mapping with keys {', '.join(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise ScenarioError(
                f"scenario file {path}: unknown key '{key}'{closest(str(key), _TOP_KEYS)}; "
                f"allowed keys: {', '.join(_TOP_KEYS)}"
            )
    knobs = data.get("knobs") or {}
    if not isinstance(knobs, Mapping):
        raise ScenarioError(f"scenario file {path}: 'knobs' must be a mapping of knob names to numbers")
    return data


def _resolve(spec: str | Path, seen: tuple[str, ...] = ()) -> tuple[str, str, dict[str, float], str]:
    text = str(spec)
    path = Path(text)
    if text in list_scenarios() and not path.is_file():  # a folder of that name (a dataset: --out england/) is no file
        path = scenario_dir() / f"{text}.yaml"
    elif path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
    else:
        raise ScenarioError(
            f"unknown scenario '{text}'{closest(text, list_scenarios())}; built-in scenarios: "
            f"{', '.join(list_scenarios())}, or give the path of a YAML file"
        )
    key = str(path.resolve())
    if key in seen:
        raise ScenarioError(f"scenario file {path} is its own base (a cycle of 'base:' keys)")
    data = _read_yaml(path)
    knobs: dict[str, float] = {k.name: k.default for k in _KNOB_LIST}
    base = data.get("base")
    if base is not None:
        _, _, knobs, _ = _resolve(
            str(base) if not str(base).endswith((".yaml", ".yml")) else path.parent / str(base),
            (*seen, key),
        )
    for name, value in _flatten(data.get("knobs") or {}).items():
        knobs[name] = _check_knob(name, value, f"scenario file {path}")
    name = str(data.get("name") or path.stem)
    return name, str(data.get("description") or "").strip(), knobs, text


def load_scenario(
    spec: str | Path | Scenario = "england",
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Load and validate a scenario.

    Parameters
    ----------
    spec : str, Path or Scenario, default "england"
        A built-in scenario name (see :func:`list_scenarios`), the path of a YAML file, or a
        scenario to apply ``overrides`` to. A file may name a ``base`` scenario and set only the
        knobs it changes.
    overrides : mapping of str to number, optional
        Knob values that replace the scenario's, by dotted name (``{"planned_access.imd_q1": 0.8}``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        For an unknown scenario, an unreadable or malformed file, an unknown key or knob, or a value
        outside the knob's range. The message names the key.

    Examples
    --------
    >>> s = load_scenario("no_gap")
    >>> s["planned_access.imd_q1"]
    1.0
    >>> load_scenario("england", overrides={"planned_access.imd_q1": 0.8})["planned_access.imd_q1"]
    0.8
    """
    if isinstance(spec, Scenario):
        name, description, knobs, source = (
            spec.name,
            spec.description,
            dict(spec.knobs),
            spec.source,
        )
    else:
        name, description, knobs, source = _resolve(spec)
    if overrides:
        for key, value in overrides.items():
            knobs[key] = _check_knob(key, value, "override")
        name = f"{name}+overrides"
    return Scenario(name=name, description=description, knobs=MappingProxyType(knobs), source=source)


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """Parse ``["knob=value", ...]`` from the command line into a mapping (values checked later)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ScenarioError(f"--set expects KNOB=VALUE, for example planned_access.imd_q1=0.8; got '{item}'")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out
