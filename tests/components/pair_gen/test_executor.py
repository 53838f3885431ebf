import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.pair_gen import executor
from tests.transform_helpers import analyze_and_transform, write_splits


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


def run_pair_gen(tmp_path, examples_dir, graph, out_name="out", **props):
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
    props = {"mode": "triplets", "triplets_per_anchor": 2, "seed": 7} | props
    executor.Executor().Do(
        {"transformed_examples": [examples], "transform_graph": [transform_graph]},
        {"examples": [out_examples], "schema": [out_schema]},
        props,
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


def test_triplets_respect_labels_and_counts(tmp_path):
    labels = {"train": ["a"] * 5 + ["b"] * 4 + ["c"] * 3, "eval": ["d"] * 3 + ["e"] * 3}
    examples_dir, graph = _transformed(tmp_path, labels)
    uri, schema_uri = run_pair_gen(tmp_path, examples_dir, graph)
    stats = json.load(open(os.path.join(uri, executor.STATS_FILE)))
    assert stats["splits"]["train"]["examples"] == 12 * 2
    assert stats["splits"]["eval"]["examples"] == 6 * 2
    assert os.path.exists(os.path.join(schema_uri, executor.SCHEMA_FILE))

    # map each transformed vector back to its label (vectors are unique by construction)
    source = {}
    for split in ("train", "eval"):
        for e in _read(examples_dir, split):
            source[_vec(e, "features")] = e.features.feature["label"].bytes_list.value[0]
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
    stats = json.load(open(os.path.join(uri, executor.STATS_FILE)))["splits"]
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
    stats = json.load(open(os.path.join(uri, executor.STATS_FILE)))["splits"]["train"]
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


def test_classes_larger_than_the_pool_still_give_valid_triplets(tmp_path):
    labels = {"train": ["a"] * 9 + ["b"] * 7 + ["c"], "eval": ["a", "b"] * 2}
    examples_dir, graph = _transformed(tmp_path, labels)
    uri, _ = run_pair_gen(tmp_path, examples_dir, graph, pool_size=3)
    stats = json.load(open(os.path.join(uri, executor.STATS_FILE)))["splits"]["train"]
    assert stats["rows"] == 17 and stats["skipped_classes"] == ["c"]
    source = {}
    for e in _read(examples_dir, "train"):
        source[_vec(e, "features")] = e.features.feature["label"].bytes_list.value[0]
    triplets = _read(uri, "train")
    assert len(triplets) == 16 * 2
    positives = set()
    for t in triplets:
        a, p, n = (_vec(t, k) for k in ("anchor", "positive", "negative"))
        assert a != p and source[a] == source[p] != source[n]
        positives.add(p)
    assert len(positives) <= 3 + 3  # drawn from the two pools of 3 rows


def test_keyed_random_is_uniform_and_deterministic():
    from components.pair_gen import sampling

    draws = [sampling.rng_for(7, key).integers(5) for key in range(20000)]
    counts = np.bincount(draws, minlength=5)
    assert counts.min() > 3700 and counts.max() < 4300  # 4000 expected each
    a, b = sampling.rng_for(1, 99), sampling.rng_for(1, 99)
    assert [a.integers(1000) for _ in range(5)] == [b.integers(1000) for _ in range(5)]
    assert sorted(sampling.rng_for(3, 4).choice(10, 10)) == list(range(10))
