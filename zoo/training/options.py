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
=====================  ==========================  ===========================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from zoo.device import DEVICES
from zoo.errors import ZooError

__all__ = ["TrainOptions", "SOLVERS", "SCHEDULES", "SHUFFLES", "DEVICES", "default_lr"]

SOLVERS = ("sgdm", "adam", "rmsprop")
SCHEDULES = ("none", "piecewise", "cosine")
SHUFFLES = ("every-epoch", "once", "never")


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

    def __post_init__(self) -> None:
        self.validate()

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else default_lr(self.solver)

    def validate(self) -> TrainOptions:
        """Raise ZooError naming the option when a value is out of range."""
        _choice("solver", self.solver, SOLVERS)
        _choice("lr-schedule", self.lr_schedule, SCHEDULES)
        _choice("shuffle", self.shuffle, SHUFFLES)
        _choice("device", self.device, DEVICES)
        if self.lr is not None and not self.lr > 0:
            raise ZooError(f"--lr must be positive, not {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ZooError(f"--momentum must be in [0, 1), not {self.momentum}")
        if self.l2 < 0:
            raise ZooError(f"--l2 must be zero or positive, not {self.l2}")
        if not 0 < self.lr_drop_factor <= 1:
            raise ZooError(f"--lr-drop-factor must be in (0, 1], not {self.lr_drop_factor}")
        for name in ("epochs", "batch_size", "val_every", "lr_drop_period"):
            if int(getattr(self, name)) < 1:
                raise ZooError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
            setattr(self, name, int(getattr(self, name)))
        if not 0 < self.split <= 1:
            raise ZooError(f"--split must be in (0, 1] (the training fraction; 1 = no validation), not {self.split}")
        self.seed = int(self.seed)
        if self.augment != "none":
            from zoo.data.augment import AugmentSpec  # torch-free; raises ZooError naming the bad part

            AugmentSpec.parse(self.augment)
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


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ZooError(f"--{name} must be one of {', '.join(choices)}, not {value!r}")
