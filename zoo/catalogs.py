"""Catalogs: every ``zoo.plugins`` entry point's TOML file, read without importing any code.

Every catalog, the built-in one included, is a TOML file named by an entry point in the
``zoo.plugins`` group. The entry point's value is ``"package:file.toml"``: the file inside
that package's directory. The package is located with ``importlib.util.find_spec``, which
does not execute it, so listing never runs plugin code (keep the catalog in a top-level
package: a dotted module imports its parents). Model factories are ``"module:attr"``
strings, imported only when a model is built (:func:`zoo.registry.import_object`).

Entry points come from the standard library's ``importlib.metadata``: on Python >= 3.10 it
has ``entry_points(group=...)`` and ``EntryPoint.dist``, all this needs, so the
``importlib-metadata`` backport would only add an import.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo import settings
from zoo._version import __version__
from zoo.card import CardError, ModelCard, WeightSource
from zoo.errors import PluginError, ZooError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["GROUP", "BUILTIN", "Plugin", "DatasetInfo", "Family", "plugins"]

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
        found.insert(0, _read_plugin(BUILTIN, "zoo:registry.toml", "zoo-registry", __version__))
    for plugin in found:
        if plugin.error and settings.strict_plugins():
            raise PluginError(f"plugin {plugin.origin}: {plugin.error}")
    return tuple(found)


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
