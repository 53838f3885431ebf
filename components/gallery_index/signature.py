"""The ``lookup`` serving signature: the gallery inside the SavedModel, for TF Serving.

For a gallery of at most ``GallerySettings.signature_max_rows`` rows, ``write_lookup_model``
re-saves the Trainer's SavedModel with one more signature, ``lookup`` (``spec.LOOKUP_*``):

- inputs: the raw features of ``serving_default`` (one float32 ``[N]`` tensor each, NaN =
  missing);
- outputs: ``embedding`` [N, D]; the ``k`` nearest gallery rows' ``ids`` and ``labels``
  [N, k] (string), their cosine ``similarities`` [N, k] (float32, best first); ``match``
  [N] (bool): the nearest row's similarity >= the calibrated threshold (never, when no
  threshold reached the target precision).

Search is exact, in the graph: ``similarities = embedding · galleryᵀ`` (both L2-normalised,
so the inner product is the cosine the faiss index ranks by) and ``tf.math.top_k``, ties
to the lower row position as ``faiss.IndexFlatIP`` breaks them. Cost per query O(rows x D);
memory: the gallery (rows x D float32) and its ids and labels, as variables of the model.

How it is saved: the SavedModel is loaded (``tf.saved_model.load``), the gallery is attached
to the restored object as variables, and the object is saved again with its three signatures
and ``lookup``. The restored object keeps its object graph, so every weight keeps its
checkpoint key (``layer_with_weights-<i>/...``: warm start reads the pushed model by those
keys, ``trainer_module/warm_start.py``) and the Transform graph's assets go with it; the
gallery adds keys of its own (``GALLERY_NODE``). Keras' own metadata
(``keras_metadata.pb``) is not kept: the pushed model is served and warm-started through its
signatures and variables, never rebuilt as Keras layers (as ``export_serving_model`` says).
``verify_lookup_model`` then loads the result and checks, on rows given, that
``serving_default`` embeds exactly as the original and that ``lookup`` returns the exact
nearest rows: a re-save that changed the model is refused before anything is pushed.
Written by hand: TensorFlow Recommenders' ``BruteForce`` layer does this for Keras models
being built, not for a SavedModel already trained and blessed, and is not in the stack.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfx_metric_learning.components.gallery_index import spec
from tfx_metric_learning.trainer_module.model import EMBEDDING_KEY

SERVING_SIGNATURE = "serving_default"  # the Trainer's raw-feature signature
EMBEDDING_OUTPUT = EMBEDDING_KEY  # its output
GALLERY_NODE = "gallery"  # the restored object's child holding the gallery's variables
TOLERANCE = 1e-4  # |difference| allowed between re-saved and original outputs


class LookupModelError(ValueError):
    """The re-saved model does not answer as the original (or as exact search) does."""


def nearest(embedding: tf.Tensor, vectors: tf.Tensor, k: int):
    """``tf.math.top_k`` of each embedding's inner products with the gallery's ``vectors``.

    The search the ``lookup`` signature runs: values (similarities) and indices (rows).
    """
    return tf.math.top_k(tf.matmul(embedding, vectors, transpose_b=True), k=k)


def _gallery_module(vectors: np.ndarray, ids: list[str], labels: list[str], threshold):
    module = tf.Module(name=GALLERY_NODE)
    module.vectors = tf.Variable(np.asarray(vectors, np.float32), trainable=False)
    module.ids = tf.Variable(np.asarray(ids, dtype=object), dtype=tf.string, trainable=False)
    module.labels = tf.Variable(np.asarray(labels, dtype=object), dtype=tf.string, trainable=False)
    # no threshold: nothing is ever a match (similarities are cosines, at most 1)
    module.threshold = tf.Variable(
        np.inf if threshold is None else float(threshold), dtype=tf.float32, trainable=False
    )
    return module


def write_lookup_model(
    model_dir: str,
    out_dir: str,
    vectors: np.ndarray,
    ids: list[str],
    labels: list[str],
    threshold: float | None,
    k: int,
) -> None:
    """Saves the model of ``model_dir`` with a ``lookup`` signature to ``out_dir``.

    ``vectors``: the gallery's L2-normalised embeddings, rows in ``ids`` order.
    """
    if len(vectors) != len(ids) or len(ids) != len(labels):
        raise ValueError(
            f"{len(vectors)} gallery vectors, {len(ids)} ids, {len(labels)} labels: one each"
        )
    model = tf.saved_model.load(model_dir)
    if SERVING_SIGNATURE not in model.signatures:
        raise LookupModelError(f"the model in {model_dir} has no {SERVING_SIGNATURE!r} signature")
    serve = model.signatures[SERVING_SIGNATURE]
    names = sorted(serve.structured_input_signature[1])
    gallery = _gallery_module(vectors, ids, labels, threshold)
    setattr(model, GALLERY_NODE, gallery)
    top = min(k, len(ids))

    @tf.function(
        input_signature=[{n: tf.TensorSpec([None], tf.float32, name=n) for n in names}],
        autograph=False,
    )
    def lookup(features):
        embedding = serve(**features)[EMBEDDING_OUTPUT]
        best = nearest(embedding, gallery.vectors, top)
        return {
            spec.LOOKUP_EMBEDDING: embedding,
            spec.LOOKUP_IDS: tf.gather(gallery.ids, best.indices),
            spec.LOOKUP_LABELS: tf.gather(gallery.labels, best.indices),
            spec.LOOKUP_SIMILARITIES: best.values,
            spec.LOOKUP_MATCH: best.values[:, 0] >= gallery.threshold,
        }

    signatures = dict(model.signatures)
    signatures[spec.LOOKUP_SIGNATURE] = lookup.get_concrete_function()
    tf.saved_model.save(model, out_dir, signatures=signatures)


def raw_features(serialized: list[bytes], names: list[str]) -> dict[str, tf.Tensor]:
    """``serving_default``'s inputs from serialized examples (an absent feature is NaN)."""
    spec_ = {n: tf.io.FixedLenFeature([], tf.float32, default_value=np.nan) for n in names}
    return tf.io.parse_example(tf.constant(serialized), spec_)


def verify_lookup_model(
    model_dir: str, out_dir: str, serialized: list[bytes], vectors: np.ndarray
) -> int:
    """Checks the model in ``out_dir`` against the one in ``model_dir`` on ``serialized`` rows.

    ``serving_default`` must embed as the original does, and ``lookup`` must return those
    embeddings and, per row, the similarity of its exact nearest gallery row (``vectors``).
    Raises ``LookupModelError`` naming the difference; returns the rows checked.
    """
    original = tf.saved_model.load(model_dir).signatures[SERVING_SIGNATURE]
    resaved = tf.saved_model.load(out_dir)
    missing = [s for s in (SERVING_SIGNATURE, spec.LOOKUP_SIGNATURE) if s not in resaved.signatures]
    if missing:
        raise LookupModelError(f"the re-saved model {out_dir} lacks signature(s) {missing}")
    inputs = raw_features(serialized, sorted(original.structured_input_signature[1]))
    want = original(**inputs)[EMBEDDING_OUTPUT].numpy()
    got = resaved.signatures[SERVING_SIGNATURE](**inputs)[EMBEDDING_OUTPUT].numpy()
    found = resaved.signatures[spec.LOOKUP_SIGNATURE](**inputs)
    checks = {
        "serving_default's embeddings": np.abs(got - want).max(initial=0.0),
        "lookup's embeddings": np.abs(found[spec.LOOKUP_EMBEDDING].numpy() - want).max(initial=0.0),
        "lookup's nearest similarity": np.abs(
            found[spec.LOOKUP_SIMILARITIES].numpy()[:, 0] - (want @ vectors.T).max(axis=1)
        ).max(initial=0.0),
    }
    wrong = {name: float(d) for name, d in checks.items() if not d <= TOLERANCE}
    if wrong:
        raise LookupModelError(
            f"the model re-saved with a lookup signature ({out_dir}) differs from "
            f"{model_dir} on {len(want)} rows: "
            + "; ".join(f"{n} by up to {d:.3g}" for n, d in wrong.items())
        )
    return len(want)
