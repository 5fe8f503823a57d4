"""``gmm-vae``: a dense VAE on Gaussian-mixture data, and an honest count of the modes it captures.

Seed: "Neural networks - Project 4". Samples of a d-dimensional Gaussian mixture (10
components with identity covariances in 3-D by default, or a mixture read from a file)
train a dense VAE, on five random mixtures by default (seeds 0-4), so every number has a
spread. Three rows: the write-up's exact objective (mean MSE + KL, ``report-mse``), the
same model with the reconstruction term written as a Gaussian likelihood so that beta 1
is the ELBO (``report``), and a preset chosen by ``tune`` on other mixtures (``tuned``, the
default: a learned mixture prior). Prior draws, decoded, are scored two ways: the write-up's KMeans with k
chosen by silhouette / elbow, and the mode-collapse metric of VEEGAN / PacGAN (a sample is
high quality within 3 standard deviations of its nearest component, by Mahalanobis
distance, and within the chi-square 0.99 radius; a mode is captured when it gets a quarter
of the high-quality samples the mixture's own samples give it, and beside that with at
least 1 % of the samples and with at least one; reverse KL of the mode histogram); the held-out -ELBO is
reported in nats. ``evaluate`` re-generates a run's samples from its saved decoders;
``export`` writes a row's encoder (z_mean) and decoder as SavedModels.
"""

from keras_clust.app import Experiment
from keras_clust.apps.gmm_vae.actions import evaluate, export, run
from keras_clust.apps.gmm_vae.config import NAME
from keras_clust.apps.gmm_vae.tune import tune

EXPERIMENT = Experiment(NAME, __doc__, [run, tune, evaluate, export])
