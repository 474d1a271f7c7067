"""``zoo bench``: median and p90 latency, throughput and GFLOP/s per runtime and batch, in one table."""

from __future__ import annotations

from typing import Any

import click

from zoo.cli.network import network_option
from zoo.cli.output import print_json, print_table
from zoo.cli.types import Text, api_rule
from zoo.resolver import kind_of

__all__ = ["bench_command"]


def _rule(name: str, kind: str) -> click.ParamType:
    """The click type that checks the flag by zoo.bench's own rule for ``name``."""
    return api_rule(_bench_rules, name, kind)


def _export_rules() -> Any:
    from zoo.export.options import option_problem  # torch (the package's import): only when a value is checked

    return option_problem


def _bench_rules() -> Any:
    from zoo.bench import option_problem  # torch: only when a value is checked

    return option_problem


@click.command("bench")
@click.argument("ref", metavar="MODEL|CKPT|ONNX", type=Text("a model, checkpoint or ONNX file"))
@click.option("--batch", "batches", type=_rule("batches", "text"), default="1,32", show_default=True,
              help="Comma-separated batch sizes.")
@click.option("--runtime", "runtimes", type=_rule("runtimes", "text"), default=None,
              help="Comma-separated: torch, torch-compile, onnxruntime, onnxruntime-int8 (quantized as 'zoo export "
                   "--quantize auto') [default: torch,onnxruntime; onnxruntime for .onnx].")
@click.option("--iters", type=_rule("iters", "integer"), default=200, show_default=True, help="Most timed calls per cell.")
@click.option("--seconds", type=_rule("seconds", "float"), default=2.0, show_default=True,
              help="Most seconds of timed calls per cell.")
@click.option("--threads", type=_rule("threads", "integer"),
              help="CPU threads for torch and onnxruntime, 1 to 1024 (default: each one's own).")
@click.option("--providers", type=_rule("providers", "text"), default="auto", show_default=True,
              help="onnxruntime providers: auto, cpu, cuda (or onnxruntime's names), comma-separated.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="torch's device (auto: CUDA when torch sees a GPU).")
@click.option("--max-accuracy-drop", type=api_rule(_export_rules, "max_accuracy_drop", "float"), default=1.0,
              show_default=True, help="Accuracy points onnxruntime-int8's choice of int8 format may lose.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@network_option
def bench_command(ref: str, batches: str, runtimes: str | None, iters: int, seconds: float, threads: int | None,
                  providers: str, device: str, max_accuracy_drop: float, as_json: bool, network: str | None) -> None:
    """Time MODEL (registry name), CKPT or ONNX under each runtime and batch size.

    Latency is per batch (median, 90th percentile); throughput is images/s; GFLOP/s
    counts a multiply-add as 2. 'vs torch' is throughput over torch eager at that batch.
    torch-compile's compile time is excluded (shown as setup).
    """
    from zoo.bench import bench  # numpy: 'zoo bench --help' stays fast

    if runtimes is None:
        runtimes = "onnxruntime" if kind_of(ref) == "onnx" else "torch,onnxruntime"
    results = bench(ref, batches=batches, runtimes=runtimes, iters=iters, seconds=seconds, threads=threads,
                    providers=providers, device=device, network=network, max_accuracy_drop=max_accuracy_drop)
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    rows = [
        (r.runtime, r.provider, r.batch, f"{r.median_ms:.3f}", f"{r.p90_ms:.3f}", f"{r.images_per_s:,.1f}",
         f"{r.gflops_per_s:.2f}" if r.gflops_per_s else "-", f"{r.vs_torch:.2f}x" if r.vs_torch else "-",
         f"{r.setup_s:.1f}s" if r.setup_s else "")
        for r in results
    ]
    print_table(f"zoo bench {ref}", ["RUNTIME", "PROVIDER", "BATCH", "MEDIAN ms", "P90 ms", "IMG/S", "GFLOP/S",
                                     "VS TORCH", "SETUP"], rows, justify=["left", "left"] + ["right"] * 7)
