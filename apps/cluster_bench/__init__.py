"""``cluster-bench``: DEC, IDEC and N2D against KMeans and the published numbers.

Clusters all 70k images of Fashion-MNIST or MNIST (train + test, as the papers do; ``--split
test`` for the held-out 10k) or scikit-learn's 1,797 digits with every method: KMeans on pixels
and on the autoencoder's codes, DEC, IDEC and N2D on one ``d-500-500-2000-10`` autoencoder
pretrained per seed. Writes a run folder with the table beside the published ACC/NMI, time per
stage, peak memory, matched confusion matrices and a 2-D map of the best final embedding.
"""

from __future__ import annotations

import argparse

from keras_clust.app import (
    Action,
    Experiment,
    add_common_arguments,
    add_run_options,
    names_list,
    non_negative_float,
    positive_int,
    run_options,
    seed_list,
)
from keras_clust.apps.cluster_bench.config import DATASETS, METHODS, NAME, SPLITS, Config
from keras_clust.apps.cluster_bench.report import report, summary
from keras_clust.apps.cluster_bench.steps import steps
from keras_clust.cluster.deep import DeepSettings
from keras_clust.experiment import ExperimentSpec, run_experiment

SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=report, summary=summary)


def _methods(text: str) -> tuple[str, ...]:
    return METHODS if text == "all" else names_list(METHODS)(text)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    c, d = Config(), DeepSettings()
    add_common_arguments(p)
    add_run_options(p)
    p.add_argument("--dataset", choices=DATASETS, default=c.dataset, help=f"data to cluster (default: {c.dataset})")
    p.add_argument(
        "--method",
        type=_methods,
        default=METHODS,
        dest="methods",
        help="all, or a comma list of " + ", ".join(METHODS) + " (default: all)",
    )
    p.add_argument(
        "--split",
        choices=SPLITS,
        default=c.split,
        help="all = train + test as the papers; test = the held-out split only (default: all)",
    )
    p.add_argument(
        "--seeds", type=seed_list, default=None, help="comma list of seeds, each a full repetition (default: --seed)"
    )
    p.add_argument(
        "--pretrain-epochs",
        type=positive_int,
        default=d.pretrain_epochs,
        help=f"autoencoder pretraining epochs (default: {d.pretrain_epochs})",
    )
    p.add_argument(
        "--max-iter",
        type=positive_int,
        default=d.max_iter,
        help=f"most DEC/IDEC fine-tuning batches (default: {d.max_iter})",
    )
    p.add_argument(
        "--update-interval",
        type=positive_int,
        default=d.update_interval,
        help=f"batches between DEC/IDEC target updates (default: {d.update_interval})",
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
    p.add_argument(
        "--max-rows",
        type=positive_int,
        default=None,
        help="cluster a seeded random subset of this many rows (default: all)",
    )


def run(args: argparse.Namespace) -> int:
    settings = DeepSettings(
        pretrain_epochs=args.pretrain_epochs,
        max_iter=args.max_iter,
        update_interval=args.update_interval,
        tol=args.tol,
        n_neighbors=args.n_neighbors,
    )
    cfg = Config(
        dataset=args.dataset,
        methods=args.methods,
        split=args.split,
        seeds=args.seeds or (args.seed,),
        settings=settings,
        max_rows=args.max_rows,
        quick=args.quick,
        seed=args.seed,
        data_dir=None if args.data_dir is None else str(args.data_dir),
    )
    run_experiment(SPEC, cfg.check(), args.out, **run_options(args))
    return 0


EXPERIMENT = Experiment(
    name=NAME,
    summary="DEC, IDEC, N2D and KMeans on Fashion-MNIST, MNIST or digits beside the published numbers",
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "run",
            "cluster the dataset with every method and write the table (the default action)",
            add_run_arguments,
            run,
        )
    ],
    default_action="run",
)
