"""Issue 13: exported graphs pass onnx's full check and strict shape inference; --optimize; --quantize auto."""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnx
import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.export import export, export_model
from zoo.resolver import read_onnx_card
from zoo.runtime import Predictor

#: the smallest representative of each family in the benchmark set (benchmarks/bench_runtime.py runs them all)
SMALL = ["digitnet", "timm/test_resnet", "timm/test_efficientnet", "timm/test_convnext", "timm/test_vit"]
BENCHMARK_SET = ["alexnet", "timm/resnet18", "timm/mobilenetv3_small_100", "timm/efficientnet_b0",
                 "timm/convnext_atto", "timm/vit_tiny_patch16_224"]


def _strictly_valid(path) -> onnx.ModelProto:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, strict_mode=True, check_type=True)
    initializers = {t.name for t in proto.graph.initializer}
    assert not [v.name for v in proto.graph.value_info if v.name in initializers]  # no shapes to go stale
    return proto


def _dynamic_int8_loads(path, tmp_path) -> None:
    """onnxruntime's quantize_dynamic rewrites Gemm weights under their own names, then runs strict inference:
    what failed on the dynamo exporter's value_info ("differ in dimension 0: (192) vs (1000)")."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(path), str(tmp_path / "dyn.onnx"), op_types_to_quantize=["MatMul", "Gemm"],
                     weight_type=QuantType.QInt8)
    assert (tmp_path / "dyn.onnx").stat().st_size > 0


@pytest.mark.parametrize("name", SMALL)
def test_export_passes_full_check_and_strict_shape_inference(name, tmp_path):
    plain = export(name, tmp_path / "plain.onnx", optimize="none", check=False).path
    _strictly_valid(plain)
    _dynamic_int8_loads(plain, tmp_path)
    optimized = export(name, tmp_path / "auto.onnx", check=False)
    _strictly_valid(optimized.path)
    assert optimized.optimization["level"] in ("basic", "transformer")


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARK_SET)
def test_benchmark_set_passes_full_check_and_strict_shape_inference(name, tmp_path):
    report = export(name, tmp_path / "m.onnx", check=False, optimize="none")
    _strictly_valid(report.path)
    _dynamic_int8_loads(report.path, tmp_path)


def test_optimize_transformer_fuses_attention_with_parity(tmp_path):
    name = "timm/test_vit"
    model = zoo.create_model(name).eval()
    report = export_model(model, zoo.model_info(name), tmp_path / "vit.onnx", source=name)  # optimize="auto"
    o = report.optimization
    assert o["level"] == "transformer" and o["nodes_after"] < o["nodes_before"] / 2
    assert o["fused"]["com.microsoft.Attention"] == len(model.blocks)  # every block's attention, one node
    assert o["fused"].get("com.microsoft.SkipLayerNormalization", 0) > 0
    assert report.max_abs_diff <= report.tolerance  # parity of the optimised graph, on random and real images
    assert report.real_images >= 2
    assert read_onnx_card(report.path).extra["optimization"]["level"] == "transformer"
    assert any("optimize" == k and "transformer" in v for k, v in report.rows())
    predictor = Predictor(report.path)
    x = np.random.default_rng(0).standard_normal((2, 3, *predictor.card.input_size)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    np.testing.assert_allclose(np.stack([p.probabilities for p in predictor.predict(x)]), expected, atol=1e-4)


def test_optimize_levels_and_bad_value(tmp_path):
    for level, domains in (("basic", {""}), ("extended", {"", "com.microsoft"})):
        report = export("timm/test_vit", tmp_path / f"{level}.onnx", optimize=level, check=False)
        proto = _strictly_valid(report.path)
        assert report.optimization["level"] == level
        assert {n.domain for n in proto.graph.node} <= domains  # basic writes standard operators only
    with pytest.raises(ZooError, match="--optimize"):
        export("digitnet", tmp_path / "x.onnx", optimize="fastest")


def test_optimize_transformer_without_attention_declares_the_operators_it_writes(tmp_path):
    """ConvNeXt: no attention, but GELU and LayerNorm fuse into com.microsoft operators; the file
    must import that domain (it once fell back: "No opset import for domain com.microsoft")."""
    report = export("timm/test_convnext", tmp_path / "c.onnx", optimize="transformer")
    assert report.optimization["level"] == "transformer", report.notes
    proto = _strictly_valid(report.path)
    assert "com.microsoft" in {n.domain for n in proto.graph.node}
    assert report.max_abs_diff <= report.tolerance


@pytest.mark.fault("the optimised graph no longer matches torch (a fusion gone wrong)",
                   "a warning; the exporter's graph is written instead, with its own parity figures")
def test_optimized_graph_that_differs_is_not_written(tmp_path, monkeypatch):
    import zoo.export.pipeline as pipeline

    real = pipeline.optimize_graph

    def broken(proto, level, workdir):
        optimized, facts = real(proto, level, workdir)
        weight = max(optimized.graph.initializer, key=lambda t: len(t.raw_data))
        array = onnx.numpy_helper.to_array(weight) * 3.0
        weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
        return optimized, facts

    monkeypatch.setattr(pipeline, "optimize_graph", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export("digitnet", tmp_path / "d.onnx")
    assert any("kept as exported" in str(w.message) for w in caught)
    assert report.optimization == {} and report.max_abs_diff < 1e-4
    assert "optimization" not in read_onnx_card(report.path).extra


def _template_net(digits, fp32_margin: float) -> torch.nn.Module:
    """A nearest-class-mean digit classifier drowned in a large common term: scores differ by
    ``fp32_margin`` of their size, which float32 keeps and int8 weights (8 bits a row) cannot."""
    from zoo.preprocess import Preprocess, normalize, open_image

    pre = Preprocess.from_card(zoo.model_info("digitnet"))
    files = sorted(digits.glob("*/*.png"))[::3]
    x = np.stack([pre.pixels(open_image(f)) for f in files]).transpose(0, 3, 1, 2)
    x = normalize(np.ascontiguousarray(x), pre).reshape(len(files), -1)
    labels = np.array([int(f.parent.name) for f in files])
    means = np.stack([x[labels == k].mean(0) for k in range(10)])
    templates = means - means.mean(0)
    common = np.abs(templates).max() / fp32_margin
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x.shape[1], 10))
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(templates + common).float())
        net[1].bias.copy_(torch.from_numpy(-0.5 * (templates * (templates + 2 * means.mean(0))).sum(1)).float())
    return net.eval()


@pytest.mark.fault("--quantize auto when no int8 format stays within --max-accuracy-drop",
                   "refused: one line listing each format's measured drop and speed, exit 2, nothing written")
def test_quantize_auto_refuses_with_the_measured_figures(digits, tmp_path):
    out = tmp_path / "tied.onnx"
    card = zoo.model_info("digitnet")
    with pytest.raises(ZooError) as refused:
        export_model(_template_net(digits, 1e-3), card, out, quantize="auto", calibration=digits,
                     calibration_size=32)
    message = str(refused.value)
    assert "--max-accuracy-drop 1 points" in message and "\n" not in message
    for fmt in ("int8", "int8-dynamic"):
        assert re.search(rf"[ (]{fmt}: drop [0-9.]+ points, [0-9.]+x fp32 at batch 1", message), fmt
    assert list(tmp_path.iterdir()) == []


def test_quantize_auto_picks_a_format_within_budget(checkpoint, digits, tmp_path):
    report = export(checkpoint, tmp_path / "auto.onnx", quantize="auto", calibration=digits, calibration_size=32)
    q = report.quantization
    assert q["format"] in ("int8", "int8-dynamic") and q["drop_points"] <= 1.0
    assert set(q["candidates"]) == {"int8", "int8-dynamic"}
    within = [c for c in q["candidates"].values() if c["drop_points"] <= 1.0]
    assert q["img_per_s_int8_b1"] == max(c["img_per_s_int8_b1"] for c in within)  # the fastest within budget
    assert q["accuracy_fp32"] > 0.9 and q["img_per_s_int8_b1"] > 0
    card = read_onnx_card(report.path)
    assert card.extra["int8"]["format"] == q["format"] and card.extra["quantization"].startswith("int8")
    assert card.extra["int8"]["candidates"][q["format"]]["accuracy_int8"] == q["accuracy_int8"]
    assert card.labels and Predictor(report.path).predict(np.zeros((28, 28), np.uint8)).label in card.labels
    with pytest.raises(ZooError, match="--max-accuracy-drop"):
        export(checkpoint, tmp_path / "x.onnx", quantize="auto", max_accuracy_drop=-1)


def test_bench_onnxruntime_int8(checkpoint):
    from zoo.bench import bench

    results = bench(checkpoint, batches=(1,), runtimes=("torch", "onnxruntime-int8"), iters=5, seconds=0.2)
    int8 = results[-1]
    assert int8.runtime == "onnxruntime-int8" and int8.images_per_s > 0 and int8.setup_s > 0
    assert "int8" in int8.provider and int8.vs_torch is not None
