"""What a result was produced with: the library versions and the machine, stored with every run
and benchmark."""

from __future__ import annotations

import os
import platform


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in (
        "keras-clust",
        "tensorflow",
        "keras",
        "numpy",
        "scikit-learn",
        "scipy",
        "optuna",
        "keras-tuner",
        "opencv-python-headless",
        "matplotlib",
    ):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def machine_info() -> dict[str, str | int]:
    """Short description of the machine, stored with every run and benchmark."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 0,
    }
