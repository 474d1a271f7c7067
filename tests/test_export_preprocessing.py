"""Exported files against torch on real photos that need resizing: plain and --embed-preprocessing.

The photos install with scikit-learn and scikit-image (none is downloaded, none is the model's
size). The model is a 3-channel, ImageNet-normalised timm network with random weights, saved
as a checkpoint so that the export, the runtime and torch all start from the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.checkpoint import save
from zoo.export import export
from zoo.preprocess import Preprocess, normalize, open_image
from zoo.runtime import Predictor

NAME = "timm/test_efficientnet"  # 0.36 M params; ImageNet mean/std, 160 x 160, bicubic, center-crop 0.95
TOLERANCE = 1e-4  # export()'s default: max|ort - torch| / max(1, max|torch|)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[Any]:
    """Six real photos, 300 x 451 to 512 x 640, as uint8 arrays (one grey) and a PNG file."""
    datasets = pytest.importorskip("sklearn.datasets")
    skdata = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("photos") / "coffee.png"
    Image.fromarray(skdata.coffee()).save(path)
    return [*datasets.load_sample_images().images, skdata.chelsea(), skdata.astronaut(), skdata.camera(), path]


@pytest.fixture(scope="session")
def checkpoint_rgb(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model, card = zoo.resolve(NAME, num_classes=5)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # random features are small: a louder head lets the probabilities tell photos apart
        torch.nn.init.normal_(head.weight, std=20.0)
    return save(tmp_path_factory.mktemp("rgb") / "effnet.safetensors", model, card)


@pytest.fixture(scope="session")
def reference(checkpoint_rgb) -> tuple[torch.nn.Module, zoo.ModelCard]:
    model, card = zoo.resolve(checkpoint_rgb)
    assert card.channels == 3 and card.resize_mode == "center-crop" and card.input_size == (160, 160)
    return model.eval(), card


def torch_logits(reference: tuple[torch.nn.Module, zoo.ModelCard], photos: list[Any], **card_changes: Any,
                 ) -> np.ndarray:
    """torch on ``photos`` preprocessed by zoo.preprocess as ``card`` (with ``card_changes``) says."""
    model, card = reference
    pre = Preprocess.from_card(card.replace(**card_changes) if card_changes else card)
    images = [open_image(p) if isinstance(p, Path) else Image.fromarray(p) for p in photos]
    pixels = np.stack([pre.pixels(image) for image in images])
    assert all(np.asarray(image).shape[:2] != pre.input_size for image in images)  # every photo is resized
    x = normalize(torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))), pre)
    with torch.no_grad():
        return model(x).numpy()


def test_embedded_preprocessing_matches_torch_on_photos(checkpoint_rgb, reference, photos, tmp_path):
    report = export(checkpoint_rgb, tmp_path / "raw.onnx", embed_preprocessing=True)
    predictor = Predictor(report.path)
    assert predictor.embedded and predictor.card.resize_mode == "center-crop"
    expected = torch_logits(reference, photos)
    got = predictor.logits(predictor.model_input(photos))  # uint8 NHWC in; normalised inside the graph
    assert np.abs(got - expected).max() <= TOLERANCE * max(1.0, float(np.abs(expected).max()))
    predictions = predictor.predict(photos)
    assert [p.label for p in predictions] == [predictor.labels[i] for i in expected.argmax(1)]
    probabilities = torch.softmax(torch.from_numpy(expected), 1).numpy()
    np.testing.assert_allclose(np.stack([p.probabilities for p in predictions]), probabilities, atol=1e-5)


@pytest.fixture(scope="session")
def plain_file(checkpoint_rgb, tmp_path_factory) -> Path:
    return export(checkpoint_rgb, tmp_path_factory.mktemp("plain") / "effnet.onnx").path


@pytest.mark.parametrize("resize_mode", ["center-crop", "squash"])
def test_runtime_probabilities_match_torch_on_photos(resize_mode, plain_file, reference, photos):
    predictor = Predictor(plain_file, resize_mode=resize_mode)  # center-crop is the file's own
    assert not predictor.embedded and predictor.card.resize_mode == resize_mode
    expected = torch.softmax(torch.from_numpy(torch_logits(reference, photos, resize_mode=resize_mode)), 1).numpy()
    predictions = predictor.predict(photos)
    assert [p.label for p in predictions] == [predictor.labels[i] for i in expected.argmax(1)]
    np.testing.assert_allclose(np.stack([p.probabilities for p in predictions]), expected, atol=1e-4)
    other = "squash" if resize_mode == "center-crop" else "center-crop"
    elsewise = torch.softmax(torch.from_numpy(torch_logits(reference, photos, resize_mode=other)), 1).numpy()
    assert np.abs(elsewise - expected).max() > 100 * 1e-4  # the check tells one resize from the other
