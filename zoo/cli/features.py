"""``zoo features``: activations at a named layer (MATLAB ``activations``) into an .npz file."""

from __future__ import annotations

import click

from zoo.cli.network import network_option
from zoo.cli.types import COUNT, NonEmptyPath, Text

__all__ = ["features_command"]


@click.command("features")
@click.argument("model", type=Text("a model"))
@click.option("--layer", required=True, type=Text("a layer name"),
              help="Layer name, as 'zoo info MODEL' lists them (e.g. relu_3, fc).")
@click.option("--data", required=True, type=Text("a dataset folder or file"),
              help="Images: DIR/<label>/*.png (or --adapter's format).")
@click.option("--out", required=True, type=NonEmptyPath(dir_okay=False),
              help="Output .npz (features, labels, classes, files, layer).")
@click.option("--adapter", default="auto", show_default=True, type=Text("an adapter name"),
              help="Dataset adapter; auto: digits, idx or csvlist by their files, else folder.")
@click.option("--weights", default="auto", show_default=True, type=Text("weights"),
              help="For a registry MODEL: pretrained weights (auto, tag, FILE).")
@click.option("--batch-size", type=COUNT, default=128, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@network_option
def features_command(model: str, layer: str, data: str, out: str, adapter: str, weights: str, batch_size: int,
                     device: str, network: str | None) -> None:
    """Extract the activations of every image in --data at --layer of MODEL (checkpoint or registry name)."""
    from zoo.features import extract  # torch: 'zoo features --help' stays fast

    result = extract(model, layer, data, out=out, adapter=adapter, batch_size=batch_size, device=device,
                     pretrained=weights, network=network)
    shape = "x".join(str(d) for d in result.features.shape[1:])
    click.echo(f"{len(result.features)} images -> {layer} activations of shape {shape}; saved {result.path}")
