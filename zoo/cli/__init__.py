"""The ``zoo`` command: a lazy click group, so ``zoo --help`` and ``zoo list`` never import torch.

Each subcommand lives in its own module and is imported only when it runs (click's
"lazy group" pattern). Commands stay thin: the work happens in functions the Python API
and the tests call directly.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings
from typing import Any

import click

from zoo import __version__, settings
from zoo.cli.boundary import DEBUG_FLAG, error_text, outcome
from zoo.errors import ZooError, close_matches

__all__ = ["main", "cli", "error_text"]

# name -> ("module:attr", one-line help shown by `zoo --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("zoo.cli.catalog:list_command", "List models, model families and dataset adapters."),
    "info": ("zoo.cli.catalog:info_command", "Describe a model: its card and a layer table."),
    "plugins": ("zoo.cli.catalog:plugins_command", "List installed plugins and their health."),
    "doctor": ("zoo.cli.doctor:doctor_command", "Check the installation: versions, providers, caches."),
    "data": ("zoo.cli.data:data_group", "Make, inspect and check datasets."),
    "train": ("zoo.cli.train:train_command", "Train a registered model from scratch on a folder of images."),
    "finetune": ("zoo.cli.train:finetune_command", "Transfer-learn a pretrained model to new classes."),
    "evaluate": ("zoo.cli.evaluate:evaluate_command", "Accuracy, per-class metrics and confusion matrix."),
    "predict": ("zoo.cli.predict:predict_command", "Classify images with a checkpoint, ONNX file or model."),
    "features": ("zoo.cli.features:features_command", "Extract activations at a named layer."),
    "export": ("zoo.cli.export:export_command", "Export to a self-describing ONNX file, checked against torch."),
    "bench": ("zoo.cli.bench:bench_command", "Latency and throughput: torch vs onnxruntime."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name][0].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("zoo"):
                return None  # not built yet
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = click.utils.make_str(args[0])
        if name not in COMMANDS and not name.startswith("-"):
            raise ZooError(f"no command '{name}'.{close_matches(name, COMMANDS)} See: zoo --help")
        return super().resolve_command(ctx, args)


_EXIT_STATUSES = """
\b
Exit status: 0 done, 1 a bug (rerun with --debug and report it), 2 a bad value or
input, 3 cannot write (disk full, read-only), 4 the hardware (no GPU, out of memory),
5 another run is using --out, 130 interrupted. See docs/faults.md.
"""


@click.group(cls=LazyGroup, epilog=_EXIT_STATUSES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="zoo")
@click.option(DEBUG_FLAG, is_flag=True, expose_value=False,
              help="Show the traceback of an error (also ZOO_DEBUG=1); accepted anywhere on the line.")
def cli() -> None:
    """zoo: a model zoo for PyTorch. Train, transfer-learn, export to ONNX, run anywhere.

    \b
    Lecture labs:
      zoo data make-digits digits/          # 10 x 1000 synthetic digits
      zoo train digitnet --data digits/     # Lab 6: CNN from scratch
      zoo finetune alexnet --data Images --classes 2   # Lab 5: transfer learning
      zoo export runs/digitnet/model.safetensors       # ONNX for any app
    """


_python_showwarning = warnings.showwarning


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """zoo's own warnings (e.g. zoo.data.DataWarning: files skipped) as one ``warning: ...`` line."""
    if category.__module__.startswith("zoo"):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every failure ends as one line on stderr and the exit status of its
    kind (see :mod:`zoo.errors`); ``--debug`` anywhere on the line, or ``ZOO_DEBUG=1``, adds the traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in args or settings.debug()
    args = [a for a in args if a != DEBUG_FLAG]
    warnings.showwarning = _show_warning
    try:
        cli.main(args=args, prog_name="zoo", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the boundary: each kind gets its line and exit status
        _end(exc, args, debug)
    except KeyboardInterrupt as exc:
        _end(exc, args, debug)


def _end(exc: BaseException, args: list[str], debug: bool) -> None:
    code, line = outcome(exc, args)
    if debug:
        traceback.print_exception(exc)
    click.echo(line, err=True)
    sys.exit(code)
