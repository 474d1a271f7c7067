"""Saying which weights a model has: what was loaded (a built card, a checkpoint) and which
weight tags are available here, offline (``zoo info``, ``zoo doctor``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.card import ModelCard, WeightSource
from zoo.errors import ZooError
from zoo.weights.locate import find_local
from zoo.weights.missing import fetch_command, fetch_steps

__all__ = ["Availability", "availability", "weights_report", "weights_used", "ORIGINS"]

ORIGINS = {"file": "file", "torch-hub-cache": "torch hub cache", "hf-cache": "Hugging Face cache",
           "zoo-cache": "zoo cache", "provider": "plugin", "download": "downloaded"}


def _short(path: Any) -> str:
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home + "/") else text


@dataclass(frozen=True)
class Availability:
    """One weight tag of a model, and whether its file is here.

    ``status``: ``cached`` (a cache holds it), ``plugin`` (an installed provider serves it),
    ``download`` (not here; fetched on first use) or ``missing`` (not here, and offline or
    not downloadable). ``fix`` says how to get it when it is not here.
    """

    model: str
    tag: str
    labels: str
    status: str
    path: str = ""
    fix: str = ""

    @property
    def offline(self) -> bool:
        """Usable without a network."""
        return self.status in ("cached", "plugin")

    def text(self) -> str:
        """``imagenet: cached (~/.cache/...)``, ``imagenet: missing (curl ...)``, ..."""
        if self.offline:
            return f"{self.tag}: {'from a plugin' if self.status == 'plugin' else 'cached'} ({_short(self.path)})"
        what = "not here, downloads on first use" if self.status == "download" else "missing"
        return f"{self.tag}: {what}" + (f" ({self.fix})" if self.fix else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "offline": self.offline}


def _one(card: ModelCard, source: WeightSource) -> Availability:
    reasons: list[str] = []
    try:
        found = find_local(card, source, reasons, verify=False)
    except ZooError as exc:  # a provider that fails in its own way
        found, reasons = None, [str(exc)]
    if found is not None:
        return Availability(card.name, source.tag, source.labels, "plugin" if found.origin == "provider" else "cached",
                            str(found.path))
    fixes = reasons + [fetch_command(source) or "; ".join(fetch_steps(source))]
    downloadable = bool(source.url or source.hf_hub) and not settings.offline()
    return Availability(card.name, source.tag, source.labels, "download" if downloadable else "missing",
                        fix="; or ".join(f for f in fixes if f))


def availability(card: ModelCard) -> list[Availability]:
    """Each of a catalog card's weight tags, and whether its file is here (no hashing, no network)."""
    return [_one(card, source) for source in card.weights.values()]


def _record(card: ModelCard) -> dict[str, Any] | None:
    record = card.extra.get("pretrained")
    return record if isinstance(record, dict) else None  # a file's card is data: check its shape


def _loaded_text(record: dict[str, Any]) -> str:
    tag, path, origin = str(record.get("tag", "?")), record.get("path"), str(record.get("origin", ""))
    if tag == "checkpoint":
        return f"checkpoint {path}"
    where = f" from {_short(path)}" if path else ""
    return f"{tag}{where}" + (f" ({ORIGINS.get(origin, origin)})" if origin and tag != "file" else "")


def _replaced_text(record: dict[str, Any]) -> str:
    replaced = record.get("replaced")
    if isinstance(replaced, dict):
        return (f"replaced layer {replaced.get('index', '?')} {replaced.get('name', '?')} "
                f"({replaced.get('old', '?')}) with {replaced.get('new', '?')}")
    skipped = record.get("skipped")
    if isinstance(skipped, list) and skipped:
        return f"head tensors left at random initialisation (another class count): {', '.join(map(str, skipped))}"
    return ""


def weights_report(card: ModelCard) -> list[str]:
    """Lines saying which weights a built model has (from ``card.extra["pretrained"]``), e.g.
    ``weights: imagenet from ~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth (torch hub cache)``
    and ``replaced layer 21 classifier.6 (Linear 4096→1000) with Linear 4096→2``, or
    ``weights: none (random initialisation)``."""
    record = _record(card)
    if record is None:
        return ["weights: none (random initialisation)"]
    lines = [f"weights: {_loaded_text(record)}"]
    replaced = _replaced_text(record)
    return lines + ([replaced] if replaced else [])


def weights_used(card: ModelCard) -> dict[str, Any]:
    """What a checkpoint's (or ONNX file's) weights started from: ``started_from`` (a tag, a
    checkpoint path, ``"none"``, or ``None`` when not recorded), ``pretrained`` (the load record),
    ``text`` (one line) and ``replaced`` (the replaced-layer line, or ``""``)."""
    record = _record(card)
    started = card.training.get("pretrained") if isinstance(card.training, dict) else None
    started = str(started) if started is not None else (str(record.get("tag")) if record else None)
    if record is not None and record.get("tag") == "checkpoint":
        text = f"training continued from checkpoint {record.get('path')}"
    elif record is not None:
        text = f"started from {_loaded_text(record)}"
    elif started == "none":
        text = "started from random weights (--weights none)"
    elif started:
        text = f"started from {started}"
    else:
        text = "how they were made is not recorded"
    return {"started_from": started, "pretrained": record, "text": text,
            "replaced": _replaced_text(record) if record else ""}
