"""``--nproc N``: start N workers through torch's elastic launcher (what ``torchrun`` runs).

The launcher process becomes torchrun's agent: it rendezvouses with the other machines (if
any), starts ``python -m zoo <the same command>`` per worker with RANK/WORLD_SIZE/LOCAL_RANK
set, watches them, and when one dies stops the rest. Every failure ends here as one
:class:`~zoo.errors.ZooError` line, within a bounded time.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

from zoo.distributed.job import DEFAULT_TIMEOUT, LOST_CONTACT_EXIT
from zoo.errors import ZooError, first_line

__all__ = ["launch", "launcher_args", "free_port", "parse_nnodes", "RDZV_BACKENDS"]

RDZV_BACKENDS = ("c10d", "static", "etcd", "etcd-v2")
_SHUTDOWN_GRACE_S = 10  # SIGTERM to the surviving workers, then SIGKILL after this long


class LaunchInterrupted(ZooError):
    exit_code = 130


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_nnodes(nnodes: str | int | None) -> tuple[int, int]:
    """``"2"`` -> (2, 2); ``"1:4"`` -> (1, 4) (elastic: start with 1, accept up to 4)."""
    text = str(nnodes if nnodes is not None else 1).strip()
    try:
        low, _, high = text.partition(":")
        bounds = (int(low), int(high or low))
    except ValueError:
        raise ZooError(f"--nnodes must be a number N or a range MIN:MAX, not {text!r}") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise ZooError(f"--nnodes needs 0 < MIN <= MAX, not {text!r}")
    return bounds


def launcher_args(
    command: Sequence[str],
    *,
    nproc: int = 1,
    nnodes: str | int | None = None,
    node_rank: int | None = None,
    rdzv_endpoint: str | None = None,
    rdzv_backend: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """torchrun's command line for ``python -m zoo <command>`` on ``nproc`` workers per node."""
    if nproc < 1:
        raise ZooError(f"--nproc must be at least 1, not {nproc}")
    low, high = parse_nnodes(nnodes)
    backend = rdzv_backend or "c10d"
    if backend not in RDZV_BACKENDS:
        raise ZooError(f"--rdzv-backend must be one of {', '.join(RDZV_BACKENDS)}, not {backend!r}")
    if high > 1 and not rdzv_endpoint:
        raise ZooError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (a free port on the first machine), "
                       f"the same on every machine")
    if backend == "static" and high > 1 and node_rank is None:
        raise ZooError("--rdzv-backend static needs --node-rank (0 on the first machine, 1, 2, ... on the others)")
    if node_rank is not None and not 0 <= node_rank < high:
        raise ZooError(f"--node-rank must be in 0..{high - 1}, not {node_rank}")
    endpoint = rdzv_endpoint or f"127.0.0.1:{free_port()}"
    if ":" not in endpoint.rsplit("]", 1)[-1]:
        raise ZooError(f"--rdzv-endpoint must be HOST:PORT, not {endpoint!r}")
    seconds = max(1, int(round(timeout)))
    conf = f"timeout={seconds}" if backend == "static" else f"join_timeout={seconds},read_timeout={seconds}"
    args = [
        "--nproc-per-node", str(nproc),
        "--nnodes", f"{low}:{high}" if low != high else str(low),
        "--rdzv-backend", backend,
        "--rdzv-endpoint", endpoint,
        "--rdzv-id", os.environ.get("ZOO_RDZV_ID", "zoo" if high > 1 else uuid.uuid4().hex[:12]),
        "--rdzv-conf", conf,
        "--max-restarts", "0",
        "--monitor-interval", "0.1",
        "--shutdown-timeout", str(_SHUTDOWN_GRACE_S),
    ]
    if node_rank is not None:
        args += ["--node-rank", str(node_rank)]
    return args + ["-m", "zoo", *command]


def launch(command: Sequence[str], *, nproc: int = 1, timeout: float = DEFAULT_TIMEOUT, **rdzv: Any) -> None:
    """Run ``zoo <command>`` on ``nproc`` local workers (and wait for the other nodes).

    Raises :class:`ZooError` (one line) when a worker fails, the rendezvous times out, or
    the run is interrupted; returns when every worker on every node has finished.
    """
    args = launcher_args(command, nproc=nproc, timeout=timeout, **rdzv)
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))  # torchrun would force 1
    os.environ["ZOO_DIST_TIMEOUT"] = str(timeout)
    # torch's elastic launcher, imported once the environment above is set
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import get_args_parser, run

    _quiet_torch_elastic()
    parsed = get_args_parser().parse_args(args)
    started = time.monotonic()
    try:
        run(parsed)
    except ChildFailedError as exc:
        raise ZooError(_failure_line(exc, time.monotonic() - started)) from None
    except RendezvousError as exc:
        raise ZooError(_rendezvous_line(exc, parsed, timeout)) from None
    except (KeyboardInterrupt, SignalException) as exc:  # Ctrl-C, or SIGTERM/SIGHUP from a scheduler
        name = _signal_name(getattr(exc, "sigval", 2))
        raise LaunchInterrupted(f"interrupted by {name}; the workers were stopped (rank 0 saves a resumable "
                                f"state when it can: see above)") from None


def _failure_line(exc: Any, seconds: float) -> str:
    """One line naming the worker that failed first, not those that failed because of it."""
    failures = getattr(exc, "failures", {}) or {}
    if not failures:
        return f"distributed training failed after {seconds:.1f} s: {first_line(exc, 300)}"

    def blame(item: tuple[int, Any]) -> tuple[int, float, int]:
        """Own failures first, then lost contact (a peer hung), then workers the agent stopped (SIGTERM)."""
        rank, failure = item
        code = int(getattr(failure, "exitcode", 1))
        victim = 1 if code == LOST_CONTACT_EXIT else 2 if code in (-signal.SIGTERM, -signal.SIGINT) else 0
        return (victim, getattr(failure, "timestamp", 0), rank)

    rank, first = min(failures.items(), key=blame)
    code = int(getattr(first, "exitcode", 1))
    if code == LOST_CONTACT_EXIT:
        how = "lost contact with the other workers (one hung past --dist-timeout, or the network failed)"
    elif code < 0:
        how = f"was killed by {_signal_name(-code)}"
    else:
        how = f"exited with code {code}"
    return (f"distributed training failed: worker {rank} {how} after {seconds:.1f} s; "
            f"the other workers were stopped (the worker's own message, if any, is above)")


def _signal_name(number: Any) -> str:
    try:
        return signal.Signals(int(number)).name
    except ValueError:
        return f"signal {number}"


def _rendezvous_line(exc: Exception, parsed: Any, timeout: float) -> str:
    text = type(exc).__name__ + (f": {first_line(exc)}" if str(exc).strip() else "")
    return (f"the workers could not meet at {parsed.rdzv_endpoint} ({parsed.rdzv_backend}, --nnodes {parsed.nnodes}) "
            f"within {timeout:g} s ({text}); start zoo on every machine with the same --rdzv-endpoint and --nnodes "
            f"(--dist-timeout sets the wait)")


def _quiet_torch_elastic() -> None:
    """torchrun's agent logs pages per failure; zoo says it in one line (ZOO_DIST_VERBOSE=1 keeps them)."""
    if os.environ.get("ZOO_DIST_VERBOSE") == "1":
        return
    import torch.distributed.run  # noqa: F401  (creates the loggers)

    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
