"""Phase 1 of the credit-bridge memos: the synthetic nonlinearity ladder.

Backs the credit-assignment chapter's ladder table and figure (SPEC 3.3, seed
``003_7472aaa848a17a76.txt`` Phase 1; published ``credit_bridge_phase1_ladder.csv`` and
``credit_bridge_phase1_ratios.csv``): Γ, ρ and test accuracy of BP, DFA, state bridge (SB) and credit
bridge (CB) on a teacher–student task whose nonlinearity φ_α(z) = (1−α)z + α tanh z is dialled by α.

The teacher is [reconstructed] (``potlib.credit.teacher``); its depth equals the student's L unless
``teacher_depth`` says otherwise. Dataset sizes are ours: 10,000 training and 2,000 test examples,
the same for every method and seed (``teacher_seed`` fixes them). Optimiser as in the CIFAR phase
(AdamW 1e-3, wd 0.01, cosine, batch 128) [reconstructed for the ladder].

Paper grid: α ∈ {0, 0.25, 0.5, 1} × L ∈ {2, 4, 8, 12} × {BP, DFA, SB, CB} × seeds {42, 123, 456},
d = 128, C = 10, 80 epochs: 192 runs (the ``gpu`` profile). The ``cpu`` profile is the same grid at
20 epochs (a quarter of the memo's budget): measured 1-thread step costs at L = 4 are BP 4.7, DFA
3.4, SB 16.1, CB 21.3 ms, ~55 min for the grid on two 1-thread workers of the 2-core machine.
Credit is used at its own scale (``credit_norm = "none"``, see ``credit_collapse``). Smoke (4 runs)
~6 s wall on a 2-core CPU including start-up (OMP_NUM_THREADS=1).

    python -m potlib run credit_ladder --profile smoke
    python -m potlib run credit_ladder --profile cpu --executor local --workers 2
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from potlib.config import Config, grid
from potlib.credit.teacher import make_ladder
from potlib.credit.train import CreditConfig, train_measured
from potlib.experiments import Experiment, credit_groups
from potlib.runtime import Diverged, Outcome


@dataclass(frozen=True)
class LadderConfig(CreditConfig):
    alpha: float = 1.0  # nonlinearity of the teacher, φ_α(z) = (1-α) z + α tanh z
    n_classes: int = 10  # C
    n_train: int = 10000  # training examples (our choice; not stated in the memos)
    n_test: int = 2000  # test examples (our choice)
    teacher_depth: int = 0  # layers of the teacher; 0 means the student's n_layers [reconstructed]
    teacher_seed: int = 0  # fixes the teacher and the data across methods and training seeds

    def check(self) -> None:
        super().check()
        self.require(0.0 <= self.alpha <= 1.0, "alpha", "a number in [0, 1]")
        self.require(self.n_classes >= 2, "n_classes", "an int >= 2")
        self.require(self.n_train >= self.batch_size, "n_train", f"an int >= batch_size ({self.batch_size})")
        self.require(self.n_test >= 2, "n_test", "an int >= 2")
        self.require(self.teacher_depth >= 0, "teacher_depth", "an int >= 0 (0 means n_layers)")


def data_for(cfg: LadderConfig, device: torch.device) -> tuple[tuple[torch.Tensor, ...], dict]:
    """The teacher's train/test tensors for ``cfg`` and what a row records about them."""
    *data, info = make_ladder(cfg.alpha, cfg.teacher_depth or cfg.n_layers, cfg.d, cfg.n_classes, cfg.n_train,
                              cfg.n_test, cfg.teacher_seed, device)
    return tuple(data), {"dataset": info["dataset"], "sha256": info["sha256"], "n_classes": cfg.n_classes,
                         "extra": {"majority_frac": info["majority_frac"]}}


def run(cfg: LadderConfig, device: torch.device) -> Outcome:
    data, info = data_for(cfg, device)
    result, peak, kind = train_measured(cfg, data, device, cfg.n_classes)
    metrics = dict(result.metrics, **info["extra"])
    if result.diverged:
        raise Diverged("non-finite loss during training", metrics, result.artifacts)
    return Outcome(metrics, result.artifacts, dataset=info["dataset"], dataset_sha256=info["sha256"],
                   peak_memory_bytes=peak, peak_memory_kind=kind)


METHODS = ("BP", "DFA", "SB", "CB")
SEEDS = (42, 123, 456)
SMOKE_BASE = LadderConfig(
    d=16, n_layers=2, epochs=2, n_train=256, n_test=128, batch_size=64, aux_width=32,
    metric_samples=32, metric_dirs=4, seed=42,
)


def _smoke() -> list[Config]:
    return grid(SMOKE_BASE, method=METHODS)


ALPHAS = (0.0, 0.25, 0.5, 1.0)
DEPTHS = (2, 4, 8, 12)
CPU_EPOCHS = 20  # a quarter of the memo's 80: the grid fits in ~1 h on two cores


def _cpu() -> list[Config]:
    return grid(LadderConfig(epochs=CPU_EPOCHS), alpha=ALPHAS, n_layers=DEPTHS, method=METHODS, seed=SEEDS)


def _gpu() -> list[Config]:
    return grid(LadderConfig(), alpha=ALPHAS, n_layers=DEPTHS, method=METHODS, seed=SEEDS)


EXPERIMENT = Experiment(
    name="credit_ladder",
    title="Synthetic nonlinearity ladder: Γ, ρ, accuracy of BP/DFA/SB/CB vs α and depth",
    config_cls=LadderConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
    # configs of equal shape train together as stacked replicas (--executor replicas): BP and DFA in one group,
    # SB and CB each in groups of their own (potlib.credit.replicas)
    group_configs=credit_groups.group_configs,
    run_group=credit_groups.group_runner(data_for),
)
