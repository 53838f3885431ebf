"""``python -m tfx_metric_learning.pipeline.cli``: the ``metric-learning`` command."""

import sys

from tfx_metric_learning.pipeline.cli import main

sys.exit(main())
