"""zoo: a plugin-based model zoo and registry for PyTorch.

Importing ``zoo`` is cheap: the registry functions read catalogs only, and everything
that needs torch is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from zoo.card import ModelCard, WeightSource
from zoo.errors import ZooError
from zoo.registry import dataset_info, list_datasets, list_models, model_info, plugins

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
]

# name -> "module:attr", imported on first access (PEP 562) so `import zoo` stays torch-free.
# No function shares its name with a submodule: importing zoo.x binds the module as zoo.x.
# (ONNX export is `from zoo.export import export`.)
_LAZY = {
    "create_model": "zoo.models:create_model",
    "resolve": "zoo.resolver:resolve",
    "load": "zoo.checkpoint:load",
    "train": "zoo.training:train",  # package "training": a submodule "train" would shadow zoo.train()
    "finetune": "zoo.training:finetune",
    "evaluate": "zoo.evaluation:evaluate",  # module "evaluation", for the same reason
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
