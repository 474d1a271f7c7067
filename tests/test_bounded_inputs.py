"""Bounded inputs: the pixel limit (ZOO_MAX_IMAGE_PIXELS) and symbolic links in data folders.

Real files on disk: PNG headers written byte by byte, real links, the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
from conftest import run_zoo
from PIL import Image
from test_train import zoo_inproc

from zoo.data import DataWarning, open_dataset, to_tensors
from zoo.data.folder import FolderDataset, list_images
from zoo.data.idx import write_idx
from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge, Preprocess, open_image

GRAY28 = Preprocess(input_size=(28, 28), channels=1, mean=(0.5,), std=(0.5,))
needs_links = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def write_png(path: Path, width: int, height: int, *, rows: bool = False) -> Path:
    """A grayscale PNG with a valid IHDR; ``rows``: real (black) pixel rows, else a tiny IDAT only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows:
        packer, row = zlib.compressobj(9), b"\0" * (width + 1)  # filter byte 0, then the pixels
        data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    else:
        data = zlib.compress(b"\0" * 64)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def write_image(path: Path, size: tuple[int, int] = (20, 20), value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)
    return path



# --------------------------------------------------------------------------- the pixel limit


@pytest.mark.fault("zoo predict on a PNG whose header claims 50000x50000 pixels (checkpoint and ONNX file)",
                   "one line naming the file, its pixels, the limit and ZOO_MAX_IMAGE_PIXELS; exit 2")
@pytest.mark.parametrize("model", ["checkpoint", "onnx_file"])
def test_predict_refuses_a_header_bomb(model, request, tmp_path):
    bomb = write_png(tmp_path / "bomb.png", 50000, 50000)
    assert bomb.stat().st_size < 200
    proc = run_zoo("predict", str(request.getfixturevalue(model)), str(bomb), check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("onnxruntime:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"error: '{bomb}' is too large: 2,500,000,000 pixels")
    assert "limit of 100,000,000" in errors[0] and "ZOO_MAX_IMAGE_PIXELS=2500000000" in errors[0]
    assert "Decompression" not in proc.stderr and proc.stdout == ""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
@pytest.mark.fault("a 40000x1 pixel PNG strip (200 bytes) classified by a centre-crop model (224, crop 0.875)",
                   "a 224x224 input from the strip's centre; memory stays bounded (no 7.9 GB resize of the whole strip)")
def test_a_strip_is_not_resized_whole_for_a_centre_crop(tmp_path):
    strip = write_png(tmp_path / "strip.png", 40000, 1, rows=True)
    code = (
        "import pathlib, re, sys\n"
        "from zoo.preprocess import Preprocess, open_image\n"
        "pre = Preprocess(input_size=(224, 224), channels=3, mean=(0.5,), std=(0.5,), interpolation='bicubic',\n"
        "                 resize_mode='center-crop', crop_pct=0.875)\n"
        "print(pre.pixels(open_image(sys.argv[1])).shape)\n"
        "status = pathlib.Path('/proc/self/status').read_text()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(strip)], capture_output=True, text=True, timeout=300,
                          check=True)
    shape, mib = proc.stdout.split("\n")[:2]
    assert shape == "(224, 224, 3)" and int(mib) < 1000  # resizing the whole strip would need 7.9 GB


@pytest.mark.fault("open a valid 13000x13000 PNG of a few hundred KB (169 megapixels decoded)",
                   "refused from its header before decoding: peak memory stays far below the decoded size, "
                   "no Pillow warning")
def test_refused_before_decoding(tmp_path):
    big = write_png(tmp_path / "big.png", 13000, 13000, rows=True)
    assert big.stat().st_size < 1_000_000
    code = (  # VmHWM: this process's peak resident memory (ru_maxrss would carry pytest's over from fork)
        "import pathlib, re, sys\n"
        "from zoo.preprocess import ImageTooLarge, open_image\n"
        "try:\n"
        "    print('decoded', open_image(sys.argv[1]).size)\n"
        "except ImageTooLarge as exc:\n"
        "    print('refused', exc.size, exc.limit)\n"
        "status = pathlib.Path('/proc/self/status').read_text()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]) // 1024)\n"  # MiB
    )

    def peak(limit: str) -> tuple[str, int, str]:
        env = {**os.environ, "ZOO_MAX_IMAGE_PIXELS": limit}
        proc = subprocess.run([sys.executable, "-W", "always", "-c", code, str(big)], capture_output=True,
                              text=True, env=env, timeout=300, check=True)
        outcome, mib = proc.stdout.split("\n")[:2]
        return outcome, int(mib), proc.stderr

    refused, refused_mib, refused_err = peak("")  # the default limit, 100 megapixels
    decoded, decoded_mib, decoded_err = peak("0")  # lifted: the control, to show the measure sees decoding
    assert refused == "refused (13000, 13000) 100000000" and decoded == "decoded (13000, 13000)"
    assert decoded_mib - refused_mib > 150  # 169 MB of pixels were never allocated
    assert refused_err == decoded_err == ""  # Pillow's DecompressionBombWarning (above 89 MP) never shows


@pytest.mark.fault("images just over and just under a lowered ZOO_MAX_IMAGE_PIXELS=10000 in a data folder",
                   "the one over is skipped in the one skipped-files warning (its size, the limit, the variable); "
                   "the one under is read")
def test_folder_skips_images_over_the_limit(tmp_path, monkeypatch):
    root = tmp_path / "d"
    for i in range(2):
        write_image(root / "a" / f"{i}.png")
        write_image(root / "b" / f"{i}.png")
    write_image(root / "a" / "under.png", (99, 101))  # 9,999 pixels
    write_image(root / "a" / "at.png", (100, 100))  # 10,000: the limit itself is allowed
    write_image(root / "b" / "over.png", (101, 100))  # 10,100
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "10000")
    messages: list[str] = []
    data = to_tensors(open_dataset(root), GRAY28, on_skip=messages.append)
    assert len(data) == 6 and data.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("skipped 1 of 7 images that cannot be read (1 over the pixel limit: "
                                  "raise ZOO_MAX_IMAGE_PIXELS to read them, 0 lifts it)")
    assert f"{root / 'b' / 'over.png'} (101x100 = 10,100 pixels, over the ZOO_MAX_IMAGE_PIXELS limit of 10,000)" \
        in messages[0]
    # the decode cache keeps limits apart: lifted, the same files give all seven images
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "0")
    assert len(to_tensors(open_dataset(root), GRAY28, on_skip=messages.append)) == 7 and len(messages) == 1


@pytest.mark.fault("zoo evaluate on a folder with one image over ZOO_MAX_IMAGE_PIXELS",
                   "one warning line naming it and the variable; the other images are evaluated, exit 0")
def test_evaluate_skips_an_image_over_the_limit(checkpoint, digits, tmp_path, monkeypatch, capsys):
    root = tmp_path / "test"
    for label in ("3", "7"):
        for source in sorted((digits / label).glob("*.png"))[:4]:
            (root / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / label / source.name)
    with Image.open(next((digits / "7").glob("*.png"))) as seven:
        seven.resize((120, 120)).save(root / "7" / "large.png")  # 14,400 pixels
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "10000")
    code, out, err = zoo_inproc(capsys, "evaluate", str(checkpoint), "--data", str(root), "--no-plot", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 8
    skipped = [line for line in err.splitlines() if line.startswith("warning: skipped 1 of 9 images")]
    assert len(skipped) == 1 and "large.png (120x120 = 14,400 pixels" in skipped[0]
    assert "ZOO_MAX_IMAGE_PIXELS" in skipped[0]


@pytest.mark.fault("ZOO_MAX_IMAGE_PIXELS set to 'lots' for zoo predict and for a data set",
                   "one line saying it must be a whole number, or 0 / none; exit 2")
def test_bad_limit_value_is_one_error(checkpoint, digits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "lots")
    image = next((digits / "3").glob("*.png"))
    code, out, err = zoo_inproc(capsys, "predict", str(checkpoint), str(image))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: ZOO_MAX_IMAGE_PIXELS must be a whole number of pixels "
                                        "(e.g. 200000000), or 0 or 'none' for no limit, not 'lots'"]
    with pytest.raises(ZooError, match="ZOO_MAX_IMAGE_PIXELS must be a whole number"):
        open_dataset(digits)
    for lifted in ("0", "none", "NONE"):
        monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", lifted)
        assert open_image(image).size == (28, 28)


@pytest.mark.fault("images between Pillow's own limits (warning, refusal) while zoo's limit is lower or higher",
                   "zoo's limit decides: no Pillow warning, zoo's error, Pillow's setting left as it was")
def test_zoo_limit_decides_not_pillows(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns above 1000, refuses above 2000
    warned = write_image(tmp_path / "warned.png", (40, 40))  # 1,600
    refused = write_image(tmp_path / "refused.png", (50, 50))  # 2,500
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "1900")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert open_image(warned).size == (40, 40)
        with pytest.raises(ImageTooLarge, match=r"2,500 pixels, over the ZOO_MAX_IMAGE_PIXELS limit of 1,900") as exc:
            open_image(refused)
    assert caught == [] and exc.value.pixels == 2500 and exc.value.source == str(refused)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "none")  # lifted: Pillow's refusal is lifted too, for zoo only
    assert open_image(refused).size == (50, 50)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(Image.DecompressionBombError), Image.open(refused):
        pass  # the user's own Image.open keeps Pillow's setting


@pytest.mark.fault("an IDX file whose header claims 11x10-pixel images under ZOO_MAX_IMAGE_PIXELS=100",
                   "one-line error naming the file, its size and the limit")
def test_idx_images_over_the_limit(tmp_path, monkeypatch):
    import numpy as np

    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 11, 10), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(ImageTooLarge, match=r"10x11 = 110 pixels, over the ZOO_MAX_IMAGE_PIXELS limit of 100") as exc:
        open_dataset(tmp_path, "idx")
    assert str(exc.value).startswith(f"'{tmp_path / 'train-images-idx3-ubyte'}' is too large")
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "110")
    assert len(open_dataset(tmp_path, "idx")) == 3


def test_doctor_shows_the_limits(monkeypatch, capsys):
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "12345")
    monkeypatch.setenv("ZOO_FOLLOW_LINKS", "1")
    _, out, _ = zoo_inproc(capsys, "doctor")
    assert any("ZOO_MAX_IMAGE_PIXELS" in line and "12,345" in line for line in out.splitlines())
    assert any("ZOO_FOLLOW_LINKS" in line and "followed" in line for line in out.splitlines())
    monkeypatch.delenv("ZOO_FOLLOW_LINKS")
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "none")
    _, out, _ = zoo_inproc(capsys, "doctor", "--json")
    report = json.loads(out)
    assert report["max_image_pixels"] is None and report["follow_links"] is False


# --------------------------------------------------------------------------- links in data folders


def make_classes(root: Path, counts: dict[str, int]) -> Path:
    for label, count in counts.items():
        for i in range(count):
            write_image(root / label / f"{i}.png", value=10 * i)
    return root


def open_warned(root: Path, **options) -> tuple[FolderDataset, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = open_dataset(root, "folder", **options)
    return dataset, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


@needs_links
@pytest.mark.fault("a link to the data folder inside a class folder, and a link to a sibling class",
                   "both skipped, named in one warning: every image keeps its one label")
def test_links_to_the_root_and_to_a_sibling_class(tmp_path):
    root = make_classes(tmp_path / "d", {"a": 2, "b": 1, "c": 3})
    os.symlink(root, root / "b" / "up")
    os.symlink(root / "c", root / "a" / "sibling")
    dataset, messages = open_warned(root)
    assert dataset.counts() == {"a": 2, "b": 1, "c": 3} and len(dataset) == 6
    assert len(set(map(str, dataset.paths))) == 6
    assert len(messages) == 1
    assert messages[0].startswith(f"skipped 2 link(s) in '{root}': 2 that loop or dangle, or lead to a folder "
                                  "already in the data set: a/sibling, b/up")


@needs_links
@pytest.mark.fault("one image file linked into two classes (lying in one, or in a pool outside both)",
                   "listed once: under its real folder's class, else under its first link's; the other named "
                   "in the warning")
def test_a_file_linked_into_two_classes(tmp_path):
    root = make_classes(tmp_path / "d", {"a": 2, "b": 1})
    os.symlink(root / "a" / "1.png", root / "b" / "also-a.png")  # b's link sorts after a's real file anyway
    os.symlink(root / "b" / "0.png", root / "a" / "0-b.png")  # a's link sorts first: the real file still wins
    dataset, messages = open_warned(root)
    assert [str(p.relative_to(root)) for p in dataset.paths] == ["a/0.png", "a/1.png", "b/0.png"]
    assert dataset.labels.tolist() == [0, 0, 1]
    assert len(messages) == 1 and "2 to images listed at another path" in messages[0]
    assert "its real folder's" in messages[0] and "a/0-b.png, b/also-a.png" in messages[0]
    pool = write_image(tmp_path / "pool" / "shared.png")
    os.symlink(pool, root / "b" / "shared.png")
    os.symlink(pool, root / "a" / "shared.png")
    dataset, messages = open_warned(root, follow_links=True)
    assert "a/shared.png" in [str(p.relative_to(root)) for p in dataset.paths]
    assert dataset.counts() == {"a": 3, "b": 1} and "b/shared.png" in messages[0]


@needs_links
@pytest.mark.fault("a class folder holding a link to a folder outside the data folder",
                   "skipped by default, named in the warning with how to follow it; followed with "
                   "ZOO_FOLLOW_LINKS=1 or follow_links=True")
def test_links_outside_the_data_folder(tmp_path, monkeypatch):
    root = make_classes(tmp_path / "d", {"a": 1, "b": 1})
    more = make_classes(tmp_path / "elsewhere", {"more": 2}) / "more"
    photos = make_classes(tmp_path / "camera", {"photos": 3}) / "photos"
    os.symlink(more, root / "a" / "more")
    os.symlink(photos, root / "photos")  # a class folder that is itself a link out
    dataset, messages = open_warned(root)
    assert dataset.counts() == {"a": 1, "b": 1}
    assert len(messages) == 1 and "2 that lead outside the data folder" in messages[0]
    assert f"a/more -> {more}" in messages[0] and f"photos -> {photos}" in messages[0]
    assert "set ZOO_FOLLOW_LINKS=1 or pass follow_links=True" in messages[0]
    for options, env in (({"follow_links": True}, None), ({}, "1")):
        if env:
            monkeypatch.setenv("ZOO_FOLLOW_LINKS", env)
        dataset, messages = open_warned(root, **options)
        assert dataset.counts() == {"a": 3, "b": 1, "photos": 3} and messages == []
    monkeypatch.setenv("ZOO_FOLLOW_LINKS", "0")
    assert open_warned(root)[0].counts() == {"a": 1, "b": 1}


@needs_links
@pytest.mark.fault("link loops and a dangling link, inside the data folder and in a followed folder outside it",
                   "the walk ends; each real folder is listed once; one warning names the links")
def test_link_loops_still_end(tmp_path):
    root = make_classes(tmp_path / "d", {"a": 2})
    outside = make_classes(tmp_path / "out", {"x": 1})
    os.symlink(root / "a", root / "a" / "loop")
    os.symlink(tmp_path / "missing", root / "a" / "dangling.png")
    os.symlink(outside, root / "a" / "out")
    os.symlink(outside, outside / "x" / "back")  # a loop outside, met only when following
    dataset, messages = open_warned(root, follow_links=True)
    assert dataset.counts() == {"a": 3}
    assert len(messages) == 1
    assert messages[0].startswith(f"skipped 3 link(s) in '{root}': 3 that loop or dangle")
    for name in ("a/loop", "a/dangling.png", "a/out/x/back"):
        assert name in messages[0]
    flat, said = list_images(root / "a", follow_links=True), []  # one folder, no classes: the same walk
    assert [str(p.relative_to(root)) for p in flat] == ["a/0.png", "a/1.png", "a/out/x/0.png"]
    assert list_images(root / "a", warn=said.append) == flat[:2] and "1 that lead outside" in said[0]


@needs_links
@pytest.mark.fault("zoo data check on a folder with a link to itself and a link out of it",
                   "one warning line counting the skipped links and saying how to follow them; exit 0")
def test_zoo_data_check_reports_links_in_one_line(tmp_path, capsys):
    root = make_classes(tmp_path / "d", {"a": 1, "b": 1})
    os.symlink(root, root / "a" / "up")
    os.symlink(tmp_path, root / "b" / "out")
    code, out, err = zoo_inproc(capsys, "data", "check", str(root))
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "skipped 2 link(s)" in lines[0] and "ZOO_FOLLOW_LINKS=1" in lines[0]
