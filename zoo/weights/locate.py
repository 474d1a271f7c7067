"""Finding a weight source's file: caches, then an installed provider, then the network.

Nothing here imports torch until a download is really made; offline
(:func:`zoo.settings.offline`) no network call is ever attempted.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from zoo import settings
from zoo.atomic import REFUSED, clean_stale, new_temp, publish
from zoo.card import ModelCard, WeightSource
from zoo.errors import PluginError, ZooError, os_errno, write_error
from zoo.registry import import_object
from zoo.weights.files import hash_prefix, sha256_of, verify_sha256
from zoo.weights.missing import HF_FILES, unavailable

__all__ = ["Located", "locate", "find_local", "download", "cache_path", "zoo_weights_dir"]


@dataclass(frozen=True)
class Located:
    """A weights file on disk and how it was found."""

    path: Path
    origin: str  # file | torch-hub-cache | hf-cache | zoo-cache | provider | download
    source: WeightSource


def zoo_weights_dir() -> Path:
    return settings.cache_dir() / "weights"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-") or "x"


def _ext(source: WeightSource) -> str:
    name = source.file or source.url.rsplit("/", 1)[-1]
    suffix = Path(name).suffix
    return suffix if suffix else ".pth"


def cache_path(card: ModelCard, source: WeightSource, sha256: str, ext: str) -> Path:
    """zoo's cache key: ``<arch>-<tag>-<sha256[:12]><ext>``, never a bare ``weights.pth``."""
    return zoo_weights_dir() / f"{_safe(card.name)}-{_safe(source.tag)}-{sha256[:12]}{ext}"


def locate(card: ModelCard, source: WeightSource) -> Located:
    """The file of ``source``: local first, then (unless offline) the network."""
    reasons: list[str] = []
    found = find_local(card, source, reasons)
    if found is not None:
        return found
    if settings.offline():
        raise unavailable(card, source, reasons, offline=True)
    return download(card, source, reasons)


def find_local(card: ModelCard, source: WeightSource, reasons: list[str], *, verify: bool = True) -> Located | None:
    """Caches, then the provider; ``reasons`` collects why a step found nothing useful.
    ``verify=False`` skips the sha256 check (to report what is here, not to load it)."""
    for origin, path in _local_candidates(card, source, reasons):
        if path is not None:
            if verify:
                verify_sha256(path, source.sha256)
            return Located(path, origin, source)
    return None


def _local_candidates(card: ModelCard, source: WeightSource, reasons: list[str]):
    """(origin, path or None) for each local place, lazily: the provider runs only if asked."""
    if source.file:
        path = settings.torch_hub_dir() / "checkpoints" / source.file
        yield "torch-hub-cache", path if path.is_file() else None
    if source.hf_hub:
        yield "hf-cache", _hf_cached(source.hf_hub)
    yield "zoo-cache", _zoo_cached(card, source)
    if source.provider:
        yield "provider", _from_provider(card, source, reasons)


def _hf_cached(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache  # only with an hf_hub source
    except ImportError:
        return None
    for filename in HF_FILES:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(settings.hf_cache_dir()))
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _zoo_cached(card: ModelCard, source: WeightSource) -> Path | None:
    folder = zoo_weights_dir()
    if not folder.is_dir():
        return None
    known = source.sha256 or hash_prefix(source.file or source.url.rsplit("/", 1)[-1])
    stem = f"{_safe(card.name)}-{_safe(source.tag)}-{known[:12]}"
    matches = sorted(
        (p for p in folder.glob(f"{stem}*") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return matches[0] if matches else None


def _from_provider(card: ModelCard, source: WeightSource, reasons: list[str]) -> Path | None:
    try:
        provider = import_object(source.provider, owner=f"weights '{source.tag}' of {card.name}")
        result = provider()
    except (ZooError, PluginError) as exc:
        reasons.append(str(exc))
        return None
    if result is None or not Path(result).is_file():
        reasons.append(f"provider {source.provider} found no file")
        return None
    return Path(result)


def download(card: ModelCard, source: WeightSource, reasons: list[str] | None = None) -> Located:
    """Fetch ``source`` over the network (never called offline)."""
    reasons = reasons or []
    if source.url:
        return _download_url(card, source, reasons)
    if source.hf_hub:
        return _download_hf(card, source, reasons)
    raise unavailable(card, source, reasons, offline=False)


def _download_url(card: ModelCard, source: WeightSource, reasons: list[str]) -> Located:
    import torch.hub  # only for a download

    folder = zoo_weights_dir()
    stem = f"{_safe(card.name)}-{_safe(source.tag)}"  # names the temporary: .STEM.PID.RANDOM.tmp
    prefix = hash_prefix(source.url.rsplit("/", 1)[-1])
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale(folder, only=stem)  # what a killed download of these weights left
        tmp = new_temp(folder / stem)
        torch.hub.download_url_to_file(source.url, str(tmp), hash_prefix=prefix or None, progress=sys.stderr.isatty())
        digest = sha256_of(tmp)
        if source.sha256 and not digest.startswith(source.sha256.lower()):
            raise ZooError(f"sha256 mismatch for {source.url}: expected {source.sha256[:16]}..., got {digest[:16]}...")
        final = publish(tmp, cache_path(card, source, digest, _ext(source)))
    except ZooError:
        raise
    except Exception as exc:  # URLError, HTTPError, OSError, hash-prefix RuntimeError
        if os_errno(exc) in REFUSED:  # the cache's disk, not the network
            raise write_error(folder, exc) from exc
        reasons.insert(0, f"download failed ({type(exc).__name__}: {str(exc)[:120]})")
        raise unavailable(card, source, reasons, offline=False) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return Located(final, "download", source)


def _download_hf(card: ModelCard, source: WeightSource, reasons: list[str]) -> Located:
    try:
        from huggingface_hub import hf_hub_download  # only for a download
    except ImportError:
        raise ZooError(f"weights of {card.name} come from the Hugging Face hub: pip install huggingface_hub") from None
    last: Exception | None = None
    for filename in HF_FILES:
        try:
            path = Path(hf_hub_download(source.hf_hub, filename, cache_dir=str(settings.hf_cache_dir())))
        except Exception as exc:  # EntryNotFoundError, connection errors, ...
            last = exc
            continue
        verify_sha256(path, source.sha256)
        return Located(path, "download", source)
    reasons.insert(0, f"download failed ({type(last).__name__}: {str(last)[:120]})")
    raise unavailable(card, source, reasons, offline=False)

