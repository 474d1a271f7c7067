"""Resumable training state: one safetensors file, no pickle.

Tensors (weights, optimizer buffers, RNG states) are safetensors tensors; everything
else (position, history, options, optimizer hyper-parameters) is JSON in the header.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from zoo.atomic import atomic_path
from zoo.card import CardError, ModelCard
from zoo.errors import ZooError, first_line
from zoo.training.options import TrainOptions
from zoo.transfer import FREEZE_CHOICES

__all__ = ["RESUME_FILE", "save_state", "load_state", "resume_settings", "restore"]

RESUME_FILE = "resume.safetensors"
_FORMAT = "zoo-resume/1"


def save_state(path: str | Path, state: dict[str, Any], extra: dict[str, Any]) -> Path:
    """Write a trainer ``state`` (see ``Trainer.state``) plus JSON-able ``extra`` atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state["model"].items():
        tensors[f"model/{key}"] = value.detach().cpu().clone().contiguous()
    for key, value in state["rng"].items():
        tensors[f"rng/{key}"] = value.cpu().clone()
    scalars: dict[str, dict[str, Any]] = {}
    for index, buffers in state["optimizer"]["state"].items():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    header = {
        "param_groups": state["optimizer"]["param_groups"],
        "optim_scalars": scalars,
        "position": {k: state[k] for k in ("epoch", "iteration", "seconds", "images_seen")},
        "history": state["history"],
        **extra,
    }
    metadata = {"format": _FORMAT, "state": json.dumps(header)}
    with atomic_path(path) as tmp:  # a full disk: OutputError naming the file, no temporary left
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_state(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`save_state`: (trainer state, extra)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"no resumable state at '{path}': --resume continues a run that was interrupted with Ctrl-C")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ZooError(f"'{path}' is not a readable resume state ({exc}); delete it and train again") from None
    if metadata.get("format") != _FORMAT:
        raise ZooError(f"'{path}' is not a zoo resume state")
    header = json.loads(metadata["state"])
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    rng = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for index, values in header.pop("optim_scalars").items():
        optim_state.setdefault(int(index), {}).update(values)
    state = {"model": model, "rng": rng,
             "optimizer": {"state": optim_state, "param_groups": header.pop("param_groups")},
             "history": header.pop("history"), **header.pop("position")}
    return state, header


def resume_settings(extra: dict[str, Any], path: Path) -> tuple[TrainOptions, str, float, ModelCard]:
    """Options, freeze, head learning-rate factor and card of a resume state, each checked:
    the file is data (its card names a catalog model; nothing in it is imported)."""
    try:
        options = TrainOptions.from_dict(extra["options"])
        freeze, factor = extra["freeze"], float(extra["head_lr_factor"])
        card = ModelCard.from_metadata(extra["card"])
    except (KeyError, TypeError, ValueError, CardError, ZooError) as exc:
        raise ZooError(f"'{path}' is not a valid resume state ({exc}); delete it and train again") from None
    if freeze not in FREEZE_CHOICES or not factor > 0:
        raise ZooError(f"'{path}' is not a valid resume state (freeze {freeze!r:.40}, head factor {factor})")
    return options, freeze, factor, card


def restore(trainer: Any, state: dict[str, Any], path: Path, card: ModelCard) -> None:
    try:
        trainer.load_state(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ZooError(f"'{path}' does not fit {card.name} as installed ({first_line(exc)}); "
                       "delete it and train again") from None
