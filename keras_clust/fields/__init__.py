"""The vector-field domain: 2-D flow fields, their autoencoder and its search space.

Exported here without TensorFlow: the generator (:mod:`~keras_clust.fields.generator`),
the ``.npz``/``.npy`` reader and writer (:mod:`~keras_clust.fields.dataset`) and the
pooling tables (:mod:`~keras_clust.fields.pooling`). The field autoencoder
(:mod:`keras_clust.fields.autoencoder`), its loss (:mod:`keras_clust.fields.loss`), its
search space (:mod:`keras_clust.fields.search_space`) and figures
(:mod:`keras_clust.fields.figures`) are imported from their modules.
"""

from keras_clust.fields.dataset import fields_source, load_fields, save_fields
from keras_clust.fields.generator import FLOW_TYPES, FieldSet, generate_fields, pixel_centres
from keras_clust.fields.pooling import depths, max_depth, pooling_table

__all__ = [
    "FLOW_TYPES",
    "FieldSet",
    "depths",
    "fields_source",
    "generate_fields",
    "load_fields",
    "max_depth",
    "pixel_centres",
    "pooling_table",
    "save_fields",
]
