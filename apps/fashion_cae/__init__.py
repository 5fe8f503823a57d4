"""``fashion-cae``: the Fashion-MNIST convolutional autoencoder, its hyper-parameter search, a conv VAE.

Seed: "Neural Network and Deep Learning Homework 2". ``run`` trains the report's CAE
(given or searched hyper-parameters) with MSE, a conv VAE (reconstruction and KL logged
per epoch, test ELBO), draws PCA/t-SNE maps of both latent spaces, generates images
from both, clusters the codes with KMeans against raw pixels, and trains a classifier
on the CAE encoder (frozen, then fine-tuned). ``tune`` searches the CAE's space with
Optuna (TPE, median pruning, resumable storage) or KerasTuner; ``evaluate`` re-scores
a run; ``export`` writes its encoders, VAE decoder and classifier as SavedModels.
"""

from keras_clust.app import Experiment
from keras_clust.apps.fashion_cae.actions import evaluate, export, run
from keras_clust.apps.fashion_cae.tune import tune

EXPERIMENT = Experiment("fashion-cae", __doc__, [run, tune, evaluate, export])
