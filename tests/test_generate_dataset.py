"""``phm-audit generate --out folder/``: a Parquet dataset of one part per chunk, the same people whatever the
chunk size and the workers, written like a report (whole or not at all, never touching a user's file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from phm_audit._folders import MANIFEST_NAME
from phm_audit._io import read_dataset, write_table_chunks
from phm_audit.cli import main
from phm_audit.exceptions import PhmInputError
from phm_audit.synth import SCHEMA_VERSION, generate, iter_cohort_chunks
from phm_audit.synth._cohort import read_cohort

N, SEED = 20_000, 3


def _generate(out, *extra: str, n: int = N) -> int:
    return main(["generate", "--n", str(n), "--seed", str(SEED), "--out", str(out), "--quiet", *extra])


def _parts(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.endswith(".parquet"))


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    return generate("england", N, seed=SEED)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "england"
    assert _generate(f"{out}/", "--chunk-size", "7000", "--jobs", "1") == 0
    return out


@pytest.mark.parametrize(("chunk", "parts"), [(1_000, 20), (3_000, 7), (7_000, 3)])
def test_the_same_seed_gives_the_same_people_whatever_the_chunk_size(tmp_path, fresh, chunk, parts):
    out = tmp_path / "england"
    assert _generate(f"{out}/", "--chunk-size", str(chunk), "--jobs", "1") == 0
    assert _parts(out) == [f"part-{i:05d}.parquet" for i in range(parts)]
    back = read_cohort(out)
    pd.testing.assert_frame_equal(back, fresh)  # exact: every chunking gives these very people
    meta = back.attrs["phm_audit"]
    assert (meta["seed"], meta["n"], meta["scenario"]["name"]) == (SEED, N, "england")


def test_the_same_seed_gives_the_same_people_on_one_or_two_workers(tmp_path):
    # 140,000 people are 3 blocks of the generator, so that 2 workers do share the work
    n = 140_000
    one, two = tmp_path / "one", tmp_path / "two"
    assert _generate(one, "--chunk-size", "50000", "--jobs", "1", n=n) == 0
    assert _generate(two, "--chunk-size", "30000", "--jobs", "2", n=n) == 0
    assert (len(_parts(one)), len(_parts(two))) == (3, 5)
    pd.testing.assert_frame_equal(read_dataset(one), read_dataset(two))


def test_pyarrow_reads_the_folder_as_one_table_with_one_schema_and_the_metadata(dataset, fresh):
    data = ds.dataset(dataset)  # the manifest is hidden (a leading dot): readers skip it
    assert sorted(os.path.basename(f) for f in data.files) == _parts(dataset)
    schemas = [fragment.physical_schema for fragment in data.get_fragments()]
    assert all(s.equals(schemas[0], check_metadata=True) for s in schemas)
    meta = json.loads(schemas[0].metadata[b"phm_audit"])
    assert (meta["scenario"]["name"], meta["seed"], meta["n"], meta["schema_version"]) == (
        "england",
        SEED,
        N,
        SCHEMA_VERSION,
    )
    # a categorical stays an ordered dictionary of strings (the width of its indices is pyarrow's choice)
    kind = schemas[0].field("age_band").type
    assert pa.types.is_dictionary(kind) and kind.value_type == pa.string() and kind.ordered
    table = data.to_table()
    assert table.num_rows == N
    pd.testing.assert_frame_equal(table.to_pandas(), fresh)


@pytest.mark.parametrize("form", ["slash", "no_suffix", "existing", "parquet_slash"])
def test_out_names_a_dataset_folder(tmp_path, form, capsys):
    out = {
        "slash": f"{tmp_path / 'a'}/",
        "no_suffix": str(tmp_path / "a"),
        "existing": str(tmp_path / "a"),
        "parquet_slash": f"{tmp_path / 'a.parquet'}/",
    }[form]
    if form == "existing":
        (tmp_path / "a").mkdir()
    assert main(["generate", "--n", "2500", "--chunk-size", "1000", "--out", out]) == 0
    assert "(3 Parquet parts)" in capsys.readouterr().out
    folder = tmp_path / ("a.parquet" if form == "parquet_slash" else "a")
    assert sorted(os.listdir(folder)) == [MANIFEST_NAME, *(f"part-{i:05d}.parquet" for i in range(3))]
    assert sorted(os.listdir(tmp_path)) == [folder.name]  # no temporary folder, no lock left beside it


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_a_single_file_is_written_as_before(tmp_path, ext):
    cli, api = tmp_path / f"cli.{ext}", tmp_path / f"api.{ext}"
    assert _generate(cli, "--chunk-size", "3000", "--jobs", "1") == 0
    write_table_chunks(iter_cohort_chunks("england", N, seed=SEED, chunk_size=3000), api)
    assert cli.is_file() and cli.read_bytes() == api.read_bytes()


def test_a_folder_holding_a_users_file_is_refused_and_kept(tmp_path, capsys, fresh):
    out = tmp_path / "england"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _generate(out) == 2
    err = capsys.readouterr().err
    assert "'notes.txt'" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["england"]
    # with --overwrite the dataset is written beside the user's file, which is kept and not read
    assert _generate(out, "--overwrite", "--chunk-size", "10000") == 0
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "notes.txt", "part-00000.parquet", "part-00001.parquet"]
    assert (out / "notes.txt").read_text() == "mine"
    pd.testing.assert_frame_equal(read_cohort(out), fresh)


def test_an_earlier_dataset_is_replaced_whole(tmp_path, fresh):
    out = tmp_path / "england"
    assert _generate(out, "--chunk-size", "3000", "--seed", "9") == 0
    assert len(_parts(out)) == 7
    assert _generate(out, "--chunk-size", "7000") == 0  # the last --seed wins: SEED
    assert _parts(out) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    pd.testing.assert_frame_equal(read_cohort(out), fresh)


def test_a_folder_named_like_the_scenario_is_not_read_as_the_scenario(tmp_path, monkeypatch, fresh):
    # `--scenario england --out england/` run twice in one folder: the dataset is no scenario file
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--scenario", "england", "--n", str(N), "--seed", str(SEED), "--out", "england/"]) == 0
    assert main(["generate", "--scenario", "england", "--n", str(N), "--seed", str(SEED), "--out", "england/"]) == 0
    pd.testing.assert_frame_equal(read_cohort("england"), fresh)


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    from phm_audit import _io

    real = _io.pq.write_table
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(_io.pq, "write_table", broken)
    assert _generate(tmp_path / "england", "--chunk-size", "5000") == 130
    assert os.listdir(tmp_path) == []


def test_the_disk_needed_by_a_folder_is_checked_before_any_work(tmp_path, monkeypatch, capsys):
    import shutil

    from phm_audit.synth import _resources
    from phm_audit.synth._scenario import load_scenario

    scen = load_scenario("england")
    one = _resources.resource_estimate(scen, N, tmp_path / "c.parquet", chunk_size=1000, n_jobs=1)
    folder = _resources.resource_estimate(scen, N, tmp_path / "c", chunk_size=1000, n_jobs=1, dataset=True)
    assert folder["file_per_person"] == one["file_per_person"]
    assert folder["disk"] == pytest.approx(one["disk"] + 20 * folder["file_overhead"])  # a footer per part
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(_resources.shutil, "disk_usage", lambda p: usage._replace(free=100_000))
    assert _generate(tmp_path / "new" / "england", "--chunk-size", "1000") == 2
    err = capsys.readouterr().err
    assert "in the folder" in err and "in parquet" in err and "choose another --out" in err
    assert os.listdir(tmp_path) == []


def test_a_part_missing_or_from_another_cohort_is_refused(tmp_path, dataset):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "part-00001.parquet").unlink()
    with pytest.raises(PhmInputError, match=r"lacks 'part-00001\.parquet'"):
        read_cohort(broken)
    (broken / MANIFEST_NAME).unlink()  # no manifest: every part there is read, and the count is checked
    with pytest.raises(PhmInputError, match="holds 13,000 rows but its cohort has n=20,000"):
        read_cohort(broken)
    other = tmp_path / "other"
    assert _generate(other, "--chunk-size", "7000", "--seed", "4") == 0
    shutil.copy(other / "part-00001.parquet", broken / "part-00001.parquet")
    with pytest.raises(PhmInputError, match=r"different cohorts: part-00001\.parquet"):
        read_cohort(broken)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_n(tmp_path):
    # each run in its own process, so that its peak resident memory is its own
    from phm_audit.synth._generator import SAMPLE_SIZE, measure_sample
    from phm_audit.synth._scenario import load_scenario

    code = (
        "import resource, sys; from phm_audit.cli import main; "
        "assert main(['generate', '--n', sys.argv[1], '--chunk-size', '50000', '--jobs', '1', '--quiet', "
        "'--out', sys.argv[2]]) == 0; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
    )
    peaks = {}
    for n in (200_000, 1_000_000):
        run = subprocess.run(
            [sys.executable, "-c", code, str(n), str(tmp_path / f"d{n}")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        peaks[n] = int(run.stdout.split()[-1])
    per_person = float(measure_sample(load_scenario("england")).memory_usage(deep=True).sum()) / SAMPLE_SIZE
    # holding the 800,000 more people would add about 95 MB; the chunks of 50,000 add nothing that grows
    assert peaks[1_000_000] - peaks[200_000] < 0.25 * per_person * 800_000, peaks
