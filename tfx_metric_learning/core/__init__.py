"""The shared kernel: what every stage, the pipeline and the CLI build on.

- ``stage_settings``: the settings base (typed fields, checks, JSON, CLI metadata);
- ``splits``: the split names; ``keys``: the feature keys of Transform, PairGen and the
  Trainer; ``records``: reading TFRecord files (the one place that decides compression);
- ``retrieval``: exact k-NN on faiss with the tie rule, and the retrieval metrics with their
  sampling error, shared by the Trainer (epoch selection) and the evaluator.

It imports nothing else of the project.
"""
