"""GPU throughput of the YOLO backend: batch size x precision, through the backend's own ``detect_batch``.

Run on a machine with a CUDA GPU: ``python -m detector.bench_gpu [--seconds 4]``.
Prints one line per configuration (frames/s, ms per batch, peak GPU memory) and
the ratios against batch 1 / FP32 measured in the same run, plus the raw
network forward pass on a pre-built tensor, which shows how much of the time is
ultralytics' CPU pre-processing (letterbox, HWC->CHW) and NMS rather than the GPU.

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


def _frames(count: int, height: int = 576, width: int = 768) -> list[np.ndarray]:
    """PETS-sized frames with structure (not flat noise), so pre-processing does representative work."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=i * 7, axis=1) for i in range(count)]


def _timed(step: Callable[[], object], seconds: float, sync: Callable[[], None]) -> tuple[int, float]:
    for _ in range(3):  # warm-up: cuDNN autotune, allocator, lazy CUDA init
        step()
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    sync()
    return calls, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per configuration")
    parser.add_argument("--batches", default="1,8,16,32,64", help="comma-separated batch sizes")
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
    print(f"device: {name}, torch {torch.__version__}")
    batches = [int(b) for b in args.batches.split(",")]
    frames = _frames(max(batches))
    rows: dict[tuple[int, bool], float] = {}
    for half in (False, True) if on_gpu else (False,):
        backend = YoloBackend.from_architecture("yolo11n.yaml", device=device, confidence=0.4)
        backend.half = half
        for batch in batches:
            images = frames[:batch]
            if on_gpu:
                torch.cuda.reset_peak_memory_stats()
            calls, elapsed = _timed(functools.partial(backend.detect_batch, images), args.seconds, sync)
            fps = calls * batch / elapsed
            rows[(batch, half)] = fps
            peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else 0.0
            label = "fp16" if half else "fp32"
            print(
                f"detect_batch {label} batch {batch:3d}: {fps:8.1f} frames/s  "
                f"{elapsed / calls * 1000:7.1f} ms/batch  peak {peak:6.0f} MiB"
            )
    base = rows[(batches[0], False)]
    for (batch, half), fps in sorted(rows.items()):
        print(
            f"ratio vs batch {batches[0]} fp32: batch {batch:3d} "
            f"{'fp16' if half else 'fp32'} {fps / base:5.2f}x"
        )

    # The network alone, on a tensor already on the GPU: the ceiling the pipeline could reach.
    net = YoloBackend.from_architecture("yolo11n.yaml", device=device)._model.model.to(device).eval()
    for half in (False, True) if on_gpu else (False,):
        model = net.half() if half else net.float()
        for batch in (8, 64):
            tensor = torch.rand(batch, 3, 640, 640, device=device)
            tensor = tensor.half() if half else tensor
            with torch.inference_mode():
                calls, elapsed = _timed(functools.partial(model, tensor), args.seconds, sync)
            print(
                f"forward only {'fp16' if half else 'fp32'} batch {batch:3d}: "
                f"{calls * batch / elapsed:8.1f} frames/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
