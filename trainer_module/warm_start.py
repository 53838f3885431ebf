"""Warm start: the encoder starts from the production model's weights.

The pipeline wires the production model (``components/production``) as the Trainer's base
model. Its SavedModel keeps each encoder weight under a checkpoint key (``checkpoint_keys``),
also after the GalleryIndex re-saved it with a ``lookup`` signature; ``warm_start`` copies
them, refusing a base of another shape.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging


class WarmStartError(ValueError):
    """The base model cannot initialise this encoder (another shape or no weights)."""


def checkpoint_keys(encoder: tf.keras.Model) -> list[tuple[str, tf.Variable]]:
    """``(key, weight)`` per weight of ``encoder``: where a SavedModel of it keeps the weight.

    Keras checkpoints a functional model's ``i``-th layer that holds weights as
    ``layer_with_weights-<i>`` (tf_keras ``Functional._layer_checkpoint_dependencies``) and
    each weight under the name it was added with (``kernel``, ``bias``).
    """
    holders = [layer for layer in encoder.layers if layer.weights]
    return [
        (
            f"layer_with_weights-{i}/{w.name.split('/')[-1].split(':')[0]}/.ATTRIBUTES/"
            "VARIABLE_VALUE",
            w,
        )
        for i, layer in enumerate(holders)
        for w in layer.weights
    ]


def base_model_dir(base_model: str | None) -> str | None:
    """``fn_args.base_model`` when it holds a SavedModel, else None (a cold start).

    The pipeline wires the production model (``components/production``) as the base model;
    its artifact holds no model when nothing is in production yet.
    """
    if base_model and tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        return base_model
    if base_model:
        logging.warning(
            "warm start asked for, but %s holds no model (nothing is in production): cold start",
            base_model,
        )
    return None


def warm_start(encoder: tf.keras.Model, base_model_dir: str) -> None:
    """Copies the weights of the encoder saved in ``base_model_dir`` into ``encoder``.

    The served SavedModel is the encoder itself (``export_serving_model``); its checkpoint
    (``variables/``) holds each weight under the key ``checkpoint_keys`` names (Keras names
    variables per process, so variable names are not compared). The base must hold as many
    encoder weights as ``encoder``, each of the same shape.
    """
    reader = tf.train.load_checkpoint(os.path.join(base_model_dir, "variables", "variables"))
    shapes = reader.get_variable_to_shape_map()
    saved = sum(1 for key in shapes if key.startswith("layer_with_weights-"))
    mine = checkpoint_keys(encoder)
    problems = [
        f"weight {i} ({v.name}) is {tuple(shapes[key])}, not {tuple(v.shape)}"
        if key in shapes
        else f"weight {i} ({v.name}) is missing"
        for i, (key, v) in enumerate(mine)
        if key not in shapes or tuple(shapes[key]) != tuple(v.shape)
    ]
    if saved != len(mine):
        problems.insert(0, f"it has {saved} weights, this encoder {len(mine)}")
    if problems:
        raise WarmStartError(
            f"cannot warm-start from {base_model_dir}: {'; '.join(problems[:5])}; train with "
            f"the same features, encoder, hidden units and embedding dimension, or without "
            f"--warm-start"
        )
    for key, variable in mine:
        variable.assign(reader.get_tensor(key))
