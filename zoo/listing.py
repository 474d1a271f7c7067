"""``zoo list``: rows of models, families and dataset adapters, from the catalogs alone.

Family members (``timm/<name>``) are listed only when asked for by prefix; otherwise a family
is one row, with its member count when the names are already cached (never listed for it).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

from zoo.catalogs import Family, plugins
from zoo.errors import ZooError
from zoo.registry import family_cache, family_names, index

__all__ = ["Listed", "list_models", "list_datasets", "list_entries"]


@dataclass
class Listed:
    """One row of ``zoo list``."""

    name: str
    kind: str  # model | dataset | family
    source: str
    summary: str
    tags: tuple[str, ...] = ()
    qualified: str = ""


def list_models(
    pattern: str | None = None,
    *,
    source: str | None = None,
    tag: str | None = None,
    families: bool = True,
) -> list[str]:
    """Model names matching an fnmatch ``pattern``, optionally from one source or with a tag.

    Family members (``timm/<name>``) are included only when ``pattern`` starts with the
    family's prefix, so the common listing never imports the family's package.
    """
    return [row.name for row in list_entries(pattern, source=source, tag=tag, families=families)
            if row.kind == "model"]


def list_datasets(pattern: str | None = None) -> list[str]:
    return [row.name for row in list_entries(pattern, kinds=("dataset",))]


def list_entries(
    pattern: str | None = None,
    *,
    source: str | None = None,
    tag: str | None = None,
    families: bool = True,
    kinds: tuple[str, ...] = ("model", "family", "dataset"),
) -> list[Listed]:
    """Rows for ``zoo list``: catalog models, family summaries (or members), dataset adapters."""
    rows: list[Listed] = []
    counts = {name: len(entries) for name, entries in index()["models"].items()}
    dcounts = {name: len(entries) for name, entries in index()["datasets"].items()}
    for plugin in plugins():
        if plugin.error:
            continue
        for name, card in plugin.models.items():
            qualified = f"{plugin.name}:{name}" if counts[name] > 1 else name
            rows.append(Listed(qualified, "model", plugin.name, card.summary, card.tags, f"{plugin.name}:{name}"))
        for name, info in plugin.datasets.items():
            qualified = f"{plugin.name}:{name}" if dcounts[name] > 1 else name
            rows.append(Listed(qualified, "dataset", plugin.name, info.summary, info.tags, f"{plugin.name}:{name}"))
        for family in plugin.families.values():
            wants_members = pattern is not None and pattern.startswith(family.prefix)
            if wants_members and families:
                for arch in family_names(family):
                    rows.append(Listed(family.prefix + arch, "model", family.name, "", ("family",)))
            else:
                count = _cached_count(family)
                summary = f"{family.summary} [{count} models]" if count else family.summary
                rows.append(Listed(family.prefix + "*", "family", plugin.name, summary))
    selected = []
    for row in rows:
        if row.kind not in kinds and not (row.kind == "family" and "model" in kinds and "family" in kinds):
            continue
        if pattern and not (fnmatch.fnmatchcase(row.name, pattern) or fnmatch.fnmatchcase(row.qualified, pattern)):
            continue
        if source and row.source != source:
            continue
        if tag and tag not in row.tags:
            continue
        selected.append(row)
    return selected


def _cached_count(family: Family) -> int | None:
    """How many members a family has, if its names are already cached (never lists)."""
    try:
        return len(json.loads(family_cache(family).read_text()))
    except (OSError, ValueError, ZooError):
        return None
