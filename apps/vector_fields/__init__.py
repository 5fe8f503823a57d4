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

from keras_clust.app import (
    Action,
    Experiment,
    add_export_arguments,
    add_saved_run_arguments,
    add_tensorboard_argument,
    config_arguments,
)
from keras_clust.apps.vector_fields.actions import (
    add_cluster_action_arguments,
    add_generate_arguments,
    add_run_extras,
    cluster,
    evaluate,
    export,
    generate,
    run,
)
from keras_clust.apps.vector_fields.config import NAME, ClusterConfig, Config
from keras_clust.apps.vector_fields.tune import TuneConfig, tune

EXPERIMENT = Experiment(
    name=NAME,
    summary="conv AE for 2-D vector fields: two-stage Optuna search, multi-objective clustering",
    description=__doc__.split("\n\n", 1)[1],
    actions=[
        Action(
            "generate",
            "write synthetic fields of eleven flow types with their labels (.npz)",
            add_generate_arguments,
            generate,
        ),
        Action(
            "run",
            "generate or read fields, train the autoencoder, cluster its codes, report, export",
            config_arguments(Config, add_run_extras),
            run,
            Config,
        ),
        Action(
            "tune",
            "two-stage Optuna search over the autoencoder's architecture",
            config_arguments(TuneConfig, add_tensorboard_argument, run=False),
            tune,
            TuneConfig,
        ),
        Action(
            "cluster",
            "cluster a finished run's codes again (multi-objective study)",
            config_arguments(ClusterConfig, add_cluster_action_arguments, run=False),
            cluster,
            ClusterConfig,
        ),
        Action("evaluate", "re-score a run's test fields with its saved models", add_saved_run_arguments, evaluate),
        Action(
            "export",
            "export a run's encoder (fields -> embedding) and decoder as SavedModels",
            add_export_arguments,
            export,
        ),
    ],
)
