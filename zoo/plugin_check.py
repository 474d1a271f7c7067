"""Health of every catalog: readable, factories importable, and (on request) models buildable."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from zoo.catalogs import BUILTIN, Plugin, plugins
from zoo.registry import import_object
from zoo.errors import ZooError

__all__ = ["PluginReport", "check_plugins"]


@dataclass
class PluginReport:
    name: str
    distribution: str
    version: str
    entry_point: str
    catalog: str
    models: int
    datasets: int
    problems: list[str]

    @property
    def status(self) -> str:
        return "ok" if not self.problems else "BROKEN: " + "; ".join(self.problems)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": not self.problems}


def check_plugins(*, build: bool = False) -> list[PluginReport]:
    """One report per entry point. Imports factories; with ``build``, builds each plugin model."""
    reports = []
    for plugin in plugins():
        problems = [plugin.error] if plugin.error else []
        for card in plugin.models.values():
            problems += _check(card.factory, f"model '{card.name}'", plugin)
            if build and not problems and plugin.name != BUILTIN:
                problems += _build(card)
        for info in plugin.datasets.values():
            problems += _check(info.factory, f"dataset '{info.name}'", plugin)
        reports.append(
            PluginReport(
                name=plugin.name,
                distribution=plugin.distribution,
                version=plugin.version,
                entry_point=plugin.value,
                catalog=str(plugin.path or ""),
                models=len(plugin.models) + sum(1 for _ in plugin.families),
                datasets=len(plugin.datasets),
                problems=problems,
            )
        )
    return reports


def _check(factory: str, what: str, plugin: Plugin) -> list[str]:
    try:
        import_object(factory, owner=plugin.origin)
    except ZooError as exc:
        return [f"{what}: {exc}"]
    return []


def _build(card) -> list[str]:
    from zoo.models import build  # torch: only 'zoo plugins --check' builds

    try:
        build(card)
    except ZooError as exc:
        return [str(exc)]
    except Exception as exc:  # a plugin factory can fail in any way
        return [f"model '{card.name}': building failed: {type(exc).__name__}: {exc}"]
    return []
