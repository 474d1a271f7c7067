"""``zoo evaluate``: accuracy, per-class precision/recall, confusion matrix table and PNG."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.output import print_json, print_table

__all__ = ["evaluate_command"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


@click.command("evaluate")
@click.argument("checkpoint")
@click.option("--data", required=True, help="Labelled images: DIR/<label>/*.png (or --adapter's format).")
@click.option("--adapter", default="folder", show_default=True, help="Dataset adapter.")
@click.option("--plot", default=None, help="Confusion chart PNG.  [default: confusion-matrix.png beside CHECKPOINT]")
@click.option("--no-plot", is_flag=True, help="Do not write the confusion chart.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate_command(checkpoint: str, data: str, adapter: str, plot: str | None, no_plot: bool, batch_size: int,
                     device: str, as_json: bool) -> None:
    """Evaluate CHECKPOINT on --data: accuracy, per-class precision and recall, confusion matrix.

    The confusion chart (MATLAB confusionchart) is written as a PNG.
    """
    from zoo.evaluation import evaluate  # torch: 'zoo evaluate --help' stays fast

    target = None if no_plot else Path(plot) if plot else Path(checkpoint).parent / "confusion-matrix.png"
    result = evaluate(checkpoint, data, adapter=adapter, plot=target, batch_size=batch_size, device=device)
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(f"accuracy: {_pct(result.accuracy)} of {result.images} images")
    print_table(None, ["CLASS", "PRECISION", "RECALL", "IMAGES"],
                ((label, _pct(p), _pct(r), s) for label, p, r, s in
                 zip(result.labels, result.precision, result.recall, result.support)),
                justify=("left", "right", "right", "right"))
    click.echo()
    click.echo("confusion matrix (rows: true class, columns: predicted class)")
    print_table(None, ["", *result.labels],
                ([label, *(str(v) for v in row)] for label, row in zip(result.labels, result.confusion)),
                justify=("left", *("right",) * len(result.labels)))
    if result.plot is not None:
        click.echo(f"\nsaved {result.plot}")
