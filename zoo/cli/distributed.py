"""Command-line side: the ``--nproc``/``--nnodes``/... options and turning a command into workers.

``@distributed_options`` goes on top of a click command (``zoo train``, ``zoo finetune``).
With ``--nproc N`` (N > 1) or ``--nnodes`` the command does not train: it becomes torchrun's
agent and starts N workers running the same command line minus the launch options. Inside
a worker (or under a plain ``torchrun -m zoo ...``) the command trains as one rank of the job.
"""

from __future__ import annotations

import functools
import os
from pathlib import PurePath
from typing import Any

import click
from click.core import ParameterSource

from zoo.cli.output import warn
from zoo.cli.types import ENDPOINT, NNODES, positive, whole
from zoo.data import open_dataset
from zoo.distributed.job import DEFAULT_TIMEOUT, MAX_TIMEOUT_S, configure, settings
from zoo.distributed.launch import RDZV_BACKENDS, launch
from zoo.errors import ResourceError, ZooError
from zoo.resolver import resolve_card

__all__ = ["distributed_options", "worker_argv", "LAUNCH_PARAMS"]

LAUNCH_PARAMS = ("nproc", "nnodes", "node_rank", "rdzv_endpoint", "rdzv_backend")
_FLAGS = {name: "--" + name.replace("_", "-") for name in LAUNCH_PARAMS}
MAX_PROCESSES = 1024  # per machine: more is a typo, not a job


def _options() -> list[click.Option]:
    return [
        click.Option(["--nproc"], type=whole(1, MAX_PROCESSES), default=None, metavar="N",
                     help=f"Train with N processes on this machine, 1 to {MAX_PROCESSES} (DDP: one per GPU, or "
                          "CPU processes), started by torch's elastic launcher. Default: one process."),
        click.Option(["--nnodes"], type=NNODES, default=None, metavar="N|MIN:MAX",
                     help="Machines in the job; run the same zoo command on each (needs --rdzv-endpoint)."),
        click.Option(["--node-rank"], type=whole(0), default=None, metavar="RANK",
                     help="This machine's index, 0 on the first (--rdzv-backend static only)."),
        click.Option(["--rdzv-endpoint"], type=ENDPOINT, default=None, metavar="HOST:PORT",
                     help="Where the workers meet: the first machine and a free port "
                          "(default on one machine: 127.0.0.1 and a free port)."),
        click.Option(["--rdzv-backend"], type=click.Choice(RDZV_BACKENDS), default=None,
                     help="Rendezvous backend (default c10d)."),
        click.Option(["--sync-bn"], is_flag=True, default=False,
                     help="Synchronise batch-norm statistics across workers (SyncBatchNorm; CUDA only)."),
        click.Option(["--dist-timeout"], type=positive(MAX_TIMEOUT_S, "seconds"), default=None, metavar="SECONDS",
                     help=f"Give up when the workers cannot meet, or one collective waits, this long "
                          f"(default {DEFAULT_TIMEOUT:g})."),
    ]


def distributed_options(command: click.Command) -> click.Command:
    """Add the distributed options to ``command`` and launch workers when they ask for it."""
    command.params.extend(_options())
    inner = command.callback

    @functools.wraps(inner)
    def callback(*args: Any, **kwargs: Any) -> Any:
        launch_opts = {name: kwargs.pop(name) for name in LAUNCH_PARAMS}
        timeout = kwargs.pop("dist_timeout")
        configure(sync_bn=kwargs.pop("sync_bn"), timeout=timeout)
        wanted = {name: value for name, value in launch_opts.items() if value is not None}
        in_worker = "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ
        if not wanted or wanted == {"nproc": 1}:
            if not in_worker and _sync_bn_flag():
                warn("--sync-bn has no effect in a single process; it applies with --nproc N or under torchrun")
            return inner(*args, **kwargs)
        if in_worker:
            given = ", ".join(_FLAGS[name] for name in wanted)
            raise ZooError(f"this process is already a worker started by torchrun; leave out {given}")

        ctx = click.get_current_context()
        _check_inputs(ctx.params)
        _check_devices(ctx.params.get("device", "auto"), launch_opts["nproc"] or 1)
        launch(worker_argv(ctx, drop=LAUNCH_PARAMS), nproc=launch_opts["nproc"] or 1,
               timeout=timeout or DEFAULT_TIMEOUT,
               **{name: launch_opts[name] for name in LAUNCH_PARAMS if name != "nproc"})
        return None

    command.callback = callback
    return command


def _sync_bn_flag() -> bool:
    return bool(settings()["sync_bn"])


def _check_inputs(params: dict[str, Any]) -> None:
    """The model and data every worker would open: a wrong name fails here, once, before any worker starts."""
    if params.get("model"):
        resolve_card(params["model"])
    for key in ("data", "val"):
        if params.get(key):
            open_dataset(params[key], params.get("adapter") or "folder")


def _check_devices(device: str, nproc: int) -> None:
    """Mistakes every worker would make alike, caught once before any worker starts."""
    import torch  # only when workers are launched: 'zoo train --help' stays torch-free

    gpus = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    if device == "cuda" and gpus == 0:
        raise ResourceError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    if gpus and nproc > gpus:
        raise ResourceError(f"--nproc {nproc} needs {nproc} GPUs, torch sees {gpus}; use --nproc {gpus} "
                       f"(one worker per GPU) or --device cpu")
    if _sync_bn_flag() and not gpus:
        raise ResourceError("--sync-bn needs CUDA GPUs (torch's SyncBatchNorm has no CPU kernels); "
                       "leave it out for CPU workers")


def worker_argv(ctx: click.Context, drop: tuple[str, ...] = ()) -> list[str]:
    """The command line that reproduces ``ctx``'s command as the user typed it, minus ``drop``.

    Only values the user gave (command line or prompt) are written; defaults and environment
    variables reach the workers by themselves. Options come first, then ``--`` and the arguments.
    """
    options: list[str] = []
    arguments: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name in drop or name not in ctx.params:
            continue
        if ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT):
            continue
        value = ctx.params[name]
        if isinstance(param, click.Argument):
            arguments.extend(_text(v) for v in _items(value, param.nargs != 1))
        elif isinstance(param, click.Option):
            options.extend(_option_tokens(param, value))
    path = ctx.command_path.split()[1:]
    return [*path, *options, *(["--", *arguments] if arguments else [])]


def _option_tokens(param: click.Option, value: Any) -> list[str]:
    flag = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
    if param.count:
        return [flag] * int(value or 0)
    if param.is_flag:
        if param.is_bool_flag:
            if value:
                return [flag]
            return [param.secondary_opts[0]] if param.secondary_opts else []
        return [flag] if value == param.flag_value else []
    tokens: list[str] = []
    for item in _items(value, param.multiple):
        if item is None:
            continue
        parts = [_text(v) for v in (item if param.nargs != 1 else [item])]
        tokens += [f"{flag}={parts[0]}"] if len(parts) == 1 and flag.startswith("--") else [flag, *parts]
    return tokens


def _items(value: Any, many: bool) -> list[Any]:
    if value is None:
        return []
    return list(value) if many else [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int, PurePath)):
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, (str, int)):  # enum choices
        return str(value.value)
    raise ZooError(f"cannot pass a value of type {type(value).__name__} to the workers; use one process")
