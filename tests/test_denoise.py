"""Corruptions, image quality metrics, dis_net, and the mnist-denoise app end to end."""

import json

import cv2
import keras
import numpy as np
import pytest

from helpers import assert_one_line_error, cli
from keras_clust.data import corrupt, gaussian_blur, gaussian_noise, salt_and_pepper
from keras_clust.errors import UsageError
from keras_clust.export import saved_model_cli_show
from keras_clust.models import build_dense_autoencoder, build_dis_net
from keras_clust.quality import psnr, ssim


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


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("denoise")
    res = cli("mnist-denoise", "run", "--quick", "--latent-dims", "2,16", "--show", "8", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "mnist-denoise").iterdir()
    return work, run, res


def test_quick_run_table_figures_exports(quick_run):
    work, run, res = quick_run
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["table"]) == ["clean", "blurred", "z2", "z16"]
    assert m["table"]["clean"]["psnr"] == 100.0 and m["table"]["clean"]["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert m["table"]["blurred"]["ssim"] < 1.0
    assert all(0 <= row["dis_net_accuracy"] <= 1 for row in m["table"].values())
    assert len(m["digit_strings"]["z16"].split()) == 8
    for fig in ("examples.png", "dis_net.png", "loss_z2.png", "loss_z16.png"):
        assert (run / "figures" / fig).is_file()
    assert "| restored, latent 16 |" in (run / "report.md").read_text()
    assert m["data"]["note"] in res.stdout
    text = saved_model_cli_show(work / "saved_models" / "mnist_denoise_z16" / "1")
    assert "inputs['blurred_images']" in text and "outputs['images']" in text and "(-1, 784)" in text
    text = saved_model_cli_show(work / "saved_models" / "mnist_dis_net" / "1")
    assert "inputs['images']" in text and "outputs['probabilities']" in text and "(-1, 10)" in text


def test_evaluate_and_export(quick_run):
    work, run, _ = quick_run
    res = cli("mnist-denoise", "evaluate", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads((run / "evaluation.json").read_text())["table"]
    stored = json.loads((run / "metrics.json").read_text())["table"]
    for key in stored:
        assert again[key]["dis_net_accuracy"] == pytest.approx(stored[key]["dis_net_accuracy"], abs=1e-9)
        assert again[key]["psnr"] == pytest.approx(stored[key]["psnr"], rel=1e-5)
    assert cli("mnist-denoise", "export", cwd=work).returncode == 0
    assert (work / "saved_models" / "mnist_dis_net" / "2").is_dir()


@pytest.mark.parametrize("args, fragment", [(["--blur-kernel", "4"], "--blur-kernel must be odd"),
                                            (["--blur-kernel", "0"], "--blur-kernel"),
                                            (["--blur-sigma", "-1"], "--blur-sigma")])  # fmt: skip
def test_bad_blur_options(tmp_path, args, fragment):
    res = cli("mnist-denoise", "run", "--quick", *args, cwd=tmp_path)
    assert_one_line_error(res, 2, fragment)
    assert not (tmp_path / "runs").exists()
