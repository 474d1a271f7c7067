"""Shared fixtures. Tests run the real CLI in subprocesses where the process boundary matters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """zoo's cache in a per-session temp dir, so tests never touch the user's."""
    cache = tmp_path_factory.getbasetemp() / "zoo-cache"
    monkeypatch.setenv("ZOO_CACHE", str(cache))


def run_zoo(*args: str, env: dict | None = None, check: bool = True, cwd: Path | None = None, timeout: int = 600):
    """Run the installed ``zoo`` command; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [str(VENV_BIN / "zoo"), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"zoo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def zoo_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``zoo ARGS`` in this process: (exit status, stdout, stderr)."""
    from zoo.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as ended:
        code = ended.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def zoo_cli():
    return run_zoo


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """scikit-learn's 1,797 real handwritten digits as a 28x28 PNG folder."""
    from test_export_support import digit_folder

    return digit_folder(tmp_path_factory.getbasetemp() / "sk-digits")


@pytest.fixture(scope="session")
def checkpoint(digits, tmp_path_factory) -> Path:
    """A digitnet checkpoint trained on ``digits`` (shared by the export and runtime tests)."""
    from test_export_support import trained_digitnet

    return trained_digitnet(digits, tmp_path_factory.getbasetemp() / "digitnet-trained.safetensors")


@pytest.fixture(scope="session")
def onnx_file(checkpoint, tmp_path_factory) -> Path:
    """``checkpoint`` exported once (the runtime, input-limit and fuzz tests share it)."""
    from zoo.export import export

    out = tmp_path_factory.getbasetemp() / "runtime" / "digitnet.onnx"
    if not out.exists():
        export(checkpoint, out)
    return out
