"""Corruptions, image quality metrics, dis_net, and the mnist-denoise app end to end."""

import json

import cv2
import keras
import numpy as np
import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.apps.mnist_denoise import SPEC, Config, Prepared, score_all, table_rows, train_denoiser
from keras_clust.data import corrupt, gaussian_blur, gaussian_noise, load_dataset, salt_and_pepper
from keras_clust.errors import UsageError
from keras_clust.experiment import Run, load_run
from keras_clust.export import saved_model_cli_show
from keras_clust.models import build_dense_autoencoder, build_dis_net
from keras_clust.quality import psnr, ssim
from keras_clust.run_folder import RunFolder


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    x = np.zeros((300, 28, 28), np.float32)
    for i in range(300):  # bright bars at random places
        r, c = rng.integers(4, 20, 2)
        x[i, r : r + 6, c : c + 2] = 1.0
    return x


def test_blur_matches_opencv_per_image_and_keeps_shape(digits):
    out = gaussian_blur(digits, 5)
    assert out.shape == digits.shape and out.dtype == np.float32
    ref = np.stack([cv2.GaussianBlur(img, (5, 5), 0) for img in digits])
    np.testing.assert_array_equal(out, ref)  # batched through channels, same numbers
    np.testing.assert_array_equal(gaussian_blur(digits, 5), out)  # deterministic
    four = gaussian_blur(digits[..., None], 3, 0.8)
    assert four.shape == (300, 28, 28, 1)
    assert out.max() < 1.0 and out.sum() == pytest.approx(digits.sum(), rel=0.02)  # spread, mass kept
    np.testing.assert_array_equal(gaussian_blur(digits[:1], 5), ref[:1])  # a single image too


@pytest.mark.parametrize("k", [0, -3, 4, 2.5])
def test_blur_rejects_bad_kernels(digits, k):
    with pytest.raises(UsageError, match="odd positive"):
        gaussian_blur(digits, k)


def test_other_corruptions(digits):
    noisy = gaussian_noise(digits, 0.2, seed=1)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not np.array_equal(noisy, digits)
    np.testing.assert_array_equal(noisy, gaussian_noise(digits, 0.2, seed=1))
    sp = salt_and_pepper(np.full((10, 28, 28), 0.5, np.float32), 0.2, seed=0)
    changed = np.mean(sp != 0.5)
    assert changed == pytest.approx(0.2, abs=0.02) and set(np.unique(sp)) == {0.0, 0.5, 1.0}
    with pytest.raises(UsageError, match="unknown corruption"):
        corrupt(digits, "jpeg")


def test_quality_metrics_hand_built(digits):
    assert np.all(psnr(digits, digits) == 100.0)
    np.testing.assert_allclose(ssim(digits[..., None], digits[..., None]), 1.0, atol=1e-6)
    off = np.clip(digits + 0.1, 0, 1)
    mse = np.mean((off - digits) ** 2, axis=(1, 2))
    np.testing.assert_allclose(psnr(off, digits), 10 * np.log10(1 / mse), rtol=1e-5)
    flat = psnr(off.reshape(300, -1), digits.reshape(300, -1))
    np.testing.assert_allclose(flat, psnr(off, digits))
    blurred = gaussian_blur(digits, 5)
    assert np.all(ssim(blurred, digits) < 0.99)
    with pytest.raises(UsageError, match="differ in shape"):
        psnr(digits[:2], digits[:3])


def test_dis_net_shapes():
    net = build_dis_net()
    assert net.input.shape[1:] == (28, 28, 1) and net.output.shape[1:] == (10,)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("Conv2D") == 3 and kinds.count("MaxPooling2D") == 3 and kinds.count("Dropout") == 3
    assert all(layer.rate == 0.25 for layer in net.layers if isinstance(layer, keras.layers.Dropout))
    p = net.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_one_epoch_denoiser_lowers_l1(digits):
    clean = digits.reshape(300, -1)
    blurred = gaussian_blur(digits, 5).reshape(300, -1)
    ae = build_dense_autoencoder(784, 16).autoencoder
    ae.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    before = ae.evaluate(blurred, clean, verbose=0)
    ae.fit(blurred, clean, epochs=1, batch_size=32, verbose=0)
    assert ae.evaluate(blurred, clean, verbose=0) < before


class StubNet:
    """A 'dis_net' that reads the digit from the brightest row's position: row // 3 (bars span 6 rows)."""

    def predict(self, images, **_):
        rows = np.asarray(images).reshape(len(images), 28, 28).sum(axis=2).argmax(axis=1)
        return np.eye(10)[np.minimum(rows // 3, 9)]


def _bars(n, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.float32)
    top = rng.integers(2, 20, n)
    left = rng.integers(2, 24, n)
    for i in range(n):
        x[i, top[i] : top[i] + 6, left[i] : left[i] + 2] = 1.0
    return x.reshape(n, 784), np.minimum(top // 3, 9)


def test_scores_of_a_hand_built_case():
    """Accuracy, PSNR and SSIM rows against values computed by hand."""
    clean, labels = _bars(8, 0)
    prep = Prepared({"test": clean}, {"test": clean * 0.5}, {"test": labels}, {"note": "toy"})
    wrong = labels.copy()
    wrong[:2] = (wrong[:2] + 5) % 10  # StubNet is right on the clean bars; two labels changed
    prep.labels["test"] = wrong
    table, preds = score_all(Config(), prep, StubNet(), {})
    assert table["clean"]["dis_net_accuracy"] == 0.75 and table["blurred"]["dis_net_accuracy"] == 0.75
    np.testing.assert_array_equal(preds["clean"], labels)
    # halving a 0/1 image: MSE = 0.25 * share of bright pixels (12 of 784), PSNR = 10 log10(1 / MSE)
    assert table["blurred"]["psnr"] == pytest.approx(10 * np.log10(784 / (0.25 * 12)), rel=1e-5)
    assert table["clean"]["psnr"] == 100.0 and table["clean"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert 0.5 < table["blurred"]["ssim"] < 1.0  # structure kept, contrast lost
    assert [r["images"] for r in table_rows(table)] == ["clean test digits", "blurred"]


class TemplateReader:
    """A 'dis_net' that reads an image as its nearest template."""

    def __init__(self, templates):
        self.templates = templates.reshape(len(templates), -1)

    def predict(self, images, **_):
        flat = np.asarray(images).reshape(len(images), -1)
        dist = ((flat[:, None, :] - self.templates[None]) ** 2).sum(-1)
        return np.eye(len(self.templates))[dist.argmin(1)]


def test_trained_denoiser_beats_the_blurred_input(tmp_path):
    """The app's own denoiser step on a case it can learn (10 stroke templates, blurred, plus noise):
    restored test images are closer to the clean ones than the blurred input (PSNR and SSIM)."""
    rng = np.random.default_rng(0)
    smooth = np.stack([cv2.GaussianBlur(n, (7, 7), 0) for n in rng.random((10, 28, 28), dtype=np.float32)])
    templates = (smooth > np.quantile(smooth, 0.8, axis=(1, 2), keepdims=True)).astype(np.float32)  # 20 % ink
    y = np.arange(1200) % 10
    clean = templates[y].reshape(-1, 784)
    blurred = gaussian_noise(gaussian_blur(templates[y], 5), 0.05, seed=1).reshape(-1, 784)
    split = {"train": slice(0, 1000), "val": slice(1000, 1100), "test": slice(1100, 1200)}
    prep = Prepared(
        {k: clean[s] for k, s in split.items()},
        {k: blurred[s] for k, s in split.items()},
        {k: y[s] for k, s in split.items()},
        {"note": "templates"},
    )
    cfg = Config(latent_dims=(256,), epochs=10, batch_size=32, learning_rate=1e-3)
    with RunFolder(tmp_path, "toy", 0) as rf:
        run = Run(SPEC, cfg, rf)
        model, m, rows = train_denoiser(cfg, prep, 256, run)
        table, _ = score_all(cfg, prep, TemplateReader(templates), {256: model})
        rf.write_config({}), rf.write_metrics({}), rf.write_history([]), rf.write_report("")
    assert len(rows) == 10 and rows[-1]["loss"] < rows[0]["loss"]
    assert table["z256"]["psnr"] > table["blurred"]["psnr"] + 3.0, table  # measured: 19.4 dB against 13.8
    assert table["z256"]["ssim"] > table["blurred"]["ssim"] + 0.2, table  # measured: 0.91 against 0.52
    assert table["z256"]["dis_net_accuracy"] >= table["blurred"]["dis_net_accuracy"]
    assert "denoiser_z256" in run.model_seeds and (rf.path / "models" / "denoiser_z256.keras").is_file()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("denoise")
    res = cli_in_process("mnist-denoise", "run", "--quick", "--latent-dims", "2,16", "--show", "8", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "mnist-denoise").iterdir()
    return work, run, res


def test_quick_run_table_figures_exports(quick_run):
    work, run, res = quick_run
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["table"]) == ["clean", "blurred", "z2", "z16"]
    assert m["table"]["clean"]["psnr"] == 100.0 and m["table"]["clean"]["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert m["table"]["blurred"]["ssim"] < 1.0
    assert m["table"]["clean"]["dis_net_accuracy"] == m["dis_net"]["test_accuracy_clean"]
    for row in m["table"].values():  # a share of the test digits, not any number in [0, 1]
        assert row["dis_net_accuracy"] * m["n_test"] == pytest.approx(round(row["dis_net_accuracy"] * m["n_test"]))
    assert set(m["model_seeds"]) == {"dis_net", "denoiser_z2", "denoiser_z16"}
    # the digit strings are the saved dis_net's reading of the first 8 test digits of the run's data
    saved = load_run(SPEC, work / "runs")
    assert saved.path == run and saved.config.latent_dims == (2, 16) and saved.config.quick
    ds = load_dataset("mnist").subsample(*saved.config.quick_sizes, seed=saved.config.seed)
    assert m["digit_strings"]["true"] == " ".join(map(str, ds.y_test[:8]))
    net = keras.models.load_model(run / "models" / "dis_net.keras")
    read = net.predict(ds.x_test[:8, ..., None], verbose=0).argmax(1)
    assert m["digit_strings"]["clean"] == " ".join(map(str, read))
    assert len(m["digit_strings"]["z16"].split()) == 8
    for fig in ("examples.png", "dis_net.png", "loss_z2.png", "loss_z16.png"):
        assert (run / "figures" / fig).is_file()
    report = (run / "report.md").read_text()
    assert "| restored, latent 16 |" in report and "## Run" in report and "| mnist_dis_net |" in report
    assert m["data"]["note"] in res.stdout
    text = saved_model_cli_show(work / "saved_models" / "mnist_denoise_z16" / "1")
    assert "inputs['blurred_images']" in text and "outputs['images']" in text and "(-1, 784)" in text
    text = saved_model_cli_show(work / "saved_models" / "mnist_dis_net" / "1")
    assert "inputs['images']" in text and "outputs['probabilities']" in text and "(-1, 10)" in text


def test_evaluate_and_export(quick_run):
    work, run, _ = quick_run
    res = cli_in_process("mnist-denoise", "evaluate", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads((run / "evaluation.json").read_text())["table"]
    stored = json.loads((run / "metrics.json").read_text())["table"]
    for key in stored:
        assert again[key]["dis_net_accuracy"] == pytest.approx(stored[key]["dis_net_accuracy"], abs=1e-9)
        assert again[key]["psnr"] == pytest.approx(stored[key]["psnr"], rel=1e-5)
    assert cli_in_process("mnist-denoise", "export", cwd=work).returncode == 0
    assert (work / "saved_models" / "mnist_dis_net" / "2").is_dir()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--blur-kernel", "4"], "--blur-kernel must be odd"),
        (["--blur-kernel", "0"], "--blur-kernel"),
        (["--blur-sigma", "-1"], "--blur-sigma"),
    ],
)
def test_bad_blur_options(tmp_path, args, fragment):
    res = cli_in_process("mnist-denoise", "run", "--quick", *args, cwd=tmp_path)
    assert_one_line_error(res, 2, fragment)
    assert not (tmp_path / "runs").exists()
