"""Pretrained weights that cannot be had here: one error, whose advice fits the command that asked.

:class:`WeightsUnavailable` carries the facts (model, tag, where zoo looked, how to get the
file) and words them per caller: ``str(exc)`` is the Python API's wording (keywords), and
:meth:`WeightsUnavailable.for_command` gives a CLI command's (flags). Only training commands
offer random weights (``--weights none``); predict, evaluate, export, bench, features and info
need real weights, so they say so instead.
"""

from __future__ import annotations

from zoo import settings
from zoo.card import ModelCard, WeightSource
from zoo.errors import ZooError

__all__ = ["WeightsUnavailable", "unavailable", "none_declared", "fetch_steps", "fetch_command",
           "TRAINING_COMMANDS", "HF_FILES"]

HF_FILES = ("model.safetensors", "pytorch_model.bin")
TRAINING_COMMANDS = ("train", "finetune")  # may start from random weights
_WEIGHTS_FLAG = ("predict", "features")  # other commands that take --weights


class WeightsUnavailable(ZooError):
    """No file for a model's pretrained weights (or none declared), with what to do about it.

    Attributes:
        model: the model's name; ``tag``: the weight tag asked for (``""`` when none is declared).
        steps: flag-free ways to get the file (``put FILE into DIR (get it from URL)``).
        reasons: what each place zoo looked in said (e.g. a provider's ``pip install ...``).
        offline: the network was not tried (``ZOO_OFFLINE``/``HF_HUB_OFFLINE``).
    """

    def __init__(self, model: str, tag: str = "", *, steps: tuple[str, ...] = (), reasons: tuple[str, ...] = (),
                 offline: bool = False) -> None:
        self.model, self.tag, self.offline = model, tag, offline
        self.steps, self.reasons = tuple(steps), tuple(reasons)
        super().__init__(self.for_command(None))

    def __str__(self) -> str:
        return self.for_command(None)

    def __reduce__(self):  # pickles with its facts (keyword-only arguments)
        return self.__class__, (self.model, self.tag), self.__dict__

    @property
    def declared(self) -> bool:
        """Whether the model declares pretrained weights at all."""
        return bool(self.tag)

    def _facts(self) -> str:
        if not self.declared:
            return f"{self.model} has no pretrained weights in any catalog"
        offline = " (zoo is offline: ZOO_OFFLINE/HF_HUB_OFFLINE is set, no download tried)" if self.offline else ""
        return f"no '{self.tag}' weights for {self.model}{offline}"

    def for_command(self, command: str | None) -> str:
        """The one-line message for CLI ``command`` (``"predict"``, ...), or the Python API's (``None``)."""
        todo = list(self.steps)
        if command is None:
            todo.append('pretrained="FILE" for a file elsewhere (weights="FILE" in zoo.finetune and zoo.load)')
            todo.append("pretrained=False for random weights")
            head = self._facts()
        elif command in TRAINING_COMMANDS:
            todo.append("--weights FILE for a file elsewhere" if self.declared else "pass a file with --weights FILE")
            todo.append("--weights none to train from random weights")
            head = self._facts()
        else:
            if command in _WEIGHTS_FLAG:
                todo.append("--weights FILE for a file elsewhere" if self.declared else "pass a file with --weights FILE")
            todo.append(f"give a checkpoint trained from it (zoo finetune {self.model} ...)" if self.declared
                        else f"give a checkpoint trained from it (zoo train {self.model} ...)")
            head = f"zoo {command} needs pretrained weights: {self._facts()}"
        text = f"{head}: {'; or '.join(todo)}"
        return text + (f" [{'; '.join(self.reasons)}]" if self.reasons else "")


def fetch_steps(source: WeightSource) -> list[str]:
    """Where the file of ``source`` must be put, and where to get it (no CLI flags)."""
    if source.file:
        where = settings.torch_hub_dir() / "checkpoints"
        fetch = f" (get it from {source.url})" if source.url else ""
        return [f"put {source.file} into {where}{fetch}"]
    if source.hf_hub:
        return [f"put the Hugging Face repo {source.hf_hub} ({HF_FILES[0]}) into the cache {settings.hf_cache_dir()} "
                f"(huggingface-cli download {source.hf_hub})"]
    if source.url:
        return [f"download {source.url} and pass that file"]
    return []


def fetch_command(source: WeightSource) -> str:
    """A shell command that puts ``source``'s file where zoo finds it (``""`` when there is none)."""
    if source.file and source.url:
        target = settings.torch_hub_dir() / "checkpoints" / source.file
        return f"curl -L --create-dirs -o {target} {source.url}"
    if source.hf_hub:
        return f"huggingface-cli download {source.hf_hub} --cache-dir {settings.hf_cache_dir()}"
    return ""


def unavailable(card: ModelCard, source: WeightSource, reasons: list[str], *, offline: bool) -> WeightsUnavailable:
    """The error for a source whose file is nowhere here (and, offline, not downloaded)."""
    return WeightsUnavailable(card.name, source.tag, steps=tuple(fetch_steps(source)), reasons=tuple(reasons),
                              offline=offline)


def none_declared(card: ModelCard) -> WeightsUnavailable:
    """The error for ``pretrained="auto"`` on a model that no catalog gives weights."""
    return WeightsUnavailable(card.name)
