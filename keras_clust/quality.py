"""Image quality against a reference: PSNR and SSIM per image."""

from __future__ import annotations

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.validation import check_array


def _pair(images, reference) -> tuple[np.ndarray, np.ndarray]:
    x = check_array(images, "images")
    r = check_array(reference, "reference images")
    if x.shape != r.shape:
        raise UsageError(f"images {x.shape} and reference {r.shape} differ in shape")
    if x.ndim == 2:  # flattened square images
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise UsageError(f"flattened images of {x.shape[1]} pixels are not square")
        x, r = x.reshape(-1, side, side), r.reshape(-1, side, side)
    if x.ndim == 3:
        x, r = x[..., None], r[..., None]
    return x, r


def psnr(images, reference, max_value: float = 1.0, cap: float = 100.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image; identical images get ``cap``.

    Computed in float64: ``tf.image.psnr`` computes in float32 and differs by up to a few
    1e-6 dB, so it is not used here (the reported numbers would change).
    """
    x, r = _pair(images, reference)
    mse = np.mean((x.astype(np.float64) - r) ** 2, axis=tuple(range(1, x.ndim)))
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(max_value**2 / mse)
    return np.minimum(out, cap)


def ssim(images, reference, max_value: float = 1.0) -> np.ndarray:
    """Structural similarity per image (``tf.image.ssim``: 11x11 Gaussian window, sigma 1.5)."""
    import tensorflow as tf

    x, r = _pair(images, reference)
    return tf.image.ssim(tf.constant(x, tf.float32), tf.constant(r, tf.float32), max_val=max_value).numpy()
