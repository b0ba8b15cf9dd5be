"""Reading and writing tables: atomic writes, Parquet and CSV, the cohort's metadata."""

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

from phm_audit.exceptions import PhmInputError

__all__ = ["atomic_path", "read_table", "write_table", "write_table_chunks"]

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
        A ``.parquet`` or ``.csv`` file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    PhmInputError
        If the file is missing, of another format, or unreadable.
    """
    p = Path(path)
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
