"""keras-clust: unsupervised representation learning and clustering with Keras 3.

Importing the package is cheap; TensorFlow is imported by the submodules that
need it (``layers``, ``models``, ``export``, ...).
"""

__version__ = "0.1.0"
