"""The ``digits`` adapter: a folder written by make-digits, read with its ``digits.json``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from zoo.data.base import warn_data
from zoo.data.folder import FolderDataset
from zoo.errors import ZooError

__all__ = ["DigitsDataset", "METADATA_FILE"]

#: the provenance file make-digits writes beside the class folders (seed, fonts, style)
METADATA_FILE = "digits.json"


class DigitsDataset(FolderDataset):
    """A make-digits folder: a folder dataset whose ``metadata`` holds the fonts and seed."""

    def __init__(self, root: str | Path, **options: Any) -> None:
        meta_path = Path(root).expanduser() / METADATA_FILE
        if Path(root).expanduser().is_dir() and not meta_path.is_file():
            raise ZooError(f"'{root}' has no {METADATA_FILE}: it was not made by 'zoo data make-digits' (use adapter 'folder')")
        options.setdefault("warn", functools.partial(warn_data, stacklevel=4))  # names the line calling open_dataset
        super().__init__(root, **options)
        try:
            self.metadata: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ZooError(f"cannot read {meta_path}: {exc}") from None
