"""The layout is the data flow: ``synth -> models -> audit -> report``, each stage importing only earlier ones.

Every ``import`` in a stage's modules is read from the source (in functions and ``TYPE_CHECKING`` blocks
too, but not in docstring examples): a stage that imports a later stage, the command line
(:mod:`phm_audit.cli`) or the pipelines that join the stages (``pipeline``, ``_demo``, ``teach``) fails.
The shared helpers (``exceptions``, ``_io``, ``_progress``, ...) import no stage at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "phm_audit"
STAGES = ("synth", "models", "audit", "report")
#: What sits above the stages and may import any of them.
TOP = ("cli", "_demo", "pipeline", "teach", "__init__", "__main__")


def _layer(module: str) -> str:
    """``synth``, ``models``, ``audit``, ``report``, ``top`` or ``base`` for a dotted ``phm_audit`` module name."""
    parts = module.split(".")
    if parts[0] != "phm_audit" or len(parts) == 1:
        return "top" if parts == ["phm_audit"] else "outside"
    head = parts[1]
    if head in STAGES:
        return head
    return "top" if head in TOP else "base"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            # ``from phm_audit import cli`` names a module too
            if node.module == "phm_audit":
                out += [(node.lineno, f"phm_audit.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in out if name == "phm_audit" or name.startswith("phm_audit.")]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def violations() -> list[str]:
    order = {stage: i for i, stage in enumerate(STAGES)}
    found = []
    for name, path in _modules():
        mine = _layer(name)
        if mine == "top":
            continue
        for line, imported in _imports(path):
            theirs = _layer(imported)
            if theirs == "base" or theirs == "outside":
                continue
            if mine == "base" or theirs == "top" or order[theirs] > order[mine]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({mine}) imports {imported} ({theirs})")
    return found


def test_no_stage_imports_a_later_stage_the_command_line_or_a_pipeline():
    found = violations()
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("phm_audit.synth._generator", "synth"),
        ("phm_audit.report", "report"),
        ("phm_audit.cli._audit", "top"),
        ("phm_audit._demo", "top"),
        ("phm_audit._io", "base"),
        ("phm_audit", "top"),
    ],
)
def test_layers_are_read_from_module_names(module, layer):
    assert _layer(module) == layer


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    # a stage module that imports the report is found (the check is not vacuous)
    fake = tmp_path / "phm_audit"
    (fake / "audit").mkdir(parents=True)
    (fake / "audit" / "bad.py").write_text("def f():\n    from phm_audit.report import write_report\n")
    (fake / "synth").mkdir()
    (fake / "synth" / "ok.py").write_text("from phm_audit.exceptions import PhmInputError\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = violations()
    assert len(found) == 1 and "audit/bad.py:2 (audit) imports phm_audit.report (report)" in found[0]


def test_report_dependencies_are_imported_where_used():
    # matplotlib and jinja2 are the report extra: importing the stages and the command line needs neither
    import subprocess
    import sys

    code = (
        "import sys, phm_audit.synth, phm_audit.models, phm_audit.audit, phm_audit.report, phm_audit.cli; "
        "print(sorted(m for m in ('matplotlib', 'jinja2', 'shap') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    out = run.stdout
    assert out.strip() == "[]"
