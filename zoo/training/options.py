"""Training options: MATLAB's ``trainingOptions``, one typed record.

Defaults follow MATLAB's where that is good practice, and differ where noted (see
docs/training.md for why):

=====================  ==========================  ===========================
option                 MATLAB default              zoo default
=====================  ==========================  ===========================
solver                 (required)                  sgdm
lr                     0.01 sgdm, 0.001 adam/rmsp  same (``None`` = by solver)
momentum               0.9                         0.9
l2                     1e-4                        1e-4
epochs                 30                          10  (differs)
batch_size             128                         128
lr_schedule            none                        none
lr_drop_factor         0.1                         0.1
lr_drop_period         10 (epochs)                 10
shuffle                once                        every-epoch  (differs)
val_every              50 (iterations)             50
split                  (no validation)             0.75 per label (differs)
device                 auto                        auto
cache                  —                           auto (see zoo.data.sources)
workers                —                           None (min(4, cores))
=====================  ==========================  ===========================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoo.data.sources import CACHE_MODES
from zoo.device import DEVICES
from zoo.errors import ZooError
from zoo.values import MAX_SEED, real, shown, whole

__all__ = ["TrainOptions", "SOLVERS", "SCHEDULES", "SHUFFLES", "DEVICES", "MAX_SEED", "default_lr", "option_problem", "check_option"]

SOLVERS = ("sgdm", "adam", "rmsprop")
SCHEDULES = ("none", "piecewise", "cosine")
SHUFFLES = ("every-epoch", "once", "never")
MAX_WORKERS = 256

_COUNT = ("a whole number from 1 up", True, lambda v: v >= 1)
#: option -> (what it must be, whole numbers only, the test): one rule for TrainOptions and the zoo train flags
_NUMBERS: dict[str, tuple[str, bool, Callable[[float], bool]]] = {
    "lr": ("a positive number", False, lambda v: v > 0),
    "momentum": ("in [0, 1)", False, lambda v: 0 <= v < 1),
    "l2": ("zero or a positive number", False, lambda v: v >= 0),
    "lr_drop_factor": ("in (0, 1]", False, lambda v: 0 < v <= 1),
    "split": ("in (0, 1] (the training fraction; 1 = no validation)", False, lambda v: 0 < v <= 1),
    "head_lr_factor": ("a positive number", False, lambda v: v > 0),  # finetune's
    "epochs": _COUNT, "batch_size": _COUNT, "val_every": _COUNT, "lr_drop_period": _COUNT,
    "seed": (f"a whole number from 0 to {MAX_SEED}", True, lambda v: 0 <= v <= MAX_SEED),
    "workers": (f"a whole number from 0 to {MAX_WORKERS} (0 decodes in the training process)", True,
                lambda v: 0 <= v <= MAX_WORKERS),
}
_CHOICES = {"solver": SOLVERS, "lr_schedule": SCHEDULES, "shuffle": SHUFFLES, "device": DEVICES, "cache": CACHE_MODES}
#: options whose None means "decide for me"
_OPTIONAL = {"lr", "workers"}


def default_lr(solver: str) -> float:
    """MATLAB's InitialLearnRate default: 0.01 for sgdm, 0.001 for adam and rmsprop."""
    return 0.01 if solver == "sgdm" else 0.001


@dataclass
class TrainOptions:
    """The knobs of one training run (MATLAB ``trainingOptions`` names in comments)."""

    # solver
    solver: str = "sgdm"  # solverName
    lr: float | None = None  # InitialLearnRate; None: 0.01 for sgdm, 0.001 otherwise
    momentum: float = 0.9  # Momentum (sgdm)
    l2: float = 1e-4  # L2Regularization
    lr_schedule: str = "none"  # LearnRateSchedule: none, piecewise, cosine
    lr_drop_factor: float = 0.1  # LearnRateDropFactor (piecewise)
    lr_drop_period: int = 10  # LearnRateDropPeriod, in epochs (piecewise)

    # data
    epochs: int = 10  # MaxEpochs
    batch_size: int = 128  # MiniBatchSize
    shuffle: str = "every-epoch"  # Shuffle
    split: float = 0.75  # splitEachLabel fraction for training; 1.0: no validation
    val_every: int = 50  # ValidationFrequency, in iterations
    augment: str = "none"  # imageDataAugmenter: "flip,rotate=10,scale=0.9:1.1,translate=3" or "none"

    # environment
    device: str = "auto"  # ExecutionEnvironment: auto, cpu, cuda
    seed: int = 0
    cache: str = "auto"  # where decoded pixels live: auto, memory, disk, none (zoo.data.sources)
    workers: int | None = None  # decoding processes when streaming; None: min(4, cores)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else default_lr(self.solver)

    def validate(self) -> TrainOptions:
        """Raise ZooError naming the option (``--lr must be a positive number, not inf``) when a
        value is out of range; whole-number options become ``int``."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _OPTIONAL and value is None:
                continue
            if field.name == "augment":
                from zoo.data.augment import (
                    AugmentSpec,  # torch-free; raises '--augment: ...'
                )

                AugmentSpec.parse(value)
                continue
            problem = option_problem(field.name, value)
            if problem:
                raise ZooError(f"--{field.name.replace('_', '-')} {problem}")
            if field.name in _NUMBERS and _NUMBERS[field.name][1]:
                setattr(self, field.name, int(value))
        return self

    def replace(self, **changes: Any) -> TrainOptions:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise ZooError(f"unknown training option(s) {', '.join(sorted(unknown))}; known: {known}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, with the effective learning rate filled in (stored in checkpoints)."""
        values = dataclasses.asdict(self)
        values["lr"] = self.learning_rate
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the training option ``name`` (``"must be ..., not ..."``), or None.

    The one rule behind :meth:`TrainOptions.validate` and the ``zoo train``/``zoo finetune``
    flags: numbers must be finite and in range, whole where a count is meant; choices must be known.
    """
    if name in _CHOICES:
        choices = _CHOICES[name]
        return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"
    requirement, whole_only, test = _NUMBERS[name]
    number = whole(value) if whole_only else real(value)
    return None if number is not None and test(number) else f"must be {requirement}, not {shown(value)}"


def check_option(name: str, value: Any) -> Any:
    """``value`` when it suits the option ``name`` (whole-number options as ``int``), else the one-line
    ``ZooError``: for Python callers of functions that take one option, e.g. ``evaluate(batch_size=)``."""
    problem = option_problem(name, value)
    if problem:
        raise ZooError(f"--{name.replace('_', '-')} {problem}")
    return int(value) if name in _NUMBERS and _NUMBERS[name][1] else value

