"""Print a pip constraints file that pins every dependency of phm-audit to its declared lower bound.

``make test-lowest`` installs the package with these constraints into ``.venv-lowest`` and runs the suite,
so the minimum versions in ``pyproject.toml`` are tested, not hoped for: the runtime dependencies and the
``fairness``, ``explain``, ``report``, ``scale`` and ``test`` extras. The checkers of the ``dev`` extra (ruff, mypy and
stubs) are pinned exactly and check the code, not run it; its reference oracle (dcurves) is left out.

    python .ci/lowest_constraints.py > constraints-lowest.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def lowest(pyproject: Path) -> list[str]:
    """``name==version`` for every ``name>=version`` requirement of the project and its extras."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    for name in ("fairness", "explain", "report", "scale", "test"):
        requirements += project["optional-dependencies"][name]
    pins: dict[str, str] = {}
    for requirement in requirements:
        name, _, spec = _SPEC.match(requirement.split(";")[0]).groups()  # type: ignore[union-attr]
        key = name.lower().replace("_", "-")
        if key == project["name"]:
            continue
        bound = re.search(r">=\s*([0-9][^,\s]*)", spec)
        if bound is None:
            sys.exit(f"{requirement!r} in pyproject.toml has no lower bound: declare one (name>=version)")
        pins[key] = bound.group(1)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


if __name__ == "__main__":
    print("\n".join(lowest(Path(__file__).resolve().parent.parent / "pyproject.toml")))
