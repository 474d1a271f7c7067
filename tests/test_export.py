"""ONNX export: metadata round trip, dynamic batch, parity with torch, exporters, int8, bad input."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import onnx
import pytest
import torch

import zoo
from zoo.checkpoint import read_card
from zoo.errors import ZooError
from zoo.export import export, export_model
from zoo.resolver import read_onnx_card
from zoo.runtime import Predictor


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "exports" / "digitnet.onnx"
    return export(checkpoint, out)


def test_metadata_round_trips_the_checkpoint_card(checkpoint, exported):
    ckpt_card = read_card(checkpoint)
    onnx_card = read_onnx_card(exported.path)
    proto = onnx.load(str(exported.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    ckpt_meta = ckpt_card.to_metadata()
    assert set(ckpt_meta) == set(meta)  # the same keys as the checkpoint header
    for key in ("name", "labels", "input_size", "channels", "mean", "std", "resize_mode", "interpolation",
                "num_classes", "training"):
        assert meta[key] == ckpt_meta[key], key
    assert onnx_card.labels == tuple(str(i) for i in range(10))
    extra = onnx_card.extra
    assert extra["source_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert extra["exporter"] == exported.exporter == "dynamo"
    written = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert extra["opset"] == exported.opset_written == written
    assert onnx_card.versions["zoo"] == zoo.__version__
    assert extra["gflops_per_image"] > 0
    assert json.loads(meta["extra"])["source_sha256"] == extra["source_sha256"]  # plain JSON for any language


def test_file_is_self_contained_with_a_symbolic_batch(exported):
    path = exported.path
    assert not path.with_name(path.name + ".data").exists()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary leftovers
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.HasField("dim_value")
    assert not any(n.op_type == "ATen" for n in proto.graph.node)
    predictor = Predictor(path)
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 28, 28)).astype(np.float32)
        assert len(predictor.predict(x)) == batch


def test_parity_reported_and_within_tolerance(exported):
    assert exported.max_abs_diff is not None and exported.max_abs_diff <= exported.tolerance
    assert exported.max_abs_diff < 1e-4
    assert 1 in exported.checked_batches and max(exported.checked_batches) > 1
    assert exported.real_images >= 2


def test_fixed_batch_and_torchscript_exporter(tmp_path):
    report = export("digitnet", tmp_path / "fixed.onnx", batch=4, exporter="torchscript")
    assert report.exporter == "torchscript" and report.checked_batches == (4,)
    dim = onnx.load(str(report.path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 4
    assert read_onnx_card(report.path).extra["exporter"] == "torchscript"
    predictor = Predictor(report.path)  # any number of images: fed in padded chunks of 4
    images = [np.full((28, 28), v, np.uint8) for v in range(0, 250, 25)]
    together = predictor.predict(images)
    assert len(together) == 10
    np.testing.assert_allclose(together[9].probabilities, predictor.predict(images[9]).probabilities, atol=1e-6)


class _DataDependent(torch.nn.Module):
    """torch.export refuses a branch on tensor values; TorchScript tracing records one path."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x.flatten(1))
        if bool(x.abs().sum() > 1e12):
            y = y * 2
        return y


def test_falls_back_to_torchscript_with_a_warning(tmp_path):
    card = zoo.model_info("digitnet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export_model(_DataDependent(), card, tmp_path / "branchy.onnx")
    assert report.exporter == "torchscript"
    assert any("falling back" in str(w.message) for w in caught)
    assert read_onnx_card(report.path).extra["exporter"] == "torchscript"


def test_parity_failure_writes_nothing(tmp_path):
    out = tmp_path / "strict.onnx"
    with pytest.raises(ZooError, match="differs from torch"):
        export("digitnet", out, tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_embedded_preprocessing_takes_raw_pixels(checkpoint, exported, digits, tmp_path):
    report = export(checkpoint, tmp_path / "raw.onnx", embed_preprocessing=True)
    graph_input = onnx.load(str(report.path)).graph.input[0]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim[1:]] == [28, 28, 1]  # NHWC
    raw, plain = Predictor(report.path), Predictor(exported.path)
    assert raw.embedded and not plain.embedded
    files = sorted(digits.glob("*/*.png"))[::60]
    for a, b in zip(raw.predict(files), plain.predict(files)):
        assert a.label == b.label
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


def test_int8_static_quantization(checkpoint, digits, tmp_path):
    report = export(checkpoint, tmp_path / "int8.onnx", quantize="int8", calibration=digits, calibration_size=32)
    q = report.quantization
    assert q["size_int8_mb"] < q["size_fp32_mb"] / 2
    assert q["accuracy_fp32"] > 0.9 and abs(q["accuracy_change_points"]) <= 2.0
    assert q["top1_agreement"] >= 0.97
    proto = onnx.load(str(report.path))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    card = read_onnx_card(report.path)
    assert card.extra["int8"]["accuracy_int8"] == q["accuracy_int8"] and card.labels  # metadata survives
    files = sorted(digits.glob("*/*.png"))[::40]
    predictions = Predictor(report.path).predict(files)
    assert np.mean([p.label == f.parent.name for p, f in zip(predictions, files)]) > 0.85


@pytest.mark.parametrize("name", ["timm/test_resnet", "timm/test_efficientnet"])
def test_timm_models_export_with_parity(name, tmp_path):
    model = zoo.create_model(name).eval()
    report = export_model(model, zoo.model_info(name), tmp_path / "m.onnx", source=name)
    assert report.max_abs_diff <= report.tolerance
    predictor = Predictor(report.path)
    x = np.random.default_rng(0).standard_normal((2, 3, *predictor.card.input_size)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    got = np.stack([p.probabilities for p in predictor.predict(x)])
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_alexnet_exports_with_parity(tmp_path):
    report = export("alexnet", tmp_path / "alexnet.onnx")
    assert report.max_abs_diff <= report.tolerance and report.size_bytes > 200e6
    assert Predictor(report.path).predict(np.zeros((64, 64, 3), np.uint8)).label in Predictor(report.path).labels


def test_bad_input(tmp_path):
    with pytest.raises(ZooError, match="no-such-model"):
        export("no-such-model", tmp_path / "x.onnx")
    with pytest.raises(ZooError, match=r"\.onnx"):
        export("digitnet", tmp_path / "x.txt")
    with pytest.raises(ZooError, match="--batch"):
        export("digitnet", tmp_path / "x.onnx", batch="zero")
    with pytest.raises(ZooError, match="int8"):
        export("digitnet", tmp_path / "x.onnx", quantize="int4")
    with pytest.raises(ZooError, match="dynamic batch"):
        export("digitnet", tmp_path / "x.onnx", batch=4, quantize="int8")
    with pytest.raises(ZooError, match="opset"):
        export("digitnet", tmp_path / "x.onnx", opset=99)
    for tolerance in (-1, float("nan"), "loose"):
        with pytest.raises(ZooError, match="--tolerance"):  # before the name is even looked up
            export("no-such-model", tmp_path / "x.onnx", tolerance=tolerance)
    with pytest.raises(ZooError, match="calibration image"):
        export("digitnet", tmp_path / "x.onnx", quantize="int8", calibration_size=0)
    not_ckpt = tmp_path / "broken.safetensors"
    not_ckpt.write_text("not a checkpoint")
    with pytest.raises(ZooError):
        export(not_ckpt, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export(checkpoint, tmp_path, zoo_cli):
    out = tmp_path / "cli.onnx"
    proc = zoo_cli("export", str(checkpoint), "--out", str(out), "--exporter", "torchscript", "--json")
    report = json.loads(proc.stdout)  # (the dynamo path is covered in-process above; this keeps the CLI test quick)
    assert report["exporter"] == "torchscript" and report["max_abs_diff"] < 1e-4 and out.is_file()
    proc = zoo_cli("export", str(tmp_path / "missing.safetensors"), check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    proc = zoo_cli("export", "digitnet", "--out", str(tmp_path / "y.onnx"), "--batch", "-3", check=False)
    assert proc.returncode == 2 and "--batch" in proc.stderr and "Traceback" not in proc.stderr
    proc = zoo_cli("export", "digitnet", "--out", str(tmp_path / "y.onnx"), "--tolerance", "-1", check=False)
    assert proc.returncode == 2 and "--tolerance" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "y.onnx").exists()


def test_float32_rounding_floor_is_measured_against_float64():
    from zoo.export.parity import float32_error

    torch.manual_seed(0)
    calm = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = [torch.randn(3, 8).numpy()]
    assert 0 < float32_error(calm, x) < 1e-5
    # 30 layers of large weights amplify float32 rounding by orders of magnitude
    loud = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(30)]).eval()
    with torch.no_grad():
        for layer in loud:
            layer.weight.mul_(3.0)
    assert float32_error(loud, x) > 100 * float32_error(calm, x)
