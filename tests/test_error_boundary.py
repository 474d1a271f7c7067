"""The error boundary: every failure ends as one line and the exit status of its kind (zoo.errors);
a traceback only with --debug or ZOO_DEBUG=1."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, run_zoo

from zoo.cli import main

OOM_RUNNER = textwrap.dedent("""
    import resource, sys
    import torch, zoo.cli, zoo.evaluation, zoo.checkpoint  # the program, loaded before the limit
    size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    limit = size + int(sys.argv[1]) * 2**20  # a little headroom: the first big batch does not fit
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    zoo.cli.main(sys.argv[2:])
""")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.fault("a missing checkpoint, with and without --debug / ZOO_DEBUG=1",
                   "one line and exit 2; the traceback only with --debug or ZOO_DEBUG=1")
def test_user_error_is_one_line_and_debug_adds_the_traceback(tmp_path):
    args = ("predict", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.png"))
    plain = run_zoo(*args, check=False)
    assert plain.returncode == 2
    assert _lines(plain.stderr) == [_lines(plain.stderr)[0]] and plain.stderr.startswith("error: ")
    assert "does not exist" in plain.stderr and "Traceback" not in plain.stderr
    for debug_args, env in ((("--debug", *args), None), (args, {"ZOO_DEBUG": "1"})):
        shown = run_zoo(*debug_args, check=False, env=env)
        assert shown.returncode == 2 and "Traceback (most recent call last)" in shown.stderr
        assert _lines(shown.stderr)[-1] == _lines(plain.stderr)[0]


@pytest.mark.fault("a bug inside a command (an unexpected TypeError)",
                   "one line 'internal error (TypeError: ...)' asking for --debug and a report, exit 1")
def test_a_bug_is_one_line_exit_1(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr("zoo.cli.catalog.list_entries", broken)  # stands for any bug in zoo or a plugin
    with pytest.raises(SystemExit) as ended:
        main(["list"])
    err = capsys.readouterr().err
    assert ended.value.code == 1
    assert _lines(err) == ["error: internal error (TypeError: unsupported operand); run again with --debug "
                           "for the traceback, and report it"]
    with pytest.raises(SystemExit):
        main(["list", "--debug"])
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.fault("unknown option, missing argument, unknown command, a value of the wrong type",
                   "one line naming it with the command's --help, exit 2")
@pytest.mark.parametrize("argv, expected", [
    (["train", "digitnet", "--data", "d", "--lrr", "1"], "No such option '--lrr'"),
    (["train"], "Missing argument 'MODEL'"),
    (["trian"], "no command 'trian'. Did you mean: train"),
    (["train", "digitnet", "--data", "d", "--epochs", "four"], "'--epochs'"),
])
def test_usage_errors_are_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as ended:
        main(argv)
    lines = _lines(capsys.readouterr().err)
    assert ended.value.code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "--help" in lines[0]


@pytest.mark.skipif(sys.platform != "linux", reason="the address-space limit is Linux's")
@pytest.mark.fault("zoo evaluate with too little memory for a batch (a real address-space limit)",
                   "one line: out of memory, lower --batch-size; exit 4")
def test_out_of_memory_is_one_line_exit_4(digits, checkpoint, tmp_path):
    runner = tmp_path / "oom.py"
    runner.write_text(OOM_RUNNER)
    proc = run_zoo_python(runner, "30", "evaluate", str(checkpoint), "--data", str(digits),
                          "--batch-size", "1797", "--plot", str(tmp_path / "cm.png"))
    assert proc.returncode == 4, proc.stderr
    assert _lines(proc.stderr)[-1] == "error: out of memory: lower --batch-size, or use a smaller model or images"
    assert "Traceback" not in proc.stderr and not (tmp_path / "cm.png").exists()


@pytest.mark.fault("zoo train --device cuda on a machine without a GPU",
                   "one line: no CUDA GPU, use --device auto or cpu; exit 4; nothing written")
def test_missing_gpu_is_exit_4(digits, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run_zoo("train", "digitnet", "--data", str(digits), "--device", "cuda", "--out", str(tmp_path / "run"),
                   check=False)
    assert proc.returncode == 4
    assert _lines(proc.stderr) == ["error: --device cuda asked for, but torch sees no CUDA GPU; "
                                   "use --device auto or cpu"]
    assert not (tmp_path / "run").exists()


@pytest.mark.fault("a network written in Python whose layer sizes do not fit its input",
                   "one line before training naming the file, the shapes and the input size; exit 2")
def test_python_network_that_does_not_fit_fails_before_training(digits, tmp_path):
    net = tmp_path / "badnet.py"
    net.write_text("from torch import nn\nZOO_CARD = {'input_size': (28, 28), 'channels': 1}\n"
                   "def make(num_classes=10):\n    return nn.Sequential(nn.Flatten(), nn.Linear(100, num_classes))\n")
    proc = run_zoo("train", f"{net}:make", "--data", str(digits), "--epochs", "1", "--out", str(tmp_path / "run"),
                   check=False)
    assert proc.returncode == 2
    line = _lines(proc.stderr)[-1]
    assert line.startswith(f"error: '{net}:make' fails on a batch of 2x1x28x28 images (RuntimeError: mat1 and mat2")
    assert "input size 28x28" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def run_zoo_python(script, *args):
    """``python SCRIPT ARGS`` in the test environment, one thread (as a worker of a busy machine)."""
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdin=subprocess.DEVNULL)
