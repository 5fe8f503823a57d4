"""Settings of ``lj-fluid``: the simulation, the three VAEs and the analyses (``config.json``)."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from keras_clust.errors import UsageError
from keras_clust.lj.monte_carlo import LJSystem
from keras_clust.lj.representations import GRID_BLOCKS, grid_cells
from keras_clust.lj.results import Simulation
from keras_clust.lj.sampling import MAX_DOUBLINGS, simulate
from keras_clust.option_types import (
    fraction,
    k_or_auto,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from keras_clust.settings import (
    cluster_setting,
    export_setting,
    k_criterion_setting,
    k_range_setting,
    k_setting,
    models_dir_setting,
    optional_setting,
    path_setting,
    quick_setting,
    seed_setting,
    setting,
)

NAME = "lj-fluid"

#: Defaults of the simulation (the write-up: 30 particles in a 3-D box of side 5 sigma, T = 1).
PARTICLES, BOX, DIM, TEMPERATURE = 30, 5.0, 3, 1.0
GAMMAS = (1.0, 2.0, 4.0)
SAMPLES = 8000
#: Batches per call of the trained models' train and test functions (Keras' ``steps_per_execution``):
#: fewer Python round trips per epoch and the same weights to the bit, as every batch is still a step
#: of its own. With 8 instead of 1 the default run's sorted-coordinate VAE trained in 435 s instead of
#: 532 s on 2 cores, one run each (BENCHMARKS.md, "A stall between epochs"). ``lj-fluid tune``'s
#: trials keep Keras' 1.
STEPS_PER_EXECUTION = 8
#: gamma simulated beside the training ones and held out of training (anomaly detection (i)).
HOLDOUT_GAMMA = 0.5
#: Default grid: 24 cells across the box (h = 0.2083 sigma for L = 5; the write-up's h = 0.1 gives
#: 50 cells, which three 2x poolings cannot halve). Chosen on the design simulation (seed 100), not the
#: reported run's, by the test -ELBO in continuous units (the grid's + N dim log h): 24 cells 10.11 nats
#: in 367 s of training against 32 cells' 10.89 nats in 793 s (``bench/study_lj_free_bits.py --view grid
#: --grid-h``; docs/lj-fluid.md). ``lj-fluid tune`` had chosen 24 cells on its own simulation too.
GRID_CELLS, QUICK_GRID_CELLS = 24, 16
#: The default grid of runs written before config version 6.
GRID_CELLS_BEFORE_V6 = 32
#: The grid VAE's blocks (``--grid-blocks``; "pool", the write-up's, until 2026-12-07). Chosen on the
#: design simulations (seeds 100 and 101), not the reported run's, by a rule committed before its rows:
#: over model seeds 2-4 pool-shuffle's mean test -ELBO was 24 and 97 nats better than pool's, every
#: overlap AUC 1.000, and it trained 1.7-2.1x faster at 24^3 (BENCHMARKS.md, "The next rule").
#: Runs saved before keep the design they name in their config.
GRID_DEFAULT_BLOCKS = "pool-shuffle"
#: The grid's smoothing width in sigma (``--grid-smoothing``; 0: occupancy grids). 0.35 sigma keeps a
#: pair at contact (1 sigma) two separate blobs and makes a pair at 0.5 sigma one peak of 1.55. On
#: the design simulation (seed 100) the occupancy grid's VAE collapses (no active dimension, KL 0.18
#: nats) and this one's does not (16 of 16 active, 48.7 nats): ``bench/study_lj_free_bits.py --view
#: grid --grid-smoothing``, BENCHMARKS.md. The two likelihoods' -ELBOs are not comparable.
GRID_DEFAULT_SMOOTHING = 0.35

#: ``--grid-log-var-scale``'s default: at 1 the smooth grid's sigma per cell was still falling after
#: the 20 epochs on the design simulation (seed 100); ``bench/study_lj_free_bits.py
#: --grid-log-var-scale``, BENCHMARKS.md.
GRID_LOG_VAR_SCALE = 1.0

#: ``--grid-sigma-floor``'s default: the resolution to which the smooth grid is modelled.
GRID_SIGMA_FLOOR = 0.0

#: ``--grid-peak-power``'s default, chosen on the design simulations (seeds 100 and 101;
#: ``bench/study_lj_free_bits.py --view grid --grid-peak-power``, BENCHMARKS.md): with the cells'
#: 8th powers in the likelihood the grid VAE sees an inserted close pair (AUC 1.000 on both, 0.61
#: without on seed 100) and reads gamma as well.
GRID_PEAK_POWER = 8

#: ``--distance-likelihood``: ``distances``, a Gaussian over the distinct distances; ``contacts``,
#: beside it one over their contacts (sigma / r)^6 (``keras_clust.lj.vae.build_distance_vae``).
#: The default, chosen on the design simulations (seeds 100 and 101; ``bench/study_lj_free_bits.py
#: --distance-likelihood``, BENCHMARKS.md): with contacts the VAE sees an inserted close pair (AUC
#: 1.000 on both, 0.60 and 0.57 without) and does not collapse (on seed 101 it did without).
DISTANCE_LIKELIHOODS = ("distances", "contacts")
DISTANCE_LIKELIHOOD = "contacts"

#: ``--coords-sort``: the axis the sorted-coordinate VAE's particles are sorted along, ``x`` (the
#: write-up's) or ``height`` (the last axis, along gravity). The default, chosen on the design
#: simulations (seeds 100 and 101; ``bench/study_lj_free_bits.py --coords-sort``, BENCHMARKS.md) by a label-free
#: rule, how well the codes read out each configuration's own mean height, height spread and LJ
#: energy: 0.71 and 0.75 sorted by height against 0.64 and 0.68 sorted by x (the rule was written after
#: gamma's read-out on the same rows had been seen; it agrees with it).
COORDS_SORTS = ("x", "height")
COORDS_SORT = "height"

#: ``--coords-encoder``: the sorted-coordinate VAE's encoder, ``dense`` (the write-up's 45-22) or
#: ``deepsets`` (each particle through the same small network, mean and max over the particles, then
#: 45-22: ``keras_clust.lj.vae.build_particle_set_vae``). The default, chosen on the design
#: simulations by the rule ``--coords-sort`` was chosen by (``bench/study_lj_free_bits.py
#: --coords-encoder``, BENCHMARKS.md): physics read-out 0.737 and 0.757 against 0.714 and 0.749 with
#: model seed 0; with model seed 1 it wins on seed 100 only (0.769 against 0.770 on seed 101), and
#: averaged over the two seeds on both, by 0.003 on seed 101.
COORDS_ENCODERS = ("dense", "deepsets")
COORDS_ENCODER = "deepsets"

#: ``--coords-decoder``: the sorted-coordinate VAE's decoder, ``gaussian`` (one Gaussian per
#: coordinate, the write-up's) or ``pair`` (the particles drawn one at a time, lowest first, each on a
#: lattice whose logits hold a pair potential with the particles below it and a hard core no
#: training particle is inside: ``keras_clust.lj.pair_decoder``). Its lattice and core margin were
#: set on design simulation 100; it is the default by a rule fixed before its rows, met on both design
#: simulations (seeds 100 and 101): a better test -ELBO than the Gaussian decoder's (by 80 and 76
#: nats), under half its raw generated configurations with a pair under 0.8 sigma (9.7 % and 20.5 %,
#: against 100 %) and a physics read-out at most 0.02 below (0.012 and 0.008 below)
#: (``bench/explore_lj_autoregressive_decoder.py``, BENCHMARKS.md).
COORDS_DECODERS = ("gaussian", "pair")
COORDS_DECODER = "pair"
#: The pair decoder's core: this far (sigma) inside the training configurations' closest cell and
#: sub-cell centres to a particle below (:func:`keras_clust.lj.pair_lattice.closest_centres`).
PAIR_CORE_MARGIN = 0.02
#: The pair decoder's settings (not options): a 16 x 16 lattice of 4 x 4 sub-cells, a potential over
#: the 29 particles below (every one, for 30), a MADE of 256-256 over the heights with 8 Gaussians
#: each: the design of BENCHMARKS.md's rows.
PAIR_LATTICE = {
    "coords_pair_grid": 16,
    "coords_pair_subgrid": 4,
    "coords_pair_window": 29,
    "coords_pair_core_margin": PAIR_CORE_MARGIN,
    "coords_pair_units": (256, 256),
    "coords_pair_components": 8,
}
#: The pair decoder's hinges may attract as well as repel (a potential with a well): chosen on both
#: design simulations by a rule fixed before its rows (BENCHMARKS.md, "A potential that can hold a
#: neighbour"); runs before config version 15 had repulsive hinges only.
PAIR_SIGNED = True

#: Free bits per view (``--coords-free-bits`` ...), chosen on a design simulation (seed 100), not the
#: reported run's: ``bench/study_lj_free_bits.py``, BENCHMARKS.md.
FREE_BITS = {"coords": 0.25, "grid": 0.0, "distance": 0.0}

#: ``--patience``'s default, chosen on the design simulation (seed 100), not the reported run's: the
#: coordinate network's validation MSE is lowest in its first epochs and the distance VAE's levels
#: off well before its 150 epochs (``bench/study_lj_patience.py``, BENCHMARKS.md).
PATIENCE = 10

#: ``--coords-patience``'s default and ``--coords-epochs``': the sorted-coordinate VAE's own, since its pair
#: decoder's validation -ELBO wanders by about a nat from epoch to epoch and still falls at epoch 200, chosen
#: on both design simulations by the rule ``--patience`` was (BENCHMARKS.md, "The coordinate VAE's patience
#: and epochs"); runs before config version 16 stopped it with ``--patience``.
COORDS_PATIENCE = 20
COORDS_EPOCHS = 300

#: ``--coords-lr-plateau``'s default: the sorted-coordinate VAE's learning rate halves after this many epochs
#: without a lower validation -ELBO (down to ``COORDS_MIN_LR``), chosen on both design simulations by a rule
#: fixed before its rows (BENCHMARKS.md, "A learning rate that halves on a plateau"); runs before config
#: version 17 kept Adam's rate constant.
COORDS_LR_PLATEAU = 10
COORDS_MIN_LR = 1e-5

#: ``--coords-gibbs-sweeps``' default: the pair decoder's one-pass configurations (generated and
#: reconstructed) are followed by this many Gibbs-style sweeps of its own conditionals, each
#: particle's position in the plane re-drawn against every other particle
#: (:func:`keras_clust.lj.pair_decoder.gibbs_sweeps`); 0: the one pass alone. Chosen on both design
#: simulations (seeds 100 and 101, run seeds 5 and 6) by a rule fixed before its rows
#: (BENCHMARKS.md, "A sampler that is not one pass"): 5 and 20 sweeps both raised the generated
#: configurations' energy overlap in every row (mean 0.099 -> 0.200 and 0.207) and cut their
#: close-pair share (4-20x with 5); 20 was not worth its minute. Runs before config version 18 had none.
COORDS_GIBBS_SWEEPS = 5

#: ``--coords-latent``'s default: the sorted-coordinate VAE's latent size (the write-up's was 2). Chosen on
#: both design simulations (seeds 100 and 101, run seeds 7 and 8) by a rule fixed before its rows
#: (BENCHMARKS.md, "Four latent dimensions, now that the samples are swept"): against 2, the codes read
#: the configurations' height, spread and LJ energy better in all four rows (physics R^2 0.773 against
#: 0.730), within the rule's margins on fit (0.57 nats worse on average), swept generated energy
#: overlap (0.222 against 0.219), close pairs and rho(z). Three of its four dimensions sit near the free-bits
#: floor; with them the codes read the height spread better. Runs written before carry their 2 in their config.
COORDS_LATENT = 4

#: ``--cluster``'s default: N2D (UMAP + Gaussian mixture) on each view's codes and on the physics
#: baseline's features, reported beside KMeans. Issue 24 reads gamma out of the codes by "KMeans/N2D
#: ACC"; N2D's settings are its paper's (DeepSettings), and none was chosen on this
#: experiment's data. Runs written since ``--cluster`` (config version 2) say their own method.
CLUSTER = "n2d"

#: ``--k``'s default: KMeans finds as many clusters as there are gammas.
GAMMAS_K = "gammas"

QUICK = {"samples": 600, "epochs": 2, "preliminary_sweeps": 300, "replicas": 4}


def _v1_to_v2(old: dict) -> dict:
    """Runs written before ``--cluster``: KMeans only."""
    return {**old, "cluster": "kmeans"}


def _v2_to_v3(old: dict) -> dict:
    """Runs written before ``--k``: as many clusters as gammas."""
    return {**old, "n_clusters": GAMMAS_K, "k_range": [2, 20], "k_criterion": "silhouette"}


def _v3_to_v4(old: dict) -> dict:
    """Runs written before free bits: every view on the plain ELBO."""
    return {**old, **{f"{view}_free_bits": 0.0 for view in FREE_BITS}}


def _v4_to_v5(old: dict) -> dict:
    """Runs written before ``--grid-blocks``: the write-up's Conv + max-pooling blocks."""
    return {**old, "grid_blocks": "pool"}


def _v5_to_v6(old: dict) -> dict:
    """Runs written while the default grid had 32 cells: their ``grid_h`` None meant L / 32 (a
    ``--quick`` run's None still means L / 16)."""
    if old.get("grid_h") is None and not old.get("quick"):
        return {**old, "grid_h": old["box"] / GRID_CELLS_BEFORE_V6}
    return old


def _v6_to_v7(old: dict) -> dict:
    """Runs written before ``--grid-smoothing``: occupancy grids with a Bernoulli likelihood."""
    return {**old, "grid_smoothing": 0.0}


def _v7_to_v8(old: dict) -> dict:
    """Runs written before ``--patience`` and ``--grid-log-var-scale``: every model trained all its
    epochs, and the grid's sigma learned at the decoder's rate."""
    return {**old, "patience": 0, "grid_log_var_scale": 1.0}


def _v8_to_v9(old: dict) -> dict:
    """Runs written before ``--grid-sigma-floor``: the smooth grid's sigma had no floor."""
    return {**old, "grid_sigma_floor": 0.0}


def _v9_to_v10(old: dict) -> dict:
    """Runs written before ``--distance-likelihood``: the distance VAE's was over distances alone."""
    return {**old, "distance_likelihood": "distances"}


def _v10_to_v11(old: dict) -> dict:
    """Runs written before ``--grid-peak-power``: the grid's likelihood was over the cells alone."""
    return {**old, "grid_peak_power": 0}


def _v11_to_v12(old: dict) -> dict:
    """Runs written before ``--coords-sort``: the sorted coordinates were sorted by x."""
    return {**old, "coords_sort": "x"}


def _v12_to_v13(old: dict) -> dict:
    """Runs written before ``--coords-encoder``: the sorted-coordinate VAE's encoder was dense."""
    return {**old, "coords_encoder": "dense"}


def _v13_to_v14(old: dict) -> dict:
    """Runs written before ``--coords-decoder``: the sorted-coordinate VAE's decoder was Gaussian."""
    return {**old, "coords_decoder": "gaussian", **PAIR_LATTICE}


def _v14_to_v15(old: dict) -> dict:
    """Runs written before signed hinges: the pair decoder's potential only repelled."""
    return {**old, "coords_pair_signed": False}


def _v15_to_v16(old: dict) -> dict:
    """Runs written before ``--coords-patience``: the sorted-coordinate VAE stopped with ``--patience``."""
    return {**old, "coords_patience": old["patience"]}


def _v16_to_v17(old: dict) -> dict:
    """Runs written before ``--coords-lr-plateau``: the sorted-coordinate VAE's learning rate was constant."""
    return {**old, "coords_lr_plateau": 0}


def _v17_to_v18(old: dict) -> dict:
    """Runs written before ``--coords-gibbs-sweeps``: the pair decoder's configurations were its one pass."""
    return {**old, "coords_gibbs_sweeps": 0}


# --- option types ----------------------------------------------------------------------------


def gamma_list(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated distinct gammas >= 0, e.g. ``1,2,4``."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"needs distinct numbers >= 0, e.g. 1,2,4; got {text!r}")
    return values


def sweeps_or_auto(text: str) -> int | str:
    """argparse type: ``auto`` or a number of sweeps >= 0."""
    if text.strip().lower() == "auto":
        return "auto"
    return non_negative_int(text)


def optional_gamma(text: str) -> float | str | None:
    """argparse type: ``none``, ``auto`` or a gamma >= 0."""
    t = text.strip().lower()
    if t in ("none", "auto"):
        return None if t == "none" else "auto"
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number >= 0, 'auto' or 'none'") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def k_or_gammas(text: str) -> int | str | None:
    """argparse type of ``--k``: ``gammas`` (as many clusters as gammas), ``auto`` (None) or K >= 1."""
    return GAMMAS_K if text.strip().lower() == GAMMAS_K else k_or_auto(text)


def three_ints(text: str) -> tuple[int, ...]:
    """argparse type: three positive integers, e.g. ``8,16,32`` (one per Conv block)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"needs three filter counts, one per Conv block, e.g. 8,16,32; got {text!r}")
    return tuple(positive_int(p) for p in parts)


# --- the simulation's settings, shared by ``simulate``, ``run`` and ``tune`` -----------------------

SIMULATION, MODELS, SPLITS = "simulation", "models", "splits"


def particles_setting():
    return setting(PARTICLES, "particles N", type=positive_int, group=SIMULATION)


def box_setting():
    return setting(BOX, "box side L in sigma", type=positive_float, group=SIMULATION)


def dim_setting():
    return setting(DIM, "2 or 3 dimensions", type=int, choices=(2, 3), group=SIMULATION)


def temperature_setting():
    return setting(TEMPERATURE, "temperature T in epsilon/k_B", type=positive_float, group=SIMULATION)


def gammas_setting():
    return setting(
        GAMMAS,
        "gravity strengths gamma = m g sigma / (4 eps), comma-separated",
        type=gamma_list,
        flag="--gamma",
        group=SIMULATION,
    )


def samples_setting(default: int, what: str, quick: int | None = None):
    return setting(default, what, type=positive_int, quick=quick, group=SIMULATION)


def replicas_setting(quick: int | None = None):
    return setting(
        16,
        "independent chains per gamma, run in parallel on every core",
        type=positive_int,
        quick=quick,
        group=SIMULATION,
    )


def kick_setting():
    return setting(
        0.2, "largest displacement per coordinate of a move, in sigma", type=positive_float, group=SIMULATION
    )


def threshold_setting():
    return setting(
        0.1, "autocorrelation below which configurations count as decorrelated", type=fraction, group=SIMULATION
    )


def preliminary_sweeps_setting(quick: int | None = None):
    return setting(
        4000,
        "sweeps (N moves each) of the preliminary run that measures equilibration and decorrelation; doubled up "
        f"to {MAX_DOUBLINGS} times until the lag is measured reliably",
        type=positive_int,
        quick=quick,
        group=SIMULATION,
    )


def epochs_setting(view: str, default: int):
    return setting(default, f"epochs of the {view} model", type=positive_int, quick=QUICK["epochs"], group=MODELS)


def free_bits_setting(view: str, default: float):
    return setting(
        default,
        f"nats of KL per latent dimension the {view} VAE's loss does not charge (free bits, against posterior "
        "collapse); 0: the plain ELBO",
        type=non_negative_float,
        group=MODELS,
    )


@dataclass
class SystemSettings:
    """The simulated system and how it is sampled: the settings ``simulate``, ``run`` and ``tune``
    declare alike (each adds its gammas, samples and seed)."""

    particles: int = particles_setting()
    box: float = box_setting()
    dim: int = dim_setting()
    temperature: float = temperature_setting()
    replicas: int = replicas_setting()
    kick: float = kick_setting()
    threshold: float = threshold_setting()
    preliminary_sweeps: int = preliminary_sweeps_setting()

    def system(self) -> LJSystem:
        return LJSystem(self.particles, self.box, self.dim, self.temperature)

    def simulate(self, gammas, per_gamma: int, seed: int, **options) -> Simulation:
        """:func:`~keras_clust.lj.sampling.simulate` of this system at ``gammas``, ``per_gamma``
        configurations each (``options``: its progress and checkpoint arguments)."""
        return simulate(
            self.system(),
            list(gammas),
            per_gamma,
            replicas=self.replicas,
            kick=self.kick,
            seed=seed,
            threshold=self.threshold,
            preliminary_sweeps=self.preliminary_sweeps,
            **options,
        )


@dataclass
class SourceSettings(SystemSettings):
    """Where a run or a search gets its configurations: a dataset, or a simulation at ``gammas``."""

    dataset: str | None = path_setting(
        "take the configurations from this dataset (an .npz from 'simulate', or its run folder) instead of "
        "simulating; its physical settings and gammas replace the simulation options",
        metavar="NPZ|RUN",
        default_text="simulate",
    )
    gammas: tuple[float, ...] = gammas_setting()


@dataclass
class Config(SourceSettings):
    """Every setting of an ``lj-fluid run``.

    ``samples`` counts the configurations of the training gammas together (split evenly
    between them); the held-out gamma gets as many as one training gamma. ``dataset`` (an
    ``.npz`` written by ``simulate`` or a ``simulate`` run folder) replaces the simulation.
    ``cluster`` (``--cluster``, version 2) adds DEC, IDEC or N2D on each view's encoder.
    ``holdout_gamma`` ``"auto"`` (the option's default) becomes 0.5, or None with a dataset.
    """

    CONFIG_VERSION: ClassVar[int] = 18
    MIGRATIONS: ClassVar[dict] = {
        1: _v1_to_v2,
        2: _v2_to_v3,
        3: _v3_to_v4,
        4: _v4_to_v5,
        5: _v5_to_v6,
        6: _v6_to_v7,
        7: _v7_to_v8,
        8: _v8_to_v9,
        9: _v9_to_v10,
        10: _v10_to_v11,
        11: _v11_to_v12,
        12: _v12_to_v13,
        13: _v13_to_v14,
        14: _v14_to_v15,
        15: _v15_to_v16,
        16: _v16_to_v17,
        17: _v17_to_v18,
    }

    holdout_gamma: float | None = setting(
        "auto",
        f"gamma kept out of training to test anomaly detection; auto: {HOLDOUT_GAMMA:g} simulated beside the "
        "training gammas, none with --dataset",
        type=optional_gamma,
        metavar="G|auto|none",
    )
    samples: int = samples_setting(
        SAMPLES,
        "configurations of the training gammas in all, split evenly between them; the held-out gamma gets as "
        "many as one of them",
        quick=QUICK["samples"],
    )
    replicas: int = replicas_setting(quick=QUICK["replicas"])
    preliminary_sweeps: int = preliminary_sweeps_setting(quick=QUICK["preliminary_sweeps"])
    val_fraction: float = setting(0.1, "validation share", type=fraction, group=SPLITS)
    test_fraction: float = setting(0.1, "test share", type=fraction, group=SPLITS)
    # sorted-coordinate dense VAE (the write-up: 60 -> 45 -> 22 -> 2 for 30 particles in 2-D; latent 4 by a rule)
    coords_hidden: tuple[int, ...] = (45, 22)
    coords_latent: int = setting(
        COORDS_LATENT, "latent size of the sorted-coordinate VAE", type=positive_int, group=MODELS
    )
    coords_sort: str = setting(
        COORDS_SORT,
        "the axis the sorted-coordinate VAE's particles are sorted along: x (the write-up's), or height (the "
        "last axis, along gravity: the k-th entry is the k-th lowest particle)",
        choices=COORDS_SORTS,
        group=MODELS,
    )
    coords_encoder: str = setting(
        COORDS_ENCODER,
        "the sorted-coordinate VAE's encoder: dense (the write-up's), or deepsets (each particle through the same "
        "small network, then the mean and maximum over the particles: the code ignores their order)",
        choices=COORDS_ENCODERS,
        group=MODELS,
    )
    coords_set_units: tuple[int, ...] = (64, 64)
    coords_decoder: str = setting(
        COORDS_DECODER,
        "the sorted-coordinate VAE's decoder: gaussian (each coordinate on its own, the write-up's), or pair (the "
        "particles drawn one at a time, lowest first, with a learned pair potential and a hard core from the "
        "training data; needs --coords-sort height and --coords-encoder deepsets)",
        choices=COORDS_DECODERS,
        group=MODELS,
    )
    # the pair decoder's lattice of the plane, its potential's window, its heights' MADE
    coords_pair_grid: int = PAIR_LATTICE["coords_pair_grid"]
    coords_pair_subgrid: int = PAIR_LATTICE["coords_pair_subgrid"]
    coords_pair_window: int = PAIR_LATTICE["coords_pair_window"]
    coords_pair_core_margin: float = PAIR_LATTICE["coords_pair_core_margin"]
    coords_pair_units: tuple[int, ...] = PAIR_LATTICE["coords_pair_units"]
    coords_pair_signed: bool = PAIR_SIGNED
    coords_pair_components: int = PAIR_LATTICE["coords_pair_components"]
    coords_epochs: int = epochs_setting("coords", COORDS_EPOCHS)
    coords_patience: int = setting(
        COORDS_PATIENCE,
        "epochs without improvement of the sorted-coordinate VAE's validation -ELBO (with free bits) before it "
        "stops, its best epoch kept; 0: it trains all its epochs",
        type=non_negative_int,
        group=MODELS,
    )
    coords_lr_plateau: int = setting(
        COORDS_LR_PLATEAU,
        f"the sorted-coordinate VAE's learning rate halves after this many epochs without a lower validation "
        f"-ELBO, down to {COORDS_MIN_LR:g}; 0: a constant learning rate",
        type=non_negative_int,
        group=MODELS,
    )
    coords_free_bits: float = free_bits_setting("coords", FREE_BITS["coords"])
    coords_gibbs_sweeps: int | str = setting(
        "auto",
        "with --coords-decoder pair: Gibbs-style sweeps of the decoder's own conditionals after its one-pass "
        "draw of each generated and reconstructed configuration (each particle's position in the plane re-drawn "
        "against every other particle, heights kept); the report shows the one pass beside them; 0: the one "
        f"pass alone; auto: {COORDS_GIBBS_SWEEPS} with the pair decoder, 0 with the Gaussian one",
        type=sweeps_or_auto,
        metavar="S|auto",
        group=MODELS,
    )
    # density-grid Conv VAE (grid_h None: L / 24 cells, L / 16 with --quick)
    grid_h: float | None = optional_setting(
        "density-grid cell side h in sigma; L/h must be a whole multiple of 8",
        type=positive_float,
        default_text=f"L/{GRID_CELLS}, {BOX / GRID_CELLS:g} for L = {BOX:g}; --quick: L/{QUICK_GRID_CELLS}",
        group=MODELS,
    )
    grid_filters: tuple[int, ...] = setting(
        (8, 16, 32), "Conv filters of the three encoder blocks", type=three_ints, group=MODELS
    )
    grid_kernel: int = setting(3, "Conv kernel size", type=positive_int, group=MODELS)
    grid_blocks: str = setting(
        GRID_DEFAULT_BLOCKS,
        "how the Conv blocks halve and double the grid: pool (the write-up's Conv + max-pooling, then a Conv to "
        "the output), strided (stride-2 Conv down, stride-2 transposed Conv up, the last giving the output: no "
        "multi-channel map at full resolution), pool-deconv (pool's encoder, strided's decoder) or pool-shuffle "
        "(pool's encoder; pool's decoder with its last block kept at half resolution, then a Conv whose 2^dim "
        "channels become the full grid's cells)",
        choices=GRID_BLOCKS,
        group=MODELS,
    )
    grid_smoothing: float = setting(
        GRID_DEFAULT_SMOOTHING,
        "0: occupancy grids (counts over the largest count) with a Bernoulli likelihood; W > 0: smooth density "
        "grids, a Gaussian blob of width W sigma per particle, with a Gaussian likelihood of one learned sigma "
        "per cell",
        type=non_negative_float,
        metavar="W",
        group=MODELS,
    )
    grid_log_var_scale: float = setting(
        GRID_LOG_VAR_SCALE,
        "with --grid-smoothing: the grid VAE's learned log sigma^2 per cell moves this many times faster than "
        "its other weights (1: at the same rate)",
        type=positive_float,
        group=MODELS,
    )
    grid_sigma_floor: float = setting(
        GRID_SIGMA_FLOOR,
        "with --grid-smoothing: the smallest sigma per cell the grid VAE's likelihood may learn, in units of "
        "one particle's peak (0: no floor)",
        type=non_negative_float,
        group=MODELS,
    )
    grid_peak_power: int = setting(
        GRID_PEAK_POWER,
        "with --grid-smoothing (occupancy grids ignore it): the grid VAE's likelihood also has a Gaussian over "
        "each cell's density raised to this power, which the overlapping blobs of a close pair make large (0: none)",
        type=non_negative_int,
        group=MODELS,
    )
    grid_latent: int = setting(16, "latent size of the grid VAE", type=positive_int, group=MODELS)
    grid_epochs: int = epochs_setting("grid", 20)
    grid_free_bits: float = free_bits_setting("grid", FREE_BITS["grid"])
    # distance-matrix Conv2D VAE and the coordinate network
    distance_latent: int = setting(64, "latent size of the distance-matrix VAE", type=positive_int, group=MODELS)
    distance_epochs: int = epochs_setting("distance", 150)
    distance_free_bits: float = free_bits_setting("distance", FREE_BITS["distance"])
    distance_likelihood: str = setting(
        DISTANCE_LIKELIHOOD,
        "the distance VAE's likelihood: a Gaussian over the distinct distances, or beside it one over their "
        "contacts (sigma/r)^6, which a close pair makes large",
        choices=DISTANCE_LIKELIHOODS,
        group=MODELS,
    )
    coordinate_hidden: tuple[int, ...] = (512, 256)
    coordinate_epochs: int = epochs_setting("coordinate", 150)
    patience: int = setting(
        PATIENCE,
        "epochs without improvement of the validation loss (each VAE's training objective: the -ELBO with "
        "--beta and free bits; the coordinate network's MSE) before a model stops, its best epoch kept; 0: every "
        "model trains all its epochs (the sorted-coordinate VAE: --coords-patience)",
        type=non_negative_int,
        group=MODELS,
    )
    beta: float = setting(1.0, "KL weight of every VAE", type=positive_float, group=MODELS)
    batch_size: int = setting(64, "batch size", type=positive_int, group=MODELS)
    learning_rate: float = setting(1e-3, "Adam learning rate", type=positive_float, group=MODELS)
    # analyses
    elbo_draws: int = setting(8, "seeded draws per configuration of the test -ELBO", quick=2, cli=False)
    overlap_distance: float = 0.5
    invalid_distance: float = 0.8
    cluster: str = cluster_setting(default=CLUSTER)
    n_clusters: int | str | None = k_setting(
        GAMMAS_K, "gammas: as many as there are gammas", type=k_or_gammas, metavar="K|auto|gammas"
    )
    k_range: tuple[int, int] = k_range_setting()
    k_criterion: str = k_criterion_setting()
    quick: bool = quick_setting()
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()

    def __post_init__(self):
        for name in (
            "gammas",
            "coords_hidden",
            "coords_set_units",
            "coords_pair_units",
            "grid_filters",
            "coordinate_hidden",
        ):
            setattr(self, name, tuple(getattr(self, name)))
        if self.holdout_gamma == "auto":
            self.holdout_gamma = None if self.dataset is not None else HOLDOUT_GAMMA
        if self.coords_gibbs_sweeps == "auto":
            self.coords_gibbs_sweeps = COORDS_GIBBS_SWEEPS if self.coords_decoder == "pair" else 0

    @property
    def cell_side(self) -> float:
        """The grid's cell side h as asked (``--grid-h``, or L / 24; L / 16 with ``--quick``)."""
        if self.grid_h is not None:
            return self.grid_h
        return self.box / (QUICK_GRID_CELLS if self.quick else GRID_CELLS)

    @property
    def grid_cells(self) -> int:
        return grid_cells(self.box, self.cell_side, len(self.grid_filters))

    @property
    def coords_axis(self) -> int:
        """The coordinate axis ``--coords-sort`` sorts the particles along (0, or ``dim - 1``)."""
        return 0 if self.coords_sort == "x" else self.dim - 1

    @property
    def grid_likelihood(self) -> str:
        """The grid VAE's likelihood: Gaussian on smooth grids, Bernoulli on occupancy grids."""
        return "gaussian" if self.grid_smoothing > 0 else "bernoulli"

    def check(self) -> Config:
        """Checks that need several settings together; returns self."""
        if self.holdout_gamma is not None and self.holdout_gamma in self.gammas and self.dataset is None:
            raise UsageError(f"--holdout-gamma {self.holdout_gamma:g} is also a training gamma; pick another")
        if self.val_fraction + self.test_fraction >= 0.5:
            raise UsageError("--val-fraction + --test-fraction must stay below 0.5")
        if len(self.grid_filters) != 3:
            raise UsageError(
                f"--grid-filters needs three filter counts (one per Conv block), got "
                f"{','.join(map(str, self.grid_filters))}"
            )
        if self.coords_decoder == "pair" and (self.coords_sort != "height" or self.coords_encoder != "deepsets"):
            raise UsageError(
                "the pair decoder (--coords-decoder pair, the default) draws the particles lowest first and has the "
                "DeepSets encoder: keep --coords-sort height --coords-encoder deepsets (the defaults), or add "
                "--coords-decoder gaussian"
            )
        if self.coords_decoder == "gaussian" and self.coords_gibbs_sweeps:
            raise UsageError(
                f"--coords-gibbs-sweeps {self.coords_gibbs_sweeps} (given, or read from --config) re-draws the pair "
                "decoder's configurations on its own potential, and --coords-decoder gaussian has none: add "
                "--coords-gibbs-sweeps auto or 0"
            )
        if self.coords_decoder == "pair" and self.cluster == "idec":
            raise UsageError(
                "--cluster idec trains the encoder beside its decoder, and the pair decoder (--coords-decoder pair, "
                "the default) is not one that maps a code to coordinates: use --cluster dec or n2d, or add "
                "--coords-decoder gaussian"
            )
        self.grid_cells  # noqa: B018 - raises a one-line UsageError for an h the poolings cannot use
        return self


# --- simulate ------------------------------------------------------------------------------------

#: ``simulate --quick``: at most this many configurations, and preliminary runs of this many sweeps.
QUICK_SIMULATION = 300


@dataclass
class SimulateOptions(SystemSettings):
    """The options of an ``lj-fluid simulate`` (``config.json`` keeps them under ``options``;
    ``--resume`` takes them from there)."""

    gamma: tuple[float, ...] = gammas_setting()
    samples: int = samples_setting(SAMPLES, "configurations in all, split evenly between the gammas")
    seed: int = setting(0, "seed of every chain", type=non_negative_int)
    quick: bool = setting(False, f"smoke run: at most {QUICK_SIMULATION} configurations, {QUICK_SIMULATION} sweeps")
    output: str | None = path_setting(
        "also write the dataset here (always written as dataset.npz in the run folder)",
        metavar="FILE.npz",
        default_text="only in the run folder",
    )

    def __post_init__(self):
        self.gamma = tuple(float(g) for g in self.gamma)


def _simulate_v1_to_v2(old: dict) -> dict:
    """Simulations written before ``simulate`` ran on the experiment skeleton: their finished
    config.json also held the simulation's settings (now in metrics.json's ``settings`` only)."""
    return {"options": old["options"], "command": old["command"]}


@dataclass
class SimulateConfig:
    """Every setting of an ``lj-fluid simulate``: its options and the command that repeats it."""

    CONFIG_VERSION: ClassVar[int] = 2
    MIGRATIONS: ClassVar[dict] = {1: _simulate_v1_to_v2}

    options: SimulateOptions = field(default_factory=SimulateOptions)
    command: str = ""

    def __post_init__(self):
        if isinstance(self.options, dict):
            self.options = SimulateOptions(**self.options)

    @property
    def seed(self) -> int:
        return self.options.seed

    def option_defaults(self) -> dict:
        """``--config``: the saved options as the parser's defaults (``--output`` excepted: a
        repeated simulation does not overwrite the first one's file)."""
        return {k: v for k, v in asdict(self.options).items() if k != "output"}
