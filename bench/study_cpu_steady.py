"""Does this machine hold its speed under sustained load? (issue 24, item 5)

The grid VAE's epochs slow from ~45 s to ~80 s during training, whether its grids come from the
tf.data pipeline or from an array built once (``bench/study_lj_grid_epochs.py``). This study
takes the model out of the question: it runs a fixed float32 matrix product on both cores (NumPy's
BLAS) without pause for ``--seconds`` and prints the products per second in every ``--window``.
A model-independent drop of the same size would mean the slowdown is the machine's (CPU credits,
frequency), not TensorFlow's.

    .venv/bin/python bench/study_cpu_steady.py [--seconds 240] [--window 10]

Appends its row to ``bench/results/cpu_steady.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=240.0)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--size", type=int, default=1024, help="side of the square matrices")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cpu_steady.json")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((a.size, a.size)).astype(np.float32) for _ in range(2))
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < a.seconds:
        count, window_start = 0, time.perf_counter()
        while time.perf_counter() - window_start < a.window:
            x @ y
            count += 1
        rate = count / (time.perf_counter() - window_start)
        rates.append(round(rate, 2))
        print(f"{time.perf_counter() - start:6.0f} s: {rate:.1f} products/s", flush=True)
    gflops = [round(r * 2 * a.size**3 / 1e9, 1) for r in rates]
    row = {
        "command": " ".join(sys.argv),
        "size": a.size,
        "window_s": a.window,
        "products_per_s": rates,
        "gflops": gflops,
    }
    append_json_row(a.out, row, {"machine": machine_info()})
    print(f"GFLOP/s per window: {gflops}")


if __name__ == "__main__":
    main()
