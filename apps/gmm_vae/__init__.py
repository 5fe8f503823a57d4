"""``gmm-vae``: a dense VAE on Gaussian-mixture data, and an honest count of the modes it captures.

Seed: "Neural networks - Project 4". Samples of a d-dimensional Gaussian mixture (10
components with identity covariances in 3-D by default, or a mixture read from a file)
train a dense VAE, on five random mixtures by default (seeds 0-4), so every number has a
spread. Three rows: the write-up's exact objective (mean MSE + KL, ``report-mse``), the
same model with the reconstruction term written as a Gaussian likelihood so that beta 1
is the ELBO (``report``, the default), and a preset chosen by ``tune`` on other mixtures
(``tuned``). Prior draws, decoded, are scored two ways: the write-up's KMeans with k
chosen by silhouette / elbow, and the mode-collapse metric of VEEGAN / PacGAN (a sample is
high quality within 3 standard deviations of its nearest component, by Mahalanobis
distance, and within the chi-square 0.99 radius; modes captured with at least 1 % of the
samples and with at least one; reverse KL of the mode histogram); the held-out -ELBO is
reported in nats. ``evaluate`` re-generates a run's samples from its saved decoders;
``export`` writes a row's encoder (z_mean) and decoder as SavedModels.
"""

from keras_clust.app import Action, Experiment
from keras_clust.apps.gmm_vae.actions import (
    add_evaluate_arguments,
    add_gmm_export_arguments,
    add_run_arguments,
    evaluate,
    export,
    run,
)
from keras_clust.apps.gmm_vae.config import NAME, Config
from keras_clust.apps.gmm_vae.tune import TuneConfig, add_tune_arguments, tune

EXPERIMENT = Experiment(
    name=NAME,
    summary="dense VAE on a Gaussian mixture; modes captured by KMeans and by the VEEGAN/PacGAN metric",
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "run",
            "sample mixtures, train the VAEs, score the modes and the ELBO, plot, export",
            add_run_arguments,
            run,
            Config,
        ),
        Action(
            "tune",
            "the preset sweep on mixtures the run does not report (seeds 100-104)",
            add_tune_arguments,
            tune,
            TuneConfig,
        ),
        Action(
            "evaluate",
            "re-generate a run's samples from its saved decoders; score fresh prior draws",
            add_evaluate_arguments,
            evaluate,
        ),
        Action(
            "export", "export a run's encoder (z_mean) and decoder as SavedModels", add_gmm_export_arguments, export
        ),
    ],
)
