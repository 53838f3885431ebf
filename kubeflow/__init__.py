"""Compiling the pipeline for Kubeflow Pipelines v2."""
