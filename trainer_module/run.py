"""The Trainer's ``run_fn``: input pipeline, MirroredStrategy training, and export.

The exported SavedModel holds the Transform graph, so every signature takes raw features.
Missing and non-finite inputs (NaN, +-inf, an absent feature) are imputed with the training
mean, and huge ones are clipped (``preprocessing``): every row gets a unit embedding.

- ``serving_default``: one float32 ``[N]`` tensor per raw feature (NaN = missing) ->
  ``{"embedding": [N, D]}``, L2-normalised;
- ``serve_examples``: serialized tf.Examples -> ``{"embedding"}`` (batch inference); a
  feature absent from an example is missing, as NaN is for ``serving_default``;
- ``transform_features``: serialized tf.Examples -> Transform's outputs, as TFX examples do.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tf_keras.src.distribute import distributed_file_utils
from tfx.components.trainer import fn_args_utils
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from tfx_metric_learning.trainer_module import (
    keys,
    pair_gen_build,
    preprocessing,
    resume,
    selection,
    tuning_space,
)
from tfx_metric_learning.trainer_module import model as model_lib
from tfx_metric_learning.trainer_module import spec as trainer_spec
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.settings import TrainingSettings
from tfx_metric_learning.trainer_module.splits import VALID as VALID_SPLIT

LABEL_HASH_BUCKETS = 2**62
READ_BATCH = 4096  # rows per batch when a split is read into memory


def workers_in(tf_config: str | None) -> int:
    """Number of workers (chief included) that a ``TF_CONFIG`` JSON names."""
    if not tf_config:
        return 1
    cluster = json.loads(tf_config).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy() -> tf.distribute.Strategy:
    """The distribution strategy for this process.

    MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers (Kubeflow training
    operator, Vertex custom job); otherwise MirroredStrategy over every GPU, else every
    logical CPU device, when there are several; with one device, TensorFlow's default
    strategy (no replica machinery: MirroredStrategy over one device cost about 20% of the
    training step, ``benchmarks/trainer_throughput.py``). The losses' global-batch gathering
    works the same in all of them (one replica gathers nothing).
    """
    if workers_in(os.environ.get("TF_CONFIG")) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = local_devices()
    if len(devices) == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the training's outputs (export, summary, state clean-up).

    With several workers (``MultiWorkerMirroredStrategy``) only the chief does: the task of
    type ``chief``, else worker 0 (TensorFlow's ``should_checkpoint``); every other strategy
    runs in one process, which is the chief.
    """
    return bool(strategy.extended.should_checkpoint)


def local_devices() -> list[str]:
    """The devices this process trains on: every logical GPU, else every logical CPU device."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]


def describe_strategy(strategy: tf.distribute.Strategy) -> tuple[str, list[str]]:
    """``(name, devices)`` of ``strategy`` for the summary; the default strategy is ``"none"``."""
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "none", local_devices()[:1]
    return type(strategy).__name__, list(strategy.extended.worker_devices)


def label_key(labels: tf.Tensor) -> tf.Tensor:
    """An int64 id per label string, equal iff the strings are equal (up to a 2^-62 collision).

    Online mining only compares labels, so classes never seen in training keep their identity.
    """
    return tf.strings.to_hash_bucket_fast(tf.reshape(labels, [-1]), LABEL_HASH_BUCKETS)


def built_by_pair_gen(schema_path: str) -> dict[str, Any]:
    """PairGen's build record (mode, K, P x K, split counts) from the schema it handed us."""
    return pair_gen_build.read(load_schema(schema_path), schema_path)


class PairGenMismatchError(ValueError):
    """PairGen built data for another loss than the one the Trainer is asked to train."""


def check_pair_gen(training: TrainingSettings, built: dict[str, Any]) -> None:
    """Stops before training when PairGen's output is not what the loss consumes.

    ``built`` is PairGen's statistics (its ``mode`` and shape). They disagree when the
    training settings changed without PairGen following them (e.g. a stale cached PairGen).
    """
    spec = training.loss_spec
    want = training.pair_gen_mode
    got = built.get("mode")
    if got != want:
        raise PairGenMismatchError(
            f"loss {training.loss!r} consumes {spec.input_mode} input, which PairGen builds in "
            f"mode {want!r}, but PairGen built mode {got!r}; re-run PairGen with these "
            f"training settings (on Kubeflow, PairGen follows the training runtime parameter)"
        )
    if want == "triplets_k" and built.get("num_negatives") != training.num_negatives:
        raise PairGenMismatchError(
            f"loss {training.loss!r} takes num_negatives={training.num_negatives}, but PairGen "
            f"built {built.get('num_negatives')} negatives per anchor"
        )
    if want == "pk_batches" and (built.get("pk_classes"), built.get("pk_examples")) != (
        training.pk_classes,
        training.pk_examples,
    ):
        raise PairGenMismatchError(
            f"batch_size {training.batch_size} with pk_classes {training.pk_classes} needs "
            f"{training.pk_classes} x {training.pk_examples} groups, but PairGen built "
            f"{built.get('pk_classes')} x {built.get('pk_examples')}"
        )


def _to_model_inputs(spec: registry.LossSpec):
    mode = spec.input_mode
    if mode in keys.VECTOR_KEYS:
        vectors = keys.VECTOR_KEYS[mode]

        def offline(batch):
            inputs = {k: batch[k] for k in vectors}
            if mode == "pairs":
                return inputs, tf.reshape(batch[keys.SIMILAR], [-1])
            return inputs, tf.zeros_like(batch[vectors[0]][:, 0])

        return offline
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        return lambda batch: (
            batch[keys.FEATURES],
            tf.reshape(batch[keys.LABEL_ID], [-1]),
        )
    return lambda batch: (
        batch[keys.FEATURES],
        label_key(batch[keys.LABEL]),
    )


def make_dataset(
    file_pattern: list[str],
    data_accessor: fn_args_utils.DataAccessor,
    schema: Any,
    spec: registry.LossSpec,
    batch_size: int,
    seed: int,
    in_order: bool = False,
    rows: int = 0,
    memory_budget: int = 0,
) -> tf.data.Dataset:
    """Repeated, fixed-size batches ``(inputs, labels)`` for the loss ``spec``.

    Shuffled, unless ``in_order``: then the rows are read as written, so that each batch is
    one of PairGen's P x K groups (``batch_size`` = P x K). Rows of a class the label
    vocabulary has never seen are dropped for losses that take class ids.

    When the split's ``rows`` take at most ``memory_budget`` bytes as model inputs, they are
    read and parsed once into memory and batched from there (``in_memory_batches``: a seeded
    permutation per pass over the rows); otherwise they stream from the files through TFX's
    ``DataAccessor`` (tfxio reads, a seeded shuffle buffer, parsing every epoch). Both
    streams are reproducible for a seed, but they differ from each other.
    """
    to_inputs = _to_model_inputs(spec)
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            shuffle=not in_order,
            sloppy_ordering=False,
            shuffle_seed=seed,
            num_epochs=None,
            drop_final_batch=True,
        ),
        schema,
    )
    streamed = dataset.map(to_inputs)
    if rows and rows * row_bytes(streamed.element_spec) <= memory_budget:
        columns = read_into_memory(file_pattern, data_accessor, schema, spec)
        kept = int(tf.nest.flatten(columns)[0].shape[0])
        if kept < batch_size:
            raise ValueError(
                f"the train split has {kept} rows {spec.name!r} can train on (of classes in the "
                f"label vocabulary), fewer than one batch of {batch_size}"
            )
        return in_memory_batches(columns, batch_size, seed, shuffle=not in_order)
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        # rows of classes the label vocabulary has never seen have no class id
        dataset = (
            dataset.unbatch()
            .filter(lambda row: tf.reduce_all(row[keys.LABEL_ID] >= 0))
            .batch(batch_size, drop_remainder=True)
        )
    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def row_bytes(element_spec: Any) -> float:
    """Bytes one row takes in batches of ``element_spec``; inf when a shape is not fixed.

    Each tensor's shape after the batch dimension times its dtype's size, summed.
    """
    specs = tf.nest.flatten(element_spec)
    if not all(s.shape[1:].is_fully_defined() for s in specs):
        return math.inf
    return sum(int(np.prod(s.shape[1:])) * s.dtype.size for s in specs)


def read_into_memory(
    file_pattern: list[str],
    data_accessor: fn_args_utils.DataAccessor,
    schema: Any,
    spec: registry.LossSpec,
) -> Any:
    """Every row of the split as the loss's ``(inputs, labels)``, one tensor per input.

    One pass through TFX's ``DataAccessor`` in the files' order, ``READ_BATCH`` rows at a
    time; rows without a class id are dropped for losses that take class ids.
    """
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=READ_BATCH,
            shuffle=False,
            sloppy_ordering=False,
            num_epochs=1,
            drop_final_batch=False,
        ),
        schema,
    )
    parts = list(dataset.map(_to_model_inputs(spec), num_parallel_calls=tf.data.AUTOTUNE))
    columns = tf.nest.map_structure(lambda *p: tf.concat(p, axis=0), *parts)
    if spec.needs_num_classes:  # vocabulary ids (heads, proxies), not label keys
        known = columns[1] >= 0
        columns = tf.nest.map_structure(lambda c: tf.boolean_mask(c, known), columns)
    return columns


def in_memory_batches(columns: Any, batch_size: int, seed: int, shuffle: bool) -> tf.data.Dataset:
    """Batches of the in-memory rows ``columns`` (tensors of equal first dimension N), forever.

    Pass ``p`` over the rows takes them in the order of a permutation drawn with the
    stateless seed ``(seed, p)`` (``in order`` when not ``shuffle``), cut into ``N //
    batch_size`` batches; the last ``N mod batch_size`` rows of each permutation wait for
    the next pass. Each batch is one ``tf.gather`` per tensor, as Keras batches numpy
    arrays, so nothing is parsed after the read and the stream is the same on every run of
    a seed (a resumed training skips batches of it).
    """
    n = int(tf.nest.flatten(columns)[0].shape[0])
    steps = n // batch_size

    def one_pass(p: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(seed, tf.int64), p])
            )
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: steps * batch_size], [steps, batch_size])
        )

    return (
        tf.data.Dataset.counter()
        .flat_map(one_pass)
        .map(
            lambda rows: tf.nest.map_structure(lambda c: tf.gather(c, rows), columns),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def memory_budget(training: TrainingSettings) -> int:
    """Bytes the train split may take in memory (``in_memory_mb``); 0 across several workers.

    Each worker of a MultiWorkerMirroredStrategy cluster streams its shard of the files
    instead: a copy of the whole split per worker is what the budget is not meant to buy.
    """
    if workers_in(os.environ.get("TF_CONFIG")) > 1:
        return 0
    return training.in_memory_mb * 2**20


def shard_across_workers(dataset: tf.data.Dataset, file_patterns: list[str]) -> tf.data.Dataset:
    """``dataset`` with the sharding several workers can do on ``file_patterns``' files.

    MultiWorkerMirroredStrategy shards a file-based dataset by file, and fails when there are
    fewer files than workers ("Could not apply FILE based sharding"); a small split written as
    one file is then sharded by element (each worker reads every file and keeps its share of
    the batches). With one worker nothing changes.
    """
    workers = workers_in(os.environ.get("TF_CONFIG"))
    if workers < 2:
        return dataset
    files = sum(len(tf.io.gfile.glob(pattern)) for pattern in file_patterns)
    if files >= workers:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    logging.info("%d train file(s) for %d workers: sharded by element", files, workers)
    return dataset.with_options(options)


def missing_as_nan(raw_spec: dict[str, Any]) -> dict[str, Any]:
    """The raw feature spec with NaN as the default of every fixed-length float feature.

    An example without the feature then parses as missing (NaN) instead of failing, which is
    what ``serving_default`` means by NaN.
    """
    out = dict(raw_spec)
    for name, spec in raw_spec.items():
        if isinstance(spec, tf.io.FixedLenFeature) and spec.dtype == tf.float32:
            size = int(np.prod(spec.shape)) if spec.shape else 0
            default = [math.nan] * size if spec.shape else math.nan
            out[name] = tf.io.FixedLenFeature(spec.shape, spec.dtype, default_value=default)
    return out


def export_serving_model(
    encoder: tf.keras.Model,
    tft_output: tft.TFTransformOutput,
    export_dir: str,
) -> None:
    """Saves ``encoder`` with the Transform graph and the three raw-feature signatures.

    The signatures are traced without AutoGraph (they hold no Python control flow on
    tensors) and Keras' per-layer call traces are not saved (``save_traces=False``): the
    model is served and warm-started through its signatures and variables, never rebuilt
    as Keras layers, and the traces took most of the export's time (8 s of 9 on the demo).
    """
    encoder.tft_layer = tft_output.transform_features_layer()
    raw_spec = missing_as_nan(tft_output.raw_feature_spec())
    feature_spec = dict(raw_spec)
    feature_spec.pop(preprocessing.raw_label_column(raw_spec))
    names = sorted(feature_spec)

    def embed(raw_features):
        transformed = encoder.tft_layer(raw_features)
        return {model_lib.EMBEDDING_KEY: encoder(transformed[keys.FEATURES])}

    def reshape_for(name: str, column: tf.Tensor) -> tf.Tensor:
        shape = feature_spec[name].shape
        return tf.reshape(column, [-1, *shape]) if shape else tf.reshape(column, [-1])

    @tf.function(
        input_signature=[{n: tf.TensorSpec([None], tf.float32, name=n) for n in names}],
        autograph=False,
    )
    def serve_raw(features):
        return embed({n: reshape_for(n, features[n]) for n in names})

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def serve_examples(serialized):
        return embed(tf.io.parse_example(serialized, feature_spec))

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def transform_features(serialized):
        return encoder.tft_layer(tf.io.parse_example(serialized, raw_spec))

    encoder.save(
        export_dir,
        save_format="tf",
        save_traces=False,
        signatures={
            "serving_default": serve_raw.get_concrete_function(),
            "serve_examples": serve_examples.get_concrete_function(),
            "transform_features": transform_features.get_concrete_function(),
        },
    )


class NonFiniteModelError(FloatingPointError):
    """Training produced weights or embeddings that are not finite; nothing is exported."""


def non_finite_variables(model: tf.keras.Model) -> list[str]:
    """Names of ``model``'s variables holding NaN or inf."""
    return [
        v.name for v in model.variables if not bool(tf.reduce_all(tf.math.is_finite(v)).numpy())
    ]


class StopOnNonFiniteWeights(tf.keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose weights hold NaN or inf.

    Keras' ``TerminateOnNaN`` watches the logged loss only; a mining loss can stay finite
    while the weights are NaN (NaN distances mask every pair out), so the weights are
    checked themselves. ``bad`` names the epoch and the variables.
    """

    def __init__(self):
        super().__init__()
        self.bad: str = ""

    def on_epoch_end(self, epoch, logs=None):
        names = non_finite_variables(self.model)
        if names:
            self.bad = f"after epoch {epoch + 1}, {len(names)} variable(s) ({names[0]}, ...)"
            self.model.stop_training = True


def _first_features(inputs) -> tf.Tensor:
    """A ``[B, F]`` feature batch from a batch's model inputs (any input mode)."""
    if not isinstance(inputs, dict):
        return inputs
    for key in (keys.ANCHOR, keys.LEFT):
        if key in inputs:
            return inputs[key]
    raise KeyError(f"no feature batch among the inputs {sorted(inputs)}")


def check_finite_model(encoder: tf.keras.Model, features: tf.Tensor, what: str) -> None:
    """Refuses an encoder with non-finite weights, or non-finite or non-unit embeddings.

    ``features``: a batch of transformed training features. ``what`` names the training in
    the error (loss, learning rate).
    """
    names = non_finite_variables(encoder)
    if names:
        raise NonFiniteModelError(
            f"{what}: the trained weights are not finite ({len(names)} variable(s), e.g. "
            f"{names[0]}); nothing was exported: lower --learning-rate"
        )
    emb = encoder(features, training=False).numpy()
    norms = np.linalg.norm(emb, axis=1)
    if not np.isfinite(emb).all() or not np.allclose(norms, 1.0, atol=1e-3):
        raise NonFiniteModelError(
            f"{what}: the trained encoder gives {int((~np.isfinite(emb).all(axis=1)).sum())} "
            f"non-finite and {int((np.abs(norms - 1) > 1e-3).sum())} non-unit embeddings of "
            f"{len(emb)} training rows; nothing was exported"
        )


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


# custom_config keys of TFX's google_cloud_ai_platform Trainer extension (its job's arguments,
# region, labels ...: tfx.extensions.google_cloud_ai_platform), which runs this run_fn with
# them in place when the training is a Vertex AI custom job (kubeflow/distributed.py)
EXTENSION_PREFIX = "ai_platform_"


def training_config(custom_config: dict[str, Any] | None) -> dict[str, Any]:
    """The training settings in the Trainer's ``custom_config``: all but the extension's keys."""
    return {k: v for k, v in (custom_config or {}).items() if not k.startswith(EXTENSION_PREFIX)}


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


def feature_dim(tft_output: tft.TFTransformOutput) -> int:
    """F, the width of the transformed feature vector the encoder reads."""
    return int(tft_output.transformed_feature_spec()[keys.FEATURES].shape[0])


def training_length(training: TrainingSettings, train_examples: int) -> tuple[int, int]:
    """``(epochs, steps per epoch)``: every full batch per epoch, ``train_steps`` a hard cap.

    A cap below ``epochs`` x steps is one "epoch" of exactly ``train_steps`` steps.
    """
    steps_per_epoch = train_examples // training.batch_size
    epochs, cap = training.epochs, training.train_steps
    if cap and cap < epochs * steps_per_epoch:
        return 1, cap
    return epochs, steps_per_epoch


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
    """Trains the embedding model with the configured loss and exports it.

    ``fn_args.custom_config`` holds every ``TrainingSettings`` field (on Kubeflow it is the
    ``training`` runtime parameter); a missing, unknown or bad setting stops here, before any
    data is read, and so does a PairGen output built for another loss. With ``warm_start``
    and a ``base_model`` (the production model, ``components/production``; it holds no model
    on the first run, which then starts cold) the encoder starts from its weights; a Trainer
    killed mid-way resumes (``resume``). With several workers (``TF_CONFIG``) only the chief
    exports, writes the summary and removes the resumable state. The training length is
    the settings' ``epochs`` and ``train_steps``, not TFX's ``train_args``. When PairGen's
    output has a ``valid`` split (the pipeline then makes it the Trainer's eval split,
    ``fn_args.eval_files``), the epoch with the best validation MAP@R is exported, epoch 0
    (before training) included (``selection``); without one, the last epoch. The eval split
    itself is never read here: it is the evaluator's test data. With ``fn_args.hyperparameters``
    (a Tuner's best trial, ``trainer_module/tuning.py``) their values replace the learning
    rate and loss parameters (``tuning_space.apply``), and the summary records them.
    """
    started = time.time()
    training = TrainingSettings.from_dict(
        training_config(fn_args.custom_config),
        complete=True,
        source="the Trainer's custom_config",
    )
    tuned = (fn_args.hyperparameters or {}).get("values") or {}
    if tuned:  # the Tuner's best trial (trainer_module/tuning.py)
        training = tuning_space.apply(training, tuned)
        logging.info("tuned: %s", tuned)
    spec = training.loss_spec
    params = training.full_loss_params()
    stats = built_by_pair_gen(fn_args.schema_path)
    check_pair_gen(training, stats)
    seed = training.seed
    tf.keras.utils.set_random_seed(seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    num_classes = tft_output.vocabulary_size_by_name(preprocessing.LABEL_VOCAB)
    schema = load_schema(fn_args.schema_path)

    strategy = make_strategy()
    strategy_name, devices = describe_strategy(strategy)
    replicas = strategy.num_replicas_in_sync
    batch_size = training.batch_size
    if batch_size % replicas:
        raise ValueError(f"batch_size {batch_size} is not divisible by {replicas} replicas")
    counts = stats["splits"]
    n_train = counts["train"]["examples"]
    if n_train < batch_size:
        raise ValueError(
            f"the train split has {n_train} examples, fewer than one batch of {batch_size}"
        )
    epochs, steps_per_epoch = training_length(training, n_train)

    train_ds = make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        schema,
        spec,
        batch_size,
        seed,
        in_order=training.batch_sampler == "pk",
        rows=n_train,
        memory_budget=memory_budget(training),
    )
    train_ds = shard_across_workers(train_ds, fn_args.train_files)
    validation = None  # (features, labels) of the valid split, when there is one
    if VALID_SPLIT in counts:
        validation = selection.read_rows(fn_args.eval_files, seed)
        if not selection.usable(validation[1]):
            raise ValueError(
                f"the validation split ({fn_args.eval_files}) has {len(validation[1])} rows of "
                f"{len(set(validation[1]))} class(es); selecting an epoch needs 2 classes, one "
                f"with 2 rows"
            )
    else:
        logging.info("no validation split: training every epoch and keeping the last")

    with strategy.scope():
        encoder, trainer = model_lib.build_trainer(training, feature_dim(tft_output), num_classes)
        best = selection.BestEpoch(encoder) if validation is not None else None
        started_from = base_model_dir(fn_args.base_model) if training.warm_start else None
        if started_from:
            warm_start(encoder, started_from)
            logging.info("warm start: the encoder starts from %s", started_from)
        state = None
        if training.checkpoint_dir:
            inputs = [*fn_args.train_files, *fn_args.eval_files, fn_args.transform_output]
            inputs.append(f"base_model={started_from or ''}")
            folder = resume.state_dir(training.checkpoint_dir, training.to_dict(), inputs)
            state = resume.EpochState(folder, trainer, best=best, strategy=strategy)
        resumed = min(state.restore(), epochs) if state else 0
    if resumed:  # the batches of the epochs done are skipped: the same stream as unkilled
        train_ds = train_ds.skip(resumed * steps_per_epoch)
    logging.info(
        "training %s (%s) on %d examples: %d replicas (%s), global batch %d, %d epochs x %d steps",
        spec.name,
        params,
        n_train,
        replicas,
        f"{strategy_name}: {', '.join(devices)}",
        batch_size,
        epochs,
        steps_per_epoch,
    )
    weights_guard = StopOnNonFiniteWeights()
    saving = [resume.SaveEachEpoch(state, epochs)] if state else []
    selecting = (
        [selection.KeepBestEpoch(encoder, *validation, best, start_epoch=resumed)]
        if validation is not None
        else []
    )
    history = trainer.fit(
        train_ds,
        epochs=epochs,
        initial_epoch=resumed,
        steps_per_epoch=steps_per_epoch,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.TerminateOnNaN(),
            weights_guard,
            *selecting,  # before saving: the saved state holds this epoch's offer
            *saving,
            # writes from the chief only (a non-chief into a temporary folder it removes)
            tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
            tf.keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: logging.info(
                    "epoch %d/%d: %s",
                    epoch + 1,
                    epochs,
                    ", ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items()),
                )
            ),
        ],
    )
    what = f"training {spec.name} at learning rate {training.learning_rate}"
    losses = [float(v) for v in history.history.get("loss", [])]
    if not all(math.isfinite(v) for v in losses):
        raise NonFiniteModelError(
            f"{what}: the loss is not finite ({losses}); nothing was exported: lower "
            f"--learning-rate"
        )
    if weights_guard.bad:
        raise NonFiniteModelError(
            f"{what}: weights became non-finite {weights_guard.bad}; nothing was exported: "
            f"lower --learning-rate"
        )
    sample = next(iter(train_ds.take(1)))[0]
    check_finite_model(encoder, _first_features(sample), what)

    chief = is_chief(strategy)
    # every worker saves (saving may need all of them), a non-chief to a temporary folder
    # that is removed again (tf_keras' distributed_file_utils, as Keras' own callbacks do)
    export_dir = distributed_file_utils.write_dirpath(fn_args.serving_model_dir, strategy)
    export_serving_model(encoder, tft_output, export_dir)
    distributed_file_utils.remove_temp_dirpath(fn_args.serving_model_dir, strategy)
    if state and chief:
        state.delete()
        stale = resume.remove_stale(training.checkpoint_dir, time.time(), keep=state.directory)
        if stale:
            logging.info("removed resumable state left by other trainings: %s", stale)
    if not chief:
        logging.info("not the chief: the export, summary and state clean-up are the chief's")
        return
    summary = {
        "loss": spec.name,
        "loss_params": params,
        "pair_gen_mode": stats["mode"],
        "strategy": strategy_name,
        "num_replicas": replicas,
        "devices": devices,
        "global_batch_size": batch_size,
        "per_replica_batch_size": batch_size // replicas,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": epochs * steps_per_epoch,
        "resumed_after_epoch": resumed,
        "warm_start_asked": training.warm_start,
        "warm_started_from": started_from,
        "train_examples": n_train,
        "num_classes": num_classes,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "selection": (
            {
                "split": VALID_SPLIT,
                "metric": selection.METRIC,
                "validation_rows": len(validation[1]),
                "kept_epoch": int(best.epoch.numpy()),
                "value": float(best.value.numpy()),
                "before_training": selecting[0].before_training,
            }
            if best is not None
            else {"kept_epoch": epochs, "split": None}
        ),
        "tuned": tuned or None,
        "learning_rate": training.learning_rate,
        "seconds": round(time.time() - started, 2),
    }
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(
        os.path.join(fn_args.model_run_dir, trainer_spec.SUMMARY_FILE), "w"
    ) as f:
        json.dump(summary, f, indent=2)
    logging.info("training summary: %s", json.dumps(summary))


def load_schema(path: str) -> schema_pb2.Schema:
    """The schema proto in the text file ``path`` (PairGen's output schema)."""
    return io_utils.parse_pbtxt_file(path, schema_pb2.Schema())
