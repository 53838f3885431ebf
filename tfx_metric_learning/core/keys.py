"""Feature keys shared by Transform, PairGen, the Trainer and the evaluator: declared once here.

Transform writes one row per input row: ``FEATURES`` (the scaled float vector), ``LABEL``
(the label string) and ``LABEL_ID`` (its vocabulary id, -1 out of vocabulary).

PairGen writes, per mode, the vectors ``VECTOR_KEYS[mode]`` (each of ``FEATURES``' width;
``NEGATIVES`` is ``[K, width]``), ``SIMILAR`` (pairs only, int64, 1 = similar) and the labels
``LABEL_KEYS[mode]`` (bytes; for reading the data, the Trainer does not use them). Modes
``none`` and ``pk_batches`` pass Transform's rows through. The Trainer's model takes the
vectors of its loss's mode by the same keys.
"""

FEATURES = "features"
LABEL = "label"
LABEL_ID = "label_id"

ANCHOR = "anchor"
POSITIVE = "positive"
NEGATIVE = "negative"
NEGATIVES = "negatives"
LEFT = "left"
RIGHT = "right"
SIMILAR = "similar"
ANCHOR_LABEL = "anchor_label"
NEGATIVE_LABEL = "negative_label"
LEFT_LABEL = "left_label"
RIGHT_LABEL = "right_label"

VECTOR_KEYS = {
    "triplets": (ANCHOR, POSITIVE, NEGATIVE),
    "triplets_k": (ANCHOR, POSITIVE, NEGATIVES),
    "pairs": (LEFT, RIGHT),
}
# Labels of the tuple's first and (where it has one) last member.
LABEL_KEYS = {
    "triplets": (ANCHOR_LABEL, NEGATIVE_LABEL),
    "triplets_k": (ANCHOR_LABEL,),
    "pairs": (LEFT_LABEL, RIGHT_LABEL),
}
