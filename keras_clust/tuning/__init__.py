"""Hyper-parameter search: one space, two engines (Optuna, KerasTuner), one result record."""

from keras_clust.tuning.cae_space import CAE_SPACE, build_compiled_cae
from keras_clust.tuning.kerastuner_search import (
    TUNERS,
    make_hypermodel,
    make_tuner,
    run_kerastuner_search,
    work_on_kerastuner_search,
)
from keras_clust.tuning.optuna_search import run_optuna_search
from keras_clust.tuning.results import SearchResult, TrialRecord, to_optuna_study
from keras_clust.tuning.space import (
    Param,
    SearchSpace,
    choice_param,
    float_param,
    int_param,
    optuna_distributions,
    suggest_kerastuner,
    suggest_optuna,
)
from keras_clust.tuning.storage import open_storage, study_progress

__all__ = [
    "CAE_SPACE",
    "TUNERS",
    "Param",
    "SearchResult",
    "SearchSpace",
    "TrialRecord",
    "build_compiled_cae",
    "choice_param",
    "float_param",
    "int_param",
    "make_hypermodel",
    "make_tuner",
    "open_storage",
    "optuna_distributions",
    "run_kerastuner_search",
    "run_optuna_search",
    "study_progress",
    "suggest_kerastuner",
    "suggest_optuna",
    "to_optuna_study",
    "work_on_kerastuner_search",
]
