"""Plugins through real entry points: the pip-installed example, and broken or clashing ones.

Broken plugins are real distributions too: a ``*.dist-info`` folder with ``entry_points.txt``
(exactly what pip writes) and a package beside it, put on ``PYTHONPATH`` of a real ``zoo``
subprocess. Nothing is mocked.
"""

from __future__ import annotations

import json
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import run_zoo

GOOD_MODEL = """
[models.{name}]
factory = "{package}.nets:build"
summary = "test model"
input_size = [8, 8]
channels = 1
num_classes = 3
"""

NETS = """
from torch import nn
def build(num_classes=3):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
"""


def make_plugin(site: Path, package: str, catalog: str, files: dict[str, str] | None = None, ep_value: str | None = None) -> None:
    """Write an installed-looking distribution: package folder + dist-info with an entry point."""
    pkg = site / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "zoo.toml").write_text(textwrap.dedent(catalog))
    for name, text in (files or {}).items():
        (pkg / name).write_text(textwrap.dedent(text))
    dist = site / f"{package}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[zoo.plugins]\n{package} = {ep_value or package + ':zoo.toml'}\n")


def zoo_with(site: Path, *args: str, check: bool = False, **env: str):
    return run_zoo(*args, env={"PYTHONPATH": str(site), **env}, check=check)


def test_example_plugin_is_a_pip_installed_distribution():
    dist = metadata.distribution("zoo-plugin-example")
    eps = [ep for ep in dist.entry_points if ep.group == "zoo.plugins"]
    assert [ep.value for ep in eps] == ["zoo_plugin_example:zoo.toml"]


def test_example_plugin_model_and_dataset_work_like_builtins(tmp_path):
    import numpy as np
    from PIL import Image

    import zoo
    from zoo.data import open_dataset

    assert "lenet5" in zoo.list_models() and "csvlist" in zoo.list_datasets()
    model = zoo.create_model("example:lenet5", num_classes=4)
    assert model[-1].out_features == 4
    for i, label in enumerate(["a", "b", "a"]):
        Image.fromarray(np.full((5, 5), i * 80, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "list.csv").write_text("path,label\n0.png,a\n1.png,b\n2.png,a\n")
    ds = open_dataset(tmp_path / "list.csv", "csvlist")
    assert ds.classes == ["a", "b"] and ds.counts() == {"a": 2, "b": 1}


@pytest.mark.parametrize(
    "case, catalog, files, ep_value, reason",
    [
        ("bad_toml", "[models.x\nfactory=", {}, None, "invalid TOML in"),
        ("import_error", GOOD_MODEL, {"nets.py": "import not_a_real_module_xyz\n"}, None, "No module named 'not_a_real_module_xyz'"),
        ("missing_factory", GOOD_MODEL, {"nets.py": "x = 1\n"}, None, "has no attribute 'build'"),
        ("no_package", GOOD_MODEL, {}, "gone_package:zoo.toml", "is not installed"),
        ("bad_value", GOOD_MODEL, {}, "just_a_module", "must be 'package:catalog.toml'"),
    ],
)
def test_broken_plugin_is_reported_and_skipped(tmp_path, case, catalog, files, ep_value, reason):
    package = f"plug_{case}"
    make_plugin(tmp_path, package, catalog.format(name=f"{case}_net", package=package), files, ep_value)
    report = json.loads(zoo_with(tmp_path, "plugins", "--json").stdout)
    broken = next(r for r in report if r["name"] == package)
    assert not broken["ok"]
    text = " ".join(broken["problems"])
    assert reason in text and broken["distribution"] == package.replace("_", "-")
    assert all(r["ok"] for r in report if r["name"] == "example")
    # everything else keeps working
    listed = zoo_with(tmp_path, "list", "--json", check=True)
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert {"digitnet", "lenet5"} <= names
    # strict mode makes it fatal for plugin authors (catalog errors at discovery, import errors on use)
    if case in ("bad_toml", "no_package", "bad_value"):
        used = zoo_with(tmp_path, "info", f"{case}_net", "--no-layers")  # its model: unknown, and says why
        assert used.returncode == 2 and f"(skipped as broken: plugin {package}; see 'zoo plugins')" in used.stderr
        strict = zoo_with(tmp_path, "list", ZOO_STRICT_PLUGINS="1")
        assert strict.returncode == 2 and package in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.fault("a plugin whose model factory returns a str, checked with 'zoo plugins --check'",
                   "its STATUS says BROKEN with the reason; exit 2 with one line naming the plugin")
def test_factory_returning_wrong_type_is_caught(tmp_path):
    make_plugin(tmp_path, "plug_wrongtype", GOOD_MODEL.format(name="wrongnet", package="plug_wrongtype"),
                {"nets.py": "def build(num_classes=3):\n    return 'not a module'\n"})
    checked = zoo_with(tmp_path, "plugins", "--check", "--json")
    broken = next(r for r in json.loads(checked.stdout) if r["name"] == "plug_wrongtype")
    assert "returned str, not a torch.nn.Module" in " ".join(broken["problems"])
    # a plugin's CI fails on it: exit 2 and one line naming the plugin
    assert checked.returncode == 2
    assert checked.stderr.strip().splitlines() == ["error: 1 plugin(s) broken: plug_wrongtype; their STATUS says what is wrong"]
    assert zoo_with(tmp_path, "plugins", "--json").returncode == 0  # listing alone still answers
    used = zoo_with(tmp_path, "info", "wrongnet")
    assert used.returncode == 2 and "returned str" in used.stderr and "Traceback" not in used.stderr


def test_name_collision_names_both_sources_and_qualified_names_pick_one(tmp_path):
    make_plugin(tmp_path, "plug_clash", GOOD_MODEL.format(name="digitnet", package="plug_clash"), {"nets.py": NETS})
    clash = zoo_with(tmp_path, "info", "digitnet", "--no-layers")
    assert clash.returncode == 2
    line = clash.stderr.strip()
    assert "builtin" in line and "plug_clash" in line and "'builtin:digitnet'" in line and "'plug_clash:digitnet'" in line
    assert len(line.splitlines()) == 1
    ok = zoo_with(tmp_path, "info", "plug_clash:digitnet", "--json", check=True)
    assert json.loads(ok.stdout)["parameters"] == 64 * 3 + 3
    builtin = zoo_with(tmp_path, "info", "builtin:digitnet", "--json", check=True)
    assert json.loads(builtin.stdout)["parameters"] == 21690
    listed = {row["name"] for row in json.loads(zoo_with(tmp_path, "list", "--json", check=True).stdout)}
    assert {"builtin:digitnet", "plug_clash:digitnet"} <= listed
