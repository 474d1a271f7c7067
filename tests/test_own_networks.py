"""A student's own network: the lecture's layer array in a .m file, a Python network, an nn.Module."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_zoo
from torch import nn

import zoo
from zoo.errors import ZooError

LAB6_FILE = Path(__file__).resolve().parents[1] / "examples" / "lab6_layers.m"
LAB6 = LAB6_FILE.read_text()  # the lecture's layer array, with comments and a continuation

NET_PY = '''
from torch import nn

def make_net(num_classes=10, input_size=28, in_chans=1):
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(6 * 16, num_classes))
'''


def _image(digits):
    return next((digits / "7").glob("*.png"))


def test_lab6_layer_array_trains_and_its_checkpoint_loads_without_the_file(digits, tmp_path):
    layer_file = tmp_path / "lab6.m"
    layer_file.write_text(LAB6)
    out = tmp_path / "run"
    info = run_zoo("info", str(layer_file))
    assert "conv_1" in info.stdout and "21,690" in info.stdout.replace(" ", ",")
    run_zoo("train", str(layer_file), "--data", str(digits), "--epochs", "1", "--batch-size", "64",
            "--val-every", "10", "--out", str(out), "--no-progress")
    checkpoint = out / "model.safetensors"
    card = zoo.resolve(checkpoint).card
    assert card.source == "layers" and [layer["type"] for layer in card.layers][:2] == ["imageinput", "convolution2d"]
    assert card.extra["normalization"] == "zerocenter" and card.extra["normalization_fitted"] is True
    assert 0.0 < card.mean[0] < 1.0 and card.std == (pytest.approx(1 / 255),)
    layer_file.unlink()  # the checkpoint carries the layers as data
    clf = zoo.load(checkpoint)
    assert sum(p.numel() for p in clf.module.parameters()) == 21_690
    assert [name for name, _ in clf.module.named_children()][:3] == ["conv_1", "batchnorm_1", "relu_1"]
    shown = run_zoo("info", str(checkpoint))
    assert "maxpool_2" in shown.stdout
    predicted = run_zoo("predict", str(checkpoint), str(_image(digits)), "--json")
    assert '"label"' in predicted.stdout
    assert clf.card.training["metrics"]["val_acc"] > 0.5  # one epoch on 1,347 real digits


def test_layer_array_head_must_fit_the_data(digits, tmp_path):
    layer_file = tmp_path / "wrong.m"
    layer_file.write_text(LAB6.replace("fullyConnectedLayer(10)", "fullyConnectedLayer(2)"))
    line = LAB6.splitlines().index("    fullyConnectedLayer(10)") + 1
    with pytest.raises(ZooError, match=rf"wrong\.m:{line}: the last fullyConnectedLayer has 2 outputs, the data has 10"):
        zoo.train(layer_file, digits, epochs=1, out=tmp_path / "run", progress=False)


def test_python_network_trains_and_loads_only_when_given_again(digits, tmp_path):
    net = tmp_path / "net.py"
    net.write_text(NET_PY)
    out = tmp_path / "run"
    run_zoo("train", f"{net}:make_net", "--data", str(digits), "--epochs", "1", "--batch-size", "64",
            "--out", str(out), "--no-progress")
    checkpoint = out / "model.safetensors"
    refused = run_zoo("predict", str(checkpoint), str(_image(digits)), check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--network" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    clf = zoo.load(checkpoint, network=f"{net}:make_net")
    assert clf.card.source == "python" and clf.card.input_size == (28, 28) and clf.card.channels == 1
    assert len(clf.classify(_image(digits))) == 1
    with pytest.raises(ZooError, match="does not match"):
        zoo.load(checkpoint, network=nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))


def test_python_network_without_input_size_names_the_ways_to_give_it(digits, tmp_path):
    net = tmp_path / "bare.py"
    net.write_text(NET_PY.replace("input_size=28, in_chans=1", "in_chans=1"))
    with pytest.raises(ZooError, match="does not say its input size: give --input-size"):
        zoo.train(f"{net}:make_net", digits, epochs=1, out=tmp_path / "run", progress=False)
    result = run_zoo("train", f"{net}:make_net", "--data", str(digits), "--epochs", "1", "--input-size", "28",
                     "--out", str(tmp_path / "run"), "--no-progress", "--json")
    assert '"val_acc"' in result.stdout


def test_train_accepts_an_nn_module(digits, tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28 * 28, 10))
    result = zoo.train(module, digits, epochs=1, batch_size=64, out=tmp_path / "run", progress=False,
                       card={"input_size": (28, 28)})
    assert result.card.channels == 1 and result.card.source == "python"
    assert result.metrics["val_acc"] is not None
    clf = zoo.load(result.checkpoint, network=module)
    assert np.allclose(clf.predict_proba(_image(digits)), result.classifier.predict_proba(_image(digits)), atol=1e-6)


def test_python_train_warns_before_replacing_a_run_and_clears_its_stale_outputs(digits, tmp_path):
    out = tmp_path / "run"
    zoo.train("digitnet", digits, epochs=1, out=out, progress=False, split=1.0)
    (out / "confusion-matrix.png").write_bytes(b"stale")
    with pytest.warns(zoo.errors.ZooWarning, match="holds a run from"):
        zoo.train("digitnet", digits, epochs=1, out=out, progress=False, split=1.0)
    assert not (out / "confusion-matrix.png").exists()
    assert (out / "model.safetensors").is_file() and (out / "training-progress.png").is_file()


def test_finetune_without_weights_trains_every_layer(digits, tmp_path):
    with pytest.raises(ZooError, match="--freeze backbone with --weights none"):
        zoo.finetune("digitnet", digits, classes=10, weights="none", freeze="backbone", out=tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = zoo.finetune("digitnet", digits, classes=10, weights="none", epochs=1, out=tmp_path / "b",
                              progress=False)
    assert result.card.training["freeze"] == "none" and result.card.training["pretrained"] == "none"


def test_make_faces_writes_lab5_images(tmp_path):
    out = tmp_path / "Images"
    result = run_zoo("data", "make-faces", str(out))
    assert "wrote 200 photos" in result.stdout
    assert len(list((out / "face").glob("*.jpg"))) == 100 and len(list((out / "other").glob("*.jpg"))) == 100
    again = run_zoo("data", "make-faces", str(out), check=False)
    assert again.returncode != 0 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_the_lectures_split_train_classify_accuracy_lines(digits, tmp_path):
    """[trainImages, testImages] = splitEachLabel(imds, 0.75, 'randomized'); net = trainNetwork(...);
    predicted = classify(net, testImages); accuracy = mean(predicted == testImages.Labels)."""
    layer_file = LAB6_FILE  # the README's lines
    train_images, test_images = zoo.split_each_label(digits, 0.75, seed=0)
    result = zoo.train(layer_file, train_images, val=test_images, epochs=1, batch_size=64, out=tmp_path / "run",
                       progress=False)
    predicted = result.classifier.classify(test_images)
    accuracy = np.mean(predicted.labels == test_images.label_names)
    assert len(predicted) == len(test_images) == result.metrics["val_images"]
    assert accuracy == pytest.approx(result.metrics["val_acc"], abs=1e-6)
    assert result.card.training["data"] == str(Path(digits).absolute())  # where the split came from


def test_evaluate_split_of_run_scores_exactly_the_validation_part(digits, tmp_path):
    out = tmp_path / "run"
    run_zoo("train", "digitnet", "--data", str(digits), "--epochs", "1", "--batch-size", "64", "--out", str(out),
            "--no-progress")
    checkpoint = out / "model.safetensors"
    metrics = zoo.resolve(checkpoint).card.training["metrics"]
    result = run_zoo("evaluate", str(checkpoint), "--split-of-run", "--no-plot")
    assert (f"accuracy: {100 * metrics['val_acc']:.2f}% of {metrics['val_images']} images (val part of the run)"
            in result.stdout)
    everything = run_zoo("evaluate", str(checkpoint), "--data", str(digits), "--no-plot")
    assert f"{metrics['train_images']} of 1797 evaluation images were used to train this model" in everything.stderr


def test_python_network_checkpoint_with_network_option(digits, tmp_path):
    net = tmp_path / "net.py"
    net.write_text(NET_PY)
    out = tmp_path / "run"
    run_zoo("train", f"{net}:make_net", "--data", str(digits), "--epochs", "1", "--out", str(out), "--no-progress")
    checkpoint = str(out / "model.safetensors")
    predicted = run_zoo("predict", checkpoint, str(_image(digits)), "--network", f"{net}:make_net")
    assert _image(digits).name in predicted.stdout
    info = run_zoo("info", checkpoint)
    assert "--network FILE.py:NAME" in info.stderr and "make_net" in info.stdout
    wrong = run_zoo("predict", checkpoint, str(_image(digits)), "--network", f"{net}:missing", check=False)
    assert wrong.returncode != 0 and "defines no 'missing'" in wrong.stderr and "Traceback" not in wrong.stderr
