"""State folders other trainings left behind are removed once stale, never the live ones."""

import os
import time

from tfx_metric_learning.trainer_module import resume


def test_only_state_untouched_for_days_is_removed(tmp_path):
    now = time.time()
    root = tmp_path / "trainer_state"
    for name, age in (("old", resume.STALE_SECONDS + 60), ("recent", 3600), ("mine", 10 * 86400)):
        (root / name).mkdir(parents=True)
        path = root / name / "ckpt-1.index"
        path.write_text("x")
        os.utime(path, (now - age, now - age))
    (root / "starting").mkdir()  # no file yet: a training that is just starting
    removed = resume.remove_stale(str(root), now, keep=str(root / "mine"))
    assert removed == [str(root / "old")]
    assert sorted(os.listdir(root)) == ["mine", "recent", "starting"]
    assert resume.remove_stale(str(tmp_path / "missing"), now) == []
