"""Our loss keeps the contract of the library's losses and matches its formula."""

import numpy as np
import pytest

from tfx_metric_learning.testing import check_loss, compare_to_reference


@pytest.fixture(autouse=True, scope="module")
def registered():
    """Registers online_contrastive when these tests run, not when pytest collects them (the
    repository's own CLI tests, collected alongside, list the built-in losses)."""
    import acme_embeddings.losses  # noqa: F401


def reference(labels, embeddings, pos_margin, neg_margin, **_):
    """The module docstring's formula, one pair at a time."""
    total, active = 0.0, 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j:
                continue
            d = float(np.linalg.norm(embeddings[i] - embeddings[j]))
            term = max(0.0, d - pos_margin) if labels[i] == labels[j] else max(0.0, neg_margin - d)
            total, active = total + term, active + (term > 0)
    return total / active if active else 0.0


def test_online_contrastive_keeps_the_loss_contract():
    values = check_loss("online_contrastive")
    assert values["one_class"] > 0  # same-class pairs still pull together
    assert values["zero"] == 1.0  # every different-class pair at distance 0 costs neg_margin


def test_online_contrastive_matches_its_formula():
    compare_to_reference("online_contrastive", reference)
    compare_to_reference("online_contrastive", reference, {"pos_margin": 0.3, "neg_margin": 1.5})
