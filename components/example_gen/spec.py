"""ExampleGen's contract: its output file names, artifact properties and execution properties.

Imported by the executor, the pipeline, the Kubeflow run plan, the run report and the tests.
"""

REPORT_FILE = "ingest_report.json"
# under the examples artifact while ExampleGen runs: each chunk's encoded rows (see Executor)
STAGING_DIR = ".staging"
# custom properties of the examples artifact (ML Metadata): the spans read, those left out
SPANS_PROPERTY = "spans"
# the fingerprint of the files read (TFX's: counts, bytes, mtimes per span pattern)
FINGERPRINT_PROPERTY = "input_fingerprint"
LEFT_OUT_PROPERTY = "spans_left_out"
# execution property on Kubeflow: ``input_digest`` as the run's plan found it; the cache key
PLANNED_DIGEST_KEY = "data_fingerprint"
