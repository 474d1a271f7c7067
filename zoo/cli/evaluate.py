"""``zoo evaluate``: accuracy, per-class precision/recall, confusion matrix table and PNG."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.network import network_option
from zoo.cli.output import print_json, print_table
from zoo.cli.types import COUNT, MAX_SEED, SEED, SPLIT_OR_COUNT, NonEmptyPath, Text, whole
from zoo.data.sources import CACHE_MODES
from zoo.errors import ZooError

__all__ = ["evaluate_command"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _check_options(data: str | None, split: float | int | None, seed: int | None, part: str | None,
                   of_run: bool) -> None:
    if of_run and data is not None:
        raise ZooError("--split-of-run evaluates the data recorded in the checkpoint: drop --data (or drop --split-of-run)")
    if of_run and (split is not None or seed is not None):
        raise ZooError("--split-of-run uses the checkpoint's own split: drop --split and --seed")
    if not of_run and data is None:
        raise ZooError("give --data DIR, or --split-of-run to evaluate the validation part the checkpoint recorded")
    if split is None and not of_run and (part is not None or seed is not None):
        raise ZooError(f"{'--part' if part is not None else '--seed'} needs --split F (or --split-of-run)")


@click.command("evaluate")
@click.argument("checkpoint", type=Text("a checkpoint"))
@click.option("--data", default=None, type=Text("a dataset folder or file"),
              help="Labelled images: DIR/<label>/*.png (or --adapter's format).")
@click.option("--adapter", default="auto", show_default=True, type=Text("an adapter name"),
              help="Dataset adapter for --data; auto: digits, idx or csvlist by their files, else folder.")
@click.option("--split", "split", type=SPLIT_OR_COUNT, default=None, metavar="F",
              help="splitEachLabel --data first: F of each label (0.75) or a count per label (50); see --part.")
@click.option("--seed", type=SEED, default=None,
              help=f"Seed of --split's randomized split, 0 to {MAX_SEED} (as zoo train's).  [default: 0]")
@click.option("--part", type=click.Choice(["val", "train"]), default=None,
              help="Which part of --split (or --split-of-run) to evaluate: val (the rest after F) or train "
                   "(the first F).  [default: val]")
@click.option("--split-of-run", "of_run", is_flag=True,
              help="Evaluate exactly the validation part CHECKPOINT's run held out, as its card records (no --data).")
@click.option("--plot", default=None, type=NonEmptyPath(dir_okay=False),
              help="Confusion chart PNG.  [default: confusion-matrix.png beside CHECKPOINT]")
@click.option("--no-plot", is_flag=True, help="Do not write the confusion chart.")
@click.option("--batch-size", type=COUNT, default=256, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--cache", type=click.Choice(CACHE_MODES), default="auto", show_default=True,
              help="Decoded pixels: disk (decoded once, memory-mapped), memory, or none (decoded from the files); "
                   "auto: disk within ZOO_CACHE_BUDGET, else none.")
@click.option("--workers", type=whole(0, 256), default=None,
              help="Processes decoding images with --cache none, 0 to 256.  [default: min(4, cores)]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with what was evaluated).")
@network_option
def evaluate_command(checkpoint: str, data: str | None, adapter: str, split: float | int | None, seed: int | None,
                     part: str | None, of_run: bool, plot: str | None, no_plot: bool, batch_size: int,
                     device: str, cache: str, workers: int | None, as_json: bool, network: str | None) -> None:
    """Evaluate CHECKPOINT: accuracy, per-class precision and recall, confusion matrix.

    \b
    zoo evaluate CKPT --data test/                        # every image in test/
    zoo evaluate CKPT --split-of-run                      # exactly the run's validation part
    zoo evaluate CKPT --data digits --split 0.75 --seed 0 --part val

    Images the checkpoint was trained on are counted in a warning. The confusion chart
    (MATLAB confusionchart) is written as a PNG.
    """
    _check_options(data, split, seed, part, of_run)
    from zoo.evaluation import evaluate  # torch: 'zoo evaluate --help' stays fast

    target = None if no_plot else Path(plot) if plot else Path(checkpoint).parent / "confusion-matrix.png"
    result = evaluate(checkpoint, data, adapter=adapter, split=split, seed=seed or 0, part=part, plot=target,
                      batch_size=batch_size, device=device, network=network, cache=cache, workers=workers)
    if as_json:
        print_json(result.to_dict())
        return
    what = result.evaluated
    part = "" if what["part"] in ("all", "subset") else f" ({what['part']} part{' of the run' if what['of_run'] else ''})"
    click.echo(f"accuracy: {_pct(result.accuracy)} of {result.images} images{part}")
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
