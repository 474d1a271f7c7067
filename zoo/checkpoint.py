"""Checkpoints: safetensors weights with the model card in the header metadata.

Reading a card needs no torch (the header is JSON after an 8-byte length), so ``zoo info``
and the resolver can describe a checkpoint without building it. Loading never unpickles.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from zoo.card import CardError, ModelCard
from zoo.errors import ZooError

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
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ZooError(f"'{path}' is not a readable safetensors file: {exc}") from None
    try:
        return ModelCard.from_metadata(header.get("__metadata__") or {})
    except (CardError, ValueError, TypeError) as exc:
        raise ZooError(f"'{path}' holds no zoo model card ({exc}); load it with --weights FILE instead") from None


def save(path: str | Path, model: Any, card: ModelCard) -> Path:
    """Write ``model``'s weights and ``card`` atomically (temporary name, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata=card.to_metadata())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def load(path: str | Path, *, device: str = "cpu") -> Any:
    """Rebuild a checkpoint's model from the registry; it knows its labels and preprocessing."""
    from zoo.classifier import Classifier
    from zoo.models import build

    card = read_card(path)
    base = card.replace(num_classes=card.num_classes)
    model = build(base)
    missing, unexpected = model.load_state_dict(load_state(path), strict=False)
    if missing or unexpected:
        raise ZooError(
            f"'{path}' does not match model '{card.name}' "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors)"
        )
    return Classifier(model.to(device).eval(), card)
