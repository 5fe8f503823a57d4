"""The callbacks every KerasTuner search trains its trials with."""

from __future__ import annotations

from pathlib import Path

import keras


def search_callbacks(tensorboard: str | Path | None = None) -> list[keras.callbacks.Callback]:
    """``TerminateOnNaN`` (a diverged trial stops at once) and, given a folder, a TensorBoard
    callback logging there (scalars per epoch, no histograms)."""
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    if tensorboard is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard), histogram_freq=0))
    return callbacks
