"""A student's own network, written as a MATLAB layer array: text -> spec (plain data) -> torch.

``parse_layers`` reads ``layers = [imageInputLayer([28 28 1]) ...];``; ``validate_layers`` checks a
spec from an untrusted file; ``card_fields``, ``output_shapes`` and ``describe`` read a spec without
torch; ``build_network`` builds it (imported on first use: ``import zoo.layers`` imports no torch).
"""

from __future__ import annotations

from typing import Any

from zoo.layers.parse import describe, parse_layers
from zoo.layers.spec import (
    LAYER_TYPES,
    NORMALIZATIONS,
    card_fields,
    output_shapes,
    set_num_classes,
    validate_layers,
)

__all__ = ["parse_layers", "validate_layers", "set_num_classes", "card_fields", "output_shapes", "describe",
           "build_network", "LAYER_TYPES", "NORMALIZATIONS"]


def __getattr__(name: str) -> Any:
    if name == "build_network":
        # torch: imported only when a network is built
        from zoo.layers.build import build_network

        return build_network
    raise AttributeError(f"module 'zoo.layers' has no attribute {name!r}")
