"""Catalog and discovery: which models and dataset adapters exist, read without importing them.

Every catalog, the built-in one included, is a TOML file named by an entry point in the
``zoo.plugins`` group. The entry point's value is ``"package:file.toml"``: the file inside
that package's directory. The package is located with ``importlib.util.find_spec``, which
does not execute it, so listing never runs plugin code (keep the catalog in a top-level
package: a dotted module imports its parents). Model factories are ``"module:attr"``
strings, imported only when a model is built.

Installed catalogs are the only source of code: :func:`import_object` imports nothing that
an installed catalog does not declare, and :func:`catalog_card` turns a model named in a
file (checkpoint, resume state) into the catalog's own card, so no string read from a file
is ever imported.

Entry points come from the standard library's ``importlib.metadata``: on Python >= 3.10 it
has ``entry_points(group=...)`` and ``EntryPoint.dist``, all this needs, so the
``importlib-metadata`` backport would only add an import.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.card import CardError, ModelCard, WeightSource
from zoo.errors import AmbiguousNameError, PluginError, UnknownNameError, ZooError, close_matches

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "GROUP",
    "Plugin",
    "DatasetInfo",
    "Family",
    "plugins",
    "list_models",
    "list_datasets",
    "model_info",
    "dataset_info",
    "family_names",
    "catalog_card",
    "import_object",
    "reset",
]

GROUP = "zoo.plugins"
BUILTIN = "builtin"
_TOP_KEYS = {"models", "datasets", "families", "plugin", "weights"}


@dataclass
class DatasetInfo:
    """A dataset adapter's catalog entry."""

    name: str
    source: str
    factory: str
    summary: str = ""
    tags: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()  # file patterns it reads, for `zoo info`


@dataclass
class Family:
    """A dynamic family of models, e.g. every timm architecture as ``timm/<name>``."""

    name: str
    source: str
    prefix: str  # "timm/"
    lister: str  # "module:attr" returning the list of names
    card: str  # "module:attr" returning the ModelCard of one name
    distribution: str  # its names are cached per installed version of this distribution
    summary: str = ""


@dataclass
class Plugin:
    """One catalog, as found through an entry point, with whatever went wrong reading it."""

    name: str
    value: str
    distribution: str
    version: str
    path: Path | None = None
    models: dict[str, ModelCard] = field(default_factory=dict)
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    families: dict[str, Family] = field(default_factory=dict)
    # weight sources this catalog adds to other catalogs' models: model name -> tag -> source
    weights: dict[str, dict[str, WeightSource]] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def origin(self) -> str:
        """How error messages name it: entry point and distribution."""
        return f"entry point '{self.name} = {self.value}' of {self.distribution} {self.version}"


# -- discovery ---------------------------------------------------------------------------


@functools.cache
def plugins() -> tuple[Plugin, ...]:
    """Every catalog, read once per process. Broken ones carry an ``error`` and no entries."""
    found: list[Plugin] = []
    seen_builtin = False
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: (e.name != BUILTIN, e.name)):
        dist = ep.dist
        if ep.name == BUILTIN:
            if seen_builtin or ep.value.partition(":")[0] != "zoo":
                continue  # stale metadata of an older install, or an impostor
            seen_builtin = True
        found.append(
            _read_plugin(ep.name, ep.value, dist.metadata["Name"] if dist else "?", dist.version if dist else "?")
        )
    if not seen_builtin:  # running from a source tree that was never installed
        found.insert(0, _read_plugin(BUILTIN, "zoo:registry.toml", "zoo-registry", _zoo_version()))
    for plugin in found:
        if plugin.error and settings.strict_plugins():
            raise PluginError(f"plugin {plugin.origin}: {plugin.error}")
    return tuple(found)


def reset() -> None:
    """Forget what was discovered (tests, and after installing a plugin in-process)."""
    plugins.cache_clear()
    _index.cache_clear()
    _declared.clear()


def _zoo_version() -> str:
    from zoo import __version__

    return __version__


def _read_plugin(name: str, value: str, distribution: str, version: str) -> Plugin:
    plugin = Plugin(name=name, value=value, distribution=distribution, version=version)
    try:
        plugin.path = _catalog_path(value)
        with open(plugin.path, "rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ZooError(f"invalid TOML in {plugin.path}: {exc}") from None
        _fill(plugin, data)
    except (OSError, CardError, ZooError, ValueError, TypeError) as exc:
        plugin.models.clear()
        plugin.datasets.clear()
        plugin.families.clear()
        plugin.weights.clear()
        plugin.error = str(exc) or type(exc).__name__
    return plugin


def _catalog_path(value: str) -> Path:
    module, sep, filename = value.partition(":")
    if not sep or not module or not filename.endswith(".toml"):
        raise ZooError(f"entry point value '{value}' must be 'package:catalog.toml'")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ZooError(f"cannot locate package '{module}': {exc}") from None
    if spec is None:
        raise ZooError(f"package '{module}' is not installed")
    if spec.submodule_search_locations:
        folders = [Path(p) for p in spec.submodule_search_locations]
    elif spec.origin:
        folders = [Path(spec.origin).parent]
    else:
        raise ZooError(f"package '{module}' has no location on disk")
    # A source checkout keeps the built-in catalog beside the package, a wheel inside it.
    candidates = [d / filename for d in folders] + [d.parent / filename for d in folders]
    for path in candidates:
        if path.is_file():
            return path
    raise ZooError(f"catalog file '{filename}' not found in package '{module}' ({folders[0]})")


def _fill(plugin: Plugin, data: dict[str, Any]) -> None:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ZooError(f"{plugin.path}: unknown sections {sorted(unknown)}")
    for name, table in data.get("models", {}).items():
        _check_factory(table.get("factory"), f"model '{name}'")
        plugin.models[name] = ModelCard.from_table(name, table, source=plugin.name,
                                                   distribution=plugin.distribution)
    for name, table in data.get("datasets", {}).items():
        _check_factory(table.get("factory"), f"dataset '{name}'")
        try:
            plugin.datasets[name] = DatasetInfo(
                name=name,
                source=plugin.name,
                factory=table["factory"],
                summary=table.get("summary", ""),
                tags=tuple(table.get("tags", ())),
                suffixes=tuple(table.get("suffixes", ())),
            )
        except KeyError as exc:
            raise ZooError(f"dataset '{name}': missing key {exc}") from None
    for name, table in data.get("families", {}).items():
        for key in ("lister", "card"):
            _check_factory(table.get(key), f"family '{name}' {key}")
        plugin.families[name] = Family(
            name=name,
            source=plugin.name,
            prefix=table.get("prefix", f"{name}/"),
            lister=table["lister"],
            card=table["card"],
            distribution=table.get("distribution", name),
            summary=table.get("summary", ""),
        )
    for model, tags in data.get("weights", {}).items():
        if not isinstance(tags, dict) or not all(isinstance(t, dict) for t in tags.values()):
            raise ZooError(f"weights for '{model}': expected [weights.\"{model}\".<tag>] tables")
        plugin.weights[model] = {tag: WeightSource.from_table(tag, table) for tag, table in tags.items()}


def _check_factory(value: Any, what: str) -> None:
    if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
        raise ZooError(f"{what}: factory must be a 'module:attr' string, not {value!r}")


_declared: set[str] = set()  # "module:attr" strings of cards that installed family code returned


def declared_references() -> set[str]:
    """Every ``"module:attr"`` an installed catalog declares: model, dataset and family
    factories, weight providers and key maps (plus those of family members built so far)."""
    refs = set(_declared)
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
def _index() -> dict[str, dict[str, list[Any]]]:
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
    candidates = _index()[kind].get(ref, [])
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
    known = list(_index()["models"]) + [f.prefix + "<name>" for f in _families()]
    raise UnknownNameError(f"unknown model '{name}'.{close_matches(name, known)} See: zoo list")


def catalog_card(named: ModelCard) -> ModelCard:
    """The installed catalog's card for the model that ``named`` (read from a file) names.

    Only ``named.name`` and ``named.source`` are used: what builds the network, and where its
    weights come from, is the catalog's. A model no installed catalog declares is a one-line
    error that names it and, when the file records one, the distribution that provides it.
    """
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
        known = list(_index()["datasets"])
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
    path = _family_cache(family)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    names = list(import_object(family.lister, owner=f"family '{family.name}'")())
    _write_atomic(path, json.dumps(names))
    return names


def _family_cache(family: Family) -> Path:
    try:
        version = metadata.version(family.distribution)
    except metadata.PackageNotFoundError:
        raise ZooError(
            f"model family '{family.name}' needs the '{family.distribution}' package: "
            f"pip install {family.distribution}"
        ) from None
    return settings.cache_dir() / "families" / f"{family.name}-{family.distribution}-{version}.json"


def _cached_count(family: Family) -> int | None:
    """How many members a family has, if its names are already cached (never lists)."""
    try:
        return len(json.loads(_family_cache(family).read_text()))
    except (OSError, ValueError, ZooError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs speed, not correctness


# -- listing -----------------------------------------------------------------------------


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
    counts = {name: len(entries) for name, entries in _index()["models"].items()}
    dcounts = {name: len(entries) for name, entries in _index()["datasets"].items()}
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


def create_factory(card: ModelCard) -> Callable[..., Any]:
    """The callable that builds a card's network (imports the factory's module)."""
    return import_object(card.factory, owner=f"{card.source} catalog, model '{card.name}'")
