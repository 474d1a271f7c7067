"""Environment switches and directories, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "offline", "strict_plugins", "torch_hub_dir", "hf_cache_dir"]

_TRUE = {"1", "true", "yes", "on"}


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
