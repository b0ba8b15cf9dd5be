"""phm-audit: audit population-health risk-stratification models for fairness-related harm.

The package follows the data flow of the audit, one subpackage per stage:

- :mod:`phm_audit.synth` generates a synthetic, English-NHS-like population with known ground truth;
- :mod:`phm_audit.models` holds the ``RiskModel`` protocol, built-in models and loaders;
- :mod:`phm_audit.audit` measures bias, calibration against cost and need, and referral effects;
- :mod:`phm_audit.report` renders results for people to read.
"""

from phm_audit._version import __version__

__all__ = ["__version__"]
