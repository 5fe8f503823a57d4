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
        --no-export --out /tmp/design_runs
    .venv/bin/python bench/study_lj_patience.py /tmp/design_runs/lj-fluid/<run-id>

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


def study(run: Path, patiences: list[int]) -> list[dict]:
    config = json.loads((run / "config.json").read_text())
    if config.get("patience", 0):
        raise SystemExit(f"error: {run} was trained with --patience {config['patience']}; replay a --patience 0 run")
    models = json.loads((run / "metrics.json").read_text())["models"]
    rows = []
    for model, val in histories(run).items():
        key = model.removesuffix("_vae")
        seconds = models.get(key, {}).get("train_seconds")
        for p in patiences:
            trained, kept = early_stopping(val, p)
            rows.append(
                {
                    "model": model,
                    "patience": p,
                    "epochs_full": len(val),
                    "epochs_trained": trained,
                    "kept_epoch": kept,
                    "val_loss_kept": val[kept - 1],
                    "val_loss_best": min(val),
                    "val_loss_last": val[-1],
                    "seconds_saved": None if seconds is None else round(seconds * (1 - trained / len(val)), 1),
                }
            )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="lj-fluid run folders trained with --patience 0")
    parser.add_argument("--patience", default="5,10,15,20,30", help="comma-separated patiences to replay")
    parser.add_argument("--out", default="bench/results/lj_patience.json")
    args = parser.parse_args(argv)
    patiences = [int(p) for p in args.patience.split(",")]
    for run in args.runs:
        rows = study(run, patiences)
        print(f"{run}:")
        print("| model | patience | epochs trained / full | kept epoch | val loss kept | best | last | s saved |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['model']} | {r['patience']} | {r['epochs_trained']} / {r['epochs_full']} | {r['kept_epoch']} | "
                f"{r['val_loss_kept']:.5g} | {r['val_loss_best']:.5g} | {r['val_loss_last']:.5g} | "
                f"{r['seconds_saved']} |"
            )
        header = {"study": "replayed early stopping of lj-fluid's fits", "machine": machine_info()}
        append_json_row(args.out, {"run": str(run), "rows": rows}, header)


if __name__ == "__main__":
    main()
