"""``fashion-cae``: the Fashion-MNIST convolutional autoencoder, its hyper-parameter search, a conv VAE.

Seed: "Neural Network and Deep Learning Homework 2". ``run`` trains the report's CAE
(given or searched hyper-parameters) with MSE, a conv VAE (reconstruction and KL logged
per epoch, test ELBO), draws PCA/t-SNE maps of both latent spaces, generates images
from both, clusters the codes with KMeans against raw pixels, and trains a classifier
on the CAE encoder (frozen, then fine-tuned). ``tune`` searches the CAE's space with
Optuna (TPE, median pruning, resumable storage) or KerasTuner; ``evaluate`` re-scores
a run; ``export`` writes its encoders, VAE decoder and classifier as SavedModels.
"""

from keras_clust.app import Action, Experiment, add_export_arguments, add_saved_run_arguments
from keras_clust.apps.fashion_cae.actions import add_run_arguments, evaluate, export, run
from keras_clust.apps.fashion_cae.config import RunConfig, TuneConfig
from keras_clust.apps.fashion_cae.tune import add_tune_arguments, tune

SUMMARY = "conv AE + VAE on Fashion-MNIST: Optuna/KerasTuner search, latent maps, transfer learning"

EXPERIMENT = Experiment(
    name="fashion-cae",
    summary=SUMMARY,
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "run",
            "train the CAE, the VAE and the classifiers; analyse, plot and export",
            add_run_arguments,
            run,
            RunConfig,
        ),
        Action(
            "tune", "search the CAE's hyper-parameters (Optuna or KerasTuner)", add_tune_arguments, tune, TuneConfig
        ),
        Action("evaluate", "re-score a saved run's models on its test data", add_saved_run_arguments, evaluate),
        Action(
            "export",
            "export a saved run's encoders, VAE decoder and classifier as SavedModels",
            add_export_arguments,
            export,
        ),
    ],
)
