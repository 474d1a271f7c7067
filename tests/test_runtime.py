"""The torch-free runtime: no torch imported, predictions equal the checkpoint's, every input form, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from PIL import Image

from zoo.errors import ResourceError, ZooError
from zoo.runtime import Predictor, cuda_device_count






def test_runtime_never_imports_torch(onnx_file, digits):
    image = next(iter(sorted(digits.glob("3/*.png"))))
    code = (
        "import sys, json\n"
        "from zoo.runtime import Predictor\n"
        f"p = Predictor({str(onnx_file)!r})\n"
        f"r = p.predict({str(image)!r})\n"
        f"list(p.predict_folder({str(digits / '3')!r}, batch_size=16))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm', 'onnx', 'onnxscript'))\n"
        "print(json.dumps({'label': r.label, 'provider': p.provider, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["label"] == "3"
    assert result["provider"] == "CPUExecutionProvider"


def test_onnx_predictions_equal_checkpoint_predictions(checkpoint, onnx_file, digits):
    import torch

    from zoo.classifier import load
    from zoo.preprocess import Preprocess, normalize, open_image

    classifier = load(checkpoint)
    pre = Preprocess.from_card(classifier.card)
    files = sorted(digits.glob("*/*.png"))[::9]  # 200 real handwritten digits
    pixels = np.stack([pre.pixels(open_image(f)) for f in files]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        expected = torch.softmax(classifier.module(normalize(torch.from_numpy(np.ascontiguousarray(pixels)), pre)), 1)
    predictions = Predictor(onnx_file).predict(files, batch_size=64)
    assert [p.label for p in predictions] == [classifier.card.class_names[i] for i in expected.argmax(1)]
    np.testing.assert_allclose(np.stack([p.probabilities for p in predictions]), expected.numpy(), atol=1e-5)
    accuracy = np.mean([p.label == f.parent.name for p, f in zip(predictions, files)])
    assert accuracy > 0.9


def test_every_input_form_gives_the_same_answer(onnx_file, digits):
    predictor = Predictor(onnx_file)
    path = sorted(digits.glob("7/*.png"))[0]
    pil = Image.open(path)
    array = np.asarray(pil)
    by_path = predictor.predict(path)
    assert by_path.label == "7" and by_path.source == str(path)
    for same in (predictor.predict(str(path)), predictor.predict(pil), predictor.predict(array),
                 predictor.predict(array[:, :, None]), predictor.predict(np.stack([array, array])[..., None])[1],
                 predictor.predict(pil.convert("RGB")), predictor.predict([path, pil])[1]):
        assert same.label == by_path.label
        np.testing.assert_allclose(same.probabilities, by_path.probabilities, atol=1e-6)
    assert by_path.top(3)[0] == ("7", pytest.approx(by_path.probability))
    assert abs(float(by_path.probabilities.sum()) - 1.0) < 1e-5
    assert by_path.to_dict()["label"] == "7"


def test_folder_prediction_in_batches(onnx_file, digits):
    predictor = Predictor(onnx_file)
    results = list(predictor.predict_folder(digits / "5", batch_size=7))
    files = sorted((digits / "5").glob("*.png"))
    assert [r.source for r in results] == [str(f) for f in files]
    assert np.mean([r.label == "5" for r in results]) > 0.85


def test_providers(onnx_file):
    auto = Predictor(onnx_file, providers="auto")
    expected = "CUDAExecutionProvider" if cuda_device_count() else "CPUExecutionProvider"
    assert auto.provider == expected and auto.provider in auto.session.get_providers()
    if cuda_device_count():
        assert Predictor(onnx_file, providers="cuda").provider == "CUDAExecutionProvider"
    else:  # asked by name, CUDA that cannot run is an error, never a quiet CPU run
        with pytest.raises(ResourceError, match="CUDA was asked for, but onnxruntime runs on the CPU: .*; use providers"):
            Predictor(onnx_file, providers="cuda")
    assert Predictor(onnx_file, providers="cpu", threads=1).provider == "CPUExecutionProvider"
    with pytest.raises(ZooError, match="unknown provider"):
        Predictor(onnx_file, providers="tpu")


def test_onnx_without_zoo_metadata_needs_explicit_options(onnx_file, digits, tmp_path):
    bare = tmp_path / "bare.onnx"
    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ZooError, match="no zoo metadata.*mean, std"):
        Predictor(bare)
    labels = [f"digit {i}" for i in range(10)]
    explicit = Predictor(bare, mean=[0.5], std=[0.5], labels=labels)  # size and channels come from the graph
    assert explicit.card.input_size == (28, 28) and explicit.card.channels == 1
    path = sorted(digits.glob("2/*.png"))[0]
    got, reference = explicit.predict(path), Predictor(onnx_file).predict(path)
    assert got.label == f"digit {reference.label}"
    np.testing.assert_allclose(got.probabilities, reference.probabilities, atol=1e-6)
    with pytest.raises(ZooError, match="labels"):
        Predictor(bare, mean=[0.5], std=[0.5], labels=["a", "b"])


def test_bad_input(onnx_file, tmp_path):
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("this is not a protobuf")
    with pytest.raises(ZooError, match="cannot load"):
        Predictor(not_onnx)
    with pytest.raises(ZooError, match="does not exist"):
        Predictor(tmp_path / "missing.onnx")
    predictor = Predictor(onnx_file)
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"GIF89a but truncated")
    with pytest.raises(ZooError, match="not a readable image"):
        predictor.predict(fake)
    with pytest.raises(ZooError, match="does not exist"):
        predictor.predict(tmp_path / "nothing.png")
    with pytest.raises(ZooError, match="uint8"):
        predictor.predict(np.zeros((28, 28), np.float64))
    with pytest.raises(ZooError, match="rejected an input"):
        predictor.predict(np.zeros((1, 3, 28, 28), np.float32))  # wrong channel count for the graph
    with pytest.raises(ZooError, match="cannot classify"):
        predictor.predict(42)
    with pytest.raises(ZooError, match="no images"):
        list(predictor.predict_folder(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path))
