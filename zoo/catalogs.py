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

import datetime
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
from zoo.errors import PluginError, ZooError, first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["GROUP", "BUILTIN", "Plugin", "DatasetInfo", "Family", "plugins", "parse_catalog"]

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
        parse_catalog(plugin.path.read_bytes(), plugin)
    except (OSError, ZooError) as exc:
        plugin.error = str(exc) or type(exc).__name__
    return plugin


def parse_catalog(text: str | bytes, plugin: Plugin | None = None) -> Plugin:
    """Read catalog TOML ``text`` into ``plugin`` (default: a new one named ``catalog``) and return it.

    A malformed catalog raises one :class:`PluginError` that says what is wrong, and leaves
    ``plugin`` without entries: a broken catalog contributes nothing, never half of itself.
    """
    plugin = plugin or Plugin(name="catalog", value="", distribution="?", version="?")
    where = plugin.path or "the catalog"
    try:
        _fill(plugin, _toml(text, where))
    except PluginError:
        _clear(plugin)
        raise
    except CardError as exc:
        _clear(plugin)
        raise PluginError(f"{where}: {exc}") from None
    return plugin


def _toml(text: str | bytes, where: Any) -> dict[str, Any]:
    try:
        return tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise PluginError(f"{where} is not UTF-8 text") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, and dates that do not exist
        raise PluginError(f"invalid TOML in {where}: {first_line(exc)}") from None
    except RecursionError:
        raise PluginError(f"invalid TOML in {where}: nested too deeply") from None


def _clear(plugin: Plugin) -> None:
    for entries in (plugin.models, plugin.datasets, plugin.families, plugin.weights):
        entries.clear()


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
    """Add the entries of a parsed catalog to ``plugin``; every value is type-checked first."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise PluginError(f"{plugin.path or 'the catalog'}: unknown sections {sorted(unknown)} "
                          f"(known: {', '.join(sorted(_TOP_KEYS))})")
    _check_plain(data)
    sections = {key: _tables(data.get(key, {}), key) for key in ("models", "datasets", "families", "weights")}
    if not isinstance(data.get("plugin", {}), dict):
        raise PluginError("[plugin] must be a table (summary = \"...\")")
    for name, table in sections["models"].items():
        _check_factory(table.get("factory"), f"model {name!r:.60}")
        plugin.models[name] = ModelCard.from_table(name, table, source=plugin.name,
                                                   distribution=plugin.distribution)
    for name, table in sections["datasets"].items():
        plugin.datasets[name] = _dataset(plugin, name, table)
    for name, table in sections["families"].items():
        plugin.families[name] = _family(plugin, name, table)
    for model, tags in sections["weights"].items():
        if not all(isinstance(t, dict) for t in tags.values()):
            raise PluginError(f"weights for {model!r:.60}: expected [weights.\"<model>\".<tag>] tables")
        plugin.weights[model] = {tag: WeightSource.from_table(tag, table) for tag, table in tags.items()}


def _dataset(plugin: Plugin, name: str, table: dict[str, Any]) -> DatasetInfo:
    what = f"dataset {name!r:.60}"
    _check_factory(table.get("factory"), what)
    return DatasetInfo(name=name, source=plugin.name, factory=table["factory"],
                       summary=_text(table, "summary", what), tags=_words(table, "tags", what),
                       suffixes=_words(table, "suffixes", what))


def _family(plugin: Plugin, name: str, table: dict[str, Any]) -> Family:
    what = f"family {name!r:.60}"
    for key in ("lister", "card"):
        _check_factory(table.get(key), f"{what} {key}")
    prefix = _text(table, "prefix", what, default=f"{name}/")
    if not prefix:
        raise PluginError(f"{what}: prefix must not be empty (it would claim every name)")
    return Family(name=name, source=plugin.name, prefix=prefix, lister=table["lister"], card=table["card"],
                  distribution=_text(table, "distribution", what, default=name),
                  summary=_text(table, "summary", what))


def _tables(value: Any, section: str) -> dict[str, dict[str, Any]]:
    """A section whose every entry is a table (``[models.NAME]``)."""
    if not isinstance(value, dict):
        raise PluginError(f"[{section}] must hold [{section}.NAME] tables, not a {type(value).__name__}")
    for name, entry in value.items():
        if not isinstance(entry, dict):
            raise PluginError(f"{section} {name!r:.60}: expected a [{section}.\"<name>\"] table, "
                              f"not a {type(entry).__name__}")
    return value


def _text(table: dict[str, Any], key: str, what: str, *, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise PluginError(f"{what}: {key} must be a string, not {value!r:.60}")
    return value


def _words(table: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PluginError(f"{what}: {key} must be a list of strings, not {value!r:.60}")
    return tuple(value)


def _check_plain(data: dict[str, Any]) -> None:
    """Refuse TOML dates and times: a card is written to files as JSON, which has none."""
    pending: list[Any] = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, (datetime.date, datetime.time)):
            raise PluginError(f"catalog values are text, numbers, booleans, lists and tables, not a date ({value})")


def _check_factory(value: Any, what: str) -> None:
    if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
        raise PluginError(f"{what}: factory must be a 'module:attr' string, not {value!r:.80}")
