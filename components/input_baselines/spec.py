"""InputBaselines' contract: its keys and channels.

Imported by the component, the executor, the pipeline and the tests. Its output is read by
the RetrievalEvaluator through its ``baselines`` channel, so the file it writes is the
evaluator's ``EVALUATION_FILE`` with the evaluator's ``"baselines"`` entry
(``retrieval_evaluator/baselines.py``).
"""

from tfx_metric_learning.components.retrieval_evaluator import spec as evaluator_spec

# execution properties
LABEL_COLUMN_KEY = evaluator_spec.LABEL_COLUMN_KEY
SETTINGS_KEY = evaluator_spec.SETTINGS_KEY  # EvaluationSettings as JSON, as the evaluator's

# channels
EXAMPLES_KEY = evaluator_spec.EXAMPLES_KEY  # the raw examples the evaluator scores
TRANSFORM_GRAPH_KEY = "transform_graph"  # Transform's graph, the one every model embeds
BASELINES_KEY = "baselines"  # a ModelEvaluation holding only input baselines

# in the output
BASELINES_FILE = evaluator_spec.EVALUATION_FILE  # {"baselines": ..., "seconds": ...}
EMBEDDINGS_DIR = evaluator_spec.EMBEDDINGS_DIR  # scratch while scoring; removed after
