"""Fuzzing what zoo reads from files: catalogs, checkpoint headers, ONNX metadata and images.

Each property feeds random input, and mutations of real files (the repository's catalogs, a
trained digitnet checkpoint, its ONNX export, digit images saved as PNG, JPEG, BMP, GIF, TIFF
and WebP), to a public entry point and checks the one contract: it works, or it raises a
``ZooError`` whose message is one line, never another exception. Hypothesis runs
derandomized (the same inputs on every run, CI included) with no example database and no
deadline: timing is not the property, and a busy 2-core machine must not make it fail.
The module ends by printing how many inputs it fed.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import struct
import sys
import threading
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import zoo
from zoo.card import ModelCard
from zoo.catalogs import Plugin, parse_catalog
from zoo.checkpoint import load, read_card
from zoo.data.base import DataWarning
from zoo.errors import PluginError, ZooError
from zoo.layers import parse_layers, validate_layers
from zoo.runtime import Predictor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=200)
FUZZED: Counter[str] = Counter()  # inputs fed, per kind: the closing summary line
REFUSED: Counter[str] = Counter()  # of those, the ones refused with a ZooError


@pytest.fixture(scope="module", autouse=True)
def _inputs_fuzzed(request):
    yield
    kinds = ", ".join(f"{kind} {n} ({REFUSED[kind]} refused)" for kind, n in sorted(FUZZED.items()))
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\ninputs fuzzed: {sum(FUZZED.values())}: {kinds}")


class Blob(bytes):
    """A file's bytes, shown by size in hypothesis' and pytest's reports."""

    def __repr__(self) -> str:
        return f"<{len(self):,} bytes>"


class Corpus(dict):
    """Named real files' bytes, shown by name in reports."""

    def __repr__(self) -> str:
        return f"<{', '.join(self)}>"


def outcome(call, *args, refused: type[ZooError] = ZooError, **kwargs):
    """``call``'s result, or None when it raised a one-line ``refused`` error; any other exception fails."""
    try:
        return call(*args, **kwargs)
    except ZooError as exc:
        assert isinstance(exc, refused), f"{type(exc).__name__} is not a {refused.__name__}: {exc}"
        message = str(exc)
        assert message.strip() and "\n" not in message, f"a ZooError must be one line, not {message!r}"
        return None


def fed(kind: str, *results) -> None:
    """Count one input of ``kind``, refused when any of its ``results`` is None."""
    FUZZED[kind] += 1
    REFUSED[kind] += any(r is None for r in results)


# -- values ------------------------------------------------------------------------------

TEXT = st.text(max_size=24)
NAMES = TEXT | st.sampled_from(["two\nlines", "tab\there", "\x00", "x" * 300, ""])  # keys a user's file may hold
WORDS = TEXT | st.sampled_from(["layers", "python", "builtin", "timm", "digitnet", "center-crop", "border", "nearest"])
NUMBERS = st.integers(-2**70, 2**70) | st.floats() | st.sampled_from(
    [-1, 0, 1, 2, 3, 28, 8192, 8193, 100_000, 100_001, 2**63, 1e-300, 1e300, -0.5])
TOMLISH = st.recursive(st.booleans() | NUMBERS | TEXT | st.sampled_from(["center-crop", "border", "a:b", ""]),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=3),
                       max_leaves=10)
JSONISH = st.none() | TOMLISH
SIZES = st.integers(-1, 9) | st.lists(st.integers(-1, 9), max_size=4) | st.sampled_from(["same", "x", 1.5])
LAYER = st.fixed_dictionaries(  # one layer of a layer-array network, as a card stores it (zoo.layers.spec)
    {"type": st.sampled_from(["imageinput", "convolution2d", "batchnormalization", "relu", "maxpooling2d",
                              "averagepooling2d", "fullyconnected", "softmax", "classification", "dropout", "x"])},
    optional={"input_size": st.lists(st.integers(-1, 40), max_size=4), "filter_size": SIZES, "pool_size": SIZES,
              "stride": SIZES, "padding": SIZES, "filters": st.integers(-1, 64), "output_size": st.integers(-1, 12),
              "probability": st.floats(), "name": NAMES, "normalization": WORDS})
LAB6 = validate_layers(parse_layers((ROOT / "examples" / "lab6_layers.m").read_text()))  # the lecture's network


@st.composite
def layer_arrays(draw) -> list:
    """Random layers, or the lecture's network with up to 2 layers changed, removed or added."""
    if draw(st.booleans()):
        return draw(st.lists(LAYER, max_size=8))
    layers = copy.deepcopy(LAB6)
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(layers) - 1))
        how = draw(st.sampled_from(["change", "change", "remove", "add"]))
        if how == "remove":
            del layers[i]
        elif how == "add":
            layers.insert(i, draw(LAYER))
        else:
            layers[i][draw(st.sampled_from(sorted(layers[i])))] = draw(SIZES | JSONISH)
    return layers


def toml_value(value) -> str:
    """``value`` as TOML text (tables inline), strings escaped so that any text survives."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if " " <= c != "\x7f" and c not in '"\\' else f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def flipped(data: bytes, draw, *, within: int | None = None) -> bytes:
    """``data`` with 1 to 6 bits flipped (in the first ``within`` bytes, when given)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        out[draw(st.integers(0, min(len(out), within or len(out)) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def damaged(data: bytes, draw) -> bytes:
    """A bit-flipped, truncated, overwritten (extreme 32-bit values) or spliced copy of ``data``."""
    how = draw(st.sampled_from(["flip", "flip-head", "truncate", "overwrite", "splice"]))
    if how == "flip":
        return flipped(data, draw)
    if how == "flip-head":
        return flipped(data, draw, within=64)
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    at = draw(st.integers(0, len(data) - 1))
    if how == "overwrite":
        value = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\0\0\0"]))
        return data[:at] + value + data[at + 4:]
    return data[:at] + draw(st.binary(max_size=16)) + data[at + draw(st.integers(0, 16)):]


# -- catalogs ----------------------------------------------------------------------------

CATALOG_TEXTS = [p.read_text() for p in [ROOT / "registry.toml", *sorted(ROOT.glob("plugins/*/*/zoo.toml"))]]


def parsed_catalog(text: str | bytes) -> None:
    """Parse ``text``; a catalog that parses yields cards that a checkpoint can carry and read back,
    one that does not leaves no entries behind."""
    plugin = Plugin(name="fuzz", value="fuzz:zoo.toml", distribution="fuzz", version="0")
    result = outcome(parse_catalog, text, plugin, refused=PluginError)
    fed("catalogs", result)
    if result is None:
        assert not (plugin.models or plugin.datasets or plugin.families or plugin.weights)
        return
    for card in plugin.models.values():
        assert ModelCard.from_metadata(card.to_metadata()).name == card.name


@pytest.mark.fault("a catalog (registry.toml, a plugin's zoo.toml) of random text or bytes (200 inputs)",
                   "the plugin is reported broken with one line (PluginError); never a traceback")
@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300) | st.text('[]{}=".,:#\n abcdefmnorstu0123456789-+_',
                                                                  max_size=300))
def test_catalog_random_text(text):
    parsed_catalog(text)


@st.composite
def edited_catalog(draw) -> str:
    """A real catalog with 1 to 4 values replaced, deleted or added anywhere in its tables."""
    data = copy.deepcopy(tomllib.loads(draw(st.sampled_from(CATALOG_TEXTS))))
    for _ in range(draw(st.integers(1, 4))):
        table = data
        while True:
            inner = [k for k, v in table.items() if isinstance(v, dict) and v]
            if not inner or not draw(st.booleans()):
                break
            table = table[draw(st.sampled_from(sorted(inner)))]
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "add" or not table:
            table[draw(NAMES | st.sampled_from(sorted(ModelCard.__dataclass_fields__)))] = draw(TOMLISH | st.just({}))
        elif action == "delete":
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(st.sampled_from(sorted(table)))] = draw(TOMLISH)
    return "\n".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in data.items())


@pytest.mark.fault("a real catalog with values of the wrong type, out of range, missing or unknown (400 inputs)",
                   "one line (PluginError) naming the entry and the key; never a traceback")
@settings(FUZZ, max_examples=400)
@given(edited_catalog())
def test_catalog_values_edited(text):
    parsed_catalog(text)


@pytest.mark.fault("a real catalog with lines deleted, repeated or swapped and bytes flipped (300 inputs)",
                   "one line (PluginError); never a traceback")
@settings(FUZZ, max_examples=300)
@given(st.data())
def test_catalog_text_mutated(data):
    lines = data.draw(st.sampled_from(CATALOG_TEXTS)).splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        how = data.draw(st.sampled_from(["delete", "repeat", "swap", "value"]))
        if how == "delete":
            del lines[i]
        elif how == "repeat":
            lines.insert(j, lines[i])
        elif how == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif "=" in lines[i]:
            lines[i] = lines[i].split("=")[0] + "= " + toml_value(data.draw(TOMLISH))
    text = "\n".join(lines).encode()
    parsed_catalog(damaged(text, data.draw) if data.draw(st.booleans()) else text)


# -- checkpoint headers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def steady(text: str, tmp_path_factory) -> str:
    """``text`` without this session's temporary folder, so each run fuzzes the same bytes (with
    the metadata in sorted order: safetensors writes it in hash order)."""
    return text.replace(str(tmp_path_factory.getbasetemp()), "/fuzz")


@pytest.fixture(scope="module")
def checkpoint_bytes(checkpoint, tmp_path_factory) -> bytes:
    header, body = header_of(checkpoint.read_bytes())
    header["__metadata__"] = {k: steady(v, tmp_path_factory) for k, v in sorted(header["__metadata__"].items())}
    return Blob(with_header(header, body))


def header_of(raw: bytes) -> tuple[dict, bytes]:
    """A safetensors file's JSON header and the tensor bytes after it."""
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def with_header(header, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def opened_checkpoint(raw: bytes, path: Path) -> None:
    path.write_bytes(raw)
    built = outcome(load, path)
    fed("checkpoints", outcome(read_card, path), built)
    if built is not None:
        assert built.card.num_classes == len(built.card.class_names)


@pytest.mark.fault("a checkpoint of random bytes, truncated, bit-flipped, or a valid 8-byte length before garbage "
                   "(200 inputs, each read with read_card and load)",
                   "one line, a ZooError (not a readable safetensors file); never a traceback")
@FUZZ
@given(st.data())
def test_checkpoint_random_and_damaged_bytes(checkpoint_bytes, scratch, data):
    header_length = 8 + struct.unpack("<Q", checkpoint_bytes[:8])[0]
    raw = data.draw(st.one_of(
        st.binary(max_size=600),
        st.builds(lambda n, junk: struct.pack("<Q", n) + junk, st.integers(0, 2**64 - 1), st.binary(max_size=200)),
        st.binary(max_size=300).map(lambda junk: struct.pack("<Q", len(junk)) + junk),
        st.just(checkpoint_bytes).map(lambda raw: flipped(raw, data.draw, within=header_length)),
        st.just(checkpoint_bytes).map(lambda raw: damaged(raw, data.draw)),
    ))
    opened_checkpoint(raw, scratch / "damaged.safetensors")


@pytest.mark.fault("a checkpoint whose card metadata holds wrong types, bad JSON, huge or negative numbers, "
                   "damaged layer arrays (200 inputs)",
                   "one line, a ZooError naming the field; never a traceback")
@FUZZ
@given(st.data())
def test_checkpoint_card_metadata_edited(checkpoint_bytes, scratch, data):
    header, body = header_of(checkpoint_bytes)
    meta = header["__metadata__"]
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(meta)) | st.sampled_from(sorted(ModelCard.__dataclass_fields__)) | TEXT)
        how = data.draw(st.sampled_from(["json", "json", "text", "raw", "delete", "layers"]))
        if how == "delete":
            meta.pop(key, None)
        elif how == "layers":  # a layer-array network, rebuilt by zoo's own builder from the file's data
            meta.update(source="layers", layers=json.dumps(data.draw(layer_arrays())))
        else:
            value = data.draw(JSONISH if how != "text" else WORDS)
            meta[key] = json.dumps(value) if how == "json" else value
    if data.draw(st.integers(0, 9)) == 0:
        header["__metadata__" if data.draw(st.booleans()) else data.draw(TEXT)] = data.draw(JSONISH)
    whole = data.draw(st.integers(0, 19)) == 0
    opened_checkpoint(with_header(data.draw(JSONISH) if whole else header, body), scratch / "edited.safetensors")


# -- ONNX files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_bytes(onnx_file, tmp_path_factory) -> bytes:
    proto = onnx.load(str(onnx_file))
    for entry in proto.metadata_props:
        entry.value = re.sub(r'"source_sha256": "\w+"', '"source_sha256": ""', steady(entry.value, tmp_path_factory))
    return Blob(proto.SerializeToString())


EXTREMES = {  # numbers a damaged or hostile file may hold, at and past each limit
    "input_size": [[0, 0], [-28, 28], [8192, 8192], [8193, 1], [2**40, 1], 28, [28, 28, 28]],
    "channels": [-1, 0, 2, 3, 4, 2**63], "num_classes": [-1, 0, 3, 100_000, 100_001, 2**63],
    "crop_pct": [-1, 0, 1e-300, 1e-4, 2.5, 1e300], "mean": [[], [1e300], [1e-300], [0.5] * 4, [-1e7]],
    "std": [[0], [-1], [1e-300], [1e300], [0.5] * 3]}
DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"


def predicted(kind: str, model: bytes | Path) -> None:
    predictor = outcome(Predictor, model, providers="cpu", threads=1)
    got = None if predictor is None else outcome(predictor.predict, DIGIT)
    fed(kind, got)
    if got is not None:
        assert got.label in predictor.labels and abs(float(got.probabilities.sum()) - 1) < 1e-4


@pytest.mark.fault("an ONNX file whose zoo metadata holds random strings, wrong JSON types, missing keys, "
                   "huge numbers or negative sizes (300 inputs)",
                   "one line, a ZooError (damaged zoo metadata); never a traceback")
@settings(FUZZ, max_examples=300)
@given(st.data())
def test_onnx_metadata_edited(onnx_bytes, data):
    proto = onnx.ModelProto.FromString(onnx_bytes)
    meta = {p.key: p.value for p in proto.metadata_props}
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(EXTREMES)) | st.sampled_from(sorted(meta)) | TEXT)
        how = data.draw(st.sampled_from(["json", "json", "text", "delete"] + ["extreme"] * 4 * (key in EXTREMES)))
        if how == "delete":
            meta.pop(key, None)
        elif how == "extreme":
            meta[key] = json.dumps(data.draw(st.sampled_from(EXTREMES[key])))
        else:
            meta[key] = json.dumps(data.draw(JSONISH)) if how == "json" else data.draw(WORDS)
    if data.draw(st.booleans()):  # timm's resize and crop, where crop_pct and crop_mode count
        meta["resize_mode"] = "center-crop"
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    predicted("onnx files", proto.SerializeToString())


@pytest.mark.fault("an ONNX model file of random bytes, truncated or bit-flipped (200 inputs)",
                   "one line, a ZooError (onnxruntime cannot load it); never a traceback")
@FUZZ
@given(st.data())
def test_onnx_random_and_damaged_bytes(onnx_bytes, scratch, data):
    path = scratch / "damaged.onnx"
    path.write_bytes(data.draw(st.binary(max_size=400) | st.just(onnx_bytes).map(lambda raw: damaged(raw, data.draw))))
    predicted("onnx files", path)


# -- images ------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def image_files(digits) -> dict[str, bytes]:
    """Real digit images in every format zoo reads, with and without EXIF: suffix-tagged bytes."""
    gray = Image.open(sorted(digits.glob("3/*.png"))[0]).convert("L")
    rgb = gray.convert("RGB")
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "zoo"  # orientation: rotated; camera make
    return Corpus({
        "gray.png": encoded(gray, "PNG"), "rgba.png": encoded(rgb.convert("RGBA"), "PNG"),
        "exif.png": encoded(gray, "PNG", exif=exif), "plain.jpg": encoded(rgb, "JPEG"),
        "progressive.jpg": encoded(gray, "JPEG", progressive=True), "exif.jpg": encoded(rgb, "JPEG", exif=exif),
        "rgb.bmp": encoded(rgb, "BMP"), "gray.gif": encoded(gray, "GIF"), "rgb.tif": encoded(rgb, "TIFF"),
        "exif.webp": encoded(rgb, "WEBP", exif=exif)})


@pytest.fixture(scope="module")
def predictor(onnx_bytes) -> Predictor:
    return Predictor(onnx_bytes, providers="cpu", threads=1)


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return zoo.load(checkpoint)


PILLOW_NOTES = "ignore:(Corrupt EXIF|Tag data|Metadata Warning).*:UserWarning"  # Pillow's notes on damaged metadata


def classified(path: Path, predictor: Predictor, classifier) -> None:
    """Through the torch-free runtime and the torch classifier alike."""
    fed("images", *(outcome(model, path) for model in (predictor.predict, classifier.classify)))


@pytest.mark.fault("classifying an image file of random bytes, or a PNG, JPEG, BMP, GIF, TIFF or WebP "
                   "bit-flipped, truncated or overwritten (400 inputs, runtime and torch classifier)",
                   "a prediction, or one line, a ZooError naming the file; never a traceback")
@pytest.mark.filterwarnings(PILLOW_NOTES)
@settings(FUZZ, max_examples=400)
@given(st.data())
def test_image_random_and_damaged_files(image_files, predictor, classifier, scratch, data):
    name = data.draw(st.sampled_from(sorted(image_files)))
    noise = data.draw(st.integers(0, 9)) == 0
    raw = data.draw(st.binary(max_size=300)) if noise else damaged(image_files[name], data.draw)
    path = scratch / f"damaged{Path(name).suffix}"
    path.write_bytes(raw)
    classified(path, predictor, classifier)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def exif_block(*, order: bytes = b"MM", make_tag: int = 0x010F) -> bytes:
    """An EXIF block with a text 'Make' entry (under ``make_tag``) and an orientation."""
    make = struct.pack(">HHI", make_tag, 2, 4) + b"zoo\0"  # type 2: text
    orientation = struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)  # type 3: a number; 6: rotated
    return b"Exif\0\0" + order + b"\0*" + struct.pack(">IH", 8, 2) + make + orientation + b"\0" * 4


SMALL = Image.new("RGB", (4, 4), "white")
DECODER_ESCAPES = {  # minimal files the fuzzer found escaping Pillow as SyntaxError, struct.error, TypeError
    "png-split-idat-bad-chunk.png": b"\x89PNG\r\n\x1a\n"
    + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    + png_chunk(b"IDAT", zlib.compress(b"\0\0")[:3]) + png_chunk(b"\0DAT", zlib.compress(b"\0\0")[3:])  # "IDAT" broken
    + png_chunk(b"IEND", b""),
    "exif-bad-byte-order.png": encoded(SMALL, "PNG", exif=exif_block(order=b"QQ")),
    "exif-bad-byte-order.webp": encoded(SMALL, "WEBP", exif=exif_block(order=b"QQ")),
    "exif-text-in-number-tag.jpg": encoded(SMALL, "JPEG", exif=exif_block(make_tag=0x0107)),
    "exif-text-in-fraction-tag.jpg": encoded(SMALL, "JPEG", exif=exif_block(make_tag=0x011F)),
}


@pytest.mark.fault("classifying a PNG with a broken chunk inside its image data, or an image whose EXIF "
                   "block is damaged", "a prediction, or one line, a ZooError naming the file; never a traceback")
@pytest.mark.filterwarnings(PILLOW_NOTES)
@pytest.mark.parametrize("name", sorted(DECODER_ESCAPES))
def test_decoder_escapes_found_by_the_fuzzer(name, predictor, classifier, tmp_path):
    path = tmp_path / name
    path.write_bytes(DECODER_ESCAPES[name])
    classified(path, predictor, classifier)


@pytest.mark.fault("a data folder holding damaged images beside good ones (zoo evaluate)",
                   "the damaged files are skipped and named in one warning; the rest are evaluated")
def test_corrupt_files_in_a_data_folder_are_skipped_with_a_warning(digits, checkpoint, image_files, tmp_path):
    good = 0
    for label in ("3", "7"):
        (tmp_path / label).mkdir()
        for source in sorted(digits.glob(f"{label}/*.png"))[:4]:
            (tmp_path / label / source.name).write_bytes(source.read_bytes())
            good += 1
    broken = {"3/truncated.png": image_files["gray.png"][:60], "3/noise.jpg": bytes(range(256)) * 3,
              "7/empty.bmp": b"", **{f"7/{name}": raw for name, raw in DECODER_ESCAPES.items()
                                     if name.startswith("png-")}}
    for name, raw in broken.items():
        (tmp_path / name).write_bytes(raw)
    with pytest.warns(DataWarning) as caught:
        result = zoo.evaluate(checkpoint, tmp_path)
    message = " ".join(str(w.message) for w in caught if issubclass(w.category, DataWarning))
    assert all(Path(name).name in message for name in broken)
    assert int(np.asarray(result.confusion).sum()) == good
    FUZZED["data folders"] += len(broken)


# -- the family cache (zoo.registry) -----------------------------------------------------


@pytest.mark.fault("a damaged cache of timm's model names (random bytes, other JSON; 20 inputs)",
                   "the names are listed again and the cache rewritten; never a traceback")
@settings(FUZZ, max_examples=20)
@given(st.binary(max_size=64) | JSONISH.map(lambda v: json.dumps(v).encode()))
def test_damaged_family_cache_is_rebuilt(raw):
    from zoo import registry

    path = registry.family_cache(next(f for p in zoo.plugins() for f in p.families.values()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    names = outcome(registry.family_names, "timm")
    fed("family caches", names)
    assert names and all(isinstance(n, str) for n in names)
    assert json.loads(path.read_text()) == names


# -- threads -----------------------------------------------------------------------------


@pytest.mark.fault("8 threads sharing one Predictor for 3,200 predictions, singly and in batches",
                   "every answer equals the one-thread answer for the same image")
def test_threads_sharing_one_predictor_agree_with_one_thread(onnx_bytes, digits):
    predictor = Predictor(onnx_bytes, providers="cpu")
    files = sorted(digits.glob("*/*.png"))
    expected = {str(f): p for f, p in zip(files, predictor.predict(files, batch_size=64))}
    work = [[files[(i * 397 + j) % len(files)] for j in range(400)] for i in range(8)]  # 8 x 400, overlapping
    start = threading.Barrier(8)

    def classify(chunk: list[Path]) -> list:
        start.wait()
        singles = [predictor.predict(f) for f in chunk[:200]]
        return singles + list(predictor.predict(chunk[200:], batch_size=16))

    with ThreadPoolExecutor(8) as pool:
        answers = [p for got in pool.map(classify, work) for p in got]
    assert len(answers) == 3200
    for got in answers:
        want = expected[got.source]
        assert got.label == want.label
        np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-5)
