"""splitEachLabel as a value: DatasetSubset views, classify/evaluate on a split, a run's split record."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_train import SHAPES, make_shapes, zoo_inproc

import zoo
from zoo.checkpoint import save
from zoo.data import (
    DatasetSubset,
    ImageDataset,
    open_dataset,
    reopen_split,
    split_record,
)
from zoo.data.base import DataWarning
from zoo.data.split import part_sha, split_indices
from zoo.errors import ZooError
from zoo.prediction import Predictions, as_images, image_batches


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny digitnet trained on 3 x 8 shapes; its card carries a 0.75 split record written here."""
    root = tmp_path_factory.mktemp("splits")
    data = make_shapes(root / "Images", per_class=8)
    result = zoo.train("digitnet", data, out=root / "run", epochs=1, batch_size=8, progress=False)
    first, rest = zoo.split_each_label(open_dataset(data), 0.75, seed=0)
    record = split_record(first, rest, data=data, adapter="folder", fraction=0.75, seed=0)
    card = result.card
    save(result.checkpoint, result.classifier.module, card.replace(training={**card.training, "split": record}))
    bare = {k: v for k, v in card.training.items() if k != "split"}
    old = save(root / "old.safetensors", result.classifier.module, card.replace(training=bare))
    return result.checkpoint, old, data, root


class Counting(ImageDataset):
    """A dataset of gray squares that counts its decodes."""

    def __init__(self, n: int = 10, broken: int | None = None) -> None:
        self.classes = ["dark", "light"]
        self.labels = np.arange(n) % 2
        self.loads: list[int] = []
        self.broken = broken

    def load(self, index: int) -> Image.Image:
        if index == self.broken:
            raise OSError("truncated")
        self.loads.append(index)
        return Image.new("L", (28, 28), 40 + 200 * int(self.labels[index]))

    def describe(self, index: int) -> str:
        return f"mem://{index}"


# -- split_each_label on datasets -----------------------------------------------------------


def test_split_gives_views_with_the_array_rule(run):
    _, _, data, _ = run
    dataset = open_dataset(data)
    first, rest = zoo.split_each_label(dataset, 0.75, seed=3)
    a, b = split_indices(dataset.labels, 0.75, seed=3)
    assert isinstance(first, DatasetSubset) and first.parent is dataset
    assert first.indices.tolist() == a.tolist() and rest.indices.tolist() == b.tolist()
    assert first.counts() == {name: 6 for name in SHAPES} and len(rest) == 6
    assert first.classes == dataset.classes and first.labels.tolist() == dataset.labels[a].tolist()
    assert rest.describe(0) == dataset.describe(int(b[0])) and rest.load(0).size == (28, 28)
    assert list(rest.label_names) == [dataset.classes[i] for i in dataset.labels[b]]
    assert dataset.label_names.dtype.kind == "U" and len(dataset.label_names) == 24
    assert first.fingerprint() != rest.fingerprint() != dataset.fingerprint()
    assert zoo.split_each_label(dataset, 0.75, seed=3)[1].fingerprint() == rest.fingerprint()
    # the array form keeps working (training calls it), and a path is opened for you
    assert [x.tolist() for x in zoo.split_each_label(dataset.labels, 0.75, seed=3)] == [a.tolist(), b.tolist()]
    assert zoo.split_each_label(str(data), 0.75, seed=3)[1].indices.tolist() == b.tolist()
    assert "split_each_label" in zoo.__all__


def test_subsets_of_subsets_counts_and_order(run):
    _, _, data, _ = run
    dataset = open_dataset(data)
    first, _ = zoo.split_each_label(dataset, 0.75, seed=0)
    inner, outer = zoo.split_each_label(first, 2, randomize=False)  # 2 per label, in order
    assert inner.parent is dataset and len(inner) == 6 and len(outer) == 12
    assert inner.indices.tolist() == sorted(first.indices[np.flatnonzero(np.isin(first.indices, inner.indices))])
    assert set(inner.indices) | set(outer.indices) == set(first.indices)
    assert inner.describe(0) == dataset.describe(int(inner.indices[0]))
    with pytest.raises(ZooError, match="between 0 and 1"):
        zoo.split_each_label("/no/such/folder", 1.5)  # the fraction is checked before the folder
    with pytest.raises(ZooError, match="fewer than the 9"):
        zoo.split_each_label(dataset, 9)
    with pytest.raises(ZooError, match="subset indices"):
        DatasetSubset(dataset, [0, 24])


# -- classify a dataset, a folder -----------------------------------------------------------


def test_classify_a_split_and_the_lectures_accuracy_line(run):
    ckpt, _, data, _ = run
    clf = zoo.load(ckpt)
    _, test_images = zoo.split_each_label(open_dataset(data), 0.75, seed=0)
    predicted = clf.classify(test_images, batch_size=4)
    assert isinstance(predicted, Predictions) and isinstance(predicted, list) and len(predicted) == 6
    files = [test_images.describe(i) for i in range(len(test_images))]
    by_file = clf.classify(files)
    assert predicted.labels.tolist() == by_file.labels.tolist() and predicted.sources == files
    accuracy = np.mean(predicted.labels == test_images.label_names)
    assert accuracy == pytest.approx(sum(p.label == Path(f).parent.name for p, f in zip(by_file, files)) / 6)
    assert predicted.probabilities.shape == (6, 3) and predicted.indices.tolist() == [p.index for p in predicted]
    assert np.allclose(clf.predict_proba(test_images, batch_size=4), predicted.probabilities, atol=1e-6)
    assert isinstance(predicted[:2], Predictions) and predicted[0].label == predicted.labels[0]
    folder = clf.classify(data / "circle")  # a folder: every image under it, sorted
    assert [Path(p.source).name for p in folder] == [f"{i:03d}.png" for i in range(8)]
    assert len(clf.classify(str(data))) == 24


def test_datasets_are_decoded_batch_by_batch():
    dataset = Counting(10)
    batches = image_batches(dataset, 4)
    assert len(next(batches)) == 4 and dataset.loads == [0, 1, 2, 3]
    assert [len(b) for b in batches] == [4, 2]
    assert [src for _, src in as_images(Counting(3))] == ["mem://0", "mem://1", "mem://2"]
    with pytest.raises(ZooError, match=r"sample 3 \('mem://3'\) is not a readable image"):
        list(image_batches(Counting(6, broken=3), 2))


def test_runtime_predictor_takes_datasets_and_folders(run, tmp_path):
    from zoo.export import export
    from zoo.runtime import Predictor

    ckpt, _, data, _ = run
    export(ckpt, tmp_path / "m.onnx")
    predictor = Predictor(tmp_path / "m.onnx")
    _, test_images = zoo.split_each_label(open_dataset(data), 0.75, seed=0)
    predicted = predictor.predict(test_images, batch_size=4)
    assert isinstance(predicted, Predictions) and len(predicted) == 6
    assert predicted.labels.tolist() == zoo.load(ckpt).classify(test_images).labels.tolist()
    assert len(predictor.predict(data / "square")) == 8
    one = predictor.predict(str(data / "square" / "000.png"))
    assert one.label in SHAPES and one.source.endswith("000.png")


# -- the split record -----------------------------------------------------------------------


def test_split_record_reopens_and_detects_changes(run, tmp_path, monkeypatch):
    _, _, data, _ = run
    copy = shutil.copytree(data, tmp_path / "Images")
    first, rest = zoo.split_each_label(open_dataset(copy), 0.75, seed=1)
    record = split_record(first, rest, data=copy, adapter="folder", fraction=0.75, seed=1)
    assert json.loads(json.dumps(record)) == record and record["data"] == str(copy.resolve())
    assert (record["train_images"], record["val_images"], record["fraction"], record["seed"]) == (18, 6, 0.75, 1)
    val = reopen_split(record)
    assert val.indices.tolist() == rest.indices.tolist()
    assert reopen_split(record, "train").indices.tolist() == first.indices.tolist()
    monkeypatch.chdir(tmp_path)  # the hash does not depend on how the folder is reached
    assert part_sha(open_dataset("Images"), "Images") == part_sha(open_dataset(copy), copy)
    (copy / "circle" / "new.png").write_bytes((copy / "circle" / "000.png").read_bytes())
    with pytest.raises(ZooError, match=r"1 image\(s\) added: 25 now, 24 then.*--split 0.75 --seed 1 --part val"):
        reopen_split(record)
    (copy / "circle" / "new.png").rename(copy / "circle" / "000.png")  # same count, other content is fine
    (copy / "circle" / "001.png").rename(copy / "circle" / "x01.png")
    with pytest.raises(ZooError, match="renamed, replaced or relabelled"):
        reopen_split(record)
    with pytest.raises(ZooError, match="no valid 'seed'"):
        reopen_split({**record, "seed": "0"})
    with pytest.raises(ZooError, match="is gone"):
        reopen_split({**record, "data": str(tmp_path / "gone")})
    with pytest.raises(ZooError, match="part must be"):
        reopen_split(record, "test")


def test_split_record_of_a_separate_validation_folder(run, tmp_path):
    _, _, data, _ = run
    val = make_shapes(tmp_path / "Val", per_class=2, seed=5)
    record = split_record(open_dataset(data), open_dataset(val), data=data, adapter="folder", val_data=val)
    assert "fraction" not in record and record["val_data"] == str(val.resolve()) and record["val_images"] == 6
    assert len(reopen_split(record, "val")) == 6 and len(reopen_split(record, "train")) == 24
    assert split_record(open_dataset(data), open_dataset(val), data=data, adapter="folder") == record
    with pytest.raises(ZooError, match="either fraction and seed"):
        split_record(open_dataset(data), Counting(), data=data, adapter="folder")


# -- evaluate -------------------------------------------------------------------------------


def test_evaluate_the_runs_validation_part_and_warn_on_overlap(run, tmp_path):
    ckpt, old, data, _ = run
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the run's own validation part: no overlap warning
        of_run = zoo.evaluate(ckpt)
        on_the_fly = zoo.evaluate(ckpt, data, split=0.75, seed=0, part="val")
    assert of_run.images == 6 and of_run.evaluated["part"] == "val" and of_run.evaluated["of_run"]
    assert on_the_fly.confusion.tolist() == of_run.confusion.tolist() and not on_the_fly.evaluated["of_run"]
    _, rest = zoo.split_each_label(open_dataset(data), 0.75, seed=0)
    assert zoo.evaluate(ckpt, rest).confusion.tolist() == of_run.confusion.tolist()
    with pytest.warns(DataWarning, match="18 of 24 evaluation images were used to train this model") as caught:
        everything = zoo.evaluate(ckpt, data)
    assert everything.evaluated["part"] == "all" and len(caught) == 1 and caught[0].filename == __file__
    with pytest.warns(DataWarning, match="18 of 18 evaluation"):
        assert zoo.evaluate(ckpt, part="train").images == 18
    with pytest.raises(ZooError, match="records no validation split.*pass --data"):
        zoo.evaluate(old)
    with pytest.raises(ZooError, match="part= needs split="):
        zoo.evaluate(ckpt, data, part="val")


def test_cli_split_of_run_and_option_checks(run, capsys):
    ckpt, old, data, _ = run
    code, out, err = zoo_inproc(capsys, "evaluate", str(ckpt), "--split-of-run", "--json", "--no-plot")
    report = json.loads(out)
    assert code == 0 and report["images"] == 6 and report["evaluated"]["part"] == "val"
    assert report["evaluated"]["of_run"] is True and report["evaluated"]["data"] == str(data.resolve())
    code, out, err = zoo_inproc(capsys, "evaluate", str(ckpt), "--data", str(data), "--split", "0.75",
                                "--part", "train", "--no-plot")
    assert code == 0 and "of 18 images (train part)" in out
    assert "warning: 18 of 18 evaluation images were used to train this model" in err
    for args, message in [
        (["--split-of-run", "--data", str(data)], "--split-of-run evaluates the data recorded"),
        (["--data", str(data), "--part", "val"], "--part needs --split"),
        (["--data", str(data), "--split", "1.5"], "between 0 and 1"),
        (["--data", str(data), "--split", "half"], "'--split': must be a number"),
        ([], "give --data DIR, or --split-of-run"),
        (["--split-of-run", "--split", "0.5"], "drop --split and --seed"),
    ]:
        code, _, err = zoo_inproc(capsys, "evaluate", str(ckpt), "--no-plot", *args)
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
    code, _, err = zoo_inproc(capsys, "evaluate", str(old), "--split-of-run", "--no-plot")
    assert code == 2 and "records no validation split" in err and "--data" in err
    code, out, _ = zoo_inproc(capsys, "evaluate", "--help")
    assert "--split-of-run" in out and "--part [val|train]" in out
