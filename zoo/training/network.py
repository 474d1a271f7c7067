"""The network a run trains, with a head for the data's classes, and where the run writes.

Anything the resolver takes (a registry name, a checkpoint to continue, a layer array, a
Python network ``FILE.py:NAME``) or an ``nn.Module`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from zoo.card import ModelCard
from zoo.errors import ZooError
from zoo.heads import num_outputs, replace_head, set_num_classes
from zoo.layers import set_num_classes as set_layer_outputs
from zoo.models import Built, build
from zoo.networks import check_forward, module_card
from zoo.resolver import kind_of, resolve, resolve_card

__all__ = ["model_to_train", "resumed_model", "check_classes", "model_card", "default_out"]


def model_card(model: Any, hints: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of what is to be trained, without building it (except a module, which is built)."""
    if isinstance(model, nn.Module):
        return module_card(model, hints)
    return resolve_card(model, hints=hints)


def default_out(name: str) -> Path:
    """``runs/<model-name>/`` with path separators of the name flattened."""
    return Path("runs") / name.replace("/", "-").replace(":", "-")


def check_classes(found: Sequence[str], wanted: int | None, data: Any, flag: str) -> None:
    if wanted is not None and wanted != len(found):
        shown = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
        raise ZooError(f"{flag} {wanted} disagrees with the {len(found)} class folder(s) in '{data}' ({shown}); "
                       f"use {flag} {len(found)} or fix the folders")


def model_to_train(model: Any, classes: list[str], *, finetuning: bool, pretrained: Any,
                   hints: Mapping[str, Any] | None = None) -> Built:
    """The network to train, with a head of ``len(classes)`` outputs, and its card."""
    n = len(classes)
    if isinstance(model, nn.Module):
        card = module_card(model, hints)
        if num_outputs(model) != n:
            set_num_classes(model, n)
        card = card.replace(num_classes=n, labels=tuple(classes))
        check_forward(model, card, f"the {type(model).__name__} module")
        return Built(model, card)
    kind = kind_of(model)
    if kind == "checkpoint" and not finetuning:
        card = resolve_card(model)
        if card.num_classes != n or (card.labels and list(card.labels) != classes):
            raise ZooError(f"checkpoint '{model}' was trained on {card.num_classes} classes "
                           f"({', '.join(card.class_names[:8])}), the data has {n} ({', '.join(classes[:8])}); "
                           f"to train it on new classes use 'zoo finetune {model} --classes {n}'")
    if kind == "layers" and not finetuning:
        _check_layer_head(model, resolve_card(model), n)
    if kind == "checkpoint":  # training continues from that file
        module, card = resolve(model)
        started = {"tag": "checkpoint", "path": str(model)}
        replaced = replace_head(module, n)
        if replaced is not None:
            started["replaced"] = replaced
        card = card.replace(num_classes=n, extra={**card.extra, "pretrained": started})
    else:
        module, card = resolve(model, num_classes=n, pretrained=pretrained, hints=hints)
        if kind == "python":
            check_forward(module, card, f"'{model}'")
    if card.layers:  # the stored layer list names the head as trained
        card = card.replace(layers=tuple(set_layer_outputs(list(card.layers), n)))
    return Built(module, card.replace(labels=tuple(classes)))


def _check_layer_head(path: Any, card: ModelCard, n: int) -> None:
    """A layer array's last fullyConnectedLayer must fit the data, as MATLAB's trainNetwork checks."""
    if card.num_classes == n:
        return
    head = next((layer for layer in reversed(card.layers) if layer.get("type") == "fullyconnected"), {})
    where = f"{Path(str(path)).name}:{head['line']}: " if "line" in head else f"{path}: "
    raise ZooError(f"{where}the last fullyConnectedLayer has {card.num_classes} outputs, the data has {n} "
                   f"classes: change it to fullyConnectedLayer({n})")


def resumed_model(model: Any, card: ModelCard, classes: list[str], out: Path, data: Any) -> Built:
    """The model of an interrupted run, which must be the one asked for, on the same classes."""
    asked = model_card(model).name
    if asked != card.name:
        raise ZooError(f"the interrupted run in '{out}' trains {card.name}, not {asked}; "
                       f"resume it with 'zoo train {card.name} ... --resume' or pick another --out")
    if card.labels != tuple(classes):
        raise ZooError(f"the interrupted run in '{out}' trained on classes {', '.join(card.labels)}, "
                       f"'{data}' has {', '.join(classes)}; resume with the same data")
    if isinstance(model, nn.Module):
        return Built(model, card)
    if kind_of(model) == "python":
        return Built(resolve(model, num_classes=card.num_classes, hints=card_hints(card)).module, card)
    return build(card)


def card_hints(card: ModelCard) -> dict[str, Any]:
    return {"input_size": card.input_size, "channels": card.channels}
