"""The kit's fixtures come from its pytest plugin; this file only points the fast pipeline at
our loss and our preprocessing_fn (overriding the plugin's ``fast_pipeline_config``).
"""

import pytest

from tfx_metric_learning.testing import fast_config

LOSS = "online_contrastive"
PREPROCESSING_FN = "acme_embeddings.preprocessing.preprocessing_fn"


@pytest.fixture(scope="session")
def fast_pipeline_config(tmp_path_factory):
    import acme_embeddings.losses  # noqa: F401  (registers the loss; installed, the entry point does)

    return fast_config(
        str(tmp_path_factory.mktemp("acme-pipeline")),
        training={"loss": LOSS},
        transform={"preprocessing_fn": PREPROCESSING_FN},
    )
