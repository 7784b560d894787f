"""Per-sample random augmentations on batched float tensors (one random draw per image, on any device).

torchvision's v2 transforms draw one set of parameters per call, i.e. per batch; contrastive learning needs
independent views per image, so geometry is applied as a batched affine warp (``affine_grid``/``grid_sample``)
and photometric jitter as per-sample broadcasts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchAugment(nn.Module):
    """Random resized crop (as scale + translation), horizontal flip, colour jitter, grayscale, pixel noise.

    Args:
        scale: (min, max) area fraction kept by the crop.
        max_shift: largest translation as a fraction of the image side (on top of what the crop allows).
        flip: probability of a horizontal flip.
        jitter: strength of brightness/contrast/saturation jitter (0 disables).
        grayscale: probability of converting to grayscale (RGB only).
        noise_std: std of additive Gaussian pixel noise (0 disables).

    Shape:
        input (B, C, H, W) float in [0, 1]; output the same shape.

    >>> aug = BatchAugment(scale=(0.5, 1.0), flip=0.5)
    >>> aug(torch.rand(4, 3, 8, 8)).shape
    torch.Size([4, 3, 8, 8])
    """

    def __init__(self, scale: tuple[float, float] = (1.0, 1.0), max_shift: float = 0.0, flip: float = 0.0,
                 jitter: float = 0.0, grayscale: float = 0.0, noise_std: float = 0.0) -> None:
        super().__init__()
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.scale, self.max_shift, self.flip = scale, max_shift, flip
        self.jitter, self.grayscale, self.noise_std = jitter, grayscale, noise_std

    def forward(self, x: Tensor) -> Tensor:
        x = self._geometry(x)
        if self.jitter > 0:
            x = self._color(x)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        return x.clamp(0.0, 1.0)

    def _geometry(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        lo, hi = self.scale
        side = torch.empty(b, device=x.device).uniform_(lo, hi).sqrt()  # crop side as a fraction of the image
        room = (1 - side) + self.max_shift
        tx = (torch.rand(b, device=x.device) * 2 - 1) * room
        ty = (torch.rand(b, device=x.device) * 2 - 1) * room
        sx = side * torch.where(torch.rand(b, device=x.device) < self.flip, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = sx, side, tx, ty
        if lo == hi == 1.0 and self.max_shift == 0 and self.flip == 0:
            return x
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _color(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        def factor() -> Tensor:
            return torch.empty(b, 1, 1, 1, device=x.device).uniform_(1 - self.jitter, 1 + self.jitter)
        x = x * factor()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor() + mean
        if c == 3:
            gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            x = (x - gray) * factor() + gray
            to_gray = torch.rand(b, 1, 1, 1, device=x.device) < self.grayscale
            x = torch.where(to_gray, gray.expand_as(x), x)
        return x


def augment_preset(name: str) -> BatchAugment:
    """Named presets: ``none``, ``digits`` (shift/scale/noise), ``cifar_weak`` (crop 0.8-1, flip),
    ``cifar_simclr`` (SimCLR's crop 0.2-1, flip, colour jitter, grayscale)."""
    presets = {
        "none": BatchAugment(),
        "digits": BatchAugment(scale=(0.7, 1.0), max_shift=0.1, noise_std=0.05),
        "cifar_weak": BatchAugment(scale=(0.8, 1.0), flip=0.5),
        "cifar_simclr": BatchAugment(scale=(0.2, 1.0), flip=0.5, jitter=0.4, grayscale=0.2),
    }
    if name not in presets:
        raise ValueError(f"unknown augmentation preset {name!r}; expected one of {sorted(presets)}")
    return presets[name]
