"""tfx-metric-learning: a TFX pipeline that trains embedding models which separate vectors.

The installed distribution has this one top-level import package; the repository's top-level
folders are its subpackages (``pyproject.toml`` maps them):

- ``tfx_metric_learning.pipeline``: the pipeline definition, its config, runners and CLI;
- ``tfx_metric_learning.components``: the custom TFX components;
- ``tfx_metric_learning.trainer_module``: what runs inside Transform and the Trainer;
- ``tfx_metric_learning.kubeflow``: compiling for Kubeflow Pipelines v2;
- ``tfx_metric_learning.core`` (a folder of this package): the shared kernel (settings base,
  split names, feature keys, record reading, retrieval search and metrics).

So nothing of this project claims a generic top-level name (``pipeline``, ``components``) or
the ``kubeflow`` namespace of the Kubeflow SDKs (``kubeflow.training``, ``kubeflow.katib``).
"""

import os

# TFT 1.16 and TFMA expect Keras 2 (tf_keras): set before TensorFlow is imported, which every
# import of this project's code passes through first (the one place it is set in code).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def __getattr__(name: str):
    """``GalleryIndex``, the artifact type Kubeflow's TFX container imports by its type name.

    TFX's KFP v2 entrypoint imports a custom artifact type by its schema title as a class path
    (``<module>.<Class>``, one dot); the class is imported on first use, not with the package.
    """
    if name == "GalleryIndex":
        from tfx_metric_learning.components.gallery_index.spec import GalleryIndex

        return GalleryIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
