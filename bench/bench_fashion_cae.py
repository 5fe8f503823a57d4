"""Benchmark: seconds per CAE training epoch on the 60k Fashion-MNIST images, alone or against PyTorch.

Usage:
    .venv/bin/python bench/bench_fashion_cae.py [--epochs 4] [--variants arrays,tfdata,tfdata+xla] [--fast]
    .venv/bin/python bench/bench_fashion_cae.py --against-torch [--torch-python PATH] [--repeats 2]
        [--variants arrays,fast,...] [--wait-idle] [--out bench/results/fashion_cae_against_torch.json]

The report's best CAE (8 channels, latent 14, Adam 1e-3, weight decay 1e-5) on all 60,000
training images. Each variant runs in its own process (op determinism, oneDNN and the thread
pools cannot be changed again inside one) and reports the first epoch (graph tracing included)
and the later epochs (steady state), their minimum and median.

A variant is ``arrays`` (``fit`` on NumPy arrays, batch 256, float32, op determinism on, TF's
own threads and oneDNN setting: what ``keras-clust fashion-cae run`` does) or settings on top
of it joined by ``+``:

- ``tfdata``: an explicit ``tf.data`` pipeline (cache, seeded shuffle, batch, ``(x, x)`` map,
  prefetch) instead of Keras's array adapter;
- ``fast``: op determinism off (``--fast`` adds it to every variant);
- ``xla``: ``jit_compile=True``; Keras turns XLA off when op determinism is on, so ``xla``
  implies ``fast``;
- ``spe8``, ``spe32``, ``speall``: ``steps_per_execution`` (``all``: one execution per epoch),
  set by compiling the built model again;
- ``bs512`` etc.: another batch size (this changes the training, not only its speed);
- ``bf16``: the ``mixed_bfloat16`` policy (float32 weights, bfloat16 compute);
- ``onednn0``, ``onednn1``: ``TF_ENABLE_ONEDNN_OPTS`` set before TensorFlow is imported;
- ``intra2``, ``inter1`` etc.: TensorFlow's intra-/inter-op thread pools;
- ``stridedcrop``: the decoder's crops (``keras_clust.layers.Crop2D``, one ``slice`` whose
  gradient is a ``Pad``) computed as a strided slice, as ``Cropping2D`` does (same numbers;
  TF's slow ``StridedSliceGrad``): how the library's CAE trained before ``Crop2D``;
- ``runfast``: what ``keras-clust fashion-cae run --fast`` does, through the library's own path
  (op determinism off, ``fit_model`` inside ``fit_context(fast=True)``: XLA and
  ``FAST_STEPS_PER_EXECUTION`` batches per call); the result records what the model ran with.

With ``--against-torch``, ``../shared/reference/torch_cae.py`` (the same model, batch 256,
Adam 1e-3, no weight decay, in PyTorch) runs in a separate Python that has ``torch``
(``--torch-python``, default ``.venv-torch/bin/python``; never a dependency of the project),
alternated with the variants ``--repeats`` times (torch, variants, torch, variants, ...;
``--torch-every N`` runs PyTorch again before every N variants), and each variant's minimum
steady epoch is divided by PyTorch's minimum steady epoch from the same run. Recorded beside
them: the load average before and after, and for each process the CPU other processes used
meanwhile (above ``--max-others`` cores the variant is flagged as disturbed). ``--wait-idle``
waits (up to ``--max-wait`` s each time) for a 1-minute load average of at most ``--max-load``
before starting, and before each process for other processes to be idle. Prints a Markdown
table for BENCHMARKS.md and writes the results as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("arrays", "tfdata", "tfdata+xla")
TORCH_VARIANTS = ("fast+xla+speall", "arrays", "fast", "fast+xla")
TORCH_REFERENCE = ROOT.parent / "shared" / "reference" / "torch_cae.py"
TRAIN_IMAGES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
TORCH_SETUP = "python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy"
IMAGES = 60_000


def parse_variant(variant: str) -> dict:
    """The settings of a ``+``-joined variant name (see the module docstring)."""
    s = {
        "data": "arrays",
        "deterministic": True,
        "xla": False,
        "steps_per_execution": 1,
        "batch_size": 256,
        "bf16": False,
        "onednn": None,
        "intra_threads": 0,
        "inter_threads": 0,
        "strided_crop": False,
        "runfast": False,
    }
    numeric = {
        "spe": "steps_per_execution",
        "bs": "batch_size",
        "onednn": "onednn",
        "intra": "intra_threads",
        "inter": "inter_threads",
    }
    for token in variant.split("+"):
        match = re.fullmatch(r"(spe|bs|onednn|intra|inter)(\d+|all)", token)
        if token == "arrays":
            continue
        if token == "tfdata":
            s["data"] = "tfdata"
        elif token == "fast":
            s["deterministic"] = False
        elif token == "xla":
            s["xla"], s["deterministic"] = True, False
        elif token == "bf16":
            s["bf16"] = True
        elif token == "stridedcrop":
            s["strided_crop"] = True
        elif token == "runfast":
            s["runfast"], s["deterministic"] = True, False
        elif match and (match[2] != "all" or match[1] == "spe"):
            s[numeric[match[1]]] = match[2] if match[2] == "all" else int(match[2])
        else:
            sys.exit(
                f"unknown setting {token!r} in variant {variant!r}: use arrays, tfdata, fast, xla, "
                "bf16, stridedcrop, runfast, spe<N|all>, bs<N>, onednn<0|1>, intra<N>, inter<N> "
                "joined by '+'"
            )
    if s["steps_per_execution"] == "all":
        s["steps_per_execution"] = math.ceil(IMAGES / s["batch_size"])
    return s


def strided_crop(layer, inputs):
    """``Crop2D.call`` as ``Cropping2D`` computes it: a strided slice (``StridedSliceGrad``)."""
    (top, bottom), (left, right) = layer.cropping
    _, height, width, _ = inputs.shape
    return inputs[:, top : height - bottom, left : width - right, :]


def one(variant: str, epochs: int) -> dict:
    """Train the CAE ``epochs`` epochs with the variant's settings; runs in its own process."""
    s = parse_variant(variant)
    if s["onednn"] is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(s["onednn"])
    import keras
    import tensorflow as tf

    if s["intra_threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(s["intra_threads"])
    if s["inter_threads"]:
        tf.config.threading.set_inter_op_parallelism_threads(s["inter_threads"])

    from keras_clust.apps.fashion_cae.config import REPORT_BEST
    from keras_clust.data import load_fashion_mnist
    from keras_clust.seeding import set_seed
    from keras_clust.tuning import build_compiled_cae

    set_seed(0, deterministic=s["deterministic"])
    if s["bf16"]:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if s["strided_crop"]:
        from keras_clust.layers import Crop2D

        Crop2D.call = strided_crop
    x = load_fashion_mnist().x_train.reshape(-1, 28, 28, 1)
    model = build_compiled_cae(**REPORT_BEST, jit_compile="auto" if s["runfast"] else s["xla"])  # runfast: as the app
    if s["steps_per_execution"] != 1:
        model.compile(
            optimizer=model.optimizer,
            loss=model.loss,
            jit_compile=s["xla"],
            steps_per_execution=s["steps_per_execution"],
        )
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    bs = s["batch_size"]
    if s["runfast"]:
        from keras_clust.training import fit_context, fit_model

        with fit_context(fast=True):
            history = fit_model(model, x, x, None, epochs=epochs, batch_size=bs, callbacks=[EpochTimer()], verbose=0)
    elif s["data"] == "arrays":
        history = model.fit(x, x, batch_size=bs, epochs=epochs, shuffle=True, verbose=0, callbacks=[EpochTimer()])
    else:
        ds = (
            tf.data.Dataset.from_tensor_slices(x)
            .cache()
            .shuffle(len(x), seed=0)
            .batch(bs)
            .map(lambda b: (b, b))
            .prefetch(tf.data.AUTOTUNE)
        )
        history = model.fit(ds, epochs=epochs, verbose=0, callbacks=[EpochTimer()])
    return {
        "variant": variant,
        "settings": s,
        "images": len(x),
        "xla": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        **epoch_summary(times),
        "loss": round(float(history.history["loss"][-1]), 5),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def epoch_summary(times: list[float]) -> dict:
    steady = times[1:] or times
    return {
        "first_epoch_s": round(times[0], 3),
        "steady_min_s": round(min(steady), 3),
        "steady_median_s": round(statistics.median(steady), 3),
        "steady_all_s": [round(t, 3) for t in steady],
    }


def run_variant(variant: str, epochs: int, fast: bool) -> dict:
    if fast and "fast" not in variant.split("+"):
        variant = f"{variant}+fast"
    out = run_quiet([sys.executable, __file__, "--variant", variant, "--epochs", str(epochs)])
    return json.loads(out.strip().splitlines()[-1])


def run_quiet(command: list[str]) -> str:
    """What ``command`` prints, or exit with its last error lines."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n" + "\n".join(done.stderr.strip().splitlines()[-5:]))
    return done.stdout


def check_torch(python: Path) -> str:
    """PyTorch's version in ``python``, or exit in one line saying how to set it up."""
    hint = f"create it with '{TORCH_SETUP}' (in {ROOT}) or pass --torch-python PATH"
    if not python.exists():
        sys.exit(f"no PyTorch environment at {python}: {hint}")
    code = "import numpy, torch; print(torch.__version__)"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if probe.returncode:
        sys.exit(f"{python} cannot import torch and numpy: {hint}")
    return probe.stdout.split()[0]


def run_torch(python: Path, images: Path, epochs: int) -> dict:
    out = run_quiet([str(python), str(TORCH_REFERENCE), str(images), str(epochs)])
    lines = re.findall(r"^epoch \d+ loss (\S+) seconds (\S+)$", out, re.M)
    steady_min = float(re.search(r"^torch_seconds_per_epoch (\S+)$", out, re.M)[1])
    return {
        "variant": "pytorch",
        **epoch_summary([float(t) for _, t in lines]),
        "steady_min_s": steady_min,
        "loss": float(lines[-1][0]),
    }


def wait_idle(max_load: float, max_wait: float) -> float:
    """Sleep until the 1-minute load average is at most ``max_load`` (at most ``max_wait`` s); returns the wait."""
    start = time.monotonic()
    while os.getloadavg()[0] > max_load and time.monotonic() - start < max_wait:
        print(f"load {os.getloadavg()[0]:.2f} > {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(30)
    return round(time.monotonic() - start)


def cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    bf16 = " (avx512_bf16)" if flags and "avx512_bf16" in flags[1].split() else ""
    return (match[1].strip() if match else "unknown") + bf16


def busy_cpu_s() -> float:
    """CPU seconds spent by every process on the machine since boot (``/proc/stat``), minus ours."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user, nice, system, irq, softirq, steal
    ours = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy / os.sysconf("SC_CLK_TCK") - sum(r.ru_utime + r.ru_stime for r in ours)


def timed(run, *args) -> dict:
    """``run(*args)`` with its wall time and the cores other processes kept busy meanwhile."""
    start, others = time.perf_counter(), busy_cpu_s()
    row = run(*args)
    wall = time.perf_counter() - start
    return {**row, "process_wall_s": round(wall, 1), "others_cores": round((busy_cpu_s() - others) / wall, 2)}


def wait_others(max_others: float, max_wait: float) -> float:
    """Sleep while other processes keep more than ``max_others`` cores busy (sampled over 5 s, at most
    ``max_wait`` s in all; the load average would count this benchmark's own last process); returns the wait."""
    start = time.monotonic()
    while time.monotonic() - start < max_wait:
        before = busy_cpu_s()
        time.sleep(5)
        if (busy_cpu_s() - before) / 5 <= max_others:
            break
        print(f"other processes busy: waiting ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
        time.sleep(25)
    return round(time.monotonic() - start)


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def against_torch(args: argparse.Namespace, variants: list[str]) -> None:
    from keras_clust.provenance import library_versions, machine_info

    python = args.torch_python or ROOT / ".venv-torch" / "bin" / "python"
    torch_version = check_torch(python)
    if not args.images.exists():
        sys.exit(f"no Fashion-MNIST training images at {args.images}: pass --images PATH")
    waited_first = wait_idle(args.max_load, args.max_wait) if args.wait_idle else 0
    load_before, rows = load(), []
    every = args.torch_every or len(variants)
    for repeat in range(args.repeats):
        for i, variant in enumerate(variants):
            runs = ["pytorch", variant] if i % every == 0 else [variant]
            for name in runs:
                waited = wait_others(args.max_others, args.max_wait) if args.wait_idle else 0
                row = (
                    timed(run_torch, python, args.images, args.epochs)
                    if name == "pytorch"
                    else timed(run_variant, name, args.epochs, args.fast)
                )
                rows.append({"repeat": repeat + 1, **row, "waited_before_s": waited})
                print(rows[-1], file=sys.stderr, flush=True)
    load_after = load()
    names = dict.fromkeys(r["variant"] for r in rows)
    best = {v: min(r["steady_min_s"] for r in rows if r["variant"] == v) for v in names}
    torch_s = best["pytorch"]
    ratios = {v: round(t / torch_s, 3) for v, t in best.items()}
    m = {**machine_info(), "cpu_model": cpu_model()}
    print(
        f"{m['cpu_model']}, {m['cpu_count']} cores; {args.epochs} epochs per process, the first excluded; "
        f"{args.repeats} alternations; load average (1, 5, 15 min) before {load_before}, after {load_after}"
    )
    print(
        "(the load after includes this benchmark's own processes; 'others' is the CPU, in cores, that other "
        "processes used during each run of a variant)"
    )
    print("| variant | XLA | first epoch | steady epochs | others | min steady | loss (last) | ratio to PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for v, t in best.items():
        runs = [r for r in rows if r["variant"] == v]
        xla = "—" if v == "pytorch" else ("yes" if runs[0]["xla"] else "no")
        steady = "; ".join(", ".join(f"{e:.2f}" for e in r["steady_all_s"]) for r in runs)
        firsts = ", ".join(f"{r['first_epoch_s']:.2f}" for r in runs)
        losses = ", ".join(f"{r['loss']:.4f}" for r in runs)
        others = ", ".join(f"{r['others_cores']:.2f}" for r in runs)
        print(f"| {v} | {xla} | {firsts} s | {steady} | {others} | **{t:.2f} s** | {losses} | {ratios[v]:.2f} |")
    disturbed = sorted({r["variant"] for r in rows if r["others_cores"] > args.max_others})
    if disturbed:
        print(
            f"disturbed: other processes used more than {args.max_others} cores during {', '.join(disturbed)}; "
            "their ratios mean little"
        )
    aim_met = [v for v, r in ratios.items() if v != "pytorch" and r <= args.aim]
    print(f"aim (<= {args.aim} of PyTorch's epoch): " + (f"met by {', '.join(aim_met)}" if aim_met else "not met"))
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    results = {
        "command": " ".join(sys.argv),
        "date": date,
        "machine": m,
        "versions": {**library_versions(), "torch": torch_version},
        "torch_python": str(python),
        "reference": str(TORCH_REFERENCE),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "waited_for_idle_s": waited_first,
        "load_before": load_before,
        "load_after": load_after,
        "rows": rows,
        "min_steady_epoch_s": best,
        "ratio_to_torch": ratios,
        "aim": args.aim,
        "aim_met_by": aim_met,
        "disturbed": disturbed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per process, the first is reported apart")
    parser.add_argument(
        "--variants",
        help=f"comma-separated (default {','.join(VARIANTS)}, with --against-torch {','.join(TORCH_VARIANTS)})",
    )
    parser.add_argument("--fast", action="store_true", help="op determinism off in every variant")
    parser.add_argument("--against-torch", action="store_true", help="alternate with PyTorch's reference")
    parser.add_argument("--torch-python", type=Path, help="a Python with torch (default .venv-torch/bin/python)")
    parser.add_argument("--images", type=Path, default=TRAIN_IMAGES, help="the IDX training images for PyTorch")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of PyTorch and the variants")
    parser.add_argument("--torch-every", type=int, help="PyTorch again before every N variants (default: all)")
    parser.add_argument("--aim", type=float, default=0.75, help="the ratio to PyTorch aimed at")
    parser.add_argument(
        "--wait-idle",
        action="store_true",
        help="first wait until the 1-min load is low, then before each process until others are idle",
    )
    parser.add_argument("--max-load", type=float, default=0.7, help="load average --wait-idle waits for")
    parser.add_argument(
        "--max-others", type=float, default=0.1, help="cores other processes may take during a run before it is flagged"
    )
    parser.add_argument("--max-wait", type=float, default=900, help="longest --wait-idle wait, seconds")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results" / "fashion_cae_against_torch.json",
        help="results JSON (--against-torch)",
    )
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one(args.variant, args.epochs)))
        return
    variants = (args.variants or ",".join(TORCH_VARIANTS if args.against_torch else VARIANTS)).split(",")
    for variant in variants:
        parse_variant(variant)  # every name checked before the first process starts
    if args.against_torch:
        against_torch(args, variants)
        return
    rows = []
    for variant in variants:
        rows.append(run_variant(variant, args.epochs, args.fast))
        print(rows[-1], file=sys.stderr, flush=True)
    print("| variant | XLA | first epoch | steady epoch (median) | min | later epochs | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {'yes' if r['xla'] else 'no'} | {r['first_epoch_s']} s | {r['steady_median_s']} s "
            f"| {r['steady_min_s']} s | {', '.join(map(str, r['steady_all_s']))} | {r['peak_rss_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
