"""One call for every clustering method of the toolkit on an encoder's embedding.

:func:`cluster_embedding` is what ``keras-clust cluster``, ``cluster-bench`` and the apps'
``--cluster`` option run: ``kmeans`` (KMeans on the codes), ``dec``, ``idec`` or ``n2d``, on a
given encoder or on the ``d-500-500-2000-10`` autoencoder pretrained on the data.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from sklearn.cluster import KMeans

from keras_clust.cluster.dec import DEC, IDEC
from keras_clust.cluster.deep_base import pretrain_autoencoder
from keras_clust.cluster.k_selection import choose_k, manifold_for_k
from keras_clust.cluster.n2d import N2D
from keras_clust.errors import UsageError
from keras_clust.models.dec import build_dec_serving_model
from keras_clust.models.encoder_io import as_input_rows, encode_in_batches, load_encoder
from keras_clust.progress import stage
from keras_clust.validation import check_rows

#: The methods of :func:`cluster_embedding` (``--cluster`` choices of the apps that cluster codes).
METHODS = ("kmeans", "dec", "idec", "n2d")
#: The budgets a ``--quick`` smoke run shrinks to (two pretraining epochs, 40 fine-tuning batches).
QUICK_BUDGET = {"pretrain_epochs": 2, "max_iter": 40, "update_interval": 10}


@dataclass
class DeepSettings:
    """Settings of every method (each uses the ones that concern it); the defaults are the papers'
    except ``pretrain_epochs`` and ``max_iter``, which are a time budget on 2 CPU cores."""

    #: None: chosen by :func:`~keras_clust.cluster.k_selection.choose_k` (``--k auto``).
    n_clusters: int | None = 10
    pretrain_epochs: int = 50
    batch_size: int = 256
    embedding_dim: int = 10
    n_init: int = 20
    update_interval: int = 140
    tol: float = 0.001
    max_iter: int = 5000
    gamma: float = 0.1
    n_neighbors: int = 20
    #: The k tried when ``n_clusters`` is None, and the label-free criterion that picks one.
    k_range: tuple[int, int] = (2, 20)
    k_criterion: str = "silhouette"

    def __post_init__(self):
        self.k_range = tuple(int(k) for k in self.k_range)

    def to_dict(self) -> dict:
        return asdict(self)

    def quick(self) -> DeepSettings:
        """These settings with the budgets of a ``--quick`` smoke run."""
        return replace(self, **QUICK_BUDGET)

    @classmethod
    def for_run(cls, n_clusters: int | None, quick: bool = False, **changes) -> DeepSettings:
        """The papers' settings for ``n_clusters`` (None: chosen; ``changes`` applied), shrunk for a
        ``--quick`` run."""
        s = cls(n_clusters=None if n_clusters is None else int(n_clusters), **changes)
        return s.quick() if quick else s


@dataclass
class DeepResult:
    """What one clustering produced.

    Attributes:
        method: The method's name.
        labels: Cluster of every row.
        embedding: The space the clusters were found in (codes; UMAP coordinates for N2D).
        stage_seconds: Time of each stage.
        encoder: The Keras encoder of the result (fine-tuned by DEC/IDEC, pretrained here, or the
            one given), or None for a bare SavedModel.
        trained_here: Whether ``encoder`` was trained or fine-tuned by this call (worth exporting).
        assignment: DEC/IDEC's ``images -> [q, embedding]`` model, else None.
        info: Method-specific numbers (iterations, convergence, the starting KMeans labels).
        history: Per-epoch rows of pretraining and fine-tuning.
    """

    method: str
    labels: np.ndarray
    embedding: np.ndarray
    stage_seconds: dict
    encoder: object | None
    trained_here: bool
    assignment: object | None = None
    info: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


def _kmeans(x, s: DeepSettings, encoder, seed: int, verbose: int, scale: float) -> DeepResult:
    seconds, history, trained = {}, [], encoder is None
    if encoder is None:
        ae, history, seconds["pretrain"] = pretrain_autoencoder(
            x, s.embedding_dim, epochs=s.pretrain_epochs, batch_size=s.batch_size, seed=seed, verbose=verbose
        )
        encoder = ae.encoder
    enc = load_encoder(encoder)
    start = time.perf_counter()
    codes = encode_in_batches(enc, x, scale=scale)
    seconds["encode"] = time.perf_counter() - start
    start = time.perf_counter()
    with stage(f"KMeans (k={s.n_clusters}) of {len(codes)} codes"):
        labels = KMeans(s.n_clusters, n_init=s.n_init, random_state=seed).fit_predict(codes)
    seconds["kmeans"] = time.perf_counter() - start
    return DeepResult("kmeans", labels.astype(np.int64), codes, seconds, enc.model, trained, history=history)


def choose_k_on_encoder(x, s: DeepSettings, encoder, seed: int = 0, scale: float = 1.0):
    """The k of ``x`` on ``encoder``'s codes: N2D's UMAP manifold of them and :func:`choose_k`
    with ``s.k_range`` and ``s.k_criterion``. Returns ``(KChoice, codes, seconds)``."""
    start = time.perf_counter()
    codes = encode_in_batches(load_encoder(encoder), x, scale=scale)
    with stage(f"choosing k in {s.k_range[0]}-{s.k_range[1]} by {s.k_criterion} on {len(codes)} codes"):
        manifold = manifold_for_k(codes, s.n_neighbors, random_state=seed)
        choice = choose_k(manifold, s.k_range, s.k_criterion, random_state=seed)
    return choice, codes, time.perf_counter() - start


def _with_chosen_k(method, x, s: DeepSettings, encoder, decoder, seed: int, verbose: int, scale: float) -> DeepResult:
    """``cluster_embedding`` with k chosen first: the embedding (the stacked autoencoder pretrained
    here when no encoder is given), N2D's UMAP manifold of it, :func:`choose_k` on that, then
    ``method`` with the chosen k on the same encoder. One cluster needs no method."""
    seconds, history, trained = {}, [], encoder is None
    if encoder is None:
        ae, history, seconds["pretrain"] = pretrain_autoencoder(
            x, s.embedding_dim, epochs=s.pretrain_epochs, batch_size=s.batch_size, seed=seed, verbose=verbose
        )
        encoder, decoder = ae.encoder, ae.decoder
    choice, codes, seconds["choose_k"] = choose_k_on_encoder(x, s, encoder, seed, scale)
    info = {"k_choice": choice.to_dict()}
    if choice.k == 1:
        enc = load_encoder(encoder)
        labels = np.zeros(len(x), dtype=np.int64)
        return DeepResult(method, labels, codes, seconds, enc.model, trained, info=info, history=history)
    result = cluster_embedding(method, x, replace(s, n_clusters=choice.k), encoder, decoder, seed, verbose, scale)
    result.stage_seconds = {**seconds, **result.stage_seconds}
    result.history = history + result.history
    result.trained_here = result.trained_here or trained
    result.info = {**info, **result.info}
    return result


def estimator(
    method: str, s: DeepSettings, encoder=None, decoder=None, seed: int = 0, verbose: int = 0, scale: float = 1.0
):
    """The scikit-learn estimator of ``method`` (``dec``, ``idec`` or ``n2d``) with settings ``s``
    (``scale``: N2D multiplies each encoded batch by it, e.g. 1/255 for bytes)."""
    common = {
        "n_clusters": s.n_clusters,
        "encoder": encoder,
        "embedding_dim": s.embedding_dim,
        "pretrain_epochs": s.pretrain_epochs,
        "batch_size": s.batch_size,
        "random_state": seed,
        "verbose": verbose,
    }
    dec = {"n_init": s.n_init, "update_interval": s.update_interval, "tol": s.tol, "max_iter": s.max_iter}
    if method == "dec":
        return DEC(**common, **dec)
    if method == "idec":
        return IDEC(**common, **dec, decoder=decoder, gamma=s.gamma)
    if method == "n2d":
        return N2D(**common, n_neighbors=s.n_neighbors, input_scale=scale)
    if method == "kmeans":
        raise UsageError("kmeans is not a deep estimator; use cluster_embedding('kmeans', ...) or evaluate_kmeans")
    raise UsageError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def cluster_embedding(
    method: str,
    x: np.ndarray,
    settings: DeepSettings | None = None,
    encoder=None,
    decoder=None,
    seed: int = 0,
    verbose: int = 0,
    scale: float = 1.0,
) -> DeepResult:
    """Cluster ``x`` with ``method`` on ``encoder``'s embedding (None: pretrain the stacked AE).

    Args:
        method: ``kmeans``, ``dec``, ``idec`` or ``n2d``.
        x: Rows (an array or a memory map; shaped like the encoder's input or flat).
        settings: :class:`DeepSettings`.
        encoder: None, a Keras model, a ``.keras`` file or a SavedModel folder.
        decoder: The decoder matching ``encoder`` (IDEC with a given encoder).
        seed: Seed of every random choice.
        verbose: Keras ``fit`` verbosity.
        scale: Every row is multiplied by it (e.g. 1/255 for bytes). KMeans and N2D on a given encoder
            scale batch by batch, so a memory-mapped file is never loaded whole (memory bounded in
            the rows); training (DEC/IDEC, or the autoencoder when no encoder is given) needs every
            row in memory and scales a float32 copy.

    Raises:
        UsageError: unknown method, or a frozen encoder for DEC/IDEC.
        DataError: rows that do not fit the encoder's input (naming both shapes).
    """
    s = settings or DeepSettings()
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = check_rows(x, "the data", min_samples=max(2, s.n_clusters or s.k_range[0] + 1))
    if scale != 1.0 and (encoder is None or method in ("dec", "idec")):  # trains on every row: in memory
        x, scale = np.asarray(x, dtype=np.float32) * np.float32(scale), 1.0
    if s.n_clusters is None:
        return _with_chosen_k(method, x, s, encoder, decoder, seed, verbose, scale)
    if encoder is not None:
        encoder = load_encoder(encoder)
        as_input_rows(x[:1], encoder.input_shape, "the data")  # the one-line shape error before any work
        if method in ("dec", "idec") and not encoder.trainable:
            raise UsageError(
                f"{method} fine-tunes the encoder, but {encoder.source} is a bare SavedModel; pass "
                "its .keras file (exports keep one as model.keras), or use --method kmeans or n2d"
            )
        encoder = encoder.model or encoder
    if method == "kmeans":
        return _kmeans(x, s, encoder, seed, verbose, scale)
    est = estimator(method, s, encoder, decoder, seed, verbose, scale).fit(x)
    history = list(getattr(est, "history_", est.pretrain_history_))
    if method == "n2d":
        return DeepResult(
            method,
            est.labels_,
            est.embedding_,
            est.stage_seconds_,
            est.encoder_.model,
            encoder is None,
            history=history,
        )
    info = {
        "iterations": est.n_iter_,
        "converged": est.converged_,
        "label_changes": est.label_changes_,
        "initial_labels": est.initial_labels_,
    }
    serving = build_dec_serving_model(est.encoder_.model, est.model_.get_layer("assignment"))
    return DeepResult(
        method, est.labels_, est.transform(x), est.stage_seconds_, est.encoder_.model, True, serving, info, history
    )
