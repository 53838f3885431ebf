"""The DataValidator's contract: its keys, channels, properties and output file names.

Imported by the component, the executor, the pipeline (the blessing gate), the run report and
the tests.
"""

SETTINGS_KEY = "settings"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
EXAMPLES_KEY = "examples"
ANOMALIES_KEY = "anomalies"
BLESSED_PROPERTY = "blessed"  # int 1 / 0 on the anomalies artifact
FOUND_PROPERTY = "anomalies_found"  # JSON list, see ``describe``
BASELINE_PROPERTY = "baseline_span"  # the span drift was measured against (spans only)
SPAN_PROPERTY = "validated_span"  # the span checked (spans only)
ANOMALIES_FILE = "SchemaDiff.pb"
