"""``zoo.train`` and ``zoo.finetune``: MATLAB's ``trainNetwork``, returning a result object."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import zoo
from zoo.card import CardError, ModelCard
from zoo.checkpoint import save
from zoo.classifier import Classifier
from zoo.data import TensorSet, open_dataset, split_each_label, to_tensors
from zoo.data.augment import AugmentSpec, augment
from zoo.device import pick_device
from zoo.distributed import is_main, trainer_class
from zoo.errors import ZooError, first_line
from zoo.models import Built, build
from zoo.preprocess import Preprocess
from zoo.resolver import kind_of, resolve, resolve_card
from zoo.training.loop import HISTORY_FIELDS
from zoo.training.options import TrainOptions
from zoo.training.plot import plot_progress, write_history
from zoo.training.progress import make_progress
from zoo.training.state import RESUME_FILE, load_state, save_state
from zoo.transfer import FREEZE_CHOICES, param_groups

__all__ = ["train", "finetune", "TrainResult", "TrainingInterrupted", "default_out"]


class TrainingInterrupted(ZooError):
    """Training stopped early (Ctrl-C); a resumable state was saved."""

    exit_code = 130

    def __init__(self, message: str, state_path: Path) -> None:
        super().__init__(message)
        self.state_path = state_path


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: the saved ``model.safetensors``.
        out: the output folder (also holds ``history.csv`` and ``training-progress.png``).
        history: one dict per iteration (epoch, iteration, seconds, lr, loss, accuracy,
            val_loss, val_accuracy; validation values are ``None`` where none ran).
        metrics: train_acc, val_acc, val_loss, epochs, iterations, seconds, images_per_s.
        classifier: the trained model with its card, ready for ``classify``.
    """

    checkpoint: Path
    out: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    classifier: Any
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def card(self) -> ModelCard:
        return self.classifier.card


@dataclass(frozen=True)
class _Job:
    """One training run as asked for: what to train, on what, how, and where to write."""

    model: str | Path
    data: str | Path
    options: TrainOptions
    out: Path
    val: str | Path | None = None
    adapter: str = "folder"
    num_classes: int | None = None
    pretrained: Any = False
    freeze: str = "none"
    head_lr_factor: float = 1.0
    resume: bool = False
    progress: bool | None = None
    callbacks: tuple[Any, ...] = ()
    finetuning: bool = False


def default_out(name: str) -> Path:
    """``runs/<model-name>/`` with path separators of the name flattened."""
    return Path("runs") / name.replace("/", "-").replace(":", "-")


def _check_classes(found: Sequence[str], wanted: int | None, data: Any, flag: str) -> None:
    if wanted is not None and wanted != len(found):
        shown = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
        raise ZooError(f"{flag} {wanted} disagrees with the {len(found)} class folder(s) in '{data}' ({shown}); "
                       f"use {flag} {len(found)} or fix the folders")


def _model_to_train(job: _Job, classes: list[str]) -> Built:
    """The network to train, with a head of ``len(classes)`` outputs, and its card."""
    n = len(classes)
    if kind_of(job.model) == "checkpoint" and not job.finetuning:
        card = resolve_card(job.model)
        if card.num_classes != n or (card.labels and list(card.labels) != classes):
            raise ZooError(f"checkpoint '{job.model}' was trained on {card.num_classes} classes "
                           f"({', '.join(card.class_names[:8])}), the data has {n} ({', '.join(classes[:8])}); "
                           f"to train it on new classes use 'zoo finetune {job.model} --classes {n}'")
    module, card = resolve(job.model, num_classes=n, pretrained=job.pretrained)
    if kind_of(job.model) == "checkpoint":  # training continues from that file
        card = card.replace(extra={**card.extra, "pretrained": {"tag": "checkpoint", "path": str(job.model)}})
    return Built(module, card.replace(labels=tuple(classes)))


def _augmenter(options: TrainOptions) -> Any:
    """``f(uint8 batch, generator)`` for ``--augment`` (MATLAB's imageDataAugmenter), or None."""
    spec = AugmentSpec.parse(options.augment)
    if not spec.active:
        return None
    return lambda batch, generator: augment(batch, spec, generator)


def train(
    model: str | Path,
    data: str | Path,
    *,
    options: TrainOptions | None = None,
    val: str | Path | None = None,
    adapter: str = "folder",
    out: str | Path | None = None,
    num_classes: int | None = None,
    pretrained: Any = False,
    freeze: str = "none",
    head_lr_factor: float = 1.0,
    resume: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
    **option_overrides: Any,
) -> TrainResult:
    """Train ``model`` (registry name or checkpoint) on the labelled images in ``data``.

    Args:
        model: registry name (``digitnet``, ``timm/resnet18``) or a zoo checkpoint to continue from.
        data: dataset path, opened with ``adapter`` (labels from folder names for ``folder``).
        options: :class:`TrainOptions`; keyword ``option_overrides`` (``epochs=4``, ``lr=0.01``) change it.
        val: a separate validation set; without it ``options.split`` splits each label.
        out: output folder, default ``runs/<model-name>/``.
        num_classes: expected class count; disagreeing with the data is an error.
        pretrained: weights to start from: ``False``/``"none"``, ``"auto"``, a tag or a file.
        freeze: ``"backbone"`` trains the head only.
        head_lr_factor: the head's learning rate is ``lr * head_lr_factor``.
        resume: continue the interrupted run saved in ``out/resume.safetensors``.
        progress: ``None`` a bar on a terminal / plain lines otherwise, ``False`` silent.
        callbacks: :class:`zoo.training.loop.Callback` objects, called on every event.

    Returns:
        A :class:`TrainResult`. Raises :class:`TrainingInterrupted` after Ctrl-C.
    """
    options = (options or TrainOptions()).replace(**option_overrides)
    out = Path(out) if out is not None else default_out(resolve_card(model).name)
    return _run(_Job(model, data, options, out, val=val, adapter=adapter, num_classes=num_classes,
                     pretrained=pretrained, freeze=freeze, head_lr_factor=head_lr_factor, resume=resume,
                     progress=progress, callbacks=tuple(callbacks)))


def finetune(
    model: str | Path,
    data: str | Path,
    *,
    classes: int,
    weights: Any = "auto",
    freeze: str = "backbone",
    head_lr_factor: float = 10.0,
    **kwargs: Any,
) -> TrainResult:
    """Transfer learning: pretrained ``weights``, a new head of ``classes`` outputs, then :func:`train`.

    MATLAB's ``layers(end-2) = fullyConnectedLayer(N, 'WeightLearnRateFactor', 10)``.
    ``weights``: ``"auto"`` (caches, weights plugins, then the network), a file, or ``"none"``.
    ``freeze`` defaults to ``"backbone"``: on a small folder a full fine-tune runs too few
    iterations to re-estimate batch-norm statistics, and validation accuracy collapses
    (measured on 200 faces with mobilenet_v2: 55 % with ``"none"``, 100 % frozen).
    Other keywords are :func:`train`'s.
    """
    if classes is None or int(classes) < 1:
        raise ZooError(f"--classes must be at least 1, not {classes}")
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k not in _TRAIN_KEYWORDS}
    options = (kwargs.pop("options", None) or TrainOptions()).replace(**overrides)
    out = kwargs.pop("out", None)
    out = Path(out) if out is not None else default_out(resolve_card(model).name)
    kwargs["callbacks"] = tuple(kwargs.get("callbacks", ()))
    return _run(_Job(model, data, options, out, num_classes=int(classes), pretrained=weights, freeze=freeze,
                     head_lr_factor=head_lr_factor, finetuning=True, **kwargs))


_TRAIN_KEYWORDS = {"options", "val", "adapter", "out", "resume", "progress", "callbacks"}


def _resume_settings(extra: dict[str, Any], path: Path) -> tuple[TrainOptions, str, float, ModelCard]:
    """Options, freeze, head learning-rate factor and card of a resume state, each checked:
    the file is data (its card names a catalog model; nothing in it is imported)."""
    try:
        options = TrainOptions.from_dict(extra["options"])
        freeze, factor = extra["freeze"], float(extra["head_lr_factor"])
        card = ModelCard.from_metadata(extra["card"])
    except (KeyError, TypeError, ValueError, CardError, ZooError) as exc:
        raise ZooError(f"'{path}' is not a valid resume state ({exc}); delete it and train again") from None
    if freeze not in FREEZE_CHOICES or not factor > 0:
        raise ZooError(f"'{path}' is not a valid resume state (freeze {freeze!r:.40}, head factor {factor})")
    return options, freeze, factor, card


def _versions() -> dict[str, str]:
    return {"zoo": zoo.__version__, "torch": torch.__version__.split("+")[0]}


def _run(job: _Job) -> TrainResult:
    state_path = job.out / RESUME_FILE
    saved_state = None
    options, freeze, head_lr_factor = job.options, job.freeze, job.head_lr_factor
    if job.resume:
        saved_state, extra = load_state(state_path)
        options, freeze, head_lr_factor, saved_card = _resume_settings(extra, state_path)
    device = pick_device(options.device)
    torch.manual_seed(options.seed)

    dataset = open_dataset(job.data, job.adapter)
    classes = list(dataset.classes)
    _check_classes(classes, job.num_classes, job.data, "--classes")
    if saved_state is not None:
        net, card = _resumed_model(job, saved_card, classes)
    else:
        net, card = _model_to_train(job, classes)
    pre = Preprocess.from_card(card)

    t_prepare = time.perf_counter()
    train_set, val_set = _split(job, options, to_tensors(dataset, pre), pre, classes)
    prepare_seconds = time.perf_counter() - t_prepare

    groups = param_groups(net, lr=options.learning_rate, head_lr_factor=head_lr_factor, freeze=freeze)
    reporter = make_progress(job.progress if is_main() else False)
    trainer = trainer_class()(
        net, train_set.images, train_set.labels,
        val_images=None if val_set is None else val_set.images,
        val_labels=None if val_set is None else val_set.labels,
        preprocess=pre, options=options, groups=groups, freeze=freeze,
        augment=_augmenter(options), device=device,
        callbacks=([reporter] if reporter else []) + list(job.callbacks),
    )
    if saved_state is not None:
        _restore(trainer, saved_state, state_path, card)
    t_run = time.perf_counter()
    trainer.run()
    run_seconds = time.perf_counter() - t_run

    if trainer.stop_requested:
        if trainer.is_main:
            save_state(state_path, trainer.state(), {
                "options": options.to_dict() | {"lr": options.lr}, "freeze": freeze,
                "head_lr_factor": head_lr_factor, "card": card.to_metadata()})
        raise TrainingInterrupted(
            f"training {trainer.stop_reason} at iteration {trainer.iteration}/{trainer.total_iterations}; "
            f"state saved to {state_path}; continue with --resume", state_path)

    metrics = _metrics(trainer, run_seconds, prepare_seconds, resumed=saved_state is not None,
                       train_images=len(train_set), val_images=0 if val_set is None else len(val_set), device=device)
    card = card.replace(
        training={"options": options.to_dict(), "metrics": metrics, "data": str(job.data), "adapter": job.adapter,
                  "freeze": freeze, "head_lr_factor": head_lr_factor, "pretrained": _started_from(card)},
        versions={**card.versions, **_versions()},
    )
    net = trainer.model.to(memory_format=torch.contiguous_format)
    files: dict[str, Path] = {}
    if trainer.is_main:
        files["checkpoint"] = save(job.out / "model.safetensors", net, card)
        files["history"] = write_history(job.out / "history.csv", trainer.history, HISTORY_FIELDS)
        files["plot"] = plot_progress(job.out / "training-progress.png", trainer.history,
                                      batches_per_epoch=trainer.batches_per_epoch,
                                      title=f"{card.name} on {Path(str(job.data)).name}")
        state_path.unlink(missing_ok=True)
    return TrainResult(checkpoint=job.out / "model.safetensors", out=job.out, history=trainer.history,
                       metrics=metrics, classifier=Classifier(net.eval(), card), files=files)


def _resumed_model(job: _Job, card: ModelCard, classes: list[str]) -> Built:
    """The model of an interrupted run, which must be the one asked for, on the same classes."""
    asked = resolve_card(job.model).name
    if asked != card.name:
        raise ZooError(f"the interrupted run in '{job.out}' trains {card.name}, not {asked}; "
                       f"resume it with 'zoo train {card.name} ... --resume' or pick another --out")
    if card.labels != tuple(classes):
        raise ZooError(f"the interrupted run in '{job.out}' trained on classes {', '.join(card.labels)}, "
                       f"'{job.data}' has {', '.join(classes)}; resume with the same data")
    return build(card)


def _restore(trainer: Any, state: dict[str, Any], path: Path, card: ModelCard) -> None:
    try:
        trainer.load_state(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ZooError(f"'{path}' does not fit {card.name} as installed ({first_line(exc)}); "
                       "delete it and train again") from None


def _split(job: _Job, options: TrainOptions, everything: TensorSet, pre: Preprocess,
           classes: list[str]) -> tuple[TensorSet, TensorSet | None]:
    """(training set, validation set or None): a separate ``val`` set, else splitEachLabel."""
    if job.val is not None:
        return everything, to_tensors(open_dataset(job.val, job.adapter), pre, classes=classes)
    if options.split >= 1.0:
        return everything, None
    first, rest = split_each_label(everything.labels.numpy(), options.split, seed=options.seed)
    val_set = everything.subset(rest)
    return everything.subset(first), (val_set if len(val_set) else None)


def _metrics(trainer: Any, run_seconds: float, prepare_seconds: float, *, resumed: bool, train_images: int,
             val_images: int, device: Any) -> dict[str, Any]:
    """Mean mini-batch accuracy and loss over the last epoch; validation at the final iteration."""
    last_epoch = trainer.history[-trainer.batches_per_epoch:]
    seconds = trainer.seconds if resumed else run_seconds - trainer.val_seconds
    return {
        "train_acc": round(sum(r["accuracy"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "train_loss": round(sum(r["loss"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "val_acc": None if trainer.last_val is None else round(trainer.last_val[1], 6),
        "val_loss": None if trainer.last_val is None else round(trainer.last_val[0], 6),
        "epochs": trainer.epoch,
        "iterations": trainer.iteration,
        "seconds": round(run_seconds, 3),
        "prepare_seconds": round(prepare_seconds, 3),
        "images_per_s": round(trainer.images_seen / max(1e-9, seconds), 1),
        "train_images": train_images,
        "val_images": val_images,
        "device": str(device),
    }


def _started_from(card: ModelCard) -> str:
    """What training started from: a weight tag, a checkpoint path, or ``none``."""
    pretrained = card.extra.get("pretrained")
    if not isinstance(pretrained, dict):
        return "none"
    return pretrained["path"] if pretrained.get("tag") == "checkpoint" else str(pretrained.get("tag", "none"))
