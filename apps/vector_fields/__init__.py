"""``vector-fields``: a hyper-parameterised convolutional autoencoder for 2-D vector fields and clustering of its codes.

Seed: "Unsupervised Deep clustering for Vector Field Analysis" (slides). ``generate`` writes
synthetic 80x80 fields of eleven known flow types (uniform, source, sink, vortices, saddle,
shear, spirals, dipole, vortex pair) with their labels. ``run`` trains the autoencoder (the
slides' winning architecture, or the best of a ``tune``) on generated or your own fields,
embeds every field into a few numbers, and picks a clustering of the embeddings (KMeans or
DBSCAN) by a multi-objective Optuna study: mean silhouette up, clusters cutting the mean
silhouette up (and optionally the spread of centroid distances down). ``tune`` searches the
architecture in two Optuna stages (shape, then kernels/dilations/activations), pruning what
would not fit in memory; ``cluster`` re-clusters a run's codes with other settings;
``evaluate`` re-scores a run; ``export`` writes the encoder and decoder as SavedModels.
"""

from keras_clust.app import Experiment
from keras_clust.apps.vector_fields.actions import cluster, evaluate, export, generate, run
from keras_clust.apps.vector_fields.config import NAME
from keras_clust.apps.vector_fields.tune import tune

EXPERIMENT = Experiment(NAME, __doc__, [generate, run, tune, cluster, evaluate, export])
