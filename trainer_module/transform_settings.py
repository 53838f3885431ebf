"""The transform stage's settings: how ``preprocessing_fn`` scales the features.

Transform receives them in its ``custom_config`` (with the label column), compiled into the
pipeline: a change of scaling is a new transform graph, so it is not a runtime parameter.
"""

from __future__ import annotations

import dataclasses
import re

from tfx_metric_learning.core.stage_settings import StageSettings, one_of, setting

SCALINGS = ("standard", "centered")
# The built-in preprocessing_fn, which ``preprocessing_fn = ""`` selects.
BUILT_IN_PREPROCESSING_FN = "tfx_metric_learning.trainer_module.preprocessing.preprocessing_fn"
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def dotted_path(value: str) -> str | None:
    """Empty, or ``package.module.function``."""
    if value == "" or _DOTTED.fullmatch(value):
        return None
    return f"must be module.function (a dotted import path), got {value!r}"


@dataclasses.dataclass(frozen=True)
class TransformSettings(StageSettings):
    """Settings of Transform's ``preprocessing_fn`` (``trainer_module/preprocessing.py``)."""

    STAGE = "transform"

    scaling: str = setting(
        "standard",
        "standard: z-score every feature (features of different units weigh alike); centered: "
        "subtract every feature's mean and divide all by one scale (the root mean variance), "
        "which keeps the relative weight of features that share a unit, such as pixels",
        one_of(*SCALINGS),
    )
    preprocessing_fn: str = setting(
        "",
        "Transform's preprocessing_fn as module.function, importable where Transform runs (on "
        "Kubeflow: in the image); empty: the built-in one. It must write the outputs "
        "trainer_module/preprocessing.py documents (check_preprocessing_fn checks them)",
        dotted_path,
    )

    @property
    def preprocessing_fn_path(self) -> str:
        """The dotted path Transform runs: the setting, or the built-in function."""
        return self.preprocessing_fn or BUILT_IN_PREPROCESSING_FN
