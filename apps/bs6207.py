"""Settings taken from the BS6207 homework write-up, the seed of ``mnist-l1`` and ``mnist-denoise``.

The library's dense autoencoder halves its widths from 256 while they stay above the
latent size (:func:`keras_clust.models.halving_hidden_units`); the report used that rule
except at latent 16, where it stopped at 64. Both apps pass these widths explicitly.
"""

from __future__ import annotations

from keras_clust.errors import UsageError
from keras_clust.models import halving_hidden_units

#: Encoder hidden layers of the report (Q2A), before the latent layer:
#: 8 dense layers in all for latent 2, 4 for latent 16, 1 for latent 256.
REPORT_HIDDEN_UNITS = {2: (256, 128, 64, 32, 16, 8, 4), 16: (256, 128, 64), 256: ()}


def report_hidden_units(latent_dim: int, start: int = 256) -> tuple[int, ...]:
    """Hidden widths of the encoder for ``latent_dim``, as in the source report.

    The report's three sizes are taken as they were; any other size halves the width
    from ``start`` while it stays above ``latent_dim``.
    """
    if latent_dim < 1:
        raise UsageError(f"latent dimension must be >= 1, got {latent_dim}")
    if latent_dim in REPORT_HIDDEN_UNITS and start == 256:
        return REPORT_HIDDEN_UNITS[latent_dim]
    return halving_hidden_units(latent_dim, start)
