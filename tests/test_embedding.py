"""The Embedding page's promises: its metadata tables list exactly the keys an export writes, and
the Node.js example (examples/node, onnxruntime-node from npm) classifies as zoo.runtime does,
reading labels and preprocessing from the .onnx file alone.

``npm ci`` installs examples/node into the session's temp folder (never into the repository);
the tests skip only when node or npm is missing or the npm registry cannot be reached.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NODE_EXAMPLE = ROOT / "examples" / "node"
PAGE = ROOT / "docs" / "embedding.md"

# |node - zoo.runtime| probabilities, measured on 200 real digits and the files below with three
# exports: PNG at most 3.0e-8 (identical pixels; only the onnxruntime builds differ: Python 1.31,
# onnxruntime-node 1.30); JPEG at most 1.0e-2 (jpeg-js is not libjpeg-turbo: gray files differ by
# 1 level on 3 % of pixels, colour files by up to 11 levels where chroma is upsampled).
PNG_TOLERANCE = 1e-6
JPEG_TOLERANCE = 3e-2
NETWORK_TROUBLE = re.compile(r"\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH)\b|npm error network")


# -- fixtures: the installed example, the exported models, the images -------------------------

@pytest.fixture(scope="session")
def node_app(tmp_path_factory) -> Path:
    """examples/node with its locked dependencies installed (``npm ci``), keyed by the lock's hash."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed")
    manifest = [NODE_EXAMPLE / "package.json", NODE_EXAMPLE / "package-lock.json"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in manifest)).hexdigest()[:16]
    app = tmp_path_factory.getbasetemp() / f"node-example-{key}"
    if not (app / "node_modules").is_dir():
        app.mkdir(exist_ok=True)
        for path in manifest:
            shutil.copy(path, app)
        # ONNXRUNTIME_NODE_INSTALL=skip: npm before 11.x runs onnxruntime-node's postinstall, which
        # downloads CUDA libraries from NuGet; the CPU library is in the npm package itself
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=app,
                              env={**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            shutil.rmtree(app / "node_modules", ignore_errors=True)
            if NETWORK_TROUBLE.search(done.stderr):
                pytest.skip("the npm registry cannot be reached: npm ci examples/node failed")
            pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stderr[-3000:]}")
    for script in NODE_EXAMPLE.glob("*.mjs"):  # the scripts as they are now
        shutil.copy(script, app)
    return app


def classify_with_node(app: Path, model: Path, images: list[Path], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(app / "classify.mjs"), str(model), *map(str, images), *extra],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


def node_results(app: Path, model: Path, images: list[Path]) -> list[dict]:
    done = classify_with_node(app, model, images, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def cropped_onnx(checkpoint, tmp_path_factory) -> Path:
    """The trained digitnet with timm's center-crop (bicubic, crop 0.875) and the preprocessing
    embedded in the graph (uint8 NHWC input); its weights loaded as a pretrained file."""
    import zoo
    from zoo.export import export_model
    from zoo.models import build

    out = tmp_path_factory.getbasetemp() / "embedding" / "cropped.onnx"
    if not out.exists():
        built = build(zoo.model_info("digitnet"), pretrained=str(checkpoint))
        card = built.card.replace(resize_mode="center-crop", interpolation="bicubic", crop_pct=0.875)
        export_model(built.module, card, out, embed_preprocessing=True)
    return out


@pytest.fixture(scope="session")
def rgb_onnx(tmp_path_factory) -> Path:
    """A 3-channel, 32 x 24 layer-array network (random weights) written as MATLAB writes it."""
    from zoo.export import export

    folder = tmp_path_factory.getbasetemp() / "embedding"
    out = folder / "rgb.onnx"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        layers = (ROOT / "examples" / "lab6_layers.m").read_text().replace("[28 28 1]", "[32 24 3]")
        (folder / "rgb_layers.m").write_text(layers)
        export(folder / "rgb_layers.m", out)
    return out


@pytest.fixture(scope="session")
def test_images(digits, tmp_path_factory) -> dict[str, list[Path]]:
    """200 real digits as they are (28 x 28 gray PNG), ten of them in the forms a user sends
    (larger, colour, transparent, palette, EXIF-turned PNGs) and as JPEG files."""
    folder = tmp_path_factory.getbasetemp() / "embedding" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    plain = [path for d in range(10) for path in sorted((digits / str(d)).glob("*.png"))[5:25]]
    variants, jpegs = [], []
    for d, path in enumerate(plain[::20]):
        gray = Image.open(path).convert("L")
        variants.append(_variant(folder / f"{d}-variant.png", gray, d))
        big = gray.resize((61 + d, 53), Image.Resampling.BICUBIC)
        jpeg = folder / f"{d}.jpg"
        (big if d % 2 else Image.merge("RGB", (big, big.point(lambda v: v * 3 // 4), big))).save(jpeg, quality=95)
        jpegs.append(jpeg)
    return {"plain": plain, "variants": variants, "jpeg": jpegs}


def _variant(out: Path, gray: Image.Image, d: int) -> Path:
    """Digit ``d`` in one of the forms the preprocessing must undo the way Pillow does."""
    kind = d % 5
    if kind == 0:  # larger, not square, tinted RGB: resize and RGB -> gray
        big = gray.resize((83, 97), Image.Resampling.BICUBIC)
        Image.merge("RGB", (big, big.point(lambda v: v // 2), big.point(lambda v: 255 - v // 3))).save(out)
    elif kind == 1:  # white ink whose coverage is the alpha channel, over a red page
        Image.merge("RGBA", (gray.point(lambda v: 255), gray.point(lambda v: 255 - v), gray.point(lambda v: 255 - v),
                             gray.point(lambda v: min(255, v + 40)))).save(out)
    elif kind == 2:  # a palette image with a transparent colour
        palette = gray.convert("RGB").quantize(16)
        palette.info["transparency"] = 0
        palette.save(out, transparency=0)
    else:  # stored turned, with the EXIF orientation that turns it upright (6, 8: a quarter turn; 5, 7: mirrored too)
        orientation = {3: 6, 4: 8}[kind] if d < 5 else {3: 5, 4: 7}[kind]
        stored = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 5: Image.Transpose.TRANSPOSE,
                  7: Image.Transpose.TRANSVERSE}[orientation]
        exif = Image.Exif()
        exif[0x0112] = orientation
        gray.resize((40, 36)).transpose(stored).save(out, exif=exif.tobytes())
    return out


# -- the metadata contract --------------------------------------------------------------------

def page_table_keys(marker: str) -> list[str]:
    """The first column (a code span) of the table after ``<!-- marker -->`` in the Embedding page."""
    text = PAGE.read_text(encoding="utf-8")
    assert f"<!-- {marker} -->" in text, f"docs/embedding.md lacks the <!-- {marker} --> table"
    rows = text.split(f"<!-- {marker} -->", 1)[1].strip().split("\n\n", 1)[0].splitlines()
    return [re.match(r"\|\s*`([^`]+)`", row).group(1) for row in rows[2:]]


def metadata_of(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_metadata_tables_list_exactly_the_keys_exports_write(onnx_file, cropped_onnx, rgb_onnx):
    from zoo.card import ModelCard
    from zoo.export.metadata import with_int8

    files = [metadata_of(p) for p in (onnx_file, cropped_onnx, rgb_onnx)]
    documented = page_table_keys("metadata-keys")
    assert len(documented) == len(set(documented)), "a key is listed twice"
    assert set(documented) == set().union(*files)  # `layers` only in the layer-array network's file
    extras = [json.loads(meta["extra"]) for meta in files]
    int8 = with_int8(ModelCard.from_metadata(files[0]), {"calibration": "x"}).extra
    documented_extra = page_table_keys("extra-keys")
    assert len(documented_extra) == len(set(documented_extra))
    assert set(documented_extra) == set().union(*extras, int8)
    assert files[0]["format"] == "zoo-card/1"


# -- the Node.js example ----------------------------------------------------------------------

def runtime_results(model: Path, images: list[Path]):
    from zoo.runtime import Predictor

    return Predictor(model, providers="cpu").predict(images)


def assert_agree(node: list[dict], runtime, images: list[Path], tolerance: float) -> float:
    """Same files, same top-1 labels, probabilities within ``tolerance``; returns the largest difference."""
    assert [r["file"] for r in node] == [str(p) for p in images]
    node_probabilities = np.array([r["probabilities"] for r in node])
    difference = float(np.abs(node_probabilities - runtime.probabilities).max())
    assert difference <= tolerance, f"node and zoo.runtime differ by {difference:.3g} (tolerance {tolerance})"
    assert [r["label"] for r in node] == list(runtime.labels)
    return difference


def test_node_classifies_real_digits_like_the_runtime(node_app, onnx_file, test_images):
    images = test_images["plain"] + test_images["variants"]
    runtime = runtime_results(onnx_file, images)
    node = node_results(node_app, onnx_file, images)
    assert_agree(node, runtime, images, PNG_TOLERANCE)
    assert sum(r["label"] == p.parent.name for r, p in zip(node, test_images["plain"])) >= 180  # a trained model
    assert all(r["top"][0]["label"] == r["label"] and len(r["top"]) == 5 for r in node)
    text = classify_with_node(node_app, onnx_file, images[:2])
    assert text.returncode == 0
    assert re.fullmatch(rf"{re.escape(str(images[0]))}: \d \(\d+\.\d\d %\)", text.stdout.splitlines()[0])


def test_node_jpeg_files_within_the_decoder_tolerance(node_app, onnx_file, test_images):
    images = test_images["jpeg"]
    assert_agree(node_results(node_app, onnx_file, images), runtime_results(onnx_file, images), images, JPEG_TOLERANCE)


@pytest.mark.parametrize("model", ["cropped_onnx", "rgb_onnx"])
def test_node_follows_each_files_preprocessing(node_app, model, test_images, request):
    """center-crop + bicubic + uint8 input inside the graph; a 3-channel 32 x 24 network with its own mean/std."""
    onnx_path = request.getfixturevalue(model)
    images = test_images["plain"][::10] + test_images["variants"]
    runtime = runtime_results(onnx_path, images)
    node = node_results(node_app, onnx_path, images)
    if model == "rgb_onnx":  # random weights: near ties may order differently, probabilities may not
        difference = float(np.abs(np.array([r["probabilities"] for r in node]) - runtime.probabilities).max())
        assert difference <= PNG_TOLERANCE
    else:
        assert_agree(node, runtime, images, PNG_TOLERANCE)


PIXEL_DRIVER = """
import { readFileSync } from 'node:fs';
import { loadImage, toPixels } from './pixels.mjs';
const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
console.log(JSON.stringify(jobs.map(({ file, card }) => {
  const px = toPixels(loadImage(file), card);
  return [px.width, px.height, px.channels, Buffer.from(px.data).toString('base64')];
})));
"""

PIXEL_CONFIGS = [
    {"input_size": (37, 50), "resize_mode": "squash", "interpolation": i} for i in ("bilinear", "bicubic", "nearest")
] + [
    {"input_size": (48, 48), "resize_mode": "center-crop", "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": m}
    for m in ("center", "squash", "border")
] + [
    {"input_size": (64, 40), "resize_mode": "center-crop", "interpolation": "bilinear", "crop_pct": 1.0,
     "crop_mode": "center"},
    {"input_size": (30, 30), "resize_mode": "center-crop", "interpolation": "nearest", "crop_pct": 0.95,
     "crop_mode": "center"},
    {"input_size": (250, 250), "resize_mode": "squash", "interpolation": "bicubic"},
]


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory, test_images) -> list[Path]:
    """Real photographs (scikit-learn, scikit-image) as PNG: gray, colour, a thin strip, a tiny one."""
    from zoo.export import sample_images

    folder = tmp_path_factory.getbasetemp() / "embedding" / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    photos = sample_images()
    shapes = {"flower": photos[1].resize((160, 107)), "camera": photos[5].resize((120, 120)),
              "strip": photos[2].crop((0, 140, 451, 150)), "tiny": photos[3].resize((11, 7)),
              "tall": photos[4].resize((45, 130))}
    files = []
    for name, photo in shapes.items():
        files.append(folder / f"{name}.png")
        photo.save(files[-1])
    return files + test_images["variants"][1:5]


@pytest.mark.parametrize("channels", [1, 3])
def test_node_pixels_equal_zoo_preprocess(node_app, photo_files, channels):
    """Every resize mode, filter and crop mode gives the very pixels zoo.preprocess gives (PNG input)."""
    from zoo.preprocess import Preprocess, open_image, to_pixels

    mean = [0.485, 0.456, 0.406][:channels]
    jobs, expected = [], []
    for config in PIXEL_CONFIGS:
        pre = Preprocess(channels=channels, mean=mean, std=[0.25] * channels, **config)
        card = {"inputSize": list(pre.input_size), "channels": channels, "mean": list(pre.mean),
                "std": list(pre.std), "interpolation": pre.interpolation, "resizeMode": pre.resize_mode,
                "cropPct": pre.crop_pct, "cropMode": pre.crop_mode}
        for path in photo_files:
            jobs.append({"file": str(path), "card": card})
            expected.append((path.name, config, to_pixels(open_image(path), pre)))
    job_file = node_app / f"pixel-jobs-{channels}.json"
    job_file.write_text(json.dumps(jobs))
    (node_app / "pixel-driver.mjs").write_text(PIXEL_DRIVER)
    done = subprocess.run(["node", str(node_app / "pixel-driver.mjs"), str(job_file)], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    wrong = []
    for (width, height, c, data), (name, config, want) in zip(json.loads(done.stdout), expected):
        got = np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, c)
        if got.shape != want.shape or not np.array_equal(got, want):
            off = np.abs(got.astype(int) - want).max() if got.shape == want.shape else f"shape {got.shape}"
            wrong.append(f"{name} {config}: {off}")
    assert not wrong, f"{len(wrong)} of {len(expected)} differ:\n" + "\n".join(wrong)


# -- faults -----------------------------------------------------------------------------------

@pytest.mark.fault("the Node.js example was given an ONNX file without zoo metadata",
                   "one line: no zoo model card, export it with zoo export; exit 2")
def test_node_refuses_onnx_without_zoo_metadata(node_app, onnx_file, test_images, tmp_path):
    import onnx

    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    done = classify_with_node(node_app, bare, test_images["plain"][:1])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "carries no zoo model card" in done.stderr
    assert "zoo export" in done.stderr


@pytest.mark.fault("the Node.js example was given a file of a newer card format, a PNG as the model, "
                   "and a text file as an image", "one line each saying which and why; exit 2")
def test_node_refuses_unknown_format_and_non_models(node_app, onnx_file, test_images, tmp_path):
    import onnx

    proto = onnx.load(str(onnx_file))
    next(p for p in proto.metadata_props if p.key == "format").value = "zoo-card/2"
    newer = tmp_path / "newer.onnx"
    onnx.save(proto, str(newer))
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    cases = [(newer, test_images["plain"][0], "card format 'zoo-card/2', this reader knows zoo-card/1 only"),
             (test_images["plain"][0], test_images["plain"][0], "not an ONNX model file"),
             (onnx_file, not_image, f"cannot read image '{not_image}'")]
    for model, image, message in cases:
        done = classify_with_node(node_app, model, [image])
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
