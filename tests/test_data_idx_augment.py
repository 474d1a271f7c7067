"""IDX files, augmentation and the montage."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import detect_adapter, open_dataset, to_tensors
from zoo.data.augment import AugmentSpec, augment
from zoo.data.idx import write_idx
from zoo.data.montage import save_montage
from zoo.errors import ZooError
from zoo.preprocess import Preprocess, to_pixels

GRAY28 = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))


def write_mnist(folder, prefix="train", count=12, gz=False, side=28):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, side, side), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_adapter_reads_images_and_labels(tmp_path, gz):
    images, labels = write_mnist(tmp_path / "mnist", gz=gz)
    assert detect_adapter(tmp_path / "mnist") == "idx"
    dataset = open_dataset(tmp_path / "mnist", "idx")
    assert dataset.classes == [str(d) for d in range(10)]
    assert dataset.labels.tolist() == labels.tolist()
    assert np.array_equal(np.asarray(dataset.load(5)), images[5])
    data = to_tensors(dataset, GRAY28)
    assert np.array_equal(data.images[:, 0].numpy(), images)
    resized = to_tensors(dataset, Preprocess(input_size=(14, 14), channels=3, mean=(0,), std=(1,)))
    assert tuple(resized.images.shape) == (12, 3, 14, 14)


@pytest.mark.parametrize(
    "pre",
    [
        Preprocess(input_size=(32, 32), channels=1, mean=(0.5,), std=(0.5,), interpolation="bicubic"),
        Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,), resize_mode="center-crop", crop_pct=0.875),
        Preprocess(input_size=(20, 24), channels=3, mean=(0.5,), std=(0.5,), interpolation="nearest"),
    ],
    ids=["32x32-bicubic", "28x28-center-crop", "20x24-rgb-nearest"],
)
def test_idx_pixels_are_those_of_to_pixels(tmp_path, pre):
    """IDX images take the one preprocessing, resize mode and interpolation included."""
    images, _ = write_mnist(tmp_path / "mnist")
    data = to_tensors(open_dataset(tmp_path / "mnist", "idx"), pre)
    expected = np.stack([to_pixels(Image.fromarray(image, "L"), pre).transpose(2, 0, 1) for image in images])
    assert expected.shape[2:] != images.shape[1:] or not np.array_equal(expected[:, 0], images)  # it does resize
    assert np.array_equal(data.images.numpy(), expected)


def test_idx_file_path_and_several_sets(tmp_path):
    write_mnist(tmp_path / "m", "train", count=12)
    write_mnist(tmp_path / "m", "t10k", count=4)
    with pytest.raises(ZooError, match="holds 2 IDX sets"):
        open_dataset(tmp_path / "m", "idx")
    dataset = open_dataset(tmp_path / "m" / "t10k-images-idx3-ubyte", "idx")
    assert len(dataset) == 4


def test_bad_idx_files(tmp_path):
    images, _ = write_mnist(tmp_path / "t")
    path = tmp_path / "t" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ZooError, match="truncated"):
        open_dataset(tmp_path / "t", "idx")
    path.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(ZooError, match="not an IDX file"):
        open_dataset(tmp_path / "t", "idx")
    write_idx(path, images[:5])
    with pytest.raises(ZooError, match="5 images but .* 12 labels"):
        open_dataset(tmp_path / "t", "idx")
    (tmp_path / "t" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(ZooError, match="no labels file"):
        open_dataset(tmp_path / "t", "idx")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "x-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03")[:10])
    with pytest.raises(ZooError, match="cannot read IDX file"):
        open_dataset(tmp_path / "g" / "x-images-idx3-ubyte.gz", "idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match="no '\\*-images-idx3-ubyte"):
        open_dataset(tmp_path / "empty", "idx")


# --------------------------------------------------------------------------- augmentation


def _batch() -> torch.Tensor:
    x = torch.zeros(8, 1, 12, 12, dtype=torch.uint8)
    x[:, :, 2:5, 1:4] = 255  # a block near the top-left corner
    return x


def test_no_augmentation_returns_the_batch():
    x = _batch()
    assert augment(x, AugmentSpec()) is x


def test_flip_translation_and_rotation_move_pixels_as_asked():
    x = _batch()
    flipped = augment(x, AugmentSpec(x_reflection=True), torch.Generator().manual_seed(0))
    mirrored = torch.flip(x, dims=[3])
    kinds = [bool(torch.equal(f, x[0])) or bool(torch.equal(f, mirrored[0])) for f in flipped]
    assert all(kinds) and any(torch.equal(f, mirrored[0]) for f in flipped) and any(torch.equal(f, x[0]) for f in flipped)
    moved = augment(x, AugmentSpec(x_translation=(3, 3), y_translation=(2, 2)))
    assert torch.equal(moved[:, :, 4:7, 4:7], x[:, :, 2:5, 1:4]) and moved.dtype == torch.uint8
    assert int(moved.sum()) == int(x.sum())
    turned = augment(x.float(), AugmentSpec(rotation=(90, 90)))
    assert torch.allclose(turned, torch.rot90(x.float(), k=-1, dims=(2, 3)), atol=1e-3) or torch.allclose(
        turned, torch.rot90(x.float(), k=1, dims=(2, 3)), atol=1e-3
    )


def test_augmentation_is_reproducible_with_a_generator():
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    spec = AugmentSpec.parse("flip,rotate=15,scale=0.9:1.1,translate=2")
    a = augment(x, spec, torch.Generator().manual_seed(7))
    b = augment(x, spec, torch.Generator().manual_seed(7))
    c = augment(x, spec, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape


def test_augment_spec_parse():
    spec = AugmentSpec.parse("flip, vflip, rotate=10, scale=0.8:1.2, translate=3")
    assert spec == AugmentSpec(True, True, (-10.0, 10.0), (0.8, 1.2), (-3.0, 3.0), (-3.0, 3.0))
    assert not AugmentSpec.parse("none").active
    with pytest.raises(ZooError, match="cannot read augmentation 'spin=3'"):
        AugmentSpec.parse("spin=3")
    with pytest.raises(ZooError):
        AugmentSpec.parse("scale=1.2:0.8")



def test_augment_spec_parses_crop():
    assert AugmentSpec.parse("crop") == AugmentSpec(crop=(0.08, 1.0))  # torchvision's RandomResizedCrop default
    spec = AugmentSpec.parse("flip, crop=0.25:0.5")
    assert spec == AugmentSpec(x_reflection=True, crop=(0.25, 0.5)) and spec.active and spec.batch_active
    crop_only = AugmentSpec.parse("crop=1:1")
    assert crop_only.crop == (1.0, 1.0) and crop_only.active and not crop_only.batch_active
    with pytest.raises(ZooError, match=r"^--augment: 'crop=0.5' must be area fractions LOW:HIGH"):
        AugmentSpec.parse("crop=0.5")

def test_montage_png(tmp_path):
    images = [Image.new("L", (28, 28), v) for v in range(0, 200, 10)]
    path = save_montage(tmp_path / "m.png", images, [str(i % 10) for i in range(20)], columns=5)
    sheet = Image.open(path)
    assert sheet.mode == "RGB" and sheet.size[0] > sheet.size[1] * 0.9
    with pytest.raises(ZooError, match="no images"):
        save_montage(tmp_path / "n.png", [], [])
