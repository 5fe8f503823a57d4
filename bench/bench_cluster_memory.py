"""Peak memory of ``keras-clust cluster`` on a million rows of 784 floats, against the rows' own size.

Writes (once, reused afterwards) a ``.npy`` of ``--rows`` float32 rows of 784 values (Fashion-MNIST
images repeated, each copy with a little seeded noise, so the values are image-like), saves the
``d-500-500-2000-10`` encoder (untrained: memory and time do not depend on the weights), and runs

    keras-clust cluster --data ROWS.npy --encoder ENC.keras --method kmeans --k 10 --no-export

in a child process, reading the child's peak resident memory from ``getrusage`` and sampling its
anonymous resident memory (``RssAnon``: what the process allocated, without the pages of the
memory-mapped file, which the kernel can drop at any time) every 0.1 s. The file is
memory-mapped and encoded 4,096 rows at a time, so the allocations should stay far below the
3.1 GB the rows take when loaded whole.

    .venv/bin/python bench/bench_cluster_memory.py [--rows 1000000] [--work /tmp/kc_bench]

Prints a table and writes ``bench/results/cluster_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_rows(path: Path, rows: int, chunk: int = 50_000) -> None:
    from keras_clust.data import load_fashion_mnist

    ds = load_fashion_mnist()
    images = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 784)
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32, shape=(rows, 784))
    rng = np.random.default_rng(0)
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        block = images[np.arange(start, start + n) % len(images)]
        out[start : start + n] = np.clip(block + rng.normal(0, 0.02, block.shape).astype(np.float32), 0, 1)
    out.flush()
    del out
    path.with_suffix(".tmp.npy").rename(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/kc_bench"))
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "cluster_memory.json")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"rows_{args.rows}.npy"
    if not data.is_file():
        t = time.perf_counter()
        write_rows(data, args.rows)
        print(f"wrote {data} in {time.perf_counter() - t:.0f} s")
    encoder = args.work / "stacked_encoder.keras"
    if not encoder.is_file():
        from keras_clust.models.dense_ae import build_stacked_autoencoder

        build_stacked_autoencoder(784).encoder.save(encoder)
    script = Path(sys.executable).with_name("keras-clust")
    cmd = [
        str(script),
        "cluster",
        "--data",
        str(data),
        "--encoder",
        str(encoder),
        "--method",
        "kmeans",
        "--k",
        "10",
        "--no-export",
        "--out",
        str(args.work / "runs"),
    ]
    start = time.perf_counter()
    anon_peak = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                anon = next(v for v in status.read_text().splitlines() if v.startswith("RssAnon:"))
                anon_peak = max(anon_peak, int(anon.split()[1]))
            except (OSError, StopIteration):
                pass
            time.sleep(0.1)
        _, stderr = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(stderr[-3000:])
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run = max((args.work / "runs" / "cluster").iterdir(), key=lambda q: q.stat().st_mtime)
    metrics = json.loads((run / "metrics.json").read_text())

    from keras_clust.provenance import library_versions, machine_info

    result = {
        "rows": args.rows,
        "values_per_row": 784,
        "rows_mib": round(args.rows * 784 * 4 / 2**20),
        "peak_rss_mib": round(peak_mib),
        "peak_anonymous_mib": round(anon_peak / 1024),
        "wall_seconds": round(seconds, 1),
        "stage_seconds": metrics["stage_seconds"],
        "command": " ".join(cmd),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| rows | rows as float32 (MiB) | peak RSS (MiB) | peak anonymous (MiB) | wall (s) | stages (s) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.rows:,} | {result['rows_mib']:,} | {result['peak_rss_mib']:,} | {result['peak_anonymous_mib']:,} | "
        f"{seconds:.0f} | "
        f"{', '.join(f'{k} {v}' for k, v in metrics['stage_seconds'].items())} |"
    )


if __name__ == "__main__":
    main()
