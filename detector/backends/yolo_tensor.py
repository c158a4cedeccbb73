"""YOLO pre- and post-processing on the inference device, for whole batches.

Why: ultralytics' ``predict()`` letterboxes every frame on the CPU with cv2,
converts HWC->CHW and uint8->float per image and wraps each result in Python
objects. On a GPU worker that, not the network, bounds throughput (measured on
an H200: ~0.5k frames/s through ``predict`` against ~4k for the forward pass).
Here a batch's frames are stacked into one uint8 tensor per frame shape (cameras
differ in resolution), copied to the device once (uint8 is 4x less than float;
pinned memory makes the copy asynchronous), and letterboxed there.

The transform reproduces ultralytics' own ``LetterBox`` as its predictor uses
it for a batch of equal-shape frames (``rect=True`` -> ``auto``): scale to fit
``imgsz`` keeping the aspect ratio, pad to a multiple of the stride with 114,
centred, with its rounding. Resizing is bilinear with half-pixel centres like
cv2's INTER_LINEAR and is rounded to whole levels like cv2's uint8 output, so
the network sees the same input up to cv2's fixed-point rounding (a level at
some pixels). NMS is ultralytics' own ``non_max_suppression`` with the
predictor's defaults. One deliberate difference: ``predict()`` pads a batch of
*mixed* shapes to a full ``imgsz`` square, so there a camera's boxes depend on
which other cameras share its batch; here each shape is letterboxed alone, so
they do not.
"""

from __future__ import annotations

import copy
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

# isort: off
import detector.offline  # noqa: F401  (before ultralytics)
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.checks import check_imgsz
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import scale_boxes

# isort: on
from detector.detections import PERSON_CLASS, RawBoxes

PAD_VALUE = 114.0  # ultralytics' LetterBox padding level
NMS_IOU = float(DEFAULT_CFG.iou)  # what predict() uses when not told otherwise
MAX_DET = int(DEFAULT_CFG.max_det)
AGNOSTIC_NMS = bool(DEFAULT_CFG.agnostic_nms)


@dataclass(frozen=True)
class Letterbox:
    """Where frames of one shape land in the network input; all sizes are (height, width)."""

    source: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]
    top: int
    left: int

    @classmethod
    def fit(cls, source: tuple[int, int], imgsz: tuple[int, int], stride: int) -> Letterbox:
        """``LetterBox(imgsz, auto=True, center=True, stride=stride).get_params``, line for line."""
        h, w = source
        r = min(imgsz[0] / h, imgsz[1] / w)
        new_h, new_w = max(round(h * r), 1), max(round(w * r), 1)
        dh, dw = (imgsz[0] - new_h) % stride, (imgsz[1] - new_w) % stride  # minimum rectangle
        top, left = round(dh / 2 - 0.1), round(dw / 2 - 0.1)
        return cls(source, (new_h, new_w), (new_h + dh, new_w + dw), top, left)

    @property
    def gain(self) -> tuple[float, float]:
        """(y, x) scale from source to resized pixels; the rounded sides make them differ slightly."""
        return self.resized[0] / self.source[0], self.resized[1] / self.source[1]

    def apply(self, frames: torch.Tensor, integer_resize: bool) -> torch.Tensor:
        """(N, H, W, 3) uint8 BGR on the device -> (N, 3, h, w) RGB levels 0-255, letterboxed.

        cv2's INTER_LINEAR is bilinear with half-pixel centres and no antialiasing, computed in fixed
        point and rounded to uint8. ``integer_resize`` resizes the uint8 levels directly: torch's CPU
        kernel has such a fixed-point path (measured 2-3x faster than float there); CUDA has no uint8
        kernel, so on a GPU the resize runs in float and is rounded to whole levels afterwards."""
        x = frames.flip(3).permute(0, 3, 1, 2)  # BGR -> RGB, BHWC -> BCHW (a channels-last view)
        if not integer_resize:
            x = x.float()
        if self.resized != self.source:
            x = F.interpolate(x, size=self.resized, mode="bilinear", align_corners=False)
            x = x if integer_resize else x.round_()
        bottom = self.padded[0] - self.resized[0] - self.top
        right = self.padded[1] - self.resized[1] - self.left
        return F.pad(x, (self.left, right, self.top, bottom), value=PAD_VALUE)

    def to_source(self, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy in network-input pixels -> the source frame's, clipped to it (in place, as ultralytics does).

        The ratio and padding are passed rather than re-derived from the shapes: they are exactly the
        transform applied, so this is its inverse for every frame size."""
        pad = (self.left, self.top)
        return cast(torch.Tensor, scale_boxes(self.padded, boxes, self.source, ratio_pad=(self.gain, pad)))


@dataclass(frozen=True)
class ShapeGroup:
    """Frames of one shape: their positions in the batch, their letterbox and the network input."""

    indices: tuple[int, ...]
    letterbox: Letterbox
    tensor: torch.Tensor


def group_by_shape(images: Sequence[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Batch positions per frame shape, in first-seen order (one stacked tensor each)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected an HxWx3 uint8 BGR image, got {image.dtype} {image.shape}")
        groups.setdefault(image.shape, []).append(i)
    return groups


def to_device(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """One host->device copy: stacked straight into pinned memory on CUDA so the copy runs asynchronously."""
    cuda = device.type == "cuda"
    host = torch.empty((len(frames), *frames[0].shape), dtype=torch.uint8, pin_memory=cuda)
    np.stack(frames, out=host.numpy())
    return host.to(device, non_blocking=cuda)


def _channels_last_helps(device: torch.device) -> bool:
    """AutoBackend's rule: NHWC weights on x86 CPUs with oneDNN (faster convolutions), not on GPUs."""
    return (
        device.type == "cpu"
        and platform.machine() in {"AMD64", "x86_64"}
        and torch.backends.mkldnn.is_available()
        and bool(torch.backends.mkldnn.enabled)
    )


class TensorDetector:
    """A fused copy of a DetectionModel on one device, with batch letterbox and NMS around it."""

    def __init__(self, net: Any, device: torch.device, half: bool, image_size: int) -> None:
        self.net = net
        self.device = device
        self.half = half
        self.stride = max(int(net.stride.max()), 32) if hasattr(net, "stride") else 32
        height, width = check_imgsz(image_size, stride=self.stride, min_dim=2)
        self.imgsz = (int(height), int(width))
        self.end2end = bool(getattr(net, "end2end", False))
        self.integer_resize = device.type == "cpu"
        # The input in the network's own layout (channels-last on x86 CPUs), so no convolution converts it.
        self.memory_format = torch.channels_last if _channels_last_helps(device) else torch.contiguous_format

    @classmethod
    def prepare(cls, model: Any, device: str, half: bool, image_size: int) -> TensorDetector:
        """Copy (the YOLO object keeps its own for ``predict``), fuse, move and freeze the network."""
        import torchvision  # noqa: F401  (as AutoBackend.warmup: ultralytics' NMS uses torchvision's once imported)
        from ultralytics.utils.torch_utils import select_device

        target = select_device(device, verbose=False)
        net: Any = copy.deepcopy(model)
        if hasattr(net, "end2end"):
            net.end2end = False  # predict() (nms=None) uses the NMS head, so the same here
        net = net.fuse(verbose=False)
        net = net.to(target).eval()
        net = net.half() if half else net.float()
        for param in net.parameters():
            param.requires_grad_(False)
        if _channels_last_helps(target):
            net = net.to(memory_format=torch.channels_last)
        return cls(net, target, half, image_size)

    def preprocess(self, images: Sequence[np.ndarray]) -> list[ShapeGroup]:
        """The network input of each shape group, on the device, [0, 1], FP16 when half."""
        out = []
        for shape, indices in group_by_shape(images).items():
            letterbox = Letterbox.fit((shape[0], shape[1]), self.imgsz, self.stride)
            levels = letterbox.apply(
                to_device([images[i] for i in indices], self.device), self.integer_resize
            )
            tensor = (levels / 255).contiguous(memory_format=self.memory_format)  # true division: float32
            out.append(ShapeGroup(tuple(indices), letterbox, tensor.half() if self.half else tensor))
        return out

    def postprocess(
        self,
        output: Any,
        letterbox: Letterbox,
        confidence: float,
        classes: tuple[int, ...] | None = (PERSON_CLASS,),
    ) -> list[RawBoxes]:
        """Boxes of ``classes`` (None: all) above ``confidence`` after ultralytics' NMS, in frame pixels;
        one copy to the host."""
        kept = non_max_suppression(
            output,
            confidence,
            NMS_IOU,
            list(classes) if classes is not None else None,
            AGNOSTIC_NMS,
            max_det=MAX_DET,
            nc=0,
            end2end=self.end2end,
        )
        rows = torch.cat([k[:, :6].float() for k in kept]) if kept else torch.zeros((0, 6))
        rows[:, :4] = letterbox.to_source(rows[:, :4])
        host = rows.cpu().numpy()
        bounds = np.cumsum([len(k) for k in kept])[:-1]
        return [
            RawBoxes(
                np.ascontiguousarray(part[:, :4], dtype=np.float32),
                np.ascontiguousarray(part[:, 4], dtype=np.float32),
                part[:, 5].astype(np.int32),
            )
            for part in np.split(host, bounds)
        ]

    def detect(
        self,
        images: Sequence[np.ndarray],
        confidence: float,
        classes: tuple[int, ...] | None = (PERSON_CLASS,),
    ) -> list[RawBoxes]:
        """One RawBoxes per image, in order; one forward pass per frame shape."""
        found: list[RawBoxes] = [RawBoxes.empty()] * len(images)
        with torch.inference_mode():
            for group in self.preprocess(images):
                boxes = self.postprocess(self.net(group.tensor), group.letterbox, confidence, classes)
                for index, raw in zip(group.indices, boxes, strict=True):
                    found[index] = raw
        return found
