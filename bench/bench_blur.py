"""Benchmark: Gaussian blur of a batch of 28x28 images, batched through OpenCV's channels vs
one ``cv2.GaussianBlur`` call per image.

Usage:
    .venv/bin/python bench/bench_blur.py [--images 70000] [--kernel 5] [--repeats 5]

OpenCV filters every channel of one image in a single call, up to 128 channels here,
so :func:`keras_clust.data.gaussian_blur` passes the batch as channels, 128 images per
call. Prints the median wall time of both ways and checks they give identical pixels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from keras_clust.data import gaussian_blur


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=70000)
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(0).random((args.images, 28, 28), dtype=np.float32)
    k = args.kernel

    def per_image():
        return np.stack([cv2.GaussianBlur(img, (k, k), 0) for img in x])

    def batched():
        return gaussian_blur(x, k)

    times = {}
    for name, fn in (("one call per image", per_image), ("batched as channels (128 per call)", batched)):
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn()
            runs.append(time.perf_counter() - start)
        times[name] = (statistics.median(runs), out)
    (a, out_a), (b, out_b) = times.values()
    assert np.array_equal(out_a, out_b), "batched blur differs from the per-image blur"
    print(f"| way | median of {args.repeats} ({args.images} images, {k}x{k}) | per image |")
    print("|---|---|---|")
    for name, (t, _) in times.items():
        print(f"| {name} | {t * 1000:.0f} ms | {t / args.images * 1e6:.1f} µs |")
    print(f"identical pixels: yes; OpenCV {cv2.__version__}")


if __name__ == "__main__":
    main()
