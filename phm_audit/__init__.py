"""phm-audit: audit population-health risk-stratification models for fairness-related harm.

The package follows the data flow of the audit, one subpackage per stage:

- :mod:`phm_audit.synth` generates a synthetic, English-NHS-like population with known ground truth;
- :mod:`phm_audit.models` holds the ``RiskModel`` protocol, built-in models and loaders;
- :mod:`phm_audit.audit` measures bias, calibration against cost and need, and referral effects;
- :mod:`phm_audit.report` renders results for people to read;
- :mod:`phm_audit.teach` writes an explorable teaching page (:func:`teach`).
"""

from phm_audit._version import __version__

# the subpackage is imported first, so that the name ``teach`` is then the function
from phm_audit.teach import teach

__all__ = ["__version__", "teach"]
