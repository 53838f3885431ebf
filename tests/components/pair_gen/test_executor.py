import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from tests.transform_helpers import analyze_and_transform, write_splits
from tfx_metric_learning.components.pair_gen import executor, spec
from tfx_metric_learning.components.pair_gen.settings import PairSettings
from tfx_metric_learning.core import records as tfrecords
from tfx_metric_learning.pipeline import beam_policy
from tfx_metric_learning.trainer_module import pair_gen_build


def _transformed(tmp_path, labels_by_split):
    """Transform output for rows whose features encode their own index (to trace them)."""
    rows, i = {}, 0
    for split, labels in labels_by_split.items():
        rows[split] = []
        for lab in labels:
            rows[split].append({"a": float(i), "b": float(i * i % 7), "label": lab})
            i += 1
    graph = str(tmp_path / "transform_graph")
    all_rows = [r for split_rows in rows.values() for r in split_rows]
    out = analyze_and_transform(all_rows, ["a", "b"], graph)
    examples_dir = str(tmp_path / "transformed")
    i = 0
    by_split = {}
    for split, split_rows in rows.items():
        by_split[split] = out[i : i + len(split_rows)]
        i += len(split_rows)
    write_splits(examples_dir, by_split)
    return examples_dir, graph


def run_pair_gen(tmp_path, examples_dir, graph, out_name="out", beam_args=None, **props):
    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    examples.split_names = artifact_utils.encode_split_names(
        sorted(d[len("Split-") :] for d in os.listdir(examples_dir))
    )
    transform_graph = standard_artifacts.TransformGraph()
    transform_graph.uri = graph
    out_examples = standard_artifacts.Examples()
    out_examples.uri = str(tmp_path / out_name / "examples")
    out_schema = standard_artifacts.Schema()
    out_schema.uri = str(tmp_path / out_name / "schema")
    settings = PairSettings(**({"mode": "triplets", "triplets_per_anchor": 2, "seed": 7} | props))
    args = beam_policy.with_local_dependency(beam_args or ["--runner=DirectRunner"])
    context = executor.Executor.Context(beam_pipeline_args=args)
    executor.Executor(context).Do(
        {"transformed_examples": [examples], "transform_graph": [transform_graph]},
        {"examples": [out_examples], "schema": [out_schema]},
        {spec.SETTINGS_KEY: settings.to_json()},
    )
    return out_examples.uri, out_schema.uri


def _read(uri, split):
    folder = os.path.join(uri, f"Split-{split}")
    out = []
    for name in sorted(os.listdir(folder)):
        for rec in tf.data.TFRecordDataset(os.path.join(folder, name), "GZIP"):
            out.append(tf.train.Example.FromString(rec.numpy()))
    return out


def _vec(example, key):
    return tuple(np.round(example.features.feature[key].float_list.value, 5))


def _labels_by_vector(examples_dir, *splits):
    """Each transformed vector's label (vectors are unique by construction)."""
    return {
        _vec(e, "features"): e.features.feature["label"].bytes_list.value[0]
        for split in splits
        for e in _read(examples_dir, split)
    }


def test_triplets_respect_labels_and_counts(tmp_path):
    labels = {"train": ["a"] * 5 + ["b"] * 4 + ["c"] * 3, "eval": ["d"] * 3 + ["e"] * 3}
    examples_dir, graph = _transformed(tmp_path, labels)
    uri, schema_uri = run_pair_gen(tmp_path, examples_dir, graph)
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))
    assert stats["splits"]["train"]["examples"] == 12 * 2
    assert stats["splits"]["eval"]["examples"] == 6 * 2
    schema_path = os.path.join(schema_uri, spec.SCHEMA_FILE)
    schema = io_utils.parse_pbtxt_file(schema_path, schema_pb2.Schema())
    built = pair_gen_build.read(schema, schema_path)  # what the Trainer reads
    assert built["mode"] == "triplets" and built["splits"]["train"]["examples"] == 24
    assert built["splits"]["eval"]["rows"] == stats["splits"]["eval"]["rows"] == 6
    assert [f.name for f in schema.feature][:3] == ["anchor", "positive", "negative"]

    source = _labels_by_vector(examples_dir, "train", "eval")
    triplets = _read(uri, "train")
    assert len(triplets) == 24
    for t in triplets:
        a, p, n = (_vec(t, k) for k in ("anchor", "positive", "negative"))
        assert a != p, "an anchor is never its own positive"
        assert source[a] == source[p] == t.features.feature["anchor_label"].bytes_list.value[0]
        assert source[n] != source[a]
        assert source[n] == t.features.feature["negative_label"].bytes_list.value[0]


def _file_bytes(uri):
    out = {}
    for root, _, files in os.walk(uri):
        for name in files:
            if name.endswith(".gz"):
                with open(os.path.join(root, name), "rb") as f:
                    out[os.path.relpath(os.path.join(root, name), uri)] = f.read()
    return out


@pytest.mark.parametrize("mode", ["triplets", "pairs", "triplets_k", "pk_batches", "none"])
def test_same_seed_gives_identical_files_other_seed_differs(tmp_path, mode):
    examples_dir, graph = _transformed(
        tmp_path, {"train": ["a", "b", "c"] * 8, "eval": ["a", "b"] * 3}
    )
    props = {"mode": mode, "num_negatives": 2, "pk_classes": 2, "pk_examples": 3}

    def files(name, seed):
        uri, _ = run_pair_gen(tmp_path, examples_dir, graph, out_name=name, seed=seed, **props)
        return _file_bytes(uri)

    first, again, other = files("r1", 7), files("r2", 7), files("r3", 8)
    assert first and first == again
    if mode != "none":  # pass-through content does not depend on the seed
        assert first != other


def test_pk_batches_hold_p_classes_with_k_rows_each(tmp_path):
    labels = ["a"] * 6 + ["b"] * 5 + ["c"] * 7 + ["d"] * 2 + ["e"] * 4
    examples_dir, graph = _transformed(tmp_path, {"train": labels, "eval": ["a", "b"] * 2})
    uri, _ = run_pair_gen(
        tmp_path,
        examples_dir,
        graph,
        mode="pk_batches",
        pk_classes=3,
        pk_examples=4,
        pk_num_batches=5,
    )
    rows = _read(uri, "train")
    assert len(rows) == 5 * 12
    for b in range(5):
        batch = [
            r.features.feature["label"].bytes_list.value[0] for r in rows[b * 12 : (b + 1) * 12]
        ]
        counts = {label: batch.count(label) for label in set(batch)}
        assert len(counts) == 3 and set(counts.values()) == {4}, counts
        assert b"d" not in counts  # fewer than K rows: never drawn
        # the K rows of a class are distinct rows
        feats = [
            tuple(r.features.feature["features"].float_list.value)
            for r in rows[b * 12 : (b + 1) * 12]
        ]
        assert len(set(feats)) == 12
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]
    assert stats["train"]["batches"] == 5 and stats["eval"]["examples"] == 4


def test_pk_batches_too_few_classes_is_a_clear_error(tmp_path):
    examples_dir, graph = _transformed(
        tmp_path, {"train": ["a"] * 4 + ["b"] * 2, "eval": ["a", "b"]}
    )
    with pytest.raises(Exception, match="needs 2 classes with at least 3 rows"):
        run_pair_gen(tmp_path, examples_dir, graph, mode="pk_batches", pk_classes=2, pk_examples=3)


def test_singleton_class_is_skipped_as_anchor_and_counted(tmp_path):
    examples_dir, graph = _transformed(
        tmp_path, {"train": ["a"] * 4 + ["b"] * 4 + ["lonely"], "eval": ["a", "a", "b", "b"]}
    )
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph)
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]["train"]
    assert stats["skipped_anchors"] == 1 and stats["skipped_classes"] == ["lonely"]
    assert stats["examples"] == 8 * 2


def test_single_class_split_fails_naming_the_split(tmp_path):
    examples_dir, graph = _transformed(tmp_path, {"train": ["a", "b"] * 4, "eval": ["a"] * 4})
    with pytest.raises(executor.PairGenError, match="split 'eval' has 1 class"):
        run_pair_gen(tmp_path, examples_dir, graph)


def test_none_mode_passes_rows_through(tmp_path):
    examples_dir, graph = _transformed(tmp_path, {"train": ["a", "b"] * 4, "eval": ["a", "b"]})
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph, mode="none")
    for split in ("train", "eval"):
        assert sorted(e.SerializeToString() for e in _read(uri, split)) == sorted(
            e.SerializeToString() for e in _read(examples_dir, split)
        )


def test_none_mode_copies_gzipped_files_and_rewrites_plain_ones(tmp_path):
    examples_dir, graph = _transformed(tmp_path, {"train": ["a", "b"] * 4, "eval": ["a", "b"]})
    plain_dir = os.path.join(examples_dir, "Split-eval")
    for name in os.listdir(plain_dir):  # the eval split as uncompressed files
        path = os.path.join(plain_dir, name)
        records = [r.numpy() for r in tf.data.TFRecordDataset(path, "GZIP")]
        os.remove(path)
        with tf.io.TFRecordWriter(path.removesuffix(".gz")) as w:
            for r in records:
                w.write(r)
    train_dir = os.path.join(examples_dir, "Split-train")
    for name in os.listdir(train_dir):  # gzipped at level 1: writing the records again differs
        path = os.path.join(train_dir, name)
        records = [r.numpy() for r in tf.data.TFRecordDataset(path, "GZIP")]
        with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions("GZIP", compression_level=1)) as w:
            for r in records:
                w.write(r)
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph, mode="none")

    def files(folder):
        return sorted(os.path.join(folder, n) for n in os.listdir(folder))

    copied = files(os.path.join(uri, "Split-train"))
    sources = files(os.path.join(examples_dir, "Split-train"))
    assert [open(f, "rb").read() for f in copied] == [open(f, "rb").read() for f in sources]
    assert all(f.endswith(".gz") for f in files(os.path.join(uri, "Split-eval")))
    assert sorted(e.SerializeToString() for e in _read(uri, "eval")) == sorted(
        r for f in files(plain_dir) for r in tfrecords.iter_records(f)
    )


@pytest.mark.parametrize("block_rows", [1, 4, 1000])
def test_positives_and_negatives_cover_whole_classes_uniformly(tmp_path, block_rows):
    """Exact sampling: every other row of the class is a positive, equally often (chi-square)."""
    labels = {"train": ["a"] * 9 + ["b"] * 6 + ["c"] * 5, "eval": ["a", "b"] * 2}
    examples_dir, graph = _transformed(tmp_path, labels)
    per_anchor = 300
    uri, _ = run_pair_gen(
        tmp_path, examples_dir, graph, triplets_per_anchor=per_anchor, block_rows=block_rows
    )
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]["train"]
    assert stats["blocks"] == -(-20 // block_rows)
    source = _labels_by_vector(examples_dir, "train")
    positives, negatives = {}, {}
    for t in _read(uri, "train"):
        a, p, n = (_vec(t, k) for k in ("anchor", "positive", "negative"))
        assert a != p and source[a] == source[p] != source[n]
        positives.setdefault(a, []).append(p)
        negatives.setdefault(source[a], []).append(n)
    assert len(positives) == 20
    for anchor, drawn in positives.items():
        others = [v for v, lab in source.items() if lab == source[anchor] and v != anchor]
        counts = np.array([drawn.count(v) for v in others])
        assert counts.sum() == per_anchor and counts.min() > 0  # the whole class, never itself
        expected = per_anchor / len(others)
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 30, (counts, chi2)  # df <= 8: p < 0.001 beyond 26.1
    for label, drawn in negatives.items():
        others = [v for v, lab in source.items() if lab != label]
        counts = np.array([drawn.count(v) for v in others])
        assert counts.sum() == len(drawn) and counts.min() > 0
        expected = len(drawn) / len(others)
        assert ((counts - expected) ** 2 / expected).sum() < 45  # df <= 14


def test_block_size_changes_streams_not_validity(tmp_path):
    labels = {"train": ["a"] * 7 + ["b"] * 7 + ["c"], "eval": ["a", "b"] * 2}
    examples_dir, graph = _transformed(tmp_path, labels)
    big, _ = run_pair_gen(tmp_path, examples_dir, graph, out_name="big")
    small, _ = run_pair_gen(tmp_path, examples_dir, graph, out_name="small", block_rows=2)
    for uri in (big, small):
        stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]["train"]
        assert stats["rows"] == 15 and stats["skipped_classes"] == ["c"]
        assert stats["examples"] == 14 * 2 and stats["positives"] == stats["negatives"] == 28
    anchors = [sorted(_vec(t, "anchor") for t in _read(uri, "train")) for uri in (big, small)]
    assert anchors[0] == anchors[1]  # every usable row is an anchor, twice, either way


def test_pairs_positive_fraction_and_labels(tmp_path):
    labels = {"train": ["a"] * 6 + ["b"] * 6 + ["c"] * 6, "eval": ["a", "b"] * 2}
    examples_dir, graph = _transformed(tmp_path, labels)
    uri, _ = run_pair_gen(
        tmp_path,
        examples_dir,
        graph,
        mode="pairs",
        triplets_per_anchor=100,
        positive_fraction=0.25,
        block_rows=5,
    )
    pairs = _read(uri, "train")
    similar = [p.features.feature["similar"].int64_list.value[0] for p in pairs]
    assert len(pairs) == 1800 and 0.21 < np.mean(similar) < 0.29
    for p, s in zip(pairs, similar, strict=True):
        f = p.features.feature
        same = f["left_label"].bytes_list.value[0] == f["right_label"].bytes_list.value[0]
        assert same == bool(s) and _vec(p, "left") != _vec(p, "right")
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]["train"]
    assert stats["positives"] == sum(similar) and stats["negatives"] == 1800 - sum(similar)


def test_triplets_k_hold_k_negatives_of_other_classes(tmp_path):
    labels = {"train": ["a"] * 4 + ["b"] * 3 + ["c"] * 3, "eval": ["a", "b"] * 2}
    examples_dir, graph = _transformed(tmp_path, labels)
    uri, schema_uri = run_pair_gen(
        tmp_path, examples_dir, graph, mode="triplets_k", num_negatives=3, block_rows=3
    )
    source = _labels_by_vector(examples_dir, "train")
    dim = len(next(iter(source)))
    rows = _read(uri, "train")
    assert len(rows) == 20
    for t in rows:
        negatives = np.reshape(t.features.feature["negatives"].float_list.value, (3, dim))
        label = t.features.feature["anchor_label"].bytes_list.value[0]
        assert source[_vec(t, "anchor")] == source[_vec(t, "positive")] == label
        assert all(source[tuple(np.round(n, 5))] != label for n in negatives)


def test_bad_vector_length_names_the_file_and_row(tmp_path):
    examples_dir, graph = _transformed(tmp_path, {"train": ["a", "b"] * 3, "eval": ["a", "b"]})
    folder = os.path.join(examples_dir, "Split-train")
    name = sorted(os.listdir(folder))[0]
    records = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(folder, name), "GZIP")]
    broken = tf.train.Example.FromString(records[2])
    broken.features.feature["features"].float_list.value.append(1.0)
    records[2] = broken.SerializeToString()
    with tf.io.TFRecordWriter(os.path.join(folder, name), "GZIP") as w:
        for r in records:
            w.write(r)
    with pytest.raises(Exception, match=rf"{name}: row 2 has 3 'features' value\(s\), expected 2"):
        run_pair_gen(tmp_path, examples_dir, graph)


def test_spill_files_are_removed(tmp_path):
    examples_dir, graph = _transformed(tmp_path, {"train": ["a", "b"] * 3, "eval": ["a", "b"] * 2})
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph, block_rows=2)
    leftovers = [p for p in os.listdir(tmp_path / "out") if "blocks" in p]
    assert not leftovers and sorted(os.listdir(uri)) == [
        "Split-eval",
        "Split-train",
        spec.STATS_FILE,
    ]


def test_multi_processing_workers_write_the_same_bytes(tmp_path):
    """Parallel DirectRunner workers (other bundle order and placement): identical files."""
    examples_dir, graph = _transformed(
        tmp_path, {"train": ["a", "b", "c"] * 10, "eval": ["a", "b"] * 3}
    )
    in_process, _ = run_pair_gen(tmp_path, examples_dir, graph, out_name="one", block_rows=4)
    beam_args = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    parallel, _ = run_pair_gen(
        tmp_path, examples_dir, graph, out_name="two", block_rows=4, beam_args=beam_args
    )
    first = _file_bytes(in_process)
    assert len(first) == 9 + 1 and first == _file_bytes(parallel)


@pytest.mark.parametrize("mode", ["none", "pairs", "triplets", "triplets_k", "pk_batches"])
def test_examples_built_predicts_what_pair_gen_writes(tmp_path, mode):
    from tfx_metric_learning.components.pair_gen import sampling

    train = ["a"] * 6 + ["b"] * 5 + ["c"] * 7 + ["d"] * 2 + ["lonely"]
    examples_dir, graph = _transformed(tmp_path, {"train": train, "eval": ["a", "b"] * 2})
    settings = {"mode": mode, "triplets_per_anchor": 3, "num_negatives": 2}
    settings |= {"pk_classes": 2, "pk_examples": 3}
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph, **settings)
    stats = json.load(open(os.path.join(uri, spec.STATS_FILE)))["splits"]["train"]
    sizes = [6, 5, 7, 2, 1]
    assert stats["examples"] == sampling.examples_built(mode, sizes, 3, 2, 3, 0) > 0
