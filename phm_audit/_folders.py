"""Folders written whole or not at all, never deleting a file phm-audit did not write.

A folder of outputs (an audit's report, a generated cohort's Parquet dataset) is written into a
temporary folder beside the destination, whose files take the destination's place only when every
file is complete. Each such folder holds a manifest (:data:`MANIFEST_NAME`) of the files phm-audit
wrote there, and only those are ever replaced (see :func:`atomic_dir`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from phm_audit._process import terminate_as_exception
from phm_audit._version import __version__
from phm_audit.exceptions import PhmInputError

__all__ = ["MANIFEST_NAME", "atomic_dir", "check_folder", "read_manifest"]


#: The manifest every folder phm-audit writes holds: the files it wrote there, so that only they are replaced.
MANIFEST_NAME = ".phm-audit-manifest.json"
_LOCK_SUFFIX = ".phm-audit.lock"
_SHOWN = 3  # foreign files named in an error
#: An example folder for each kind of folder, shown in messages.
_EXAMPLES = {"report": "reports/audit", "dataset": "england/"}


def _final_path(path: str | Path, kind: str = "report") -> Path:
    """``path`` as an absolute folder path, refusing an empty one and the file-system root."""
    example = _EXAMPLES.get(kind, "reports/audit")
    if not str(path).strip():
        raise PhmInputError(f"the {kind} folder is empty (--out ''); give a folder such as {example}")
    final = Path(os.path.abspath(os.fspath(path)))
    if not final.name:
        raise PhmInputError(f"cannot write a {kind} to {path}: it is the root folder; give a folder such as {example}")
    if final.exists() and not final.is_dir():
        raise PhmInputError(f"cannot write the {kind} to {path}: it is a file; choose a folder with --out")
    return final


def read_manifest(folder: str | Path) -> list[str] | None:
    """The files an earlier run lists in ``folder``'s manifest, or None if it has no readable manifest.

    Parameters
    ----------
    folder : str or Path
        A folder phm-audit wrote (a report, a dataset).

    Returns
    -------
    list of str or None
        Plain file names (never paths: a name with a separator is ignored).
    """
    try:
        doc = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("written_by") == "phm-audit" else None
    if not isinstance(files, list):
        return None
    return [f for f in files if isinstance(f, str) and f and f == Path(f).name and f not in (".", "..")]


def _foreign_files(final: Path) -> tuple[list[str], list[str]]:
    """``(files of an earlier run, everything else)`` in an existing folder ``final``."""
    if not final.is_dir():
        return [], []
    present = sorted(os.listdir(final))
    listed = read_manifest(final)
    ours = set(listed or ()) | ({MANIFEST_NAME} if listed is not None else set())
    return [p for p in present if p in ours], [p for p in present if p not in ours]


def check_folder(path: str | Path, *, overwrite: bool = False, files: Sequence[str] = (), kind: str = "report") -> Path:
    """Check that a folder of outputs can be written to ``path`` without touching files phm-audit did not write.

    A new folder, an empty one, or one holding only the files its manifest lists (an earlier run)
    can be written. A folder holding anything else is refused unless ``overwrite`` is true; even then
    only phm-audit's own files are replaced and every other file is kept.

    Parameters
    ----------
    path : str or Path
        The folder.
    overwrite : bool, default False
        Write into a folder that also holds other files (which are kept).
    files : sequence of str, optional
        The names that will be written (checked not to be folders when ``overwrite`` is true).
    kind : str, default "report"
        What the folder holds (``"report"``, ``"dataset"``), for the messages.

    Returns
    -------
    Path
        The folder as an absolute path.

    Raises
    ------
    PhmInputError
        The path is empty, a file, the root folder, or a folder holding other files (without ``overwrite``).
    """
    final = _final_path(path, kind)
    _, foreign = _foreign_files(final)
    if foreign and not overwrite:
        more = len(foreign) - _SHOWN
        shown = ", ".join(repr(f) for f in foreign[:_SHOWN]) + (f" and {more} more" if more > 0 else "")
        reason = (
            "holds files phm-audit did not write"
            if (final / MANIFEST_NAME).exists()
            else f"is not empty and holds no phm-audit {kind}"
        )
        raise PhmInputError(
            f"the {kind} folder {path} {reason} ({shown}); choose a new or empty folder, or add --overwrite "
            f"(overwrite=True) to replace only the {kind}'s files and keep every other file"
        )
    for name in (*files, MANIFEST_NAME):
        if (final / name).is_dir():
            raise PhmInputError(
                f"cannot write the {kind} to {path}: '{name}' there is a folder; move it or choose another folder"
            )
    return final


@contextlib.contextmanager
def _folder_lock(final: Path, shown: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``final`` (a lock file beside it), or refuse: another run is writing there."""
    lock = final.parent / f".{final.name}{_LOCK_SUFFIX}"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PhmInputError(f"cannot write in {final.parent}: {exc.strerror}; choose another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PhmInputError(
                f"another phm-audit run is writing to {shown}; wait for it to finish or choose another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the lock file was removed by a run that finished meanwhile: take a fresh one
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _sweep(final: Path) -> None:
    """Remove temporary folders a killed run left beside ``final`` (called holding its lock)."""
    prefix = f".{final.name}."
    with os.scandir(final.parent) as entries:
        stale = [
            e.path
            for e in entries
            if e.name.startswith(prefix)
            and (e.name.endswith(".partial") or e.name.endswith(".old"))
            and e.is_dir(follow_symlinks=False)
        ]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)


def _write_manifest(tmp: Path) -> list[str]:
    names = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    doc = {"written_by": "phm-audit", "version": __version__, "files": names}
    (tmp / MANIFEST_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8", newline="\n")
    return names


def _holds_cwd(final: Path) -> bool:
    try:
        cwd = Path.cwd()
    except OSError:
        return False
    return cwd == final or final in cwd.parents


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, overwrite: bool = False, files: Sequence[str] = (), kind: str = "report"
) -> Iterator[Path]:
    """Yield a temporary folder whose files become the folder ``path`` only if the block succeeds.

    Only files phm-audit wrote are ever replaced or removed. The folder gets a manifest
    (``.phm-audit-manifest.json``) naming its files. A new folder, or one holding only an earlier
    run's files, is replaced whole in one step. A folder holding other files is refused unless
    ``overwrite`` is true; then the new files are moved into it one by one (the manifest last),
    the files of the earlier run that this one does not have are removed, and every other file is
    kept. A lock beside the folder stops two runs writing it at once, temporary folders are removed
    on every exit Python can handle (SIGTERM and SIGHUP included), and those left by a killed run are
    removed by the next run to the same folder.

    Parameters
    ----------
    path : str or Path
        The folder.
    overwrite : bool, default False
        Write into a folder that also holds other files (they are kept).
    files : sequence of str, optional
        The file names the block will write (checked before it starts).
    kind : str, default "report"
        What the folder holds (``"report"``, ``"dataset"``), for the messages.

    Yields
    ------
    Path
        A temporary folder beside ``path``; it is removed if the block raises.

    Raises
    ------
    PhmInputError
        The folder cannot be written, holds other files (without ``overwrite``), or another run is writing it.
    """
    final = _final_path(path, kind)
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhmInputError(f"cannot create the folder {parent}: {exc.strerror}; choose another --out") from None
    if not os.access(parent, os.W_OK):
        raise PhmInputError(f"cannot write in {parent}: permission denied; choose another --out")
    with terminate_as_exception(), _folder_lock(final, path):
        _sweep(final)
        check_folder(final, overwrite=overwrite, files=files, kind=kind)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=parent))
        try:
            yield tmp
            names = _write_manifest(tmp)
            os.chmod(tmp, 0o755)
            earlier, foreign = _foreign_files(final)
            if not final.exists():
                os.replace(tmp, final)
            elif not foreign and not _holds_cwd(final):
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
                os.replace(final, old / final.name)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:  # other files live here (kept), or it is the working folder: move the new files in
                for name in [*names, MANIFEST_NAME]:
                    os.replace(tmp / name, final / name)
                for name in set(earlier) - {*names, MANIFEST_NAME}:
                    if (final / name).is_file() and not (final / name).is_symlink():
                        (final / name).unlink()
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
