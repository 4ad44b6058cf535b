"""Which photos a batch holds and where each one's scene goes.

Inputs are photos and folders. A folder gives its photos (by suffix, hidden files skipped), sorted by
name; with `recursive` its subfolders' too (symbolic links to folders are not followed, the output
folder is never searched). Every photo's output keeps its path relative to the batch root, the deepest
folder holding every input: `OUT/<relative path minus suffix>.<format>`, so `a/IMG_1.jpg` and
`b/IMG_1.jpg` never collide, and a rerun with the same inputs maps every photo to the same file. Two
photos of one folder that differ only in their suffix (`x.jpg`, `x.png`) keep their whole name
(`x.jpg.json`, `x.png.json`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import UserError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".bmp")


@dataclass(frozen=True)
class Job:
    """One photo of a batch."""

    index: int  # its place in the batch (sorted order)
    source: str  # the photo, an absolute path
    key: str  # its output relative to OUT, POSIX separators: the manifest's key
    output: str  # the output, an absolute path
    sha256: str | None = None  # of the photo's bytes when the driver hashed it


def is_photo_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(PHOTO_SUFFIXES)


def _folder_problem(folder: Path, exc: OSError) -> UserError:
    reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
    return UserError(f"cannot read folder {folder}: {reason}")


def _scan(folder: Path, recursive: bool, skip: Path | None) -> list[Path]:
    """The photos in `folder` (sorted; subfolders after the files of their parent when recursive)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise _folder_problem(folder, exc) from None
    photos, subfolders = [], []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                if recursive and (skip is None or Path(e.path) != skip):
                    subfolders.append(Path(e.path))
            elif is_photo_name(e.name) and e.is_file():
                photos.append(Path(e.path))
        except OSError:
            continue
    for sub in subfolders:
        photos.extend(_scan(sub, recursive, skip))
    return photos


def expand(inputs: Sequence[str], recursive: bool = False, skip: str | os.PathLike[str] | None = None
           ) -> tuple[list[Path], Path]:
    """(photos as absolute paths, in the order given with each folder's photos sorted, duplicates dropped;
    the batch root). UserError for an unreadable folder or one without photos. A file is taken as given
    (whatever its suffix: a missing or broken one fails as that photo's error, the others still run)."""
    skip_path = Path(os.path.abspath(skip)) if skip is not None else None
    photos: list[Path] = []
    places: list[Path] = []
    for item in inputs:
        p = Path(os.path.abspath(item))
        try:
            is_dir = stat.S_ISDIR(os.stat(p).st_mode)
        except (OSError, ValueError):
            is_dir = False
        if is_dir:
            found = _scan(p, recursive, skip_path)
            if not found:
                hint = "" if recursive else "; --recursive to look into its subfolders"
                raise UserError(f"folder {item} holds no photos ({', '.join(PHOTO_SUFFIXES)}){hint}")
            photos.extend(found)
            places.append(p)
        else:
            photos.append(p)
            places.append(p.parent)
    root = Path(os.path.commonpath([str(q) for q in places])) if places else Path.cwd()
    return list(dict.fromkeys(photos)), root


def _relative(photo: Path, root: Path) -> PurePosixPath:
    return PurePosixPath(*photo.relative_to(root).parts)


def plan(inputs: Sequence[str], out: str | os.PathLike[str], fmt: str, recursive: bool = False) -> list[Job]:
    """The batch's jobs: every photo and its output `OUT/<relative path>.<fmt>` (see the module doc)."""
    folder = Path(os.path.abspath(out))
    photos, root = expand(inputs, recursive, skip=folder)
    rels = [_relative(p, root) for p in photos]
    suffix = "." + fmt
    by_stem: dict[PurePosixPath, int] = {}
    for rel in rels:
        stem = rel.with_suffix("") if rel.suffix else rel
        by_stem[stem] = by_stem.get(stem, 0) + 1
    jobs = []
    for k, (photo, rel) in enumerate(zip(photos, rels, strict=True)):
        stem = rel.with_suffix("") if rel.suffix else rel
        name = rel if by_stem[stem] > 1 else stem
        key = str(name.with_name(name.name + suffix))
        jobs.append(Job(k, str(photo), key, str(folder.joinpath(*PurePosixPath(key).parts))))
    return jobs


def _identity(path: str | os.PathLike[str]) -> tuple[str, tuple[int, int] | None]:
    real = os.path.realpath(path)
    try:
        st = os.stat(path)
        return real, (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return real, None


def check_outputs_spare_inputs(outputs: Iterable[str | os.PathLike[str]],
                               inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """UserError when an output would replace an input (the same resolved path or inode). Linear in the
    number of files (userpaths.check_outputs_spare_inputs compares every pair: too slow for thousands)."""
    by_path: dict[str, tuple[str, str]] = {}
    by_inode: dict[tuple[int, int], tuple[str, str]] = {}
    for what, p in inputs:
        if p is None or not os.path.lexists(p):
            continue
        real, inode = _identity(p)
        by_path.setdefault(real, (what, str(p)))
        if inode is not None:
            by_inode.setdefault(inode, (what, str(p)))
    for out in outputs:
        if not os.path.lexists(out):
            continue
        real, inode = _identity(out)
        hit = by_path.get(real) or (by_inode.get(inode) if inode is not None else None)
        if hit is not None:
            raise UserError(f"the output {out} is the {hit[0]} {hit[1]}: writing it would destroy that input; "
                            f"choose another output name")
