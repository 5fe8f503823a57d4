import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.viz import (
    latent_map,
    loss_curves,
    pick_examples,
    plot_confusion_matrix,
    plot_image_rows,
    plot_latent_map,
    plot_loss_curves,
)


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_loss_curves_numbers_and_plot(tmp_path):
    curves = loss_curves({"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0], "learning_rate": [0.1, 0.1, 0.05]})
    assert set(curves.series) == {"loss", "val_loss"}  # a schedule's logged rate is not drawn as a loss
    np.testing.assert_array_equal(curves.epochs, [1, 2, 3])
    np.testing.assert_array_equal(curves.series["val_loss"], [3.5, 2.5, 2.0])
    assert _is_png(plot_loss_curves(curves, tmp_path / "loss.png", title="t"))


def test_latent_map_identity_pca_tsne(blobs, tmp_path):
    x, y = blobs
    ident = latent_map(x, y)
    assert ident.method == "identity"
    np.testing.assert_array_equal(ident.xy, x)
    x5 = np.hstack([x, np.zeros((len(x), 3), np.float32)])
    pca = latent_map(x5, y, method="pca")
    # PCA of data living in a plane keeps all pairwise distances
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(pca.xy), d(x), rtol=1e-3, atol=1e-3)
    tsne = latent_map(x5, y, method="auto", seed=0, max_points=60)
    assert tsne.method == "tsne" and tsne.xy.shape == (60, 2) and tsne.seconds >= 0
    again = latent_map(x5, y, method="auto", seed=0, max_points=60)
    np.testing.assert_allclose(again.xy, tsne.xy)
    assert _is_png(plot_latent_map(tsne, tmp_path / "map.png", class_names=["a", "b", "c"]))
    with pytest.raises(UsageError):
        latent_map(x5, y, method="identity")


def test_image_rows_and_confusion(tmp_path, tiny_images):
    x, _ = tiny_images
    idx = pick_examples(len(x), 6, seed=0)
    assert len(set(idx.tolist())) == 6 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, pick_examples(len(x), 6, seed=0))
    path = plot_image_rows(
        [x[idx], x[idx].reshape(6, -1)],
        tmp_path / "rows.png",
        row_titles=["a", "b"],
        captions=[list("123456"), None],
        image_shape=(8, 8),
    )
    assert _is_png(path)
    cm = np.array([[5, 1], [0, 7]])
    assert _is_png(plot_confusion_matrix(cm, tmp_path / "cm.png", ["x", "y"]))
