"""WebDataset tar shards (issue 11, item 3): ``zoo data shard``, the ``webdataset`` adapter and the
training source that gives every DDP rank its own shards.

Real files throughout; shards "at URLs" are read through webdataset's ``pipe:cat ...`` URLs, which
take the same streaming path as ``https://`` without a network. The rank property runs two real
gloo processes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.cli import main
from zoo.data import open_dataset
from zoo.data.adapters import detect_adapter
from zoo.data.folder import FolderDataset
from zoo.data.shard_io import member_table
from zoo.data.shard_writer import MANIFEST, write_shards
from zoo.data.shards import CHUNK, ShardDataset, ShardSource
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, open_image

PRE = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
SHARD_SIZE = 300  # the 1,797 digits: 5 shards of 300 and one of 297


@pytest.fixture(scope="module")
def shards(digits, tmp_path_factory) -> Path:
    return write_shards(FolderDataset(digits), tmp_path_factory.mktemp("shards") / "shards", SHARD_SIZE)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _originals(digits: Path) -> dict[str, tuple[Path, str]]:
    """sha256 of each digit file -> (path, its folder's name)."""
    return {_sha(p.read_bytes()): (p, p.parent.name) for p in sorted(digits.glob("*/*.png"))}


def _tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, ext = member.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


# -- writing ----------------------------------------------------------------------------------------


def test_shards_hold_the_files_bytes_and_labels(shards, digits):
    folder = FolderDataset(digits)
    originals = _originals(digits)
    manifest = json.loads((shards / MANIFEST).read_text())
    assert manifest["classes"] == folder.classes and manifest["samples"] == len(folder) == 1797
    assert [s["name"] for s in manifest["shards"]] == [f"shard-{i:06d}.tar" for i in range(6)]
    assert [s["count"] for s in manifest["shards"]] == [300] * 5 + [297]
    seen, keys = set(), []
    for entry in manifest["shards"]:
        samples = _tar_samples(shards / entry["name"])
        assert list(samples) == entry["keys"]  # tar order is the manifest's order
        for key, label in zip(entry["keys"], entry["labels"]):
            assert set(samples[key]) == {"png", "cls"}
            path, class_name = originals[_sha(samples[key]["png"])]  # the file's own bytes, not re-encoded
            assert folder.classes[label] == class_name and int(samples[key]["cls"]) == label
            seen.add(path)
        keys += entry["keys"]
    assert len(seen) == len(folder) and len(set(keys)) == len(keys)
    # shuffled before dealing: every shard holds every class
    assert all(len(set(entry["labels"])) == 10 for entry in manifest["shards"])


def test_the_same_folder_gives_the_same_shard_bytes(digits, tmp_path):
    first = write_shards(FolderDataset(digits), tmp_path / "a", 500)
    second = write_shards(FolderDataset(digits), tmp_path / "b", 500)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and len(names) == 5
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in names)


def test_shard_dataset_equals_the_folder_adapter(shards, digits):
    folder, dataset = FolderDataset(digits), open_dataset(shards, "auto")
    assert isinstance(dataset, ShardDataset) and dataset.classes == folder.classes
    assert dataset.shard_counts == [300] * 5 + [297] and len(dataset) == len(folder)
    assert dataset.counts() == folder.counts()
    originals = _originals(digits)
    stored = {key: sample["png"] for path in dataset.shards for key, sample in _tar_samples(Path(path)).items()}
    for index in range(0, len(dataset), 41):
        path, class_name = originals[_sha(stored[dataset.key(index)])]
        assert dataset.classes[dataset.labels[index]] == class_name
        assert np.array_equal(np.asarray(dataset.load(index)), np.asarray(open_image(path)))
        assert dataset.describe(index) == f"{dataset.shards[dataset.locate(index)[0]]}:{dataset.key(index)}"


def test_unshuffled_shards_keep_the_folder_order(digits, tmp_path):
    folder = FolderDataset(digits)
    dataset = ShardDataset(write_shards(folder, tmp_path / "ordered", 700, shuffle=False))
    assert np.array_equal(dataset.labels, folder.labels)
    for index in (0, 699, 700, 1796):
        assert np.array_equal(np.asarray(dataset.load(index)), np.asarray(folder.load(index)))


def test_detect_adapter_knows_shards(shards, digits, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(shards / "shard-000001.tar", loose)
    for source in (shards, str(shards), shards / "shard-000000.tar", f"{shards}/shard-{{000000..000002}}.tar",
                   "https://example.org/data/shard-{000000..000009}.tar", "pipe:cat x.tar", loose):
        assert detect_adapter(source) == "webdataset", source
    assert detect_adapter(digits) == "folder"
    archive = tmp_path / "images"
    shutil.copytree(digits / "3", archive / "3")
    shutil.copy(shards / "shard-000001.tar", archive)
    assert detect_adapter(archive) == "folder"  # a .tar beside class folders is an archive, not shards


def test_local_tars_without_shards_json_are_scanned(shards, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("shard-000002.tar", "shard-000005.tar"):
        shutil.copy(shards / name, loose)
    listed = ShardDataset(f"{shards}/shard-{{000002,000005}}.tar")
    scanned = ShardDataset(loose)
    assert scanned.shard_counts == listed.shard_counts == [300, 297]
    assert scanned.classes == [str(d) for d in range(10)] == listed.classes  # the digit folders are named 0..9
    assert np.array_equal(scanned.labels, listed.labels)
    assert np.array_equal(np.asarray(scanned.load(400)), np.asarray(listed.load(400)))
    as_list = ShardDataset([loose / "shard-000002.tar", str(loose / "shard-000005.tar")])
    assert as_list.shards == scanned.shards and np.array_equal(as_list.labels, scanned.labels)


# -- reading for training ---------------------------------------------------------------------------------


def _batches(source: ShardSource, epoch: int, start: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(source.epoch_batches(epoch, start, batch))


@pytest.mark.parametrize("batch", [16, 50])
def test_resume_mid_epoch_gives_the_tail_of_the_full_epoch(shards, batch):
    source = ShardSource(ShardDataset(shards), PRE, seed=5, workers=2)
    total = source.batches_per_epoch(batch)
    assert total == 1797 // batch
    full = _batches(source, 1, 0, batch)
    start = total // 2 + 1
    tail = _batches(source, 1, start, batch)
    assert len(full) == total and len(tail) == total - start
    for (images, labels), (again, labels_again) in zip(full[start:], tail):
        assert images.dtype == torch.uint8 and images.shape == (batch, 1, 28, 28)
        assert torch.equal(images, again) and torch.equal(labels, labels_again)
    order = list(source.epoch_samples(1))
    assert torch.cat([labels for _, labels in full]).tolist() == [label for _, label in order[:total * batch]]


def test_the_reading_order_depends_on_the_worker_count_only_through_its_streams(shards):
    dataset = ShardDataset(shards)
    in_process = ShardSource(dataset, PRE, seed=5, workers=0)
    one_worker = ShardSource(dataset, PRE, seed=5, workers=1)
    assert list(in_process.epoch_samples(0)) == list(one_worker.epoch_samples(0))
    a, b = _batches(in_process, 0, 0, 64), _batches(one_worker, 0, 0, 64)
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b)) and len(a) == len(b) == 28
    assert list(in_process.epoch_samples(0)) != list(in_process.epoch_samples(1))  # reshuffled every epoch


def test_batches_decode_like_the_evaluation_path(shards):
    dataset = ShardDataset(shards)
    source = ShardSource(dataset, PRE, seed=0, workers=0)
    (images, labels), = _batches(source, 0, 0, 1797 // 2)[:1]
    first = list(source.epoch_samples(0))[:4]
    index = {dataset.key(i): i for i in range(len(dataset))}
    for row, (key, label) in enumerate(first):
        assert labels[row] == label == dataset.labels[index[key]]
        expected = PRE.pixels(dataset.load(index[key])).transpose(2, 0, 1)
        assert np.array_equal(images[row].numpy(), expected)


def test_rank_shards_are_dealt_anew_each_epoch_and_balanced(shards):
    dataset = ShardDataset(shards)
    sources = [ShardSource(dataset, PRE, seed=2, rank=r, world=3, workers=0) for r in range(3)]
    deals = {epoch: [s.rank_shards(epoch) for s in sources] for epoch in range(4)}
    for dealt in deals.values():
        assert sorted(sum(dealt, [])) == list(range(6)) and all(len(d) == 2 for d in dealt)
    assert len({tuple(map(tuple, d)) for d in deals.values()}) > 1
    assert {s.batches_per_epoch(64) for s in sources} == {597 // 64}  # the rank with the 297 shard decides


def test_classes_relabel_by_a_training_set(shards):
    dataset = ShardDataset(shards)
    reverse = list(reversed(dataset.classes))
    source = ShardSource(dataset, PRE, workers=0, classes=reverse)
    plain = ShardSource(dataset, PRE, workers=0)
    assert source.classes == reverse
    assert [9 - label for _, label in plain.epoch_samples(0)] == [label for _, label in source.epoch_samples(0)]


_RANK_SCRIPT = r"""
import json, sys
from datetime import timedelta
import torch, torch.distributed as dist
from zoo.data.shards import ShardDataset, ShardSource
from zoo.preprocess import Preprocess

dist.init_process_group("gloo", timeout=timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
pre = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
source = ShardSource(ShardDataset(sys.argv[1]), pre, seed=7, workers=1, rank=rank, world=world)
report = {"rank": rank, "world": world, "batches": source.batches_per_epoch(32), "epochs": []}
for epoch in (0, 1):
    order = list(source.epoch_samples(epoch))
    labels = []
    for images, batch_labels in source.epoch_batches(epoch, 0, 32):
        dist.all_reduce(torch.ones(1))  # lockstep, as DDP's gradient all-reduce: unequal counts would hang
        labels += batch_labels.tolist()
    report["epochs"].append({"keys": [k for k, _ in order], "order_labels": [l for _, l in order],
                             "labels": labels, "shards": source.rank_shards(epoch)})
gathered = [None] * world
dist.all_gather_object(gathered, report)
if rank == 0:
    open(sys.argv[2], "w").write(json.dumps(gathered))
dist.destroy_process_group()
"""


def test_two_gloo_ranks_read_disjoint_shards_that_cover_every_sample(shards, tmp_path):
    from zoo.distributed.launch import free_port

    out = tmp_path / "ranks.json"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, str(shards), str(out)],
                              env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    results = [proc.communicate(timeout=180) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), results
    reports = json.loads(out.read_text())
    every_key = set(ShardDataset(shards)._shards[0].keys).union(*(s.keys for s in ShardDataset(shards)._shards))
    assert len(every_key) == 1797
    assert reports[0]["batches"] == reports[1]["batches"] == 897 // 32  # 3 shards each: 900 and 897 samples
    for epoch in (0, 1):
        first, second = (set(r["epochs"][epoch]["keys"]) for r in reports)
        assert not first & second, f"epoch {epoch}: a sample read by both ranks"
        assert first | second == every_key, f"epoch {epoch}: a sample read by neither rank"
        for report in reports:
            used = report["epochs"][epoch]
            assert len(used["labels"]) == report["batches"] * 32
            assert used["labels"] == used["order_labels"][:len(used["labels"])]
    assert [r["epochs"][0]["shards"] for r in reports] != [r["epochs"][1]["shards"] for r in reports]


def test_shards_at_urls_stream_the_same_batches(shards):
    pattern = f"pipe:cat {shards}/shard-{{000000..000005}}.tar"
    remote = ShardDataset(pattern)
    assert remote.remote and remote.shard_counts == ShardDataset(shards).shard_counts
    local = _batches(ShardSource(ShardDataset(shards), PRE, seed=1, workers=2), 0, 3, 100)
    streamed = _batches(ShardSource(remote, PRE, seed=1, workers=2), 0, 3, 100)
    assert len(local) == len(streamed) == 14
    assert all(torch.equal(a, b) and torch.equal(la, lb) for (a, la), (b, lb) in zip(local, streamed))


# -- faults ----------------------------------------------------------------------------------------------


@pytest.mark.fault("a sample in a shard that cannot be decoded (its bytes overwritten) while training",
                   "the sample is dropped from its batch, every rank still runs the same number of batches, "
                   "and ShardSource.skipped names it once")
def test_an_unreadable_sample_is_dropped_from_its_batch(shards, tmp_path):
    broken = Path(shutil.copytree(shards, tmp_path / "broken"))
    dataset = ShardDataset(broken)
    source = ShardSource(dataset, PRE, seed=4, workers=2)
    key, _ = list(source.epoch_samples(0))[CHUNK + 5]  # in the first batch of 64
    index = next(i for i in range(len(dataset)) if dataset.key(i) == key)
    shard, position = dataset.locate(index)
    offset, size = member_table(dataset._shards[shard])[position]
    with open(dataset.shards[shard], "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\0" * size)
    for epoch in (0, 1):
        batches = _batches(source, epoch, 0, 64)
        assert len(batches) == 1797 // 64
        if epoch == 0:
            assert batches[0][0].shape[0] == 63 and all(b[0].shape[0] == 64 for b in batches[1:])
    assert source.skipped == [f"{dataset.shards[shard]}:{key} (not an image Pillow can read)"]
    with pytest.raises(OSError):
        dataset.load(index)


@pytest.mark.fault("a shard that breaks off half-way (a truncated download or copy) while training",
                   "its samples after the break are dropped and named in ShardSource.skipped; the number of "
                   "batches stays the same")
def test_a_truncated_shard_keeps_the_batch_count(shards, tmp_path):
    broken = Path(shutil.copytree(shards, tmp_path / "cut"))
    tar = broken / "shard-000003.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    source = ShardSource(ShardDataset(broken), PRE, seed=0, workers=0)
    batches = _batches(source, 0, 0, 100)
    assert len(batches) == 17 and sum(len(labels) for _, labels in batches) < 1700
    assert source.skipped and all(str(tar) in name for name in source.skipped)


@pytest.mark.fault("ShardSource for more ranks than there are shards",
                   "ZooError, one line: each worker reads whole shards, write at least N (with the --shard-size)")
def test_too_few_shards_for_the_ranks(shards):
    with pytest.raises(ZooError) as error:
        ShardSource(ShardDataset(shards), PRE, rank=0, world=8)
    assert "6 shard(s) for 8 workers" in _one_line(error.value) and "--shard-size 224" in str(error.value)


@pytest.mark.fault("shards at URLs without a shards.json beside them",
                   "ZooError, one line: shards at URLs need their shards.json beside them")
def test_urls_without_shards_json(shards, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(shards / "shard-000000.tar", bare)
    with pytest.raises(ZooError) as error:
        ShardDataset(f"pipe:cat {bare}/shard-000000.tar 2>/dev/null")
    assert _one_line(error.value).startswith("shards at URLs need their shards.json beside them")


@pytest.mark.fault("shards at URLs given to zoo data show / check (or zoo evaluate), which read samples one by one",
                   "exit 2, one line: shards at URLs are read one after another, for training only; copy them "
                   "into a folder")
def test_urls_cannot_be_read_one_by_one(shards, capsys):
    dataset = ShardDataset(f"pipe:cat {shards}/shard-000001.tar")
    with pytest.raises(ZooError) as error:
        dataset.load(0)
    assert "copy the .tar files and shards.json into a folder" in _one_line(error.value)
    with pytest.raises(SystemExit) as ended:
        main(["data", "check", f"pipe:cat {shards}/shard-000001.tar"])
    err = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == 2 and len(err) == 1 and err[0].startswith("error: shards at URLs are read")


@pytest.mark.fault("a shards.json that is not zoo's, or lists a shard that is missing",
                   "ZooError, one line naming the file and what is wrong")
def test_a_bad_or_incomplete_shards_json(shards, tmp_path):
    copy = Path(shutil.copytree(shards, tmp_path / "copy"))
    (copy / "shard-000004.tar").unlink()
    with pytest.raises(ZooError) as error:
        ShardDataset(copy)
    assert "shard-000004.tar" in _one_line(error.value) and "is missing" in str(error.value)
    (copy / MANIFEST).write_text(json.dumps({"format": "zoo-shards", "version": 1, "classes": ["a"],
                                             "shards": [{"name": "../x.tar", "count": 0, "keys": [], "labels": []}]}))
    with pytest.raises(ZooError) as error:
        ShardDataset(copy)
    assert "is not a shards.json zoo can read" in _one_line(error.value) and "../x.tar" in str(error.value)


def test_zoo_data_shard_writes_and_replaces_only_with_overwrite(digits, tmp_path, capsys):
    out = tmp_path / "out"
    main_ok(["data", "shard", str(digits), str(out), "--shard-size", "1000"])
    assert "wrote 1797 samples of 10 classes into 2 shards of up to 1000" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ended:
        main(["data", "shard", str(digits), str(out), "--shard-size", "500"])
    err = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == 2 and err == [f"error: '{out}' already holds shards: pass --overwrite to replace "
                                             "them, or choose another folder"]
    main_ok(["data", "shard", str(digits), str(out), "--shard-size", "500", "--overwrite"])
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [f"shard-{i:06d}.tar" for i in range(4)])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left beside it


def main_ok(argv: list[str]) -> None:
    try:
        main(argv)
    except SystemExit as ended:
        assert not ended.code, ended.code


@pytest.mark.fault("zoo data shard with an unreadable image file in DIR",
                   "the file is left out of the shards, named in one warning line")
def test_unreadable_files_are_left_out_with_one_warning(tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("cat", "dog"):
        (data / name).mkdir(parents=True)
        for i in range(3):
            buffer = io.BytesIO()
            from PIL import Image

            Image.new("RGB", (9, 7), (i * 40, 0, 0)).save(buffer, format="JPEG")
            (data / name / f"{i}.jpg").write_bytes(buffer.getvalue())
    (data / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    main_ok(["data", "shard", str(data), str(tmp_path / "out"), "--shard-size", "4"])
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.strip()]
    assert warnings == [f"warning: skipped 1 of 7 images that cannot be read: {data}/dog/broken.jpg "
                        "(not an image Pillow can read)"]
    dataset = ShardDataset(tmp_path / "out")
    assert dataset.shard_counts == [4, 2] and dataset.classes == ["cat", "dog"]
    assert _tar_samples(Path(dataset.shards[0]))[dataset.key(0)].keys() == {"jpg", "cls"}


@pytest.mark.fault("zoo data shard given a file as DIR, or a non-empty OUT that holds no shards",
                   "exit 2, one line saying what to give instead; nothing written")
def test_zoo_data_shard_refuses_a_file_or_a_foreign_folder(digits, tmp_path, capsys):
    image = next(digits.glob("3/*.png"))
    for argv, message in (
        ([str(image), str(tmp_path / "out")], f"error: '{image}' is a file, not a folder"),
        ([str(digits), str(digits)], f"error: '{digits}' is not empty and holds no shards.json"),
    ):
        with pytest.raises(SystemExit) as ended:
            main(["data", "shard", *argv, "--shard-size", "10"])
        err = capsys.readouterr().err.strip().splitlines()
        assert ended.value.code == 2 and len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


@pytest.mark.fault("zoo data shard --shard-size 0 (or -1, 2.5, abc)",
                   "refused while reading the command line: one line naming --shard-size, exit 2")
@pytest.mark.parametrize("value", ["0", "-1", "2.5", "abc"])
def test_shard_size_must_be_a_whole_number_from_1(digits, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as ended:
        main(["data", "shard", str(digits), str(tmp_path / "out"), "--shard-size", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: Invalid value for '--shard-size': must be a whole number from 1 up")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ZooError) as error:
        write_shards(FolderDataset(digits), tmp_path / "out", int(value) if value.lstrip("-").isdigit() else 0)
    assert _one_line(error.value).startswith("--shard-size must be a whole number from 1 up")
