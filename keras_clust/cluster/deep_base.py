"""What DEC, IDEC and N2D share: an embedding from a given encoder or from the
``d-500-500-2000-10`` autoencoder pretrained on the data, as in the papers."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from keras_clust.errors import UsageError
from keras_clust.models.dense_ae import STACKED_AE_UNITS, Autoencoder, build_stacked_autoencoder
from keras_clust.models.encoder_io import encode_in_batches, load_encoder
from keras_clust.validation import check_rows


def pretrain_autoencoder(
    x: np.ndarray,
    embedding_dim: int = 10,
    hidden_units: Sequence[int] = STACKED_AE_UNITS,
    epochs: int = 50,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[Autoencoder, list[dict], float]:
    """Train :func:`~keras_clust.models.build_stacked_autoencoder` on ``x`` (rows flattened)
    end to end with MSE and Adam, as IDEC's and N2D's code do (DEC pretrained layer-wise).

    Args:
        x: Training rows, any shape per row (flattened).
        embedding_dim: Size of the code.
        hidden_units: Encoder widths.
        epochs: Training epochs (the papers use 200-1000; fewer is the time budget here).
        batch_size: Batch size (256 in the papers).
        learning_rate: Adam's step size.
        seed: Seed of the weights and of the shuffling.
        verbose: Keras ``fit`` verbosity.

    Returns:
        ``(autoencoder, history rows, seconds)``.
    """
    import keras

    from keras_clust.training import fit_model

    flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    keras.utils.set_random_seed(int(seed))
    ae = build_stacked_autoencoder(flat.shape[1], embedding_dim, hidden_units)
    ae.autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    result = fit_model(ae.autoencoder, flat, flat, None, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return ae, result.rows(stage="pretrain"), result.seconds


def copy_model(model):
    """A copy of a Keras model with its own weights (the caller's model is never trained)."""
    import keras

    try:
        copy = keras.models.clone_model(model)
    except Exception as exc:  # noqa: BLE001 - subclassed models cannot be cloned
        raise UsageError(
            f"cannot copy the model {model.name} to fine-tune it ({exc}); "
            "pass a functional Keras model or its .keras file"
        ) from None
    copy.set_weights(model.get_weights())
    return copy


class DeepClusteringMixin(ClusterMixin, BaseEstimator):
    """Base of the deep clustering estimators: validation, seeding, the embedding.

    Subclasses list every parameter in their ``__init__`` (scikit-learn reads them from
    the signature) and use :meth:`_prepare` and :meth:`_embedding_model` in ``fit``.

    Attributes set by ``fit``:
        encoder_: The :class:`~keras_clust.models.encoder_io.Encoder` of the final embedding.
        pretrain_history_: Per-epoch rows of the pretraining ([] when an encoder was given).
        pretrain_seconds_: Pretraining time (0 when an encoder was given).
        n_features_in_: Values per input row.
    """

    def _prepare(self, X) -> tuple[np.ndarray, int]:
        """Check ``X`` and draw the fit's seed from ``random_state``."""
        if int(self.n_clusters) < 1:
            raise UsageError(f"n_clusters must be >= 1, got {self.n_clusters}")
        x = check_rows(X, "X", min_samples=max(2, int(self.n_clusters)))
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return x, seed

    def _embedding_model(self, x: np.ndarray, seed: int, trainable: bool = False) -> tuple[object, object]:
        """The starting encoder (and decoder when known): a copy of the given one, or the
        stacked autoencoder pretrained on ``x``. Returns ``(encoder, decoder or None)``;
        the encoder is a Keras model when ``trainable``, else an ``Encoder``."""
        self.pretrain_history_, self.pretrain_seconds_ = [], 0.0
        if self.encoder is None:
            ae, self.pretrain_history_, self.pretrain_seconds_ = pretrain_autoencoder(
                x,
                self.embedding_dim,
                tuple(self.hidden_units),
                self.pretrain_epochs,
                self.batch_size,
                self.pretrain_learning_rate,
                seed,
                self.verbose,
            )
            return (ae.encoder if trainable else load_encoder(ae.encoder)), ae.decoder
        given = load_encoder(self.encoder)
        if not trainable:
            return given, None
        if not given.trainable:
            raise UsageError(
                f"{type(self).__name__} fine-tunes the encoder, but {given.source} is a bare "
                "SavedModel; pass its .keras file (exports keep one as model.keras)"
            )
        return copy_model(given.model), None

    def transform(self, X) -> np.ndarray:
        """The embedding the clusters were found in (before any manifold step)."""
        check_is_fitted(self, "encoder_")
        return encode_in_batches(self.encoder_, check_rows(X, "X"))

    def _timed(self, name: str, start: float) -> None:
        self.stage_seconds_[name] = round(time.perf_counter() - start, 2)
