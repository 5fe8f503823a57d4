"""Custom layers written in ``keras.ops``: VAE sampling, the KL-divergence term, the Gaussian and
Bernoulli reconstruction terms of the ELBO, the distance-matrix helpers of ``lj-fluid``, a
crop computed as one slice, and a depth-to-space shuffle for 2-D and 3-D maps."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

LOG_2PI = 1.8378770664093453  # log(2 pi)


@keras.saving.register_keras_serializable(package="keras_clust")
class Sampling(keras.layers.Layer):
    """Draw ``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` (reparameterisation).

    Args:
        seed: Seed of the layer's ``keras.random.SeedGenerator``.

    Call args:
        inputs: ``[z_mean, z_log_var]``, both of shape ``(batch, latent_dim)``.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator, dtype=z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_clust")
class KLDivergence(keras.layers.Layer):
    """Add ``beta * KL(N(mean, exp(log_var)) || N(0, I))`` to the model's losses.

    The KL is summed over latent dimensions and averaged over the batch. The layer
    passes its inputs through unchanged, so it sits between the encoder heads and
    :class:`Sampling`. The unweighted KL is also tracked as the metric ``kl``, so
    ``fit`` logs it per epoch beside the total loss.

    With ``free_bits`` (nats per latent dimension, Kingma et al. 2016) the loss charges each
    dimension's batch-mean KL only above that floor, ``beta * sum_d max(KL_d, free_bits)``: the
    first ``free_bits`` nats a dimension carries cost nothing, so the encoder is not pushed to
    switch it off before the decoder has learnt to read it (posterior collapse). The loss is then
    an upper bound of the negative ELBO that is loose by at most ``free_bits`` per dimension; the
    ``kl`` metric stays the true KL.

    Args:
        beta: Weight of the KL term (1.0 is the plain ELBO).
        free_bits: KL per latent dimension, in nats, that the loss does not charge (0: none).
    """

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if beta < 0 or free_bits < 0:
            raise ValueError(f"beta and free_bits must be >= 0, got {beta}, {free_bits}")
        self.beta = float(beta)
        self.free_bits = float(free_bits)
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def call(self, inputs):
        z_mean, z_log_var = inputs
        per_dimension = ops.mean(kl_per_dimension(z_mean, z_log_var), axis=0)
        kl = ops.sum(per_dimension)
        charged = ops.sum(ops.maximum(per_dimension, self.free_bits)) if self.free_bits > 0 else kl
        self.add_loss(self.beta * charged)
        self.kl_tracker.update_state(kl)
        return z_mean, z_log_var

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "free_bits": self.free_bits}


@keras.saving.register_keras_serializable(package="keras_clust")
class MixturePriorKL(keras.layers.Layer):
    """Add ``beta * KL(q(z | x) || p(z))`` for a learned Gaussian-mixture prior to the losses.

    ``p(z) = sum_k pi_k N(z; m_k, diag(s_k^2))`` with trainable means (a small seeded start,
    N(0, 0.05^2): the components begin near N(0, I) and move apart), log-variances (start 0) and
    logits (start equal weights). A continuous N(0, I)
    prior decodes the space between a multimodal data set's modes into samples between them;
    a mixture prior lets the prior's mass sit where the codes are. The KL has no closed
    form: per sample it is ``-H[q] - log p(z)``, the entropy of ``q`` in closed form and
    ``log p`` at the sample ``z`` the model decodes (an unbiased one-draw estimate).

    The layer takes ``[z_mean, z_log_var, z]`` and returns ``z`` (it sits after
    :class:`Sampling`). The unweighted KL is tracked as the metric ``kl``. Its weight is the
    non-trainable variable ``kl_weight`` (``beta`` at the start), which
    :class:`keras_clust.mixture_prior.KLWarmup` raises from 0 over the first epochs, and
    :class:`keras_clust.mixture_prior.PriorRefit` refits the prior to the codes by EM.

    Args:
        n_components: Components of the prior.
        beta: Weight of the KL term (1.0 is the plain ELBO).
        seed: Seed of the means' initialiser.
    """

    def __init__(self, n_components: int = 10, beta: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if n_components < 1 or beta < 0:
            raise ValueError(f"need n_components >= 1 and beta >= 0, got {n_components}, {beta}")
        self.n_components = int(n_components)
        self.beta = float(beta)
        self.seed = seed
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        k = self.n_components
        self.prior_means = self.add_weight(
            shape=(k, dim), name="prior_means", initializer=keras.initializers.RandomNormal(seed=self.seed)
        )
        self.prior_log_vars = self.add_weight(shape=(k, dim), name="prior_log_vars", initializer="zeros")
        self.prior_logits = self.add_weight(shape=(k,), name="prior_logits", initializer="zeros")
        self.kl_weight = self.add_weight(
            shape=(), name="kl_weight", initializer=keras.initializers.Constant(self.beta), trainable=False
        )
        super().build(input_shape)

    def log_prior(self, z):
        """``log p(z)`` per row of ``z`` ``(batch, dim)``."""
        diff = ops.expand_dims(z, 1) - self.prior_means  # (batch, K, dim)
        log_normal = -0.5 * ops.sum(
            ops.square(diff) * ops.exp(-self.prior_log_vars) + self.prior_log_vars + LOG_2PI, axis=-1
        )
        log_weights = self.prior_logits - ops.logsumexp(self.prior_logits)
        return ops.logsumexp(log_normal + log_weights, axis=-1)

    def call(self, inputs):
        z_mean, z_log_var, z = inputs
        entropy = 0.5 * ops.sum(1.0 + LOG_2PI + z_log_var, axis=-1)
        kl = ops.mean(-entropy - self.log_prior(z))
        self.add_loss(self.kl_weight * kl)
        self.kl_tracker.update_state(kl)
        return z

    def prior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(means (K, d), variances (K, d), weights (K,))`` of the learned prior, float64."""
        means, log_vars, logits = (
            np.asarray(ops.convert_to_numpy(w), np.float64)
            for w in (self.prior_means, self.prior_log_vars, self.prior_logits)
        )
        weights = np.exp(logits - logits.max())
        return means, np.exp(log_vars), weights / weights.sum()

    def compute_output_shape(self, input_shape):
        return input_shape[2]

    def get_config(self):
        return {**super().get_config(), "n_components": self.n_components, "beta": self.beta, "seed": self.seed}


def kl_per_dimension(z_mean, z_log_var):
    """Per-sample, per-dimension KL divergence of ``N(z_mean, exp(z_log_var))`` to N(0, 1)."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def kl_divergence(z_mean, z_log_var):
    """Per-sample KL divergence to N(0, I), summed over latent dimensions."""
    return ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)


@keras.saving.register_keras_serializable(package="keras_clust")
def summed_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy summed over all pixels of a sample (the ELBO's reconstruction
    term, on the same per-sample scale as the summed KL)."""
    y_true = ops.reshape(y_true, (ops.shape(y_true)[0], -1))
    y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    eps = keras.config.epsilon()
    y_pred = ops.clip(y_pred, eps, 1.0 - eps)
    return -ops.sum(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred), axis=-1)


def gaussian_nll(x, mean, log_var):
    """Per-sample negative log-likelihood of ``x`` under ``N(mean, diag(exp(log_var)))`` in nats,
    summed over features, constant included:
    ``0.5 * sum_j [(x_j - mean_j)^2 / var_j + log var_j + log(2 pi)]``.

    ``log_var`` broadcasts against ``x`` (one value per feature, or one per sample and feature).
    """
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    mean = ops.reshape(mean, (ops.shape(mean)[0], -1))
    log_var = ops.cast(log_var, x.dtype)
    return 0.5 * ops.sum(ops.square(x - mean) * ops.exp(-log_var) + log_var + LOG_2PI, axis=-1)


@keras.saving.register_keras_serializable(package="keras_clust")
class GaussianNLL(keras.layers.Layer):
    """Add the Gaussian reconstruction term of the ELBO to the model's losses.

    ``p(x | z) = N(decoder(z), diag(sigma^2))``: the layer takes ``[x, decoder_mean]``, adds
    :func:`gaussian_nll` summed over features and averaged over the batch (nats per sample,
    the constant ``0.5 log 2 pi`` per feature included) and returns ``decoder_mean``
    unchanged. With :class:`KLDivergence` at ``beta = 1`` the model's loss is the negative
    ELBO. The term is also tracked as the metric ``recon``.

    Args:
        sigma: Fixed standard deviation of every feature, or None (default) for a learned
            per-feature ``log sigma^2`` (the weight ``log_var``, initialised at ``init_log_var``).
        init_log_var: Initial learned ``log sigma^2`` (ignored when ``sigma`` is fixed).
        log_var_scale: The learned ``log sigma^2`` is this factor times the weight ``log_var``.
            An optimiser like Adam moves a weight by about its learning rate per step whatever
            the gradient's size, so a factor of 10 lets ``sigma`` settle ten times sooner beside
            a decoder trained at the same rate (1: the weight is ``log sigma^2``).
        min_sigma: A floor under the learned ``sigma`` (None or 0: none), approached smoothly:
            ``log sigma^2 = floor + softplus(free - floor)`` with ``floor = 2 log min_sigma``. Data
            that are almost constant in some feature (an always-empty cell) otherwise drive its
            ``sigma`` toward 0 and the likelihood without bound; the floor says to what
            resolution the data are modelled. ``init_log_var`` must lie above the floor.
    """

    def __init__(
        self,
        sigma: float | None = None,
        init_log_var: float = 0.0,
        log_var_scale: float = 1.0,
        min_sigma: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min_sigma is not None and min_sigma < 0:
            raise ValueError(f"min_sigma must be >= 0 or None, got {min_sigma}")
        self.min_sigma = float(min_sigma) if min_sigma else None
        if sigma is None and self.min_sigma is not None and not init_log_var > 2.0 * math.log(self.min_sigma):
            raise ValueError(f"init_log_var {init_log_var} must lie above the floor log min_sigma^2")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be > 0 or None (learned), got {sigma}")
        if sigma is not None and (self.min_sigma is not None or log_var_scale != 1.0):
            raise ValueError("min_sigma and log_var_scale shape a learned sigma; a fixed sigma takes neither")
        if not log_var_scale > 0:
            raise ValueError(f"log_var_scale must be > 0, got {log_var_scale}")
        self.sigma = None if sigma is None else float(sigma)
        self.init_log_var = float(init_log_var)
        self.log_var_scale = float(log_var_scale)
        self.recon_tracker = keras.metrics.Mean(name="recon")

    def build(self, input_shape):
        features = int(math.prod(input_shape[1][1:]))  # gaussian_nll flattens every feature axis
        if self.sigma is None:
            start = self.init_log_var
            if self.min_sigma is not None:  # the free value whose floored log sigma^2 is init_log_var
                gap = self.init_log_var - self._floor()
                start += math.log(-math.expm1(-gap))  # inverse softplus, stable for any gap > 0
            start /= self.log_var_scale
            self.log_var = self.add_weight(
                shape=(features,), name="log_var", initializer=keras.initializers.Constant(start)
            )
        super().build(input_shape)

    def _floor(self) -> float:
        return 2.0 * math.log(self.min_sigma)

    def observation_log_var(self):
        """``log sigma^2`` per feature (learned) or the fixed scalar."""
        if self.sigma is None:
            free = self.log_var if self.log_var_scale == 1.0 else self.log_var * self.log_var_scale
            if self.min_sigma is None:
                return free
            return self._floor() + ops.softplus(free - self._floor())
        return ops.convert_to_tensor(2.0 * math.log(self.sigma), dtype=self.compute_dtype)

    def call(self, inputs):
        x, mean = inputs
        nll = ops.mean(gaussian_nll(x, mean, self.observation_log_var()))
        self.add_loss(nll)
        self.recon_tracker.update_state(nll)
        return mean

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {
            **super().get_config(),
            "sigma": self.sigma,
            "init_log_var": self.init_log_var,
            "log_var_scale": self.log_var_scale,
            "min_sigma": self.min_sigma,
        }


@keras.saving.register_keras_serializable(package="keras_clust")
class BernoulliNLL(keras.layers.Layer):
    """Add the Bernoulli reconstruction term of the ELBO, computed from logits, to the losses.

    ``p(x | z) = prod_j Bernoulli(x_j; sigmoid(logit_j))``: the layer takes ``[x, logits]``,
    adds the binary cross-entropy summed over every feature (nats per sample, the same scale
    as the summed KL, so ``beta = 1`` trains the ELBO) and averaged over the batch, and
    returns ``sigmoid(logits)``. Computed from logits, so a near-empty occupancy grid does not
    saturate. Targets in [0, 1] that are not binary (a cell holding two particles) are
    scored as a soft label. Tracked as the metric ``recon``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.recon_tracker = keras.metrics.Mean(name="recon")

    def call(self, inputs):
        x, logits = inputs
        x = ops.reshape(x, (ops.shape(x)[0], -1))
        flat = ops.reshape(logits, (ops.shape(logits)[0], -1))
        # log(1 + exp(-|l|)) + max(l, 0) - x * l: the stable form of the cross-entropy
        nll = ops.sum(ops.relu(flat) - x * flat + ops.log1p(ops.exp(-ops.abs(flat))), axis=-1)
        nll = ops.mean(nll)
        self.add_loss(nll)
        self.recon_tracker.update_state(nll)
        return ops.sigmoid(logits)

    def compute_output_shape(self, input_shape):
        return input_shape[1]


@keras.saving.register_keras_serializable(package="keras_clust")
class Crop2D(keras.layers.Layer):
    """``keras.layers.Cropping2D`` for channels-last images, computed as one ``ops.slice``.

    Same output as ``Cropping2D``; on TensorFlow its gradient is a ``Pad``, where
    ``Cropping2D``'s strided slice has a generic ``StridedSliceGrad`` kernel that took 15 % of
    a training step of the ``fashion-cae`` CAE on CPU (``BENCHMARKS.md``).

    Args:
        cropping: ``((top, bottom), (left, right))`` rows and columns removed.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        (top, bottom), (left, right) = cropping
        if min(top, bottom, left, right) < 0:
            raise ValueError(f"cropping must be >= 0, got {cropping}")
        self.cropping = ((int(top), int(bottom)), (int(left), int(right)))

    def _cropped(self, height, width):
        (top, bottom), (left, right) = self.cropping
        h = None if height is None else height - top - bottom
        w = None if width is None else width - left - right
        if (h is not None and h < 1) or (w is not None and w < 1):
            raise ValueError(f"cropping {self.cropping} leaves nothing of {height}x{width} images")
        return h, w

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Crop2D takes (batch, height, width, channels) inputs, got {input_shape}")
        self._cropped(input_shape[1], input_shape[2])

    def call(self, x):
        (top, bottom), (left, right) = self.cropping
        shape = ops.shape(x)
        size = (shape[0], shape[1] - top - bottom, shape[2] - left - right, shape[3])
        return ops.slice(x, (0, top, left, 0), size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._cropped(input_shape[1], input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


@keras.saving.register_keras_serializable(package="keras_clust")
class DepthToSpace(keras.layers.Layer):
    """``(batch, *spatial, channels * block**d)`` -> ``(batch, *(block * spatial), channels)``.

    Channels-last 2-D or 3-D maps (``d`` = 2 or 3 spatial axes): each cell's channels are laid out
    as a ``block``-wide cube of cells, channel ``((i * block) + j) * channels + c`` of a 2-D map (and
    so on in 3-D) going to offset ``(i, j)`` within the cube. ``tf.nn.depth_to_space`` for any
    backend and for 3-D; a convolution at the coarse size followed by this layer is a sub-pixel
    convolution, which upsamples without a convolution at the full size.

    Args:
        block: the upsampling factor per axis.
    """

    def __init__(self, block: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(block) < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.block = int(block)

    def _check(self, input_shape):
        d = len(input_shape) - 2
        if d not in (2, 3):
            raise ValueError(f"DepthToSpace takes 2-D or 3-D channels-last maps, got {input_shape}")
        channels = input_shape[-1]
        if channels is None or channels % self.block**d:
            raise ValueError(f"{channels} channels cannot be shared among {self.block}^{d} cells")
        return d, channels // self.block**d

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, x):
        d, channels = self._check(x.shape)
        b = self.block
        spatial = [ops.shape(x)[1 + a] for a in range(d)]
        x = ops.reshape(x, (-1, *spatial, *([b] * d), channels))
        # (batch, s1, .., sd, b1, .., bd, c) -> (batch, s1, b1, .., sd, bd, c)
        order = (0, *[axis for a in range(d) for axis in (1 + a, 1 + d + a)], 1 + 2 * d)
        x = ops.transpose(x, order)
        return ops.reshape(x, (-1, *[s * b for s in spatial], channels))

    def compute_output_shape(self, input_shape):
        d, channels = self._check(input_shape)
        spatial = [None if s is None else s * self.block for s in input_shape[1:-1]]
        return (input_shape[0], *spatial, channels)

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="keras_clust")
class UpperTriangle(keras.layers.Layer):
    """``(batch, n, n[, 1])`` -> ``(batch, n (n - 1) / 2)``: the entries above the diagonal.

    A symmetric matrix with a zero diagonal (a distance matrix) holds each value once
    there, so a likelihood over these features counts every distance exactly once.
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)
        rows, cols = np.triu_indices(self.n, k=1)
        self._flat_index = (rows * self.n + cols).astype("int32")

    def call(self, x):
        flat = ops.reshape(x, (ops.shape(x)[0], self.n * self.n))
        return ops.take(flat, ops.convert_to_tensor(self._flat_index), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n * (self.n - 1) // 2)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


@keras.saving.register_keras_serializable(package="keras_clust")
class SymmetricZeroDiagonal(keras.layers.Layer):
    """``(batch, n, n, 1)`` -> ``(m + m^T) / 2`` with the diagonal set to 0: a decoder's
    output shaped like a distance matrix."""

    def call(self, x):
        m = x[..., 0]
        m = 0.5 * (m + ops.transpose(m, (0, 2, 1)))
        n = ops.shape(m)[-1]
        off = 1.0 - ops.eye(n, dtype=m.dtype)
        return ops.expand_dims(m * off, -1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_clust")
class ClusteringLayer(keras.layers.Layer):
    """Soft assignment of embeddings to cluster centres by a Student's t kernel (DEC).

    ``q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha + 1) / 2)``, normalised so every row sums
    to 1 (Xie, Girshick & Farhadi 2016, eq. 1). The centres ``mu`` are the layer's trainable
    weight ``clusters`` of shape ``(n_clusters, embedding_dim)``.

    Args:
        n_clusters: Number of clusters.
        alpha: Degrees of freedom of the Student's t kernel (DEC uses 1).
        initial_centres: Optional ``(n_clusters, embedding_dim)`` array to start from (e.g.
            KMeans centres); not part of the config, the weights carry the centres.

    Call args:
        inputs: Embeddings of shape ``(batch, embedding_dim)``.

    Returns:
        ``q`` of shape ``(batch, n_clusters)``.
    """

    def __init__(self, n_clusters: int, alpha: float = 1.0, initial_centres=None, **kwargs):
        super().__init__(**kwargs)
        if int(n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.n_clusters = int(n_clusters)
        self.alpha = float(alpha)
        self.initial_centres = None if initial_centres is None else np.asarray(initial_centres, "float32")

    def build(self, input_shape):
        dim = int(input_shape[-1])
        if self.initial_centres is not None and self.initial_centres.shape != (self.n_clusters, dim):
            raise ValueError(
                f"initial_centres must have shape {(self.n_clusters, dim)}, got {self.initial_centres.shape}"
            )
        init = "glorot_uniform" if self.initial_centres is None else keras.initializers.Constant(self.initial_centres)
        self.clusters = self.add_weight(shape=(self.n_clusters, dim), initializer=init, name="clusters")

    def call(self, inputs):
        d2 = ops.sum(ops.square(ops.expand_dims(inputs, 1) - self.clusters), axis=-1)
        q = ops.power(1.0 + d2 / self.alpha, -(self.alpha + 1.0) / 2.0)
        return q / ops.sum(q, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        return {**super().get_config(), "n_clusters": self.n_clusters, "alpha": self.alpha}
