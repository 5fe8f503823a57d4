"""Train the field autoencoder of a run and score its reconstructions."""

from __future__ import annotations

import numpy as np

from keras_clust.apps.vector_fields.data import Splits
from keras_clust.errors import UsageError
from keras_clust.fields.autoencoder import FieldAE, FieldAEConfig, build_field_ae, estimate_cost
from keras_clust.training import FitResult, fit_model


def build(cfg, shape: tuple[int, ...], scale: float, seed: int | None = None) -> FieldAE:
    """The run's autoencoder (``cfg.architecture``), compiled."""
    return build_field_ae(
        FieldAEConfig.from_dict(cfg.architecture),
        shape,
        loss=cfg.loss,
        weight_floor=cfg.weight_floor,
        learning_rate=cfg.learning_rate,
        vae=cfg.vae,
        beta=cfg.beta,
        upsampling=cfg.upsampling,
        scale=scale,
        seed=seed,
    )


def train(ae: FieldAE, cfg, splits: Splits) -> FitResult:
    """Fit on the training fields, early stopping on the validation loss (best epoch kept)."""
    target = None if cfg.vae else splits.x_train
    val = (splits.x_val, None if cfg.vae else splits.x_val)
    return fit_model(
        ae.autoencoder, splits.x_train, target, val, epochs=cfg.epochs, batch_size=cfg.batch_size, patience=cfg.patience
    )


def reconstruction_scores(x: np.ndarray, recon: np.ndarray, channels, floor: float) -> dict:
    """Plain MSE, the magnitude-weighted MSE and the MSE per channel (in the fields' units)."""
    err = np.square(x.astype(np.float64) - recon)
    magnitude = np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=-1)) + floor
    weights = magnitude / magnitude.mean(axis=(1, 2), keepdims=True)
    return {
        "mse": float(err.mean()),
        "weighted_mse": float((weights * err.mean(axis=-1)).mean()),
        "mse_per_channel": {str(c): float(err[..., i].mean()) for i, c in enumerate(channels)},
        "variance": float(np.var(x, dtype=np.float64)),
    }


def cost_row(config: FieldAEConfig, shape, batch_size: int) -> dict:
    c = estimate_cost(config, shape, batch_size)
    return {
        "parameters": c.parameters,
        "estimated_training_mib": round(c.total_bytes / 2**20, 1),
        "train_gmacs_per_field": round(c.train_gmacs_per_field, 4),
    }


def check_architecture(arch: FieldAEConfig, size: int) -> None:
    """The architecture must pool ``size`` cells to one: a one-line error saying how to get one that does."""
    try:
        arch.check(size)
    except UsageError as exc:
        hint = f"'keras-clust vector-fields tune --size {size}' (or --dataset) and pass --params-from"
        raise UsageError(f"the autoencoder does not fit {size}x{size} fields ({exc}); search one with {hint}") from None
