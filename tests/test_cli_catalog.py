"""The catalog commands as a user runs them: real subprocesses of the installed ``zoo``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_zoo

HEAVY = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "zoo_plugin_example.lenet", "zoo_plugin_example.csvlist")


def test_zoo_list_imports_no_torch_timm_or_plugin_code():
    code = (
        "import sys\n"
        "from zoo.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
    for name in ("digitnet", "alexnet", "lenet5", "folder", "digits", "idx", "csvlist", "timm/*"):
        assert name in proc.stdout


def test_zoo_help_imports_no_torch():
    code = "import sys\nfrom zoo.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "False"
    assert "finetune" in proc.stdout and "export" in proc.stdout


def test_list_json_and_patterns():
    rows = json.loads(run_zoo("list", "--json").stdout)
    kinds = {r["name"]: r["kind"] for r in rows}
    assert kinds["digitnet"] == "model" and kinds["folder"] == "dataset" and kinds["timm/*"] == "family"
    assert kinds["lenet5"] == "model"
    timm = json.loads(run_zoo("list", "timm/resnet*", "--json").stdout)
    names = [r["name"] for r in timm]
    assert "timm/resnet18" in names and "timm/resnet50" in names and all(n.startswith("timm/resnet") for n in names)
    datasets = json.loads(run_zoo("list", "--datasets", "--json").stdout)
    assert {r["kind"] for r in datasets} == {"dataset"}


def test_info_digitnet_shows_the_lecture_layers():
    out = run_zoo("info", "digitnet").stdout
    for layer in ("conv_1", "batchnorm_1", "relu_1", "maxpool_1", "conv_3", "fc"):
        assert layer in out
    assert "21,690" in out
    data = json.loads(run_zoo("info", "digitnet", "--json").stdout)
    assert data["parameters"] == 21690
    assert [r["output_shape"] for r in data["layers"]][-1] == [10]
    assert data["flops"] > 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["info", "digitnt"], "Did you mean: digitnet"),
        (["info", "timm/resnet81"], "resnet18"),
        (["lsit"], "Did you mean: list"),
        (["info", "missing.safetensors"], "does not exist"),
    ],
)
def test_user_mistakes_are_one_line_with_exit_code_2(args, expected):
    proc = run_zoo(*args, check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["list", "info", "plugins", "doctor"])
def test_help_everywhere(command):
    assert "Usage: zoo " + command in run_zoo(command, "--help").stdout


def test_version_and_doctor():
    from zoo import __version__

    assert __version__ in run_zoo("--version").stdout
    report = json.loads(run_zoo("doctor", "--json", check=False).stdout)
    assert report["versions"]["torch"] != "not installed"
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]
    assert {p["name"] for p in report["plugins"]} >= {"builtin", "example"}
