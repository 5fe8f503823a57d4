"""Which fine-tuning recipe for the fashion-cae transfer classifier? Chosen on validation.

A study, not a timing. It loads the CAE of a finished ``fashion-cae run`` and fine-tunes
the transfer classifier (the app's own builder, optimizer and early stopping) under a few
settings of the ``--clf-*`` options, on the run's own train/validation split. The setting
with the best validation accuracy is the one to use; test accuracy is recorded beside it
but chooses nothing.

Usage:
    .venv/bin/python bench/study_transfer.py --run runs/fashion-cae/<run-id> \
        --out bench/results/fashion_transfer.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from keras_clust.apps.fashion_cae.config import prepare_data  # noqa: E402
from keras_clust.models.classifier import (  # noqa: E402
    best_val_accuracy,
    build_transfer_classifier,
    compile_transfer_classifier,
)
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import seed_model, set_seed  # noqa: E402
from keras_clust.training import fit_model  # noqa: E402

# (learning rate, encoder factor, schedule, epochs)
SETTINGS = [(1e-3, 1.0, "cosine", 20), (2e-3, 0.3, "cosine", 20), (1e-3, 0.3, "cosine", 30)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/results/fashion_transfer.json"))
    args = p.parse_args(argv)
    set_seed(args.seed)
    prep = prepare_data("fashion_mnist", None, 0.1, args.seed)
    cae = keras.models.load_model(args.run / "models" / "cae.keras")
    encoder = cae.get_layer("cae_encoder")
    results = {"command": " ".join(sys.argv), "machine": machine_info(), "run": str(args.run), "rows": []}
    for lr, factor, schedule, epochs in SETTINGS:
        seed_model(args.seed, "classifier_finetuned")
        clf = build_transfer_classifier(
            encoder, n_classes=10, hidden_units=64, freeze=False, name="classifier_finetuned"
        )
        steps = epochs * math.ceil(len(prep.x_train) / 256)
        compile_transfer_classifier(clf, lr, encoder_lr_factor=factor, schedule=schedule, decay_steps=steps)
        stop = best_val_accuracy(4)
        fit = fit_model(
            clf,
            prep.x_train,
            prep.y_train,
            (prep.x_val, prep.y_val),
            epochs=epochs,
            batch_size=256,
            callbacks=[stop],
            verbose=0,
        )
        _, test_acc = clf.evaluate(prep.x_test, prep.y_test, batch_size=1024, verbose=0)
        row = {
            "learning_rate": lr,
            "encoder_lr_factor": factor,
            "schedule": schedule,
            "max_epochs": epochs,
            "epochs_run": fit.epochs_run,
            "best_epoch": stop.best_epoch + 1,
            "best_val_accuracy": round(max(fit.history["val_accuracy"]), 4),
            "test_accuracy": round(float(test_acc), 4),
            "seconds": round(fit.seconds, 1),
        }
        results["rows"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
