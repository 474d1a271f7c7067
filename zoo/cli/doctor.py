"""``zoo doctor``: what is installed, which providers run, where caches live, plugin health."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import click

from zoo import __version__, settings
from zoo.cli.output import print_json, print_table
from zoo.plugin_check import check_plugins

__all__ = ["doctor_command", "diagnose"]

_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu",
             "safetensors", "numpy", "pillow", "click", "rich", "matplotlib")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


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
        "plugins": plugins,
        "problems": problems,
    }


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor_command(as_json: bool) -> None:
    """Check the installation: versions, onnxruntime providers, CUDA, caches, offline mode, plugins.

    Exits with status 1 when something needs fixing, and says how.
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
            ("plugins", ", ".join(f"{p['name']} ({'ok' if p['ok'] else 'BROKEN'})" for p in report["plugins"])),
        ]
        print_table(None, ["", ""], rows)
        for problem in report["problems"]:
            click.echo(f"problem: {problem}", err=True)
        if not report["problems"]:
            click.echo("no problems found")
    if report["problems"]:
        sys.exit(1)
