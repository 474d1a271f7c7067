"""zoo.evaluate / zoo evaluate and zoo features on a checkpoint trained here."""

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
    root = tmp_path_factory.mktemp("eval")
    data = make_shapes(root / "Images", per_class=10)
    result = zoo.train("digitnet", data, out=root / "run", epochs=2, batch_size=8, progress=False)
    return result, data, root


def test_confusion_matrix_and_metrics_by_hand():
    from zoo.evaluation import _metrics, confusion_matrix

    m = confusion_matrix(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 1, 2]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 1]]
    r = _metrics(m, ["a", "b", "c"], None)
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.precision == pytest.approx([1.0, 0.5, 1.0]) and r.recall == pytest.approx([0.5, 1.0, 0.5])
    empty = _metrics(confusion_matrix(np.array([0]), np.array([0]), 2), ["a", "b"], None)
    assert empty.precision[1] is None and empty.recall[1] is None


def test_evaluate_agrees_with_classify(trained, tmp_path):
    result, data, _ = trained
    with pytest.warns(zoo.data.DataWarning, match="24 of 30 evaluation images were used to train this model"):
        evaluation = zoo.evaluate(result.checkpoint, data, plot=tmp_path / "cm.png")
    assert evaluation.labels == list(SHAPES) and evaluation.images == 30
    assert evaluation.confusion.sum() == 30 and evaluation.support == [10, 10, 10]
    files = sorted(data.glob("*/*.png"))
    predictions = result.classifier.classify(files)
    correct = sum(p.label == f.parent.name for p, f in zip(predictions, files))
    assert evaluation.accuracy == pytest.approx(correct / 30)
    with Image.open(tmp_path / "cm.png") as img:
        assert img.format == "PNG" and min(img.size) > 300


def test_evaluate_subset_of_classes_and_unknown_class(trained, tmp_path):
    result, _, _ = trained
    two = make_shapes(tmp_path / "Two", per_class=3, classes=("square", "circle"))
    evaluation = zoo.evaluate(result.checkpoint, two)
    assert evaluation.support == [3, 3, 0] and evaluation.recall[2] is None
    odd = make_shapes(tmp_path / "Odd", per_class=2, classes=("circle", "line"))
    with pytest.raises(ZooError, match="unknown to the model: line"):
        zoo.evaluate(result.checkpoint, odd)


def test_cli_evaluate_json_and_png(trained, zoo_cli, capsys):
    result, data, root = trained
    proc = zoo_cli("evaluate", str(result.checkpoint), "--data", str(data), "--json")
    report = json.loads(proc.stdout)
    assert report["images"] == 30 and len(report["confusion"]) == 3
    assert [c["label"] for c in report["per_class"]] == list(SHAPES)
    assert (root / "run" / "confusion-matrix.png").is_file()
    code, table, _ = zoo_inproc(capsys, "evaluate", str(result.checkpoint), "--data", str(data), "--no-plot")
    assert code == 0 and table.startswith("accuracy: ") and "PRECISION" in table and "confusion matrix" in table


def test_features_at_a_named_layer(trained, tmp_path, capsys):
    from zoo.features import extract

    result, data, _ = trained
    features = extract(result.checkpoint, "relu_3", data, out=tmp_path / "f.npz")
    assert features.features.shape == (30, 32, 7, 7)
    saved = np.load(tmp_path / "f.npz")
    assert saved["features"].shape == (30, 32, 7, 7) and list(saved["classes"]) == list(SHAPES)
    assert str(saved["layer"]) == "relu_3" and saved["files"][0].endswith(".png")
    # fc activations are the logits the classifier computes
    fc = extract(result.checkpoint, "fc", data).features
    files = [str(f) for f in features.files]
    assert np.allclose(fc.argmax(1), result.classifier.predict_proba(files).argmax(1))
    code, _, err = zoo_inproc(capsys, "features", str(result.checkpoint), "--layer", "relu3", "--data", str(data),
                              "--out", str(tmp_path / "g.npz"))
    assert code == 2 and "no layer 'relu3'" in err and "relu_3" in err
    assert not (tmp_path / "g.npz").exists()
    code, out, _ = zoo_inproc(capsys, "features", str(result.checkpoint), "--layer", "fc", "--data", str(data),
                              "--out", str(tmp_path / "h.npz"))
    assert code == 0 and "of shape 3" in out and np.load(tmp_path / "h.npz")["features"].shape == (30, 3)
