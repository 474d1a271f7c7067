"""zoo predict / Classifier.classify: checkpoints, ONNX files and pretrained registry models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_train import SHAPES, make_shapes, zoo_inproc

import zoo
from zoo.errors import ZooError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data = make_shapes(root / "Images", per_class=10)
    result = zoo.train("digitnet", data, out=root / "run", epochs=2, batch_size=8, progress=False)
    return result, data


def test_classify_accepts_paths_images_and_arrays(trained):
    result, data = trained
    clf = zoo.load(result.checkpoint)
    path = data / "square" / "003.png"
    by_path = clf.classify(path)[0]
    with Image.open(path) as img:
        by_image = clf.classify(img.copy())[0]
        array = np.asarray(img)
    by_array = clf.classify(array)[0]
    batch = clf.classify(np.stack([array[:, :, None], array[:, :, None]]))  # N x H x W x 1
    for p in (by_image, by_array, batch[0], batch[1]):
        assert p.label == by_path.label and p.probability == pytest.approx(by_path.probability, abs=1e-5)
    assert by_path.source == str(path) and by_path.label in SHAPES
    assert [label for label, _ in by_path.top(3)][0] == by_path.label and len(by_path.top(3)) == 3
    with pytest.raises(ZooError, match=r"must be uint8 \(0-255\), not float32: convert it first"):
        clf.classify(array.astype(np.float32) / 255.0)  # 0..1 or 0..255? the caller says, by converting
    assert clf.predict_proba([path, path]).shape == (2, 3)
    with pytest.raises(ZooError, match="does not exist"):
        clf.classify(data / "nope.png")
    with pytest.raises(ZooError, match="image array"):
        clf.classify(np.zeros((2, 3, 4, 5, 6), dtype=np.uint8)[0])


def test_cli_predict_checkpoint_json(trained, zoo_cli, capsys):
    result, data = trained
    files = [str(data / "circle" / "000.png"), str(data / "triangle" / "001.png")]
    out = json.loads(zoo_cli("predict", str(result.checkpoint), *files, "--json", "-k", "2").stdout)
    expected = result.classifier.classify(files)
    assert [o["label"] for o in out] == [p.label for p in expected]
    assert [o["file"] for o in out] == files and len(out[0]["top"]) == 2
    assert out[0]["probability"] == pytest.approx(expected[0].probability, abs=1e-5)
    code, folder, _ = zoo_inproc(capsys, "predict", str(result.checkpoint), str(data / "circle"), "--json")
    assert code == 0 and len(json.loads(folder)) == 10
    code, _, err = zoo_inproc(capsys, "predict", str(result.checkpoint), str(data / "missing.png"))
    assert code == 2 and "does not exist" in err


def test_predict_onnx_matches_checkpoint(trained, tmp_path):
    export = pytest.importorskip("zoo.export")
    from zoo.cli.predict import predict

    result, data = trained
    onnx_path = tmp_path / "shapes.onnx"
    export.export(result.checkpoint, onnx_path)
    files = sorted(data.glob("*/*.png"))[:6]
    torch_side = predict(str(result.checkpoint), files, top_k=3)
    onnx_side = predict(str(onnx_path), files, top_k=3)
    assert [p.label for p in onnx_side] == [p.label for p in torch_side]
    assert type(onnx_side[0]) is type(torch_side[0])  # one prediction type
    assert np.allclose([p.probability for p in onnx_side], [p.probability for p in torch_side], atol=1e-4)
    assert [p.to_dict().keys() for p in onnx_side] == [p.to_dict().keys() for p in torch_side]


def test_predict_registry_name_with_offline_imagenet_weights(tmp_path, capsys, monkeypatch):
    """mobilenet_v2's torchvision weights arrive offline from the weights plugin, labelled with ImageNet names."""
    from zoo.weights import labels_for

    skimage_data = pytest.importorskip("skimage.data")
    Image.fromarray(skimage_data.chelsea()).save(tmp_path / "chelsea.jpg")
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    code, out, err = zoo_inproc(capsys, "predict", "mobilenet_v2", str(tmp_path / "chelsea.jpg"), "--json")
    if code != 0 and "weights" in err:
        pytest.skip(f"no offline mobilenet_v2 weights here: {err.strip()[:120]}")
    top = json.loads(out)[0]
    assert top["label"] in labels_for("imagenet") and "cat" in " ".join(t["label"] for t in top["top"][:3])
    code, _, err = zoo_inproc(capsys, "predict", "digitnet", str(tmp_path / "chelsea.jpg"), "--weights", "none")
    assert code == 2 and "needs trained weights" in err


def test_a_folder_gives_train_and_predict_the_same_files(tmp_path, trained):
    """One list of image suffixes: .pgm and .ppm count for training, zoo predict and the runtime."""
    from zoo.cli.predict import _expand
    from zoo.data import open_dataset

    root = tmp_path / "set"
    for label in ("circle", "square"):
        (root / label).mkdir(parents=True)
        Image.new("L", (28, 28), 50).save(root / label / "a.pgm")
        Image.new("RGB", (28, 28), (9, 9, 9)).save(root / label / "b.ppm")
        Image.new("L", (28, 28)).save(root / label / "c.png")
        (root / label / "notes.txt").write_text("not an image")
    dataset = open_dataset(root, "folder")
    for_training = sorted(dataset.describe(i) for i in range(len(dataset)))
    for_predict = sorted(str(p) for p in _expand((str(root),)))
    assert for_training == for_predict and len(for_training) == 6
    result, _ = trained
    assert [p.source for p in zoo.load(result.checkpoint).classify(for_predict)] == for_predict


def test_opening_a_checkpoint_leaves_its_card_as_written(trained):
    """The resolver adds nothing to a checkpoint's card, so exports and 'zoo info' show what was saved."""
    from zoo.checkpoint import read_card

    result, _ = trained
    assert zoo.load(result.checkpoint).card == read_card(result.checkpoint)
    assert zoo.resolve(result.checkpoint).card == read_card(result.checkpoint)


@pytest.mark.fault("a model whose outputs are NaN or infinite (damaged weights, a diverged training)",
                   "one-line ZooError naming the image; never NaN probabilities")
def test_non_finite_outputs_are_refused_naming_the_image():
    from zoo.prediction import predictions

    assert predictions(np.array([[1.0, 2.0]]), ["x", "y"])[0].label == "y"
    with pytest.raises(ZooError, match="outputs for b.png are not finite numbers"):
        predictions(np.array([[1.0, 2.0], [np.nan, 0.0]]), ["x", "y"], sources=["a.png", "b.png"])
    with pytest.raises(ZooError, match="outputs for image 1 are not finite"):
        predictions(np.array([[np.inf, 0.0]]), ["x", "y"])
