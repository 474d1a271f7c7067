"""zoo's one preprocessing gives timm's eval pixels, and the card's crop_mode is checked input.

The comparison: ``normalize(to_pixels(photo, Preprocess.from_card(card)))`` against timm's own
``create_transform(**resolve_data_config({}, pretrained_cfg=...))`` applied to the same Pillow
photo, both float32 (C, H, W). The difference is multiplied back by the card's std, so it is in
units of pixel value / 255 (the scale ``x / 255`` has before ``- mean``), and must be at most
1/255: one step of an 8-bit pixel. Measured: exactly 0 (the same Pillow resizes, the same
float32 arithmetic).

Real photos only (bundled with scikit-learn and scikit-image, no download); pretrained configs
only (no model is built, no weights are read).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo.card import CardError, ModelCard
from zoo.preprocess import Preprocess, normalize, to_pixels

timm_data = pytest.importorskip("timm.data")
timm_models = pytest.importorskip("timm.models")

ONE_STEP = 1 / 255

# (timm architecture, what its default pretrained cfg exercises)
MODELS = {
    "efficientnet_b0": "center, crop_pct 0.875, bicubic (224 / 0.875 = 256 exactly)",
    "resnet50": "center, crop_pct 0.95, bicubic (floor(224 / 0.95) = 235)",
    "gernet_l": "center, crop_pct 0.875, bilinear, 256 input",
    "darknet53": "center, crop_pct 0.887, bicubic",
    "volo_d4_448": "center, crop_pct 1.15: the crop is larger than the image, padded with 0",
    "dm_nfnet_f1": "squash, crop_pct 0.91",
    "coat_lite_medium_384": "squash, crop_pct 1.0",
    "deepseek_vit_412m": "border, crop_pct 1.0: longer side fitted, padded with the mean colour",
    "vit_base_patch16_sapiens2": "squash, non-square 1024 x 768 input, bilinear",
}


def _photos() -> dict[str, Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    arrays = {
        "china": china,  # 427 x 640
        "flower": flower,
        "chelsea": data.chelsea(),  # 300 x 451
        "coffee": data.coffee(),  # 400 x 600
        "astronaut": data.astronaut(),  # 512 x 512
        "rocket": data.rocket(),  # 427 x 640
        "astronaut-portrait": data.astronaut()[:, 128:384],  # 512 x 256, taller than wide
        "rocket-odd": data.rocket()[3:, 1:],  # 424 x 639: odd margins for the crop offsets
        "coffee-small": data.coffee()[::4, ::4],  # 100 x 150: enlarged, not reduced
        "camera-gray": data.camera(),  # 512 x 512, mode L
        "coins-gray": data.coins(),  # 303 x 384, mode L
    }
    return {name: Image.fromarray(np.ascontiguousarray(a)) for name, a in arrays.items()}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return _photos()


def _zoo(image: Image.Image, card: ModelCard) -> np.ndarray:
    pre = Preprocess.from_card(card)
    return normalize(to_pixels(image, pre).transpose(2, 0, 1)[None], pre)[0]


def _worst(card: ModelCard, transform, photos: dict[str, Image.Image]) -> dict[str, float]:
    """Max |zoo - timm| * std per photo; timm gets RGB, as its dataset readers convert."""
    std = np.asarray(card.channel_std, dtype=np.float32)[:, None, None]
    worst = {}
    for name, image in photos.items():
        ours = _zoo(image, card)
        theirs = transform(image.convert("RGB")).numpy()
        assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
        worst[name] = float(np.abs((ours - theirs) * std).max())
    return worst


@pytest.mark.parametrize("arch", list(MODELS))
def test_center_crop_equals_timm_eval_transform(arch, photos):
    cfg = timm_models.get_pretrained_cfg(arch).to_dict()
    config = timm_data.resolve_data_config({}, pretrained_cfg=cfg)
    from zoo.models import timm_family

    card = timm_family.card(arch)
    card = ModelCard.from_metadata(card.to_metadata())  # what a checkpoint or ONNX file carries
    assert (card.crop_pct, card.crop_mode, card.interpolation) == \
        (config["crop_pct"], config["crop_mode"], config["interpolation"])
    assert card.input_size == tuple(config["input_size"][1:])
    worst = _worst(card, timm_data.create_transform(**config), photos)
    assert max(worst.values()) <= ONE_STEP, worst


@pytest.mark.parametrize(("input_size", "crop_mode", "crop_pct", "interpolation"), [
    ((200, 300), "center", 0.9, "bicubic"),  # non-square: timm's ResizeKeepRatio(longest=0)
    ((300, 200), "border", 0.95, "bilinear"),  # padded and cropped in one image
    ((231, 229), "squash", 0.875, "bicubic"),
    ((160, 160), "center", 1.0, "nearest"),
])
def test_other_configs_equal_timm(photos, input_size, crop_mode, crop_pct, interpolation):
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    card = ModelCard(name="t", input_size=input_size, mean=mean, std=std, interpolation=interpolation,
                     resize_mode="center-crop", crop_pct=crop_pct, crop_mode=crop_mode)
    transform = timm_data.create_transform(input_size=(3, *input_size), crop_pct=crop_pct, crop_mode=crop_mode,
                                           interpolation=interpolation, mean=mean, std=std)
    worst = _worst(card, transform, photos)
    assert max(worst.values()) <= ONE_STEP, worst


def test_timm_cards_name_their_crop_mode():
    import zoo

    assert zoo.model_info("timm/dm_nfnet_f1").crop_mode == "squash"
    assert zoo.model_info("timm/deepseek_vit_412m").crop_mode == "border"
    assert zoo.model_info("timm/resnet50").crop_mode == "center"


def test_squash_is_a_plain_resize(photos):
    """zoo's own resize mode (MATLAB's imresize to the input size) is unchanged."""
    image = photos["chelsea"]
    for interpolation, resample in (("bilinear", Image.Resampling.BILINEAR), ("nearest", Image.Resampling.NEAREST)):
        card = ModelCard(name="t", input_size=(227, 227), interpolation=interpolation)
        assert card.resize_mode == "squash"
        expected = np.asarray(image.resize((227, 227), resample))
        assert np.array_equal(to_pixels(image, Preprocess.from_card(card)), expected)


@pytest.mark.parametrize("crop_mode", ["center", "squash", "border"])
def test_gray_models_in_every_crop_mode(photos, crop_mode):
    card = ModelCard(name="g", channels=1, mean=(0.5,), std=(0.5,), input_size=(28, 40),
                     resize_mode="center-crop", crop_pct=1.2, crop_mode=crop_mode)
    pixels = to_pixels(photos["astronaut-portrait"], Preprocess.from_card(card))
    assert pixels.shape == (28, 40, 1) and pixels.dtype == np.uint8
    if crop_mode == "border":  # the sides are the mean grey
        assert (pixels[:, 0] == 128).all() and (pixels[:, -1] == 128).all()


# -- the card field ----------------------------------------------------------------------


def test_old_files_without_crop_mode_load_with_the_default(tmp_path):
    from safetensors.numpy import save_file

    from zoo.checkpoint import read_card

    meta = ModelCard(name="timm/resnet50", source="timm", resize_mode="center-crop", crop_pct=0.95).to_metadata()
    assert meta["crop_mode"] == "center"
    del meta["crop_mode"]  # what zoo wrote before the field existed
    assert ModelCard.from_metadata(meta).crop_mode == "center"
    path = tmp_path / "old.safetensors"
    save_file({"w": np.zeros(1, dtype=np.float32)}, str(path), metadata=meta)
    card = read_card(path)
    assert card.crop_mode == "center" and "crop_mode" not in card.extra
    assert ModelCard.from_table("x", {"resize_mode": "center-crop"}).crop_mode == "center"


def test_crop_mode_round_trips():
    card = ModelCard(name="m", resize_mode="center-crop", crop_mode="border")
    assert ModelCard.from_metadata(card.to_metadata()).crop_mode == "border"
    assert ModelCard.from_table("m", card.to_table()).crop_mode == "border"


@pytest.mark.parametrize("value", ["crop", "Border", "center\nrm -rf", "", 1, ["center"], None])
def test_bad_crop_mode_is_a_one_line_card_error(tmp_path, value):
    from safetensors.numpy import save_file

    from zoo.checkpoint import read_card
    from zoo.errors import ZooError

    with pytest.raises(CardError) as info:
        ModelCard.from_table("m", {"crop_mode": value})
    assert str(info.value) == "m: crop_mode must be one of center, squash, border"
    meta = ModelCard(name="m").to_metadata()
    meta["crop_mode"] = value if isinstance(value, str) else json.dumps(value)
    path = tmp_path / "bad.safetensors"
    save_file({"w": np.zeros(1, dtype=np.float32)}, str(path), metadata=meta)
    with pytest.raises(ZooError, match="crop_mode must be one of center, squash, border") as info:
        read_card(path)
    assert "\n" not in str(info.value)
