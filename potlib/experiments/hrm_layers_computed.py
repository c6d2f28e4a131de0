"""Transformer vs Recurrent Transformer vs HRM by layers computed (HRM paper Fig 2, right).

Source: seed ``001_42e08a1e02b2ff9f.txt`` ("Transformer vs HRM") and Wang et al. 2025 (arXiv
2506.21734) Fig 2 right: at equal "layers computed" (block applications per puzzle), a Transformer
saturates near 66%, a Recurrent Transformer (a tied block looped) near 80%, HRM reaches 92-99%.
Digitised values: ``published/hrm_figures_digitized.csv`` (``fig2,right``; the HRM x positions
there are inferred).

Here, with HRM-style blocks at hidden 256:

- Transformer: 4, 8, 16, 32 blocks (layers computed = blocks);
- Recurrent Transformer: a 4-block stack looped 2, 4, 8, 16 times with tied weights and the input
  re-injected every loop [reconstructed], trained by backprop through all loops;
- HRM: H_layers = L_layers = 4, H_cycles = L_cycles = 2 (24 block applications per segment), fixed
  M = 1, 2, 4 segments (no ACT), one-step gradient and deep supervision; layers computed = 24 M.

Every model gets the same number of optimizer steps (for HRM one step = one segment).

**Budget gap**: the paper trains on 3.8M Sudoku-Extreme puzzles at d=512 for GPU-days; we use
1,000 hard puzzles x 100 augmentations and 3,000 steps of batch 256 per model. Compare shapes.

Profiles: ``gpu`` as above; ``cpu`` on the difficulty ladder at d=64 (``hrm_train.cpu_base``):
Transformer 2, 4, 8, 16 blocks; a 2-block stack looped 2, 4, 8 times; HRM (2+2 blocks, 2 x 2
cycles: 12 block applications per segment) with M = 1, 2; 1,000 steps each: 9 runs,
19 min on two 1-thread workers after ``hrm_depth_width``, whose four depth points are the Transformers here,
trained once (their saved training states, :mod:`potlib.checkpoints`; about 33 min without them). 1-thread
seconds per 1,000 steps (2026-12-01, blocks compiled): Transformer 107 / 218 / 434 / 808; looped stack 214 /
405 / 818; HRM 384 / 325. Smoke 3 runs, seconds.

    python -m potlib run hrm_layers_computed --profile smoke
    python -m potlib run hrm_layers_computed --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from potlib.config import grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.hrm_train import HRMTrainConfig, cpu_base, run_outcome, smoke_base


@dataclass(frozen=True)
class LayersComputedConfig(HRMTrainConfig):
    act: bool = False  # fixed M segments: layers computed is then exact
    train_steps: int = 3000
    lr: float = 3e-4  # short budget: a larger lr than HRM's 7e-5 (our choice)


def _smoke() -> list[LayersComputedConfig]:
    base = LayersComputedConfig(**smoke_base(act=False))
    return [
        base.replace(model="transformer", n_layers=2),
        base.replace(model="recurrent_transformer", n_layers=1, loops=2),
        base.replace(model="hrm", halt_max_steps=2),
    ]


def _gpu() -> list[LayersComputedConfig]:
    base = LayersComputedConfig()
    return (
        grid(base.replace(model="transformer"), n_layers=(4, 8, 16, 32))
        + grid(base.replace(model="recurrent_transformer", n_layers=4), loops=(2, 4, 8, 16))
        + grid(base.replace(model="hrm"), halt_max_steps=(1, 2, 4))
    )


def _cpu() -> list[LayersComputedConfig]:
    # ladder at d=64; layers computed: Transformer 2..16, 2-block stack looped 2/4/8 (4..16), HRM 12 per segment
    base = LayersComputedConfig(**cpu_base(act=False, train_steps=1000))
    return (
        grid(base.replace(model="transformer"), n_layers=(2, 4, 8, 16))
        + grid(base.replace(model="recurrent_transformer", n_layers=2), loops=(2, 4, 8))
        + grid(base.replace(model="hrm"), halt_max_steps=(1, 2))
    )


def run(cfg: LayersComputedConfig, device: torch.device) -> Outcome:
    return run_outcome(cfg, device)


EXPERIMENT = Experiment(
    name="hrm_layers_computed",
    title="HRM paper Fig 2 (right): Transformer vs Recurrent Transformer vs HRM by layers computed",
    config_cls=LayersComputedConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
