"""``load_pretrained``: pick a weight source, find its file, load it into a model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import settings
from zoo.card import ModelCard, WeightSource
from zoo.errors import ZooError
from zoo.registry import import_object
from zoo.weights.files import WEIGHT_SUFFIXES, read_state_dict
from zoo.weights.locate import Located, download, find_local
from zoo.weights.missing import none_declared, unavailable

__all__ = ["load_pretrained", "select_sources", "LoadedWeights"]

log = logging.getLogger("zoo.weights")


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_pretrained` loaded (a built card keeps it as ``extra["pretrained"]``)."""

    source: WeightSource
    path: Path
    origin: str
    skipped: tuple[str, ...] = ()  # head tensors left at their fresh initialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a card: tag, origin (file, torch-hub-cache, provider, ...), path, skipped."""
        return {"tag": self.source.tag, "origin": self.origin, "path": str(self.path), "skipped": list(self.skipped)}


def select_sources(card: ModelCard, spec: Any) -> list[WeightSource]:
    """The weight sources ``spec`` names: all of the card's for ``True``/``"auto"`` (tried in
    order), one for a tag, a synthetic ``tag="file"`` source for a path."""
    return _choose(card, spec)[0]


def _choose(card: ModelCard, spec: Any) -> tuple[list[WeightSource], Path | None]:
    if spec is True or (isinstance(spec, str) and spec.strip().lower() in ("auto", "true", "default")):
        if not card.weights:
            raise none_declared(card)
        return list(card.weights.values()), None
    text = str(spec)
    if text in card.weights:
        return [card.weights[text]], None
    path = Path(text).expanduser()
    if path.is_file():
        return [WeightSource(tag="file", file=str(path))], path
    if path.suffix.lower() in WEIGHT_SUFFIXES or "/" in text or "\\" in text or path.is_dir():
        raise ZooError(f"weights file '{text}' does not exist")
    tags = ", ".join(card.weights) or "none"
    raise ZooError(f"{card.name} has no weights tagged '{text}' (tags: {tags}); or pass a file path")


def _locate_any(card: ModelCard, sources: list[WeightSource]) -> Located:
    """The first source available locally; else (unless offline) the first downloadable one."""
    reasons: list[str] = []
    for source in sources:
        found_here: list[str] = []
        found = find_local(card, source, found_here)
        if found is not None:
            return found
        reasons += [f"{source.tag}: {r}" if len(sources) > 1 else r for r in found_here]
    if settings.offline():
        raise unavailable(card, sources[0], reasons, offline=True)
    return download(card, next((s for s in sources if s.url or s.hf_hub), sources[0]), reasons)


def load_pretrained(model: Any, card: ModelCard, spec: Any = True) -> LoadedWeights:
    """Load pretrained weights into ``model`` (built from ``card``, with its catalog head).

    Args:
        model: the freshly built network.
        card: its card; ``card.weights`` lists the sources.
        spec: ``True``/``"auto"`` (the first source found locally, else the first one
            downloaded), a weight tag, or a path to a ``.pth``/``.pt``/``.bin``/``.safetensors`` file.

    Returns:
        What was loaded: the source (``tag="file"`` for an explicit file), path and origin.

    A head whose shape differs from the file's (another class count) keeps its fresh
    initialisation; those tensors are reported and listed in ``skipped``.
    Any other mismatch is a ZooError.
    """
    sources, explicit = _choose(card, spec)
    found = Located(explicit, "file", sources[0]) if explicit is not None else _locate_any(card, sources)
    state = read_state_dict(found.path)
    state = _map_keys(state, model, card, found.source, explicit=explicit is not None)
    skipped = _load_into(model, state, card, found.path)
    if skipped:
        log.warning("%s: head tensors not loaded from %s (another class count): %s",
                    card.name, found.path.name, ", ".join(skipped))
    log.info("%s: loaded '%s' weights from %s (%s)", card.name, found.source.tag, found.path, found.origin)
    return LoadedWeights(source=found.source, path=found.path, origin=found.origin, skipped=tuple(skipped))


def _map_keys(state: dict[str, Any], model: Any, card: ModelCard, source: WeightSource, *, explicit: bool) -> dict[str, Any]:
    key_map = source.key_map
    if not key_map and explicit:
        # A user's file in the foreign layout of the card's own source gets the same mapping.
        own = set(model.state_dict())
        if not own & set(state):
            key_map = next((w.key_map for w in card.weights.values() if w.key_map), "")
    if not key_map:
        return state
    mapper = import_object(key_map, owner=f"weights '{source.tag}' of {card.name}")
    return dict(mapper(state, model))


def _load_into(model: Any, state: dict[str, Any], card: ModelCard, path: Path) -> list[str]:
    from zoo.heads import head_name  # torch: locating weights files stays torch-free

    head = head_name(model)
    own = model.state_dict()

    def is_head(key: str) -> bool:
        return key.startswith(head + ".")

    skipped: list[str] = []
    reshaped: list[str] = []
    usable: dict[str, Any] = {}
    for key, tensor in state.items():
        if key not in own:
            continue
        if tuple(own[key].shape) != tuple(tensor.shape):
            if is_head(key):
                skipped.append(key)
            else:
                reshaped.append(f"{key} {tuple(tensor.shape)} vs {tuple(own[key].shape)}")
            continue
        usable[key] = tensor
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    skipped += [k for k in missing if is_head(k)]
    missing = [k for k in missing if not is_head(k)]
    if missing or unexpected or reshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", reshaped)):
            if keys:
                parts.append(f"{len(keys)} tensors {label} (e.g. {', '.join(keys[:2])})")
        raise ZooError(f"'{path}' does not fit {card.name}: {'; '.join(parts)}")
    model.load_state_dict(usable, strict=False)
    return skipped
