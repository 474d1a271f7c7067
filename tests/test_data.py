"""Folder adapter, per-label split, decoding (skips and cache), bad input, the plugin's adapter."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo.data.folder as folder_module
from zoo.data import DataWarning, TensorSet, detect_adapter, open_dataset, split_each_label, to_tensors
from zoo.errors import ZooError
from zoo.preprocess import Preprocess

GRAY28 = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
RGB16 = Preprocess(input_size=(16, 16), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def write_image(path: Path, value: int = 200, size: tuple[int, int] = (20, 20), mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).convert(mode).save(path)
    return path


def make_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (20, 20)) -> Path:
    for label, count in counts.items():
        for i in range(count):
            write_image(root / label / f"{i:04d}.png", value=(10 * i) % 256, size=size)
    return root


# --------------------------------------------------------------------------- folder adapter


def test_folder_adapter_labels_from_folder_names_recursively(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 3, "dog": 2})
    write_image(root / "cat" / "nested" / "deeper" / "x.jpg")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0")
    dataset = open_dataset(root, "folder")
    assert dataset.classes == ["cat", "dog"]
    assert dataset.counts() == {"cat": 4, "dog": 2}
    assert list(dataset.labels) == [0, 0, 0, 0, 1, 1]
    assert dataset.describe(3).endswith(os.path.join("nested", "deeper", "x.jpg"))
    assert dataset.load(0).size == (20, 20)


def test_to_tensors_shapes_labels_and_channel_conversion(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 3}, size=(40, 30))
    data = to_tensors(open_dataset(root), RGB16)
    assert isinstance(data, TensorSet)
    assert tuple(data.images.shape) == (5, 3, 16, 16) and str(data.images.dtype) == "torch.uint8"
    assert data.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.classes == ["a", "b"]
    assert int(data.images[1, :, 5, 5].unique().numel()) == 1  # gray -> equal RGB channels


def test_mixed_modes_and_sizes_decode_to_the_model_input(tmp_path):
    root = tmp_path / "mixed"
    write_image(root / "x" / "gray.png", 255, (10, 12), "L")
    write_image(root / "x" / "rgb.jpg", 255, (64, 48), "RGB")
    write_image(root / "x" / "rgba.png", 255, (28, 28), "RGBA")
    write_image(root / "x" / "palette.gif", 255, (33, 17), "P")
    Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16)).save(root / "x" / "deep16.png")
    assert Image.open(root / "x" / "deep16.png").mode == "I;16"
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(root / "x" / "cmyk.tiff")
    data = to_tensors(open_dataset(root), GRAY28, cache=False)
    assert tuple(data.images.shape) == (6, 1, 28, 28)
    assert data.images.min() >= 250  # every mode is white at full scale (16-bit 65535 -> 255)


def test_unicode_and_space_paths(tmp_path):
    root = make_folder(tmp_path / "mes données", {"chat noir": 2, "狗": 2})
    dataset = open_dataset(root)
    assert dataset.classes == ["chat noir", "狗"]
    assert len(to_tensors(dataset, GRAY28)) == 4


# --------------------------------------------------------------------------- split


def test_split_each_label_exact_counts_and_determinism():
    labels = np.repeat(np.arange(10), 1000)
    train, val = split_each_label(labels, 0.75, randomize=True, seed=0)
    assert np.bincount(labels[train]).tolist() == [750] * 10
    assert np.bincount(labels[val]).tolist() == [250] * 10
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 10000
    again, _ = split_each_label(labels, 0.75, randomize=True, seed=0)
    other, _ = split_each_label(labels, 0.75, randomize=True, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    assert not np.array_equal(train, np.concatenate([np.arange(750) + 1000 * k for k in range(10)]))


def test_split_each_label_without_randomizing_keeps_order_and_counts():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 2, 2])
    first, rest = split_each_label(labels, 0.5, randomize=False)
    assert first.tolist() == [0, 1, 2, 3, 8] and rest.tolist() == [4, 5, 6, 7, 9]
    first, rest = split_each_label(labels, 1, randomize=False)  # a whole number: a count per label
    assert first.tolist() == [0, 1, 8]
    with pytest.raises(ZooError, match="between 0 and 1"):
        split_each_label(labels, 1.5)
    with pytest.raises(ZooError, match="fewer than"):
        split_each_label(labels, 3)


def test_tensorset_batches_by_index_keep_rows_aligned(tmp_path):
    import torch

    root = make_folder(tmp_path / "d", {"a": 4, "b": 4})
    data = to_tensors(open_dataset(root), GRAY28)
    train, _ = split_each_label(data.labels.numpy(), 0.75, seed=3)
    (pixels, labels), = data.batches([torch.as_tensor(train)])
    assert len(labels) == 6 and np.bincount(labels.numpy()).tolist() == [3, 3]
    assert torch.equal(pixels, data.images[torch.as_tensor(train)])


def test_validation_folder_labelled_by_training_classes(tmp_path):
    val = make_folder(tmp_path / "val", {"b": 1, "c": 2})
    data = to_tensors(open_dataset(val), GRAY28, classes=["a", "b", "c"])
    assert data.labels.tolist() == [1, 2, 2] and data.classes == ["a", "b", "c"]
    with pytest.raises(ZooError, match="not among the training classes"):
        to_tensors(open_dataset(val), GRAY28, classes=["a", "b"])


# --------------------------------------------------------------------------- cache


def _count_opens(monkeypatch) -> list[str]:
    opened: list[str] = []
    real = folder_module.open_image

    def counting(path):
        opened.append(str(path))
        return real(path)

    monkeypatch.setattr(folder_module, "open_image", counting)
    return opened


def test_second_load_reads_no_image_file(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", {"a": 5, "b": 5})
    opened = _count_opens(monkeypatch)
    first = to_tensors(open_dataset(root), GRAY28)
    assert len(opened) == 10
    second = to_tensors(open_dataset(root), GRAY28)
    assert len(opened) == 10  # nothing decoded: the cache answered
    assert np.array_equal(first.images.numpy(), second.images.numpy())
    assert first.labels.tolist() == second.labels.tolist()
    # a different target size is another entry; so is a changed file
    to_tensors(open_dataset(root), RGB16)
    assert len(opened) == 20
    write_image(root / "a" / "0000.png", value=77)
    os.utime(root / "a" / "0000.png", ns=(1, 1))
    changed = to_tensors(open_dataset(root), GRAY28)
    assert len(opened) == 30 and int(changed.images[0, 0, 0, 0]) == 77


def test_cache_off_and_cache_files_location(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", {"a": 2})
    opened = _count_opens(monkeypatch)
    to_tensors(open_dataset(root), GRAY28, cache=False)
    to_tensors(open_dataset(root), GRAY28, cache=False)
    assert len(opened) == 4
    to_tensors(open_dataset(root), GRAY28)
    cached = list((Path(os.environ["ZOO_CACHE"]) / "data").glob("*.pixels"))
    assert cached and not list((Path(os.environ["ZOO_CACHE"]) / "data").glob("*.tmp"))


# --------------------------------------------------------------------------- bad input


def test_missing_folder_is_one_line_error(tmp_path):
    with pytest.raises(ZooError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ZooError, match="is a file"):
        open_dataset(tmp_path / "file.png", "folder")


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match="no class folders"):
        open_dataset(tmp_path / "empty")
    write_image(tmp_path / "flat" / "a.png")
    with pytest.raises(ZooError, match="holds 1 images directly"):
        open_dataset(tmp_path / "flat")


def test_empty_class_folder_left_out_with_warning(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 2, "c": 1})
    (root / "b").mkdir()
    (root / "b" / "readme.txt").write_text("no images here")
    with pytest.warns(UserWarning, match="left out 1 class folder.*: b"):
        dataset = open_dataset(root)
    assert dataset.classes == ["a", "c"]
    (tmp_path / "none" / "x").mkdir(parents=True)
    with pytest.raises(ZooError, match="no class folder .* holds images"):
        open_dataset(tmp_path / "none")


def test_corrupt_truncated_and_fake_images_skipped_with_one_warning(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 3, "b": 3})
    good = (root / "a" / "0001.png").read_bytes()
    (root / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "b" / "fake.jpg").write_text("this is text, not a JPEG")
    (root / "b" / "empty.png").write_bytes(b"")
    messages: list[str] = []
    data = to_tensors(open_dataset(root), GRAY28, on_skip=messages.append)
    assert len(messages) == 1
    assert messages[0].startswith("skipped 3 of 9 images")
    for name in ("truncated.png", "fake.jpg", "empty.png"):
        assert name in messages[0]
    assert "\n" not in messages[0]
    assert len(data) == 6 and data.labels.tolist() == [0, 0, 0, 1, 1, 1]  # labels stay aligned
    assert len(data.skipped) == 3
    # the default is a DataWarning, and a cached reload still reports the skipped files
    with pytest.warns(DataWarning, match="skipped 3 of 9"):
        again = to_tensors(open_dataset(root), GRAY28)
    assert again.labels.tolist() == data.labels.tolist()


def test_all_images_unreadable_is_an_error(tmp_path):
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / "x.png").write_text("nope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ZooError, match="none of the 1 samples could be read"):
            to_tensors(open_dataset(tmp_path / "d"), GRAY28)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loop_ends_with_warning(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 2, "b": 1})
    os.symlink(root / "a", root / "a" / "loop")  # a/loop -> a
    os.symlink(root, root / "b" / "up")  # b/up -> the whole dataset
    os.symlink(tmp_path / "missing", root / "a" / "dangling")
    with pytest.warns(UserWarning, match="loop or dangle"):
        dataset = open_dataset(root)
    # b/up is the data folder and a/loop is a, both claimed before the walk: no image gets a second label
    assert dataset.counts() == {"a": 2, "b": 1}


# --------------------------------------------------------------------------- adapters by name


def test_plugin_csvlist_adapter_used_like_a_builtin(tmp_path):
    root = make_folder(tmp_path / "imgs", {"x": 2, "y": 1})
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\nimgs/x/0000.png,cat\nimgs/x/0001.png,dog\nimgs/y/0000.png,cat\n")
    dataset = open_dataset(csv, "csvlist")
    assert dataset.classes == ["cat", "dog"] and dataset.labels.tolist() == [0, 1, 0]
    data = to_tensors(dataset, GRAY28)
    assert tuple(data.images.shape) == (3, 1, 28, 28)
    assert detect_adapter(csv) == "csvlist" and open_dataset(csv, None).classes == ["cat", "dog"]
    assert root.is_dir()


def test_unknown_adapter_names_the_known_ones(tmp_path):
    with pytest.raises(ZooError, match="unknown dataset adapter 'foldr'.*folder"):
        open_dataset(tmp_path, "foldr")


def test_cli_errors_are_one_line(tmp_path, zoo_cli):
    proc = zoo_cli("data", "show", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_cli_check_reports_unreadable_files(tmp_path, zoo_cli):
    root = make_folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "b" / "bad.png").write_text("nope")
    proc = zoo_cli("data", "check", str(root), check=False)
    assert proc.returncode == 1
    assert "bad.png" in proc.stderr and "1 unreadable" in proc.stderr
    assert "L 4" in proc.stdout
