"""``zoo predict --show FILE``: the lecture's ``imshow(I); title(['The digit is ' char(label)])``.

Real files throughout: scikit-learn's handwritten digits, a digitnet trained on them (the
``checkpoint`` fixture) and its ONNX export (``onnx_file``), pictures opened again with Pillow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from conftest import zoo_in_process
from small_fs import read_only_folder

from zoo.errors import ZooError
from zoo.prediction import predictions
from zoo.prediction_figure import (
    DEFAULT_TITLE,
    MAX_SHOWN,
    prediction_figure,
    save_prediction_figure,
    title_of,
    title_problem,
)

DIGITS = [str(d) for d in range(10)]


def _prediction(label: str = "7", probability: float = 0.999, source: str = "digits/7/seven.png"):
    """A real :class:`zoo.prediction.Prediction` whose top class has ``probability``."""
    rest = (1 - probability) / (len(DIGITS) - 1)
    probs = np.full(len(DIGITS), rest)
    probs[DIGITS.index(label)] = probability
    return predictions(np.log(probs)[None, :], DIGITS, sources=[source])[0]


_zoo = zoo_in_process


def _picture(path: Path) -> np.ndarray:
    """The written PNG as gray pixels, after checking Pillow reads it as a whole PNG."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return np.asarray(image.convert("L"))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_title_says_the_label_and_the_score():
    seven = _prediction("7", 0.999)
    assert DEFAULT_TITLE == "{label} ({score})"
    assert title_of(seven) == "7 (99.9 %)"
    assert title_of(seven, "The digit is {label} ({score})") == "The digit is 7 (99.9 %)"  # the lecture's words
    assert title_of(seven, "{file}: {label} p={probability:.3f}") == "seven.png: 7 p=0.999"
    assert title_of(_prediction("3", 0.5, source=""), "{label} {file}") == "3 "


@pytest.mark.fault("zoo predict --title with a template naming an unknown field, a lone brace, a positional "
                   "field, a format that does not fit, or empty",
                   "exit 2 before any work: one line 'Invalid value for '--title'' saying which fields a title may name")
@pytest.mark.parametrize("template", ["{digit}", "{label", "{}", "{0}", "{label.upper}", "{score:.2f}", "", "  "])
def test_a_bad_title_template_is_refused_before_any_work(template, checkpoint, digits, tmp_path, capsys):
    assert title_problem(template) is not None
    out = tmp_path / "p.png"
    code, stdout, err = _zoo(capsys, "predict", str(checkpoint), str(digits / "7"), "--show", str(out),
                             "--title", template)
    assert code == 2 and stdout == "" and not out.exists()
    assert _lines(err) == [_lines(err)[0]] and err.startswith("error: Invalid value for '--title'")
    assert title_problem("The digit is {label} ({score})") is None and title_problem("abc") is None


def test_torch_path_writes_the_labelled_picture(checkpoint, digits, tmp_path, capsys):
    image = sorted(digits.glob("7/*.png"))[0]
    out = tmp_path / "seven.png"
    code, stdout, err = _zoo(capsys, "predict", str(checkpoint), str(image), "--show", str(out),
                             "--title", "The digit is {label} ({score})")
    assert code == 0, err
    assert str(image) in stdout  # the answer is printed as without --show
    assert f"saved {out}: 1 image titled with its predicted label" in err
    pixels = _picture(out)
    assert 300 <= pixels.shape[1] <= 1000 and 300 <= pixels.shape[0] <= 1000
    assert pixels.std() > 30  # a white digit on black under a black title: not a blank page
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]  # no temporary left beside it


def test_the_figure_shows_the_file_upright_in_gray_with_its_title(digits, tmp_path):
    digit = sorted(digits.glob("3/*.png"))[0]
    photo = tmp_path / "turned.jpg"  # stored 40 wide, 20 high; EXIF says: turn it upright (90 degrees)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), (200, 30, 30)).save(photo, exif=exif)
    answers = [_prediction("3", 0.9, str(digit)), _prediction("8", 0.6, str(photo))]
    fig = prediction_figure([digit, photo], answers, title="The digit is {label} ({score})")
    shown = {ax.get_label(): ax for ax in fig.axes}
    gray, color = shown["image 1"], shown["image 2"]
    assert gray.get_title() == "The digit is 3 (90.0 %)" and color.get_title() == "The digit is 8 (60.0 %)"
    assert gray.images[0].get_cmap().name == "gray" and gray.images[0].get_array().shape == (28, 28)
    assert color.images[0].get_array().shape == (40, 20, 3)  # upright: as a viewer shows the file


def test_onnx_path_writes_a_grid_without_torch(onnx_file, digits, tmp_path):
    folder = digits / "4"
    count = len(list(folder.glob("*.png")))
    assert count > MAX_SHOWN
    out = tmp_path / "fours.png"
    code = (
        "import json, sys\n"
        "from zoo.cli import main\n"
        "try:\n"
        f"    main(['predict', {str(onnx_file)!r}, {str(folder)!r}, '--show', {str(out)!r}])\n"
        "except SystemExit as ended:\n"
        "    status = ended.code\n"
        "else:\n"
        "    status = 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm', 'onnx'))\n"
        "print(json.dumps({'status': status, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"status": 0, "heavy": []}, proc.stderr
    assert (f"saved {out}: the first {MAX_SHOWN} of {count} images ({count - MAX_SHOWN} left out) "
            "titled with their predicted labels") in proc.stderr
    pixels = _picture(out)
    assert pixels.shape[1] >= 1000 and pixels.shape[0] >= 1000  # 8 x 8 tiles
    assert pixels.std() > 30


def test_a_grid_holds_every_image_up_to_the_cap(digits, tmp_path):
    files = sorted(digits.glob("*/*.png"))[::20][:70]
    answers = [_prediction(f.parent.name, 0.95, str(f)) for f in files]
    twelve = prediction_figure(files[:12], answers[:12])
    assert [ax.get_label() for ax in twelve.axes] == [f"image {i}" for i in range(1, 13)]
    assert [ax.get_title() for ax in twelve.axes] == [f"{f.parent.name} (95.0 %)" for f in files[:12]]
    columns = {round(ax.get_position().x0, 3) for ax in twelve.axes}
    assert len(columns) == 4  # 12 images: 3 rows of 4
    full = prediction_figure(files, answers)
    assert len(full.axes) == MAX_SHOWN
    assert [t.get_text() for t in full.texts] == [f"the first {MAX_SHOWN} of 70 images; 6 not shown "
                                                  f"(a picture holds at most {MAX_SHOWN})"]
    path = save_prediction_figure(tmp_path / "grid.svg", files[:12], answers[:12])
    assert path.read_text().lstrip().startswith("<?xml") and "<svg" in path.read_text()[:2000]
    with pytest.raises(ZooError, match="12 images but 11 predictions"):
        prediction_figure(files[:12], answers[:11])


def test_a_long_label_is_shortened_and_the_score_kept(tmp_path):
    long = ("German shepherd, German shepherd dog, German police dog, alsatian", "tabby")
    answer = predictions(np.array([[5.0, 0.0]]), long)[0]
    image = Image.new("RGB", (64, 48), (90, 120, 40))
    title = prediction_figure([image] * 5, [answer] * 5).axes[0].get_title()
    assert title.startswith("German shepherd") and title.endswith("(99.3 %)") and "…" in title
    assert title.count("\n") == 1


@pytest.mark.fault("zoo predict --show with a file name that is not .png or .svg (p.jpg, no suffix)",
                   "exit 2 before the model is opened: one line 'Invalid value for '--show': must be a file name "
                   "ending in .png or .svg'")
@pytest.mark.parametrize("name", ["p.jpg", "picture", "p.png.txt"])
def test_a_bad_suffix_is_refused_before_any_work(name, tmp_path, capsys):
    missing_model = tmp_path / "not-yet-trained.safetensors"  # opening it would fail: the check comes first
    code, stdout, err = _zoo(capsys, "predict", str(missing_model), str(tmp_path), "--show", str(tmp_path / name))
    assert code == 2 and stdout == ""
    assert len(_lines(err)) == 1 and err.startswith(f"error: Invalid value for '--show': must be a file name "
                                                    f"ending in .png or .svg, not '{tmp_path / name}'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault("zoo predict --title without --show", "exit 2: one line saying to add --show FILE")
def test_a_title_without_a_picture_is_refused(onnx_file, digits, capsys):
    code, _, err = _zoo(capsys, "predict", str(onnx_file), str(digits / "1"), "--title", "{label}")
    assert code == 2 and _lines(err) == ["error: --title is the title of --show's picture: add --show FILE "
                                         "(.png or .svg)"]


@pytest.mark.fault("zoo predict --show FILE in a read-only folder",
                   "the predictions are printed, then exit 3: one line 'the file system is read-only', nothing written")
def test_an_unwritable_picture_is_exit_3(onnx_file, digits, tmp_path, monkeypatch, capsys):
    with read_only_folder(tmp_path, monkeypatch) as folder:
        out = folder / "p.png"
        code, stdout, err = _zoo(capsys, "predict", str(onnx_file), str(digits / "2"), "--show", str(out))
        assert code == 3
        assert _lines(err)[-1] == f"error: cannot write '{out}': the file system is read-only; write somewhere else (--show)"
        assert "Traceback" not in err and str(digits / "2") in stdout
        assert list(folder.iterdir()) == []
