"""Camera-motion clips synthesised from still photos: pans, zooms and small rotations.

Real training video is scarce offline; a virtual camera moving over a photo gives clips with
realistic content and smooth, known motion. Each clip is a sequence of affine crops (one
``grid_sample`` call), fully determined by the generator's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vitok import io
from vitok.data.datasets import MediaFolder
from vitok.data.transforms import EvalTransform, uniform
from vitok.io import resize


@dataclass(frozen=True)
class CameraMotion:
    """Ranges of the virtual camera's path over one clip.

    Attributes:
        num_frames, size: clip length T and frame size (H, W).
        crop: side of the first frame's crop as a fraction of the photo's shorter side.
        pan: distance travelled by the crop centre, as a fraction of the crop side.
        zoom: ratio of the last frame's crop side to the first's (log-uniform in the range).
        rotation: largest total rotation over the clip, in degrees.
    """

    num_frames: int = 16
    size: tuple[int, int] = (128, 128)
    crop: tuple[float, float] = (0.3, 0.8)
    pan: tuple[float, float] = (0.0, 0.5)
    zoom: tuple[float, float] = (0.8, 1.25)
    rotation: float = 5.0

    def path(self, height: int, width: int, gen: torch.Generator) -> Tensor:
        """Per-frame affine matrices (T, 2, 3) for ``F.affine_grid`` over a (height, width) photo."""
        side = uniform(gen, *self.crop) * min(height, width)
        zoom = math.exp(uniform(gen, math.log(self.zoom[0]), math.log(self.zoom[1])))
        direction = uniform(gen, 0, 2 * math.pi)
        travel = uniform(gen, *self.pan) * side
        turn = math.radians(uniform(gen, -self.rotation, self.rotation))
        aspect = self.size[1] / self.size[0]
        reach = max(side, side * zoom) * math.hypot(1, aspect) / 2  # half-diagonal of the largest crop
        x0 = uniform(gen, min(reach, width / 2), max(width - reach, width / 2))
        y0 = uniform(gen, min(reach, height / 2), max(height - reach, height / 2))
        t = torch.linspace(0, 1, self.num_frames, dtype=torch.float64)
        cx = (x0 + travel * math.cos(direction) * (t - 0.5)).clamp(0, width)
        cy = (y0 + travel * math.sin(direction) * (t - 0.5)).clamp(0, height)
        ch = side * zoom**t  # crop height in pixels per frame
        cw = ch * aspect
        angle = turn * t
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([
            torch.stack([cw / width * cos, -ch / width * sin, 2 * cx / width - 1], -1),
            torch.stack([cw / height * sin, ch / height * cos, 2 * cy / height - 1], -1),
        ], dim=1)
        return theta.float()

    def __call__(self, image: Tensor, gen: torch.Generator) -> Tensor:
        """Photo (3, H, W) in [-1, 1] -> clip (3, T, h, w) in [-1, 1]."""
        theta = self.path(image.shape[-2], image.shape[-1], gen)
        grid = F.affine_grid(theta, [self.num_frames, 3, *self.size], align_corners=False)
        src = image.unsqueeze(0).expand(self.num_frames, -1, -1, -1)
        frames = F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return frames.transpose(0, 1).clamp(-1, 1).contiguous()


class MotionClips(MediaFolder):
    """Camera-motion clips from the photos under ``roots``, addressed by ``(index, seed)`` keys like
    :class:`MediaFolder` (unreadable photos are skipped and reported the same way), so both can be
    mixed in one sampler.

    Photos are decoded with their shorter side near ``photo_side`` (a random length in the range,
    so the virtual camera sees the scene at different scales)."""

    def __init__(self, roots: list[str | Path], motion: CameraMotion,
                 photo_side: tuple[int, int] = (256, 768), hflip: bool = True) -> None:
        super().__init__(roots, "image", EvalTransform(motion.size))
        self.motion, self.photo_side, self.hflip = motion, photo_side, hflip

    def load(self, path: Path, gen: torch.Generator, size: int | None = None) -> Tensor:
        """A clip of ``motion.size`` frames (``size`` is not used: clips have one size)."""
        side = round(uniform(gen, *self.photo_side))
        photo = io.load_image(path, min_side=side)
        h, w = photo.shape[-2:]
        scale = side / min(h, w)
        photo = resize(photo, (max(1, round(h * scale)), max(1, round(w * scale))))
        clip = self.motion(photo, gen)
        if self.hflip and torch.rand((), generator=gen).item() < 0.5:
            clip = clip.flip(-1)
        return clip
