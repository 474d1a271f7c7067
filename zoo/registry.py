"""The registry: look up what the installed catalogs declare, and import only that.

A name (``digitnet``, ``timm/resnet18``, ``plugin:name``) becomes the catalog's card
(:func:`model_info`) or dataset entry (:func:`dataset_info`). Installed catalogs
(:mod:`zoo.catalogs`) are the only source of code: :func:`import_object` imports nothing that
an installed catalog does not declare, and :func:`catalog_card` turns a model named in a file
(checkpoint, resume state) into the catalog's own card, so no string read from a file is ever
imported.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.atomic import write_file
from zoo.card import ModelCard
from zoo.catalogs import DatasetInfo, Family, Plugin, plugins
from zoo.errors import (
    AmbiguousNameError,
    OutputError,
    PluginError,
    UnknownNameError,
    ZooError,
    close_matches,
)

__all__ = [
    "LAYERS_SOURCE",
    "PYTHON_SOURCE",
    "model_info",
    "dataset_info",
    "catalog_card",
    "family_names",
    "family_cache",
    "index",
    "import_object",
    "declared_references",
    "create_factory",
    "reset",
]


def reset() -> None:
    """Forget what was discovered (tests, and after installing a plugin in-process)."""
    plugins.cache_clear()
    index.cache_clear()
    _declared.clear()


_declared: set[str] = set()  # "module:attr" strings of cards that installed family code returned


#: sources of networks the user defines rather than a catalog (see zoo.networks)
LAYERS_SOURCE = "layers"  # a layer array, stored in the card as data
PYTHON_SOURCE = "python"  # a Python factory, given again by the user to load
#: zoo's own builder of layer arrays: the one factory that takes its arguments from a file
LAYERS_BUILDER = "zoo.layers.build:build_network"


def declared_references() -> set[str]:
    """Every ``"module:attr"`` an installed catalog declares: model, dataset and family
    factories, weight providers and key maps (plus those of family members built so far),
    and zoo's own layer builder."""
    refs = set(_declared) | {LAYERS_BUILDER}
    for plugin in plugins():
        for card in plugin.models.values():
            refs |= _card_references(card)
        refs |= {info.factory for info in plugin.datasets.values()}
        for family in plugin.families.values():
            refs |= {family.lister, family.card}
        for sources in plugin.weights.values():
            refs |= {ref for source in sources.values() for ref in (source.provider, source.key_map) if ref}
    return refs


def _card_references(card: ModelCard) -> set[str]:
    refs = {card.factory} if card.factory else set()
    return refs | {ref for w in card.weights.values() for ref in (w.provider, w.key_map) if ref}


def import_object(ref: str, *, owner: str = "") -> Any:
    """Import ``"module:attr"`` declared by an installed catalog; a failure names the catalog.

    Anything else is refused before it is imported: strings from files never become code.
    Each call raises the audit event ``zoo.import_object`` (see :func:`sys.addaudithook`).
    """
    sys.audit("zoo.import_object", ref)
    if ref not in declared_references():
        raise PluginError(f"refusing to import '{ref:.80}': no installed catalog declares it")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a plugin's import can fail in any way
        where = f" (declared by {owner})" if owner else ""
        raise PluginError(f"cannot import '{ref}'{where}: {type(exc).__name__}: {exc}") from None
    return obj


# -- lookup ------------------------------------------------------------------------------


@functools.cache
def index() -> dict[str, dict[str, list[Any]]]:
    index: dict[str, dict[str, list[Any]]] = {"models": {}, "datasets": {}}
    for plugin in plugins():
        for kind in index:
            for name, entry in getattr(plugin, kind).items():
                index[kind].setdefault(name, []).append(entry)
    return index


def _plugin_named(name: str) -> Plugin | None:
    return next((p for p in plugins() if p.name == name), None)


def _lookup(kind: str, ref: str) -> Any:
    noun = "model" if kind == "models" else "dataset adapter"
    qualifier, sep, bare = ref.partition(":")
    if sep and _plugin_named(qualifier):
        plugin = _plugin_named(qualifier)
        assert plugin is not None
        if plugin.error:
            raise PluginError(f"plugin {plugin.origin} is broken: {plugin.error}")
        entries = getattr(plugin, kind)
        if bare not in entries:
            raise UnknownNameError(
                f"plugin '{qualifier}' declares no {noun} '{bare}'.{close_matches(bare, entries)}"
            )
        return entries[bare]
    candidates = index()[kind].get(ref, [])
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        owners = [_plugin_named(c.source) for c in candidates]
        named = " and ".join(p.origin if p else c.source for p, c in zip(owners, candidates))
        picks = " or ".join(f"'{c.source}:{ref}'" for c in candidates)
        raise AmbiguousNameError(f"{noun} '{ref}' is declared by {named}; pick one with {picks}")
    return None


def model_info(name: str) -> ModelCard:
    """The catalog card of a model name (``digitnet``, ``timm/resnet18``, ``plugin:name``)."""
    card = _lookup("models", name)
    if card is not None:
        return _attach_weights(card.replace())  # a copy: callers may change it
    family = _family_for(name)
    if family is not None:
        arch = name[len(family.prefix):]
        names = family_names(family)
        if arch not in names:
            raise UnknownNameError(
                f"unknown {family.name} model '{arch}'.{close_matches(arch, names)}"
                f" List them with: zoo list '{family.prefix}*'"
            )
        card = import_object(family.card, owner=f"family '{family.name}'")(arch)
        if not isinstance(card, ModelCard):
            raise PluginError(f"family '{family.name}' card function returned {type(card).__name__}")
        _declared.update(_card_references(card))  # installed code chose these references
        return _attach_weights(card.replace(distribution=card.distribution or family.distribution))
    known = list(index()["models"]) + [f.prefix + "<name>" for f in _families()]
    raise UnknownNameError(f"unknown model '{name}'.{close_matches(name, known)} See: zoo list{_broken_note()}")


def _broken_note() -> str:
    """A name that is unknown may be a broken plugin's: say that some were skipped."""
    broken = [p.name for p in plugins() if p.error]
    return f" (skipped as broken: plugin {', '.join(broken)}; see 'zoo plugins')" if broken else ""


def catalog_card(named: ModelCard) -> ModelCard:
    """The installed catalog's card for the model that ``named`` (read from a file) names.

    Only ``named.name`` and ``named.source`` are used: what builds the network, and where its
    weights come from, is the catalog's. A model no installed catalog declares is a one-line
    error that names it and, when the file records one, the distribution that provides it.

    A layer-array network (source ``layers``) is built by zoo's own layer builder from the
    layers the card holds as data, which the builder validates before it builds anything.
    """
    if named.source == LAYERS_SOURCE:
        return named.replace(factory=LAYERS_BUILDER,
                             factory_args={"layers": list(named.layers), "num_classes": named.num_classes})
    if named.source == PYTHON_SOURCE:
        defined = str(named.extra.get("network", "a Python file"))[:200]
        raise ZooError(f"model '{named.name}' was defined in Python ({defined}); zoo never imports code named "
                       f"in a file: give the definition again with --network FILE.py:NAME (Python: network=)")
    plugin = _plugin_named(named.source)
    qualified = plugin is not None and not plugin.error and named.name in plugin.models
    try:
        card = model_info(f"{named.source}:{named.name}" if qualified else named.name)
    except UnknownNameError:
        raise UnknownNameError(_not_installed(named)) from None
    if card.source != named.source:
        raise UnknownNameError(_not_installed(named, installed=f"{card.source}:{card.name}"))
    return card


def _not_installed(named: ModelCard, installed: str = "") -> str:
    message = f"model '{named.name}' from catalog '{named.source}' is not installed"
    if installed:
        message += f" (only '{installed}' is)"
    if _DISTRIBUTION.fullmatch(named.distribution) and named.distribution != "zoo-registry":
        return (f"{message}; the file names the package '{named.distribution}' as its source: if you trust it, "
                f"pip install {named.distribution}")
    return f"{message}; install the plugin that provides it (installed plugins: zoo plugins)"


_DISTRIBUTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _attach_weights(card: ModelCard) -> ModelCard:
    """Add the weight sources plugins declare for this model (``[weights."<name>".<tag>]``,
    or ``"<source>:<name>"``). A tag the card already has gets only its empty fields filled."""
    merged = dict(card.weights)
    for plugin in plugins():
        for key in (card.name, f"{card.source}:{card.name}"):
            for tag, extra in plugin.weights.get(key, {}).items():
                old = merged.get(tag)
                if old is None:
                    merged[tag] = extra
                else:
                    fill = {f.name: getattr(extra, f.name) for f in dataclasses.fields(extra)
                            if getattr(old, f.name) in ("", ()) and getattr(extra, f.name) not in ("", ())}
                    merged[tag] = dataclasses.replace(old, **fill)
    card.weights = merged
    return card


def dataset_info(name: str) -> DatasetInfo:
    """The catalog entry of a dataset adapter (``folder``, ``digits``, ``idx``, plugins')."""
    info = _lookup("datasets", name)
    if info is None:
        known = list(index()["datasets"])
        raise UnknownNameError(
            f"unknown dataset adapter '{name}'.{close_matches(name, known)} See: zoo list --datasets"
        )
    return info


def _families() -> Iterator[Family]:
    for plugin in plugins():
        yield from plugin.families.values()


def _family_for(name: str) -> Family | None:
    return next((f for f in _families() if name.startswith(f.prefix)), None)


def family_names(family: Family | str) -> list[str]:
    """All names of a family, cached on disk per installed version of its distribution."""
    if isinstance(family, str):
        found = next((f for f in _families() if f.name == family), None)
        if found is None:
            raise UnknownNameError(f"unknown model family '{family}'")
        family = found
    path = family_cache(family)
    cached = _cached_names(path)
    if cached is not None:
        return cached
    names = list(import_object(family.lister, owner=f"family '{family.name}'")())
    _write_atomic(path, json.dumps(names))
    return names


def _cached_names(path: Path) -> list[str] | None:
    """The names in a family cache file, or None when it is missing, empty or damaged (then it is rebuilt)."""
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None
    return names


def family_cache(family: Family) -> Path:
    try:
        version = metadata.version(family.distribution)
    except metadata.PackageNotFoundError:
        raise ZooError(
            f"model family '{family.name}' needs the '{family.distribution}' package: "
            f"pip install {family.distribution}"
        ) from None
    return settings.cache_dir() / "families" / f"{family.name}-{family.distribution}-{version}.json"


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_file(path, text)
    except (OSError, OutputError):
        pass  # a read-only or full cache costs speed, not correctness


def create_factory(card: ModelCard) -> Callable[..., Any]:
    """The callable that builds a card's network (imports the factory's module)."""
    return import_object(card.factory, owner=f"{card.source} catalog, model '{card.name}'")
