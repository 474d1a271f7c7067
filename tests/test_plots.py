"""Training-progress plot, confusion chart, and the permissions of everything zoo writes atomically."""

from __future__ import annotations

import math
import os
import random
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from zoo.atomic import atomic_path, default_mode
from zoo.confusion_chart import confusion_figure, plot_confusion
from zoo.training.plot import plot_progress, progress_figure, save_figure, write_history

SUMMARY = {"val_accuracy": 0.9731, "status": "Max epochs completed", "elapsed_s": 263.4, "max_epochs": 100,
           "max_iterations": 5000, "val_every": 50, "learning_rate": 0.01, "head_learning_rate": 0.1,
           "hardware": "NVIDIA H200 (cuda:0)"}


def history(epochs: int, per_epoch: int, val_every: int, seed: int = 0) -> list[dict]:
    rng, rows, total = random.Random(seed), [], epochs * per_epoch
    for it in range(1, total + 1):
        p = 1 - math.exp(-it / (total / 4 + 1))
        row = {"epoch": (it - 1) // per_epoch + 1, "iteration": it, "seconds": 0.05 * it, "lr": 0.01,
               "loss": max(0.0, 2.3 * (1 - p) + rng.gauss(0, 0.08)),
               "accuracy": min(1.0, max(0.0, 0.1 + 0.9 * p + rng.gauss(0, 0.05))),
               "val_loss": None, "val_accuracy": None}
        if it == 1 or it % val_every == 0 or it == total:
            row["val_loss"], row["val_accuracy"] = 2.3 * (1 - p) + 0.1, min(1.0, 0.1 + 0.88 * p)
        rows.append(row)
    return rows


def axes(fig) -> dict:
    named = {a.get_label(): a for a in fig.axes}
    named.update({c.get_label(): c for a in fig.axes for c in a.child_axes})
    return named


def line(ax, label: str):
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def visible_ticks(axis, lo: float, hi: float) -> list[float]:
    return [t for t in axis.get_ticklocs() if lo <= t <= hi]


def panel_text(fig) -> str:
    return "\n".join(t.get_text() for t in axes(fig)["panel"].texts)


def test_progress_of_three_iterations_shows_every_point_on_whole_ticks():
    fig = progress_figure(history(1, 3, 2), batches_per_epoch=3, title="digitnet on shapes")
    fig.draw_without_rendering()
    ax = axes(fig)
    acc, loss, epoch = ax["accuracy"], ax["loss"], ax["epoch"]
    lo, hi = acc.get_xlim()
    assert lo < 1 and hi > 3
    ticks = visible_ticks(acc.xaxis, lo, hi)
    assert ticks == [1, 2, 3]
    epochs = visible_ticks(epoch.xaxis, *epoch.get_xlim())
    assert epochs and all(float(t).is_integer() for t in epochs)
    assert acc.get_ylim()[0] < 0 and acc.get_ylim()[1] > 100
    assert loss.get_ylim()[0] <= 0 and loss.get_ylim()[1] > max(r["loss"] for r in history(1, 3, 2))
    assert line(acc, "Training").get_marker() == "o"  # 1-3 iterations: markers on the training curve
    validation = line(acc, "Validation")  # iterations 1, 2 and 3: markers, no trend line
    assert validation.get_linestyle() == "None" and validation.get_marker() == "o"
    assert "Iteration: 3" in panel_text(fig) and "Hardware" not in panel_text(fig)


def test_progress_of_one_iteration_has_integer_ticks():
    fig = progress_figure(history(1, 1, 1), batches_per_epoch=1)
    fig.draw_without_rendering()
    ax = axes(fig)
    assert visible_ticks(ax["accuracy"].xaxis, *ax["accuracy"].get_xlim()) == [1]
    assert visible_ticks(ax["epoch"].xaxis, *ax["epoch"].get_xlim()) == [1]


def test_progress_of_a_long_run():
    rows = history(100, 50, 50)
    fig = progress_figure(rows, batches_per_epoch=50, summary=SUMMARY)
    fig.draw_without_rendering()
    ax = axes(fig)
    acc = ax["accuracy"]
    assert acc.get_xlim()[1] > 5000
    assert all(float(t).is_integer() for t in acc.get_xticks())
    assert all(float(t).is_integer() for t in ax["epoch"].get_xticks())
    raw = line(acc, "Training")
    assert raw.get_alpha() <= 0.25 and raw.get_linewidth() <= 0.6 and raw.get_marker() in (None, "None", "")
    assert line(acc, "Validation").get_linestyle() == "--"  # 101 points: joined
    text = panel_text(fig)
    for expected in ("Validation accuracy: 97.31 %", "Training finished: Max epochs completed", "4 min 23 s",
                     "Epoch: 100 of 100", "Iteration: 5000 of 5000", "Iterations per epoch: 50",
                     "Learning rate: 0.01", "Head learning rate: 0.1", "NVIDIA H200"):
        assert expected in text.replace("\n    ", " "), expected


def test_progress_panel_leaves_out_what_it_does_not_know():
    text = panel_text(progress_figure(history(2, 5, 5), batches_per_epoch=5,
                                      summary={"learning_rate": 0.01, "head_learning_rate": 0.01}))
    assert "Learning rate: 0.01" in text and "Head learning rate" not in text and "Training finished" not in text


@pytest.mark.parametrize("shape, summary", [((1, 3, 2), None), ((1, 3, 2), SUMMARY), ((100, 50, 50), None),
                                            ((100, 50, 50), SUMMARY)])
def test_plot_progress_writes_a_png(tmp_path, shape, summary):
    path = plot_progress(tmp_path / "sub" / "training-progress.png", history(*shape), batches_per_epoch=shape[1],
                         title="digitnet on shapes", summary=summary)
    with Image.open(path) as img:
        assert img.format == "PNG" and 1000 <= img.size[0] <= 2000 and 500 <= img.size[1] <= 1200


def evaluation(labels: list[str], per_class: int, accuracy: float = 0.85, seed: int = 0) -> SimpleNamespace:
    """What :class:`zoo.evaluation.Evaluation` gives the chart, without torch."""
    n, rng = len(labels), np.random.default_rng(seed)
    m = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for _ in range(per_class):
            m[i, i if rng.random() < accuracy else int(rng.integers(n))] += 1
    diag, predicted, actual = np.diag(m), m.sum(axis=0), m.sum(axis=1)
    return SimpleNamespace(labels=labels, confusion=m, accuracy=float(diag.sum() / m.sum()), images=int(m.sum()),
                           precision=[float(d / p) if p else None for d, p in zip(diag, predicted)],
                           recall=[float(d / a) if a else None for d, a in zip(diag, actual)])


def strip_fraction(fig) -> tuple[float, float]:
    fig.draw_without_rendering()
    ax = axes(fig)
    matrix = ax["matrix"].get_position()
    return ax["recall"].get_position().width / matrix.width, ax["precision"].get_position().height / matrix.height


def test_confusion_of_two_classes_keeps_strips_small_and_labels_level():
    fig = confusion_figure(evaluation(["cat", "dog"], 50), title="digitnet on pets")
    for fraction in strip_fraction(fig):
        assert 0.05 < fraction < 0.25
    labels = axes(fig)["precision"].get_xticklabels()
    assert [t.get_text() for t in labels] == ["cat", "dog"] and all(t.get_rotation() == 0 for t in labels)
    counts = [t.get_text() for t in axes(fig)["matrix"].texts]
    assert counts and "0" not in counts


def test_confusion_rotates_long_labels_only_when_they_crowd():
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    fig = confusion_figure(evaluation(names, 100))
    assert all(t.get_rotation() == 90 for t in axes(fig)["precision"].get_xticklabels())
    fig = confusion_figure(evaluation([str(i) for i in range(10)], 100))
    assert all(t.get_rotation() == 0 for t in axes(fig)["precision"].get_xticklabels())


def test_confusion_of_a_hundred_classes_is_bounded_and_drops_cell_text(tmp_path):
    result = evaluation([f"c{i:02d}" for i in range(100)], 20, accuracy=0.8)
    fig = confusion_figure(result, title="a model on a dataset with a long long long long name " * 3)
    assert max(fig.get_size_inches()) <= 16
    for fraction in strip_fraction(fig):
        assert 0.05 < fraction < 0.25
    assert not axes(fig)["matrix"].texts  # cells too small for counts: colour only
    title = fig.get_suptitle()
    assert len(title) * 7 <= fig.get_size_inches()[0] * 72
    with Image.open(plot_confusion(tmp_path / "cm.png", result)) as img:
        assert img.format == "PNG" and max(img.size) <= 16 * 150


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_mode_follows_the_umask(umask_022):
    assert default_mode() == 0o644
    os.umask(0o077)
    assert default_mode() == 0o600


def test_atomic_path_replaces_on_success_and_cleans_up_on_failure(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("new")
    assert target.read_text() == "new" and mode(target) == umask_022
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_written_files_get_the_users_default_permissions(tmp_path, umask_022):
    from matplotlib.figure import Figure

    from zoo.data.montage import save_montage

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1])
    written = [
        save_figure(fig, tmp_path / "fig.png"),
        write_history(tmp_path / "history.csv", history(1, 3, 2), ["iteration", "loss"]),
        plot_progress(tmp_path / "training-progress.png", history(1, 3, 2), batches_per_epoch=3),
        plot_confusion(tmp_path / "cm.png", evaluation(["a", "b"], 5)),
        save_montage(tmp_path / "montage.png", [Image.new("L", (8, 8))] * 2, ["a", "b"]),
    ]
    for path in written:
        assert mode(path) == umask_022, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary left


def test_checkpoint_and_cache_get_the_users_default_permissions(tmp_path, umask_022):
    torch = pytest.importorskip("torch")
    from zoo.card import ModelCard
    from zoo.checkpoint import read_card, save
    from zoo.data import cache

    path = save(tmp_path / "model.safetensors", torch.nn.Linear(2, 2), ModelCard(name="t"))
    assert mode(path) == umask_022 and read_card(path).name == "t"
    with cache.writing("k" * 32) as fh:
        fh.write(bytes(4))
    cache.write_meta("k" * 32, (1, 1, 2, 2), np.zeros(1, np.int64), np.zeros(1, np.int64), ["a"], [])
    images = cache.cache_folder() / ("k" * 32 + ".pixels")
    assert cache.read("k" * 32) is not None
    assert mode(images) == umask_022 and mode(images.with_suffix(".json")) == umask_022
