"""Environment switches and directories, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import ZooError

__all__ = ["cache_dir", "debug", "offline", "strict_plugins", "torch_hub_dir", "hf_cache_dir", "max_image_pixels",
           "follow_links", "cache_budget", "DEFAULT_MAX_IMAGE_PIXELS", "DEFAULT_CACHE_BUDGET"]

#: the most pixels (width x height) an image file may have unless ZOO_MAX_IMAGE_PIXELS says otherwise:
#: room for any camera's photo (100 megapixels), at most 400 MB decoded (RGBA)
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000

#: the most bytes ``--cache auto`` lets one decoded data set take in zoo's cache, unless ZOO_CACHE_BUDGET
#: says otherwise (and never more than half the free space where the cache lives)
DEFAULT_CACHE_BUDGET = 50 << 30

_TRUE = {"1", "true", "yes", "on"}
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """zoo's own cache: ``$ZOO_CACHE``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "zoo"


def offline() -> bool:
    """True when no network call may be attempted (ZOO_OFFLINE or Hugging Face's switches)."""
    return any(_flag(v) for v in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def strict_plugins() -> bool:
    """ZOO_STRICT_PLUGINS=1 turns a broken plugin into a hard error (for plugin authors)."""
    return _flag("ZOO_STRICT_PLUGINS")


def torch_hub_dir() -> Path:
    """torch hub's directory, computed like ``torch.hub.get_dir()`` without importing torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "torch" / "hub"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "huggingface" / "hub"


def debug() -> bool:
    """ZOO_DEBUG=1: the ``zoo`` command shows the traceback of an error (as ``--debug`` does)."""
    return _flag("ZOO_DEBUG")


def max_image_pixels() -> int | None:
    """``ZOO_MAX_IMAGE_PIXELS``: the most pixels an image file may have (checked from its header,
    before decoding); unset: :data:`DEFAULT_MAX_IMAGE_PIXELS`; ``0`` or ``none``: no limit (None)."""
    raw = os.environ.get("ZOO_MAX_IMAGE_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    if raw.lower() == "none":
        return None
    try:
        value = int(raw.replace(",", ""))  # int() takes 200_000_000 too
    except ValueError:
        value = -1
    if value < 0:
        raise ZooError(f"ZOO_MAX_IMAGE_PIXELS must be a whole number of pixels (e.g. 200000000), or 0 or 'none' "
                       f"for no limit, not '{raw}'")
    return value or None


def follow_links() -> bool:
    """``ZOO_FOLLOW_LINKS=1``: data folders follow symbolic links that lead outside them (default: skipped)."""
    return _flag("ZOO_FOLLOW_LINKS")


def cache_budget() -> int:
    """``ZOO_CACHE_BUDGET``: the most bytes ``--cache auto`` stores for one decoded data set
    (``20G``, ``500M``, ``0`` = never cache); unset: :data:`DEFAULT_CACHE_BUDGET`. Either way at most
    half the free space of the cache's disk, so a decode never fills it."""
    raw = os.environ.get("ZOO_CACHE_BUDGET", "").strip()
    budget = DEFAULT_CACHE_BUDGET if not raw else _bytes(raw, "ZOO_CACHE_BUDGET")
    return min(budget, free_bytes(cache_dir()) // 2)


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    import shutil

    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _bytes(raw: str, name: str) -> int:
    """``20G``, ``500M``, ``1.5G``, ``123456`` -> bytes; anything else is a one-line error naming ``name``."""
    text = raw.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise ZooError(f"{name} must be a size like 20G, 500M or 0 (bytes, K/M/G/T), not '{raw}'")
    return int(value * _UNITS[unit])
