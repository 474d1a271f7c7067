"""``zoo.train`` and ``zoo.finetune``: MATLAB's ``trainNetwork``, returning a result object."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.card import ModelCard
from zoo.errors import ZooError
from zoo.training.options import TrainOptions

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


def default_out(name: str) -> Path:
    """``runs/<model-name>/`` with path separators of the name flattened."""
    return Path("runs") / name.replace("/", "-").replace(":", "-")


def _check_classes(found: Sequence[str], wanted: int | None, data: Any, flag: str) -> None:
    if wanted is not None and wanted != len(found):
        shown = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
        raise ZooError(f"{flag} {wanted} disagrees with the {len(found)} class folder(s) in '{data}' ({shown}); "
                       f"use {flag} {len(found)} or fix the folders")


def _model_and_card(model: str | Path, classes: list[str], *, pretrained: Any, finetuning: bool) -> tuple[Any, ModelCard]:
    """The network to train and its card, with a head of ``len(classes)`` outputs."""
    from zoo.models.heads import set_num_classes
    from zoo.resolver import kind_of, resolve

    n = len(classes)
    if kind_of(model) == "onnx":
        raise ZooError(f"'{model}' is an ONNX file; train a registry model or a .safetensors checkpoint")
    if kind_of(model) == "checkpoint":
        from zoo.checkpoint import load

        classifier = load(model)
        net, card = classifier.module, classifier.card
        same = card.num_classes == n and (not card.labels or list(card.labels) == classes)
        if not same and not finetuning:
            raise ZooError(f"checkpoint '{model}' was trained on {card.num_classes} classes ({', '.join(card.class_names[:8])}), "
                           f"the data has {n} ({', '.join(classes[:8])}); to train it on new classes use "
                           f"'zoo finetune {model} --classes {n}'")
        if card.num_classes != n:
            set_num_classes(net, n)
        return net, card.replace(num_classes=n, labels=tuple(classes), extra={**card.extra, "pretrained": str(model)})
    net, card = resolve(model, num_classes=n, pretrained=pretrained)
    return net, card.replace(num_classes=n, labels=tuple(classes))


def _tensors(data: Any, adapter: str, card: ModelCard) -> Any:
    from zoo.data import open_dataset, to_tensors
    from zoo.preprocess import Preprocess

    return to_tensors(open_dataset(data, adapter), Preprocess.from_card(card))


def _augmenter(options: TrainOptions, card: ModelCard) -> Any:
    """``f(uint8 batch, generator)`` for ``--augment`` (MATLAB's imageDataAugmenter), or None."""
    from zoo.data.augment import AugmentSpec, augment

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
    return _run(model, data, options=options, val=val, adapter=adapter, out=out, num_classes=num_classes,
                pretrained=pretrained, freeze=freeze, head_lr_factor=head_lr_factor, resume=resume,
                progress=progress, callbacks=callbacks, finetuning=False, overrides=option_overrides)


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
    return _run(model, data, num_classes=int(classes), pretrained=weights, freeze=freeze,
                head_lr_factor=head_lr_factor, finetuning=True, overrides=overrides, **kwargs)


_TRAIN_KEYWORDS = {"options", "val", "adapter", "out", "resume", "progress", "callbacks"}


def _resume_settings(extra: dict[str, Any], path: Path) -> tuple[TrainOptions, str, float, ModelCard]:
    """Options, freeze, head learning-rate factor and card of a resume state, each checked:
    the file is data (its card names a catalog model; nothing in it is imported)."""
    from zoo.card import CardError
    from zoo.transfer import FREEZE_CHOICES

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
    import torch

    import zoo

    return {"zoo": zoo.__version__, "torch": torch.__version__.split("+")[0]}


def _run(model, data, *, options=None, val=None, adapter="folder", out=None, num_classes=None, pretrained=False,
         freeze="none", head_lr_factor=1.0, resume=False, progress=None, callbacks=(), finetuning=False,
         overrides=None) -> TrainResult:
    import torch

    from zoo.checkpoint import save
    from zoo.classifier import Classifier
    from zoo.data import open_dataset, split_each_label, to_tensors
    from zoo.models import build
    from zoo.preprocess import Preprocess
    from zoo.device import pick_device
    from zoo.training.loop import HISTORY_FIELDS
    from zoo.training.plot import plot_progress, write_history
    from zoo.training.progress import make_progress
    from zoo.training.state import RESUME_FILE, load_state, save_state
    from zoo.transfer import param_groups

    options = (options or TrainOptions()).replace(**(overrides or {}))
    from zoo.resolver import resolve_card

    out = Path(out) if out is not None else default_out(resolve_card(model).name)
    state_path = out / RESUME_FILE
    saved_state = None
    if resume:
        saved_state, extra = load_state(state_path)
        options, freeze, head_lr_factor, saved_card = _resume_settings(extra, state_path)
    device = pick_device(options.device)
    torch.manual_seed(options.seed)

    dataset = open_dataset(data, adapter)
    classes = list(dataset.classes)
    _check_classes(classes, num_classes, data, "--classes")
    if saved_state is not None:
        card = saved_card
        asked = resolve_card(model).name
        if asked != card.name:
            raise ZooError(f"the interrupted run in '{out}' trains {card.name}, not {asked}; "
                           f"resume it with 'zoo train {card.name} ... --resume' or pick another --out")
        if card.labels != tuple(classes):
            raise ZooError(f"the interrupted run in '{out}' trained on classes {', '.join(card.labels)}, "
                           f"'{data}' has {', '.join(classes)}; resume with the same data")
        net = build(card)
    else:
        net, card = _model_and_card(model, classes, pretrained=pretrained, finetuning=finetuning)
    pre = Preprocess.from_card(card)

    t_prepare = time.perf_counter()
    everything = to_tensors(dataset, pre)
    if val is not None:
        val_set = to_tensors(open_dataset(val, adapter), pre, classes=classes)
        train_set = everything
    elif options.split < 1.0:
        first, rest = split_each_label(everything.labels.numpy(), options.split, seed=options.seed)
        train_set, val_set = everything.subset(first), everything.subset(rest)
        if len(val_set) == 0:
            val_set = None
    else:
        train_set, val_set = everything, None
    prepare_seconds = time.perf_counter() - t_prepare

    groups = param_groups(net, lr=options.learning_rate, head_lr_factor=head_lr_factor, freeze=freeze)
    from zoo.distributed import is_main, trainer_class  # distributed (issue 6): DDP under torchrun

    reporter = make_progress(progress if is_main() else False)
    trainer = trainer_class()(
        net, train_set.images, train_set.labels,
        val_images=None if val_set is None else val_set.images,
        val_labels=None if val_set is None else val_set.labels,
        preprocess=pre, options=options, groups=groups, freeze=freeze,
        augment=_augmenter(options, card), device=device,
        callbacks=([reporter] if reporter else []) + list(callbacks),
    )
    if saved_state is not None:
        try:
            trainer.load_state(saved_state)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ZooError(f"'{state_path}' does not fit {card.name} as installed ({reason}); "
                           "delete it and train again") from None
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

    last_epoch = trainer.history[-trainer.batches_per_epoch:]
    metrics = {
        # mean mini-batch accuracy and loss over the last epoch; validation at the final iteration
        "train_acc": round(sum(r["accuracy"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "train_loss": round(sum(r["loss"] for r in last_epoch) / max(1, len(last_epoch)), 6),
        "val_acc": None if trainer.last_val is None else round(trainer.last_val[1], 6),
        "val_loss": None if trainer.last_val is None else round(trainer.last_val[0], 6),
        "epochs": trainer.epoch,
        "iterations": trainer.iteration,
        "seconds": round(run_seconds, 3),
        "prepare_seconds": round(prepare_seconds, 3),
        "images_per_s": round(trainer.images_seen / max(1e-9, run_seconds - trainer.val_seconds), 1)
        if saved_state is None else round(trainer.images_seen / max(1e-9, trainer.seconds), 1),
        "train_images": len(train_set),
        "val_images": 0 if val_set is None else len(val_set),
        "device": str(device),
    }
    card = card.replace(
        training={"options": options.to_dict(), "metrics": metrics, "data": str(data), "adapter": adapter,
                  "freeze": freeze, "head_lr_factor": head_lr_factor,
                  "pretrained": card.extra.get("pretrained", "none")},
        versions={**card.versions, **_versions()},
    )
    net = trainer.model.to(memory_format=torch.contiguous_format)
    files: dict[str, Path] = {}
    if trainer.is_main:
        files["checkpoint"] = save(out / "model.safetensors", net, card)
        files["history"] = write_history(out / "history.csv", trainer.history, HISTORY_FIELDS)
        files["plot"] = plot_progress(out / "training-progress.png", trainer.history,
                                      batches_per_epoch=trainer.batches_per_epoch,
                                      title=f"{card.name} on {Path(str(data)).name}")
        state_path.unlink(missing_ok=True)
    return TrainResult(checkpoint=out / "model.safetensors", out=out, history=trainer.history, metrics=metrics,
                       classifier=Classifier(net.eval(), card), files=files)
