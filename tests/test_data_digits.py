"""make-digits: determinism, MNIST-style normalisation, fonts, the digits adapter, ``zoo data``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo.data.digits.fonts as digit_fonts
from zoo.data import detect_adapter, open_dataset, to_tensors
from zoo.data.digits import BUILTIN_FONT, METADATA_FILE, DigitsDataset, DigitStyle, handwriting_fonts, make_digits
from zoo.data.digits.render import ALLOGRAPHS, PEN_BOX_RATIO, draw_pen
from zoo.errors import ZooError
from zoo.preprocess import Preprocess

GRAY28 = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))
    }


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "set"
    make_digits(out, per_class=6, seed=3)
    return out


def test_layout_metadata_and_image_format(small_set):
    assert sorted(p.name for p in small_set.iterdir()) == [str(d) for d in range(10)] + [METADATA_FILE]
    assert all(len(list((small_set / str(d)).glob("*.png"))) == 6 for d in range(10))
    meta = json.loads((small_set / METADATA_FILE).read_text())
    assert meta["seed"] == 3 and meta["per_class"] == 6 and meta["size"] == 28
    assert meta["fonts"] and all(len(f["sha256"]) == 64 for f in meta["fonts"] if f["name"] != BUILTIN_FONT)
    image = Image.open(small_set / "7" / "00000.png")
    assert image.mode == "L" and image.size == (28, 28)


def assert_mnist_style(folder: Path) -> None:
    """Every PNG is white strokes on black, centre of mass near the middle, a sensible size."""
    for path in sorted(folder.rglob("*.png")):
        pixels = np.asarray(Image.open(path), dtype=np.float64)
        assert pixels.max() >= 200  # white strokes
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        assert np.median(border) < 30  # black background
        ink = np.where(pixels > 60, pixels, 0)
        total = ink.sum()
        cy = (ink.sum(axis=1) @ np.arange(28)) / total
        cx = (ink.sum(axis=0) @ np.arange(28)) / total
        assert abs(cy - 13.5) < 3.0 and abs(cx - 13.5) < 3.0, path
        rows, cols = np.nonzero(pixels > 60)
        side = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
        assert 12 <= side <= 27, (path, side)


def test_mnist_style_white_on_black_centred(small_set):
    assert_mnist_style(small_set)


def test_same_seed_same_bytes_other_seed_other_bytes(small_set, tmp_path):
    again = tmp_path / "again"
    make_digits(again, per_class=6, seed=3, workers=1)
    assert file_hashes(again) == file_hashes(small_set)
    assert (again / METADATA_FILE).read_text() == (small_set / METADATA_FILE).read_text()
    other = tmp_path / "other"
    make_digits(other, per_class=6, seed=4)
    assert file_hashes(other) != file_hashes(small_set)


def test_parallel_workers_give_the_same_bytes(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    make_digits(serial, per_class=45, seed=0, workers=1)
    digits_total = 10 * 45
    assert digits_total >= 400  # large enough for the process pool
    make_digits(parallel, per_class=45, seed=0, workers=2)
    assert file_hashes(serial) == file_hashes(parallel)


def test_existing_folders_are_protected(small_set, tmp_path):
    with pytest.raises(ZooError, match="--overwrite"):
        make_digits(small_set, per_class=1)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ZooError, match="not made by make-digits"):
        make_digits(other, per_class=1, overwrite=True)
    assert (other / "holiday.jpg").exists()
    target = tmp_path / "replace"
    make_digits(target, per_class=1, seed=0)
    make_digits(target, per_class=2, seed=0, overwrite=True)
    assert len(list(target.rglob("*.png"))) == 20
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob(".*partial*"))


def test_bad_arguments(tmp_path):
    with pytest.raises(ZooError, match="per-class"):
        make_digits(tmp_path / "a", per_class=0)
    with pytest.raises(ZooError, match="size"):
        make_digits(tmp_path / "a", size=4)
    with pytest.raises(ZooError, match="font 'nowhere.ttf' does not exist"):
        make_digits(tmp_path / "a", per_class=1, fonts=["nowhere.ttf"])
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "broken.ttf").write_bytes(b"not a font")
    with pytest.raises(ZooError, match="none of the fonts"):
        make_digits(tmp_path / "a", per_class=1, fonts=[tmp_path / "fonts"], warn=lambda m: None)
    assert not (tmp_path / "a").exists()


def test_explicit_font_file_is_recorded(tmp_path):
    fonts = handwriting_fonts()
    if not fonts:
        pytest.skip("no handwriting fonts installed (scripts/setup.sh installs them)")
    meta = make_digits(tmp_path / "one", per_class=2, fonts=[fonts[0]])
    assert [f["name"] for f in meta["fonts"]] == [fonts[0].name]


def test_fallback_without_handwriting_fonts_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(digit_fonts, "handwriting_fonts", lambda: [])
    messages: list[str] = []
    meta = make_digits(tmp_path / "plain", per_class=2, warn=messages.append)
    assert any("no handwriting fonts found" in m for m in messages)
    assert BUILTIN_FONT in [f["name"] for f in meta["fonts"]]


def test_digits_adapter_reads_the_folder_and_its_metadata(small_set, tmp_path):
    assert detect_adapter(small_set) == "digits"
    dataset = open_dataset(small_set, "digits")
    assert isinstance(dataset, DigitsDataset)
    assert dataset.classes == [str(d) for d in range(10)] and dataset.metadata["seed"] == 3
    assert dataset.counts() == {str(d): 6 for d in range(10)}
    data = to_tensors(dataset, GRAY28)
    assert tuple(data.images.shape) == (60, 1, 28, 28)
    (tmp_path / "plain" / "0").mkdir(parents=True)
    with pytest.raises(ZooError, match="not made by 'zoo data make-digits'"):
        open_dataset(tmp_path / "plain", "digits")


def test_cli_make_digits_show_and_montage(tmp_path, zoo_cli):
    out = tmp_path / "my digits"
    proc = zoo_cli("data", "make-digits", str(out), "--per-class", "3", "--seed", "1")
    assert "wrote 30 digits" in proc.stdout
    png = tmp_path / "montage.png"
    proc = zoo_cli("data", "show", str(out), "--out", str(png))
    assert "total" in proc.stdout and str(png) in proc.stdout
    assert all(f"{d} " in proc.stdout for d in range(10))
    montage = Image.open(png)
    assert montage.size[0] > 5 * 100 and montage.size[1] > 4 * 100
    proc = zoo_cli("data", "show", str(out), "--out", str(png), "--json")
    assert json.loads(proc.stdout)["counts"] == {str(d): 3 for d in range(10)}
    proc = zoo_cli("data", "make-digits", str(out), "--per-class", "3", check=False)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr and "Traceback" not in proc.stderr


def test_lecture_style_is_cleaner_and_recorded(tmp_path):
    def spread(folder):
        arrays = [np.asarray(Image.open(p), dtype=np.float32) for p in sorted(folder.rglob("*.png"))]
        # noise and blur leave grey pixels: count the ones that are neither background nor stroke
        return float(np.mean([((a > 40) & (a < 215)).mean() for a in arrays]))

    lecture = make_digits(tmp_path / "lecture", per_class=8, seed=3, style="lecture")
    realistic = make_digits(tmp_path / "realistic", per_class=8, seed=3)
    assert lecture["style"]["noise"] < realistic["style"]["noise"]
    assert json.loads((tmp_path / "lecture" / METADATA_FILE).read_text())["style"] == json.loads(json.dumps(lecture["style"]))
    assert spread(tmp_path / "lecture") < spread(tmp_path / "realistic")
    with pytest.raises(ZooError, match="unknown digit style 'fancy'"):
        make_digits(tmp_path / "x", per_class=2, style="fancy")


def test_every_pen_form_fills_its_unit_box():
    # without jitter a form spans its unit box: a mistyped point (10.0 for 1.0) or a lost stroke shows
    width = 8.0
    for digit, forms in ALLOGRAPHS.items():
        assert forms, digit
        for form in forms:
            glyph = draw_pen(form, np.random.default_rng(0), 64.0, width, 0.0)
            ink_width, ink_height = glyph.size
            assert 64 <= ink_height <= 64 + width + 2, (digit, form)
            assert ink_width <= 64 * PEN_BOX_RATIO + width + 2, (digit, form)


def test_realistic_style_draws_the_recorded_share_by_pen(tmp_path):
    # a pen-drawn digit does not depend on the font: the same seed with another font gives the
    # same bytes exactly for those, so the share of equal images is the recorded `pen`
    fonts = handwriting_fonts()
    if len(fonts) < 2:
        pytest.skip("needs two handwriting fonts (scripts/setup.sh installs them)")
    first = make_digits(tmp_path / "first", per_class=10, seed=2, fonts=[fonts[0]])
    make_digits(tmp_path / "second", per_class=10, seed=2, fonts=[fonts[-1]])
    assert first["style"]["pen"] == DigitStyle().pen == 0.7
    a, b = file_hashes(tmp_path / "first"), file_hashes(tmp_path / "second")
    same = sum(a[name] == b[name] for name in a) / len(a)
    assert 0.5 <= same <= 0.9, same
    assert_mnist_style(tmp_path / "first")


def test_pen_only_digits_are_mnist_style(tmp_path):
    meta = make_digits(tmp_path / "pen", per_class=12, seed=1, style=DigitStyle(pen=1.0))
    assert json.loads((tmp_path / "pen" / METADATA_FILE).read_text())["style"]["pen"] == meta["style"]["pen"] == 1.0
    assert_mnist_style(tmp_path / "pen")
