"""Image corruptions for denoising: Gaussian blur (OpenCV), additive noise, salt and pepper.

Every corruption takes images ``(n, h, w)`` or ``(n, h, w, 1)`` in [0, 1] and returns
float32 images of the same shape. Blur is deterministic; the noises are seeded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.validation import check_array

#: OpenCV filters at most this many channels per call (CV_CN_MAX in OpenCV 5 is 128).
OPENCV_MAX_CHANNELS = 128


def _as_stack(images) -> tuple[np.ndarray, tuple[int, ...]]:
    x = check_array(images, "images")
    shape = x.shape
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise UsageError(f"images must be (n, h, w) or (n, h, w, 1), got shape {shape}")
    return x, shape


def gaussian_blur(images, kernel_size: int = 5, sigma: float = 0.0) -> np.ndarray:
    """Blur every image with ``cv2.GaussianBlur`` (border: reflect 101, OpenCV's default).

    The batch goes through OpenCV as the channels of one image, up to
    :data:`OPENCV_MAX_CHANNELS` images per call, rather than one call per image.

    Args:
        images: ``(n, h, w)`` or ``(n, h, w, 1)`` float images.
        kernel_size: Odd positive kernel width and height.
        sigma: Standard deviation in pixels; 0 lets OpenCV derive it from the kernel size
            (``0.3 * ((k - 1) * 0.5 - 1) + 0.8``, 1.1 for k = 5).
    """
    import cv2

    if isinstance(kernel_size, bool) or int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
        raise UsageError(f"blur kernel size must be an odd positive integer (3, 5, 7, ...), got {kernel_size}")
    if not np.isfinite(sigma) or sigma < 0:
        raise UsageError(f"blur sigma must be >= 0 (0: derived from the kernel size), got {sigma}")
    x, shape = _as_stack(images)
    n, h, w = x.shape
    out = np.empty_like(x)
    k = int(kernel_size)
    for start in range(0, n, OPENCV_MAX_CHANNELS):
        chunk = np.ascontiguousarray(x[start : start + OPENCV_MAX_CHANNELS].transpose(1, 2, 0))
        blurred = cv2.GaussianBlur(chunk, (k, k), sigmaX=float(sigma), sigmaY=float(sigma))
        out[start : start + OPENCV_MAX_CHANNELS] = blurred.reshape(h, w, -1).transpose(2, 0, 1)
    return out.reshape(shape)


def gaussian_noise(images, std: float = 0.2, seed: int = 0) -> np.ndarray:
    """Add N(0, std²) noise and clip to [0, 1]."""
    if not np.isfinite(std) or std < 0:
        raise UsageError(f"noise std must be >= 0, got {std}")
    x, shape = _as_stack(images)
    noisy = x + np.random.default_rng(seed).normal(0.0, std, x.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32).reshape(shape)


def salt_and_pepper(images, amount: float = 0.1, seed: int = 0) -> np.ndarray:
    """Set a share ``amount`` of the pixels to 0 or 1 (half each)."""
    if not 0 <= amount <= 1:
        raise UsageError(f"salt-and-pepper amount must be in [0, 1], got {amount}")
    x, shape = _as_stack(images)
    rng = np.random.default_rng(seed)
    u = rng.random(x.shape)
    out = x.copy()
    out[u < amount / 2] = 0.0
    out[(u >= amount / 2) & (u < amount)] = 1.0
    return out.reshape(shape)


#: name -> corruption; each takes the images and keyword options.
CORRUPTIONS: dict[str, Callable[..., np.ndarray]] = {
    "blur": gaussian_blur,
    "gaussian": gaussian_noise,
    "salt_pepper": salt_and_pepper,
}


def corrupt(images, kind: str = "blur", **options) -> np.ndarray:
    """Apply the corruption ``kind`` (a key of :data:`CORRUPTIONS`) with ``options``."""
    if kind not in CORRUPTIONS:
        raise UsageError(f"unknown corruption {kind!r}; choose one of {sorted(CORRUPTIONS)}")
    return CORRUPTIONS[kind](images, **options)
