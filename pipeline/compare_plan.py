"""The plan of a comparison, said before it starts: what it runs, roughly how long, its cap.

A comparison runs one branch (PairGen -> Trainer -> RetrievalEvaluator) per candidate, seed
and protocol, and with ``--tuning-trials N`` N tuning trainings per candidate and protocol
(on its first seed). ``--max-branches`` (``MAX_BRANCHES``) caps the branches: a larger plan
is refused before any data is read, naming the product and the flag to raise.

The time estimate is a linear model of one measurement, not a promise: docs/compare.md's
comparison of the digits (7 candidates x 3 seeds, ``seen_classes``, 1,008 train rows, 20
epochs) took 703 s on the project's 2-core machine, 33.5 s per branch. A branch is taken to
cost ``FIXED_BRANCH_SECONDS`` (component start-up, PairGen, evaluation) plus the rest of the
33.5 s in proportion to its train rows x epochs, and a tuning trial the proportional part
alone. Another machine, another encoder or much larger data changes it; the plan says so.
"""

from __future__ import annotations

import dataclasses

from tfx_metric_learning.core.stage_settings import SettingsError

MAX_BRANCHES = 64  # the default --max-branches: the default comparison (7 x 3 x 2) is 42
FIXED_BRANCH_SECONDS = 10.0
# the measurement the estimate scales: seconds per branch at rows x epochs
REFERENCE_BRANCH_SECONDS = 703.0 / 21
REFERENCE_ROW_EPOCHS = 1008 * 20


def check_cap(candidates: int, seeds: int, protocols: int, cap: int) -> int:
    """The branches ``candidates x seeds x protocols``; ``SettingsError`` above ``cap``."""
    if cap < 1:
        raise SettingsError(f"--max-branches must be >= 1, got {cap}")
    branches = candidates * seeds * protocols
    if branches > cap:
        raise SettingsError(
            f"the comparison would train {branches} branches ({candidates} candidate(s) x "
            f"{seeds} seed(s) x {protocols} protocol(s)), more than --max-branches {cap}: "
            f"fewer --seeds or candidates, or raise --max-branches"
        )
    return branches


def training_seconds(train_rows: int, epochs: int) -> float:
    """The estimated seconds one training of ``train_rows`` x ``epochs`` takes (no start-up)."""
    scale = train_rows * epochs / REFERENCE_ROW_EPOCHS
    return (REFERENCE_BRANCH_SECONDS - FIXED_BRANCH_SECONDS) * scale


@dataclasses.dataclass(frozen=True)
class ComparePlan:
    """What a comparison will run: its product, its components, its estimated time."""

    candidates: int
    seeds: int
    tuning_trials: int
    components: int  # TFX components over every protocol's pipeline
    train_rows: list[int]  # per protocol: its train split's rows
    epochs: list[int]  # per candidate

    @property
    def protocols(self) -> int:
        return len(self.train_rows)

    @property
    def branches(self) -> int:
        return self.candidates * self.seeds * self.protocols

    @property
    def estimated_seconds(self) -> float:
        """Every branch and tuning trial, run one after another (as locally)."""
        total = 0.0
        for rows in self.train_rows:
            for epochs in self.epochs:
                training = training_seconds(rows, epochs)
                total += self.seeds * (FIXED_BRANCH_SECONDS + training)
                total += self.tuning_trials * training
        return total

    def describe(self, cap: int) -> str:
        """One line: the product, the components, the estimate, the cap."""
        minutes = self.estimated_seconds / 60
        tuning = (
            f" + {self.tuning_trials} tuning trial(s) per candidate" if self.tuning_trials else ""
        )
        epochs = sorted(set(self.epochs))
        shown = str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
        return (
            f"Plan: {self.candidates} candidate(s) x {self.seeds} seed(s) x {self.protocols} "
            f"protocol(s) = {self.branches} branches{tuning}, {self.components} components; "
            f"estimated {minutes:.0f} min ({'/'.join(map(str, self.train_rows))} train rows x "
            f"{shown} epochs per "
            f"training, scaled from docs/compare.md's measured comparison on 2 cores; machines "
            f"differ). --max-branches {cap} caps the branches."
        )
