"""Streamed decoding (zoo.data.stream): the cache's pixels without crop, reproducible crops with it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import open_dataset, to_tensors
from zoo.data.augment import AugmentSpec, augment, augment_problem
from zoo.data.folder import FolderDataset
from zoo.data.stream import StreamSource, open_for_crop, random_resized_crop_box
from zoo.data.subset import DatasetSubset
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, open_image

ROOT = Path(__file__).resolve().parents[1]
GREY_28 = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
RGB_64 = Preprocess(input_size=(64, 64), channels=3, mean=(0.5,), std=(0.5,), interpolation="bicubic",
                    resize_mode="center-crop", crop_pct=0.875)


def _photo(name: str, size: tuple[int, int]) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two classes of real photos: JPEGs of several sizes, an EXIF-turned one, a grey one, an RGBA PNG,
    a broken file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "cat").mkdir()
    (root / "space").mkdir()
    _photo("chelsea", (1280, 960)).save(root / "cat" / "big.jpg", quality=90)
    _photo("chelsea", (451, 300)).save(root / "cat" / "small.jpg", quality=90)
    _photo("chelsea", (640, 480)).convert("L").save(root / "cat" / "grey.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: viewers turn it 90 degrees clockwise
    _photo("coffee", (1200, 800)).save(root / "cat" / "turned.jpg", quality=90, exif=exif.tobytes())
    _photo("rocket", (960, 1280)).save(root / "space" / "tall.jpg", quality=90)
    _photo("astronaut", (640, 480)).save(root / "space" / "wide.jpg", quality=90)
    _photo("astronaut", (200, 200)).convert("RGBA").save(root / "space" / "alpha.png")
    (root / "space" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def _all(source: StreamSource, batches, *, epoch: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    pairs = list(source.batches(batches, epoch=epoch))
    return [images for images, _ in pairs], [labels for _, labels in pairs]


def _readable(dataset) -> list[int]:
    return [i for i in range(len(dataset)) if not dataset.describe(i).endswith("broken.jpg")]


def test_without_crop_a_stream_gives_the_decode_cache_pixels_of_digits(digits):
    dataset = DatasetSubset(open_dataset(digits), np.arange(0, 1797, 15))
    decoded = to_tensors(dataset, GREY_28, cache="memory")
    images, labels = _all(StreamSource(dataset, GREY_28, workers=0), torch.arange(len(dataset)).split(16))
    assert torch.equal(torch.cat(images), decoded.images) and torch.equal(torch.cat(labels), decoded.labels)


def test_without_crop_a_stream_gives_the_decode_cache_pixels_of_photos(photos):
    dataset = open_dataset(photos)
    with pytest.warns(UserWarning, match="broken.jpg"):
        decoded = to_tensors(dataset, RGB_64, cache="memory")
    source = StreamSource(dataset, RGB_64, workers=2)
    images, labels = _all(source, torch.arange(len(dataset)).split(3))
    assert torch.equal(torch.cat(images), decoded.images) and torch.equal(torch.cat(labels), decoded.labels)
    assert images[0].shape[1:] == (3, 64, 64) and images[0].dtype == torch.uint8
    assert source.indices.tolist() == list(range(len(dataset))) and len(source) == len(dataset) == 8


def test_crops_do_not_depend_on_workers_or_batches_and_follow_seed_and_epoch(photos):
    dataset = open_dataset(photos)
    order = torch.tensor(_readable(dataset))
    in_process, _ = _all(StreamSource(dataset, RGB_64, crop=(0.08, 1.0), seed=5, workers=0), order.split(3), epoch=1)
    in_workers, _ = _all(StreamSource(dataset, RGB_64, crop=(0.08, 1.0), seed=5, workers=2), order.split(3), epoch=1)
    regrouped, _ = _all(StreamSource(dataset, RGB_64, crop=(0.08, 1.0), seed=5, workers=2), order.flip(0).split(2),
                        epoch=1)
    assert all(torch.equal(a, b) for a, b in zip(in_process, in_workers))
    assert torch.equal(torch.cat(in_process), torch.cat(regrouped).flip(0))
    other_epoch, _ = _all(StreamSource(dataset, RGB_64, crop=(0.08, 1.0), seed=5, workers=0), order.split(3), epoch=2)
    other_seed, _ = _all(StreamSource(dataset, RGB_64, crop=(0.08, 1.0), seed=6, workers=0), order.split(3), epoch=1)
    plain, _ = _all(StreamSource(dataset, RGB_64, workers=0), order.split(3))
    crops = torch.cat(in_process)
    for other in (other_epoch, other_seed, plain):
        differs = [not torch.equal(a, b) for a, b in zip(crops, torch.cat(other))]
        assert sum(differs) >= len(crops) - 1  # a crop may by chance be the same box, never most of them



@pytest.mark.parametrize("crop", [None, (0.3, 1.0)])
def test_flip_mirrors_about_half_the_samples_of_the_same_crops(photos, crop):
    dataset = open_dataset(photos)
    order = [torch.tensor(_readable(dataset))]
    kept, _ = _all(StreamSource(dataset, RGB_64, crop=crop, seed=9, workers=0), order, epoch=3)
    flipped, _ = _all(StreamSource(dataset, RGB_64, crop=crop, seed=9, workers=2, flip=True), order, epoch=3)
    mirrored = [bool(torch.equal(f, k.flip(2))) for f, k in zip(flipped[0], kept[0])]
    same = [bool(torch.equal(f, k)) for f, k in zip(flipped[0], kept[0])]
    assert all(m or s for m, s in zip(mirrored, same)) and any(mirrored) and not all(mirrored)
    assert flipped[0].is_contiguous()

def test_a_resumed_epoch_gives_the_tail_of_the_full_one(photos):
    dataset = open_dataset(photos)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(3)).split(2)
    source = StreamSource(dataset, RGB_64, crop=(0.3, 0.9), seed=1, workers=2)
    full, full_labels = _all(source, order, epoch=4)
    tail, tail_labels = _all(source, order[2:], epoch=4)
    assert len(tail) == len(full) - 2 and len(full) == 4
    assert all(torch.equal(a, b) for a, b in zip(full[2:], tail))
    assert all(torch.equal(a, b) for a, b in zip(full_labels[2:], tail_labels))


@pytest.mark.fault("a data folder with a file that is not a JPEG, streamed in worker processes (with and without crop)",
                   "the sample is dropped from its batch and named once, with its reason, in the source's skipped list")
@pytest.mark.parametrize("crop", [None, (0.5, 1.0)])
def test_an_unreadable_file_is_dropped_from_its_batch_and_named_once(photos, crop):
    dataset = open_dataset(photos)
    broken = next(i for i in range(len(dataset)) if dataset.describe(i).endswith("broken.jpg"))
    source = StreamSource(dataset, RGB_64, crop=crop, workers=2)
    for epoch in (0, 1):
        images, labels = _all(source, [torch.tensor([0, broken]), torch.tensor([broken]), torch.tensor([1, 2])],
                              epoch=epoch)
        assert [len(x) for x in images] == [1, 0, 2] and [len(y) for y in labels] == [1, 0, 2]
        assert labels[0].tolist() == [int(dataset.labels[0])] and labels[1].dtype == torch.int64
        assert images[1].shape == (0, 3, 64, 64) and images[1].dtype == torch.uint8
    assert source.skipped == [f"{dataset.describe(broken)} (not an image Pillow can read)"]


@pytest.mark.fault("an image over a lowered ZOO_MAX_IMAGE_PIXELS in a streamed folder, cropped",
                   "skipped from its header like a broken file, its size and the limit named; the rest is read")
def test_an_image_over_the_pixel_limit_is_skipped_from_its_header(photos, monkeypatch):
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1000000")  # the 1280x960 photos are over it
    dataset = open_dataset(photos)
    source = StreamSource(dataset, RGB_64, crop=(0.08, 1.0), workers=0)
    images, _ = _all(source, [torch.tensor(_readable(dataset))])
    assert len(images[0]) == len(_readable(dataset)) - 2
    assert sorted(Path(item.split(" (")[0]).name for item in source.skipped) == ["big.jpg", "tall.jpg"]
    assert all("over the ZOO_MAX_IMAGE_PIXELS limit of 1,000,000" in item for item in source.skipped)


class _Flaky(FolderDataset):
    """A folder whose loading fails the way only a user can fix (a ZooError), not as a broken file."""

    def load(self, index: int) -> Image.Image:
        raise ZooError("the network share went away: mount it again")


@pytest.mark.fault("a dataset adapter raising ZooError while a DataLoader worker decodes",
                   "the same one-line ZooError in the main process, not a worker's traceback")
def test_a_zoo_error_in_a_worker_reaches_the_caller_as_it_is(photos):
    source = StreamSource(_Flaky(photos), RGB_64, workers=2)
    with pytest.raises(ZooError) as caught:
        list(source.batches([torch.tensor([0, 1])]))
    assert str(caught.value) == "the network share went away: mount it again"


def test_labels_follow_a_training_set_class_list(photos):
    dataset = open_dataset(photos)
    source = StreamSource(dataset, RGB_64, workers=0, classes=["dog", "space", "cat"])
    assert source.classes == ["dog", "space", "cat"]
    assert source.labels.dtype == torch.int64 and len(source.labels) == len(dataset)
    assert source.labels.tolist() == [2 if name == "cat" else 1 for name in dataset.label_names]
    _, labels = _all(source, [torch.tensor([0, len(dataset) - 2])])
    assert labels[0].tolist() == [2, 1]
    with pytest.raises(ZooError, match="classes space are not among the training classes"):
        StreamSource(dataset, RGB_64, classes=["cat", "dog"])


class _WholeDecode(FolderDataset):
    """The same files, loaded whole by ``open_image`` (an adapter of its own: the stream cannot draft it)."""

    def load(self, index: int) -> Image.Image:
        return open_image(self.paths[index])


def test_a_drafted_jpeg_crop_stays_close_to_the_full_decode_of_the_same_box(photos):
    big = photos / "cat" / "big.jpg"
    image, box = open_for_crop(big, lambda size: (100, 50, 1100, 950), (224, 224))
    assert image.size == (320, 240) and box == (25.0, 12.5, 275.0, 237.5)  # 1/4: the 1000x900 box still >= 224
    image, box = open_for_crop(big, lambda size: (0, 0, 400, 400), (224, 224))
    assert image.size == (1280, 960) and box == (0, 0, 400, 400)  # 400 < 2 x 224: no reduction
    turned, box = open_for_crop(photos / "cat" / "turned.jpg", lambda size: (0, 0, *size), (150, 150))
    assert turned.size == (200, 300) and box == (0.0, 0.0, 200.0, 300.0)  # upright 800x1200, at 1/4

    pre = Preprocess(input_size=(224, 224), channels=3, mean=(0.5,), std=(0.5,), interpolation="bilinear")
    dataset = open_dataset(photos)
    jpegs = [i for i in _readable(dataset) if dataset.describe(i).endswith(".jpg")]
    every = [torch.arange(len(jpegs))]  # subsets, as a training split is: the files are found through the parent
    drafted, _ = _all(StreamSource(DatasetSubset(dataset, jpegs), pre, crop=(0.6, 1.0), seed=2, workers=0), every)
    whole, _ = _all(StreamSource(DatasetSubset(_WholeDecode(photos), jpegs), pre, crop=(0.6, 1.0), seed=2, workers=0),
                    every)
    gap = (drafted[0].float() - whole[0].float()).abs().mean(dim=(1, 2, 3))
    assert float(gap.max()) < 6.0, gap  # the same boxes, decoded reduced or whole: close, not equal
    assert float(gap.max()) > 0.0  # some were reduced (else this compares a path with itself)


def test_crop_boxes_follow_torchvisions_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = random_resized_crop_box((640, 480), (0.08, 1.0), rng)
        w, h = right - left, bottom - top
        assert 0 <= left < right <= 640 and 0 <= top < bottom <= 480
        assert 0.08 * 640 * 480 * 0.95 <= w * h <= 640 * 480 and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
    # no 4:3..3:4 box of 90 % fits a 1000x10 strip in ten tries: the centre crop at the nearest ratio, 4:3
    assert random_resized_crop_box((1000, 10), (0.9, 1.0), rng) == (493, 0, 506, 10)
    assert random_resized_crop_box((10, 1000), (0.9, 1.0), rng) == (0, 493, 10, 506)


def test_streaming_leaves_torchs_global_random_state_alone(photos):
    before = torch.get_rng_state()
    list(StreamSource(open_dataset(photos), RGB_64, crop=(0.5, 1.0), workers=2).batches([torch.tensor([0, 1])]))
    assert torch.equal(torch.get_rng_state(), before)  # a resumed run's saved state stays exact


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory is for CUDA")
def test_batches_are_pinned_when_asked(photos):
    images, labels = next(StreamSource(open_dataset(photos), RGB_64, workers=2, pin_memory=True).batches([[0, 1]]))
    assert images.is_pinned() and labels.is_pinned()



def test_closing_the_iterator_mid_epoch_ends_its_workers(photos):
    before = set(multiprocessing.active_children())
    batches = StreamSource(open_dataset(photos), RGB_64, crop=(0.5, 1.0), workers=2).batches(torch.arange(8).split(1))
    next(batches)
    workers = set(multiprocessing.active_children()) - before
    assert len(workers) == 2 and all(worker.is_alive() for worker in workers)
    batches.close()  # what the trainer does when Ctrl-C stops it after an iteration
    assert not any(worker.is_alive() for worker in workers)

_CTRL_C = textwrap.dedent("""
    import signal, sys, time, torch
    from zoo.data import open_dataset
    from zoo.data.stream import StreamSource
    from zoo.preprocess import Preprocess
    pre = Preprocess(input_size=(32, 32), channels=3, mean=(0.5,), std=(0.5,))
    source = StreamSource(open_dataset(sys.argv[1]), pre, crop=(0.5, 1.0), workers=2)
    stop = []
    count = 0
    for k, (images, labels) in enumerate(source.batches(torch.arange(len(source)).split(1))):
        count += len(labels)
        if k == 0:  # the workers started with Python's default Ctrl-C: a KeyboardInterrupt would end them
            signal.signal(signal.SIGINT, lambda *_: stop.append(1))
            print("ready", flush=True)
            while not stop:
                time.sleep(0.01)
    print("read", count, "skipped", len(source.skipped), flush=True)
""")


@pytest.mark.fault("Ctrl-C (SIGINT to the whole process group) while DataLoader workers decode",
                   "the workers ignore it and keep serving batches; the main process's handler decides")
def test_ctrl_c_is_left_to_the_main_process(photos):
    proc = subprocess.Popen([sys.executable, "-c", _CTRL_C, str(photos)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the workers get it too
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "read 7 skipped 1" and "Traceback" not in err


def test_flips_alone_take_the_shortcut_with_the_same_pixels_and_draws():
    batch = torch.randint(0, 256, (12, 3, 9, 14), dtype=torch.uint8)
    for flips in ({"x_reflection": True}, {"y_reflection": True}, {"x_reflection": True, "y_reflection": True}):
        quick_draws, general_draws = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
        quick = augment(batch, AugmentSpec(**flips, crop=(0.5, 1.0)), quick_draws)
        # a scale range off 1 by less than float32 resolves: the general grid_sample path, the same transforms
        general = augment(batch, AugmentSpec(**flips, scale=(1.0, 1.0 + 1e-12)), general_draws)
        assert torch.equal(quick, general) and torch.equal(quick_draws.get_state(), general_draws.get_state())
        assert not torch.equal(quick, batch)
    assert augment(batch, AugmentSpec(crop=(0.08, 1.0))) is batch  # crops happen while decoding, not here


@pytest.mark.fault("--augment crop values out of range or malformed (crop=0:1, crop=0.5, crop=0.9:0.5, crop=0.2:1.5, "
                   "crop=nan:1)",
                   "one line saying crop takes area fractions LOW:HIGH with 0 < LOW <= HIGH <= 1; exit 2")
def test_bad_crop_values_are_refused_in_one_line(digits, capsys):
    for value in ("crop=0:1", "crop=0.5", "crop=0.9:0.5", "crop=0.2:1.5", "crop=nan:1", "crop=a:b", "crop="):
        problem = augment_problem(f"flip,{value}")
        assert problem == (f"'{value}' must be area fractions LOW:HIGH with 0 < LOW <= HIGH <= 1 "
                           "(crop alone means 0.08:1)")
    from zoo.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "digitnet", "--data", str(digits), "--augment", "crop=0:2"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and "'crop=0:2' must be area fractions" in err
