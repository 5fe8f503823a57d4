"""Choosing a clustering by a multi-objective Optuna study over KMeans and DBSCAN.

Each trial picks an algorithm and its parameters, clusters all rows and scores the
result on two or three objectives:

- ``"silhouette"`` (maximise): the mean silhouette with noise points counted as 0
  (:attr:`~keras_clust.cluster.silhouette.KnifeStats.noise_adjusted_mean`), so DBSCAN
  cannot buy a high score by calling the hard points noise.
- ``"knives"`` (maximise): the *share* of clusters that cut the mean silhouette
  (:attr:`~keras_clust.cluster.silhouette.KnifeStats.cutting_share`). The raw count
  grows with the number of clusters (on five blobs KMeans with k = 15 has 15 cutting
  clusters), so maximising it would reward splitting; the share asks that *all*
  clusters do comparatively well, which is what the criterion is for. The count is
  recorded as ``n_cutting``.
- ``"knife_count"`` (maximise): that count itself, the slides' literal wording, for
  comparison; with it the knee tends to more clusters than exist.
- ``"spacing"`` (minimise): the standard deviation of the pairwise centroid distances
  divided by their mean (``centroid_spacing(..., relative=True)``). Dividing makes it
  scale-free like the other two; the raw standard deviation would favour solutions
  whose centroids are all close together, e.g. many small clusters. It is 0 for
  exactly 2 clusters, so k = 2 is always on a front that includes it, and in d dimensions
  only up to d + 1 centroids can be evenly spaced: five blobs on a pentagon score 0.24,
  three of them 0, so with this objective the knee can prefer fewer clusters than exist.

The Pareto-optimal trials form the front; one of them is then chosen by a rule.
"""

from __future__ import annotations

import numbers

import numpy as np
import optuna
from optuna.samplers import NSGAIISampler
from optuna.trial import TrialState
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, KMeans
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from keras_clust.cluster.silhouette import centroid_spacing, cluster_means, silhouette_knives, subsample_indices
from keras_clust.errors import DataError, UsageError
from keras_clust.validation import check_array

ALGORITHMS = ("kmeans", "dbscan")
OBJECTIVES = {"silhouette": "maximize", "knives": "maximize", "knife_count": "maximize", "spacing": "minimize"}
CHOICES = ("knee", "silhouette", "knives")
_SEED_MAX = np.iinfo(np.int32).max


def normalise_front(values, maximise) -> np.ndarray:
    """Min-max scale every objective over the front so that 1 is the best value, 0 the worst.

    Args:
        values: ``(n_points, n_objectives)`` objective values.
        maximise: One bool per objective, True when larger is better.

    Returns:
        The scaled values; an objective that is constant over the front is 1 everywhere.
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = hi - lo
    scaled = np.where(np.asarray(maximise), values - lo, hi - values) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, scaled, 1.0)


def knee_point(values, maximise, tiebreak=None) -> int:
    """Index of the point nearest (Euclidean) to the ideal point after :func:`normalise_front`.

    Args:
        values: ``(n_points, n_objectives)`` objective values of the front.
        maximise: One bool per objective, True when larger is better.
        tiebreak: Optional ``(n_points,)`` values; among equally near points the largest wins,
            then the first.
    """
    dist = np.linalg.norm(normalise_front(values, maximise) - 1.0, axis=1)
    near = np.flatnonzero(dist <= dist.min() + 1e-12)
    if tiebreak is not None:
        tb = np.asarray(tiebreak, dtype=np.float64)[near]
        near = near[tb >= tb.max()]
    return int(near[0])


def dbscan_eps_range(x, min_samples_range=(3, 30), rows=None) -> tuple[float, float]:
    """A log-uniform search range for DBSCAN's ``eps`` read off the data.

    A point is a DBSCAN core point when its ``min_samples``-th nearest neighbour, the
    point itself counted first (scikit-learn's convention), is within ``eps``. The range
    runs from the 1st percentile of that distance for the smallest ``min_samples`` (at
    least 2, so not the point itself) to the 99th percentile for the largest one, so every
    ``min_samples`` in the range meets both near-empty and near-complete clusterings.
    Neighbours are searched among all rows of ``x``; only the ``rows`` are queried.

    Args:
        x: ``(n, d)`` points.
        min_samples_range: ``(low, high)`` of DBSCAN's ``min_samples``.
        rows: The rows whose neighbour distances are used, or None for all.

    Returns:
        ``(low, high)`` with ``0 < low < high``.

    Raises:
        DataError: if all points coincide.
    """
    x = check_array(x, "x", ndim=2, min_samples=2)
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    m_lo, m_hi = (min(max(int(m), 2), len(x)) for m in min_samples_range)
    dist, _ = NearestNeighbors(n_neighbors=m_hi).fit(x).kneighbors(x[rows])
    high = float(np.percentile(dist[:, m_hi - 1], 99))
    if not high > 0:
        raise DataError("cannot derive a DBSCAN eps range: the points coincide; pass eps_range")
    low = float(np.percentile(dist[:, m_lo - 1], 1))
    if not 0 < low < high:
        low = high * 1e-3  # duplicated points give a zero distance
    return low, high


def _pair(value, name: str, low, kind=numbers.Integral) -> tuple:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in (a, b)) or not low <= a <= b:
        raise UsageError(f"{name} must be a pair low <= high with low >= {low}, got {value!r}")
    return a, b


class ParetoClustering(ClusterMixin, BaseEstimator):
    """Pick a clustering from the Pareto front of an NSGA-II Optuna study over KMeans and DBSCAN.

    The objectives are described in the module docstring. Every trial suggests
    ``algorithm``; KMeans trials then suggest ``k`` in ``k_range``, DBSCAN trials a
    log-uniform ``eps`` in ``eps_range`` (derived with :func:`dbscan_eps_range` when None)
    and ``min_samples`` in ``min_samples_range``. A trial whose clustering has fewer
    than 2 clusters besides noise (e.g. all noise) has no silhouette and is told to the
    study as failed (ask-and-tell, so no exception or warning is raised); failed trials
    stay in ``trials_`` with their reason and are ignored by the sampler and the front.

    The silhouettes are computed on one plain uniform subsample of ``sample_size`` rows,
    drawn once per fit and shared by every trial and by the final ``knife_stats_``; the
    clustering itself and the centroids always use all rows.

    Choice rules (``choose``):

    - ``"knee"``: min-max normalise each objective over the front (direction-aware, 1 =
      best) and take the point nearest to the ideal point (all ones); ties go to the higher
      silhouette, then to the earlier trial.
    - ``"silhouette"``: the front's highest silhouette.
    - ``"knives"``: the front's highest cutting share, ties by silhouette.
    - an ``int``: that trial number (any completed trial, on the front or not).

    Identical KMeans trials (same ``k``) are fitted once and appear once on ``pareto_``
    (the earliest trial). There is no ``predict``: DBSCAN cannot assign new points, and the
    chosen algorithm is not known in advance; refit, or assign to ``cluster_centers_``.

    Args:
        algorithms: Any of ``"kmeans"`` and ``"dbscan"``.
        objectives: Two or three of ``"silhouette"``, ``"knives"``, ``"spacing"``.
        n_trials: Number of Optuna trials (NSGA-II's default population of 50 means the
            first 50 completed trials are sampled at random).
        k_range: ``(low, high)`` number of KMeans clusters, inclusive.
        min_samples_range: ``(low, high)`` of DBSCAN's ``min_samples``, inclusive.
        eps_range: ``(low, high)`` of DBSCAN's ``eps``, or None to derive it from the data.
        choose: ``"knee"``, ``"silhouette"``, ``"knives"`` or a trial number.
        n_init: KMeans restarts.
        sample_size: Largest number of rows the silhouettes are computed on; None for all.
        random_state: Seed or ``RandomState``; the sampler seed, the KMeans seed and the
            subsample are drawn from it in that order.

    Attributes:
        labels_: Cluster id of every row of ``X``; DBSCAN noise is -1.
        n_clusters_: Number of clusters, noise excluded.
        noise_: Number of noise rows.
        cluster_centers_: Mean of each cluster's rows, in label order.
        knife_stats_: The chosen clustering's ``KnifeStats``.
        trials_: One dict per trial (completed and failed), in trial order.
        pareto_: The dicts of the Pareto-optimal trials, without repeats.
        chosen_: The chosen trial's dict plus ``rule`` and ``reason``.
        eps_range_: The ``eps`` range searched, or None without DBSCAN.
        study_: The Optuna study.
    """

    def __init__(
        self,
        algorithms=("kmeans", "dbscan"),
        objectives=("silhouette", "knives"),
        n_trials=80,
        k_range=(2, 15),
        min_samples_range=(3, 30),
        eps_range=None,
        choose="knee",
        n_init=10,
        sample_size=4000,
        random_state=None,
    ):
        self.algorithms = algorithms
        self.objectives = objectives
        self.n_trials = n_trials
        self.k_range = k_range
        self.min_samples_range = min_samples_range
        self.eps_range = eps_range
        self.choose = choose
        self.n_init = n_init
        self.sample_size = sample_size
        self.random_state = random_state

    def _check_params(self, n: int) -> None:
        for name, allowed, sizes in (("algorithms", ALGORITHMS, (1, 2)), ("objectives", tuple(OBJECTIVES), (2, 3))):
            value = getattr(self, name)
            items = [value] if isinstance(value, str) else list(value)
            if (
                isinstance(value, str)
                or not set(items) <= set(allowed)
                or len(set(items)) != len(items)
                or len(items) not in sizes
            ):
                raise UsageError(f"{name} must be {sizes[0]} to {sizes[-1]} distinct of {allowed}, got {value!r}")
        for name in ("n_trials", "n_init"):
            if not isinstance(getattr(self, name), numbers.Integral) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if "kmeans" in self.algorithms and _pair(self.k_range, "k_range", 2)[1] >= n:
            raise UsageError(f"k_range {self.k_range!r} must stay below the number of samples ({n})")
        if "dbscan" in self.algorithms:
            _pair(self.min_samples_range, "min_samples_range", 1)
            if self.eps_range is not None and _pair(self.eps_range, "eps_range", 0, numbers.Real)[0] <= 0:
                raise UsageError(f"eps_range must be positive, got {self.eps_range!r}")
        choose_ok = (
            self.choose in CHOICES
            if isinstance(self.choose, str)
            else (isinstance(self.choose, numbers.Integral) and not isinstance(self.choose, bool))
        )
        if not choose_ok:
            raise UsageError(f"choose must be one of {CHOICES} or a trial number, got {self.choose!r}")
        size = self.sample_size
        if size is not None and (not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 3):
            raise UsageError(f"sample_size must be None or an integer >= 3, got {self.sample_size!r}")

    def _suggest(self, trial: optuna.Trial) -> tuple[str, dict]:
        algorithm = trial.suggest_categorical("algorithm", list(self.algorithms))
        if algorithm == "kmeans":
            return algorithm, {"k": trial.suggest_int("k", *self.k_range)}
        eps = trial.suggest_float("eps", *self.eps_range_, log=True)
        return algorithm, {"eps": eps, "min_samples": trial.suggest_int("min_samples", *self.min_samples_range)}

    def _cluster(self, x, algorithm: str, params: dict) -> np.ndarray:
        if algorithm == "kmeans":
            k = int(params["k"])
            if k not in self._kmeans_cache:
                km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self._kmeans_seed).fit(x)
                self._kmeans_cache[k] = km.labels_.astype(np.int64)
            return self._kmeans_cache[k]
        db = DBSCAN(eps=float(params["eps"]), min_samples=int(params["min_samples"])).fit(x)
        return db.labels_.astype(np.int64)

    def _measure(self, x, labels) -> dict:
        """Every measure of one labelling; raises DataError when the silhouette is undefined."""
        stats = silhouette_knives(x, labels, self.sample_size, self._subsample_seed)
        return {
            "silhouette": stats.noise_adjusted_mean,
            "knives": stats.cutting_share,
            "knife_count": stats.n_cutting,
            "spacing": centroid_spacing(x, labels, relative=True),
            "silhouette_clustered": stats.mean,
            "n_cutting": stats.n_cutting,
            "n_clusters": stats.n_clusters,
            "noise": stats.noise,
            "noise_share": stats.noise / stats.n_samples,
        }

    def _run_study(self, x, sampler_seed: int) -> optuna.Study:
        directions = [OBJECTIVES[o] for o in self.objectives]
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(directions=directions, sampler=NSGAIISampler(seed=sampler_seed))
            for _ in range(int(self.n_trials)):
                trial = study.ask()
                algorithm, params = self._suggest(trial)
                try:
                    measures = self._measure(x, self._cluster(x, algorithm, params))
                except DataError as exc:
                    trial.set_user_attr("failure", str(exc))
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                for key, value in measures.items():
                    trial.set_user_attr(key, value)
                study.tell(trial, [measures[o] for o in self.objectives])
        finally:
            optuna.logging.set_verbosity(verbosity)
        return study

    def _record(self, trial: optuna.trial.FrozenTrial) -> dict:
        complete = trial.state == TrialState.COMPLETE
        params = {k: v for k, v in trial.params.items() if k != "algorithm"}
        record = {
            "number": trial.number,
            "state": "complete" if complete else "failed",
            "algorithm": trial.params["algorithm"],
            "params": params,
            "objectives": dict(zip(self.objectives, trial.values, strict=True)) if complete else {},
            "failure": trial.user_attrs.get("failure"),
            "on_front": False,
            "chosen": False,
        }
        keys = (
            "silhouette",
            "knives",
            "knife_count",
            "spacing",
            "silhouette_clustered",
            "n_cutting",
            "n_clusters",
            "noise",
            "noise_share",
        )
        record.update({k: trial.user_attrs.get(k) for k in keys})
        return record

    def _choose(self, front: list[dict], records: list[dict]) -> tuple[dict, str]:
        if not isinstance(self.choose, str):
            done = {r["number"]: r for r in records if r["state"] == "complete"}
            if self.choose not in done:
                raise UsageError(f"choose={self.choose} is not the number of a completed trial")
            return done[self.choose], f"trial {self.choose} was requested"
        sil = [r["silhouette"] for r in front]
        if self.choose == "silhouette":
            return front[int(np.argmax(sil))], "highest silhouette on the front"
        if self.choose == "knives":
            best = knee_point([[r["knives"]] for r in front], [True], tiebreak=sil)
            return front[best], "highest share of cutting clusters on the front, ties by silhouette"
        values = [[r["objectives"][o] for o in self.objectives] for r in front]
        maximise = [OBJECTIVES[o] == "maximize" for o in self.objectives]
        best = knee_point(values, maximise, tiebreak=sil)
        dist = float(np.linalg.norm(normalise_front(values, maximise)[best] - 1.0))
        return front[best], f"nearest to the ideal point of the normalised front (distance {dist:.3f})"

    def fit(self, X, y=None):
        """Run the study, choose a trial and cluster ``X`` with it.

        Raises:
            UsageError: for an invalid parameter.
            DataError: for an invalid ``X``, or when no trial gave 2 or more clusters.
        """
        x = check_array(X, "X", ndim=2, min_samples=3)
        self._check_params(len(x))
        rng = check_random_state(self.random_state)
        sampler_seed, self._kmeans_seed, self._subsample_seed = (int(rng.randint(_SEED_MAX)) for _ in range(3))
        rows = subsample_indices(len(x), self.sample_size, self._subsample_seed)
        self.eps_range_ = None
        if "dbscan" in self.algorithms:
            self.eps_range_ = tuple(map(float, self.eps_range or dbscan_eps_range(x, self.min_samples_range, rows)))
        self._kmeans_cache = {}
        try:
            self.study_ = self._run_study(x, sampler_seed)
            records = [self._record(t) for t in self.study_.trials]
            if not any(r["state"] == "complete" for r in records):
                raise DataError(
                    f"none of the {len(records)} trials gave 2 or more clusters besides noise; "
                    "widen k_range, min_samples_range or eps_range"
                )
            front, seen = [], set()
            for t in sorted(self.study_.best_trials, key=lambda t: t.number):
                key = tuple(sorted(t.params.items()))
                if key not in seen:
                    seen.add(key)
                    records[t.number]["on_front"] = True
                    front.append(records[t.number])
            chosen, reason = self._choose(front, records)
            chosen["chosen"] = True
            labels = self._cluster(x, chosen["algorithm"], chosen["params"])
        finally:
            del self._kmeans_cache
        self.trials_, self.pareto_ = records, front
        self.chosen_ = {**chosen, "rule": self.choose, "reason": reason}
        self.labels_ = labels.copy()
        self.knife_stats_ = silhouette_knives(x, labels, self.sample_size, self._subsample_seed)
        self.n_clusters_ = self.knife_stats_.n_clusters
        self.noise_ = self.knife_stats_.noise
        self.cluster_centers_ = cluster_means(x, labels)[1]
        self.n_features_in_ = x.shape[1]
        return self
