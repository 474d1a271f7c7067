"""``zoo bench``: real timings of torch and onnxruntime side by side (never asserting speed)."""

from __future__ import annotations

import json

import pytest

from zoo.bench import bench
from zoo.errors import ZooError


def test_bench_torch_and_onnxruntime():
    results = bench("digitnet", batches=(1, 4), runtimes=("torch", "onnxruntime"), iters=20, seconds=0.3)
    assert [(r.runtime, r.batch) for r in results] == [("torch", 1), ("torch", 4), ("onnxruntime", 1), ("onnxruntime", 4)]
    for r in results:
        assert 0 < r.median_ms <= r.p90_ms and r.images_per_s > 0 and r.gflops_per_s > 0 and r.calls >= 3
    assert {r.provider for r in results if r.runtime == "onnxruntime"} <= {"CPUExecutionProvider", "CUDAExecutionProvider"}
    assert all(r.vs_torch == 1.0 for r in results if r.runtime == "torch")
    assert results[2].setup_s > 0  # the export, timed apart


def test_bench_onnx_file_and_cli(tmp_path, zoo_cli):
    from zoo.export import export

    path = export("digitnet", tmp_path / "d.onnx", check=False).path
    results = bench(path, batches=(2,), runtimes=("onnxruntime",), iters=5, seconds=0.1)
    assert len(results) == 1 and results[0].gflops_per_s > 0  # GFLOPs recorded at export
    with pytest.raises(ZooError, match="only --runtime onnxruntime"):
        bench(path, runtimes=("torch",))
    proc = zoo_cli("bench", str(path), "--batch", "1,3", "--seconds", "0.1", "--json")
    rows = json.loads(proc.stdout)
    assert [(r["runtime"], r["batch"]) for r in rows] == [("onnxruntime", 1), ("onnxruntime", 3)]
    table = zoo_cli("bench", str(path), "--batch", "1", "--seconds", "0.1").stdout
    assert "MEDIAN ms" in table and "CPUExecutionProvider" in table
    bad = zoo_cli("bench", "digitnet", "--runtime", "tensorflow", check=False)
    assert bad.returncode == 2 and "--runtime" in bad.stderr and "not 'tensorflow'" in bad.stderr
    bad = zoo_cli("bench", "digitnet", "--batch", "one", check=False)
    assert bad.returncode == 2 and "--batch" in bad.stderr


@pytest.mark.slow
def test_bench_torch_compile():
    results = bench("digitnet", batches=(2,), runtimes=("torch", "torch-compile"), iters=10, seconds=0.3)
    compiled = results[1]
    assert compiled.runtime == "torch-compile" and compiled.setup_s > 0 and compiled.images_per_s > 0
