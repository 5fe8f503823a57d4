"""The options of :class:`~keras_clust.cluster.deep.DeepSettings`, declared once for every command
that clusters with DEC, IDEC or N2D (``keras-clust cluster`` and ``cluster-bench``).

A command picks the ones it offers with :func:`add_deep_options`, reads them back with
:func:`deep_settings_from_args` (the settings it does not offer keep the papers' defaults) and
turns a saved config back into option values (``--config``) with :func:`deep_config_defaults`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass

from keras_clust.cluster.deep import DeepSettings
from keras_clust.option_types import non_negative_float, positive_int
from keras_clust.settings import (
    add_settings,
    config_defaults,
    declarations,
    k_criterion_setting,
    k_range_setting,
    k_setting,
    setting,
)


@dataclass
class DeepOptions:
    """The :class:`DeepSettings` a command line can set (defaults: the settings' own)."""

    n_clusters: int | None = k_setting(DeepSettings.n_clusters)
    k_range: tuple[int, int] = k_range_setting()
    k_criterion: str = k_criterion_setting()
    pretrain_epochs: int = setting(
        DeepSettings.pretrain_epochs,
        "epochs of the d-500-500-2000-10 autoencoder pretrained on the data",
        type=positive_int,
    )
    max_iter: int = setting(DeepSettings.max_iter, "most DEC/IDEC fine-tuning batches", type=positive_int)
    update_interval: int = setting(
        DeepSettings.update_interval, "batches between DEC/IDEC target updates", type=positive_int
    )
    tol: float = setting(DeepSettings.tol, "stop DEC/IDEC below this share of changed labels", type=non_negative_float)
    n_neighbors: int = setting(DeepSettings.n_neighbors, "N2D's UMAP neighbours", type=positive_int)


def add_deep_options(*names: str) -> Callable[[argparse.ArgumentParser], None]:
    """``add_arguments`` adding the options of the :class:`DeepOptions` fields ``names``, in that order."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_settings(parser, DeepOptions, only=names)

    return add_arguments


def deep_settings_from_args(args: argparse.Namespace) -> DeepSettings:
    """The :class:`DeepSettings` of a parsed command line: each option it has, the defaults elsewhere."""
    return DeepSettings(
        **{f.name: getattr(args, f.name) for f, _ in declarations(DeepOptions) if hasattr(args, f.name)}
    )


def deep_config_defaults(config, names: tuple[str, ...]) -> dict:
    """The option values (by destination) that repeat ``config`` (``--config``): its declared
    settings, and the :class:`DeepOptions` ``names`` from its ``settings`` (a :class:`DeepSettings`)."""
    own = config_defaults(type(config), asdict(config))
    return {
        **own,
        **{f.name: getattr(config.settings, f.name) for f, _ in declarations(DeepOptions) if f.name in names},
    }
