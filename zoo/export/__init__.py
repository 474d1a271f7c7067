"""ONNX export: one self-describing file, checked structurally and against torch before it is written.

The file's ``metadata_props`` are the model card (:meth:`zoo.card.ModelCard.to_metadata`, the
same keys as a checkpoint header) plus export facts in ``extra``. One module a job, run in
this order by :mod:`zoo.export.pipeline` (:func:`export`, :func:`export_model`):

- :mod:`~zoo.export.options` -- every option checked once, before any work;
- :mod:`~zoo.export.exporters` -- dynamo, TorchScript if it fails, and saving one file;
- :mod:`~zoo.export.graph` -- onnx.checker (full), strict shape inference, shapes re-derived, no ATen
  fallbacks, the batch axis, the opset written;
- :mod:`~zoo.export.parity` -- onnxruntime vs torch on random inputs and real photos;
- :mod:`~zoo.export.optimize` and :mod:`~zoo.export.attention` -- ``--optimize``: onnxruntime's offline
  optimiser, and transformer fusions (attention as one node);
- :mod:`~zoo.export.metadata` -- the card the file carries;
- :mod:`~zoo.export.quantize` and :mod:`~zoo.export.int8_choice` -- int8 (static QDQ, dynamic, auto), measured;
- :mod:`~zoo.export.inputs` and :mod:`~zoo.export.report` -- what goes in, what comes out.

No submodule is named after a function here, so ``from zoo.export import export`` stays the function.
"""

from __future__ import annotations

from zoo.export.inputs import example_input, sample_images
from zoo.export.options import DEFAULT_OPSET, EXPORTERS
from zoo.export.pipeline import export, export_model
from zoo.export.report import ExportReport

__all__ = ["export", "export_model", "ExportReport", "EXPORTERS", "DEFAULT_OPSET", "sample_images", "example_input"]
