"""``zoo train`` and ``zoo finetune``: thin layers over :func:`zoo.train` / :func:`zoo.finetune`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from zoo.cli.distributed import (
    distributed_options,  # distributed (issue 6): --nproc, --nnodes, ...
)
from zoo.cli.output import print_json
from zoo.cli.types import AUGMENT, CHANNELS, CLASSES, InputSize, NonEmptyPath, Text, api_rule, size_pair
from zoo.training import TrainingInterrupted, TrainOptions, finetune, train
from zoo.data.sources import CACHE_MODES
from zoo.training.options import DEVICES, MAX_SEED, SCHEDULES, SHUFFLES, SOLVERS, option_problem

__all__ = ["train_command", "finetune_command"]

_DEFAULTS_NOTE = """
\b
Defaults follow MATLAB's trainingOptions (sgdm, momentum 0.9, lr 0.01 for
sgdm / 0.001 for adam and rmsprop, L2 1e-4, mini-batch 128, validation every
50 iterations, drop factor 0.1 every 10 epochs) except:
  --epochs 10           MATLAB: 30 (CPU-first; the labs set epochs anyway)
  --shuffle every-epoch MATLAB: once (reshuffling generalises better; MATLAB's
                        own examples pass 'every-epoch')
  --split 0.75          MATLAB: no validation (75/25 per label, as Lab 6)
As in MATLAB, the last partial mini-batch of an epoch is dropped, and
validation runs at iteration 1, every --val-every iterations and at the end.
Ctrl-C stops after the current iteration and saves OUT/resume.safetensors;
run the same command with --resume to continue.
See docs/training.md.
"""


def _rule(name: str, kind: str = "float") -> Any:
    """The click type that checks ``--NAME`` by TrainOptions' own rule."""
    return api_rule(lambda: option_problem, name, kind)  # imported already: this module imports zoo.training


def _training_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The trainingOptions flags, shared by train and finetune; each value is checked as it is read."""
    options = [
        click.option("--data", required=True, type=Text("a dataset folder or file"),
                     help="Training images: a folder of DIR/<label>/*.png (or --adapter's format)."),
        click.option("--val", "val", default=None, type=Text("a dataset folder or file"),
                     help="Separate validation set (instead of --split)."),
        click.option("--adapter", default="auto", show_default=True, type=Text("an adapter name"),
                     help="Dataset adapter for --data and --val; auto: digits, idx or csvlist by their files, else folder."),
        click.option("--solver", type=click.Choice(SOLVERS), default="sgdm", show_default=True, help="solverName."),
        click.option("--epochs", type=_rule("epochs", "integer"), default=None, help="MaxEpochs.  [default: 10]"),
        click.option("--lr", type=_rule("lr"), default=None, help="InitialLearnRate.  [default: 0.01 sgdm, 0.001 adam/rmsprop]"),
        click.option("--lr-schedule", type=click.Choice(SCHEDULES), default="none", show_default=True, help="LearnRateSchedule."),
        click.option("--lr-drop-factor", type=_rule("lr_drop_factor"), default=0.1, show_default=True,
                     help="LearnRateDropFactor (piecewise), in (0, 1]."),
        click.option("--lr-drop-period", type=_rule("lr_drop_period", "integer"), default=10, show_default=True,
                     help="LearnRateDropPeriod in epochs (piecewise)."),
        click.option("--batch-size", type=_rule("batch_size", "integer"), default=128, show_default=True, help="MiniBatchSize."),
        click.option("--momentum", type=_rule("momentum"), default=0.9, show_default=True, help="Momentum (sgdm), in [0, 1)."),
        click.option("--l2", type=_rule("l2"), default=1e-4, show_default=True, help="L2Regularization."),
        click.option("--split", type=_rule("split"), default=0.75, show_default=True,
                     help="Training fraction per label (splitEachLabel), in (0, 1]; 1 = no validation."),
        click.option("--val-every", type=_rule("val_every", "integer"), default=50, show_default=True,
                     help="ValidationFrequency in iterations."),
        click.option("--shuffle", type=click.Choice(SHUFFLES), default="every-epoch", show_default=True, help="Shuffle."),
        click.option("--augment", type=AUGMENT, default="none", show_default=True,
                     help="imageDataAugmenter, e.g. 'flip,rotate=10,scale=0.9:1.1,translate=3' (rotate within "
                          "360 degrees, scale 0 < LOW <= HIGH <= 10, translate within 10000 pixels); none for none."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="ExecutionEnvironment."),
        click.option("--seed", type=_rule("seed", "integer"), default=0, show_default=True,
                     help=f"Random seed (init, split, shuffling): 0 to {MAX_SEED}, as MATLAB's rng."),
        click.option("--cache", type=click.Choice(CACHE_MODES), default="auto", show_default=True,
                     help="Decoded pixels: disk (decoded once, memory-mapped), memory, none (decoded from the "
                          "files each epoch by --workers); auto: disk within ZOO_CACHE_BUDGET, else none."),
        click.option("--workers", type=_rule("workers", "integer"), default=None,
                     help="Processes decoding images when streaming, 0 to 256.  [default: min(4, cores)]"),
        click.option("--feature-cache/--no-feature-cache", default=True, show_default=True,
                     help="With a frozen backbone and no --augment, compute its features once and train "
                          "the head on them (the same result as running the backbone every iteration)."),
        click.option("--out", default=None, type=NonEmptyPath(), help="Output folder.  [default: runs/<model>/]"),
        click.option("--resume", is_flag=True, help="Continue the run interrupted with Ctrl-C in --out."),
        click.option("--progress/--no-progress", default=None, help="Live bar / plain lines (auto: bar on a terminal)."),
        click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _network_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Card values for a network defined in Python (FILE.py:NAME) that does not state them."""
    func = click.option("--channels", type=CHANNELS, default=None,
                        help="Input channels of a Python network (1 or 3).")(func)
    return click.option("--input-size", "input_size", type=InputSize(), default=None, metavar="H[xW]",
                        help="Input size of a Python network, e.g. 28 or 224x224.")(func)


def _hints(input_size: str | None, channels: int | None) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    if input_size is not None:
        hints["input_size"] = size_pair(input_size)
    if channels is not None:
        hints["channels"] = channels
    return hints


def _options(values: dict[str, Any]) -> Any:
    keys = ("solver", "lr", "lr_schedule", "lr_drop_factor", "lr_drop_period", "batch_size", "momentum", "l2",
            "split", "val_every", "shuffle", "augment", "device", "seed", "cache", "workers")
    chosen = {k: values[k] for k in keys}
    if values["epochs"] is not None:
        chosen["epochs"] = values["epochs"]
    return TrainOptions(**chosen)


def _report(result: Any, as_json: bool) -> None:
    if not result.files:  # distributed (issue 6): only rank 0 writes and reports
        return
    if as_json:
        print_json({"checkpoint": str(result.checkpoint), "out": str(result.out),
                    "files": {k: str(v) for k, v in result.files.items()}, "metrics": result.metrics})
        return
    click.echo(f"saved {result.checkpoint}")
    click.echo(f"      {result.files['history']}, {result.files['plot']}")
    click.echo(f"next: zoo evaluate {result.checkpoint} --data DIR   |   zoo predict {result.checkpoint} IMAGE")


def _interruptible(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a training call; Ctrl-C ends with 'interrupted: ...' and exit status 130, not 'error:'."""
    try:
        return call(*args, **kwargs)
    except TrainingInterrupted as exc:
        click.echo(f"interrupted: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None


def _weights_value(weights: str) -> Any:
    return False if weights == "none" else weights


@distributed_options
@click.command("train", epilog=_DEFAULTS_NOTE)
@click.argument("model", type=Text("a model"))
@_training_options
@click.option("--classes", "num_classes", type=CLASSES, default=None,
              help="Expected number of classes (checked against the folders).")
@click.option("--weights", default="none", show_default=True, type=Text("weights"),
              help="Start from pretrained weights: none, auto, a tag, or a FILE loaded as pretrained.")
@_network_options
def train_command(model: str, data: str, val: str | None, adapter: str, out: str | None, resume: bool,
                  progress: bool | None, as_json: bool, num_classes: int | None, weights: str,
                  input_size: str | None, channels: int | None, feature_cache: bool, **values: Any) -> None:
    """Train MODEL on --data. MODEL is a registry name, a layer array file as the lecture
    writes it (lab6.m), a Python network (net.py:make_net) or a zoo checkpoint to continue.

    \b
    Lab 6:  zoo train digitnet --data digits --epochs 4 --val-every 30
    Own:    zoo train lab6.m --data digits --epochs 4 --val-every 30
    Writes OUT/model.safetensors, OUT/history.csv and OUT/training-progress.png;
    an earlier run in OUT is replaced when this one finishes.
    """
    hints = _hints(input_size, channels)
    result = _interruptible(train, model, data, options=_options(values), val=val, adapter=adapter, out=out,
                            num_classes=num_classes, pretrained=_weights_value(weights), resume=resume,
                            progress=False if as_json else progress, card=hints, feature_cache=feature_cache)
    _report(result, as_json)


@distributed_options
@click.command("finetune", epilog=_DEFAULTS_NOTE)
@click.argument("model", type=Text("a model"))
@_training_options
@click.option("--classes", type=CLASSES, required=True, help="Number of classes of the new head (must match the folders).")
@click.option("--weights", default="auto", show_default=True, type=Text("weights"),
              help="Pretrained weights: auto (file, caches, weights plugins, network), a tag, a FILE, or none.")
@click.option("--freeze", type=click.Choice(["none", "backbone"]), default=None,
              help="backbone: train the new head only (robust on small sets: a few iterations cannot "
                   "re-estimate batch-norm statistics); none: train every layer.  "
                   "[default: backbone; none with --weights none]")
@click.option("--head-lr-factor", type=_rule("head_lr_factor"), default=10.0, show_default=True,
              help="The head learns this many times faster (MATLAB WeightLearnRateFactor).")
def finetune_command(model: str, data: str, val: str | None, adapter: str, out: str | None, resume: bool,
                     progress: bool | None, as_json: bool, classes: int, weights: str, freeze: str | None,
                     head_lr_factor: float, feature_cache: bool, **values: Any) -> None:
    """Transfer learning: MODEL's pretrained weights, a new head of --classes outputs, then train.

    \b
    Lab 5:  zoo finetune alexnet --data Images --classes 2 --split 0.8 --lr 0.001 --batch-size 64
    Offline: zoo finetune efficientnet_lite0 --data Images --classes 2
    MODEL may also be a zoo checkpoint; its weights are the starting point.
    """
    result = _interruptible(finetune, model, data, classes=classes, weights=_weights_value(weights), freeze=freeze,
                      head_lr_factor=head_lr_factor, options=_options(values), val=val, adapter=adapter, out=out,
                      resume=resume, progress=False if as_json else progress, feature_cache=feature_cache)
    _report(result, as_json)
