"""Paths from users, checked where they enter (CLI arguments, server flags at start, request fields at
request time), so that a bad one is a one-line UserError that says what is wrong with it - a symlink
loop, a broken link, a file where a folder should be, an output that would replace an input - and
never an `internal` error or a lost file later.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError


def _stat_problem(p: Path, exc: OSError, what: str) -> UserError:
    if exc.errno == errno.ELOOP:
        return UserError(f"{what} {p}: a symbolic link loop (too many levels of symbolic links)")
    if exc.errno == errno.ENOENT:
        if os.path.islink(p):
            try:
                target = os.readlink(p)
            except OSError:
                target = "?"
            return UserError(f"{what} not found: {p} (a broken symbolic link to {target})")
        return UserError(f"{what} not found: {p}")
    if exc.errno == errno.ENOTDIR:
        return UserError(f"{what} not found: {p} (a part of the path is a file, not a folder)")
    if exc.errno == errno.ENAMETOOLONG:
        return UserError(f"{what} path is too long: {str(p)[:80]}...")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UserError(f"cannot read {what} {p}: permission denied")
    return UserError(f"cannot read {what} {p}: {exc.strerror or exc}")


def check_input_file(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a Path when it is a readable regular file; else UserError naming `what` and the problem."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _stat_problem(p, exc, what) from None
    except ValueError:  # an embedded NUL
        raise UserError(f"{what} path is not a valid file name: {str(p)!r}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} is a folder, not a file: {p}")
    if not stat.S_ISREG(st.st_mode):  # a device or a pipe would block or never end
        raise UserError(f"{what} is not a regular file: {p}")
    if not os.access(p, os.R_OK):
        raise UserError(f"cannot read {what} {p}: permission denied")
    return p


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether `a` and `b` are one file: the same resolved path, or the same inode (a hard link)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_outputs_spare_inputs(outputs: Iterable[str | os.PathLike[str]],
                               inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """UserError when an output would replace one of the `inputs` ((what, path) pairs; None skipped)."""
    given = [(what, p) for what, p in inputs if p is not None and os.path.lexists(p)]
    for out in outputs:
        if not os.path.lexists(out):
            continue
        for what, p in given:
            if same_file(out, p):
                raise UserError(f"the output {out} is the {what} {p}: writing it would destroy that input; "
                                f"choose another output name")


def check_folder(folder: str | os.PathLike[str], what: str) -> Path:
    """`folder` (expanded) when it is, or can be made as, a writable folder: its nearest existing
    ancestor must be a folder we may write into. UserError otherwise. Creates nothing."""
    p = Path(folder).expanduser()
    probe = p
    while True:
        try:
            st = os.stat(probe)
            break
        except FileNotFoundError:
            if probe.parent == probe:
                raise UserError(f"cannot use {what} {p}: no such place") from None
            probe = probe.parent
        except NotADirectoryError:
            raise UserError(f"cannot use {what} {p}: a part of the path is a file, not a folder") from None
        except OSError as exc:
            raise UserError(f"cannot use {what} {p}: {exc.strerror or exc}") from None
        except ValueError:
            raise UserError(f"cannot use {what} {str(p)!r}: not a valid folder name") from None
    if not stat.S_ISDIR(st.st_mode):
        where = "it is a file" if probe == p else f"{probe} is a file"
        raise UserError(f"cannot use {what} {p}: {where}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot use {what} {p}: permission denied")
    return p


def make_folder(folder: str | os.PathLike[str], what: str) -> Path:
    """`check_folder`, then create it and prove it writable with a probe file (root passes os.access
    everywhere; /proc and read-only mounts refuse only when written). UserError otherwise."""
    import tempfile

    p = check_folder(folder, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".img2maya-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot use {what} {p}: {exc.strerror or exc}") from None
    return p
