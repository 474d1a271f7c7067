"""benchmarks/gpu_check.sh: its shell parses, and its Python checks run on the CPU (their --cpu fallback)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_script_parses():
    assert shutil.which("bash")
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], check=True)


@pytest.mark.parametrize("check", ["ep", "parity", "fp16"])
def test_python_checks_pass_on_cpu(check, capsys):
    import gpu_check

    assert gpu_check.main([check, "--cpu", "--model", "digitnet"]) == gpu_check.PASS
    assert capsys.readouterr().out.strip()


def test_script_without_a_gpu_says_so_and_passes(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the script would run every check (benchmarks/gpu_check.sh)")
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "work")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "GPUs torch sees: 0" in result.stdout
    assert "no CUDA GPU here: nothing to check" in result.stdout
