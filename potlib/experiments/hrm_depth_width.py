"""Depth vs width of a Transformer on hard Sudoku at a fixed data budget (HRM paper Fig 2, left).

Source: seed ``001_42e08a1e02b2ff9f.txt`` ("Depth vs Width") and Wang et al. 2025 (arXiv 2506.21734)
Fig 2 left: at hidden size 512, going from 8 to 256 layers lifts Sudoku-Extreme-Full accuracy from
16.8% to ~66%, while widening an 8-layer model to ~3k hidden leaves it at 16-18%. Digitised values:
``published/hrm_figures_digitized.csv`` (``fig2,left``).

Here: HRM-style post-norm Transformer blocks (``potlib.models.hrm_blocks``), trained with plain
supervised steps on our "Sudoku-Extreme-like" split (``potlib.data.sudoku``). Depth axis: 4..32
layers at hidden 256; width axis: hidden 256..768 at 4 layers (the shared point is 4 x 256).

**Budget gap**: the paper trains on Sudoku-Extreme-Full (3.8M puzzles) for GPU-days per point with
d=512 and 8..256 layers; we train on 1,000 hard puzzles x 100 symmetry augmentations for 4,000
steps of batch 256 per point. Absolute accuracies are not comparable; the book compares the *shape*
(depth helps, width does not) and reports cell accuracy too, since exact accuracy may sit near 0.

Profiles: ``gpu`` as above; ``cpu`` on the difficulty ladder (``potlib.data.sudoku_ladder``) at
d=64: depth 2, 4, 8, 16 at width 64 and width 96, 128, 192 at 4 layers, 1,000 steps of batch 64
each (the 2,000 of ``hrm_train.cpu_base`` would take twice as long): 7 runs, 28 min on two 1-thread workers
(2026-12-01, Transformer blocks compiled; 1-thread seconds per 1,000 steps: depth 2 / 4 / 8 / 16 at 107 / 218 /
434 / 808, width 96 / 128 / 192 at 282 / 538 / 742);
smoke 3 runs, seconds.

    python -m potlib run hrm_depth_width --profile smoke
    python -m potlib run hrm_depth_width --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from potlib.config import grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.hrm_train import HRMTrainConfig, cpu_base, run_outcome, smoke_base


@dataclass(frozen=True)
class DepthWidthConfig(HRMTrainConfig):
    model: Literal["hrm", "transformer", "recurrent_transformer"] = "transformer"  # only the plain Transformer belongs to this figure
    n_layers: int = 4  # depth axis
    hidden_size: int = 256  # width axis
    train_steps: int = 4000
    lr: float = 3e-4  # short budget: a larger lr than HRM's 7e-5 (our choice)

    def check(self) -> None:
        super().check()
        self.require(self.model == "transformer", "model", "'transformer'")


def _smoke() -> list[DepthWidthConfig]:
    base = DepthWidthConfig(**smoke_base(n_layers=1))
    return grid(base, n_layers=(1, 2)) + [base.replace(hidden_size=48)]


def _gpu() -> list[DepthWidthConfig]:
    base = DepthWidthConfig()
    depth = grid(base, n_layers=(4, 8, 16, 32))
    width = grid(base, hidden_size=(384, 512, 768))
    return depth + width


def _cpu() -> list[DepthWidthConfig]:
    # the difficulty ladder at d=64: depth 2..16 at width 64, width 96..192 at 4 layers, equal steps
    base = DepthWidthConfig(**cpu_base(train_steps=1000))
    return grid(base, n_layers=(2, 4, 8, 16)) + grid(base, hidden_size=(96, 128, 192))


def run(cfg: DepthWidthConfig, device: torch.device) -> Outcome:
    return run_outcome(cfg, device)


EXPERIMENT = Experiment(
    name="hrm_depth_width",
    title="HRM paper Fig 2 (left): Transformer depth vs width on hard Sudoku",
    config_cls=DepthWidthConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
