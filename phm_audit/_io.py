"""Reading and writing tables: atomic writes, Parquet and CSV files, Parquet datasets, the cohort's metadata."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from phm_audit._folders import atomic_dir, read_manifest
from phm_audit.exceptions import PhmInputError

__all__ = [
    "atomic_path",
    "dataset_files",
    "dataset_part_names",
    "read_dataset",
    "read_table",
    "write_dataset",
    "write_table",
    "write_table_chunks",
]

_META_KEY = b"phm_audit"
#: Errors writing a file that the user can fix (space, permissions, a read-only or odd file system).
_USER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.EIO})
_FORMATS = (".parquet", ".csv")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise PhmInputError(f"output file {path} must end in .parquet or .csv; got '{suffix or 'no extension'}'")
    return suffix


def _check_parent(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PhmInputError(f"cannot write {path}: folder '{parent}' does not exist; create it or choose another --out")
    if not os.access(parent, os.W_OK):
        raise PhmInputError(f"cannot write {path}: folder '{parent}' is not writable; choose another --out")
    if path.is_dir():
        raise PhmInputError(f"cannot write {path}: it is a folder; give a file name such as {path / 'cohort.parquet'}")
    try:
        size = shutil.disk_usage(parent).total
    except OSError:
        size = 1
    if size == 0:  # /proc, /sys: the kernel's views, not a place for files
        raise PhmInputError(
            f"cannot write {path}: '{parent}' is not a folder for files (a system view); choose another --out"
        )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it into place only if the block succeeds.

    An interrupted or failed write leaves no partial file behind.

    Parameters
    ----------
    path : str or Path
        The final destination.

    Yields
    ------
    Path
        Where to write.
    """
    final = Path(path)
    _check_parent(final)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent or ".")
    except OSError as exc:  # /proc, a read-only mount, a full disk
        raise PhmInputError(f"cannot write {final}: {exc.strerror}; choose another --out") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a report should be readable like any file
    try:
        try:
            yield tmp_path
            os.replace(tmp_path, final)
        except OSError as exc:  # the disk filled up, the folder went away: the user's to fix, not a crash
            if exc.errno in _USER_ERRNOS:
                raise PhmInputError(f"cannot write {final}: {exc.strerror}; choose another --out") from None
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _schema_metadata(attrs: dict[str, Any]) -> dict[bytes, bytes]:
    meta = attrs.get("phm_audit")
    return {_META_KEY: json.dumps(meta, sort_keys=True).encode()} if meta else {}


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to Parquet or CSV (by extension), atomically, keeping phm-audit metadata in Parquet.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or Path
        Destination ending in ``.parquet`` or ``.csv``.

    Returns
    -------
    Path
        The path written.
    """
    return write_table_chunks([df], path)


def write_table_chunks(chunks: Iterable[pd.DataFrame], path: str | Path) -> Path:
    """Write consecutive chunks of one table to a single Parquet or CSV file, atomically.

    Parameters
    ----------
    chunks : iterable of pandas.DataFrame
        Chunks with the same columns and dtypes; written as they come, so memory holds one chunk.
    path : str or Path
        Destination ending in ``.parquet`` or ``.csv``.

    Returns
    -------
    Path
        The path written.
    """
    final = Path(path)
    fmt = _format(final)
    with atomic_path(final) as tmp:
        if fmt == ".parquet":
            writer: pq.ParquetWriter | None = None
            try:
                for chunk in chunks:
                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    if writer is None:
                        meta = dict(table.schema.metadata or {})
                        meta.update(_schema_metadata({str(k): v for k, v in chunk.attrs.items()}))
                        schema = table.schema.with_metadata(meta)
                        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                    writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            finally:
                if writer is not None:
                    writer.close()
        else:
            first = True
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    chunk.to_csv(fh, index=False, header=first, lineterminator="\n")
                    first = False
    return final


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV table; phm-audit metadata stored in Parquet comes back in ``attrs``.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` or ``.csv`` file, or a folder of Parquet files (a dataset, read whole by
        :func:`read_dataset`).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    PhmInputError
        If the file is missing, of another format, or unreadable.
    """
    p = Path(path)
    if p.is_dir():
        return read_dataset(p)
    if not p.is_file():
        raise PhmInputError(f"file {p} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(p)
            df = table.to_pandas()
            raw = (table.schema.metadata or {}).get(_META_KEY)
            df.attrs = {"phm_audit": json.loads(raw)} if raw else {}
            return df
        if suffix == ".csv":
            return pd.read_csv(p, low_memory=False, float_precision="round_trip")
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise PhmInputError(f"cannot read {p} as {suffix[1:]}: {str(exc).splitlines()[0]}") from None
    raise PhmInputError(f"file {p} must be .parquet or .csv; got '{suffix or 'no extension'}'")


# A dataset is a flat folder of part files, not hive-style ``key=value/`` folders, which would not help its
# readers: a partition column leaves the files, so each reader rebuilds it from the folder names with a type
# of its own guessing (and ``pyarrow.dataset`` drops it unless told ``partitioning="hive"``), the rows of a
# chunk are scattered across folders (the row order then depends on the partitioning), and the parts are
# many and small. DuckDB and Spark skip row groups by their min/max statistics anyway, on any column.
_PART_DIGITS = 5


def dataset_part_names(n_parts: int) -> list[str]:
    """The file names of a dataset of ``n_parts`` parts, which sort in the order of their rows.

    Parameters
    ----------
    n_parts : int
        Number of part files.

    Returns
    -------
    list of str
        ``part-00000.parquet``, ``part-00001.parquet``, ... (more digits when there are more than 100,000 parts).

    Examples
    --------
    >>> dataset_part_names(2)
    ['part-00000.parquet', 'part-00001.parquet']
    """
    digits = max(_PART_DIGITS, len(str(max(n_parts - 1, 0))))
    return [f"part-{i:0{digits}d}.parquet" for i in range(n_parts)]


def write_dataset(chunks: Iterable[pd.DataFrame], folder: str | Path, *, n_parts: int, overwrite: bool = False) -> Path:
    """Write consecutive chunks of one table as a Parquet dataset: a folder with one part file per chunk.

    Every part has the same Arrow schema (the first chunk's: column types, categories and key-value
    metadata, the cohort's ``attrs["phm_audit"]`` included), so DuckDB (``read_parquet('folder/*.parquet')``),
    Spark and ``pyarrow.dataset`` read the folder as one table; the parts' names sort in row order. The folder
    is written like a report (:func:`phm_audit._folders.atomic_dir`): whole or not at all, with a manifest,
    never replacing or deleting a file phm-audit did not write.

    Parameters
    ----------
    chunks : iterable of pandas.DataFrame
        Chunks with the same columns and dtypes; written as they come, so memory holds one chunk.
    folder : str or Path
        The dataset folder.
    n_parts : int
        The number of chunks (their file names are checked before the first is written).
    overwrite : bool, default False
        Write into a folder that also holds files phm-audit did not write (they are kept).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    PhmInputError
        The folder cannot be written, or holds other files (without ``overwrite``).
    """
    names = dataset_part_names(n_parts)
    with atomic_dir(folder, overwrite=overwrite, files=names, kind="dataset") as tmp:
        schema: pa.Schema | None = None
        written = 0
        for chunk in chunks:
            if written == len(names):
                raise ValueError(f"write_dataset got more than n_parts={n_parts} chunks")
            if schema is None:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                meta = dict(table.schema.metadata or {})
                meta.update(_schema_metadata({str(k): v for k, v in chunk.attrs.items()}))
                schema = table.schema.with_metadata(meta)
            else:  # cast to the first part's schema, so that every part has the same one
                table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
            pq.write_table(table.replace_schema_metadata(schema.metadata), tmp / names[written], compression="zstd")
            written += 1
        if written != len(names):
            raise ValueError(f"write_dataset got {written} chunks, not n_parts={n_parts}")
    return Path(folder)


def _dataset_files(folder: Path) -> list[Path]:
    """The Parquet parts of ``folder``: those its manifest lists, else every visible ``*.parquet`` file."""
    listed = read_manifest(folder)
    if listed is not None:
        files = [folder / f for f in listed if f.lower().endswith(".parquet")]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise PhmInputError(f"the dataset {folder} lacks {missing[0]!r}, a part its manifest lists; write it again")
    else:  # a folder of another tool: hidden and ``_`` files are bookkeeping (Spark's _SUCCESS), not data
        files = [p for p in folder.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_"))]
    if not files:
        raise PhmInputError(f"the folder {folder} holds no Parquet files (*.parquet)")
    return sorted(files, key=lambda p: p.name)


def _check_schema(root: Path, path: Path, schema: pa.Schema, first: pa.Schema) -> None:
    """Refuse a part whose columns or types differ from the first part's, naming what differs."""
    if schema.equals(first, check_metadata=False):
        return
    mine, theirs = set(schema.names), set(first.names)
    if mine != theirs:
        lacks, extra = sorted(theirs - mine), sorted(mine - theirs)
        what = (f"lacks column(s) {', '.join(lacks)}" if lacks else "") + (
            f"{'; ' if lacks else ''}has extra column(s) {', '.join(extra)}" if extra else ""
        )
    else:
        changed = [n for n in first.names if schema.field(n).type != first.field(n).type]
        what = f"has other types in column(s) {', '.join(changed)}"
    raise PhmInputError(
        f"the parts of {root} disagree: {path.name} {what} against the first part; write the dataset again"
    )


def dataset_files(folder: str | Path) -> list[Path]:
    """The Parquet parts of a dataset folder, their schemas read (footers only) and checked to agree.

    For a reader that does not load the parts itself (DuckDB, Spark, Polars): a part that lacks a
    column is named here, before an engine would fail on it with a message of its own.

    Raises
    ------
    PhmInputError
        If the folder is missing, holds no Parquet files, or its parts are unreadable or disagree.
    """
    root = Path(folder)
    if not root.is_dir():
        raise PhmInputError(f"folder {root} does not exist")
    files = _dataset_files(root)
    first: pa.Schema | None = None
    for path in files:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise PhmInputError(f"cannot read {path} as parquet: {str(exc).splitlines()[0]}") from None
        if first is None:
            first = schema
        else:
            _check_schema(root, path, schema, first)
    return files


def read_dataset(folder: str | Path) -> pd.DataFrame:
    """Read a Parquet dataset folder (as :func:`write_dataset` writes) into one DataFrame, parts in name order.

    phm-audit metadata stored in the parts comes back in ``attrs``; parts whose schemas or phm-audit
    metadata differ (parts of different cohorts), or that hold fewer or more rows than the cohort's
    metadata says, are refused.

    Parameters
    ----------
    folder : str or Path
        A folder of ``.parquet`` files (those its phm-audit manifest lists, if it has one).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    PhmInputError
        If the folder is missing, holds no Parquet files, or its parts are unreadable or disagree.
    """
    root = Path(folder)
    if not root.is_dir():
        raise PhmInputError(f"folder {root} does not exist")
    tables: list[pa.Table] = []
    for path in _dataset_files(root):
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise PhmInputError(f"cannot read {path} as parquet: {str(exc).splitlines()[0]}") from None
        if tables:
            first = tables[0]
            _check_schema(root, path, table.schema, first.schema)
            if (table.schema.metadata or {}).get(_META_KEY) != (first.schema.metadata or {}).get(_META_KEY):
                raise PhmInputError(
                    f"the parts of {root} come from different cohorts: {path.name}'s phm-audit metadata differs "
                    "from the first part's; write the dataset again"
                )
        tables.append(table)
    raw = (tables[0].schema.metadata or {}).get(_META_KEY)
    meta = json.loads(raw) if raw else {}
    rows = sum(t.num_rows for t in tables)
    if isinstance(meta.get("n"), int) and meta["n"] != rows:
        raise PhmInputError(
            f"the dataset {root} holds {rows:,} rows but its cohort has n={meta['n']:,}: a part is missing or "
            "extra; write the dataset again"
        )
    df = pa.concat_tables(tables).to_pandas()
    df.attrs = {"phm_audit": meta} if meta else {}
    return df
