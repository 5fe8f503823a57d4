"""``cluster-bench``: data, one pretraining per seed, every method, scores and figures."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from keras_clust.apps.cluster_bench.config import QUICK_ROWS, Config
from keras_clust.cluster import clustering_row, pretrain_autoencoder
from keras_clust.cluster.deep import DeepSettings, choose_k_on_encoder, cluster_embedding
from keras_clust.data import load_dataset
from keras_clust.experiment import Run
from keras_clust.training import fit_verbosity

log = logging.getLogger(__name__)


_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak_memory() -> None:
    """Start a new peak-memory window (Linux: writing 5 to ``clear_refs`` resets ``VmHWM``);
    elsewhere the peak stays the process's peak so far."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    """Peak resident memory since :func:`reset_peak_memory` (``VmHWM``), or of the process (MiB)."""
    try:
        line = next(v for v in _STATUS.read_text().splitlines() if v.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024.0
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_data(cfg: Config, data_dir=None):
    """``(x, y, class_names, source)``: all images (train + test) or the test split, flattened
    to rows in [0, 1]; ``--quick``/``--max-rows`` take a seeded uniform random subset."""
    ds = load_dataset(cfg.dataset, data_dir)
    if cfg.split == "all":
        x, y = np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])
    else:
        x, y = ds.x_test, ds.y_test
    x = x.reshape(len(x), -1).astype(np.float32)
    limit = QUICK_ROWS if cfg.quick else cfg.max_rows
    if limit and len(x) > limit:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x), limit, replace=False))
        x, y = x[keep], y[keep]
    return x, y.astype(np.int64), tuple(ds.class_names), ds.source


@dataclass
class MethodResult:
    """One clustering of the bench: its scores row, labels and final embedding."""

    row: dict
    labels: np.ndarray
    embedding: np.ndarray


def settings(cfg: Config) -> DeepSettings:
    """The methods' settings of a bench run (``--quick`` shrinks the budgets)."""
    return cfg.settings.quick() if cfg.quick else cfg.settings


def _result(method: str, seed: int, y, labels, embedding, seconds: dict, extra: dict | None = None) -> MethodResult:
    row = {
        "method": method,
        "seed": seed,
        **clustering_row(y, labels),
        **{f"{k}_s": round(v, 1) for k, v in seconds.items()},
        "peak_mb": round(peak_memory_mb()),
        **(extra or {}),
    }
    log.info("%s (seed %d): ACC %.4f, NMI %.4f, ARI %.4f", method, seed, row["acc"], row["nmi"], row["ari"])
    return MethodResult(row, np.asarray(labels), embedding)


def _kmeans_on_pixels(x: np.ndarray, y: np.ndarray, s: DeepSettings, seed: int) -> MethodResult:
    reset_peak_memory()
    start = time.perf_counter()
    labels = KMeans(s.n_clusters, n_init=s.n_init, random_state=seed).fit_predict(x)
    return _result("kmeans (pixels)", seed, y, labels, x, {"kmeans": time.perf_counter() - start})


def run_seed(cfg: Config, run: Run, x: np.ndarray, y: np.ndarray, seed: int) -> list[MethodResult]:
    """Every method of ``cfg.methods`` on ``x`` with the seed ``seed``, on one autoencoder pretrained
    for this seed (each deep method copies it); the epochs go to ``run.history``. KMeans on pixels
    and on codes gets the same ``n_init`` as DEC's initial KMeans."""
    s = settings(cfg)
    results, auto = [], s.n_clusters is None
    if "kmeans" in cfg.methods and not auto:
        results.append(_kmeans_on_pixels(x, y, s, seed))
    reset_peak_memory()
    ae, history, pretrain = pretrain_autoencoder(
        x, s.embedding_dim, epochs=s.pretrain_epochs, batch_size=s.batch_size, seed=seed, verbose=fit_verbosity()
    )
    run.history += [dict(r, seed=seed) for r in history]
    run.metrics.setdefault("pretrain_peak_mb", {})[str(seed)] = round(peak_memory_mb())
    if auto:  # --k auto: one k per seed, from this seed's codes, for every method (pixels included)
        choice, _, seconds = choose_k_on_encoder(x, s, ae.encoder, seed)
        run.metrics.setdefault("k_choice", {})[str(seed)] = {**choice.to_dict(), "seconds": round(seconds, 1)}
        log.info("seed %d: k = %d chosen by the %s", seed, choice.k, choice.criterion)
        s = replace(s, n_clusters=choice.k)
        if "kmeans" in cfg.methods:
            results.append(_kmeans_on_pixels(x, y, s, seed))
    for method in cfg.methods:
        reset_peak_memory()
        res = cluster_embedding(method, x, s, ae.encoder, ae.decoder, seed, verbose=fit_verbosity())
        run.history += [dict(r, seed=seed, method=method) for r in res.history]
        extra = {}
        if method in ("dec", "idec"):
            extra = {
                "iterations": res.info["iterations"],
                "converged": res.info["converged"],
                "acc_at_start": clustering_row(y, res.info["initial_labels"])["acc"],
            }
        name = "kmeans (AE codes)" if method == "kmeans" else method
        results.append(
            _result(name, seed, y, res.labels, res.embedding, {"pretrain": pretrain, **res.stage_seconds}, extra)
        )
    if auto:
        for r in results:
            r.row["k"] = s.n_clusters
    return results
