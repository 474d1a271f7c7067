"""Checkpoints: safetensors weights with the model card in the header metadata.

Reading a card needs no torch (the header is JSON after an 8-byte length), so ``zoo info``
and the resolver can describe a checkpoint without building it. Opening a checkpoint runs
no code from it: loading never unpickles, and the network is built by the installed catalog
entry the card names (see :func:`zoo.models.build`); the file supplies only tensors and
checked, typed card fields.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.atomic import atomic_path
from zoo.card import CardError, ModelCard
from zoo.errors import ZooError, first_line

if TYPE_CHECKING:
    from zoo.models import Built

__all__ = ["read_card", "save", "load_state", "load"]

_MAX_HEADER = 100 * 1024 * 1024


def read_card(path: str | Path) -> ModelCard:
    """The card stored in a zoo checkpoint's header, without reading the tensors."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ZooError(f"'{path}' is not a safetensors file (too short)")
            (length,) = struct.unpack("<Q", raw)
            if length > _MAX_HEADER:
                raise ZooError(f"'{path}' is not a safetensors file")
            header = json.loads(fh.read(length))
    except FileNotFoundError:
        raise ZooError(f"checkpoint '{path}' does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise ZooError(f"'{path}' is not a readable safetensors file: {first_line(exc)}") from None
    except RecursionError:
        raise ZooError(f"'{path}' is not a readable safetensors file: its header is nested too deeply") from None
    if not isinstance(header, dict):
        raise ZooError(f"'{path}' is not a safetensors file: its header is JSON, but not an object")
    try:
        return ModelCard.from_metadata(header.get("__metadata__") or {})
    except (CardError, ValueError, TypeError) as exc:
        raise ZooError(f"'{path}' holds no zoo model card ({exc}); load it with --weights FILE instead") from None


def save(path: str | Path, model: Any, card: ModelCard) -> Path:
    """Write ``model``'s weights and ``card`` atomically (temporary name, then rename)."""
    from safetensors.torch import save_file  # torch: reading cards stays torch-free

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=card.to_metadata())
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file  # torch: reading cards stays torch-free

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ZooError(f"'{path}' is not a readable safetensors file: {first_line(exc)}") from None


def load(path: str | Path, *, network: Any = None) -> Built:
    """Rebuild a checkpoint's network with the installed catalog and load its tensors.

    ``network``: for a network defined in Python, its ``FILE.py:NAME`` again (or the
    ``nn.Module``); the file names it only as text, which zoo never imports.
    Returns :class:`zoo.models.Built` ``(module, card)``; the card knows labels and preprocessing.
    """
    from zoo.models import Built, build  # torch: reading cards stays torch-free

    card = read_card(path)
    module = build(card).module if network is None else _user_network(path, card, network)
    state = load_state(path)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or reshaped:
        raise ZooError(
            f"'{path}' does not match model '{card.name}' as installed "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(reshaped)} differently shaped tensors)"
        )
    module.load_state_dict(state)
    return Built(module.eval(), card)


def _user_network(path: str | Path, card: ModelCard, network: Any) -> Any:
    """The module a user gave for a checkpoint of a Python network."""
    from zoo.networks import build_python, python_factory  # torch, and the user's code
    from zoo.registry import PYTHON_SOURCE

    if card.source != PYTHON_SOURCE:
        raise ZooError(f"'{path}' holds {card.source} model '{card.name}', which zoo builds itself; "
                       f"--network is only for networks defined in Python")
    if isinstance(network, (str, Path)):
        return build_python(python_factory(network)[0], card.num_classes)
    return network
