"""The candidates of a comparison (``metric-learning compare``): what each one trains.

A candidate is a loss by registered name with optional settings, written
``NAME KEY=VALUE ...``: a KEY the loss declares is a loss parameter (``margin=0.2``); any
other KEY must be a training setting (``learning_rate=0.003``, ``encoder=residual``,
``hidden_units=512,256``). Values are read as JSON when they are JSON. The seed is not a
candidate's setting: every candidate is trained with each of the comparison's seeds
(``seeds``), so results are paired by seed.

``DEFAULT_LOSSES`` covers the families the comparison is about: cross-entropy, contrastive,
triplet (semi-hard mining), multi-similarity, SupCon, ArcFace and proxy-anchor; the
raw-feature baselines are scored by every evaluation and need no candidate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from tfx_metric_learning.core.stage_settings import SettingsError
from tfx_metric_learning.trainer_module.losses import registry
from tfx_metric_learning.trainer_module.settings import TrainingSettings

DEFAULT_LOSSES = (
    "sparse_categorical_crossentropy",
    "contrastive",
    "triplet_semihard",
    "multi_similarity",
    "supcon",
    "arcface",
    "proxy_anchor",
)
DEFAULT_SEEDS = 3
# training settings a candidate may not set: the comparison sets them for every branch
_NOT_PER_CANDIDATE = ("loss", "loss_params", "seed", "warm_start", "checkpoint_dir")
# longest node id suffix kept readable; longer ones end in a hash of the whole label
_MAX_ID = 48


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A loss with its parameters and training settings; ``label`` names it everywhere."""

    loss: str
    loss_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """``NAME`` or ``NAME KEY=VALUE ...`` (keys sorted, loss parameters first)."""
        items = [*sorted(self.loss_params.items()), *sorted(self.training.items())]
        return " ".join([self.loss, *(f"{k}={_shown(v)}" for k, v in items)])

    def settings(self, base: TrainingSettings, seed: int) -> TrainingSettings:
        """``base`` with this candidate's loss, parameters, settings and ``seed``, validated."""
        settings = dataclasses.replace(
            base, loss=self.loss, loss_params=dict(self.loss_params), seed=seed, **self.training
        )
        settings.validate()
        return settings.resolved()


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse(text: str) -> Candidate:
    """A candidate from ``NAME KEY=VALUE ...``; ``SettingsError`` naming what is wrong."""
    words = text.split()
    if not words:
        raise SettingsError("empty --candidate; expected 'NAME KEY=VALUE ...'")
    name, pairs = words[0], words[1:]
    try:
        spec = registry.get_spec(name)
    except ValueError as e:
        raise SettingsError(f"--candidate {text!r}: {e}") from None
    fields = {info.name: info for info in TrainingSettings.fields()}
    loss_params, training = {}, {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or not raw:
            raise SettingsError(f"--candidate {text!r}: expected KEY=VALUE, got {pair!r}")
        value = _value(raw)
        if key in spec.params:
            loss_params[key] = value
        elif key in fields and key not in _NOT_PER_CANDIDATE:
            if fields[key].kind == "int_list" and not isinstance(value, list):
                value = [int(x) for x in str(raw).split(",") if x.strip()]
            training[key] = value
        else:
            settable = sorted(set(fields) - set(_NOT_PER_CANDIDATE))
            raise SettingsError(
                f"--candidate {text!r}: {key!r} is neither a parameter of {name!r} "
                f"({', '.join(sorted(spec.params)) or 'none'}) nor a training setting a "
                f"candidate may set ({', '.join(settable)})"
            )
    candidate = Candidate(name, loss_params, training)
    try:
        candidate.settings(TrainingSettings(), 0)
    except (SettingsError, ValueError, TypeError) as e:
        raise SettingsError(f"--candidate {text!r}: {e}") from None
    return candidate


def from_options(losses: list[str], candidates: list[str]) -> list[Candidate]:
    """``--losses`` then ``--candidate`` entries; the defaults when both are empty.

    Two entries with the same label are refused (they would be one branch twice).
    """
    found = [parse(name) for name in losses] + [parse(text) for text in candidates]
    if not found:
        found = [Candidate(name) for name in DEFAULT_LOSSES]
    labels = [c.label for c in found]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise SettingsError(f"candidate(s) given twice: {', '.join(twice)}")
    return found


def seeds(base: int, count: int) -> list[int]:
    """The comparison's seeds: ``base, base + 1, ...`` (``count`` of them)."""
    if count < 1:
        raise SettingsError(f"--seeds must be >= 1, got {count}")
    return [base + i for i in range(count)]


def tuning_trials(count: int) -> int:
    """The trials of each candidate's Tuner (0: no tuning); negative counts are refused."""
    if count < 0:
        raise SettingsError(f"--tuning-trials must be >= 0, got {count}")
    return count


def require_validation_split(validation_fraction: float) -> None:
    """A comparison ranks on validation data: ``SettingsError`` when there is none."""
    if validation_fraction <= 0:
        raise SettingsError(
            "a comparison ranks candidates on validation data: --validation-fraction must be "
            "> 0 (the test split never selects)"
        )


def branch_id(label: str, seed: int) -> str:
    """The node id suffix of one (candidate, seed) branch: stable, readable, unique.

    The label's letters, digits and underscores (others become ``_``), cut to ``_MAX_ID``
    characters and then followed by a hash of the label when cut or changed, then ``_s`` and
    the seed. It depends on nothing but the label and seed, so adding a candidate leaves the
    other branches' ids, and therefore their cached executions, as they were.
    """
    slug = re.sub(r"[^A-Za-z0-9_]", "_", label)
    if slug != label or len(slug) > _MAX_ID:
        slug = f"{slug[:_MAX_ID]}_{hashlib.sha256(label.encode()).hexdigest()[:6]}"
    return f"{slug}_s{seed}"
