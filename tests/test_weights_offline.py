"""Offline is a hard switch: with networking really disabled (a new network namespace via
``unshare``), zoo attempts no network call and stops before training, naming the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import run_zoo

# Runs the real CLI (or, before the finetune command exists, the model builder) under an
# audit hook that records every socket operation Python attempts.
_PROBE = r"""
import json, sys
events = []
sys.addaudithook(lambda name, args: events.append(name) if name.startswith("socket.") else None)
from zoo.errors import ZooError
message, code = "", 0
try:
    if sys.argv[1] == "cli":
        from zoo.cli import main
        sys.argv = ["zoo", "finetune", "alexnet", "--data", sys.argv[2], "--classes", "2", "--out", sys.argv[3]]
        try:
            main()
        except SystemExit as exit:
            code = exit.code
    else:
        from zoo.models import create_model
        create_model("alexnet", num_classes=2, pretrained="auto")
except ZooError as exc:
    message, code = str(exc), 2
print(json.dumps({"events": events, "message": message, "code": code}))
"""


def _unshare() -> list[str] | None:
    if not shutil.which("unshare"):
        return None
    options = (["-n"], ["-rn"]) if os.geteuid() == 0 else (["-rn"],)
    for option in options:
        probe = subprocess.run(["unshare", *option, "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", *option]
    return None


UNSHARE = _unshare()


def _finetune_cli_exists() -> bool:
    return run_zoo("finetune", "--help", check=False).returncode == 0


@pytest.mark.skipif(UNSHARE is None, reason="unshare cannot create a network namespace here (needs root or user namespaces)")
def test_offline_makes_no_network_call_with_networking_disabled(tmp_path):
    # The namespace really has no network: a plain connection attempt fails.
    reach = subprocess.run(
        [*UNSHARE, sys.executable, "-c", "import socket; socket.create_connection(('151.101.0.223', 443), timeout=3)"],
        capture_output=True, text=True,
    )
    assert reach.returncode != 0 and ("unreachable" in reach.stderr.lower() or "OSError" in reach.stderr)

    images = tmp_path / "Images"
    for label in ("face", "other"):
        (images / label).mkdir(parents=True)
        from PIL import Image

        for i in range(4):
            Image.new("RGB", (32, 32), (i * 40, 80, 120)).save(images / label / f"{i}.jpg")
    out = tmp_path / "run"
    mode = "cli" if _finetune_cli_exists() else "api"
    env = {**os.environ, "ZOO_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch-home"),
           "HF_HOME": str(tmp_path / "hf-home")}
    proc = subprocess.run(
        [*UNSHARE, sys.executable, "-c", _PROBE, mode, str(images), str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == [], f"socket operations attempted offline: {report['events']}"
    message = report["message"] or proc.stderr
    assert report["code"] == 2
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in message
    assert not (out / "model.safetensors").exists()  # stopped before any training
