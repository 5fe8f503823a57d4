"""The ``keras-clust`` command: ``keras-clust <experiment> <action> [options]``.

The experiment table below is static so that ``keras-clust --help`` answers at once;
an experiment's module (and TensorFlow) is imported only when it is named.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from keras_clust import __version__
from keras_clust.app import Experiment, OneLineParser
from keras_clust.errors import KerasClustError

# experiment name -> (module holding EXPERIMENT, one-line summary)
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "mnist-l1": ("keras_clust.apps.mnist_l1", "dense L1 autoencoders on MNIST (latent 2/16/256), KMeans on the codes"),
    "fashion-cae": (
        "keras_clust.apps.fashion_cae",
        "conv AE + VAE on Fashion-MNIST: Optuna/KerasTuner search, latent maps, transfer learning",
    ),
    "gmm-vae": (
        "keras_clust.apps.gmm_vae",
        "dense VAE on a Gaussian mixture; modes captured by KMeans and by the VEEGAN/PacGAN metric",
    ),
    "mnist-denoise": (
        "keras_clust.apps.mnist_denoise",
        "denoising autoencoders for Gaussian-blurred MNIST, judged by the dis_net CNN (PSNR, SSIM)",
    ),
    "lj-fluid": (
        "keras_clust.apps.lj_fluid",
        "Metropolis MC of a Lennard-Jones fluid under gravity; Conv3D density-grid and distance-matrix VAEs",
    ),
    "vector-fields": (
        "keras_clust.apps.vector_fields",
        "conv AE for 2-D vector fields: two-stage Optuna search, multi-objective clustering",
    ),
    "bump": (
        "keras_clust.apps.bump",
        "gradient descent vs Adam and other Keras optimizers escaping a local minimum over a bump",
    ),
    "cluster": (
        "keras_clust.apps.cluster_data",
        "cluster your own .npy/.npz/IDX rows with KMeans, DEC, IDEC or N2D on any encoder",
    ),
    "cluster-bench": (
        "keras_clust.apps.cluster_bench",
        "DEC, IDEC, N2D and KMeans on Fashion-MNIST, MNIST or digits beside the published numbers",
    ),
    "data": ("keras_clust.apps.data", "fetch full MNIST offline-safely; list where each dataset is found"),
    "serve": (
        "keras_clust.apps.serve",
        "check exported SavedModels with saved_model_cli; call models served by TF Serving (REST, gRPC)",
    ),
}


def _configure_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[keras-clust] %(message)s"))
    for name in ("keras_clust",):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
        logger.propagate = False


def load_experiment(name: str) -> Experiment:
    module = importlib.import_module(EXPERIMENTS[name][0])
    return module.EXPERIMENT


def _with_default_action(argv: list[str], experiment: Experiment) -> list[str]:
    """Insert the experiment's default action after its name when no action is named
    (``--help`` alone still shows the experiment's own help)."""
    if experiment.default_action is None:
        return argv
    at = argv.index(experiment.name)
    rest = argv[at + 1 :]
    if rest in ([], ["-h"], ["--help"]) or any(a in {x.name for x in experiment.actions} for a in rest[:1]):
        return argv
    return argv[: at + 1] + [experiment.default_action] + rest


def build_parser(experiment: Experiment | None = None) -> OneLineParser:
    """The top-level parser; with ``experiment``, also that experiment's actions."""
    lines = "\n".join(f"  {name:<14} {summary}" for name, (_, summary) in EXPERIMENTS.items())
    parser = OneLineParser(
        prog="keras-clust",
        description="Unsupervised representation learning and clustering experiments.",
        epilog=f"experiments:\n{lines}\n\nRun 'keras-clust <experiment> --help' for its actions.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keras-clust {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="experiment", metavar="<experiment>", required=True)
    for name, (_, summary) in EXPERIMENTS.items():
        if experiment is None or experiment.name != name:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        exp_parser = sub.add_parser(name, help=summary, description=experiment.description)
        actions = exp_parser.add_subparsers(dest="action", metavar="<action>", required=True)
        for action in experiment.actions:
            p = actions.add_parser(action.name, help=action.help, description=action.help)
            action.add_arguments(p)
            p.set_defaults(_run=action.run, _action=action, _parser=p)
            if action.config is not None:
                p.add_argument(
                    "--config",
                    type=Path,
                    default=None,
                    metavar="CONFIG_JSON",
                    help="repeat a run from its saved settings (a run folder's config.json); options given on "
                    "the command line override them",
                )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ start-up chatter; set 0 to see it
    name = next((a for a in argv if not a.startswith("-")), None)
    experiment = None
    if name in EXPERIMENTS:
        experiment = load_experiment(name)
        argv = _with_default_action(argv, experiment)
    parser = build_parser(experiment)
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices are noise here
    try:
        if getattr(args, "config", None) is not None:  # a saved config.json under the command line
            from keras_clust.experiment import saved_config_defaults

            saved = saved_config_defaults(args._action.config, args.config, experiment.name, args._action.name)
            args._parser.set_defaults(**saved)
            args = parser.parse_args(argv)
        return int(args._run(args) or 0)
    except KerasClustError as exc:
        print(f"keras-clust: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "keras-clust: interrupted; nothing half-written was kept but a run folder that --resume continues",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
