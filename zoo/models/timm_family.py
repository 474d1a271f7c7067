"""Every timm architecture as ``timm/<name>``: names for the listing, cards from timm's configs."""

from __future__ import annotations

from zoo.card import ModelCard, WeightSource

__all__ = ["list_names", "card"]


def list_names() -> list[str]:
    import timm  # here: timm takes seconds to import; only listing or building its models needs it

    return list(timm.list_models())


def card(arch: str) -> ModelCard:
    """A card from the architecture's default pretrained config (input size, mean/std, ...)."""
    import timm.models  # as above

    cfg = timm.models.get_pretrained_cfg(arch)
    info = cfg.to_dict() if cfg is not None else {}
    channels, height, width = info.get("input_size", (3, 224, 224))
    weights = {}
    if info.get("hf_hub_id") or info.get("url"):
        tag = info.get("tag") or "default"
        weights[tag] = WeightSource(
            tag=tag,
            hf_hub=info.get("hf_hub_id") or "",
            url=info.get("url") or "",
            labels="imagenet" if info.get("num_classes", 1000) == 1000 else "",
            license=info.get("license") or "",
        )
    interpolation = info.get("interpolation", "bilinear")
    crop_mode = info.get("crop_mode") or "center"  # timm's default when the cfg names none
    return ModelCard(
        name=f"timm/{arch}",
        source="timm",
        factory="timm:create_model",
        factory_args={"model_name": arch},
        summary=f"timm {arch}",
        license=info.get("license") or "",
        tags=("timm",),
        input_size=(height, width),
        channels=channels,
        mean=tuple(info.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(info.get("std", (0.229, 0.224, 0.225))),
        interpolation=interpolation if interpolation in ("nearest", "bilinear", "bicubic") else "bilinear",
        resize_mode="center-crop",
        crop_pct=float(info.get("crop_pct") or 0.875),
        crop_mode=crop_mode,
        num_classes=int(info.get("num_classes", 1000)) or 1000,
        weights=weights,
    )
