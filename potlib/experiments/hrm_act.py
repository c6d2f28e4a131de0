"""Adaptive computation time on hard Sudoku: fixed M vs ACT, and inference-time scaling (HRM Fig 5).

Source: seed ``001_42e08a1e02b2ff9f.txt`` ("ACT on Sudoku extreme", "Inference time scaling") and
Wang et al. 2025 (arXiv 2506.21734) Fig 5: (a) with ACT the mean number of segments stays ~1.5-1.7
while fixed-M models use M; (b) accuracy of ACT with M_max matches fixed M; (c) a model trained with
a given M_max gains accuracy when run with a larger M_max at inference. Digitised values:
``published/hrm_figures_digitized.csv`` (``fig5``).

Grid: ``act`` in {False (fixed M), True (ACT)} x ``halt_max_steps`` M in {2, 4, 8}; every model is
evaluated with M_max in ``eval_M`` = (2, 4, 8, 16). Metrics (see ``potlib.hrm_train``):
``exact_accuracy`` after M segments (HRM's evaluation protocol), ``act_exact``/``act_mean_steps``
with Q-head halting, ``train_mean_steps`` (segments used per puzzle in the last quarter of
training, the ACT "compute steps"), and ``exact_at_M{m}``/``act_exact_Mmax{m}`` for Fig 5 (c).

**Budget gap**: the paper trains HRM (d=512, 27M parameters) on Sudoku-Extreme for GPU-days; we
train d=256 HRMs on 1,000 hard puzzles x 100 augmentations for 5,000 segments of batch 256.

Profiles: ``gpu`` as above; ``cpu`` on the difficulty ladder at d=64 (``hrm_train.cpu_base``), ACT
or fixed M for M_max 2 and 4, 2,000 segments each, evaluated with M_max 2, 4, 8 (accuracy per
difficulty level): 4 runs, 30 min on two 1-thread workers after ``hrm_layers_computed``, whose HRM at
M = 2 is the first 1,000 steps of the fixed M = 2 run here (a saved training state, :mod:`potlib.checkpoints`);
1-thread seconds per 2,000 segments (2026-12-01, blocks compiled): fixed M 660 / 675, ACT 1,099 / 1,088 at
M_max 2 / 4. Smoke 2 runs, seconds.

    python -m potlib run hrm_act --profile smoke
    python -m potlib run hrm_act --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from potlib.config import grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.hrm_train import HRMTrainConfig, cpu_base, run_outcome, smoke_base


@dataclass(frozen=True)
class ACTConfig(HRMTrainConfig):
    eval_M: tuple[int, ...] = (2, 4, 8, 16)  # inference M_max values (Fig 5c)
    train_steps: int = 5000
    lr: float = 3e-4  # short budget: a larger lr than HRM's 7e-5 (our choice)

    def check(self) -> None:
        super().check()
        self.require(self.model == "hrm", "model", "'hrm'")


def _smoke() -> list[ACTConfig]:
    base = ACTConfig(**smoke_base(eval_M=(2, 4)))
    return grid(base, act=(False, True))


def _gpu() -> list[ACTConfig]:
    return grid(ACTConfig(), act=(False, True), halt_max_steps=(2, 4, 8))


def _cpu() -> list[ACTConfig]:
    # ladder at d=64: ACT vs fixed M for M_max 2 and 4, evaluated with M_max 2..8
    return grid(ACTConfig(**cpu_base(train_steps=2000, eval_M=(2, 4, 8))), act=(False, True), halt_max_steps=(2, 4))


def run(cfg: ACTConfig, device: torch.device) -> Outcome:
    return run_outcome(cfg, device)


EXPERIMENT = Experiment(
    name="hrm_act",
    title="HRM paper Fig 5: ACT vs fixed M, and inference-time scaling of M_max",
    config_cls=ACTConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
