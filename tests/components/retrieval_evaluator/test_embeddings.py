import numpy as np
import pytest
import tensorflow as tf

from tfx_metric_learning.components.retrieval_evaluator import embeddings


def write_shards(out_dir, source, split, batches):
    """Shards as the Beam step writes them: one record per batch, several files."""
    for n, part in enumerate(batches):
        path = f"{embeddings.shard_prefix(out_dir, source, split)}-{n:05d}-of-{len(batches):05d}"
        with tf.io.TFRecordWriter(path + embeddings.SHARD_SUFFIX) as w:
            for labels, emb in part:
                keys = embeddings.row_keys([str(v).encode() for v in emb[:, 0]], 0)
                w.write(embeddings.encode_record(labels, keys, emb))


@pytest.mark.parametrize("root", ["local", "ram://shards"])
def test_shards_read_back_in_order_as_an_index_rows_and_tiles(tmp_path, root):
    out_dir = str(tmp_path) if root == "local" else root
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(23, 3)).astype(np.float32)
    labels = np.array([f"c{i % 4}" for i in range(23)])
    cuts = [(0, 5), (5, 6), (6, 14), (14, 23)]
    records = [(labels[a:b], emb[a:b]) for a, b in cuts]
    write_shards(out_dir, "candidate", "eval", [records[:2], records[2:]])
    write_shards(out_dir, "candidate", "eval_extra", [records[:1]])  # a longer split name
    shards = embeddings.EmbeddingShards(out_dir, "candidate", "eval")
    assert len(shards.files) == 2
    got_labels, keys = shards.index()
    assert got_labels.tolist() == labels.tolist() and keys.dtype == np.uint64
    np.testing.assert_array_equal(shards.take(np.array([0, 5, 6, 22])), emb[[0, 5, 6, 22]])
    tiles = list(shards.tiles(rows=7)())
    assert [len(t) for t in tiles] == [14, 9]  # whole records, at least 7 rows per tile
    np.testing.assert_array_equal(np.concatenate(tiles), emb)
    with pytest.raises(FileNotFoundError, match="no embedding shards"):
        embeddings.EmbeddingShards(out_dir, "baseline", "eval")


def test_the_sample_is_seeded_uniform_and_independent_of_row_order():
    serialized = [f"example {i}".encode() for i in range(1000)]
    keys = embeddings.row_keys(serialized, seed=3)
    rows = embeddings.sample_rows(keys, 100)
    assert len(rows) == 100 and np.all(np.diff(rows) > 0)
    chosen = {serialized[i] for i in rows}
    order = np.random.default_rng(0).permutation(1000)  # another runner's write order
    shuffled = [serialized[i] for i in order]
    rows_shuffled = embeddings.sample_rows(embeddings.row_keys(shuffled, seed=3), 100)
    assert {shuffled[i] for i in rows_shuffled} == chosen
    other = embeddings.sample_rows(embeddings.row_keys(serialized, seed=4), 100)
    assert len(set(rows) & set(other)) < 40  # another seed, another sample
    assert 200 < np.mean(rows) < 800  # spread over the split, not its head
    assert embeddings.sample_rows(keys, 0).tolist() == list(range(1000))
    assert embeddings.sample_rows(keys, 5000).tolist() == list(range(1000))


class _RawInputs(tf.Module):
    """A serving signature with a scalar, a vector, an integer and a string feature."""

    @tf.function(
        input_signature=[
            {
                "a": tf.TensorSpec([None], tf.float32, name="a"),
                "v": tf.TensorSpec([None, 3], tf.float32, name="v"),
                "n": tf.TensorSpec([None], tf.int64, name="n"),
                "s": tf.TensorSpec([None], tf.string, name="s"),
            }
        ]
    )
    def serve(self, features):
        return {"embedding": tf.expand_dims(features["a"], 1)}


def test_raw_features_read_scalars_vectors_and_integers_in_name_order(tmp_path):
    module = _RawInputs()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    rows = [
        {"a": [1.5], "v": [1.0, 2.0, 3.0], "n": [7], "s": b"x", "label": b"p"},
        {"v": [4.0], "n": [], "s": b"y", "label": b"q"},  # a missing, v short, n empty
        {"a": [float("nan")], "v": [5.0, 6.0, 7.0, 8.0], "n": [2], "label": b"p"},
    ]
    batch = []
    for row in rows:
        ex = tf.train.Example()
        for name, value in row.items():
            feature = ex.features.feature[name]
            if name in ("a", "v"):
                feature.float_list.value.extend(value)
            elif name == "n":
                feature.int64_list.value.extend(value)
            else:
                feature.bytes_list.value.append(value)
        batch.append(ex.SerializeToString())
    fn = embeddings._Embed(str(tmp_path), "label", embeddings.RAW_READ, seed=0)
    fn.setup()
    labels, keys, vectors = embeddings.decode_record(next(iter(fn.process(batch))))
    assert labels.tolist() == ["p", "q", "p"]
    np.testing.assert_array_equal(keys, embeddings.row_keys(batch, 0))
    # columns: a, n, s (non-numeric: 0), v (3 values)
    np.testing.assert_array_equal(
        vectors,
        [[1.5, 7, 0, 1, 2, 3], [0, 0, 0, 4, 0, 0], [0, 2, 0, 5, 6, 7]],
    )


def test_an_example_without_its_label_is_a_clear_error(tmp_path):
    module = _RawInputs()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    fn = embeddings._Embed(str(tmp_path), "label", embeddings.RAW_READ, seed=0)
    fn.setup()
    with pytest.raises(ValueError, match="one string label in 'label'"):
        next(iter(fn.process([tf.train.Example().SerializeToString()])))


@pytest.mark.parametrize("root", ["local", "ram://whole"])
def test_shards_that_fit_are_read_whole_in_one_pass(tmp_path, root):
    out_dir = str(tmp_path) if root == "local" else root
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(11, 4)).astype(np.float32)
    labels = np.array([f"c{i % 3}" for i in range(11)])
    write_shards(out_dir, "candidate", "eval", [[(labels[:4], emb[:4])], [(labels[4:], emb[4:])]])
    shards = embeddings.EmbeddingShards(out_dir, "candidate", "eval")
    got_labels, keys, got = shards.read()
    assert got_labels.tolist() == labels.tolist()
    np.testing.assert_array_equal(keys, shards.index()[1])
    np.testing.assert_array_equal(got, emb)
    assert shards.read(max_bytes=100) is None  # more than that on storage: read in tiles


def _write_examples(directory, files, rows_per_file):
    """``files`` gzipped TFRecord files of distinct serialized rows; all rows, in file order."""
    rows = []
    for f in range(files):
        part = [f"file {f} row {r}".encode() for r in range(rows_per_file)]
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(f"{directory}/data-{f:05d}.gz", options) as w:
            for row in part:
                w.write(row)
        rows += part
    return rows


def test_read_batches_reads_every_file_whole_and_in_order(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    rows = _write_examples(tmp_path, 3, 10)

    def check(batches):
        assert all(0 < len(b) <= 4 for b in batches)
        assert sorted(r for b in batches for r in b) == sorted(rows)
        for batch in batches:  # each batch holds consecutive rows of one file
            positions = [rows.index(r) for r in batch]
            assert positions == list(range(positions[0], positions[0] + len(batch)))

    with beam.Pipeline() as p:
        assert_that(p | embeddings.ReadBatches(f"{tmp_path}/*", 4), check)
    with pytest.raises(ValueError, match="no example files match"):
        with beam.Pipeline() as p:
            _ = p | embeddings.ReadBatches(f"{tmp_path}/nothing-*", 4)


def test_smallest_keys_takes_the_rows_the_sample_would(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    rows = _write_examples(tmp_path, 4, 50)
    keys = embeddings.row_keys(rows, seed=7)
    wanted = [rows[i] for i in np.argsort(keys)[:37]]  # by key, smallest first
    with beam.Pipeline() as p:
        sample = (
            p
            | embeddings.ReadBatches(f"{tmp_path}/*", 16)
            | beam.CombineGlobally(embeddings.SmallestKeys(37, seed=7))
        )
        assert_that(sample, equal_to([wanted]))
    fn = embeddings.SmallestKeys(500, seed=7)  # more than there are: every row, by key
    merged = fn.merge_accumulators(
        [
            fn.add_input(fn.create_accumulator(), rows[:90]),
            fn.add_input(fn.create_accumulator(), rows[90:]),
        ]
    )
    assert fn.extract_output(merged) == [rows[i] for i in np.argsort(keys)]
