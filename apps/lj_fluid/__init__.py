"""``lj-fluid``: Metropolis Monte Carlo of a Lennard-Jones fluid under gravity, and three VAEs on its configurations.

Seed: "Variational Auto Encoders", meetings 1-5 (the Lennard-Jones fluid slides).
``simulate`` samples configurations of N particles in a box with gravity (reduced units,
gamma = m g sigma / (4 eps)) with many Metropolis chains at once (numba, every core),
detects equilibration and the decorrelation lag, and writes a dataset. ``run`` trains three
VAEs on three views of the configurations -- sorted coordinates (dense), density grids built
in the input pipeline (Conv3D, the product's flagship) and distance matrices (Conv2D) --
recovers configurations from decoded distance matrices (classical MDS and a coordinate
network), maps their energies, reads gamma out of the latent spaces and scores anomalies
(a held-out gamma, an overlapping pair) by -ELBO. ``tune`` searches the grid VAE with
KerasTuner's Hyperband; ``evaluate`` re-scores a run's models; ``export`` writes the encoders
(z_mean) and the grid and distance-matrix decoders as SavedModels.
"""

from keras_clust.app import Action, Experiment, add_export_arguments, add_tensorboard_argument, config_arguments
from keras_clust.apps.lj_fluid.actions import (
    add_data_dir_argument,
    add_evaluate_arguments,
    add_simulate_arguments,
    evaluate,
    export,
    run,
    simulate_action,
)
from keras_clust.apps.lj_fluid.config import NAME, Config, SimulateConfig
from keras_clust.apps.lj_fluid.tune import TuneConfig, tune

EXPERIMENT = Experiment(
    name=NAME,
    summary="Metropolis MC of a Lennard-Jones fluid under gravity; Conv3D density-grid and distance-matrix VAEs",
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "simulate",
            "sample configurations with parallel Metropolis chains; write a dataset and its figures",
            add_simulate_arguments,
            simulate_action,
            SimulateConfig,
        ),
        Action(
            "run",
            "simulate (or read a dataset), train the three VAEs, analyse, plot, export",
            config_arguments(Config, add_data_dir_argument),
            run,
            Config,
        ),
        Action(
            "tune",
            "Hyperband search (KerasTuner) over the density-grid VAE",
            config_arguments(TuneConfig, add_tensorboard_argument, run=False),
            tune,
            TuneConfig,
        ),
        Action(
            "evaluate", "re-score a run's test configurations with its saved models", add_evaluate_arguments, evaluate
        ),
        Action(
            "export",
            "export a run's encoders (z_mean) and grid/distance decoders as SavedModels",
            add_export_arguments,
            export,
        ),
    ],
)
