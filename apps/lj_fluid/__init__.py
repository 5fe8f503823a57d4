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

from keras_clust.app import Experiment
from keras_clust.apps.lj_fluid.actions import evaluate, export, run, simulate_action
from keras_clust.apps.lj_fluid.config import NAME
from keras_clust.apps.lj_fluid.tune import tune

EXPERIMENT = Experiment(NAME, __doc__, [simulate_action, run, tune, evaluate, export])
