"""Figures: compute the numbers first, then draw them (Agg canvas, no pyplot)."""

from keras_clust.viz.confusion import plot_confusion_matrix
from keras_clust.viz.curves import LossCurves, loss_curves, plot_loss_curves
from keras_clust.viz.images import pick_examples, plot_image_grids, plot_image_rows
from keras_clust.viz.latent import LatentMap, latent_map, plot_latent_map
from keras_clust.viz.scatter import minmax_columns, plot_k_selection, plot_true_vs_generated

__all__ = [
    "minmax_columns",
    "plot_k_selection",
    "plot_true_vs_generated",
    "LatentMap",
    "LossCurves",
    "latent_map",
    "loss_curves",
    "pick_examples",
    "plot_confusion_matrix",
    "plot_image_grids",
    "plot_image_rows",
    "plot_latent_map",
    "plot_loss_curves",
]

from keras_clust.viz.clustering import plot_k_choice, plot_pareto_front, plot_silhouette_knives  # noqa: E402

__all__ += ["plot_k_choice", "plot_pareto_front", "plot_silhouette_knives"]
