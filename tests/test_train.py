"""zoo.train / zoo.finetune / zoo train: real training on tiny folders of drawn shapes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import zoo
from zoo.checkpoint import read_card
from zoo.errors import ZooError

SHAPES = ("circle", "square", "triangle")


def make_shapes(root: Path, per_class: int = 12, size: int = 28, seed: int = 0, classes=SHAPES) -> Path:
    """DIR/<shape>/*.png: white shapes of random size and place on black, one folder per class."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("L", (size, size), 0)
            draw = ImageDraw.Draw(img)
            r = int(rng.integers(size // 5, size // 3))
            cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
            box = (cx - r, cy - r, cx + r, cy + r)
            if name == "circle":
                draw.ellipse(box, fill=255)
            elif name == "square":
                draw.rectangle(box, fill=255)
            elif name == "triangle":
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=255)
            else:
                draw.line((cx - r, cy, cx + r, cy), fill=255, width=3)
            img.save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes") / "Images")


FAST = dict(epochs=2, batch_size=8, val_every=2, progress=False)


def test_train_writes_checkpoint_history_and_plot(shapes, tmp_path):
    result = zoo.train("digitnet", shapes, out=tmp_path / "run", **FAST)
    assert result.checkpoint == tmp_path / "run" / "model.safetensors" and result.checkpoint.is_file()
    # 36 images, 75% per label -> 27 for training, batches of 8 -> 3 per epoch (last partial dropped)
    assert result.metrics["train_images"] == 27 and result.metrics["val_images"] == 9
    assert result.metrics["iterations"] == 6 == len(result.history)
    assert result.metrics["epochs"] == 2
    validated = [r["iteration"] for r in result.history if r["val_accuracy"] is not None]
    assert validated == [1, 2, 4, 6]

    card = read_card(result.checkpoint)
    assert card.name == "digitnet" and card.source == "builtin"
    assert card.labels == SHAPES and card.num_classes == 3
    assert card.input_size == (28, 28) and card.channels == 1 and card.mean == (0.5,)
    assert card.training["options"]["epochs"] == 2 and card.training["options"]["lr"] == 0.01
    assert card.training["metrics"]["val_acc"] == result.metrics["val_acc"]
    assert set(card.versions) >= {"zoo", "torch"}

    lines = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,iteration,seconds,lr,head_lr,loss,accuracy,val_loss,val_accuracy"
    assert len(lines) == 7
    png = tmp_path / "run" / "training-progress.png"
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] >= 800
    assert not (tmp_path / "run" / "resume.safetensors").exists()

    loaded = zoo.load(result.checkpoint)
    assert loaded.labels == list(SHAPES)
    for name, param in loaded.module.state_dict().items():
        assert np.array_equal(param.numpy(), result.classifier.module.state_dict()[name].numpy()), name
    predictions = loaded.classify([shapes / "circle" / "000.png", shapes / "square" / "000.png"], top_k=2)
    assert len(predictions) == 2 and predictions[0].label in SHAPES and len(predictions[0].top()) == 2
    assert abs(sum(loaded.predict_proba(shapes / "circle" / "001.png")[0]) - 1) < 1e-5


def test_training_learns_the_shapes(tmp_path):
    data = make_shapes(tmp_path / "Images", per_class=40, seed=3)
    result = zoo.train("digitnet", data, out=tmp_path / "run", epochs=10, batch_size=16, lr=0.05, val_every=5,
                       progress=False)
    losses = [r["loss"] for r in result.history]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert result.metrics["val_acc"] >= 0.8, result.metrics  # chance: 0.33


def test_plain_progress_lines(shapes, tmp_path, capsys):
    zoo.train("digitnet", shapes, out=tmp_path / "run", epochs=1, batch_size=8, val_every=2, progress=None)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["epoch", "iteration", "elapsed"]
    assert out[1].split()[:2] == ["1/1", "1/3"]
    assert out[-1].startswith("done: 1 epoch(s), 3 iterations") and "validation" in out[-1]


@pytest.mark.parametrize("solver", ["adam", "rmsprop"])
def test_other_solvers_and_schedules(shapes, tmp_path, solver):
    result = zoo.train("digitnet", shapes, out=tmp_path / solver, solver=solver, epochs=3, batch_size=8,
                       lr_schedule="piecewise", lr_drop_period=1, lr_drop_factor=0.5, split=1.0, progress=False)
    lrs = sorted({(r["epoch"], r["lr"]) for r in result.history})
    assert lrs == [(1, 0.001), (2, 0.0005), (3, 0.00025)]
    assert result.metrics["val_acc"] is None and result.metrics["val_images"] == 0


def test_cosine_schedule_and_lr_factor():
    from zoo.training import TrainOptions
    from zoo.training.solver import lr_factor

    cosine = TrainOptions(lr_schedule="cosine")
    assert lr_factor(cosine, 0, 0, 100) == 1.0
    assert lr_factor(cosine, 0, 50, 100) == pytest.approx(0.5)
    assert lr_factor(cosine, 0, 100, 100) == pytest.approx(0.0)
    assert lr_factor(TrainOptions(lr_schedule="piecewise"), 25, 0, 100) == pytest.approx(0.01)


def test_bad_options_are_clear_errors():
    from zoo.training import TrainOptions

    for bad, word in [(dict(solver="sgd"), "--solver"), (dict(split=1.5), "--split"), (dict(epochs=0), "--epochs"),
                      (dict(lr=-1.0), "--lr"), (dict(shuffle="always"), "--shuffle"), (dict(momentum=1.0), "--momentum")]:
        with pytest.raises(ZooError, match=word):
            TrainOptions(**bad)
    with pytest.raises(ZooError, match="unknown training option"):
        TrainOptions().replace(max_epochs=3)


def test_classes_disagreeing_with_folders(shapes, tmp_path):
    with pytest.raises(ZooError, match=r"--classes 5 disagrees with the 3 class folder\(s\).*circle, square, triangle"):
        zoo.finetune("digitnet", shapes, classes=5, weights="none", out=tmp_path / "x", progress=False)
    with pytest.raises(ZooError, match="--classes 2 disagrees"):
        zoo.train("digitnet", shapes, num_classes=2, out=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_freeze_backbone_trains_the_head_only(shapes, tmp_path):
    from zoo.models import create_model
    from zoo.transfer import param_groups

    torch = pytest.importorskip("torch")
    first = zoo.train("digitnet", shapes, out=tmp_path / "a", **FAST)
    start = zoo.load(first.checkpoint).module.state_dict()
    result = zoo.finetune(first.checkpoint, shapes, classes=3, freeze="backbone", out=tmp_path / "f", **FAST)
    after = result.classifier.module.state_dict()
    for name in start:
        same = torch.equal(start[name], after[name])
        assert same == (not name.startswith("fc.")), name  # BN statistics stay fixed too

    groups = param_groups(create_model("digitnet", num_classes=3), lr=0.01, head_lr_factor=10.0)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.01), ("head", pytest.approx(0.1))]
    assert result.card.training["freeze"] == "backbone"


def test_checkpoint_as_model_continues_or_needs_finetune(shapes, tmp_path):
    first = zoo.train("digitnet", shapes, out=tmp_path / "a", **FAST)
    again = zoo.train(first.checkpoint, shapes, out=tmp_path / "b", **FAST)
    assert again.card.labels == SHAPES and again.card.name == "digitnet"
    two = make_shapes(tmp_path / "Two", per_class=8, classes=("circle", "line"))
    with pytest.raises(ZooError, match="zoo finetune .* --classes 2"):
        zoo.train(first.checkpoint, two, out=tmp_path / "c", **FAST)
    tuned = zoo.finetune(first.checkpoint, two, classes=2, out=tmp_path / "c", **FAST)
    assert tuned.card.labels == ("circle", "line") and tuned.card.num_classes == 2

    # --weights FILE: the file is loaded as pretrained weights (head adapted: 3 -> 2 classes)
    frozen = zoo.finetune("digitnet", two, classes=2, weights=str(first.checkpoint), freeze="backbone",
                          out=tmp_path / "d", **FAST)
    assert frozen.card.training["pretrained"] == "file"
    before, after = first.classifier.module.state_dict(), frozen.classifier.module.state_dict()
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before if not k.startswith("fc."))
    assert after["fc.weight"].shape[0] == 2


def test_separate_validation_folder(shapes, tmp_path):
    val = make_shapes(tmp_path / "Val", per_class=4, seed=9)
    result = zoo.train("digitnet", shapes, val=val, out=tmp_path / "v", **FAST)
    assert result.metrics["train_images"] == 36 and result.metrics["val_images"] == 12


class _InterruptAt:
    """Sends this process a real SIGINT at one iteration (what Ctrl-C does)."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_iteration_end(self, trainer, row):
        if row["iteration"] == self.iteration:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_then_resume_reaches_the_same_weights(shapes, tmp_path):
    from zoo.training import TrainingInterrupted

    # dropout-free digitnet with BN, momentum buffers and a piecewise schedule across the cut
    opts = dict(epochs=3, batch_size=8, val_every=2, lr_schedule="piecewise", lr_drop_period=2, seed=7,
                progress=False)
    whole = zoo.train("digitnet", shapes, out=tmp_path / "whole", **opts)
    with pytest.raises(TrainingInterrupted) as stopped:
        zoo.train("digitnet", shapes, out=tmp_path / "cut", callbacks=[_InterruptAt(4)], **opts)
    state = tmp_path / "cut" / "resume.safetensors"
    assert stopped.value.state_path == state and state.is_file()
    assert "iteration 4/9" in str(stopped.value) and "--resume" in str(stopped.value)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    with open(state, "rb") as fh:  # no pickle anywhere: a safetensors header, then raw tensors
        assert b"\x80\x04" not in fh.read(16)

    resumed = zoo.train("digitnet", shapes, out=tmp_path / "cut", resume=True, progress=False)
    assert not state.exists()
    assert [r["iteration"] for r in resumed.history] == list(range(1, 10))
    a, b = whole.classifier.module.state_dict(), resumed.classifier.module.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name].numpy(), b[name].numpy()), name
    assert [r["loss"] for r in whole.history] == [r["loss"] for r in resumed.history]


def test_resume_without_state_is_an_error(shapes, tmp_path):
    with pytest.raises(ZooError, match="no resumable state"):
        zoo.train("digitnet", shapes, out=tmp_path / "none", resume=True, progress=False)


def zoo_inproc(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (no torch start-up cost): (exit code, stdout, stderr)."""
    from zoo.cli import main

    capsys.readouterr()
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_train_json(shapes, tmp_path, zoo_cli):
    proc = zoo_cli("train", "digitnet", "--data", str(shapes), "--epochs", "1", "--batch-size", "8",
                   "--out", str(tmp_path / "cli"), "--json")
    report = json.loads(proc.stdout)
    assert report["metrics"]["iterations"] == 3 and Path(report["checkpoint"]).is_file()
    assert read_card(report["checkpoint"]).training["options"]["batch_size"] == 8


def test_cli_errors_and_help(shapes, tmp_path, capsys):
    code, _, err = zoo_inproc(capsys, "finetune", "digitnet", "--data", str(shapes), "--classes", "4",
                              "--weights", "none", "--out", str(tmp_path / "bad"))
    assert code == 2 and err.startswith("error: --classes 4 disagrees") and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
    code, _, err = zoo_inproc(capsys, "train", "digitnet", "--data", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = zoo_inproc(capsys, "train", "digitnet", "--data", str(shapes), "--split", "2")
    assert code == 2 and "'--split': must be in (0, 1]" in err
    code, text, _ = zoo_inproc(capsys, "train", "--help")
    for flag in ("--solver", "--lr-schedule", "--val-every", "--shuffle", "--device", "--resume", "MATLAB: 30"):
        assert flag in text


def test_cli_ctrl_c_saves_state_and_says_how_to_resume(shapes, tmp_path):
    """A real SIGINT to a running 'zoo train': exit 130, 'interrupted:', a resume state, no checkpoint."""
    import subprocess
    import sys

    out = tmp_path / "int"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "zoo"), "train", "digitnet", "--data", str(shapes), "--epochs", "500",
         "--batch-size", "8", "--val-every", "1000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().split()[:2] == ["epoch", "iteration"]
        assert proc.stdout.readline().split()[1] == "1/1500"  # training has started
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.startswith("interrupted: training interrupted at iteration") and "--resume" in stderr
    assert (out / "resume.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert "stopped:" in stdout


def test_augmentation_is_applied_and_resumable(shapes, tmp_path):
    plain = zoo.train("digitnet", shapes, out=tmp_path / "p", **FAST)
    moved = zoo.train("digitnet", shapes, out=tmp_path / "a", augment="rotate=20,translate=3", **FAST)
    again = zoo.train("digitnet", shapes, out=tmp_path / "b", augment="rotate=20,translate=3", **FAST)
    assert [r["loss"] for r in moved.history] != [r["loss"] for r in plain.history]
    assert [r["loss"] for r in moved.history] == [r["loss"] for r in again.history]  # seeded per iteration
    assert moved.card.training["options"]["augment"] == "rotate=20,translate=3"
    with pytest.raises(ZooError, match="cannot read augmentation 'spin'"):
        zoo.train("digitnet", shapes, out=tmp_path / "c", augment="spin", **FAST)
