"""Atomic file writing: write to a temporary file in the target directory, then rename.

Guarantees, for every output written through these helpers:

- readers never see a half-written file, and a failed or interrupted write (exception, SIGINT, SIGTERM)
  leaves neither the temporary file nor a new output behind; :func:`atomic_paths` extends this to several
  sibling outputs of one command (all appear together or none does);
- files get the permissions an ordinary ``open(path, "w")`` would give, i.e. ``0o666`` minus the user's
  umask (``tempfile.mkstemp`` would make them 0600, unreadable to collaborators on shared storage);
- an output that is an input of the same command, an existing directory, device, FIFO or socket, or a path
  whose parent is not a directory is refused with :class:`OutputPathError` (a ``ValueError`` naming the path).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hamforge._errors import HamforgeError
from hamforge._process import terminate_as_exception

__all__ = [
    "OutputPathError",
    "atomic_path",
    "atomic_paths",
    "check_apart",
    "strict_json",
    "check_output_path",
    "staged_directory",
    "write_csv_atomic",
    "write_text_atomic",
]


class OutputPathError(ValueError, HamforgeError):
    """An output path cannot (or must not) be written; the message names it."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def strict_json(obj: Any, **kw) -> str:
    """JSON text that every parser reads: NaN and infinities become null (``json.dumps`` would write the bare
    ``NaN`` / ``Infinity`` that are not JSON), numpy scalars and arrays plain numbers and lists, paths and other
    objects their ``str``. ``kw``: ``json.dumps`` options (indent, sort_keys)."""
    import json
    import math

    import numpy as np

    def clean(x):
        if isinstance(x, Mapping):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, np.ndarray):
            return clean(x.tolist())
        if isinstance(x, (bool, np.bool_)):
            return bool(x)
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None
        if x is None or isinstance(x, str):
            return x
        return str(x)

    return json.dumps(clean(obj), allow_nan=False, **kw)


def check_apart(
    outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike], *, folders_written_into=()
) -> None:
    """Refuse any output that is an input (also through symbolic or hard links) or a folder that contains one:
    replacing it would destroy what the command reads. ``OutputPathError`` names both. Outputs in
    ``folders_written_into`` are folders a command adds files to (never replaces): only "is an input" applies."""
    ins = [Path(i) for i in inputs if i is not None and (Path(i).exists() or Path(i).is_symlink())]
    for o in outputs:
        if o is None:
            continue
        po = Path(o)
        ro = Path(os.path.realpath(po))
        for pi in ins:
            ri = Path(os.path.realpath(pi))
            if ro == ri or ((po.exists() or po.is_symlink()) and _same_file(po, pi)):
                raise OutputPathError(f"{o}: output is the same file as the input {pi}; choose another output path")
            if ri.is_relative_to(ro) and o not in folders_written_into:
                raise OutputPathError(f"{o}: output folder contains the input {pi}; choose another output path")


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that ``path`` may be (re)placed by a new regular file; return it as a Path.

    Refused: ``path`` is the same file as one of ``inputs`` (also through links), an existing entry that is
    not a regular file (directory, device, FIFO, socket; a link to one counts as one), or a path with a parent
    that exists but is not a directory.
    """
    path = Path(path)
    for inp in inputs:
        if _same_file(path, Path(inp)):
            raise OutputPathError(f"{path}: output is the same file as the input {inp}; choose another output path")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # some parent is a file: reported below
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise OutputPathError(f"{path}: exists and is {kind}; refusing to replace it with an output file")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputPathError(f"{path}: cannot create the output, {parent} is not a directory")
            break
    return path


def _create_temp(path: Path) -> Path:
    """A new empty file next to ``path`` with mode 0o666 & ~umask (O_EXCL: never an existing file)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise OutputPathError(f"{path}: cannot create a temporary file next to it")  # pragma: no cover


def _prepare(path: Path) -> Path:
    check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _create_temp(path)
    except (FileExistsError, NotADirectoryError) as exc:
        raise OutputPathError(f"{path}: cannot create the output, a parent is not a directory ({exc})") from exc
    except PermissionError as exc:
        raise OutputPathError(f"{path}: cannot create the output: permission denied ({exc.filename})") from exc


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths next to each of ``paths``; on success rename them all onto ``paths``.

    For commands writing several outputs that belong together (a matrix file and its plot): if anything in
    the block fails, or SIGTERM/SIGINT arrives, no temporary file remains and no new output appears. The
    renames happen at the end, one after the other; should one of them fail, the outputs already renamed in
    this call are removed again, so a partial set is never left. Parent directories are created.
    """
    targets = [Path(p) for p in paths]
    with terminate_as_exception():
        temps: list[Path] = []
        done: list[Path] = []
        try:
            for p in targets:
                temps.append(_prepare(p))
            yield list(temps)
            for tmp, p in zip(temps, targets):
                check_output_path(p)  # it may have been replaced by something else meanwhile
                os.replace(tmp, p)
                done.append(p)
        except BaseException:
            for tmp in temps:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            for p in done:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            raise


@contextlib.contextmanager
def staged_directory(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden folder inside ``out_dir`` for a command that writes many files there; on success its
    files are moved into ``out_dir`` all together (as :func:`atomic_paths`), on failure or SIGTERM/SIGINT the
    folder is removed and ``out_dir`` keeps what it had. Subfolders are not supported (flat outputs only)."""
    import shutil

    out = Path(out_dir)
    check_output_path(out / ".staged")  # a parent that is a file is reported here
    out.mkdir(parents=True, exist_ok=True)
    with terminate_as_exception():
        stage = out / f".staged-{secrets.token_hex(4)}"
        stage.mkdir()
        try:
            yield stage
            names = sorted(p.name for p in stage.iterdir())
            if any((stage / n).is_dir() for n in names):
                raise OutputPathError(f"{stage}: subfolders are not supported in a staged output folder")
            with atomic_paths(*(out / n for n in names)) as temps:
                for n, tmp in zip(names, temps):
                    os.replace(stage / n, tmp)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On any exception (SIGINT and SIGTERM included) the temporary file is removed and ``path`` is left
    untouched, so readers never see a half-written file. Parent directories are created; see the module
    docstring for permissions and refused paths. Usage::

        with atomic_path("out.h5") as tmp:
            with h5py.File(tmp, "w") as f:
                ...
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path: str | os.PathLike, columns, header: str, fmt="%.12g") -> None:
    """Write numeric ``columns`` (a sequence of equal-length 1-D arrays) as CSV with one ``header`` line,
    atomically (``numpy.savetxt``; ``fmt`` one format or one per column)."""
    import numpy as np

    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack(columns), delimiter=",", fmt=fmt, header=header, comments="")
