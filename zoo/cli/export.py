"""``zoo export``: a checkpoint or registry model to one self-describing ONNX file."""

from __future__ import annotations

import warnings
from typing import Any

import click

from zoo.cli.network import network_option
from zoo.cli.output import print_json, print_table, warn
from zoo.cli.types import NonEmptyPath, Text, api_rule

__all__ = ["export_command"]


def _export_rules() -> Any:
    from zoo.export.options import option_problem  # torch (the package's import): only when a value is checked

    return option_problem


@click.command("export")
@click.argument("ref", metavar="CKPT|MODEL", type=Text("a checkpoint or model name"))
@click.option("--out", "-o", type=NonEmptyPath(dir_okay=False),
              help="ONNX file to write (default: beside CKPT, or NAME.onnx).")
@click.option("--opset", type=api_rule(_export_rules, "opset", "integer"), default=18, show_default=True,
              help="ONNX opset to ask for, 7 to 23; the one written is reported.")
@click.option("--batch", type=api_rule(_export_rules, "batch", "text"), default="dynamic", show_default=True,
              help="'dynamic' or a fixed batch size.")
@click.option("--quantize", type=click.Choice(["int8", "int8-dynamic", "auto"]),
              help="int8: static QDQ; int8-dynamic; auto: the fastest within --max-accuracy-drop (all measured).")
@click.option("--max-accuracy-drop", type=api_rule(_export_rules, "max_accuracy_drop", "float"), default=1.0,
              show_default=True, help="Accuracy points --quantize auto may lose (on labelled images; else top-1 "
              "disagreement with fp32).")
@click.option("--optimize", type=click.Choice(["auto", "none", "basic", "extended", "transformer"]), default="auto",
              show_default=True, help="Graph optimisation: basic (portable), extended (onnxruntime CPU), transformer "
              "(attention, LayerNorm, GELU fusions); auto: transformer for transformers, else basic.")
@click.option("--calibration", type=NonEmptyPath(exists=True, file_okay=False),
              help="Image folder DIR/<class>/* to calibrate int8 on (default: the checkpoint's training data).")
@click.option("--embed-preprocessing", is_flag=True, help="Graph takes uint8 NHWC pixels and normalises inside.")
@click.option("--exporter", type=click.Choice(["auto", "dynamo", "torchscript"]), default="auto", show_default=True,
              help="auto: torch's dynamo exporter, TorchScript if it fails.")
@click.option("--tolerance", type=api_rule(_export_rules, "tolerance"), default=1e-4, show_default=True,
              help="Largest accepted max|ort - torch| relative to max(1, max|torch|).")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime-vs-torch comparison.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@network_option
def export_command(ref: str, out: str | None, opset: int, batch: str, quantize: str | None, max_accuracy_drop: float,
                   optimize: str, calibration: str | None, embed_preprocessing: bool, exporter: str, tolerance: float,
                   no_check: bool, as_json: bool, network: str | None) -> None:
    """Export CKPT (a .safetensors checkpoint) or MODEL (a registry name) to ONNX.

    The file carries the model card in metadata_props: labels, input size, channels,
    mean/std, resize mode, registry name, zoo version and the checkpoint's sha256, so
    'zoo predict FILE.onnx' and zoo.runtime.Predictor need nothing else. Before the file
    is written, onnxruntime is compared with torch at batch 1 and 3 on random and real
    images; the largest difference is reported.
    """
    from zoo.export import export
    from zoo.resolver import kind_of

    if quantize and calibration is None:
        from zoo.export.options import default_calibration

        calibration = default_calibration(ref)
    if quantize and calibration is None:
        warn("no --calibration folder: int8 is calibrated on sample photos, and accuracy is not measured")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        report = export(ref, out, opset=opset, batch=batch, quantize=quantize, embed_preprocessing=embed_preprocessing,
                        check=not no_check, exporter=exporter, tolerance=tolerance, calibration=calibration,
                        network=network, optimize=optimize, max_accuracy_drop=max_accuracy_drop)
    for w in caught:
        if "falling back" in str(w.message):
            warn(str(w.message))
    if kind_of(ref) == "name":  # a registry name is built as the catalog declares it: random weights
        warn(f"'{ref}' was exported with random weights (a registry name carries none); for a useful model "
             "export a checkpoint that zoo train or zoo finetune wrote")
    if as_json:
        print_json(report.to_dict())
        return
    print_table(None, ["EXPORT", ""], report.rows())
    for note in report.notes:
        warn(note)
