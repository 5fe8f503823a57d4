"""How much training does early stopping save lj-fluid, and at what cost? (issue 24, item 5)

A study, not a timing. It reads the per-epoch history of ``lj-fluid run`` folders trained with
``--patience 0`` (every model all its epochs) and replays Keras' ``EarlyStopping(patience=P,
restore_best_weights=True)`` on each model's validation loss: with the same seed a fit with
``--patience P`` follows the same epochs until it stops, so one full-length run answers every P.
Per model and P: the epochs trained, the epoch whose weights are kept, the validation loss kept
against the best of the full run and the last epoch's (what ``--patience 0`` keeps), and the
training seconds saved (the full run's seconds per epoch times the epochs not trained).

``--patience``'s default is chosen here on a run on the design simulation (seed 100), never on
the reported run's (seed 0):

    .venv/bin/keras-clust lj-fluid simulate --seed 100 --samples 6000 --output /tmp/lj_design.npz
    .venv/bin/keras-clust lj-fluid run --dataset /tmp/lj_design.npz --seed 100 --patience 0 \\
        --coords-patience 0 --no-export --out /tmp/design_runs
    .venv/bin/python bench/study_lj_patience.py /tmp/design_runs/lj-fluid/<run-id>

``--bench-rows`` replays instead the histories of ``bench/explore_lj_autoregressive_decoder.py --patience 0``
rows (the coordinate VAE alone), and ``--caps`` cuts each history at fewer epochs too: the coordinate VAE's
patience and epochs were chosen so (BENCHMARKS.md, "The coordinate VAE's patience and epochs"):

    .venv/bin/python bench/study_lj_patience.py --bench-rows bench/results/lj_autoregressive.json \\
        --patience 10,15,20,30 --caps 200,250,300

Results are appended to ``--out`` (default ``bench/results/lj_patience.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402


def early_stopping(val_loss: list[float], patience: int) -> tuple[int, int]:
    """``(epochs trained, kept epoch)``, both 1-based, of Keras 3's ``EarlyStopping(patience,
    restore_best_weights=True)`` on this validation history (``patience`` 0: all epochs, the last kept)."""
    if patience <= 0:
        return len(val_loss), len(val_loss)
    best, kept, wait = math.inf, 0, 0
    for epoch, value in enumerate(val_loss):
        wait += 1
        if value < best:
            best, kept, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch + 1, kept + 1
    return len(val_loss), kept + 1


def histories(run: Path) -> dict[str, list[float]]:
    val = defaultdict(list)
    with open(run / "history.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("val_loss"):
                val[row["model"]].append(float(row["val_loss"]))
    return dict(val)


def replay(model: str, val: list[float], patiences: list[int], caps: list[int | None], seconds=None) -> list[dict]:
    """One row per cap and patience: early stopping replayed on ``val`` cut at the cap (None: all of it),
    the validation loss kept against the best of the whole history."""
    rows = []
    for cap in caps:
        cut = val[:cap] if cap else val
        for p in patiences:
            trained, kept = early_stopping(cut, p)
            rows.append(
                {
                    "model": model,
                    "cap": cap or len(val),
                    "patience": p,
                    "epochs_full": len(val),
                    "epochs_trained": trained,
                    "kept_epoch": kept,
                    "val_loss_kept": cut[kept - 1],
                    "val_loss_best": min(val),
                    "val_loss_last": cut[-1],
                    "seconds_saved": None if seconds is None else round(seconds * (1 - trained / len(val)), 1),
                }
            )
    return rows


def study(run: Path, patiences: list[int], caps: list[int | None]) -> list[dict]:
    config = json.loads((run / "config.json").read_text())
    for option in ("patience", "coords_patience"):
        if config.get(option, 0):
            flag = "--" + option.replace("_", "-")
            raise SystemExit(f"error: {run} was trained with {flag} {config[option]}; replay a run with {flag} 0")
    models = json.loads((run / "metrics.json").read_text())["models"]
    rows = []
    for model, val in histories(run).items():
        seconds = models.get(model.removesuffix("_vae"), {}).get("train_seconds")
        rows += replay(model, val, patiences, caps, seconds)
    return rows


def bench_histories(path: Path) -> dict[str, tuple[list[float], float]]:
    """The validation histories of ``bench/explore_lj_autoregressive_decoder.py --patience 0`` rows."""
    out = {}
    for i, row in enumerate(json.loads(path.read_text())["rows"]):
        if row.get("patience") == 0 and "history" in row:
            name = f"coords_vae ({row['decoder']}) {Path(row['dataset']).stem} seed {row['seed']}"
            if name in out:  # the same simulation and seed with other flags: both rows count
                name += f" (row {i})"
            out[name] = (row["history"]["val_loss"], row["train_seconds"])
    if not out:
        raise SystemExit(f"error: {path} has no rows trained with --patience 0 and a history; run the bench so")
    return out


def summary(rows: list[dict], tolerance: float) -> list[dict]:
    """Per cap and patience over every history: epochs trained in all, and the worst shortfall of the
    validation loss kept against each history's best (the criterion: at most ``tolerance`` nats)."""
    out = {}
    for r in rows:
        key = (r["cap"], r["patience"])
        s = out.setdefault(key, {"cap": key[0], "patience": key[1], "epochs": 0, "worst_shortfall": 0.0})
        s["epochs"] += r["epochs_trained"]
        s["worst_shortfall"] = max(s["worst_shortfall"], r["val_loss_kept"] - r["val_loss_best"])
    for s in out.values():
        s["meets"] = s["worst_shortfall"] <= tolerance
    return list(out.values())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="lj-fluid run folders trained with --patience 0")
    parser.add_argument(
        "--bench-rows",
        type=Path,
        help="instead, the results of bench/explore_lj_autoregressive_decoder.py --patience 0 (their histories)",
    )
    parser.add_argument("--patience", default="5,10,15,20,30", help="comma-separated patiences to replay")
    parser.add_argument("--caps", default="", help="comma-separated epoch caps to replay too (the history cut there)")
    parser.add_argument("--tolerance", type=float, default=0.5, help="nats above the best a kept loss may be")
    parser.add_argument("--out", default="bench/results/lj_patience.json")
    args = parser.parse_args(argv)
    patiences = [int(p) for p in args.patience.split(",")]
    caps = [int(c) for c in args.caps.split(",") if c.strip()] or [None]
    if args.bench_rows:
        studies = {
            str(args.bench_rows): [
                r
                for name, (val, sec) in bench_histories(args.bench_rows).items()
                for r in replay(name, val, patiences, caps, sec)
            ]
        }
    elif args.runs:
        studies = {str(run): study(run, patiences, caps) for run in args.runs}
    else:
        raise SystemExit("error: give lj-fluid run folders or --bench-rows FILE")
    header = {"study": "replayed early stopping of lj-fluid's fits", "machine": machine_info()}
    for source, rows in studies.items():
        print(f"{source}:")
        print("| model | cap | patience | epochs trained / full | kept epoch | val loss kept | best | last | s saved |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['model']} | {r['cap']} | {r['patience']} | {r['epochs_trained']} / {r['epochs_full']} | "
                f"{r['kept_epoch']} | {r['val_loss_kept']:.5g} | {r['val_loss_best']:.5g} | {r['val_loss_last']:.5g} | "
                f"{r['seconds_saved']} |"
            )
        totals = summary(rows, args.tolerance)
        print(f"\nover all ({args.tolerance} nats of the best):")
        print("| cap | patience | epochs trained in all | worst shortfall | meets |")
        print("|---|---|---|---|---|")
        for s in totals:
            print(f"| {s['cap']} | {s['patience']} | {s['epochs']} | {s['worst_shortfall']:.2f} | {s['meets']} |")
        append_json_row(args.out, {"run": source, "rows": rows, "summary": totals}, header)


if __name__ == "__main__":
    main()
