"""Nothing lost: a report never deletes what phm-audit did not write, two runs never both write one folder,
a killed run leaves nothing behind, and the files are safe to open (Markdown, spreadsheets)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phm_audit.cli import main
from phm_audit.exceptions import PhmInputError
from phm_audit.report import _outputs
from phm_audit.report._outputs import MANIFEST_NAME, atomic_dir, read_manifest

REPORT = ["audit.json", "curves.csv", "index.html", "metrics.csv", "summary.md"]


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory, cohort_factory) -> Path:
    df = cohort_factory("england", 3_000, 5)
    table = pd.DataFrame(
        {
            "id": df["patient_id"],
            "risk": df["cost_prior"].to_numpy(float),
            "deprivation": df["imd_quintile"],
            "need": df["n_conditions_next"],
            "cost": df["cost_next"],
        }
    )
    path = tmp_path_factory.mktemp("table") / "scored.csv"
    table.to_csv(path, index=False)
    return path


def _audit(table: Path, out: str | Path, *extra: str) -> int:
    return main(
        [
            "audit",
            "--table",
            str(table),
            "--score",
            "risk",
            "--group",
            "deprivation",
            "--need",
            "need",
            "--cost",
            "cost",
            "--bootstrap",
            "0",
            "--quiet",
            "--deterministic",
            "--out",
            str(out),
            *extra,
        ]
    )


def _fake_report(folder: Path, text: str = "new") -> None:
    for name in REPORT:
        (folder / name).write_text(text)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- never delete what phm-audit did not write ------------------------------------------------------------


def test_a_folder_holding_the_users_files_is_refused_and_left_as_it_was(table_csv, tmp_path, capsys):
    out = tmp_path / "shared"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "keep.csv").write_text("a,b\n1,2\n")
    before = _tree(out)
    assert _audit(table_csv, out) == 2
    err = capsys.readouterr().err
    assert "phm-audit did not write" in err or "holds no phm-audit report" in err
    assert "'notes.txt'" in err and "--overwrite" in err
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no temporary folder, no lock file


@pytest.mark.slow
def test_overwrite_replaces_only_the_reports_files_and_keeps_the_users(table_csv, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "sub").mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "keep.csv").write_text("a,b\n1,2\n")
    cohort = out / "scored.csv"  # the input itself sits in the folder
    cohort.write_bytes(table_csv.read_bytes())
    assert _audit(cohort, out, "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "sub" / "keep.csv").read_text() == "a,b\n1,2\n"
    assert cohort.read_bytes() == table_csv.read_bytes()
    assert read_manifest(out) == REPORT
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, MANIFEST_NAME, "notes.txt", "sub", "scored.csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]


def test_a_folder_holding_only_an_earlier_report_is_replaced_whole(tmp_path):
    out = tmp_path / "r"
    with atomic_dir(out, files=REPORT) as tmp:
        _fake_report(tmp, "old")
        (tmp / "extra.txt").write_text("an older report had this file")
    assert read_manifest(out) == sorted([*REPORT, "extra.txt"])
    with atomic_dir(out, files=REPORT) as tmp:
        _fake_report(tmp, "new")
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, MANIFEST_NAME])
    assert all((out / n).read_text() == "new" for n in REPORT)


def test_overwrite_removes_only_files_its_manifest_lists(tmp_path):
    out = tmp_path / "r"
    with atomic_dir(out) as tmp:
        _fake_report(tmp, "old")
        (tmp / "extra.txt").write_text("an older report had this file")
    (out / "mine.txt").write_text("user")
    with pytest.raises(PhmInputError, match=r"'mine\.txt'"), atomic_dir(out) as tmp:
        _fake_report(tmp)
    with atomic_dir(out, overwrite=True) as tmp:
        _fake_report(tmp)
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, MANIFEST_NAME, "mine.txt"])
    assert (out / "mine.txt").read_text() == "user"


def test_a_non_empty_folder_without_a_manifest_is_refused(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "index.html").write_text("a page the user wrote")
    with pytest.raises(PhmInputError, match="holds no phm-audit report"), atomic_dir(out, files=REPORT) as tmp:
        _fake_report(tmp)
    assert (out / "index.html").read_text() == "a page the user wrote"


@pytest.mark.slow
def test_an_empty_out_is_refused_and_dot_writes_into_the_working_folder(table_csv, tmp_path, monkeypatch, capsys):
    assert _audit(table_csv, "") == 2
    assert "--out is empty" in capsys.readouterr().err
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _audit(table_csv, ".") == 0
    assert sorted(p.name for p in work.iterdir()) == sorted([*REPORT, MANIFEST_NAME])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing beside it: no .old, no .partial
    (work / "notes.txt").write_text("mine")
    assert _audit(table_csv, ".") == 2
    assert (work / "notes.txt").read_text() == "mine"


def test_the_root_folder_is_refused(tmp_path):
    with pytest.raises(PhmInputError, match="root folder"), atomic_dir("/"):
        pass


# --- one run at a time, and no leftovers whatever the exit ---------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from phm_audit.report._outputs import atomic_dir

    out, go = sys.argv[1], sys.argv[2]
    def run():
        with atomic_dir(out) as tmp:
            for name in ["audit.json", "curves.csv", "index.html", "metrics.csv", "summary.md"]:
                (tmp / name).write_text("x" * 100_000)
                if name == "index.html":
                    print("writing", flush=True)
                    deadline = time.monotonic() + 60
                    while go != "-" and not Path(go).exists() and time.monotonic() < deadline:
                        time.sleep(0.02)
    try:
        from phm_audit._process import terminate_as_exception
        with terminate_as_exception():
            run()
    except Exception as exc:  # a refusal: print it and exit 2 like the command line
        print(exc, file=sys.stderr, flush=True)
        sys.exit(2)
    """
)


def _writer(out: Path, go: Path) -> subprocess.Popen[str]:
    """A process writing a report to ``out``, paused inside the block (holding the lock) until ``go`` exists."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"  # it is inside the block, holding the lock
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_then_a_new_run_leaves_one_whole_report_and_no_leftovers(tmp_path, sig):
    out = tmp_path / "r"
    proc = _writer(out, tmp_path.parent / f"{tmp_path.name}-never")
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    if sig == signal.SIGTERM:  # handled: cleaned up at once
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    with atomic_dir(out, files=REPORT) as tmp:
        _fake_report(tmp, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, MANIFEST_NAME])
    assert all((out / n).read_text() == "whole" for n in REPORT)


@pytest.mark.slow
def test_two_runs_to_one_folder_cannot_both_write_it(tmp_path):
    out = tmp_path / "r"
    go = tmp_path.parent / f"{tmp_path.name}-go"
    first = _writer(out, go)
    second = subprocess.run(
        [sys.executable, "-c", _WRITER, str(out), "-"], capture_output=True, text=True, timeout=60, check=False
    )
    go.touch()
    assert second.returncode == 2
    assert f"another phm-audit run is writing to {out}" in second.stderr
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, MANIFEST_NAME])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_the_lock_is_taken_in_process_too(tmp_path):
    out = tmp_path / "r"
    with atomic_dir(out) as tmp:
        _fake_report(tmp)
        with pytest.raises(PhmInputError, match="another phm-audit run is writing"), atomic_dir(out):
            pass
    assert read_manifest(out) == REPORT


def test_a_failed_block_leaves_nothing_beside_the_folder(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(OSError, match="disk full"), atomic_dir(out) as tmp:
        (tmp / "audit.json").write_text("{}")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigterm_of_the_command_line_exits_143_and_leaves_no_temporary_folder_nor_worker(table_csv, tmp_path):
    # the real command in a subprocess, its figures drawn by 2 forked workers, terminated while it writes
    out = tmp_path / "r"
    code = textwrap.dedent(
        f"""
        import sys, time
        from phm_audit.report import _outputs, _render
        _render._check_n_jobs = lambda n_jobs: 2
        real = _outputs.write_text
        def slow(path, text):
            real(path, text)
            if path.name == "summary.md":
                print("writing", flush=True)
                time.sleep(30)
        _outputs.write_text = slow
        from phm_audit.cli import main
        sys.exit(main(["audit", "--table", {str(table_csv)!r}, "--score", "risk", "--group", "deprivation",
                       "--need", "need", "--cost", "cost", "--bootstrap", "0", "--quiet", "--out", {str(out)!r}]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and "writing" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    if "writing" not in line:
        proc.kill()
        pytest.fail(proc.communicate()[1])
    listed = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False)
    workers = [int(x) for x in listed.stdout.split()]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    # no worker process of this run is left behind (the figures are drawn in forked workers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- the manifest itself ----------------------------------------------------------------------------------


def test_the_manifest_lists_the_files_and_is_deterministic(tmp_path):
    for name in ("a", "b"):
        with atomic_dir(tmp_path / name) as tmp:
            _fake_report(tmp)
    first, second = ((tmp_path / n / MANIFEST_NAME).read_bytes() for n in ("a", "b"))
    assert first == second
    doc = json.loads(first)
    assert doc["written_by"] == "phm-audit" and doc["files"] == REPORT


def test_a_manifest_naming_paths_outside_the_folder_is_not_followed(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / MANIFEST_NAME).write_text(json.dumps({"written_by": "phm-audit", "files": ["../victim.txt", "x.txt"]}))
    (out / "x.txt").write_text("listed")
    with atomic_dir(out, overwrite=True) as tmp:
        _fake_report(tmp)
    assert victim.read_text() == "keep me"


# --- outputs safe to open ----------------------------------------------------------------------------------

HOSTILE_GROUPS = [
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x","y")',
    "White | 1",
    "a&b <img src=x onerror=alert(1)>",
]


@pytest.fixture(scope="module")
def hostile_report(table_csv, tmp_path_factory):
    table = pd.read_csv(table_csv)
    table["deprivation"] = np.array(HOSTILE_GROUPS, dtype=object)[table["deprivation"].to_numpy() % 4]
    folder = tmp_path_factory.mktemp("hostile")
    path = folder / "<img src=x onerror=alert(1)>.csv"
    table.to_csv(path, index=False)
    out = folder / "r"
    assert _audit(path, out, "--intersection", "deprivation,deprivation2") == 2  # a typo is refused first
    table["deprivation2"] = np.where(table["risk"].rank() % 2 == 0, "-x", "+y")
    table.to_csv(path, index=False)
    assert _audit(path, out, "--group", "deprivation2", "--intersection", "deprivation,deprivation2") == 0
    return out


@pytest.mark.slow
def test_summary_md_escapes_html_and_pipes_in_names(hostile_report):
    text = (hostile_report / "summary.md").read_text()
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;" in text and "a&amp;b" in text
    for line in text.splitlines():
        if line.startswith("|"):  # every row of a table has as many unescaped pipes as its header
            cells = line.replace("\\|", "").count("|")
            assert cells in (6, 7), line
    assert "White \\| 1" in text


def test_csv_text_cells_cannot_run_as_formulas_and_numbers_stay_numbers(hostile_report):
    import csv

    for name in ("metrics.csv", "curves.csv"):
        with open(hostile_report / name, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        numeric = {"value", "ci_low", "ci_high", "n", "mean", "bin", "bins", "score"}
        for row in rows:
            for col, cell in row.items():
                if cell and cell[0] in "=+-@\t\r":
                    assert col in numeric, (name, col, cell)
                    float(cell)  # a number: left as it is
    metrics = _outputs.read_metrics(hostile_report / "metrics.csv")
    assert {'=HYPERLINK("http://x","y")', "-x", "+y"} <= set(metrics["group"])  # the quote is taken off again
    raw = (hostile_report / "metrics.csv").read_text()
    assert "'=HYPERLINK" in raw and ",'-x," in raw


@pytest.mark.slow
def test_machine_outputs_are_written_like_a_report_and_never_touch_the_users_files(cohort_factory, tmp_path):
    from phm_audit.audit import AuditSpec, audit
    from phm_audit.report import write_machine_outputs

    cohort = cohort_factory("england", 3_000, 5)
    result = audit(
        cohort,
        {"prior_cost": cohort["cost_prior"].to_numpy()},
        AuditSpec(attributes=["sex"], intersections=[], n_boot=0, analyses=["fairness"]),
    )
    folder = tmp_path / "machine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(PhmInputError, match="overwrite"):
        write_machine_outputs(result, folder, deterministic=True)
    assert _tree(folder) == {"notes.txt": b"mine"}
    assert write_machine_outputs(result, folder, deterministic=True, overwrite=True) == folder
    tree = _tree(folder)
    assert tree["notes.txt"] == b"mine"
    assert set(tree) == {"notes.txt", MANIFEST_NAME, "audit.json", "metrics.csv", "curves.csv", "summary.md"}
    assert set(read_manifest(folder)) == {"audit.json", "metrics.csv", "curves.csv", "summary.md"}
    assert not list(tmp_path.glob(".machine*")), "no temporary folder is left beside the output"
