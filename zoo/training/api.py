"""``zoo.train`` and ``zoo.finetune``: MATLAB's ``trainNetwork``, returning a result object."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import zoo
from zoo.card import ModelCard
from zoo.classifier import Classifier
from zoo.data import ImageDataset, detect_adapter, open_dataset, split_each_label
from zoo.data.augment import AugmentSpec, augment
from zoo.data.split import split_record
from zoo.device import pick_device
from zoo.distributed import is_main, trainer_class
from zoo.errors import ZooError
from zoo.networks import fit_normalization
from zoo.preprocess import Preprocess
from zoo.training.inputs import open_sources, pixel_sample, training_inputs, warn_streamed_skips
from zoo.training.loop import HISTORY_FIELDS
from zoo.training.network import (
    check_classes,
    default_out,
    model_card,
    model_to_train,
    resumed_model,
)
from zoo.training.options import TrainOptions, check_option
from zoo.training.outputs import model_kept, remove_stale, run_folder, save_model, warn_if_replacing
from zoo.training.plot import plot_progress, write_history
from zoo.training.progress import make_progress
from zoo.training.report import plot_summary, run_metrics, started_from
from zoo.training.state import (
    RESUME_FILE,
    load_state,
    restore,
    resume_settings,
    save_state,
)
from zoo.transfer import param_groups
from zoo.weights import weights_report

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

    model: Any  # a reference the resolver takes, or an nn.Module
    data: Any  # a path or an ImageDataset (e.g. one part of zoo.split_each_label)
    options: TrainOptions
    out: Path
    val: Any = None
    adapter: str = "auto"
    num_classes: int | None = None
    pretrained: Any = False
    freeze: str = "none"
    head_lr_factor: float = 1.0
    resume: bool = False
    progress: bool | None = None
    callbacks: tuple[Any, ...] = ()
    finetuning: bool = False
    hints: tuple[tuple[str, Any], ...] = ()  # card values for a Python network
    feature_cache: bool = True  # a frozen backbone's features computed once (zoo.training.frozen)


def _augmenter(options: TrainOptions) -> Any:
    """``f(uint8 batch, generator)`` for ``--augment`` (MATLAB's imageDataAugmenter), or None.
    With ``crop`` the stream's workers crop and flip each image (:func:`open_sources`)."""
    spec = AugmentSpec.parse(options.augment)
    if spec.crop is not None:
        spec = dataclasses.replace(spec, x_reflection=False)
    if not spec.batch_active:
        return None
    return lambda batch, generator: augment(batch, spec, generator)


def train(
    model: Any,
    data: Any,
    *,
    options: TrainOptions | None = None,
    val: Any = None,
    adapter: str = "auto",
    out: str | Path | None = None,
    num_classes: int | None = None,
    pretrained: Any = False,
    freeze: str = "none",
    head_lr_factor: float = 1.0,
    resume: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
    card: Mapping[str, Any] | None = None,
    feature_cache: bool = True,
    **option_overrides: Any,
) -> TrainResult:
    """Train ``model`` on the labelled images in ``data``: MATLAB's ``trainNetwork``.

    Args:
        model: a registry name (``digitnet``, ``timm/resnet18``), a zoo checkpoint to continue
            from, a layer array file (``lab6.m``), a Python network (``net.py:make_net``) or an
            ``nn.Module``.
        data: a dataset path (opened with ``adapter``) or a dataset, e.g. the first part of
            :func:`zoo.split_each_label`.
        options: :class:`TrainOptions`; keyword ``option_overrides`` (``epochs=4``, ``lr=0.01``) change it.
        val: a separate validation set (path or dataset); without it ``options.split`` splits each label.
        adapter: ``auto`` detects it from the path (see :func:`zoo.data.detect_adapter`).
        out: output folder, default ``runs/<model-name>/``; an earlier run there is replaced
            (with a warning) and its stale outputs are removed.
        num_classes: expected class count; disagreeing with the data is an error.
        pretrained: weights to start from: ``False``/``"none"``, ``"auto"``, a tag or a file.
        freeze: ``"backbone"`` trains the head only.
        head_lr_factor: the head's learning rate is ``lr * head_lr_factor``.
        resume: continue the interrupted run saved in ``out/resume.safetensors``.
        progress: ``None`` a bar on a terminal / plain lines otherwise, ``False`` silent.
        callbacks: :class:`zoo.training.loop.Callback` objects, called on every event.
        card: for a Python network or module: ``input_size``, ``channels``, ``mean``, ``std``, ``name``.
        feature_cache: with a frozen backbone and no augmentation, compute the backbone's
            features once and train the head on them (:mod:`zoo.training.frozen`); ``False``
            runs the whole network every iteration (the same result, slower).

    Returns:
        The result, a :class:`TrainResult`; after Ctrl-C it raises :class:`TrainingInterrupted`.
    """
    options = (options or TrainOptions()).replace(**option_overrides)
    hints = tuple((card or {}).items())
    out = Path(out) if out is not None else default_out(model_card(model, dict(hints)).name)
    return _run(_Job(model, data, options, out, val=val, adapter=adapter, num_classes=num_classes,
                     pretrained=pretrained, freeze=freeze, head_lr_factor=head_lr_factor, resume=resume,
                     progress=progress, callbacks=tuple(callbacks), hints=hints, feature_cache=feature_cache))


def finetune(
    model: Any,
    data: Any,
    *,
    classes: int,
    weights: Any = "auto",
    freeze: str | None = None,
    head_lr_factor: float = 10.0,
    **kwargs: Any,
) -> TrainResult:
    """Transfer learning: pretrained ``weights``, a new head of ``classes`` outputs, then :func:`train`.

    MATLAB's ``layers(end-2) = fullyConnectedLayer(N, 'WeightLearnRateFactor', 10)``.
    ``weights``: ``"auto"`` (caches, weights plugins, then the network), a file, or ``"none"``.
    ``freeze`` defaults to ``"backbone"`` with weights: on a small folder a full fine-tune runs
    too few iterations to re-estimate batch-norm statistics, and validation accuracy collapses
    (measured on 200 faces with mobilenet_v2: 55 % with ``"none"``, 100 % frozen). Without
    weights it defaults to ``"none"``: a frozen random backbone gives the head nothing to learn
    from, so ``freeze="backbone"`` with ``weights="none"`` is refused.
    Other keywords are :func:`train`'s.
    """
    if classes is None or int(classes) < 1:
        raise ZooError(f"--classes must be at least 1, not {classes}")
    head_lr_factor = check_option("head_lr_factor", head_lr_factor)
    random_start = weights in (False, None, "none", "")
    if freeze is None:
        freeze = "none" if random_start else "backbone"
    elif freeze == "backbone" and random_start:
        raise ZooError("--freeze backbone with --weights none would train a head on a random, frozen backbone; "
                       "give pretrained weights, or drop --freeze backbone to train every layer")
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k not in _TRAIN_KEYWORDS}
    options = (kwargs.pop("options", None) or TrainOptions()).replace(**overrides)
    hints = tuple((kwargs.pop("card", None) or {}).items())
    out = kwargs.pop("out", None)
    out = Path(out) if out is not None else default_out(model_card(model, dict(hints)).name)
    kwargs["callbacks"] = tuple(kwargs.get("callbacks", ()))
    return _run(_Job(model, data, options, out, num_classes=int(classes), pretrained=weights, freeze=freeze,
                     head_lr_factor=head_lr_factor, finetuning=True, hints=hints, **kwargs))


_TRAIN_KEYWORDS = {"options", "val", "adapter", "out", "resume", "progress", "callbacks", "card", "feature_cache"}


def _versions() -> dict[str, str]:
    return {"zoo": zoo.__version__, "torch": torch.__version__.split("+")[0]}


def _run(job: _Job) -> TrainResult:
    """Train ``job`` with its output folder held: one run at a time writes there (only rank 0 writes)."""
    with run_folder(job.out) if is_main() else contextlib.nullcontext():
        return _train(job)


def _train(job: _Job) -> TrainResult:
    state_path = job.out / RESUME_FILE
    saved_state = None
    options, freeze, head_lr_factor = job.options, job.freeze, job.head_lr_factor
    if job.resume:
        saved_state, extra = load_state(state_path)
        options, freeze, head_lr_factor, saved_card = resume_settings(extra, state_path)
    elif is_main():
        warn_if_replacing(job.out)
    device = pick_device(options.device)
    torch.manual_seed(options.seed)

    if job.adapter == "auto" and _is_path(job.data):
        job = dataclasses.replace(job, adapter=detect_adapter(job.data))
    dataset = as_dataset(job.data, job.adapter)
    classes = list(dataset.classes)
    check_classes(classes, job.num_classes, job.data, "--classes")
    if saved_state is not None:
        net, card = resumed_model(job.model, saved_card, classes, job.out, job.data)
    else:
        net, card = model_to_train(job.model, classes, finetuning=job.finetuning, pretrained=job.pretrained,
                                   hints=dict(job.hints))
    pre = Preprocess.from_card(card)

    t_prepare = time.perf_counter()
    parts, split = _parts(job, options, dataset)
    train_set, val_set = open_sources(parts, pre, options, classes, device)
    if saved_state is None:
        card = fit_normalization(card, pixel_sample(train_set, parts[0], pre, options))
        pre = Preprocess.from_card(card)
    groups = param_groups(net, lr=options.learning_rate, head_lr_factor=head_lr_factor, freeze=freeze)
    reporter = make_progress(job.progress if is_main() else False)
    feed = training_inputs(net, train_set, val_set, pre, options, device, freeze=freeze,
                           feature_cache=job.feature_cache, say=print if reporter else None)
    train_set, val_set = feed.train, feed.val
    prepare_seconds = time.perf_counter() - t_prepare

    if reporter is not None and (job.finetuning or job.pretrained not in (False, None, "none", "")):
        for line in weights_report(card):
            print(line, flush=True)
    trainer = trainer_class()(
        feed.learner, train_set, val_data=val_set,
        preprocess=feed.preprocess, options=options, groups=groups, freeze=feed.freeze,
        augment=_augmenter(options), device=device,
        callbacks=([reporter] if reporter else []) + list(job.callbacks),
    )
    trainer.whole = net
    if saved_state is not None:
        restore(trainer, saved_state, state_path, card)
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

    if trainer.is_main:
        warn_streamed_skips(train_set, val_set)
    metrics = run_metrics(trainer, run_seconds, prepare_seconds, resumed=saved_state is not None,
                       train_images=len(train_set), val_images=0 if val_set is None else len(val_set), device=device)
    metrics["data"] = feed.mode
    training = {"options": options.to_dict(), "metrics": metrics, "data": _describe(job.data),
                "adapter": job.adapter, "freeze": freeze,
                "head_lr_factor": head_lr_factor, "pretrained": started_from(card)}
    if split is not None:
        training["split"] = split
    card = card.replace(training=training, versions={**card.versions, **_versions()})
    net = net.to(memory_format=torch.contiguous_format)
    files: dict[str, Path] = {}
    if trainer.is_main:
        files["checkpoint"] = save_model(job.out, net, card)
        with model_kept(files["checkpoint"]):
            files["history"] = write_history(job.out / "history.csv", trainer.history, HISTORY_FIELDS)
            files["plot"] = plot_progress(job.out / "training-progress.png", trainer.history,
                                          batches_per_epoch=trainer.batches_per_epoch,
                                          title=f"{card.name} on {Path(_describe(job.data)).name}",
                                          summary=plot_summary(trainer, metrics, options, groups))
        state_path.unlink(missing_ok=True)
        remove_stale(job.out, files.values())
    return TrainResult(checkpoint=job.out / "model.safetensors", out=job.out, history=trainer.history,
                       metrics=metrics, classifier=Classifier(net.eval(), card), files=files)


def as_dataset(data: Any, adapter: str) -> ImageDataset:
    """A dataset object as it is; a path opened with ``adapter``."""
    return data if isinstance(data, ImageDataset) else open_dataset(data, adapter)


def _describe(data: Any) -> str:
    """A path as given, or where a dataset object's samples come from."""
    return str(data) if isinstance(data, (str, Path)) else data.location


def _parts(job: _Job, options: TrainOptions, dataset: Any) -> tuple[tuple[Any, Any], dict[str, Any] | None]:
    """((training part, validation part or None), the split's record for the checkpoint or None):
    a separate ``val`` set, else splitEachLabel (indices into one dataset, no copies)."""
    if job.val is not None:
        val = as_dataset(job.val, job.adapter)
        record = (split_record(dataset, val, data=job.data, adapter=job.adapter, val_data=job.val)
                  if _is_path(job.val) and _is_path(job.data) else None)
        return (dataset, val), record
    if options.split >= 1.0:
        return (dataset, None), None
    first, rest = split_each_label(dataset, options.split, seed=options.seed)
    record = None
    if _is_path(job.data):
        record = split_record(first, rest, data=job.data, adapter=job.adapter, fraction=options.split,
                              seed=options.seed)
    return (first, rest if len(rest) else None), record


def _is_path(data: Any) -> bool:
    return isinstance(data, (str, Path))
