"""``cluster-bench``: DEC, IDEC and N2D against KMeans and the published numbers.

Clusters all 70k images of Fashion-MNIST or MNIST (train + test, as the papers do; ``--split
test`` for the held-out 10k) or scikit-learn's 1,797 digits with every method: KMeans on pixels
and on the autoencoder's codes, DEC, IDEC and N2D on one ``d-500-500-2000-10`` autoencoder
pretrained per seed. Writes a run folder with the table beside the published ACC/NMI, time per
stage, peak memory, matched confusion matrices and a 2-D map of the best final embedding.
"""

from __future__ import annotations

import argparse

from keras_clust.app import Experiment, action, config_arguments
from keras_clust.apps.cluster_bench.config import DEEP_OPTIONS, NAME, Config
from keras_clust.apps.cluster_bench.report import report, summary
from keras_clust.apps.cluster_bench.steps import steps
from keras_clust.cluster.options import add_deep_options, deep_settings_from_args
from keras_clust.experiment import ExperimentSpec, run_experiment
from keras_clust.settings import config_from_args, run_options

SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=report, summary=summary)


@action("run", config_arguments(Config, add_deep_options(*DEEP_OPTIONS)), Config)
def run(args: argparse.Namespace) -> int:
    """cluster the dataset with every method and write the table (the default action)"""
    cfg = config_from_args(Config, args, settings=deep_settings_from_args(args))
    run_experiment(SPEC, cfg.check(), args.out, **run_options(args))
    return 0


EXPERIMENT = Experiment(NAME, __doc__, [run], default_action="run")
