"""Hostile inputs: each is refused up front, or handled, with a message naming the problem.

The cases live in ``hostile_cases.py``; the table in ``docs/options.md`` is generated from them.
"""

import os

import pytest

from tests.conftest import REPO_DIR
from tests.pipeline import hostile_cases


@pytest.mark.parametrize("case", hostile_cases.CASES, ids=lambda c: c.name)
def test_hostile_input_gets_a_clear_answer(case, tmp_path):
    code, shown = case.run(str(tmp_path))
    assert case.shows in shown, shown
    assert code == case.exit_code, shown
    if code is not None:
        assert "Traceback" not in shown
        # refused before any component ran: no artifact was written
        assert not os.path.exists(tmp_path / "root" / "artifacts"), shown


def test_docs_table_is_generated_from_the_cases():
    with open(os.path.join(REPO_DIR, hostile_cases.DOCS_PAGE)) as f:
        page = f.read()
    assert hostile_cases.markdown_table() in page, (
        f"regenerate the table in {hostile_cases.DOCS_PAGE}: python -m tests.pipeline.hostile_cases"
    )
