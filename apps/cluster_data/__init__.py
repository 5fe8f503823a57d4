"""``cluster``: cluster your own data with KMeans, DEC, IDEC or N2D on any encoder.

Reads rows from an ``.npy`` (memory-mapped), ``.npz`` or IDX (``.gz``) file, embeds them with
``--encoder`` (a ``.keras`` file, a SavedModel folder, or ``saved_models/<name>`` for its newest
version) or, without one, trains the ``d-500-500-2000-10`` autoencoder on them, clusters the
embedding and writes ``labels.npy``,
2-D maps of the final embedding and, with ``--labels``, the scores and a matched confusion
matrix. DEC/IDEC's fine-tuned network is exported as a SavedModel (``images -> assignment,
embedding``).

Memory: with ``--encoder`` and ``--method kmeans`` or ``n2d`` the rows are encoded 4,096 at a
time from the memory-mapped file, so memory is bounded in the number of rows (bytes are scaled
batch by batch); training (no ``--encoder``, or DEC/IDEC) holds every row in memory as float32.
"""

from __future__ import annotations

import argparse

from keras_clust.app import (
    Action,
    Experiment,
    add_models_dir_argument,
    add_run_options,
    non_negative_float,
    non_negative_int,
    positive_int,
    run_options,
)
from keras_clust.apps.cluster_data.config import NAME, Config
from keras_clust.apps.cluster_data.steps import exports, report, steps, summary
from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, run_experiment

SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=report, summary=summary, exports=exports)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    d = DeepSettings()
    p.add_argument(
        "--data",
        default=None,
        help="rows to cluster: .npy, .npz (array 'x') or IDX (.gz) file (required, but with --resume)",
    )
    add_run_options(p)
    p.add_argument("--labels", default=None, help="true labels, one per row (.npy, .npz 'y' or IDX), for scores")
    p.add_argument(
        "--encoder",
        default=None,
        help="a .keras file, a SavedModel folder or saved_models/<name>; default: train the "
        "d-500-500-2000-10 autoencoder on the data",
    )
    p.add_argument("--decoder", default=None, help="the encoder's decoder (.keras), for --method idec")
    p.add_argument("--method", choices=METHODS, default="n2d", help="clustering method (default: n2d)")
    p.add_argument("--k", type=positive_int, default=d.n_clusters, help=f"number of clusters (default: {d.n_clusters})")
    p.add_argument(
        "--pretrain-epochs",
        type=positive_int,
        default=d.pretrain_epochs,
        help=f"epochs of the autoencoder trained when no --encoder is given (default: {d.pretrain_epochs})",
    )
    p.add_argument(
        "--max-iter",
        type=positive_int,
        default=d.max_iter,
        help=f"most DEC/IDEC fine-tuning batches (default: {d.max_iter})",
    )
    p.add_argument(
        "--tol",
        type=non_negative_float,
        default=d.tol,
        help=f"stop DEC/IDEC below this share of changed labels (default: {d.tol})",
    )
    p.add_argument(
        "--n-neighbors",
        type=positive_int,
        default=d.n_neighbors,
        help=f"N2D's UMAP neighbours (default: {d.n_neighbors})",
    )
    p.add_argument("--max-rows", type=positive_int, default=None, help="cluster only the first rows")
    p.add_argument("--name", default=None, help="name of the exported SavedModel (default: cluster_<method>)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every random choice (default: 0)")
    p.add_argument("--out", default="runs", help="root folder of run folders (default: runs/)")
    p.add_argument("--quick", action="store_true", help="smoke run: the first 1,000 rows, 2 epochs")
    p.add_argument("--no-export", dest="export", action="store_false", help="do not write SavedModels")
    add_models_dir_argument(p)


def run(args: argparse.Namespace) -> int:
    if args.data is None and args.resume is None:
        raise UsageError("--data FILE is required: the rows to cluster (.npy, .npz or IDX)")
    settings = DeepSettings(
        n_clusters=args.k,
        pretrain_epochs=args.pretrain_epochs,
        max_iter=args.max_iter,
        tol=args.tol,
        n_neighbors=args.n_neighbors,
    )
    if args.quick:
        settings = settings.quick()
    cfg = Config(
        data_file=args.data or "",
        labels=args.labels,
        encoder=args.encoder,
        decoder=args.decoder,
        method=args.method,
        settings=settings,
        max_rows=args.max_rows,
        name=args.name,
        quick=args.quick,
        seed=args.seed,
        export=args.export,
        models_dir=str(args.models_dir),
    )
    run_experiment(SPEC, cfg.check(), args.out, **run_options(args))
    return 0


EXPERIMENT = Experiment(
    name=NAME,
    summary="cluster your own .npy/.npz/IDX rows with KMeans, DEC, IDEC or N2D on any encoder",
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "run", "embed, cluster, write labels.npy, figures and scores (the default action)", add_run_arguments, run
        )
    ],
    default_action="run",
)
