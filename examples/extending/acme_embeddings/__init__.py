"""An example team's extensions of tfx-metric-learning: a loss, a preprocessing_fn, a component.

Tested only through the project's testing kit (``tfx_metric_learning.testing``); see
``../README.md``.
"""
