"""The Python checks of benchmarks/gpu_check.sh: the CUDA execution provider, CUDA parity, fp16 vs fp32.

Each subcommand prints one line and exits 0 (pass), 1 (fail) or 3 (skipped: what it needs is absent).
``--cpu`` runs the same code on the CPU (the tests run it there; no GPU is needed):

    python benchmarks/gpu_check.py ep [--cpu]
    python benchmarks/gpu_check.py parity --model timm/resnet18 [--cpu]
    python benchmarks/gpu_check.py fp16 --model timm/resnet18 [--cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PASS, FAIL, SKIP = 0, 1, 3


def _providers(cpu: bool) -> list[str]:
    return ["CPUExecutionProvider"] if cpu else ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _session(path, cpu: bool):
    import onnxruntime

    if not cpu and hasattr(onnxruntime, "preload_dlls"):
        onnxruntime.preload_dlls()  # the CUDA/cuDNN libraries that torch's nvidia-* wheels bring
    return onnxruntime.InferenceSession(str(path), providers=_providers(cpu))


def check_ep(args: argparse.Namespace) -> int:
    """A session on the CUDA execution provider really holds CUDA (onnxruntime falls back silently)."""
    import onnxruntime

    from zoo.export import export

    wanted = "CPUExecutionProvider" if args.cpu else "CUDAExecutionProvider"
    if wanted not in onnxruntime.get_available_providers():
        print(f"{wanted} not in this onnxruntime build ({onnxruntime.__version__})")
        return FAIL
    with tempfile.TemporaryDirectory() as tmp:
        path = export("digitnet", Path(tmp) / "d.onnx", check=False).path
        got = _session(path, args.cpu).get_providers()[0]
    print(f"session provider {got} (onnxruntime {onnxruntime.__version__})")
    return PASS if got == wanted else FAIL


def _torch_and_ort(model_name: str, cpu: bool, tmp: Path, fp16: bool = False):
    import numpy as np
    import torch

    import zoo
    from zoo.export import export_model
    from zoo.export.inputs import model_input, sample_pixels

    device = "cpu" if cpu else "cuda"
    model, card = zoo.create_model(model_name).eval(), zoo.model_info(model_name)
    path = export_model(model, card, tmp / "m.onnx", check=False).path
    x = model_input(sample_pixels(card), card, raw=False)
    with torch.no_grad():
        expected = model.to(device)(torch.from_numpy(x).to(device)).float().cpu().numpy()
    fp32 = _session(path, cpu).run(None, {"input": x})[0]
    if not fp16:
        return expected, fp32, None
    from onnxruntime.transformers.float16 import convert_float_to_float16

    import onnx

    half = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    onnx.save(half, str(tmp / "m16.onnx"))
    return expected, fp32, _session(tmp / "m16.onnx", cpu).run(None, {"input": x})[0].astype(np.float32)


def check_parity(args: argparse.Namespace) -> int:
    """onnxruntime (CUDA) against torch (CUDA) on the bundled real photos."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        expected, got, _ = _torch_and_ort(args.model, args.cpu, Path(tmp))
    scale = max(1.0, float(np.abs(expected).max()))
    diff = float(np.abs(got - expected).max())
    same = float(np.mean(got.argmax(1) == expected.argmax(1)))
    print(f"{args.model}: max |ort - torch| {diff:.2e} (limit {args.tolerance * scale:.1e}), top-1 agreement {same:.0%}")
    return PASS if diff <= args.tolerance * scale else FAIL


def check_fp16(args: argparse.Namespace) -> int:
    """An fp16 conversion of the exported file (fp32 inputs and outputs kept) against the fp32 file."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        _, fp32, half = _torch_and_ort(args.model, args.cpu, Path(tmp), fp16=True)
    scale = max(1.0, float(np.abs(fp32).max()))
    diff = float(np.abs(half - fp32).max())
    same = float(np.mean(half.argmax(1) == fp32.argmax(1)))
    print(f"{args.model} fp16: max |fp16 - fp32| {diff:.2e} ({diff / scale:.1e} relative), top-1 agreement {same:.0%}")
    return PASS if diff / scale <= 0.05 else FAIL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("ep", "parity", "fp16"))
    parser.add_argument("--model", default="timm/resnet18")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="parity, relative to max(1, max|logits|)")
    parser.add_argument("--cpu", action="store_true", help="the same check on the CPU (no GPU needed)")
    args = parser.parse_args(argv)
    if not args.cpu:
        import torch

        if not torch.cuda.is_available():
            print("torch sees no CUDA GPU")
            return SKIP
    return {"ep": check_ep, "parity": check_parity, "fp16": check_fp16}[args.check](args)


if __name__ == "__main__":
    sys.exit(main())
