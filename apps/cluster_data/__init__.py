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

from keras_clust.app import Experiment, action, config_arguments
from keras_clust.apps.cluster_data.config import DEEP_OPTIONS, NAME, Config
from keras_clust.apps.cluster_data.steps import exports, report, steps, summary
from keras_clust.cluster.options import add_deep_options, deep_settings_from_args
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, run_experiment
from keras_clust.settings import config_from_args, run_options

SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=report, summary=summary, exports=exports)


@action("run", config_arguments(Config, add_deep_options(*DEEP_OPTIONS)), Config)
def run(args: argparse.Namespace) -> int:
    """embed, cluster, write labels.npy, figures and scores (the default action)"""
    if not args.data_file and args.resume is None:
        raise UsageError("--data FILE is required: the rows to cluster (.npy, .npz or IDX)")
    settings = deep_settings_from_args(args)
    cfg = config_from_args(Config, args, settings=settings.quick() if args.quick else settings)
    run_experiment(SPEC, cfg.check(), args.out, **run_options(args))
    return 0


EXPERIMENT = Experiment(NAME, __doc__, [run], default_action="run")
