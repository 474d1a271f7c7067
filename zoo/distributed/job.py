"""Where this process stands in a torch.distributed job, without torch.

torchrun (and ``zoo ... --nproc N``, which calls the same launcher) starts every worker with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in its environment; a
process without them is a single-process run. The command line reads this module while it
parses options, so ``zoo train --help`` imports no torch; :mod:`zoo.distributed.env` holds the
process group and the collectives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError

__all__ = ["DistEnv", "DEFAULT_TIMEOUT", "LOST_CONTACT_EXIT", "MAX_TIMEOUT_S", "LostContact", "current", "is_distributed",
           "is_main", "configure", "settings"]

DEFAULT_TIMEOUT = 300.0  # seconds: rendezvous join and any single collective
LOST_CONTACT_EXIT = 76  # a worker whose peers vanished (EX_PROTOCOL): the launcher blames another worker


class LostContact(ZooError):
    """A collective failed: another worker died, hung past the timeout, or the network broke."""

    exit_code = LOST_CONTACT_EXIT


@dataclass(frozen=True)
class DistEnv:
    """This worker's place in the job, as the launcher describes it in the environment."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> DistEnv:
        environ = os.environ if environ is None else environ
        try:
            world = int(environ.get("WORLD_SIZE", "1"))
            rank = int(environ.get("RANK", "0"))
            local = int(environ.get("LOCAL_RANK", "0"))
            local_world = int(environ.get("LOCAL_WORLD_SIZE", str(world)))
        except ValueError:
            raise ZooError("RANK, WORLD_SIZE and LOCAL_RANK must be integers; start workers with torchrun "
                           "or 'zoo train --nproc N'") from None
        if world < 1 or not 0 <= rank < world:
            raise ZooError(f"RANK={rank} is outside WORLD_SIZE={world}; start workers with torchrun or --nproc")
        return cls(rank, world, local, local_world)


def current() -> DistEnv:
    return DistEnv.from_environ()


def is_distributed() -> bool:
    """True in a worker of a job with more than one process."""
    return current().active


def is_main() -> bool:
    """True where output belongs: rank 0, or a single process."""
    return current().is_main


# -- options that travel to the workers through their command line ------------------------

_SETTINGS: dict[str, Any] = {"sync_bn": False, "timeout": None}


MAX_TIMEOUT_S = 10**7  # about 115 days; timedelta and the stores overflow long before float does


def configure(*, sync_bn: bool | None = None, timeout: float | None = None) -> None:
    """Per-process distributed options: SyncBatchNorm, and the timeout of any one collective."""
    if sync_bn is not None:
        _SETTINGS["sync_bn"] = bool(sync_bn)
    if timeout is not None:
        if not 0 < timeout <= MAX_TIMEOUT_S:  # also refuses nan; timedelta overflows past this
            raise ZooError(f"--dist-timeout must be a positive number of seconds up to {MAX_TIMEOUT_S:,}, not {timeout}")
        _SETTINGS["timeout"] = float(timeout)


def settings() -> dict[str, Any]:
    timeout = _SETTINGS["timeout"] or float(os.environ.get("ZOO_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    return {"sync_bn": _SETTINGS["sync_bn"] or os.environ.get("ZOO_SYNC_BN") == "1", "timeout": timeout}
