"""Data at scale: pixels decoded in chunks into a memory-mapped cache, --cache modes, a frozen backbone's
features computed once (the same head as the full forward), streamed training that resumes mid-epoch."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import _InterruptAt

import zoo
from zoo.data import DataWarning, open_dataset, open_source, to_tensors
from zoo.data import cache as decode_cache
from zoo.data import tensors as tensors_module
from zoo.errors import ZooError
from zoo.preprocess import Preprocess

RGB64 = Preprocess(input_size=(64, 64), channels=3, mean=(0.5,), std=(0.5,))


def _photos(root: Path, per_class: int, size: int = 96) -> Path:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:04d}.png")
    return root


def test_disk_cache_decodes_in_chunks_and_maps_the_pixels(tmp_path, monkeypatch):
    root = _photos(tmp_path / "d", 150)  # 300 images, 3.7 MB decoded
    monkeypatch.setattr(tensors_module, "CHUNK", 16)
    whole = 300 * 3 * 64 * 64
    tracemalloc.start()
    data = to_tensors(open_dataset(root), RGB64, cache="disk")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert data.mode == "disk" and len(data) == 300
    assert peak < whole / 3, f"decoding held {peak} bytes for a {whole}-byte set"  # one chunk, not the set
    pixels_file = decode_cache.cache_folder() / f"{data.cache_key}.pixels"
    assert pixels_file.stat().st_size == whole
    assert str(pixels_file) in Path("/proc/self/maps").read_text()  # memory-mapped, not read into RAM
    in_memory = to_tensors(open_dataset(root), RGB64, cache="memory")
    assert in_memory.mode == "memory" and torch.equal(in_memory.images, data.images)
    index = torch.tensor([299, 0, 150])
    (batch, labels), = data.batches([index])
    assert torch.equal(batch, in_memory.images[index]) and labels.tolist() == [1, 0, 1]


@pytest.mark.fault("zoo train --cache auto on a set larger than ZOO_CACHE_BUDGET, and a ZOO_CACHE_BUDGET of 'lots'",
                   "one warning that it decodes from the files every epoch, nothing cached; 'lots': one-line ZooError")
def test_auto_streams_a_set_over_the_cache_budget(tmp_path, monkeypatch):
    root = _photos(tmp_path / "d", 20)
    monkeypatch.setenv("ZOO_CACHE_BUDGET", "100K")  # 40 images at 64x64 RGB need 480 KiB
    with pytest.warns(DataWarning, match="over the decode cache's budget"):
        source = open_source(open_dataset(root), RGB64, cache="auto", workers=0)
    assert source.mode == "none"
    assert decode_cache.read(decode_cache.cache_key(open_dataset(root), RGB64)) is None  # nothing cached
    monkeypatch.setenv("ZOO_CACHE_BUDGET", "1G")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert open_source(open_dataset(root), RGB64, cache="auto").mode == "disk"
    monkeypatch.setenv("ZOO_CACHE_BUDGET", "lots")  # refused even though the set is cached now
    with pytest.raises(ZooError, match="ZOO_CACHE_BUDGET must be a size like 20G"):
        open_source(open_dataset(root), RGB64, cache="auto")


def _head(result) -> dict[str, torch.Tensor]:
    module = result.classifier.module
    name = zoo.heads.head_name(module)
    return {k: v for k, v in module.state_dict().items() if k.startswith(name + ".")}


def test_frozen_backbone_features_once_equal_the_full_forward(digits, tmp_path):
    common = dict(epochs=2, batch_size=64, lr=0.01, split=0.8, val_every=5, seed=3, freeze="backbone", progress=False,
                  device="cpu")
    once = zoo.train("digitnet", digits, out=tmp_path / "once", **common)
    full = zoo.train("digitnet", digits, out=tmp_path / "full", feature_cache=False, **common)
    assert "backbone features computed once" in once.metrics["data"]
    assert "features" not in full.metrics["data"]
    heads_once, heads_full = _head(once), _head(full)
    assert heads_once.keys() == heads_full.keys() and heads_once
    for key in heads_once:
        assert torch.allclose(heads_once[key], heads_full[key], atol=1e-5), key
    backbone = [k for k in once.classifier.module.state_dict() if k not in heads_once]
    for key in backbone:  # frozen: unchanged, and equal in both runs
        assert torch.equal(once.classifier.module.state_dict()[key], full.classifier.module.state_dict()[key]), key
    val = [(a["val_accuracy"], b["val_accuracy"]) for a, b in zip(once.history, full.history) if a["val_accuracy"]]
    assert val and all(a == pytest.approx(b, abs=1e-6) for a, b in val)
    cached = list(decode_cache.cache_folder("features").glob("*.pixels"))
    assert len(cached) >= 2  # the training and the validation part


def test_streamed_training_with_workers_resumes_mid_epoch(tmp_path):
    from zoo.training import TrainingInterrupted

    root = _photos(tmp_path / "d", 16, size=48)  # 32 images: 4 iterations an epoch
    opts = dict(epochs=2, batch_size=8, split=1.0, cache="none", workers=2, augment="crop=0.3:1,flip", seed=5,
                lr_schedule="piecewise", lr_drop_period=1, progress=False)
    whole = zoo.train("digitnet", root, out=tmp_path / "whole", **opts)
    assert whole.metrics["data"] == "streamed"
    with pytest.raises(TrainingInterrupted, match="iteration 3/8"):
        zoo.train("digitnet", root, out=tmp_path / "cut", callbacks=[_InterruptAt(3)], **opts)
    resumed = zoo.train("digitnet", root, out=tmp_path / "cut", resume=True, progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    a, b = whole.classifier.module.state_dict(), resumed.classifier.module.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    other_seed = zoo.train("digitnet", root, out=tmp_path / "seed6", **{**opts, "seed": 6, "epochs": 1})
    assert [r["loss"] for r in other_seed.history] != [r["loss"] for r in whole.history[:4]]


def test_training_reads_webdataset_shards(digits, tmp_path):
    from zoo.data.shard_writer import write_shards

    shards = write_shards(open_dataset(digits), tmp_path / "shards", 400)
    result = zoo.train("digitnet", shards, split=1.0, epochs=2, batch_size=64, workers=1, lr=0.05,
                       out=tmp_path / "run", progress=False)
    assert result.metrics["data"] == "shards" and result.metrics["train_images"] == 1797
    assert result.metrics["iterations"] == 2 * (1797 // 64)
    assert zoo.evaluate(result.checkpoint, digits, plot=None).accuracy > 0.5


def test_evaluation_streamed_by_workers_equals_the_cached_one(checkpoint, digits):
    cached = zoo.evaluate(checkpoint, digits, cache="disk", plot=None)
    streamed = zoo.evaluate(checkpoint, digits, cache="none", workers=2, batch_size=200, plot=None)
    assert streamed.images == cached.images == 1797
    assert np.array_equal(streamed.confusion, cached.confusion)


READER = '''
from zoo.data.folder import FolderDataset

class Squares(FolderDataset):
    def load(self, index):
        image = super().load(index)
        return image.crop((0, 0, {side}, {side})) if image.mode in {{"RGB", "L"}} else image
'''


def _key_in_fresh_process(root: Path, side: int, tmp_path: Path) -> str:
    """The cache key of a user's reader class, computed in a new interpreter (its own hash seed)."""
    import subprocess
    import sys

    (tmp_path / f"reader{side}").mkdir(exist_ok=True)
    (tmp_path / f"reader{side}" / "user_reader.py").write_text(READER.format(side=side))
    script = ("from user_reader import Squares; from zoo.data import cache; from zoo.preprocess import Preprocess;"
              f"print(cache.cache_key(Squares({str(root)!r}), Preprocess(input_size=(64, 64), channels=3, mean=(0.5,), std=(0.5,))))")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / f"reader{side}", capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_an_edited_reader_under_the_same_class_name_decodes_anew(tmp_path):
    root = _photos(tmp_path / "d", 2)
    first, again, edited = (_key_in_fresh_process(root, side, tmp_path) for side in (40, 40, 50))
    assert first == again  # the same code in another process (another hash seed) reuses the entry
    assert edited != first  # the same class name with other code does not
