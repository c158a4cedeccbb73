"""GPU throughput of the YOLO backend's two paths, batch size x precision, through ``detect_batch``.

Run on a machine with a CUDA GPU: ``python -m detector.bench_gpu [--seconds 4]``
(``--device cpu`` dry-runs it anywhere, FP32 only). For each precision and
batch size it times the reference path (ultralytics ``predict()``: per-image
CPU letterbox) and the tensor path (``yolo_tensor``: one uint8 upload, letterbox
and NMS on the device) in the same process, one after the other, and prints
frames/s, ms per batch, peak GPU memory and tensor/reference ratios. Last, the
fused network alone on the tensor path's own input (already on the device):
the ceiling either path could reach; "of ceiling" says how close each gets.

Weights: the random-initialised ``yolo11n.yaml`` network (no download). Its
speed is the trained network's (same graph); its detections are meaningless,
so NMS sees fewer candidates than on real footage: a slight overestimate.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np

from detector.backends.yolo import YoloBackend

PATHS = {"predict": False, "tensor": True}  # label -> YoloBackend.tensor_preprocess


def _frames(count: int, height: int = 576, width: int = 768) -> list[np.ndarray]:
    """PETS-sized frames with structure (not flat noise), so pre-processing does representative work."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=i * 7, axis=1) for i in range(count)]


def _timed(
    step: Callable[[], object], seconds: float, sync: Callable[[], None], warmup: int
) -> tuple[int, float]:
    for _ in range(warmup):  # cuDNN autotune, allocator, lazy CUDA init, the predictor's own setup
        step()
    sync()
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        step()
        calls += 1
    sync()
    return calls, time.perf_counter() - start


def _label(half: bool) -> str:
    return "fp16" if half else "fp32"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per configuration")
    parser.add_argument("--batches", default="1,8,32,64", help="comma-separated batch sizes")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before each configuration")
    parser.add_argument("--device", default="cuda:0", help="'cpu' only to dry-run the script")
    args = parser.parse_args(argv)

    import torch

    device = args.device
    on_gpu = device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: nothing to measure")
        return 2
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    print(f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    batches = [int(b) for b in args.batches.split(",")]
    frames = _frames(max(batches))
    precisions = (False, True) if on_gpu else (False,)
    rows: dict[tuple[str, bool, int], float] = {}
    forward: dict[tuple[bool, int], float] = {}
    for half in precisions:
        backend = YoloBackend.from_architecture("yolo11n.yaml", device=device, confidence=0.4)
        backend.half = half
        for batch in batches:
            for path, tensor_preprocess in PATHS.items():
                backend.tensor_preprocess = tensor_preprocess
                if on_gpu:
                    torch.cuda.reset_peak_memory_stats()
                step = functools.partial(backend.detect_batch, frames[:batch])
                calls, elapsed = _timed(step, args.seconds, sync, args.warmup)
                rows[(path, half, batch)] = calls * batch / elapsed
                peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else 0.0
                print(
                    f"{path:7s} {_label(half)} batch {batch:3d}: {calls * batch / elapsed:8.1f} frames/s  "
                    f"{elapsed / calls * 1000:8.1f} ms/batch  peak {peak:6.0f} MiB"
                )
            forward[(half, batch)] = _forward_fps(backend, frames[:batch], args, sync)
            print(
                f"forward {_label(half)} batch {batch:3d}: {forward[(half, batch)]:8.1f} frames/s (ceiling)"
            )
    _print_ratios(rows, forward, batches, precisions)
    for half in precisions:
        print(_agreement(device, half, frames[:8]))
    return 0


def _agreement(device: str, half: bool, images: list[np.ndarray]) -> str:
    """Do both paths find the same boxes on this device? (The random network's boxes depend on the
    frame size only, so this checks the letterbox geometry, NMS and scaling, not recognition.)"""
    found = {}
    for path, tensor_preprocess in PATHS.items():
        backend = YoloBackend.from_architecture(
            "yolo11n.yaml", device=device, confidence=1e-4, tensor_preprocess=tensor_preprocess
        )
        backend.half = half
        found[path] = backend.detect_batch(images)
    counts = [(len(a.boxes), len(b.boxes)) for a, b in zip(found["predict"], found["tensor"], strict=True)]
    worst = 1.0
    for ref, new in zip(found["predict"], found["tensor"], strict=True):
        for box in ref.boxes:
            ious = [_iou(box, other) for other in new.boxes]
            worst = min(worst, max(ious, default=0.0))
    same = all(a == b for a, b in counts)
    return (
        f"agreement {_label(half)}: box counts per frame {'equal' if same else 'DIFFER'} "
        f"({sum(a for a, _ in counts)} vs {sum(b for _, b in counts)}), worst best-match IoU {worst:.3f}"
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _forward_fps(
    backend: YoloBackend, images: list[np.ndarray], args: argparse.Namespace, sync: Callable
) -> float:
    """The fused network alone, on the tensor path's letterboxed input already on the device."""
    import torch

    detector = backend.tensor_detector()
    (group,) = detector.preprocess(images)
    with torch.inference_mode():
        calls, elapsed = _timed(
            functools.partial(detector.net, group.tensor), args.seconds, sync, args.warmup
        )
    return calls * len(images) / elapsed


def _print_ratios(
    rows: dict[tuple[str, bool, int], float],
    forward: dict[tuple[bool, int], float],
    batches: list[int],
    precisions: tuple[bool, ...],
) -> None:
    base = rows[("predict", False, batches[0])]
    print(f"ratios (same run; 'vs base' = against predict fp32 batch {batches[0]}):")
    for half in precisions:
        for batch in batches:
            ref, new = rows[("predict", half, batch)], rows[("tensor", half, batch)]
            ceiling = forward[(half, batch)]
            print(
                f"  {_label(half)} batch {batch:3d}: tensor/predict {new / ref:5.2f}x  "
                f"vs base predict {ref / base:5.2f}x tensor {new / base:5.2f}x  "
                f"of ceiling predict {ref / ceiling:4.0%} tensor {new / ceiling:4.0%}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
