"""Benchmark: Metropolis moves per second of the Lennard-Jones Monte Carlo against the C++ reference.

Usage:
    .venv/bin/python bench/bench_lj_mc.py [--steps 20000000] [--repeats 3] [--replicas 8]

Builds ``../shared/reference/lj_mc.cpp`` (a single chain, compiled with the build line at its
top) in a temporary folder, then alternates, ``--repeats`` times, the reference
(``./lj_mc 30 5 1 1 0.2 STEPS 1``) and our kernel on the same system (N = 30, L = 5, T = 1,
gamma = 1, 3-D, kick 0.2) with ``--replicas`` chains spread over every core by ``prange``,
each timed on the same number of moves. Our first call (compilation) is a warm-up outside the
timing. Prints a table and the ratio of the medians, and writes them with the machine and the
library versions to ``bench/results/lj_mc.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba

from keras_clust.lj.monte_carlo import Chains, LJSystem, initial_configurations
from keras_clust.provenance import library_versions, machine_info

ROOT = Path(__file__).resolve().parents[1]
N, BOX, TEMPERATURE, GAMMA, KICK = 30, 5.0, 1.0, 1.0, 0.2


def build_reference(source: Path, folder: Path) -> tuple[Path, str]:
    """Compile ``source`` with the ``// build:`` line at its top; returns the binary and the command."""
    match = re.search(r"^//\s*build:\s*(.+?)(?:\s{2,}run:.*)?$", source.read_text(), re.M)
    if match is None:
        sys.exit(f"no '// build:' line in {source}")
    command = match.group(1).strip()
    shutil.copy(source, folder / source.name)
    subprocess.run(shlex.split(command), cwd=folder, check=True)
    return folder / "lj_mc", command


def run_reference(binary: Path, steps: int) -> dict:
    out = subprocess.run(
        [str(binary), str(N), f"{BOX:g}", f"{TEMPERATURE:g}", f"{GAMMA:g}", f"{KICK:g}", str(steps), "1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(zip(out.split()[::2], map(float, out.split()[1::2]), strict=True))
    return {
        "moves_per_second": fields["moves_per_s"],
        "acceptance": fields["acceptance"],
        "seconds": fields["seconds"],
        "moves": steps,
    }


def run_ours(chains: Chains, steps: int) -> dict:
    sweeps = max(1, math.ceil(steps / (chains.replicas * N)))
    accepted = chains.accepted.sum()
    start = time.perf_counter()
    chains.run(sweeps, record_every=sweeps)
    seconds = time.perf_counter() - start
    moves = sweeps * N * chains.replicas
    return {
        "moves_per_second": moves / seconds,
        "acceptance": float((chains.accepted.sum() - accepted) / moves),
        "seconds": seconds,
        "moves": moves,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000_000, help="moves per timed run, both programs")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two programs")
    parser.add_argument(
        "--replicas", type=int, default=4 * (os.cpu_count() or 1), help="our chains (default: 4 per core)"
    )
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference" / "lj_mc.cpp")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lj_mc.json")
    args = parser.parse_args()

    system = LJSystem(N, BOX, 3, TEMPERATURE)
    chains = Chains(system, initial_configurations(system, args.replicas, 0), GAMMA, KICK, seed=0)
    chains.run(1)  # compile (or load from the cache) outside the timing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        binary, build = build_reference(args.reference, Path(tmp))
        for repeat in range(args.repeats):
            rows.append(
                {"repeat": repeat + 1, "program": "reference (C++, 1 chain)", **run_reference(binary, args.steps)}
            )
            rows.append(
                {
                    "repeat": repeat + 1,
                    "program": f"ours (numba, {args.replicas} chains)",
                    **run_ours(chains, args.steps),
                }
            )
    medians = {
        p: statistics.median(r["moves_per_second"] for r in rows if r["program"] == p)
        for p in dict.fromkeys(r["program"] for r in rows)
    }
    ref, ours = medians.values()
    m = machine_info()
    print(
        f"N = {N}, L = {BOX:g}, T = {TEMPERATURE:g}, gamma = {GAMMA:g}, kick = {KICK:g}; {args.steps} moves per run; "
        f"{m['cpu_count']} cores, {numba.get_num_threads()} numba threads; reference built with '{build}'"
    )
    print("| repeat | program | moves/s | acceptance | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['repeat']} | {r['program']} | {r['moves_per_second']:.3g} | {r['acceptance']:.3f} | "
            f"{r['seconds']:.2f} |"
        )
    print(f"median moves/s: reference {ref:.3g}, ours {ours:.3g}; ratio {ours / ref:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "command": " ".join(sys.argv),
        "machine": m,
        "versions": {**library_versions(), "numba": numba.__version__},
        "numba_threads": numba.get_num_threads(),
        "reference_build": build,
        "system": {"n_particles": N, "box": BOX, "temperature": TEMPERATURE, "gamma": GAMMA, "kick": KICK, "dim": 3},
        "steps": args.steps,
        "replicas": args.replicas,
        "rows": rows,
        "median_moves_per_second": medians,
        "ratio": ours / ref,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
