"""The embedding example runs for real: a classify service on loopback, fed real digit images."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from test_bounded_inputs import write_png
from test_export_support import digit_folder, trained_digitnet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def onnx_file(tmp_path_factory) -> Path:
    from zoo.export import export

    base = tmp_path_factory.getbasetemp()
    out = base / "runtime" / "digitnet.onnx"
    if not out.exists():
        digits = digit_folder(base / "sk-digits")
        export(trained_digitnet(digits, base / "digitnet-trained.safetensors"), out)
    return out


def _post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.fault("the example classify server sent a 400-byte PNG claiming 50000x50000 pixels",
                   "HTTP 413 with the pixel-limit message; nothing decoded, the server keeps serving")
def test_classify_server_on_loopback(onnx_file, tmp_path_factory):
    digits = tmp_path_factory.getbasetemp() / "sk-digits"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "classify_server.py"), str(onnx_file), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        line = server.stdout.readline()  # the server prints its address once it listens
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"server did not start: {line!r} {server.stderr.read() if server.poll() is not None else ''}"
        base = f"http://127.0.0.1:{match.group(1)}"
        with urllib.request.urlopen(base + "/health", timeout=20) as response:
            health = json.loads(response.read())
        assert health["model"] == "digitnet" and len(health["labels"]) == 10
        assert health["provider"] == "CPUExecutionProvider" and health["torch_imported"] is False
        correct = 0
        files = [sorted((digits / str(d)).glob("*.png"))[3] for d in range(10)]
        for path in files:
            status, body = _post(base + "/classify?top=3", path.read_bytes())
            assert status == 200 and len(body["top"]) == 3 and 0 < body["probability"] <= 1
            correct += body["label"] == path.parent.name
        assert correct >= 8
        status, body = _post(base + "/classify", b"definitely not an image")
        assert status == 400 and "not a readable image" in body["error"]
        bomb = write_png(tmp_path_factory.getbasetemp() / "server-bomb.png", 50000, 50000)
        status, body = _post(base + "/classify", bomb.read_bytes())
        assert status == 413 and "over the ZOO_MAX_IMAGE_PIXELS limit" in body["error"]
        status, body = _post(base + "/nowhere", b"x")
        assert status == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
