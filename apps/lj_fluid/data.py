"""The configurations a run trains on: simulated with the run's settings or read from a
dataset, split by gamma into training, validation and test sets, in three representations."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from keras_clust.apps.lj_fluid.config import Config
from keras_clust.errors import DataError, UsageError
from keras_clust.lj.dataset import load_lj_dataset
from keras_clust.lj.representations import distance_matrices, order_by_origin, sorted_coordinates
from keras_clust.lj.results import Simulation
from keras_clust.seeding import model_seed

log = logging.getLogger("keras_clust.apps.lj_fluid")


def dataset_file(path: str | Path) -> Path:
    """``--dataset``: an ``.npz`` or a ``simulate`` run folder holding ``dataset.npz``."""
    p = Path(path)
    if p.is_dir():
        if not (p / "dataset.npz").is_file():
            raise DataError(
                f"{p} holds no dataset.npz; pass an .npz written by 'keras-clust lj-fluid simulate' or its run folder"
            )
        return p / "dataset.npz"
    return p


def acquire(cfg: Config, progress: bool = True) -> tuple[Simulation, Config]:
    """Simulate the run's configurations, or read ``cfg.dataset``; returns the simulation and
    the config with the dataset's physical settings filled in (and the held-out gamma checked)."""
    if cfg.dataset is None:
        gammas = [*cfg.gammas, *([cfg.holdout_gamma] if cfg.holdout_gamma is not None else [])]
        return cfg.simulate(gammas, -(-cfg.samples // len(cfg.gammas)), cfg.seed, progress=progress), cfg
    sim = load_lj_dataset(dataset_file(cfg.dataset))
    return sim, dataset_config(cfg, sim)


def dataset_config(cfg: Config, sim: Simulation) -> Config:
    """``cfg`` with a dataset's physical settings and gammas (:func:`dataset_settings`)."""
    return replace(cfg, **dataset_settings(cfg, sim))


def dataset_settings(cfg: Config, sim: Simulation) -> dict:
    """A dataset's physical settings, its training gammas and their sample count, as settings of
    ``cfg`` (whose held-out gamma is checked against the dataset)."""
    s = sim.settings
    present = sorted({float(g) for g in np.unique(sim.gamma)})
    holdout = cfg.holdout_gamma
    if holdout is not None and not any(np.isclose(holdout, g) for g in present):
        raise UsageError(
            f"--holdout-gamma {holdout:g} is not in {cfg.dataset} (gammas "
            f"{', '.join(f'{g:g}' for g in present)}); pick one of them or 'none'"
        )
    train = tuple(g for g in present if holdout is None or not np.isclose(g, holdout))
    if not train:
        raise UsageError(f"{cfg.dataset} holds only gamma {holdout:g}; nothing is left to train on")
    return {
        "particles": int(s["n_particles"]),
        "box": float(s["box"]),
        "dim": int(s["dim"]),
        "temperature": float(s["temperature"]),
        "gammas": train,
        "samples": int(np.sum(~_is(sim.gamma, holdout))),
    }


def _is(gamma: np.ndarray, value: float | None) -> np.ndarray:
    if value is None:
        return np.zeros(len(gamma), bool)
    return np.isclose(gamma, value)


@dataclass
class Split:
    """One subset: positions, gammas, energies and the two stored representations."""

    positions: np.ndarray
    gamma: np.ndarray
    energy: np.ndarray
    coords: np.ndarray  # (S, N * dim) sorted along --coords-sort's axis, in [0, 1]
    matrices: np.ndarray  # (S, N, N, 1) in [0, 1]
    ordered: np.ndarray  # (S, N, dim) positions in the matrices' particle order

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class RunData:
    """A run's data: the splits of the training gammas and the held-out gamma's configurations."""

    sim: Simulation
    train: Split
    val: Split
    test: Split
    holdout: Split | None
    box: float
    dim: int
    gammas: tuple[float, ...]


def make_split(positions: np.ndarray, gamma: np.ndarray, energy: np.ndarray, cfg: Config) -> Split:
    """A :class:`Split` of these configurations, with their representations (box side and the
    coordinates' sort axis from ``cfg``)."""
    pos = np.asarray(positions, np.float32)
    return Split(
        pos,
        np.asarray(gamma, np.float32),
        np.asarray(energy, np.float64),
        sorted_coordinates(pos, cfg.box, cfg.coords_axis),
        distance_matrices(pos, cfg.box),
        order_by_origin(pos),
    )


def subset(sim: Simulation, idx: np.ndarray, cfg: Config) -> Split:
    return make_split(sim.positions[idx], sim.gamma[idx], sim.energy[idx], cfg)


def split_data(sim: Simulation, cfg: Config) -> RunData:
    """Training, validation and test sets with the same shares of every training gamma, made
    of whole chains: configurations of one chain are correlated, so a chain goes to one set
    only (seeded from the run seed). With fewer than 3 chains for a gamma, each chain is cut
    into consecutive blocks instead. The held-out gamma's configurations are kept apart."""
    rng = np.random.default_rng(model_seed(cfg.seed, "split"))
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    holdout = _is(sim.gamma, cfg.holdout_gamma)
    for g in cfg.gammas:
        idx = np.flatnonzero(np.isclose(sim.gamma, g) & ~holdout)
        chains = np.unique(sim.replica[idx])
        if len(chains) >= 3:
            chains = rng.permutation(chains)
            n_test = max(1, round(cfg.test_fraction * len(chains)))
            n_val = max(1, round(cfg.val_fraction * len(chains)))
            groups = (chains[:n_test], chains[n_test : n_test + n_val], chains[n_test + n_val :])
            test, val, train = (idx[np.isin(sim.replica[idx], grp)] for grp in groups)
        else:  # consecutive blocks of the chain(s), in the order they were sampled
            n_test = max(1, round(cfg.test_fraction * len(idx)))
            n_val = max(1, round(cfg.val_fraction * len(idx)))
            train, val, test = idx[: -(n_test + n_val)], idx[-(n_test + n_val) : -n_test], idx[-n_test:]
        if min(len(train), len(val), len(test)) < 2:  # the physical scores compare two or more per gamma
            raise DataError(
                f"gamma {g:g} has only {len(idx)} configurations, too few for training, validation and test sets "
                "of at least 2 each; simulate more (--samples)"
            )
        parts["test"].append(test)
        parts["val"].append(val)
        parts["train"].append(train)
    splits = {k: subset(sim, np.sort(np.concatenate(v)), cfg) for k, v in parts.items()}
    held = subset(sim, np.flatnonzero(holdout), cfg) if holdout.any() else None
    log.info(
        "configurations: %d training, %d validation, %d test (gammas %s; whole chains per set), %d held out (gamma %s)",
        len(splits["train"]),
        len(splits["val"]),
        len(splits["test"]),
        ", ".join(f"{g:g}" for g in cfg.gammas),
        0 if held is None else len(held),
        cfg.holdout_gamma,
    )
    return RunData(sim, splits["train"], splits["val"], splits["test"], held, cfg.box, cfg.dim, cfg.gammas)


def insert_overlap(positions: np.ndarray, box: float, distance: float, seed: int) -> np.ndarray:
    """Copies of ``positions`` with one particle moved to ``distance`` from another (random
    pair and direction, seeded), the move reflected back inside the box when it leaves it."""
    rng = np.random.default_rng(seed)
    out = np.array(positions, np.float64, copy=True)
    s, n, dim = out.shape
    for k in range(s):
        i, j = rng.choice(n, size=2, replace=False)
        u = rng.normal(size=dim)
        p = out[k, j] + distance * u / np.linalg.norm(u)
        p = np.where(p < 0, -p, p)
        p = np.where(p > box, 2 * box - p, p)
        out[k, i] = p
    return out.astype(np.float32)
