"""PairGen's contract: its keys, channels and output file names.

Imported by the component, the executor, the Trainer (which checks what PairGen built), the
run report and the tests.
"""

STATS_FILE = "pair_gen_stats.json"
SCHEMA_FILE = "schema.pbtxt"
SETTINGS_KEY = "settings"
TRAINING_KEY = "training"

# channels (the inputs named as Transform's outputs are)
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"
TRANSFORM_GRAPH_KEY = "transform_graph"
EXAMPLES_KEY = "examples"  # the pairs, triplets, batches or rows the Trainer reads
SCHEMA_KEY = "schema"  # their schema
