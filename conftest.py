"""Suite-wide collection rules (the doctests of ``phm_audit`` are collected from beside this file)."""

from __future__ import annotations

import pytest

#: Doctests that fit every built-in model or run SHAP: `make test` runs them, `make test-fast` leaves them out.
SLOW_DOCTESTS = frozenset({"phm_audit._demo.build_demo_result", "phm_audit.audit._explain.explain"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)
