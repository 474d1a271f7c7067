"""Training: ``train`` (MATLAB ``trainNetwork``), ``finetune`` (transfer learning), options and results.

Exposed as ``zoo.train`` / ``zoo.finetune`` through zoo's lazy table; the package is named
``training`` so that the function ``zoo.train`` is never shadowed by a submodule.
"""

from __future__ import annotations

from zoo.training.api import TrainingInterrupted, TrainResult, finetune, train
from zoo.training.loop import Callback, Trainer
from zoo.training.options import TrainOptions

__all__ = ["train", "finetune", "TrainOptions", "TrainResult", "TrainingInterrupted", "Trainer", "Callback"]
