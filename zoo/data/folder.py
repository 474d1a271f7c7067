"""``folder`` adapter: DIR/<label>/**/*.<image>, labels from folder names (imageDatastore).

MATLAB's ``imageDatastore(path, 'IncludeSubfolders', true, 'LabelSource', 'foldernames')``.
Hidden files and folders (``.DS_Store``, ``._x.jpg``) are ignored. Files are only listed here:
a corrupt or too large file is found when it is decoded, and ``zoo.data.to_tensors`` skips it
with one warning.

Symbolic links are followed once per data set (:class:`FolderWalk`): one walk over every class
folder, the root and the class folders claimed first, so a link to the root, to a class folder
or to a folder already walked is skipped (a link loop ends the walk, not the program), and an
image keeps one label. Links are followed after every real folder is listed, so an image reached
both where it lies and through a link keeps its real folder's class; one reached only through
links keeps the class of the first link in path order. Links that lead outside the data folder
are skipped unless asked (``follow_links=True`` or ``ZOO_FOLLOW_LINKS=1``): a folder from
elsewhere could link to anything on the machine. One warning names the links skipped.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from zoo import settings
from zoo.data.base import ImageDataset, warn_data
from zoo.errors import ZooError
from zoo.preprocess import IMAGE_SUFFIXES, open_image

__all__ = ["FolderDataset", "FolderWalk", "list_images"]

#: how many skipped links the warning names per kind before it only counts the rest
MAX_NAMED = 10

_Identity = tuple[int, int]  # (st_dev, st_ino): one real file or folder, whatever the path


def _identity(info: os.stat_result) -> _Identity:
    return info.st_dev, info.st_ino


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


class FolderWalk:
    """One walk over a data folder: every real folder entered once and every linked file listed
    once, across all class folders.

    ``walk.run(class_dirs)`` gives ``{class name: sorted image paths}``; afterwards ``loops``
    (links that loop, dangle or lead to a folder already in the set), ``duplicates`` (links to
    images already listed) and ``outside`` (links out of the data folder, not followed) name
    what was skipped, and :meth:`warning` says it in one line.
    """

    def __init__(self, root: Path, *, follow_links: bool = False) -> None:
        self.root = Path(root)
        self.real_root = os.path.realpath(root)
        self.follow_links = follow_links
        self.folders: set[_Identity] = set()  # entered, or claimed before the walk
        self._files: set[_Identity] | None = None  # listed files, gathered when the first link needs them
        self.found: dict[str, list[Path]] = {}
        self.links: list[tuple[Path, str]] = []  # met in the walk, followed after the real folders
        self.loops: list[str] = []
        self.duplicates: list[str] = []
        self.outside: list[str] = []

    def run(self, class_dirs: list[Path]) -> dict[str, list[Path]]:
        """``{class folder name: its images, sorted}`` for the class folders kept."""
        self.folders.add(_identity(os.stat(self.root)))
        classes = self._claim(class_dirs)
        for folder in classes:
            self._walk(folder, folder.name)
        self._follow_links()
        return {folder.name: sorted(self.found.get(folder.name, [])) for folder in classes}

    def images(self) -> list[Path]:
        """Every image under the root itself, sorted (a folder to classify, no labels)."""
        self.folders.add(_identity(os.stat(self.root)))
        self._walk(self.root, "")
        self._follow_links()
        return sorted(self.found[""])

    def _follow_links(self) -> None:
        while self.links:  # links inside followed folders are met while following: another round
            pending, self.links = sorted(self.links), []
            for link, label in pending:
                self._follow(link, label)

    def _claim(self, class_dirs: list[Path]) -> list[Path]:
        """Mark every class folder as walked before any walk starts; real folders claim before links."""
        kept: set[Path] = set()
        for folder in sorted(class_dirs, key=os.path.islink):  # stable: name order within each kind
            try:
                ident = _identity(folder.stat())
            except OSError:
                self.loops.append(self._name(folder))
                continue
            if ident in self.folders:
                self.loops.append(self._name(folder))
            elif os.path.islink(folder) and not self._may_follow(folder):
                self.outside.append(self._name(folder, target=True))
            else:
                self.folders.add(ident)
                kept.add(folder)
        return [folder for folder in class_dirs if folder in kept]

    def _walk(self, folder: Path, label: str, *, linked: bool = False) -> None:
        """List the images under ``folder`` (already claimed), entering real subfolders once; links wait.

        ``linked``: ``folder`` was reached through a link, so its files may be listed already.
        """
        found = self.found.setdefault(label, [])
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                entries = list(os.scandir(current))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_symlink():
                        self.links.append((Path(entry.path), label))
                    elif entry.is_dir(follow_symlinks=False):
                        ident = _identity(entry.stat(follow_symlinks=False))
                        if ident in self.folders:  # a bind mount of a folder already walked
                            self.loops.append(self._name(Path(entry.path)))
                        else:
                            self.folders.add(ident)
                            pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False) and _is_image_name(entry.name):
                        path = Path(entry.path)
                        if not linked or self._first_time(path, entry.stat(follow_symlinks=False)):
                            found.append(path)
                except OSError:
                    continue

    def _follow(self, link: Path, label: str) -> None:
        try:
            info = link.stat()
        except OSError:  # dangling, or a loop of links the OS refuses to resolve
            self.loops.append(self._name(link))
            return
        is_dir = stat.S_ISDIR(info.st_mode)
        if not is_dir and not (stat.S_ISREG(info.st_mode) and _is_image_name(link.name)):
            return
        if is_dir and _identity(info) in self.folders:
            self.loops.append(self._name(link))
        elif not self._may_follow(link):
            self.outside.append(self._name(link, target=True))
        elif is_dir:
            self.folders.add(_identity(info))
            self._walk(link, label, linked=True)
        elif self._first_time(link, info):
            self.found.setdefault(label, []).append(link)

    def _first_time(self, path: Path, info: os.stat_result) -> bool:
        """Whether a file reached through a link is not listed yet (else it counts as a duplicate)."""
        if self._files is None:  # the first file link: the files listed so far, once
            self._files = set()
            for listed in (p for paths in self.found.values() for p in paths):
                try:
                    self._files.add(_identity(listed.stat()))
                except OSError:
                    continue
        if _identity(info) in self._files:
            self.duplicates.append(self._name(path))
            return False
        self._files.add(_identity(info))
        return True

    def _may_follow(self, link: Path) -> bool:
        if self.follow_links:
            return True
        target = os.path.realpath(link)
        return os.path.commonpath([target, self.real_root]) == self.real_root

    def _name(self, path: Path, *, target: bool = False) -> str:
        name = os.path.relpath(path, self.root)
        return f"{name} -> {os.path.realpath(path)}" if target else name

    def warning(self) -> str | None:
        """One line naming the skipped links and how to follow those that lead outside, or None."""
        parts = []
        if self.loops:
            parts.append(f"{len(self.loops)} that loop or dangle, or lead to a folder already in the data set: "
                         f"{_names(self.loops)}")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} to images listed at another path (an image keeps one label: "
                         f"its real folder's, else its first link's): {_names(self.duplicates)}")
        if self.outside:
            parts.append(f"{len(self.outside)} that lead outside the data folder: {_names(self.outside)} "
                         "(to follow those, set ZOO_FOLLOW_LINKS=1 or pass follow_links=True)")
        total = len(self.loops) + len(self.duplicates) + len(self.outside)
        return f"skipped {total} link(s) in '{self.root}': " + "; ".join(parts) if parts else None


def _names(items: list[str]) -> str:
    more = f", and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
    return ", ".join(items[:MAX_NAMED]) + more


def list_images(folder: str | Path, *, follow_links: bool | None = None,
                warn: Callable[[str], None] | None = None) -> list[Path]:
    """Image files under ``folder``, recursively, sorted, by the rules of a data set's walk
    (each real folder and linked file once; links out of ``folder`` only with ``follow_links``,
    default ``ZOO_FOLLOW_LINKS``). ``warn`` receives the skipped-links line."""
    if not Path(folder).is_dir():
        raise ZooError(f"folder '{folder}' does not exist")
    walk = FolderWalk(Path(folder), follow_links=settings.follow_links() if follow_links is None else follow_links)
    files = walk.images()
    message = walk.warning()
    if message and warn:
        warn(message)
    return files


class FolderDataset(ImageDataset):
    """Every image under ``root/<label>/``, recursively; labels are the folder names, sorted.

    A class folder without images is left out with a warning (as imageDatastore has no
    label for it); a folder with no usable class folder is a ``ZooError``. ``follow_links``:
    follow symbolic links that lead outside ``root`` (default: ``ZOO_FOLLOW_LINKS``, else no).
    """

    def __init__(self, root: str | Path, *, warn: Callable[[str], None] | None = None,
                 follow_links: bool | None = None) -> None:
        warn = warn or functools.partial(warn_data, stacklevel=3)  # names the line calling open_dataset
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise ZooError(f"data folder '{root}' does not exist")
        if not self.root.is_dir():
            raise ZooError(f"'{root}' is a file, not a folder: give a folder with one subfolder per label")
        try:
            children = sorted(self.root.iterdir())
        except OSError as exc:
            raise ZooError(f"cannot read data folder '{root}': {exc.strerror or exc}") from None
        class_dirs = [p for p in children if not p.name.startswith(".") and _is_dir(p)]
        if not class_dirs:
            loose = sum(1 for p in children if p.suffix.lower() in IMAGE_SUFFIXES)
            hint = f" (it holds {loose} images directly: move them into {root}/<label>/)" if loose else ""
            raise ZooError(f"'{root}' has no class folders{hint}: put images in {root}/<label>/*.png")
        self.follow_links = settings.follow_links() if follow_links is None else bool(follow_links)
        walk = FolderWalk(self.root, follow_links=self.follow_links)
        found = walk.run(class_dirs)
        message = walk.warning()
        if message:
            warn(message)
        self.classes = [name for name, files in found.items() if files]
        if not self.classes:
            raise ZooError(f"no class folder in '{root}' holds images ({', '.join(IMAGE_SUFFIXES)})")
        empty = [name for name, files in found.items() if not files]
        if empty:
            warn(f"left out {len(empty)} class folder(s) without images: {', '.join(empty)}")
        self.paths: list[Path] = [path for name in self.classes for path in found[name]]
        self.labels = np.repeat(np.arange(len(self.classes), dtype=np.int64),
                                [len(found[name]) for name in self.classes])

    def load(self, index: int) -> Image.Image:
        return open_image(self.paths[index])

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def fingerprint(self) -> str:
        """Paths, sizes and modification times of every file, and the class names."""
        h = hashlib.sha256(type(self).__name__.encode())
        for path in self.paths:
            try:
                info = path.stat()
                stamp = f"{info.st_size}:{info.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(f"{path}\0{stamp}\0".encode("utf-8", "surrogateescape"))
        h.update("\0".join(self.classes).encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False
