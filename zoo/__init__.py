"""zoo: a plugin-based model zoo and registry for PyTorch.

Importing ``zoo`` is cheap: the registry functions read catalogs only, and everything
that needs torch is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from zoo._version import __version__
from zoo.card import ModelCard, WeightSource
from zoo.catalogs import plugins
from zoo.errors import ZooError
from zoo.listing import list_datasets, list_models
from zoo.registry import dataset_info, model_info

__all__ = [
    "__version__",
    "ModelCard",
    "WeightSource",
    "ZooError",
    "list_models",
    "list_datasets",
    "model_info",
    "dataset_info",
    "plugins",
    "create_model",
    "resolve",
    "load",
    "train",
    "finetune",
    "evaluate",
    "split_each_label",
    "plot_network",
]

# name -> "module:attr", imported on first access (PEP 562) so `import zoo` stays torch-free.
# No function shares its name with a submodule: importing zoo.x binds the module as zoo.x.
# (ONNX export is `from zoo.export import export`.)
_LAZY = {
    "create_model": "zoo.models:create_model",
    "resolve": "zoo.resolver:resolve",
    "load": "zoo.classifier:load",
    "train": "zoo.training:train",  # package "training": a submodule "train" would shadow zoo.train()
    "finetune": "zoo.training:finetune",
    "evaluate": "zoo.evaluation:evaluate",  # module "evaluation", for the same reason
    "split_each_label": "zoo.data:split_each_label",  # MATLAB's splitEachLabel, on a dataset or a path
    "plot_network": "zoo.diagram:plot_network",  # MATLAB's plot(lgraph)
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
