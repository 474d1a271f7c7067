"""The network diagram, MATLAB's ``plot(lgraph)``: ``zoo info NAME --plot FILE`` and :func:`plot_network`.

:mod:`~zoo.diagram.graph` holds the network as data (layers and edges), made from a torch module
by :mod:`~zoo.diagram.torch_graph` (torch.fx) or from an ONNX file by :mod:`~zoo.diagram.onnx_graph`
(onnx only); :mod:`~zoo.diagram.layout` places it (pure Python, no graphviz), and
:mod:`~zoo.diagram.draw` draws it with matplotlib. Importing this package imports none of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.atomic import atomic_path
from zoo.errors import ZooError, ZooWarning
from zoo.picture import picture_format

__all__ = ["plot_network", "network_graph", "write_diagram"]


def plot_network(model_or_reference: Any, path: str | Path, *, network: Any = None,
                 input_shape: tuple[int, int, int] | None = None, warn: Callable[[str], None] | None = None) -> Path:
    """Draw a network as a layer diagram (MATLAB's ``plot(lgraph)``) and write it to ``path``.

    One box per layer with its name, type and output shape for one input, arrows for the data
    flow, top-down; branches side by side and skip connections (residual additions, a
    downsample shortcut) as their own orange curves.

    Args:
        model_or_reference: a registry name (``digitnet``, ``timm/convnext_atto``), a checkpoint,
            an ONNX file (read with ``onnx`` alone), a layer array (``lab6.m``), ``FILE.py:NAME``,
            a :class:`zoo.models.Built` ``(module, card)``, or a ``torch.nn.Module``.
        path: ``.png`` or ``.svg``; written whole or not at all.
        network: for a checkpoint of a network defined in Python: its ``FILE.py:NAME``.
        input_shape: ``(channels, height, width)`` of the input the shapes are computed for; the
            card's by default (``(3, 224, 224)`` for a bare module).
        warn: receives one line each for what the diagram cannot show (a network that cannot be
            traced is drawn as the chain of its layers, without branches; a network too large for
            the biggest figure is drawn smaller); default: a :class:`~zoo.errors.ZooWarning`.

    Returns:
        ``path``. Raises :class:`~zoo.errors.ZooError` for another suffix,
        :class:`~zoo.errors.OutputError` when the file cannot be written.
    """
    picture_format(path, "a network diagram")  # before the work: a wrong suffix fails at once
    graph = network_graph(model_or_reference, network=network, input_shape=input_shape, warn=warn)
    return write_diagram(graph, path, warn=warn)


def network_graph(model_or_reference: Any, *, network: Any = None, input_shape: tuple[int, int, int] | None = None,
                  warn: Callable[[str], None] | None = None) -> Any:
    """The :class:`~zoo.diagram.graph.NetworkGraph` that :func:`plot_network` draws (see there)."""
    warn = warn or _warning
    if isinstance(model_or_reference, (str, Path)):
        from zoo.resolver import kind_of

        if kind_of(model_or_reference) == "onnx":
            from zoo.diagram.onnx_graph import onnx_graph

            return onnx_graph(model_or_reference, _onnx_title(model_or_reference), warn=warn)
        from zoo.resolver import resolve  # torch: only for a diagram of a torch network

        model_or_reference = resolve(model_or_reference, network=network)
    module, card = _module_and_card(model_or_reference)
    shape = tuple(input_shape) if input_shape else (card.channels, *card.input_size) if card else (3, 224, 224)
    from zoo.diagram.torch_graph import module_graph  # torch

    title = card.name if card else type(module).__name__
    return module_graph(module, shape, title, warn=warn)


def _module_and_card(value: Any) -> tuple[Any, Any]:
    """(module, card or None) of a Built, a (module, card) pair, or a bare module."""
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], value[1]
    if not callable(getattr(value, "named_modules", None)):
        raise ZooError(f"cannot draw a {type(value).__name__}: give a model name, a checkpoint, an ONNX file, "
                       f"a layer array or a torch.nn.Module")
    return value, None


def _onnx_title(path: str | Path) -> str:
    """The model's name from the file's zoo metadata; the file's name for a foreign ONNX file."""
    from zoo.resolver import read_onnx_card

    try:
        return read_onnx_card(path).name
    except ZooError:
        return Path(path).stem


def write_diagram(graph: Any, path: str | Path, *, warn: Callable[[str], None] | None = None) -> Path:
    """Lay out and draw a :class:`~zoo.diagram.graph.NetworkGraph`, and write it to ``path`` (.png or .svg)."""
    from matplotlib import rc_context  # matplotlib: only when a diagram is drawn

    from zoo.diagram.draw import MAX_HEIGHT_IN, MAX_WIDTH_IN, network_figure
    from zoo.diagram.layout import place

    path, warn = Path(path), warn or _warning
    file_format = picture_format(path, "a network diagram")
    figure, scale = network_figure(graph, place(graph))
    if scale < 1:
        sharper = "; an .svg keeps small text sharp" if file_format == "png" else ""
        warn(f"the diagram of {len(graph.layers)} layers is larger than {MAX_WIDTH_IN:g} x {MAX_HEIGHT_IN:g} inches: "
             f"drawn at {scale:.0%} of full size{sharper}")
    with rc_context({"svg.fonttype": "none"}), atomic_path(path, elsewhere="--plot") as tmp:  # SVG text stays text
        figure.savefig(tmp, format=file_format)
    return path


def _warning(message: str) -> None:
    warnings.warn(message, ZooWarning, stacklevel=3)
