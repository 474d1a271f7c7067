"""``zoo predict``: MATLAB's ``classify(net, I)`` for a checkpoint, an ONNX file or a pretrained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.cli.network import network_option
from zoo.cli.output import print_json, print_table
from zoo.cli.types import COUNT, Checked, Text
from zoo.errors import ZooError
from zoo.picture import picture_problem
from zoo.prediction_figure import DEFAULT_TITLE, MAX_SHOWN, title_problem
from zoo.preprocess import IMAGE_SUFFIXES
from zoo.resolver import kind_of

__all__ = ["predict_command", "predict"]


def _expand(images: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for item in images:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ZooError(f"folder '{path}' holds no images")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise ZooError(f"image '{path}' does not exist")
    return out


def predict(model: str, images: list[Path], *, top_k: int = 5, weights: Any = "auto", device: str = "auto",
            network: str | None = None) -> list[Any]:
    """:class:`zoo.prediction.Prediction` per image, from a checkpoint, an ONNX file or a registry name."""
    if kind_of(model) == "onnx":
        from zoo.runtime import Predictor  # onnxruntime: only for an .onnx file

        predictor = Predictor(model)
        click.echo(f"onnxruntime: {predictor.provider}", err=True)
        return predictor.predict([str(p) for p in images], k=top_k)
    from zoo.classifier import (
        load,  # torch: not for an .onnx file, nor for 'zoo predict --help'
    )
    from zoo.device import pick_device

    return load(model, weights=weights, device=pick_device(device), network=network).classify(images, top_k=top_k)


def _show(path: Path, files: list[Path], predictions: list[Any], title: str) -> None:
    """Write the labelled picture and say on stderr what it holds (stdout stays the answer)."""
    from zoo.prediction_figure import save_prediction_figure  # matplotlib: only with --show

    save_prediction_figure(path, files, predictions, title=title)
    left_out = len(files) - MAX_SHOWN
    what = f"the first {MAX_SHOWN} of {len(files)} images ({left_out} left out)" if left_out > 0 else \
        f"{len(files)} image{'s' if len(files) != 1 else ''}"
    click.echo(f"saved {path}: {what} titled with {'its' if len(files) == 1 else 'their'} predicted label"
               f"{'' if len(files) == 1 else 's'}", err=True)


@click.command("predict")
@click.argument("model", type=Text("a model"))
@click.argument("images", nargs=-1, required=True, type=Text("an image or folder"))
@click.option("--top-k", "-k", type=COUNT, default=5, show_default=True, help="How many classes to show per image.")
@click.option("--weights", default="auto", show_default=True, type=Text("weights"),
              help="For a registry MODEL: pretrained weights (auto, a tag or a FILE).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--show", "show", default=None, metavar="FILE", type=Checked("FILE", picture_problem),
              help=f"Also draw the images with their predicted label and score as the title (.png or .svg): "
                   f"MATLAB's imshow(I); title(label). Several images make a grid of the first {MAX_SHOWN}.")
@click.option("--title", "title", default=None, metavar="TEMPLATE", type=Checked("TEMPLATE", title_problem),
              help="--show's title for each image, naming {label}, {score} (99.9 %), {probability} (0..1) or "
                   "{file}, e.g. 'The digit is {label}'.  [default: " + DEFAULT_TITLE + "]")
@network_option
def predict_command(model: str, images: tuple[str, ...], top_k: int, weights: str, device: str, as_json: bool,
                    show: str | None, title: str | None, network: str | None) -> None:
    """Classify IMAGES (files or folders) with MODEL: a checkpoint, an .onnx file, or a registry name.

    \b
    zoo predict runs/digitnet/model.safetensors seven.png
    zoo predict digitnet.onnx digits/7/              # torch-free onnxruntime
    zoo predict efficientnet_lite0 cat.jpg           # ImageNet weights, offline
    zoo predict alexnet picture.jpg                  # "deep learning in 7 lines"
    zoo predict digitnet.onnx digits/7/ --show sevens.png   # the images, titled
    """
    if weights == "none":
        raise ZooError("zoo predict needs trained weights: give a checkpoint, an .onnx file, or --weights auto|FILE")
    if title is not None and show is None:
        raise ZooError("--title is the title of --show's picture: add --show FILE (.png or .svg)")
    files = _expand(images)
    predictions = predict(model, files, top_k=top_k, weights=weights, device=device, network=network)
    if as_json:
        print_json([p.to_dict() for p in predictions])
    else:
        _print_table(predictions, top_k)
    if show is not None:  # after the answer: a failed write still leaves it on the screen
        _show(Path(show), files, predictions, title or DEFAULT_TITLE)


def _print_table(predictions: list[Any], top_k: int) -> None:
    print_table(None, ["IMAGE", "LABEL", "PROBABILITY", f"TOP {top_k}"],
                ((p.source, p.label, f"{100 * p.probability:.2f}%",
                  ", ".join(f"{label} {100 * prob:.1f}%" for label, prob in p.top())) for p in predictions),
                justify=("left", "left", "right", "left"))
