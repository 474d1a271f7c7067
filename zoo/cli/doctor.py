"""``zoo doctor``: what is installed, which providers run, where caches live, plugin health,
and which models' pretrained weights are available here, offline."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import click

from zoo import __version__, settings
from zoo.cli.output import print_json, print_table
from zoo.errors import ZooError
from zoo.plugin_check import check_plugins

__all__ = ["doctor_command", "diagnose", "weights_status"]

_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu",
             "safetensors", "numpy", "pillow", "click", "rich", "matplotlib")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _models_with_weights() -> list[str]:
    """Catalog models (built-in and plugins', not family members) and models a plugin attaches weights to."""
    from zoo.catalogs import plugins
    from zoo.registry import index

    counts = index()["models"]
    names: list[str] = []
    for plugin in plugins():
        if plugin.error:
            continue
        names += [name if len(counts.get(name, ())) == 1 else f"{plugin.name}:{name}" for name in plugin.models]
        names += list(plugin.weights)
    return list(dict.fromkeys(names))


def weights_status() -> tuple[list[dict], list[str]]:
    """(one row per model and weight tag, with whether its file is here; a note per model
    whose pretrained weights are not available offline, with how to get them)."""
    from zoo.registry import model_info
    from zoo.weights.report import availability

    rows: list[dict] = []
    notes: list[str] = []
    for name in _models_with_weights():
        try:
            card = model_info(name)
        except ZooError:  # a broken plugin is reported with the plugins
            continue
        tags = availability(card)
        rows += [{**a.to_dict(), "model": name} for a in tags]
        if tags and not any(a.offline for a in tags):
            notes.append(f"{name}: pretrained weights not available offline; {'; '.join(a.text() for a in tags)}")
    return rows, notes


def _pixel_limit(problems: list[str]) -> int | str | None:
    """ZOO_MAX_IMAGE_PIXELS as zoo reads it (None: no limit); a bad value is a problem, shown as 'invalid'."""
    try:
        return settings.max_image_pixels()
    except ZooError as exc:
        problems.append(str(exc))
        return "invalid"


def _cache_budget(problems: list[str]) -> int | str:
    """ZOO_CACHE_BUDGET as ``--cache auto`` applies it (bytes); a bad value is a problem, shown as 'invalid'."""
    try:
        return settings.cache_budget()
    except ZooError as exc:
        problems.append(str(exc))
        return "invalid"


def diagnose() -> dict:
    """Everything doctor reports, as data; ``problems`` holds what needs fixing, with the fix."""
    versions = {"python": platform.python_version(), "zoo": __version__}
    versions.update({dist: _version(dist) or "not installed" for dist in _PACKAGES})
    problems: list[str] = []
    if _version("onnxruntime") and _version("onnxruntime-gpu"):
        problems.append(
            "onnxruntime and onnxruntime-gpu are both installed; they share one module directory and "
            "the CUDA provider silently disappears. Fix: pip uninstall -y onnxruntime onnxruntime-gpu "
            "&& pip install onnxruntime-gpu"
        )
    providers: list[str] = []
    try:
        import onnxruntime  # here: a broken install is reported, not fatal

        providers = list(onnxruntime.get_available_providers())
    except Exception as exc:  # a broken install can fail in any way
        problems.append(f"onnxruntime does not import: {exc}. Fix: pip install --force-reinstall onnxruntime-gpu")
    cuda = "not checked"
    try:
        import torch  # as above

        cuda = f"{torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "none"
    except Exception as exc:
        problems.append(f"torch does not import: {exc}")
    plugins = [r.as_dict() for r in check_plugins()]
    for report in plugins:
        if report["problems"]:
            problems.append(f"plugin '{report['name']}' ({report['distribution']}): " + "; ".join(report["problems"]))
    weights, notes = weights_status()
    max_pixels = _pixel_limit(problems)
    return {
        "versions": versions,
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
        "onnxruntime_providers": providers,
        "torch_cuda": cuda,
        "paths": {
            "zoo cache": str(settings.cache_dir()),
            "torch hub": str(settings.torch_hub_dir()),
            "huggingface hub": str(settings.hf_cache_dir()),
        },
        "offline": settings.offline(),
        "strict_plugins": settings.strict_plugins(),
        "max_image_pixels": max_pixels,
        "cache_budget_bytes": _cache_budget(problems),
        "follow_links": settings.follow_links(),
        "plugins": plugins,
        "weights": weights,
        "problems": problems,
        "notes": notes,
    }


def _budget_text(budget: int | str) -> str:
    return f"{budget / 2**30:.1f} GiB" if isinstance(budget, int) else budget


def _pixels_text(limit: int | str | None) -> str:
    if limit is None:
        return "none"
    return f"{limit:,}" if isinstance(limit, int) else limit


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor_command(as_json: bool) -> None:
    """Check the installation: versions, onnxruntime providers, CUDA, caches, offline mode, plugins,
    and whether each model's pretrained weights are here (cached, from a plugin, or missing).

    Exits with status 1 when something needs fixing, and says how. Missing pretrained weights
    are notes (exit status 0): training from scratch works without them.
    """
    report = diagnose()
    if as_json:
        print_json(report)
    else:
        rows = list(report["versions"].items())
        rows += [
            ("platform", report["platform"]),
            ("python executable", report["executable"]),
            ("onnxruntime providers", ", ".join(report["onnxruntime_providers"]) or "-"),
            ("torch CUDA", report["torch_cuda"]),
            *report["paths"].items(),
            ("offline (ZOO_OFFLINE / HF_HUB_OFFLINE)", "yes" if report["offline"] else "no"),
            ("strict plugins (ZOO_STRICT_PLUGINS)", "yes" if report["strict_plugins"] else "no"),
            ("image pixel limit (ZOO_MAX_IMAGE_PIXELS)", _pixels_text(report["max_image_pixels"])),
            ("decode cache budget of --cache auto (ZOO_CACHE_BUDGET, at most half the free disk)",
             _budget_text(report["cache_budget_bytes"])),
            ("data folder links that lead outside (ZOO_FOLLOW_LINKS)",
             "followed" if report["follow_links"] else "skipped"),
            ("plugins", ", ".join(f"{p['name']} ({'ok' if p['ok'] else 'BROKEN'})" for p in report["plugins"])),
        ]
        print_table(None, ["", ""], rows)
        click.echo()
        print_table("Pretrained weights", ["MODEL", "TAG", "STATUS", "WHERE / HOW TO GET IT"],
                    ((w["model"], w["tag"], w["status"], w["path"] or w["fix"]) for w in report["weights"]))
        for note in report["notes"]:
            click.echo(f"note: {note}")
        for problem in report["problems"]:
            click.echo(f"problem: {problem}", err=True)
        notes = len(report["notes"])
        if not report["problems"]:
            click.echo(f"no problems; {notes} note(s): pretrained weights that are not available offline"
                       if notes else "no problems found")
    if report["problems"]:
        sys.exit(1)
