"""Pretrained weights: find the file, verify it, load it into a model.

Resolution order for a card's weight source (:class:`zoo.card.WeightSource`):

1. an explicit file (``--weights FILE``), loaded in place, never copied;
2. the standard caches: torch hub's ``checkpoints/<file>``, the Hugging Face cache
   (``hf_hub`` repo ids, e.g. timm's), and zoo's own ``<cache>/weights/``;
3. an installed weights-provider plugin (``provider = "module:attr"`` returning a path);
4. the network (torch hub URL with its hash prefix checked, or ``huggingface_hub``),
   never when :func:`zoo.settings.offline` is true: then the error names the exact file
   and the directory to put it in.

A file found nowhere raises :class:`WeightsUnavailable`: ``str(exc)`` is the Python API's
wording, ``exc.for_command("predict")`` a CLI command's (only train/finetune offer random weights).

Public surface: :func:`load_pretrained`, :func:`locate`, :func:`labels_for`,
:func:`adapt_card`, :func:`map_in_order`, :class:`Located`, :class:`WeightsUnavailable`,
:func:`weights_report` (which weights a built card has), :func:`availability` (which tags are here).
"""

from __future__ import annotations

from zoo.weights.files import map_in_order, read_state_dict, sha256_of
from zoo.weights.labels import adapt_card, labels_for
from zoo.weights.load import LoadedWeights, load_pretrained, select_sources
from zoo.weights.locate import Located, locate
from zoo.weights.missing import WeightsUnavailable
from zoo.weights.report import Availability, availability, weights_report, weights_used

__all__ = [
    "load_pretrained",
    "locate",
    "select_sources",
    "labels_for",
    "adapt_card",
    "map_in_order",
    "read_state_dict",
    "sha256_of",
    "Located",
    "LoadedWeights",
    "WeightsUnavailable",
    "Availability",
    "availability",
    "weights_report",
    "weights_used",
]
