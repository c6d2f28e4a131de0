"""Do HRM's own training choices matter at our budget? Stablemax loss and the Adam-atan2 optimizer.

Source: sapientinc/HRM trains Sudoku with a stablemax cross-entropy (``models/losses.py``,
``stablemax_cross_entropy``; Prieto et al. 2025) and the Adam-atan2 optimizer (``adam_atan2``);
SPEC 3.2 names both as differences of our default (softmax cross-entropy, AdamW). One run each at the
``cpu`` budget (``hrm_train.cpu_base``: the difficulty ladder at d=64, HRM 2+2 blocks, fixed M = 2,
2,000 segments): softmax + AdamW (our default), stablemax + AdamW, softmax + Adam-atan2, stablemax +
Adam-atan2 (HRM's combination): 4 runs, 24 min on two 1-thread workers after ``hrm_act``, whose
fixed M = 2 run is the AdamW/softmax one here (its saved training state, :mod:`potlib.checkpoints`);
1-thread seconds per 2,000 segments (2026-12-01, blocks compiled): 660 to 710. ``gpu``: the same four at
the ``hrm_act`` gpu size.

    python -m potlib run hrm_original_choices --profile smoke
    python -m potlib run hrm_original_choices --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from potlib.config import grid
from potlib.experiments import Experiment
from potlib.hrm_train import HRMTrainConfig, cpu_base, run_outcome, smoke_base
from potlib.runtime import Outcome


@dataclass(frozen=True)
class ChoicesConfig(HRMTrainConfig):
    act: bool = False
    halt_max_steps: int = 2

    def check(self) -> None:
        super().check()
        self.require(self.model == "hrm", "model", "'hrm'")


def _grid(base: ChoicesConfig) -> list[ChoicesConfig]:
    return grid(base, optimizer=("adamw", "adam_atan2"), loss_type=("softmax", "stablemax"))


def run(cfg: ChoicesConfig, device: torch.device) -> Outcome:
    return run_outcome(cfg, device)


EXPERIMENT = Experiment(
    name="hrm_original_choices",
    title="HRM's stablemax loss and Adam-atan2 optimizer against softmax and AdamW",
    config_cls=ChoicesConfig,
    profiles={
        "smoke": lambda: _grid(ChoicesConfig(**smoke_base(act=False))),
        "cpu": lambda: _grid(ChoicesConfig(**cpu_base(act=False, halt_max_steps=2))),
        "gpu": lambda: _grid(ChoicesConfig(train_steps=5000, lr=3e-4)),
    },
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
