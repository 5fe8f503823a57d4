"""Experiment apps behind the ``keras-clust`` command, one module per experiment."""
